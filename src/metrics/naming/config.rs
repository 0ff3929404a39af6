//! The `names` section (a profile and a prefix) and a route's `names` (its own families),
//! as written, then validated. Errors name the field.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::metrics::Metric;

use super::{Family, Naming, Profile, RouteFamilies};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawNames {
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
}

/// A route family: a name, or a name and the attribute labels it keeps.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawFamily {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        labels: Option<Vec<String>>,
        /// Durations only: record only the route's transfers with this outcome.
        #[serde(default)]
        outcome: Option<String>,
    },
}

/// A route's `names` as written, with what checking them needs: its field (`routes[2]`),
/// its template, and the attribute labels it has.
pub struct RouteNames {
    pub field: String,
    pub template: String,
    pub families: BTreeMap<String, RawFamily>,
    pub attributes: Vec<String>,
}

/// Metrics a route may publish under a name of its own.
const PER_ROUTE: [Metric; 8] = [
    Metric::RequestsTotal,
    Metric::RequestDuration,
    Metric::RequestsInProgress,
    Metric::RequestBodyBytes,
    Metric::ResponseBodyBytes,
    Metric::UploadsTotal,
    Metric::UploadFileSize,
    Metric::DownloadsTotal,
];

impl Naming {
    /// Step two for `names` and the routes' families: `routes` holds, per rule, its field,
    /// its template, its raw families and the attribute labels it has.
    pub fn from_raw(raw: RawNames, routes: Vec<RouteNames>) -> Result<Naming, ConfigError> {
        let profile = match raw.profile.as_deref() {
            None => Profile::Routemeter,
            Some(p) => Profile::from_config(p).ok_or_else(|| {
                ConfigError::new("names.profile", format!("unknown profile {p:?}; expected one of {}", Profile::NAMES))
            })?,
        };
        if let Some(prefix) = &raw.prefix {
            if profile != Profile::PrometheusClient {
                return Err(ConfigError::new("names.prefix", "only the prometheus_client profile takes a prefix"));
            }
            if !is_metric_name(prefix) || !prefix.ends_with('_') {
                let why =
                    format!("prefix {prefix:?} must be a metric name prefix ending in '_' (letters, digits, '_')");
                return Err(ConfigError::new("names.prefix", why));
            }
        }
        let mut families = Vec::new();
        for RouteNames { field, template: route, families: raw_families, attributes } in routes {
            if raw_families.is_empty() {
                continue;
            }
            let mut list = Vec::new();
            for (key, family) in raw_families {
                let at = format!("{field}.names.{key}");
                let metric = PER_ROUTE.into_iter().find(|m| m.name() == key).ok_or_else(|| {
                    let known: Vec<&str> = PER_ROUTE.iter().map(|m| m.name()).collect();
                    ConfigError::new(&at, format!("not a per-route metric; expected one of {}", known.join(", ")))
                })?;
                let (name, labels, outcome) = match family {
                    RawFamily::Name(name) => (name, None, None),
                    RawFamily::Full { name, labels, outcome } => (name, labels, outcome),
                };
                if outcome.is_some() && metric != Metric::RequestDuration {
                    return Err(ConfigError::new(format!("{at}.outcome"), "only a duration family takes an outcome"));
                }
                if !is_metric_name(&name) {
                    return Err(ConfigError::new(&at, format!("{name:?} is not a metric name (letters, digits, '_')")));
                }
                if metric == Metric::RequestDuration && !(name.ends_with("_seconds") || name.ends_with("_milliseconds"))
                {
                    let why = format!("{name:?}: a duration's name ends in _seconds or _milliseconds (its unit)");
                    return Err(ConfigError::new(&at, why));
                }
                if let Some(missing) = labels.iter().flatten().find(|l| !attributes.contains(l)) {
                    let why =
                        format!("label {missing:?} is not one of this route's labels ({})", attributes.join(", "));
                    return Err(ConfigError::new(format!("{at}.labels"), why));
                }
                list.push(Family { metric, name, labels, outcome });
            }
            families.push(RouteFamilies { route, families: list });
        }
        Ok(Naming { profile, prefix: raw.prefix, routes: families })
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
