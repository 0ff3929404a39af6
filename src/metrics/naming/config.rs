//! The `names` section (a profile and a prefix) and a route's `names` (its own families),
//! as written, then validated. Errors name the field.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config_error::ConfigError;
use crate::host::MetricKind;
use crate::metrics::{LabelKey, Metric};

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
    /// The rule's index in `routes`.
    pub rule: usize,
    pub field: String,
    pub template: String,
    pub families: BTreeMap<String, RawFamily>,
    pub attributes: Vec<String>,
}

/// Metrics a route may publish under a name of its own: those with a route label (but the
/// latency quantile gauges, which are the route's quantiles, not its counts).
fn per_route() -> impl Iterator<Item = Metric> {
    Metric::ALL.into_iter().filter(|m| m.labels().contains(&LabelKey::Route) && *m != Metric::RequestDurationQuantile)
}

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
        for RouteNames { rule, field, template: route, families: raw_families, attributes } in routes {
            if raw_families.is_empty() {
                continue;
            }
            // Names go with the route label, which two rules of one template share.
            if let Some(other) = families.iter().find(|f: &&RouteFamilies| f.route == route) {
                let why = format!("routes[{}] has the same template and names its metrics already", other.rule);
                return Err(ConfigError::new(format!("{field}.names"), why));
            }
            let mut list = Vec::new();
            for (key, family) in raw_families {
                let at = format!("{field}.names.{key}");
                let metric = per_route().find(|m| m.name() == key).ok_or_else(|| {
                    let known: Vec<&str> = per_route().map(|m| m.name()).collect();
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
            families.push(RouteFamilies { rule, route, families: list });
        }
        let naming = Naming { profile, prefix: raw.prefix, routes: families };
        naming.check_collisions()?;
        Ok(naming)
    }
}

impl Naming {
    /// A family's series must not share a name with another metric's (a counter and a
    /// histogram's `_count` of one name make Prometheus refuse the whole scrape). The same
    /// metric under one name on two routes is fine: their series add up.
    fn check_collisions(&self) -> Result<(), ConfigError> {
        let mut taken: Vec<(String, Metric)> = Vec::new();
        for metric in Metric::ALL {
            taken.extend(
                self.series_names(metric, &self.profile.name(metric, self.prefix.as_deref())).map(|n| (n, metric)),
            );
        }
        for r in &self.routes {
            for f in &r.families {
                let clash = self
                    .series_names(f.metric, &f.name)
                    .find_map(|n| taken.iter().find(|(t, m)| *t == n && *m != f.metric).map(|(t, m)| (t.clone(), *m)));
                if let Some((name, other)) = clash {
                    let why = format!("{:?} gives {name}, which {} already has", f.name, other.name());
                    return Err(ConfigError::new(format!("routes[{}].names.{}", r.rule, f.metric.name()), why));
                }
                taken.extend(self.series_names(f.metric, &f.name).map(|n| (n, f.metric)));
            }
        }
        Ok(())
    }

    /// The names the series of `metric` published as `name` have.
    fn series_names(&self, metric: Metric, name: &str) -> impl Iterator<Item = String> {
        let parts: Vec<String> = match metric.kind() {
            MetricKind::Histogram => {
                let sum = super::sum_name(name, metric == Metric::RequestDuration);
                vec![format!("{name}_bucket"), format!("{name}_count"), sum, name.to_string()]
            }
            _ => vec![name.to_string()],
        };
        parts.into_iter()
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
