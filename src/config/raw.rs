//! Step one of configuration: the JSON shape, exactly as users write it. Unknown fields are
//! errors (a typo must not silently fall back to a default); values are checked in step two.

use std::collections::BTreeMap;

use serde::Deserialize;

pub const DEFAULT_MAX_ROUTES: u64 = 100;
pub const DEFAULT_MAX_PATH_DEPTH: u64 = 6;

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
    /// Segments kept by the path heuristic.
    pub max_path_depth: u64,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            routes: Vec::new(),
            exclude: Vec::new(),
            use_route_name: false,
            max_routes: DEFAULT_MAX_ROUTES,
            max_path_depth: DEFAULT_MAX_PATH_DEPTH,
        }
    }
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
