//! The shapes of the series a configuration can publish: a metric's kind, its name and its
//! label names, without the label values. proxy-wasm defines a series when it first appears,
//! by its stat name ([`super::name`]); Envoy's dynamic modules freeze metric definitions once
//! a filter configuration is made, so the native glue defines every shape up front and
//! emits a series as its shape plus label values ([`split`] takes a stat name apart).
//!
//! The shapes come from [`Naming::stat_name`] itself, asked for every metric, part, route
//! (any learned route, each configured one: a route family renames and drops labels), status
//! label variant and attribute label set the configuration has, so they cannot drift from the
//! names the registry defines. Label values do not change a shape; a shape defined and never
//! used costs Envoy nothing until a value is emitted.

use std::collections::BTreeSet;

use super::naming::{Naming, ERROR_TYPE};
use super::{LabelKey, Metric, Part};
use crate::host::MetricKind;

/// A series' shape: its name and label names, sorted (the host emits values in this order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shape {
    pub kind: MetricKind,
    pub name: String,
    pub labels: Vec<String>,
}

/// A stat name taken apart: `(name, [(label, value)])` with the labels sorted by name, or
/// `None` if it is not a `key=.=value;.;` sequence followed by a name.
pub fn split(stat_name: &str) -> Option<(&str, Vec<(&str, &str)>)> {
    let mut labels = Vec::new();
    let mut rest = stat_name;
    while let Some(end) = rest.find(";.;") {
        let (pair, tail) = rest.split_at(end);
        labels.push(pair.split_once("=.=")?);
        rest = tail.get(3..)?;
    }
    if rest.is_empty() || rest.contains("=.=") {
        return None;
    }
    labels.sort_unstable();
    Some((rest, labels))
}

/// What decides a configuration's shapes (the configuration assembles it: `Config::series_shapes`).
pub struct Published<'a> {
    pub naming: &'a Naming,
    /// (route label, its attribute label names): any route with the global labels, then
    /// each configured rule with its own (a rule may have its own family names).
    pub routes: Vec<(&'a str, Vec<&'a str>)>,
    /// Whether OpenAPI metrics are published (an OpenAPI source is configured).
    pub openapi: bool,
}

/// Every shape a configuration can publish, each once.
pub fn shapes(published: &Published) -> Vec<Shape> {
    let Published { naming, routes, openapi } = published;
    let mut statuses: Vec<Vec<(&str, &str)>> = vec![Vec::new()];
    if let Some(status) = naming.profile.histogram_status_label() {
        statuses.push(vec![(status, "200")]);
        statuses.push(vec![(status, "500"), (ERROR_TYPE, "500")]);
        statuses.push(vec![(status, "_OTHER")]);
    }
    let mut out = BTreeSet::new();
    // A shape without labels is a stat from the moment it is defined (Envoy makes labelled
    // stats at their first value): only what the configuration publishes.
    let publishes = |m: Metric| *openapi || !matches!(m, Metric::OpenApiFetches | Metric::OpenApiRoutes);
    for metric in Metric::ALL.into_iter().filter(|m| publishes(*m)) {
        for (route, attributes) in routes {
            let values: Vec<&str> = metric
                .labels()
                .iter()
                .map(|key| match key {
                    LabelKey::Route => *route,
                    LabelKey::Method => "GET",
                    LabelKey::Status => "200",
                    LabelKey::Le => "1",
                    LabelKey::Quantile => "0.5",
                })
                .collect();
            let attributes: Vec<(&str, &str)> = attributes.iter().map(|a| (*a, "x")).collect();
            for status in &statuses {
                for with_attributes in [false, true] {
                    let mut extra = status.clone();
                    if with_attributes {
                        extra.extend(&attributes);
                    }
                    // Histograms: an Envoy histogram, or the counters of an exact one.
                    let parts: &[Part] = match metric.kind() {
                        MetricKind::Histogram => &[Part::Whole, Part::Bucket("1"), Part::Sum, Part::Count],
                        _ => &[Part::Whole],
                    };
                    for &part in parts {
                        let kind = match part {
                            Part::Whole => metric.kind(),
                            _ => MetricKind::Counter,
                        };
                        let stat = naming.stat_name(metric, part, &values, &extra);
                        if let Some((name, labels)) = split(&stat) {
                            let labels = labels.iter().map(|(k, _)| k.to_string()).collect();
                            out.insert(Shape { kind, name: name.to_string(), labels });
                        }
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn split_takes_a_stat_name_apart() {
        assert_eq!(
            split("route=.=/a/{id};.;method=.=GET;.;http_requests_total"),
            Some(("http_requests_total", vec![("method", "GET"), ("route", "/a/{id}")]))
        );
        assert_eq!(split("routemeter_config_invalid"), Some(("routemeter_config_invalid", vec![])));
        assert_eq!(split("route=/a;.;x"), None);
        assert_eq!(split("route=.=/a;.;"), None);
        assert_eq!(split(""), None);
    }

    fn shape(kind: MetricKind, name: &str, labels: &[&str]) -> Shape {
        Shape { kind, name: name.into(), labels: labels.iter().map(|l| l.to_string()).collect() }
    }

    #[test]
    fn the_empty_configuration_has_routemeters_names() {
        let config = Config::from_json(b"{}").unwrap();
        let got = config.series_shapes();
        use MetricKind::{Counter, Gauge, Histogram};
        for want in [
            shape(Counter, "http_requests_total", &["method", "route", "status"]),
            shape(Counter, "http_request_duration_milliseconds_bucket", &["le", "method", "route"]),
            shape(Counter, "http_request_duration_milliseconds_sum", &["method", "route"]),
            shape(Counter, "http_request_duration_milliseconds_count", &["method", "route"]),
            shape(Histogram, "http_request_duration_milliseconds", &["method", "route"]),
            shape(Gauge, "http_requests_in_progress", &["method", "route"]),
            shape(Gauge, "routemeter_config_invalid", &[]),
        ] {
            assert!(got.contains(&want), "{want:?} not in {got:#?}");
        }
        // Each shape once, whatever the route.
        let names: BTreeSet<_> = got.iter().collect();
        assert_eq!(names.len(), got.len());
    }

    #[test]
    fn every_series_the_registry_can_name_has_its_shape() {
        // A route family without `route` and `method`, attribute labels, OpenTelemetry's
        // status labels on request histograms.
        let config = Config::from_json(
            br#"{"names": {"profile": "opentelemetry"},
                "labels": [{"name": "tenant", "header": "x-tenant", "values": ["a"]}],
                "routes": [{"template": "/convert", "methods": ["POST"],
                            "labels": [{"name": "format", "query": "output_format", "values": ["csv"]}]}]}"#,
        )
        .unwrap();
        let got = config.series_shapes();
        let has = |stat: &str, kind| {
            let (name, labels) = split(stat).unwrap();
            let labels = labels.iter().map(|(k, _)| k.to_string()).collect();
            got.contains(&Shape { kind, name: name.into(), labels })
        };
        let naming = &config.naming;
        let stat = naming.stat_name(
            Metric::RequestDuration,
            Part::Bucket("5"),
            &["POST", "/convert"],
            &[("http_response_status_code", "503"), (ERROR_TYPE, "503"), ("tenant", "a"), ("format", "csv")],
        );
        assert!(has(&stat, MetricKind::Counter), "{stat}");
        let stat =
            naming.stat_name(Metric::RequestsInProgress, Part::Whole, &["GET", "/x/{id}"], &[("tenant", "other")]);
        assert!(has(&stat, MetricKind::Gauge), "{stat}");
    }
}
