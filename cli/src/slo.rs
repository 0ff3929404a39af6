//! `routemeter slo`: the `slos` of a plugin configuration as Prometheus rules and a Grafana
//! dashboard, with Sloth's semantics and names, so its dashboards and habits carry over:
//! - `slo:sli_error:ratio_rate<window>` per route, for 5m, 30m, 1h, 2h, 6h, 1d, 3d and the
//!   period, labelled `sloth_id`, `sloth_service`, `sloth_slo`, `sloth_window`;
//! - the metadata (`slo:objective:ratio`, `slo:error_budget:ratio`, `slo:time_period:days`,
//!   burn rates, `slo:period_error_budget_remaining:ratio`), and the exact event counts since
//!   the counters started (`slo:sli_events:total`, `slo:sli_bad_events:total`,
//!   `slo:error_budget_remaining_since_start:ratio`);
//! - multi-window multi-burn-rate alerts (the SRE workbook's): page when 2 % of the period's
//!   budget goes in 1 h (checked over 5 m too) or 5 % in 6 h (30 m); ticket when 10 % goes in
//!   1 d (2 h) or in 3 d (6 h). For 30 days: 14.4x, 6x, 3x, 1x.
//!
//! Output is deterministic: the same configuration gives the same bytes.

use std::collections::BTreeMap;

use routemeter::slo::{Sli, Slo};
use routemeter::transfer::StatusMatch;
use serde::Serialize;
use serde_json::{json, Value};

pub const SERVICE: &str = "routemeter";
pub const ALERT: &str = "RoutemeterErrorBudgetBurn";
const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// A burn-rate condition: (long window, short window, share of the period's budget spent in
/// the long one).
type Condition = (&'static str, &'static str, f64);

/// (severity, the conditions that raise it).
const POLICY: [(&str, [Condition; 2]); 2] =
    [("page", [("1h", "5m", 0.02), ("6h", "30m", 0.05)]), ("ticket", [("1d", "2h", 0.1), ("3d", "6h", 0.1)])];

#[derive(Serialize)]
struct Rules {
    groups: Vec<Group>,
}

#[derive(Serialize)]
struct Group {
    name: String,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
    expr: String,
    labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

fn hours(window: &str) -> f64 {
    let (n, unit) = window.split_at(window.len() - 1);
    let n: f64 = n.parse().unwrap_or(0.0);
    match unit {
        "m" => n / 60.0,
        "h" => n,
        _ => n * 24.0,
    }
}

/// A number as PromQL and YAML readers expect it: no float noise (`0.005`, not 0.0050000000000000044).
fn num(x: f64) -> String {
    let s = format!("{x:.10}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The burn rate at which `share` of a `period_days` budget goes in `window`.
pub fn factor(share: f64, period_days: u64, window: &str) -> f64 {
    share * period_days as f64 * 24.0 / hours(window)
}

fn status_regex(bad: &[StatusMatch]) -> String {
    let parts: Vec<String> = bad
        .iter()
        .map(|m| match m {
            StatusMatch::Class(d) => format!("{d}.."),
            StatusMatch::Code(c) => c.to_string(),
        })
        .collect();
    parts.join("|")
}

/// The selector of the objective's route (empty: every route).
fn route_matcher(slo: &Slo) -> String {
    slo.route.as_ref().map(|r| format!("route=\"{r}\"")).unwrap_or_default()
}

fn with(matchers: &[&str]) -> String {
    let parts: Vec<&str> = matchers.iter().copied().filter(|m| !m.is_empty()).collect();
    format!("{{{}}}", parts.join(","))
}

/// All events of an objective, and the bad ones (availability) or the good ones (latency:
/// the bucket at the threshold, a bound of the histogram, so exact), as counter selectors.
fn events(slo: &Slo) -> (String, Result<String, String>) {
    let route = route_matcher(slo);
    match &slo.sli {
        Sli::Availability { bad } => {
            let status = format!("status=~\"{}\"", status_regex(bad));
            let all = format!("http_requests_total{}", with(&[&route]));
            (all, Ok(format!("http_requests_total{}", with(&[&route, &status]))))
        }
        Sli::Latency { threshold_ms } => {
            let le = format!("le=\"{threshold_ms}\"");
            let all = format!("http_request_duration_milliseconds_count{}", with(&[&route]));
            (all, Err(format!("http_request_duration_milliseconds_bucket{}", with(&[&route, &le]))))
        }
    }
}

/// (all, bad) summed by route, each selector wrapped by `f` (a `rate`, or nothing). A route
/// with events but no bad ones gets 0, not no series.
fn by_route(slo: &Slo, f: impl Fn(&str) -> String) -> (String, String) {
    let sum = |e: &str| format!("sum by (route) ({})", f(e));
    let (all, other) = events(slo);
    let bad = match other {
        Ok(bad) => format!("({} or 0 * {})", sum(&bad), sum(&all)),
        Err(good) => format!("({} - {})", sum(&all), sum(&good)),
    };
    (sum(&all), bad)
}

fn labels(slo: &Slo, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = [
        ("sloth_id", format!("{SERVICE}-{}", slo.name)),
        ("sloth_service", SERVICE.to_string()),
        ("sloth_slo", slo.name.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

fn record(name: &str, expr: String, labels: BTreeMap<String, String>) -> Rule {
    Rule { record: Some(name.into()), alert: None, expr, labels, annotations: BTreeMap::new() }
}

fn id(slo: &Slo) -> String {
    format!("sloth_id=\"{SERVICE}-{}\"", slo.name)
}

fn groups(slo: &Slo) -> Vec<Group> {
    let period = format!("{}d", slo.window_days);
    let sli = WINDOWS.iter().copied().chain([period.as_str()]).map(|w| {
        let (all, bad) = by_route(slo, |e| format!("rate({e}[{w}])"));
        record(&format!("slo:sli_error:ratio_rate{w}"), format!("{bad}\n/\n{all}"), labels(slo, &[("sloth_window", w)]))
    });
    let budget = num(1.0 - slo.objective);
    let (id, on) = (id(slo), "on (sloth_id, sloth_slo, sloth_service) group_left");
    let (all, bad) = by_route(slo, |e| e.to_string());
    let meta = vec![
        record("slo:objective:ratio", format!("vector({})", num(slo.objective)), labels(slo, &[])),
        record("slo:error_budget:ratio", format!("vector({budget})"), labels(slo, &[])),
        record("slo:time_period:days", format!("vector({})", slo.window_days), labels(slo, &[])),
        record(
            "slo:current_burn_rate:ratio",
            format!("slo:sli_error:ratio_rate5m{{{id}}}\n/ {on}\nslo:error_budget:ratio{{{id}}}"),
            labels(slo, &[]),
        ),
        record(
            "slo:period_burn_rate:ratio",
            format!("slo:sli_error:ratio_rate{period}{{{id}}}\n/ {on}\nslo:error_budget:ratio{{{id}}}"),
            labels(slo, &[]),
        ),
        record(
            "slo:period_error_budget_remaining:ratio",
            format!("1 - slo:period_burn_rate:ratio{{{id}}}"),
            labels(slo, &[]),
        ),
        record("slo:sli_events:total", all, labels(slo, &[])),
        record("slo:sli_bad_events:total", bad, labels(slo, &[])),
        // Exact (no rate extrapolation) while the counters are younger than the period: a
        // cross-check of the period figure, and the figure for a proxy that restarted lately.
        record(
            "slo:error_budget_remaining_since_start:ratio",
            format!(
                "1 - (slo:sli_bad_events:total{{{id}}} / slo:sli_events:total{{{id}}})\n/ {on}\nslo:error_budget:ratio{{{id}}}"
            ),
            labels(slo, &[]),
        ),
    ];
    let alerts = POLICY.iter().map(|(severity, windows)| {
        let conditions: Vec<String> = windows
            .iter()
            .map(|(long, short, share)| {
                let threshold = format!("({} * {budget})", num(factor(*share, slo.window_days, long)));
                let over =
                    |w: &str| format!("max(slo:sli_error:ratio_rate{w}{{{id}}} > {threshold}) without (sloth_window)");
                format!("(\n  {}\n  and\n  {}\n)", over(short), over(long))
            })
            .collect();
        let kind = match slo.sli {
            Sli::Availability { .. } => "errors".to_string(),
            Sli::Latency { threshold_ms } => format!("requests slower than {threshold_ms} ms"),
        };
        let what = format!("{} objective {} %", slo.name, num(slo.objective * 100.0));
        let mut annotations = BTreeMap::new();
        annotations.insert("summary".into(), format!("{kind} are burning the error budget of {what} ({severity})"));
        let severity_label = if *severity == "page" { "critical" } else { "warning" };
        Rule {
            record: None,
            alert: Some(ALERT.into()),
            expr: conditions.join("\nor\n"),
            labels: labels(slo, &[("sloth_severity", severity), ("severity", severity_label)]),
            annotations,
        }
    });
    let group = |kind: &str, rules: Vec<Rule>| Group { name: format!("{SERVICE}-slo-{kind}-{}", slo.name), rules };
    vec![group("sli-recordings", sli.collect()), group("meta-recordings", meta), group("alerts", alerts.collect())]
}

/// The Prometheus rule file for every objective.
pub fn rules(slos: &[Slo]) -> String {
    let rules = Rules { groups: slos.iter().flat_map(groups).collect() };
    let yaml = serde_yaml_ng::to_string(&rules).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"));
    format!("# Generated by `routemeter slo` from the plugin configuration's `slos`. Do not edit.\n{yaml}")
}

fn panel(id: usize, title: &str, kind: &str, expr: String, unit: &str, y: usize, x: usize) -> Value {
    json!({
        "id": id, "type": kind, "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 8, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": "{{route}}"}],
    })
}

/// A Grafana dashboard: per objective, error budget remaining, burn rate, error ratios.
pub fn dashboard(slos: &[Slo]) -> String {
    let mut panels = Vec::new();
    for (i, slo) in slos.iter().enumerate() {
        let (id, y) = (id(slo), i * 9);
        let title = |what: &str| format!("{}: {what}", slo.name);
        panels.push(json!({"id": 100 + i, "type": "row", "title": slo.name, "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}));
        let remaining = format!("slo:period_error_budget_remaining:ratio{{{id}}}");
        panels.push(panel(3 * i + 1, &title("error budget remaining"), "stat", remaining, "percentunit", y + 1, 0));
        panels.push(panel(
            3 * i + 2,
            &title("burn rate (5m)"),
            "timeseries",
            format!("slo:current_burn_rate:ratio{{{id}}}"),
            "none",
            y + 1,
            8,
        ));
        let errors = format!("slo:sli_error:ratio_rate1h{{{id}}}");
        panels.push(panel(3 * i + 3, &title("error ratio (1h)"), "timeseries", errors, "percentunit", y + 1, 16));
    }
    let dashboard = json!({
        "title": "routemeter SLOs",
        "uid": "routemeter-slo",
        "schemaVersion": 39,
        "tags": ["routemeter", "slo"],
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": panels,
    });
    serde_json::to_string_pretty(&dashboard).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workbook_factors_for_thirty_days() {
        let f: Vec<String> =
            POLICY.iter().flat_map(|(_, w)| w.iter().map(|(l, _, s)| num(factor(*s, 30, l)))).collect();
        assert_eq!(f, ["14.4", "6", "3", "1"]);
        assert_eq!(num(factor(0.02, 28, "1h")), "13.44");
        assert_eq!(num(1.0 - 0.995), "0.005");
    }

    #[test]
    fn status_matchers() {
        let bad = [StatusMatch::Class(5), StatusMatch::Code(0), StatusMatch::Code(429)];
        assert_eq!(status_regex(&bad), "5..|0|429");
    }
}
