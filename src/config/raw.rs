//! Step one of configuration: the JSON shape, exactly as users write it. Unknown fields are
//! errors (a typo must not silently fall back to a default); values are checked in step two.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const DEFAULT_MAX_ROUTES: u64 = 100;
/// Real APIs go 8-10 segments deep (`/apis/{group}/{version}/namespaces/{ns}/...`).
pub const DEFAULT_MAX_PATH_DEPTH: u64 = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    /// Route templates, first match wins.
    pub routes: Vec<RawRoute>,
    /// Templates of paths not to record at all (health checks, metrics scrapes).
    pub exclude: Vec<String>,
    /// Use Envoy's route name (`xds.route_name`) as the label when no template matches.
    pub use_route_name: bool,
    /// Cap on distinct dynamic route labels, across all workers.
    pub max_routes: u64,
    /// Segments a learned label keeps; deeper paths end in `/*`.
    pub max_path_depth: u64,
    /// Learn which path segments are parameters from the traffic.
    pub learn: bool,
    /// Route templates from the upstream's OpenAPI document.
    pub openapi: Option<RawOpenApi>,
    /// How often what the VM counted goes to Envoy's stats.
    pub flush_interval_ms: u64,
    /// `"exact"` (bucket counters) or `"envoy"` (Envoy histograms, for stats sinks).
    pub histograms: RawHistograms,
    pub duration_buckets_ms: Option<Vec<f64>>,
    pub size_buckets_bytes: Option<Vec<f64>>,
    /// Per-route latency quantiles over a sliding window, merged across workers.
    pub latency_quantiles: RawLatency,
    /// Service level objectives (`routemeter slo` turns them into rules and a dashboard).
    pub slos: Vec<RawSlo>,
}

/// One objective. Availability unless `latency_ms` is given.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    #[serde(default)]
    pub name: Option<String>,
    /// A route label; absent: every route, each on its own.
    #[serde(default)]
    pub route: Option<String>,
    /// Percent of events that must be good, e.g. 99.9.
    pub objective: f64,
    /// Good events finish within this many milliseconds.
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// Statuses of bad events (`"5xx"`, `"503"`, `"0"`: no response); default 5xx and 0.
    #[serde(default)]
    pub bad: Option<Vec<String>>,
    #[serde(default = "default_window_days")]
    pub window_days: u64,
}

fn default_window_days() -> u64 {
    crate::slo::DEFAULT_WINDOW_DAYS
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLatency {
    /// Ascending, each strictly between 0 and 1; `[]` switches the gauges off.
    pub quantiles: Vec<f64>,
    pub window_seconds: u64,
}

pub const DEFAULT_QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];
pub const DEFAULT_WINDOW_SECONDS: u64 = 60;

impl Default for RawLatency {
    fn default() -> Self {
        RawLatency { quantiles: DEFAULT_QUANTILES.to_vec(), window_seconds: DEFAULT_WINDOW_SECONDS }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RawHistograms {
    #[default]
    Exact,
    Envoy,
}

pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1_000;

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            routes: Vec::new(),
            exclude: Vec::new(),
            use_route_name: false,
            max_routes: DEFAULT_MAX_ROUTES,
            max_path_depth: DEFAULT_MAX_PATH_DEPTH,
            learn: true,
            openapi: None,
            flush_interval_ms: DEFAULT_FLUSH_INTERVAL_MS,
            histograms: RawHistograms::Exact,
            duration_buckets_ms: None,
            size_buckets_bytes: None,
            latency_quantiles: RawLatency::default(),
            slos: Vec::new(),
        }
    }
}

/// Where the upstream serves its OpenAPI document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenApi {
    /// The Envoy cluster to ask (usually the service's own).
    pub cluster: String,
    #[serde(default = "default_openapi_path")]
    pub path: String,
    /// The `:authority` of the call; defaults to the cluster name.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_refresh_seconds")]
    pub refresh_seconds: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Larger documents are refused.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Prefix for every path instead of the document's server URL path.
    #[serde(default)]
    pub base_path: Option<String>,
}

/// FastAPI's default.
fn default_openapi_path() -> String {
    "/openapi.json".to_string()
}
pub const DEFAULT_REFRESH_SECONDS: u64 = 300;
fn default_refresh_seconds() -> u64 {
    DEFAULT_REFRESH_SECONDS
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_bytes() -> u64 {
    8 << 20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub template: String,
    /// Only these methods match; absent: every method.
    #[serde(default)]
    pub methods: Option<Vec<String>>,
    #[serde(default)]
    pub kind: Option<RawKind>,
    /// Status (`"410"`, `"0"`) or class (`"4xx"`) -> outcome label.
    #[serde(default)]
    pub outcomes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RawKind {
    Upload,
    Download,
}
