//! The shipped monitoring (monitoring/): promtool checks of the scrape config and rules, the
//! rules' unit tests, and end to end: demo + Envoy + a real Prometheus scraping Envoy's admin
//! endpoint + a real Alertmanager whose webhook is served here. A 5xx burst must fire
//! RoutemeterHighErrorRate and reach the webhook, every dashboard query must return data,
//! and the alert must resolve after the failures stop. A latency burst must page through
//! the generated SLO rules (`routemeter slo`), with the exact error budget of the ledger.
//!
//! Prometheus and Alertmanager come from Debian (`make test` installs them); where they
//! cannot be installed these tests say SKIPPED and pass.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use testkit::alerting::{query, Monitoring};
use testkit::bootstrap::repo_root;
use testkit::client::{self, Body, Request};
use testkit::stack::{Stack, StackOptions};

const TOOLS: [&str; 3] = ["promtool", "prometheus", "prometheus-alertmanager"];

/// The Debian tools, or why the test cannot run.
fn tools() -> Result<(), String> {
    for tool in TOOLS {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Err(format!("{tool} not found (apt-get install prometheus prometheus-alertmanager)"));
        }
    }
    Ok(())
}

macro_rules! require_tools {
    () => {
        if let Err(why) = tools() {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
}

fn monitoring(file: &str) -> PathBuf {
    repo_root().join("monitoring").join(file)
}

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool").args(args).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn promtool_checks_the_scrape_config() {
    require_tools!();
    let out = promtool(&["check", "config", monitoring("prometheus/prometheus.yml").to_str().unwrap()]);
    assert!(out.contains("SUCCESS: 2 rule files found"), "{out}");
}

#[test]
fn promtool_checks_the_rules() {
    require_tools!();
    let out = promtool(&["check", "rules", monitoring("prometheus/rules.yml").to_str().unwrap()]);
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
}

#[test]
fn every_alert_fires_and_stays_quiet_in_promtool_unit_tests() {
    require_tools!();
    let out = promtool(&["test", "rules", monitoring("prometheus/rules_test.yml").to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
    // Every alert of rules.yml has a test case.
    let rules = fs::read_to_string(monitoring("prometheus/rules.yml")).unwrap();
    let tests = fs::read_to_string(monitoring("prometheus/rules_test.yml")).unwrap();
    for alert in rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")) {
        assert!(tests.contains(&format!("alertname: {alert}")), "no unit test for {alert}");
    }
}

#[test]
fn error_burst_fires_the_alert_dashboards_have_data_and_it_resolves() {
    require_tools!();
    let stack = Stack::start(StackOptions::default());
    let dir = std::env::temp_dir().join(format!("routemeter-monitoring-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();

    // The shipped rules with windows of seconds instead of minutes, so the alert can fire and
    // resolve within the test.
    let rules = fs::read_to_string(monitoring("prometheus/rules.yml"))
        .unwrap()
        .replace("[5m]", "[10s]")
        .replace("[10m]", "[10s]")
        .replace("for: 5m", "for: 2s")
        .replace("for: 10m", "for: 2s")
        .replace("for: 2m", "for: 2s")
        .replace("for: 1m", "for: 2s");
    let running = Monitoring::start(&dir, stack.admin, &[("rules.yml", rules)]);
    let (prom_addr, hook) = (running.prometheus, &running.hook);

    // Traffic until the end of the test; in phase 1 the status route answers 500 and every
    // good upload is followed by an invalid one.
    let phase = Arc::new(AtomicU8::new(0));
    let target = stack.listener;
    let traffic = {
        let phase = phase.clone();
        std::thread::spawn(move || {
            let up =
                client::send(target, &Request::post("/api/v1/upload?filename=a.xlsx", Body::Sized(20_000))).unwrap();
            let id =
                serde_json::from_str::<serde_json::Value>(&up.text()).unwrap()["job_id"].as_str().unwrap().to_string();
            while phase.load(Ordering::SeqCst) < 3 {
                let failing = phase.load(Ordering::SeqCst) == 1;
                let status = if failing {
                    format!("/api/v1/status/{id}?force_status=500")
                } else {
                    format!("/api/v1/status/{id}")
                };
                let _ = client::send(target, &Request::get(&status));
                let _ = client::send(target, &Request::get(&format!("/api/v1/download/{id}")));
                let _ = client::send(target, &Request::post("/api/v1/upload?filename=good.xlsx", Body::Sized(3_000)));
                if failing {
                    let _ = client::send(target, &Request::post("/api/v1/upload?filename=bad.pdf", Body::Sized(3_000)));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    std::thread::sleep(Duration::from_secs(4));
    phase.store(1, Ordering::SeqCst);
    let alert = |state| {
        hook.wait_for(
            "RoutemeterHighErrorRate",
            &[("route", "/api/v1/status/{job_id}")],
            state,
            Duration::from_secs(90),
        )
    };
    alert("firing");

    // Every dashboard query returns data now (Grafana's variables filled in as it would).
    let dashboard: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(monitoring("grafana/routemeter.json")).unwrap()).unwrap();
    let mut checked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let promql = expr.replace("$__rate_interval", "15s").replace("$__range", "5m").replace("$route", ".*");
            let result = query(prom_addr, &promql);
            assert!(!result.is_empty(), "panel {:?}: no data for {promql}", panel["title"]);
            checked += 1;
        }
    }
    assert_eq!(checked, 15);
    let status_route = r#"route="/api/v1/status/{job_id}""#;
    let error_rate = query(
        prom_addr,
        &format!(
            r#"sum by (route) (rate(http_requests_total{{{status_route},status=~"5..|0"}}[15s])) / sum by (route) (rate(http_requests_total{{{status_route}}}[15s]))"#
        ),
    );
    assert!(error_rate[0].1 > 0.05, "{error_rate:?}");
    let upload_success =
        query(prom_addr, r#"sum(rate(uploads_total{status="success"}[15s])) / sum(rate(uploads_total[15s]))"#);
    assert!(upload_success[0].1 < 1.0 && upload_success[0].1 > 0.0, "{upload_success:?}");
    let failures = query(prom_addr, r#"sum by (status) (increase(uploads_total{status!="success"}[5m]))"#);
    assert_eq!(
        failures.iter().map(|(m, _)| m["status"].as_str().unwrap().to_string()).collect::<Vec<_>>(),
        vec!["failed_validation"]
    );
    assert_eq!(query(prom_addr, "max(routemeter_config_invalid)")[0].1, 0.0);

    // The burst ends: the alert resolves and Alertmanager says so.
    phase.store(2, Ordering::SeqCst);
    alert("resolved");
    phase.store(3, Ordering::SeqCst);
    traffic.join().unwrap();
    let _ = fs::remove_dir_all(&dir);
}

/// The generated SLO rules (`monitoring/prometheus/slo-rules.yml`, checked up to date by the
/// cli's tests) with every window divided by 30 (5 m -> 10 s ... 30 d -> 24 h), so that the
/// status route's latency objective (99 % within 250 ms) pages within seconds.
fn scaled_slo_rules() -> String {
    let mut rules = fs::read_to_string(monitoring("prometheus/slo-rules.yml")).unwrap();
    for (from, to) in [
        ("5m", "10s"),
        ("30m", "60s"),
        ("1h", "120s"),
        ("2h", "240s"),
        ("6h", "720s"),
        ("1d", "48m"),
        ("3d", "144m"),
        ("30d", "1440m"),
    ] {
        rules = rules.replace(&format!("[{from}]"), &format!("[{to}]"));
    }
    rules
}

/// End to end: a burst of slow responses on the status route burns its latency objective's
/// budget; the generated page alert reaches Alertmanager's webhook with the route and the
/// objective, the exact error-budget figure equals the client's ledger, and the alert
/// resolves when the responses are fast again.
#[test]
fn a_latency_burst_pages_through_the_generated_slo_alerts_and_resolves() {
    require_tools!();
    const STATUS: &str = "/api/v1/status/{job_id}";
    const SLO: &str = "api-v1-status-job-id-latency-250ms";
    const ALERT: &str = "RoutemeterErrorBudgetBurn";
    let stack = Stack::start(StackOptions::default());
    let dir = std::env::temp_dir().join(format!("routemeter-slo-e2e-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let running = Monitoring::start(&dir, stack.admin, &[("slo-rules.yml", scaled_slo_rules())]);
    let up = client::send(stack.listener, &Request::post("/api/v1/upload?filename=a.xlsx", Body::Sized(100))).unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&up.text()).unwrap()["job_id"].as_str().unwrap().to_string();

    // Phase 0: fast answers only; 1: two clients also ask for 400 ms answers (over the
    // 250 ms threshold); 2: fast only again; 3: stop. Each status request is in the ledger.
    let phase = Arc::new(AtomicU8::new(0));
    let (good, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let target = stack.listener;
    let client = |slow: bool| {
        let (phase, good, bad, id) = (phase.clone(), good.clone(), bad.clone(), id.clone());
        std::thread::spawn(move || loop {
            let p = phase.load(Ordering::SeqCst);
            if p == 3 {
                return;
            }
            if slow && p != 1 {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let path = if slow { format!("/api/v1/status/{id}?delay_ms=400") } else { format!("/api/v1/status/{id}") };
            assert_eq!(client::send(target, &Request::get(&path)).unwrap().status, 200);
            (if slow { &bad } else { &good }).fetch_add(1, Ordering::SeqCst);
            if !slow {
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let clients = [client(false), client(true), client(true)];
    std::thread::sleep(Duration::from_secs(5));
    phase.store(1, Ordering::SeqCst);
    let labels = [("route", STATUS), ("sloth_slo", SLO), ("sloth_severity", "page")];
    let hook = &running.hook;
    hook.wait_for(ALERT, &labels, "firing", Duration::from_secs(90));
    phase.store(2, Ordering::SeqCst);
    hook.wait_for(ALERT, &labels, "resolved", Duration::from_secs(120));
    phase.store(3, Ordering::SeqCst);
    clients.into_iter().for_each(|c| c.join().unwrap());

    // Exact: every status request is an event, the slow ones are the bad ones.
    let (good, bad) = (good.load(Ordering::SeqCst) as f64, bad.load(Ordering::SeqCst) as f64);
    let selector = format!("{{sloth_slo=\"{SLO}\",route=\"{STATUS}\"}}");
    let value = |q: &str| query(running.prometheus, q).first().map(|(_, v)| *v);
    let settled = testkit::process::wait_until(Duration::from_secs(20), || {
        value(&format!("slo:sli_events:total{selector}")) == Some(good + bad)
    });
    assert!(settled, "events {:?}, ledger {}", value(&format!("slo:sli_events:total{selector}")), good + bad);
    assert_eq!(value(&format!("slo:sli_bad_events:total{selector}")), Some(bad));
    let remaining = value(&format!("slo:error_budget_remaining_since_start:ratio{selector}")).unwrap();
    let want = 1.0 - (bad / (good + bad)) / 0.01;
    assert!((remaining - want).abs() < 1e-12, "error budget remaining {remaining}, ledger says {want}");
    assert!(bad > 0.0 && remaining < 0.0, "the burst spent more than the whole budget: {remaining}");
    let _ = fs::remove_dir_all(&dir);
}

/// The compatibility rules `routemeter compat` generated for the seed-convention demo load in
/// Prometheus, and serve the sum in seconds exactly from the filter's milliseconds.
#[test]
fn compat_rules_serve_the_sum_in_seconds() {
    require_tools!();
    let rules = monitoring("compat/rules.yml");
    let out = promtool(&["check", "rules", rules.to_str().unwrap()]);
    assert!(out.contains("SUCCESS: 1 rules found"), "{out}");
    let dir = std::env::temp_dir().join(format!("routemeter-compat-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let test = format!(
        r#"rule_files: ["{}"]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'http_request_duration_milliseconds_sum{{method="GET",endpoint="/api/v1/status/{{job_id}}"}}'
        values: '0 1537 4001'
    promql_expr_test:
      - expr: http_request_duration_seconds_sum
        eval_time: 2m
        exp_samples:
          - labels: 'http_request_duration_seconds_sum{{method="GET",endpoint="/api/v1/status/{{job_id}}"}}'
            value: 4.001
"#,
        rules.display()
    );
    fs::write(dir.join("compat_test.yml"), test).unwrap();
    let out = promtool(&["test", "rules", dir.join("compat_test.yml").to_str().unwrap()]);
    assert!(out.contains("SUCCESS"), "{out}");
    let _ = fs::remove_dir_all(&dir);
}
