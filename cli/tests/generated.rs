//! What the `routemeter` command generates, against the real tools and the committed files:
//! the Istio artefacts and the SLO rules generated from the shipped bootstrap are committed
//! and up to date; for the SLO rules, `promtool check rules` accepts them, and `promtool test
//! rules` proves every generated alert: it fires on a fast burn (page, and ticket), fires on a
//! slow burn (ticket only), stays quiet within budget, and stays quiet when another route
//! burns. The scenarios and what must fire are worked out here from the SRE workbook's
//! policy, not from the generator.

// A test crate: unwrap, expect and panic are how it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use routemeter::slo::{Sli, Slo};
use routemeter_cli::{plugin_config, slo};

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

fn shipped() -> Vec<Slo> {
    plugin_config(&std::fs::read(repo("envoy/envoy.yaml")).unwrap()).unwrap().slos
}

fn promtool(args: &[&str]) -> Result<String, String> {
    let out = Command::new("promtool").args(args).output().map_err(|e| format!("promtool: {e}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn the_committed_rules_and_dashboard_are_what_the_shipped_configuration_generates() {
    let slos = shipped();
    assert_eq!(slos.len(), 3);
    let committed = std::fs::read_to_string(repo("monitoring/prometheus/slo-rules.yml")).unwrap();
    assert!(committed == slo::rules(&slos), "monitoring/prometheus/slo-rules.yml is stale: run `make slo`");
    let committed = std::fs::read_to_string(repo("monitoring/grafana/slo.json")).unwrap();
    assert!(committed == slo::dashboard(&slos), "monitoring/grafana/slo.json is stale: run `make slo`");
}

/// Events per minute in every scenario.
const RATE: f64 = 1000.0;
const OTHER_ROUTE: &str = "/elsewhere/{id}";

/// Counter series for `route` with `bad` of `RATE` events a minute bad, for `minutes`.
fn series(slo: &Slo, route: &str, bad: f64, minutes: u32) -> String {
    let good = RATE - bad;
    let line = |name: &str, labels: &str, per_minute: f64| {
        format!("      - series: '{name}{{route=\"{route}\",method=\"GET\"{labels}}}'\n        values: '0+{per_minute}x{minutes}'\n")
    };
    match slo.sli {
        Sli::Availability { .. } => {
            line("http_requests_total", ",status=\"200\"", good) + &line("http_requests_total", ",status=\"503\"", bad)
        }
        Sli::Latency { threshold_ms } => {
            line("http_request_duration_milliseconds_count", "", RATE)
                + &line("http_request_duration_milliseconds_bucket", &format!(",le=\"{threshold_ms}\""), good)
        }
    }
}

/// The alert the policy demands for `slo` on `route` at `severity`, as promtool expects it.
fn expected(slo: &Slo, route: &str, severity: &str) -> String {
    let kind = match slo.sli {
        Sli::Availability { .. } => "errors".to_string(),
        Sli::Latency { threshold_ms } => format!("requests slower than {threshold_ms} ms"),
    };
    let objective = format!("{:.4}", slo.objective * 100.0).trim_end_matches('0').trim_end_matches('.').to_string();
    let summary = format!("{kind} are burning the error budget of {} objective {objective} % ({severity})", slo.name);
    let level = if severity == "page" { "critical" } else { "warning" };
    format!(
        "          - exp_labels: {{route: \"{route}\", severity: {level}, sloth_id: routemeter-{n}, sloth_service: routemeter, \
         sloth_severity: {severity}, sloth_slo: {n}}}\n            exp_annotations: {{summary: \"{summary}\"}}\n",
        n = slo.name
    )
}

/// One promtool test group: `burning` of the route's events bad (the other route's at
/// `other_bad`), evaluated at `at`, with the alerts that must be firing then.
fn group(slo: &Slo, name: &str, burning: f64, other_bad: f64, at: &str, severities: &[&str]) -> String {
    let route = slo.route.as_deref().unwrap_or("/covered/{id}");
    let minutes = 8 * 60;
    let mut g = format!("  - name: {name}\n    interval: 1m\n    input_series:\n");
    g += &series(slo, route, burning * RATE, minutes);
    g += &series(slo, OTHER_ROUTE, other_bad * RATE, minutes);
    write!(g, "    alert_rule_test:\n      - eval_time: {at}\n        alertname: {}\n", slo::ALERT).unwrap();
    let mut alerts: Vec<String> = severities.iter().map(|s| expected(slo, route, s)).collect();
    if slo.route.is_none() && other_bad > 0.0 {
        alerts.extend(severities.iter().map(|s| expected(slo, OTHER_ROUTE, s)));
    }
    if alerts.is_empty() {
        g += "        exp_alerts: []\n";
    } else {
        g += "        exp_alerts:\n";
        alerts.iter().for_each(|a| g += a);
    }
    g
}

#[test]
fn promtool_proves_every_generated_alert() {
    if promtool(&["--version"]).is_err() {
        eprintln!("SKIPPED: promtool not found (apt-get install prometheus)");
        return;
    }
    let slos = shipped();
    let dir = std::env::temp_dir().join(format!("routemeter-slo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("slo-rules.yml");
    std::fs::write(&rules, slo::rules(&slos)).unwrap();
    promtool(&["check", "rules", rules.to_str().unwrap()]).unwrap();

    let mut tests = String::from("rule_files:\n  - slo-rules.yml\nevaluation_interval: 1m\ntests:\n");
    for slo in &slos {
        let b = 1.0 - slo.objective;
        let n = &slo.name;
        // 20x the budget: past the page thresholds (14.4x over 1 h, 6x over 6 h) and the
        // ticket ones (3x, 1x) once the long windows hold it.
        tests += &group(slo, &format!("{n} fast burn"), (20.0 * b).min(1.0), 0.0, "2h", &["page", "ticket"]);
        // 2x: under both page rates and under 3x, over 1x across 6 h and 3 d: ticket only.
        tests += &group(slo, &format!("{n} slow burn"), 2.0 * b, 0.0, "7h", &["ticket"]);
        tests += &group(slo, &format!("{n} within budget"), 0.5 * b, 0.0, "7h", &[]);
        tests += &group(slo, &format!("{n} another route burns"), 0.0, 1.0, "2h", &[]);
    }
    let file = dir.join("slo-rules_test.yml");
    std::fs::write(&file, &tests).unwrap();
    let out = promtool(&["test", "rules", file.to_str().unwrap()]).unwrap_or_else(|e| panic!("{e}\n{tests}"));
    assert!(out.contains("SUCCESS"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_committed_istio_artefacts_are_what_the_shipped_bootstrap_generates() {
    let bootstrap: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(repo("envoy/envoy.yaml")).unwrap()).unwrap();
    for (name, text) in routemeter_cli::istio::artefacts(&bootstrap).unwrap() {
        let committed = std::fs::read_to_string(repo(&format!("envoy/istio/{name}"))).unwrap();
        assert!(committed == text, "envoy/istio/{name} is stale: run `make istio`");
    }
}
