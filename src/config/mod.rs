//! Plugin configuration in two steps: [`raw`] deserialises the JSON (shape errors), then
//! [`Config::from_json`] validates values into the types the filter runs on. Every error
//! names the field, e.g. `routes[1].methods[0]: unknown method "FETCH"`.

mod raw;

use std::fmt;

use crate::method::{Method, MethodSet};
use crate::outcome::{OutcomeLabels, OutcomePolicy, RouteKind, StatusMatch};
use crate::route::{RouteRule, Template};

pub use raw::{
    RawConfig, RawHistograms, RawKind, RawLatency, RawOpenApi, RawRoute, RawSlo, DEFAULT_MAX_PATH_DEPTH,
    DEFAULT_MAX_ROUTES, DEFAULT_QUANTILES, DEFAULT_WINDOW_SECONDS,
};

use crate::latency::{LatencyConfig, Quantile};

use crate::metrics::{Bounds, HistogramMode, Unit};
use crate::slo::{Sli, Slo};

const MAX_ROUTES_LIMIT: u64 = 10_000;
const MAX_PATH_DEPTH_LIMIT: u64 = 32;
/// As many as an OpenAPI document may bring (`routemeter openapi` writes them as rules).
const MAX_RULES: usize = crate::openapi::MAX_TEMPLATES;
const MAX_OUTCOME_LABEL_LEN: usize = 64;
/// Bounds the `status` label of the outcome counters (and keeps outcome ids small).
const MAX_OUTCOME_LABELS: usize = 64;
const MAX_OVERRIDES_PER_ROUTE: usize = 100;
/// The largest OpenAPI document the filter reads into its VM.
const MAX_OPENAPI_BYTES: u64 = 64 << 20;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub rules: Vec<RouteRule>,
    pub exclusions: Vec<Template>,
    pub use_route_name: bool,
    pub max_routes: usize,
    pub max_path_depth: usize,
    pub learn: bool,
    pub openapi: Option<OpenApiConfig>,
    pub outcome_labels: OutcomeLabels,
    pub flush_interval_ms: u64,
    pub histograms: HistogramMode,
    pub duration_buckets: Bounds,
    pub size_buckets: Bounds,
    /// `None`: no quantile gauges (`"quantiles": []`).
    pub latency: Option<LatencyConfig>,
    pub slos: Vec<Slo>,
}

/// Where to fetch the upstream's OpenAPI document, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenApiConfig {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_seconds: u64,
    pub timeout_ms: u64,
    pub max_bytes: usize,
    pub base_path: Option<String>,
}

/// A configuration error: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

fn err(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError { field: field.into(), reason: reason.into() }
}

impl Default for Config {
    fn default() -> Self {
        // The defaults are valid by construction; validating them keeps one source of truth.
        Config::from_raw(RawConfig::default()).unwrap_or_else(|_| Config {
            rules: Vec::new(),
            exclusions: Vec::new(),
            use_route_name: false,
            max_routes: DEFAULT_MAX_ROUTES as usize,
            max_path_depth: DEFAULT_MAX_PATH_DEPTH as usize,
            learn: true,
            openapi: None,
            outcome_labels: OutcomeLabels::default(),
            flush_interval_ms: raw::DEFAULT_FLUSH_INTERVAL_MS,
            histograms: HistogramMode::Exact,
            duration_buckets: default_bounds(Unit::Milliseconds),
            size_buckets: default_bounds(Unit::Bytes),
            latency: None,
            slos: Vec::new(),
        })
    }
}

fn default_bounds(unit: Unit) -> Bounds {
    Bounds::of_unit(unit)
}

impl Config {
    /// Parses and validates plugin configuration bytes. Empty (or whitespace) means defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Config::from_raw(RawConfig::default());
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| err("configuration", e.to_string()))?;
        require_objects(&value)?;
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = match path.as_str() {
                "." => "configuration".to_string(),
                // A top-level key `""` (found by fuzzing): name it visibly.
                "" => "\"\"".to_string(),
                _ => path,
            };
            err(field, e.into_inner().to_string())
        })?;
        Config::from_raw(raw)
    }

    /// Step two: value checks.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        if !(1..=MAX_ROUTES_LIMIT).contains(&raw.max_routes) {
            return Err(err("max_routes", format!("must be between 1 and {MAX_ROUTES_LIMIT}, got {}", raw.max_routes)));
        }
        if !(1..=MAX_PATH_DEPTH_LIMIT).contains(&raw.max_path_depth) {
            return Err(err(
                "max_path_depth",
                format!("must be between 1 and {MAX_PATH_DEPTH_LIMIT}, got {}", raw.max_path_depth),
            ));
        }
        if raw.routes.len() > MAX_RULES {
            return Err(err("routes", format!("at most {MAX_RULES} routes, got {}", raw.routes.len())));
        }
        let mut outcome_labels = OutcomeLabels::default();
        let rules = raw
            .routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| validate_route(&format!("routes[{i}]"), r, &mut outcome_labels))
            .collect::<Result<Vec<_>, _>>()?;
        let exclusions = raw
            .exclude
            .iter()
            .enumerate()
            .map(|(i, t)| Template::parse(t).map_err(|reason| err(format!("exclude[{i}]"), reason)))
            .collect::<Result<Vec<_>, _>>()?;
        let openapi = raw.openapi.map(validate_openapi).transpose()?;
        if !(100..=60_000).contains(&raw.flush_interval_ms) {
            return Err(err(
                "flush_interval_ms",
                format!("must be between 100 and 60000, got {}", raw.flush_interval_ms),
            ));
        }
        let bounds = |field: &str, given: Option<Vec<f64>>, unit: Unit| match given {
            None => Ok(Bounds::of_unit(unit)),
            Some(list) => Bounds::new(&list).map_err(|reason| err(field, reason)),
        };
        let duration_buckets = bounds("duration_buckets_ms", raw.duration_buckets_ms, Unit::Milliseconds)?;
        let histograms = match raw.histograms {
            RawHistograms::Exact => HistogramMode::Exact,
            RawHistograms::Envoy => HistogramMode::Envoy,
        };
        let slos = crate::slo::validate(raw.slos)?;
        let duration_buckets = with_thresholds(duration_buckets, &slos, histograms)?;
        let size_buckets = bounds("size_buckets_bytes", raw.size_buckets_bytes, Unit::Bytes)?;
        let latency = validate_latency(raw.latency_quantiles)?;
        Ok(Config {
            rules,
            exclusions,
            use_route_name: raw.use_route_name,
            max_routes: raw.max_routes as usize,
            max_path_depth: raw.max_path_depth as usize,
            learn: raw.learn,
            openapi,
            outcome_labels,
            flush_interval_ms: raw.flush_interval_ms,
            histograms,
            duration_buckets,
            size_buckets,
            latency,
            slos,
        })
    }
}

/// Every latency objective's threshold becomes a bound of the duration histogram, so
/// `le="<threshold>"` counts the good events exactly (durations are whole milliseconds,
/// rounded up). Envoy's own histograms have the bootstrap's buckets, which routemeter does
/// not control: latency objectives need exact histograms.
fn with_thresholds(bounds: Bounds, slos: &[Slo], mode: HistogramMode) -> Result<Bounds, ConfigError> {
    let mut merged = bounds.bounds().to_vec();
    for (i, slo) in slos.iter().enumerate() {
        let Sli::Latency { threshold_ms } = slo.sli else { continue };
        if mode == HistogramMode::Envoy {
            let why = "latency objectives need \"histograms\": \"exact\" (Envoy's own histograms have the bootstrap's buckets)";
            return Err(err(format!("slos[{i}].latency_ms"), why));
        }
        // In order, by hand: a sort would bring the standard library's sort code into the module.
        let t = threshold_ms as f64;
        if let Err(at) = merged.binary_search_by(|b| b.total_cmp(&t)) {
            merged.insert(at, t);
        }
    }
    if merged.len() == bounds.bounds().len() {
        return Ok(bounds);
    }
    Bounds::new(&merged)
        .map_err(|reason| err("slos", format!("with the latency thresholds the duration buckets {reason}")))
}

const MAX_QUANTILES: usize = 8;

fn validate_latency(raw: RawLatency) -> Result<Option<LatencyConfig>, ConfigError> {
    if !(10..=3_600).contains(&raw.window_seconds) {
        return Err(err(
            "latency_quantiles.window_seconds",
            format!("must be between 10 and 3600, got {}", raw.window_seconds),
        ));
    }
    if raw.quantiles.len() > MAX_QUANTILES {
        return Err(err(
            "latency_quantiles.quantiles",
            format!("at most {MAX_QUANTILES}, got {}", raw.quantiles.len()),
        ));
    }
    let mut quantiles: Vec<Quantile> = Vec::new();
    for (i, &q) in raw.quantiles.iter().enumerate() {
        let field = format!("latency_quantiles.quantiles[{i}]");
        // The label is the number as written; four decimals keep it short and exact.
        let label = format!("{q}");
        if !(q > 0.0 && q < 1.0) || label.len() > 6 {
            return Err(err(
                field,
                format!("must be between 0 and 1 (exclusive) with at most 4 decimals, got {label}"),
            ));
        }
        if quantiles.last().is_some_and(|last| last.value >= q) {
            return Err(err(field, "quantiles must be ascending, without repeats"));
        }
        quantiles.push(Quantile { value: q, label });
    }
    Ok((!quantiles.is_empty()).then_some(LatencyConfig { quantiles, window_seconds: raw.window_seconds }))
}

fn validate_openapi(raw: RawOpenApi) -> Result<OpenApiConfig, ConfigError> {
    let is_name = |s: &str| !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic());
    if !is_name(&raw.cluster) {
        return Err(err("openapi.cluster", "must be an Envoy cluster name (1-256 visible characters)"));
    }
    if !raw.path.starts_with('/') || !is_name(&raw.path) {
        return Err(err("openapi.path", format!("must be a path starting with '/', got {:?}", raw.path)));
    }
    let authority = raw.authority.unwrap_or_else(|| raw.cluster.clone());
    if !is_name(&authority) {
        return Err(err("openapi.authority", "must be a host name (1-256 visible characters)"));
    }
    if !(10..=86_400).contains(&raw.refresh_seconds) {
        return Err(err(
            "openapi.refresh_seconds",
            format!("must be between 10 and 86400, got {}", raw.refresh_seconds),
        ));
    }
    if !(100..=60_000).contains(&raw.timeout_ms) {
        return Err(err("openapi.timeout_ms", format!("must be between 100 and 60000, got {}", raw.timeout_ms)));
    }
    if !(1_024..=MAX_OPENAPI_BYTES).contains(&raw.max_bytes) {
        return Err(err(
            "openapi.max_bytes",
            format!("must be between 1024 and {MAX_OPENAPI_BYTES}, got {}", raw.max_bytes),
        ));
    }
    if let Some(base) = &raw.base_path {
        if !base.starts_with('/') || base.contains(['{', '}', '?', '#']) {
            return Err(err("openapi.base_path", format!("must be a literal path starting with '/', got {base:?}")));
        }
    }
    Ok(OpenApiConfig {
        cluster: raw.cluster,
        path: raw.path,
        authority,
        refresh_seconds: raw.refresh_seconds,
        timeout_ms: raw.timeout_ms,
        max_bytes: raw.max_bytes as usize,
        base_path: raw.base_path,
    })
}

fn validate_route(field: &str, raw: RawRoute, labels: &mut OutcomeLabels) -> Result<RouteRule, ConfigError> {
    let template = Template::parse(&raw.template).map_err(|reason| err(format!("{field}.template"), reason))?;
    let methods = match raw.methods {
        None => None,
        Some(names) if names.is_empty() => {
            return Err(err(format!("{field}.methods"), "must not be empty; leave it out to match every method"))
        }
        Some(names) => {
            let mut set = MethodSet::default();
            for (i, name) in names.iter().enumerate() {
                let m = Method::from_config(name).ok_or_else(|| {
                    err(
                        format!("{field}.methods[{i}]"),
                        format!(
                            "unknown method {name:?}; expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, OTHER"
                        ),
                    )
                })?;
                set.insert(m);
            }
            Some(set)
        }
    };
    let kind = match raw.kind {
        None => RouteKind::Plain,
        Some(RawKind::Upload) => RouteKind::Upload,
        Some(RawKind::Download) => RouteKind::Download,
    };
    if kind == RouteKind::Plain && !raw.outcomes.is_empty() {
        return Err(err(
            format!("{field}.outcomes"),
            "only routes with \"kind\": \"upload\" or \"download\" have outcomes",
        ));
    }
    if raw.outcomes.len() > MAX_OVERRIDES_PER_ROUTE {
        return Err(err(
            format!("{field}.outcomes"),
            format!("at most {MAX_OVERRIDES_PER_ROUTE} overrides, got {}", raw.outcomes.len()),
        ));
    }
    let mut overrides = Vec::with_capacity(raw.outcomes.len());
    for (key, label) in &raw.outcomes {
        let at = format!("{field}.outcomes.{key}");
        let status = StatusMatch::parse(key).ok_or_else(|| {
            err(&at, "key must be a status code 100-599, \"0\" (no response) or a class \"1xx\"-\"5xx\"")
        })?;
        if !is_outcome_label(label) {
            return Err(err(
                &at,
                format!(
                    "outcome {label:?} must be 1-{MAX_OUTCOME_LABEL_LEN} characters of a-z, 0-9 and '_', starting with a letter"
                ),
            ));
        }
        let id = labels.intern(label);
        if labels.len() > MAX_OUTCOME_LABELS {
            return Err(err(
                &at,
                format!(
                    "more than {MAX_OUTCOME_LABELS} distinct outcome labels in the configuration (defaults included)"
                ),
            ));
        }
        overrides.push((status, id));
    }
    Ok(RouteRule { template, methods, kind, outcomes: OutcomePolicy::new(overrides) })
}

/// serde happily reads a JSON array into a struct field by field (`[["/a"]]` would be a
/// route); a config that is not written with objects is a mistake, so say so.
fn require_objects(value: &serde_json::Value) -> Result<(), ConfigError> {
    let Some(top) = value.as_object() else {
        return Err(err("configuration", "must be a JSON object"));
    };
    if top.get("openapi").is_some_and(|o| !o.is_object()) {
        return Err(err("openapi", "must be a JSON object"));
    }
    if let Some(routes) = top.get("routes").and_then(|r| r.as_array()) {
        for (i, route) in routes.iter().enumerate() {
            if !route.is_object() {
                return Err(err(format!("routes[{i}]"), "must be a JSON object"));
            }
        }
    }
    Ok(())
}

fn is_outcome_label(label: &str) -> bool {
    let b = label.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_OUTCOME_LABEL_LEN
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

#[cfg(test)]
mod tests;
