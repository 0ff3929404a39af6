//! The names series are published under: routemeter's own, or the names a team's dashboards
//! and alerts already query (a profile), with per-route families for what a route does
//! (seed 000's `excel_conversions_total` from an upload route's outcomes). Only the stat name
//! changes: what is counted, and what a request costs, are the same in every profile,
//! because names are spelled once, when a series is first defined.
//!
//! Dropping a label (a route family has no `route` or `method`; instrumentator's statuses
//! are classes) makes several of routemeter's series one: they get the same stat name, and
//! Envoy keeps one stat per name, so their counts add up there.
//!
//! Durations are whole milliseconds in the VM. A family in seconds gets `le` bounds in
//! seconds (exact: each bound is a configured millisecond bound / 1000) and its sum as
//! `<base>_milliseconds_sum`, because Envoy counters are integers; `routemeter compat`
//! writes the recording rule that serves `<base>_seconds_sum` from it.

mod config;
mod profile;
#[cfg(test)]
mod tests;

pub use config::{RawFamily, RawNames, RouteNames};
pub use profile::{Profile, ERROR_TYPE};

use crate::metrics::name::push_label;
use crate::metrics::{LabelKey, Metric, Part};

/// A route's own families: for this route, these metrics get these names and lose the
/// `route` and `method` labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteFamilies {
    /// The rule's index in `routes`.
    pub rule: usize,
    /// The route label (the rule's template).
    pub route: String,
    pub families: Vec<Family>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub metric: Metric,
    pub name: String,
    /// Attribute labels kept (`None`: all of the route's).
    pub labels: Option<Vec<String>>,
    /// A duration family of a transfer route: only transfers with this outcome label.
    pub outcome: Option<String>,
}

/// How every series of one configuration is named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Naming {
    pub profile: Profile,
    /// Replaces `http_` in the profile's names (`api_` for seed 004).
    pub prefix: Option<String>,
    pub routes: Vec<RouteFamilies>,
}

/// How a histogram's values are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// As counted (milliseconds, bytes).
    Same,
    /// Milliseconds published in seconds.
    Seconds,
}

impl Naming {
    /// The stat name of one series: `values` are the metric's own label values (in
    /// `metric.labels()` order), `extra` its attribute labels.
    pub fn stat_name(&self, metric: Metric, part: Part, values: &[&str], extra: &[(&str, &str)]) -> String {
        let keys = metric.labels();
        let route = keys.iter().zip(values).find(|(k, _)| **k == LabelKey::Route).map(|(_, v)| *v);
        let family = route.and_then(|r| self.family(r, metric));
        let mut name = String::with_capacity(128);
        for (key, value) in keys.iter().zip(values) {
            if family.is_some() && matches!(key, LabelKey::Route | LabelKey::Method) {
                continue;
            }
            let Some(label) = self.profile.label(metric, *key) else { continue };
            match *key {
                LabelKey::Status if self.profile.status_classes(metric) => {
                    let class = status_class(value);
                    push_label(&mut name, label, &class);
                }
                LabelKey::Method => push_label(&mut name, label, self.profile.method(value)),
                _ => push_label(&mut name, label, value),
            }
        }
        // A family's `labels` choose among attribute labels; the status labels that come with
        // them (OpenTelemetry's request histograms) stay.
        let status = |key: &str| Some(key) == self.profile.histogram_status_label() || key == ERROR_TYPE;
        for (key, value) in extra {
            let kept = family.and_then(|f| f.labels.as_ref());
            if kept.is_some_and(|kept| !kept.iter().any(|k| k == key)) && !status(key) {
                continue;
            }
            push_label(&mut name, key, value);
        }
        let base = match family {
            Some(f) => f.name.clone(),
            None => self.profile.name(metric, self.prefix.as_deref()),
        };
        // Only durations are counted in milliseconds; a size named `_seconds` stays bytes.
        let scale = if metric == Metric::RequestDuration { scale_of(&base) } else { Scale::Same };
        if let Part::Bucket(le) = part {
            push_label(&mut name, LabelKey::Le.as_str(), &self.le(le, scale));
        }
        match part {
            Part::Sum => name.push_str(&sum_name(&base, scale == Scale::Seconds)),
            _ => {
                name.push_str(&base);
                name.push_str(part.suffix());
            }
        }
        name
    }

    fn family(&self, route: &str, metric: Metric) -> Option<&Family> {
        let r = self.routes.iter().find(|r| r.route == route)?;
        r.families.iter().find(|f| f.metric == metric)
    }

    /// An `le` label as the profile's clients spell it: Python's prometheus_client writes
    /// `1.0` where Go writes `1` (Prometheus 2 compares `le` as text in matchers).
    fn le(&self, le: &str, scale: Scale) -> String {
        let as_counted = scale == Scale::Same && !self.profile.python_floats();
        let Some(bound) = le.parse::<f64>().ok().filter(|b| b.is_finite() && !as_counted) else {
            return le.to_string();
        };
        let bound = match scale {
            Scale::Same => bound,
            Scale::Seconds => bound / 1000.0,
        };
        match self.profile.python_floats() {
            true => python_float(bound),
            false => format!("{bound}"),
        }
    }

    /// Every label name this naming can publish for a configuration with these attribute
    /// labels: what the bootstrap's `stats_tags` must cut out.
    pub fn label_names(&self, attributes: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for metric in Metric::ALL {
            for key in metric.labels() {
                if let Some(label) = self.profile.label(metric, *key) {
                    names.push(label.to_string());
                }
            }
        }
        if let Some(status) = self.profile.histogram_status_label() {
            names.extend([status.to_string(), ERROR_TYPE.to_string()]);
        }
        names.push(LabelKey::Le.as_str().to_string());
        names.extend(attributes.iter().map(|a| a.to_string()));
        let mut unique = Vec::new();
        for n in names {
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        unique
    }

    /// The histogram families published in seconds (`<base>_seconds`), whose `_sum` needs a
    /// recording rule: their base names.
    pub fn seconds_families(&self) -> Vec<String> {
        let mut out = Vec::new();
        let own = self.profile.name(Metric::RequestDuration, self.prefix.as_deref());
        let routes = self.routes.iter().flat_map(|r| &r.families).map(|f| f.name.clone());
        for name in std::iter::once(own).chain(routes) {
            if name.ends_with("_seconds") && !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }
}

/// The stat name of `metric` with `values` for its labels, in `metric.labels()` order.
/// Only called when a series is first defined.
pub fn stat_name(metric: Metric, values: &[&str]) -> String {
    part_name(metric, Part::Whole, values, &[])
}

/// The stat name of one series of `metric` under routemeter's own names; `extra` labels (a
/// route's attribute labels: `(name, value)`, validated when configured) go after the
/// metric's own, then `le`.
pub fn part_name(metric: Metric, part: Part, values: &[&str], extra: &[(&str, &str)]) -> String {
    debug_assert_eq!(metric.labels().len(), values.len(), "{metric:?}");
    Naming::default().stat_name(metric, part, values, extra)
}

/// A positive bound as prometheus_client writes `le`: Python's float (`1.0`, `2.5`), but
/// with Go's exponent from seven integer digits on (`1e+06`, `2.5e+07`; the fraction of such
/// a number is dropped, as the client drops it).
fn python_float(bound: f64) -> String {
    let mut text = format!("{bound}");
    if !text.contains('.') {
        text.push_str(".0");
    }
    let integer = text.split('.').next().unwrap_or_default();
    if integer.len() <= 6 {
        return text;
    }
    let (first, rest) = integer.split_at_checked(1).unwrap_or((integer, ""));
    let mantissa = format!("{first}.{rest}");
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{mantissa}e+{:02}", integer.len() - 1)
}

/// The sum series of a histogram published as `base`: in seconds, the milliseconds Envoy's
/// integer counters can hold (`x_seconds` -> `x_milliseconds_sum`).
pub fn sum_name(base: &str, seconds: bool) -> String {
    match base.strip_suffix("_seconds").filter(|_| seconds) {
        Some(stem) => format!("{stem}_milliseconds_sum"),
        None => format!("{base}_sum"),
    }
}

fn scale_of(name: &str) -> Scale {
    if name.ends_with("_seconds") {
        Scale::Seconds
    } else {
        Scale::Same
    }
}

/// `2xx` for 200-299; anything else (a code is 100-999, 0 for no response) as its first
/// digit and `xx`.
fn status_class(code: &str) -> String {
    match code.chars().next() {
        Some(d) if code.len() == 3 => format!("{d}xx"),
        _ => code.to_string(),
    }
}
