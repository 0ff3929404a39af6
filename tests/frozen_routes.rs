//! Freezing what a fleet learned (#22): two Envoys learn route labels alone from different
//! traffic (each makes its own early guesses), a real Prometheus 2.42 scrapes both,
//! `routemeter routes learned` reads the labels back and keeps the templates with traffic
//! without the guesses, and the frozen configuration, delivered by ECDS, gives both proxies
//! and a new one the same labels from the first request on: no new guess anywhere.
//!
//! Prometheus comes from Debian (`make test` installs it); without it the test says SKIPPED.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use testkit::admin;
use testkit::bootstrap::wasm_path;
use testkit::client::{Connection, Request};
use testkit::process::wait_until;
use testkit::stack::{Stack, StackOptions};

/// `http_requests_total` by route label, once `total` requests are counted.
fn by_route(stack: &Stack, total: u64) -> BTreeMap<String, u64> {
    let page = stack.scrape_until("every request counted", |p| {
        p.series("http_requests_total").map(|x| x.value).sum::<f64>() >= total as f64
    });
    let mut out = BTreeMap::new();
    for s in page.series("http_requests_total") {
        *out.entry(s.labels["route"].clone()).or_default() += s.value as u64;
    }
    out
}

fn send(stack: &Stack, paths: &[String]) {
    let mut conn = Connection::open(stack.listener).unwrap();
    for p in paths {
        conn.send(&Request::get(p)).unwrap();
    }
}

/// Team pages: `/team/{name}/settings` and `/team/overview`. After a singular word learning
/// needs six names before it decides, plus one for the word it confirmed there (`overview`):
/// the first six names are published as they are.
fn team(names: &[&str]) -> Vec<String> {
    // The overview first: a word seen twice before the position converts stays a word.
    let mut paths = vec!["/team/overview".to_string(), "/team/overview".to_string()];
    paths.extend(names.iter().map(|n| format!("/team/{n}/settings")));
    paths
}

fn reloads(stack: &Stack) -> u64 {
    let (_, body) = admin::get(stack.admin, "/stats?filter=extension_config_discovery").unwrap();
    body.lines()
        .filter(|l| l.contains("config_reload:"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_frozen_fleet_gives_the_same_labels_from_the_first_request() {
    let found =
        std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("prometheus").is_file()));
    if !found {
        eprintln!("SKIPPED: prometheus not found (apt-get install prometheus)");
        return;
    }
    let learning = r#"{"latency_quantiles": {"quantiles": []}}"#.to_string();
    let start =
        || Stack::start(StackOptions { ecds: true, plugin_config: Some(learning.clone()), ..StackOptions::default() });
    let fleet = [start(), start()];

    // Each proxy learns alone: its own five guesses, then the template.
    send(&fleet[0], &team(&["alice", "bob", "carol", "dave", "erin", "frank", "grace"]));
    send(&fleet[1], &team(&["heidi", "ivan", "judy", "mallory", "niaj", "olivia", "peggy"]));
    let labels = |s: &Stack| by_route(s, 9).into_keys().collect::<Vec<_>>();
    let first = labels(&fleet[0]);
    assert_eq!(
        first,
        [
            "/team/alice/settings",
            "/team/bob/settings",
            "/team/carol/settings",
            "/team/dave/settings",
            "/team/erin/settings",
            "/team/frank/settings",
            "/team/overview",
            "/team/{id}/settings"
        ]
    );
    assert_eq!(labels(&fleet[1]).len(), 8);

    // Prometheus scrapes both; the fleet keeps serving (new names, the overview).
    let dir = std::env::temp_dir().join(format!("routemeter-frozen-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let targets: Vec<String> = fleet.iter().map(|s| s.admin.to_string()).collect();
    let config = json!({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "fleet", "metrics_path": "/stats/prometheus", "static_configs": [{"targets": targets}]}]
    });
    let (prom_addr, prometheus) = testkit::alerting::start_prometheus(&dir, &config.to_string());
    let serving = AtomicBool::new(true);
    let observed = std::thread::scope(|scope| {
        for (i, stack) in fleet.iter().enumerate() {
            let serving = &serving;
            scope.spawn(move || {
                let mut n = 0;
                while serving.load(Ordering::SeqCst) {
                    send(stack, &team(&[&format!("user{i}x{n}")]));
                    n += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        // Long enough for a window over the serving alone (the guesses stopped before it).
        std::thread::sleep(Duration::from_secs(8));
        let url = format!("http://{prom_addr}");
        let observed = routemeter_cli::learned::observe(&url, ("http_requests_total", "route"), ("10m", "5s"));
        serving.store(false, Ordering::SeqCst);
        observed.unwrap()
    });
    // Both proxies' six guesses, the template, the word.
    assert_eq!(observed.len(), 14, "{observed:?}");
    let frozen = routemeter_cli::learned::freeze(&observed);
    let frozen: Vec<&str> = frozen.iter().map(|t| t.text()).collect();
    assert_eq!(frozen, ["/team/overview", "/team/{id}/settings"]);

    // The frozen templates by ECDS to the fleet, and to a new proxy from its start.
    let routes: Vec<_> = frozen.iter().map(|t| json!({"template": t})).collect();
    let frozen_config = json!({"routes": routes, "latency_quantiles": {"quantiles": []}}).to_string();
    for stack in &fleet {
        let before = reloads(stack);
        stack.reconfigure(&wasm_path(), &frozen_config);
        assert!(wait_until(Duration::from_secs(20), || reloads(stack) > before), "{}", stack.logs());
    }
    let newcomer = Stack::start(StackOptions {
        ecds: true,
        plugin_config: Some(frozen_config.clone()),
        ..StackOptions::default()
    });
    let before: Vec<BTreeMap<String, u64>> = fleet.iter().map(|s| by_route(s, 0)).collect();
    let fresh = team(&["trent", "victor", "walter"]);
    for stack in fleet.iter().chain([&newcomer]) {
        send(stack, &fresh);
    }
    newcomer
        .scrape_until("the fresh requests", |p| p.series("http_requests_total").map(|x| x.value).sum::<f64>() >= 5.0);
    assert_eq!(
        by_route(&newcomer, 5),
        BTreeMap::from([("/team/overview".to_string(), 2), ("/team/{id}/settings".to_string(), 3)])
    );
    for (stack, before) in fleet.iter().zip(&before) {
        let after = stack.scrape_until("the fresh requests", |p| {
            let total: f64 = p.series("http_requests_total").map(|x| x.value).sum();
            total >= before.values().sum::<u64>() as f64 + 5.0
        });
        let mut grown: Vec<(String, u64)> = Vec::new();
        for s in after.series("http_requests_total") {
            let was = before.get(&s.labels["route"]).copied().unwrap_or(0);
            if s.value as u64 > was {
                grown.push((s.labels["route"].clone(), s.value as u64 - was));
            }
        }
        assert_eq!(grown, [("/team/overview".to_string(), 2), ("/team/{id}/settings".to_string(), 3)]);
    }
    drop(prometheus);
    let _ = fs::remove_dir_all(&dir);
}
