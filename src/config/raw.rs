//! Step one of configuration: the JSON shape, exactly as users write it. Unknown fields are
//! errors (a typo must not silently fall back to a default); values are checked in step two.
//! Each domain's section has its raw type in that domain.

use serde::Deserialize;

use crate::attribute::RawAttribute;
use crate::latency::RawLatency;
use crate::metrics::naming::RawNames;
use crate::openapi::RawOpenApi;
use crate::route::RawRoute;
use crate::slo::RawSlo;

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
    /// Attribute labels of every route's series.
    pub labels: Vec<RawAttribute>,
    /// The most label sets (combinations of attribute values) one route may have.
    pub max_label_combinations: u64,
    /// The names series are published under (a profile, a prefix).
    pub names: RawNames,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum RawHistograms {
    #[default]
    Exact,
    Envoy,
}

pub const DEFAULT_FLUSH_INTERVAL_MS: u64 = 1_000;
pub const DEFAULT_MAX_LABEL_COMBINATIONS: u64 = 100;

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
            labels: Vec::new(),
            max_label_combinations: DEFAULT_MAX_LABEL_COMBINATIONS,
            names: RawNames::default(),
        }
    }
}
