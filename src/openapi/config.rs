//! The `openapi` section of the plugin configuration: where the upstream serves its document,
//! parsed (step one, the JSON shape) then validated (step two, the values).

use serde::Deserialize;

use crate::config_error::ConfigError;

/// The largest OpenAPI document the filter reads.
const MAX_OPENAPI_BYTES: u64 = 64 << 20;
const DEFAULT_REFRESH_SECONDS: u64 = 300;

/// Where the upstream serves its OpenAPI document, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOpenApi {
    /// The Envoy cluster to ask (usually the service's own).
    pub cluster: String,
    #[serde(default = "default_path")]
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
fn default_path() -> String {
    "/openapi.json".to_string()
}
fn default_refresh_seconds() -> u64 {
    DEFAULT_REFRESH_SECONDS
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_max_bytes() -> u64 {
    8 << 20
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

fn err(field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(format!("openapi.{field}"), reason)
}

impl OpenApiConfig {
    pub fn from_raw(raw: RawOpenApi) -> Result<OpenApiConfig, ConfigError> {
        let is_name = |s: &str| !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic());
        if !is_name(&raw.cluster) {
            return Err(err("cluster", "must be an Envoy cluster name (1-256 visible characters)"));
        }
        if !raw.path.starts_with('/') || !is_name(&raw.path) {
            return Err(err("path", format!("must be a path starting with '/', got {:?}", raw.path)));
        }
        let authority = raw.authority.unwrap_or_else(|| raw.cluster.clone());
        if !is_name(&authority) {
            return Err(err("authority", "must be a host name (1-256 visible characters)"));
        }
        if !(10..=86_400).contains(&raw.refresh_seconds) {
            return Err(err("refresh_seconds", format!("must be between 10 and 86400, got {}", raw.refresh_seconds)));
        }
        if !(100..=60_000).contains(&raw.timeout_ms) {
            return Err(err("timeout_ms", format!("must be between 100 and 60000, got {}", raw.timeout_ms)));
        }
        if !(1_024..=MAX_OPENAPI_BYTES).contains(&raw.max_bytes) {
            let why = format!("must be between 1024 and {MAX_OPENAPI_BYTES}, got {}", raw.max_bytes);
            return Err(err("max_bytes", why));
        }
        if let Some(base) = &raw.base_path {
            if !base.starts_with('/') || base.contains(['{', '}', '?', '#']) {
                return Err(err("base_path", format!("must be a literal path starting with '/', got {base:?}")));
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
}
