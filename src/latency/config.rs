//! The `latency_quantiles` section of the plugin configuration, parsed then validated.

use serde::Deserialize;

use crate::config_error::ConfigError;

pub const DEFAULT_QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];
pub const DEFAULT_WINDOW_SECONDS: u64 = 60;
const MAX_QUANTILES: usize = 8;

/// As written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLatency {
    /// Ascending, each strictly between 0 and 1; `[]` switches the gauges off.
    pub quantiles: Vec<f64>,
    pub window_seconds: u64,
}

impl Default for RawLatency {
    fn default() -> Self {
        RawLatency { quantiles: DEFAULT_QUANTILES.to_vec(), window_seconds: DEFAULT_WINDOW_SECONDS }
    }
}

/// A configured quantile and its label value (`0.99`).
#[derive(Debug, Clone, PartialEq)]
pub struct Quantile {
    pub value: f64,
    pub label: String,
}

/// Validated: ascending quantiles over a sliding window.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyConfig {
    pub quantiles: Vec<Quantile>,
    pub window_seconds: u64,
}

impl LatencyConfig {
    /// `None` when the list is empty: no quantile gauges.
    pub fn from_raw(raw: RawLatency) -> Result<Option<LatencyConfig>, ConfigError> {
        if !(10..=3_600).contains(&raw.window_seconds) {
            let why = format!("must be between 10 and 3600, got {}", raw.window_seconds);
            return Err(ConfigError::new("latency_quantiles.window_seconds", why));
        }
        if raw.quantiles.len() > MAX_QUANTILES {
            let why = format!("at most {MAX_QUANTILES}, got {}", raw.quantiles.len());
            return Err(ConfigError::new("latency_quantiles.quantiles", why));
        }
        let mut quantiles: Vec<Quantile> = Vec::new();
        for (i, &q) in raw.quantiles.iter().enumerate() {
            let field = format!("latency_quantiles.quantiles[{i}]");
            // The label is the number as written; four decimals keep it short and exact.
            let label = format!("{q}");
            if !(q > 0.0 && q < 1.0) || label.len() > 6 {
                let why = format!("must be between 0 and 1 (exclusive) with at most 4 decimals, got {label}");
                return Err(ConfigError::new(field, why));
            }
            if quantiles.last().is_some_and(|last| last.value >= q) {
                return Err(ConfigError::new(field, "quantiles must be ascending, without repeats"));
            }
            quantiles.push(Quantile { value: q, label });
        }
        Ok((!quantiles.is_empty()).then_some(LatencyConfig { quantiles, window_seconds: raw.window_seconds }))
    }
}
