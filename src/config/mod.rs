//! Plugin configuration in two steps: [`raw`] deserialises the JSON (shape errors), then
//! [`Config::from_json`] validates values into the types the filter runs on. Each domain
//! owns its section (`route`, `openapi`, `latency`, `slo`); this module assembles them. Every
//! error names the field, e.g. `routes[1].methods[0]: unknown method "FETCH"`.

mod raw;

pub use crate::config_error::ConfigError;
pub use raw::{RawConfig, RawHistograms, DEFAULT_MAX_PATH_DEPTH, DEFAULT_MAX_ROUTES};

use crate::attribute::AttributeLabel;
use crate::latency::LatencyConfig;
use crate::metrics::naming::Naming;
use crate::metrics::{Bounds, HistogramMode, Unit};
use crate::openapi::OpenApiConfig;
use crate::route::{RouteRule, Template};
use crate::slo::{Sli, Slo};
use crate::transfer::OutcomeLabels;

const MAX_ROUTES_LIMIT: u64 = 10_000;
const MAX_PATH_DEPTH_LIMIT: u64 = 32;
/// As many as an OpenAPI document may bring (`routemeter openapi` writes them as rules).
const MAX_RULES: usize = crate::openapi::MAX_TEMPLATES;
const MAX_LABEL_COMBINATIONS_LIMIT: u64 = 10_000;

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
    /// Attribute labels of every route (each rule adds its own).
    pub labels: Vec<AttributeLabel>,
    /// The request headers attribute labels read (`Source::Header` indexes this).
    pub header_names: Vec<String>,
    /// The names series are published under.
    pub naming: Naming,
}

impl Config {
    /// Every series shape (name, label names) this configuration can publish: what a host
    /// that defines metrics up front (the native module) defines.
    pub fn series_shapes(&self) -> Vec<crate::metrics::shapes::Shape> {
        let global: Vec<&str> = self.labels.iter().map(|l| l.name.as_str()).collect();
        let mut routes = vec![("/", global.clone())];
        for rule in &self.rules {
            let own = global.iter().copied().chain(rule.attributes.iter().map(|l| l.name.as_str()));
            routes.push((rule.template.text(), own.collect()));
        }
        let published =
            crate::metrics::shapes::Published { naming: &self.naming, routes, openapi: self.openapi.is_some() };
        crate::metrics::shapes::shapes(&published)
    }

    /// Parses and validates plugin configuration bytes. Empty (or whitespace) means defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Config::from_raw(RawConfig::default());
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::new("configuration", e.to_string()))?;
        require_objects(&value)?;
        let raw: RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let field = match path.as_str() {
                "." => "configuration".to_string(),
                // A top-level key `""` (found by fuzzing): name it visibly.
                "" => "\"\"".to_string(),
                _ => path,
            };
            ConfigError::new(field, e.into_inner().to_string())
        })?;
        Config::from_raw(raw)
    }

    /// Step two: value checks.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        if !(1..=MAX_ROUTES_LIMIT).contains(&raw.max_routes) {
            return Err(ConfigError::new(
                "max_routes",
                format!("must be between 1 and {MAX_ROUTES_LIMIT}, got {}", raw.max_routes),
            ));
        }
        if !(1..=MAX_PATH_DEPTH_LIMIT).contains(&raw.max_path_depth) {
            let why = format!("must be between 1 and {MAX_PATH_DEPTH_LIMIT}, got {}", raw.max_path_depth);
            return Err(ConfigError::new("max_path_depth", why));
        }
        if raw.routes.len() > MAX_RULES {
            return Err(ConfigError::new("routes", format!("at most {MAX_RULES} routes, got {}", raw.routes.len())));
        }
        let mut outcome_labels = OutcomeLabels::default();
        let mut headers = Vec::new();
        let labels = raw
            .labels
            .into_iter()
            .enumerate()
            .map(|(i, l)| AttributeLabel::from_raw(&format!("labels[{i}]"), l, &mut headers))
            .collect::<Result<Vec<_>, _>>()?;
        let mut routes = raw.routes;
        let families: Vec<_> = routes.iter_mut().map(|r| std::mem::take(&mut r.names)).collect();
        let rules = routes
            .into_iter()
            .enumerate()
            .map(|(i, r)| RouteRule::from_raw(&format!("routes[{i}]"), r, (&mut outcome_labels, &mut headers)))
            .collect::<Result<Vec<_>, _>>()?;
        check_label_combinations(&labels, &rules, raw.max_label_combinations)?;
        let route_families = rules
            .iter()
            .zip(families)
            .enumerate()
            .map(|(i, (rule, f))| {
                let names = labels.iter().chain(&rule.attributes).map(|l| l.name.clone()).collect();
                let (field, template) = (format!("routes[{i}]"), rule.template.text().to_string());
                crate::metrics::naming::RouteNames { rule: i, field, template, families: f, attributes: names }
            })
            .collect();
        let naming = Naming::from_raw(raw.names, route_families)?;
        let mut rules = rules;
        durations_of(&naming, &mut rules, &outcome_labels)?;
        let exclusions = raw
            .exclude
            .iter()
            .enumerate()
            .map(|(i, t)| Template::parse(t).map_err(|reason| ConfigError::new(format!("exclude[{i}]"), reason)))
            .collect::<Result<Vec<_>, _>>()?;
        let openapi = raw.openapi.map(OpenApiConfig::from_raw).transpose()?;
        if !(100..=60_000).contains(&raw.flush_interval_ms) {
            let why = format!("must be between 100 and 60000, got {}", raw.flush_interval_ms);
            return Err(ConfigError::new("flush_interval_ms", why));
        }
        let bounds = |field: &str, given: Option<Vec<f64>>, unit: Unit| match given {
            None => Ok(Bounds::of_unit(unit)),
            Some(list) => Bounds::new(&list).map_err(|reason| ConfigError::new(field, reason)),
        };
        let duration_buckets = bounds("duration_buckets_ms", raw.duration_buckets_ms, Unit::Milliseconds)?;
        let histograms = match raw.histograms {
            RawHistograms::Exact => HistogramMode::Exact,
            RawHistograms::Envoy => HistogramMode::Envoy,
        };
        let slos = crate::slo::validate(raw.slos)?;
        let duration_buckets = with_thresholds(duration_buckets, &slos, histograms)?;
        let size_buckets = bounds("size_buckets_bytes", raw.size_buckets_bytes, Unit::Bytes)?;
        let latency = LatencyConfig::from_raw(raw.latency_quantiles)?;
        check_names(&naming, (&labels, &rules), histograms, &slos)?;
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
            labels,
            header_names: headers,
            naming,
        })
    }
}

/// Attribute labels: distinct names on each route, and no route with more label sets than
/// `max` (its global labels' combinations times its own).
fn check_label_combinations(global: &[AttributeLabel], rules: &[RouteRule], max: u64) -> Result<(), ConfigError> {
    if !(1..=MAX_LABEL_COMBINATIONS_LIMIT).contains(&max) {
        let why = format!("must be between 1 and {MAX_LABEL_COMBINATIONS_LIMIT}, got {max}");
        return Err(ConfigError::new("max_label_combinations", why));
    }
    let routes = std::iter::once(("labels".to_string(), &[][..]))
        .chain(rules.iter().enumerate().map(|(i, r)| (format!("routes[{i}].labels"), &r.attributes[..])));
    for (field, own) in routes {
        let set: Vec<&AttributeLabel> = global.iter().chain(own).collect();
        let twice = set.iter().enumerate().find(|(i, l)| set.iter().take(*i).any(|earlier| earlier.name == l.name));
        if let Some((_, l)) = twice {
            return Err(ConfigError::new(field, format!("label {:?} is named twice", l.name)));
        }
        let combinations = set.iter().fold(1u64, |n, l| n.saturating_mul(u64::from(l.choices())));
        if combinations > max {
            let why = format!(
                "{combinations} combinations of label values (each label's values, other, and its default, multiplied) is more than max_label_combinations {max}"
            );
            return Err(ConfigError::new(field, why));
        }
    }
    Ok(())
}

/// What a naming cannot go with: attribute labels named like one of its labels (Envoy cuts a
/// tag out once, the second pair would end up in the metric's name), Envoy histograms in
/// seconds (they take integers: milliseconds would be published as seconds), SLOs (their
/// rules query routemeter's own names).
fn check_names(
    naming: &Naming,
    (labels, rules): (&[AttributeLabel], &[RouteRule]),
    histograms: HistogramMode,
    slos: &[Slo],
) -> Result<(), ConfigError> {
    let taken = naming.label_names(&[]);
    let global = labels.iter().enumerate().map(|(i, l)| (format!("labels[{i}].name"), l));
    let own = rules.iter().enumerate().flat_map(|(i, r)| {
        r.attributes.iter().enumerate().map(move |(j, l)| (format!("routes[{i}].labels[{j}].name"), l))
    });
    if let Some((field, l)) = global.chain(own).find(|(_, l)| taken.contains(&l.name)) {
        return Err(ConfigError::new(field, format!("{:?} is a label of the names' profile", l.name)));
    }
    if histograms == HistogramMode::Envoy && !naming.seconds_families().is_empty() {
        let why =
            "Envoy histograms take whole numbers (milliseconds); the names publish durations in seconds: use \"exact\"";
        return Err(ConfigError::new("histograms", why));
    }
    if !slos.is_empty() && (naming.profile != crate::metrics::naming::Profile::Routemeter || !naming.routes.is_empty())
    {
        return Err(ConfigError::new("slos", "SLO rules query routemeter's own names: leave \"names\" out"));
    }
    Ok(())
}

/// A duration family with an `outcome` times only that route's transfers of that outcome.
fn durations_of(naming: &Naming, rules: &mut [RouteRule], outcomes: &OutcomeLabels) -> Result<(), ConfigError> {
    for (i, rule) in rules.iter_mut().enumerate() {
        let wanted = naming
            .routes
            .iter()
            .filter(|r| r.rule == i)
            .flat_map(|r| &r.families)
            .find_map(|f| f.outcome.as_deref().map(|o| (f.metric, o)));
        let Some((metric, outcome)) = wanted else { continue };
        let field = format!("routes[{i}].names.{}.outcome", metric.name());
        let Some(transfer) = rule.transfer.as_mut() else {
            return Err(ConfigError::new(field, "only routes with \"kind\": \"upload\" or \"download\" have outcomes"));
        };
        let id =
            outcomes.find(outcome).ok_or_else(|| ConfigError::new(&field, format!("unknown outcome {outcome:?}")))?;
        transfer.durations_of = Some(id);
    }
    Ok(())
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
            return Err(ConfigError::new(format!("slos[{i}].latency_ms"), why));
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
    Bounds::new(&merged).map_err(|reason| {
        ConfigError::new("slos", format!("with the latency thresholds the duration buckets {reason}"))
    })
}

/// serde happily reads a JSON array into a struct field by field (`[["/a"]]` would be a
/// route); a config that is not written with objects is a mistake, so say so.
fn require_objects(value: &serde_json::Value) -> Result<(), ConfigError> {
    let Some(top) = value.as_object() else {
        return Err(ConfigError::new("configuration", "must be a JSON object"));
    };
    if top.get("openapi").is_some_and(|o| !o.is_object()) {
        return Err(ConfigError::new("openapi", "must be a JSON object"));
    }
    if let Some(routes) = top.get("routes").and_then(|r| r.as_array()) {
        for (i, route) in routes.iter().enumerate() {
            if !route.is_object() {
                return Err(ConfigError::new(format!("routes[{i}]"), "must be a JSON object"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
