//! The shipped monitoring (monitoring/): promtool checks of the scrape config and rules, the
//! rules' unit tests, and end to end: demo + Envoy + a real Prometheus scraping Envoy's admin
//! endpoint + a real Alertmanager whose webhook is served here. A 5xx burst must fire
//! RoutemeterHighErrorRate and reach the webhook, every dashboard query must return data,
//! and the alert must resolve after the failures stop.
//!
//! Prometheus and Alertmanager come from Debian (`make test` installs them); where they
//! cannot be installed these tests say SKIPPED and pass.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use testkit::admin;
use testkit::client::{self, Body, Request};
use testkit::alerting::{query, Webhook};
use testkit::bootstrap::repo_root;
use testkit::process::{free_addr, Proc};
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
    assert!(out.contains("SUCCESS: 1 rule files found"), "{out}");
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

fn spawn(name: &str, dir: &Path, cmd: &mut Command) -> Proc {
    Proc::spawn(cmd, &dir.join(format!("{name}.log"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn wait_ready(addr: SocketAddr, proc: &Proc) {
    assert!(admin::wait_ready(addr, "/-/ready", Duration::from_secs(60)), "not ready at {addr}\n{}", proc.log_tail(50));
}

/// Replaces `from` (which must be there) with `to`.
fn swap(text: String, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not found");
    text.replace(from, to)
}

#[test]
fn error_burst_fires_the_alert_dashboards_have_data_and_it_resolves() {
    require_tools!();
    let stack = Stack::start(StackOptions::default());
    let dir = std::env::temp_dir().join(format!("routemeter-monitoring-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();

    // Alertmanager: the shipped config, notifying our webhook without waiting.
    let hook = Webhook::start().unwrap();
    let am_addr = free_addr().unwrap();
    let mut am = fs::read_to_string(monitoring("alertmanager/alertmanager.yml")).unwrap();
    am = swap(am, "http://127.0.0.1:5001/alerts", &format!("http://{}/alerts", hook.addr.unwrap()));
    am = swap(am, "group_wait: 30s", "group_wait: 1s");
    am = swap(am, "group_interval: 5m", "group_interval: 1s");
    fs::write(dir.join("alertmanager.yml"), am).unwrap();
    let am = spawn(
        "alertmanager",
        &dir,
        Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={am_addr}"))
            .arg("--cluster.listen-address="),
    );

    // Prometheus: the shipped config and rules, with 1 s intervals and windows of seconds
    // instead of minutes so the alert can fire and resolve within the test.
    let prom_addr = free_addr().unwrap();
    let mut config = fs::read_to_string(monitoring("prometheus/prometheus.yml")).unwrap();
    config = swap(config, "scrape_interval: 15s", "scrape_interval: 1s");
    config = swap(config, "evaluation_interval: 15s", "evaluation_interval: 1s");
    config = swap(config, "\"127.0.0.1:9093\"", &format!("\"{am_addr}\""));
    config = swap(config, "\"127.0.0.1:9901\"", &format!("\"{}\"", stack.admin));
    fs::write(dir.join("prometheus.yml"), config).unwrap();
    let rules = fs::read_to_string(monitoring("prometheus/rules.yml"))
        .unwrap()
        .replace("[5m]", "[10s]")
        .replace("[10m]", "[10s]")
        .replace("for: 5m", "for: 2s")
        .replace("for: 10m", "for: 2s")
        .replace("for: 2m", "for: 2s")
        .replace("for: 1m", "for: 2s");
    fs::write(dir.join("rules.yml"), rules).unwrap();
    let prom = spawn(
        "prometheus",
        &dir,
        Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .arg(format!("--web.listen-address={prom_addr}")),
    );
    wait_ready(am_addr, &am);
    wait_ready(prom_addr, &prom);

    // Traffic until the end of the test; in phase 1 the status route answers 500 and every
    // good upload is followed by an invalid one.
    let phase = Arc::new(AtomicU8::new(0));
    let target = stack.listener;
    let traffic = {
        let phase = phase.clone();
        std::thread::spawn(move || {
            let up = client::send(target, &Request::post("/api/v1/upload?filename=a.xlsx", Body::Sized(20_000))).unwrap();
            let id = serde_json::from_str::<serde_json::Value>(&up.text()).unwrap()["job_id"].as_str().unwrap().to_string();
            while phase.load(Ordering::SeqCst) < 3 {
                let failing = phase.load(Ordering::SeqCst) == 1;
                let status = if failing { format!("/api/v1/status/{id}?force_status=500") } else { format!("/api/v1/status/{id}") };
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
    hook.wait_for("RoutemeterHighErrorRate", &[("route", "/api/v1/status/{job_id}")], "firing", Duration::from_secs(90));

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
        &format!(r#"sum by (route) (rate(http_requests_total{{{status_route},status=~"5..|0"}}[15s])) / sum by (route) (rate(http_requests_total{{{status_route}}}[15s]))"#),
    );
    assert!(error_rate[0].1 > 0.05, "{error_rate:?}");
    let upload_success = query(prom_addr, r#"sum(rate(uploads_total{status="success"}[15s])) / sum(rate(uploads_total[15s]))"#);
    assert!(upload_success[0].1 < 1.0 && upload_success[0].1 > 0.0, "{upload_success:?}");
    let failures = query(prom_addr, r#"sum by (status) (increase(uploads_total{status!="success"}[5m]))"#);
    assert_eq!(failures.iter().map(|(m, _)| m["status"].as_str().unwrap().to_string()).collect::<Vec<_>>(), vec!["failed_validation"]);
    assert_eq!(query(prom_addr, "max(routemeter_config_invalid)")[0].1, 0.0);

    // The burst ends: the alert resolves and Alertmanager says so.
    phase.store(2, Ordering::SeqCst);
    hook.wait_for("RoutemeterHighErrorRate", &[("route", "/api/v1/status/{job_id}")], "resolved", Duration::from_secs(90));
    phase.store(3, Ordering::SeqCst);
    traffic.join().unwrap();
    let _ = fs::remove_dir_all(&dir);
}
