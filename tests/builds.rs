//! The two builds of one core: the same traffic through the Wasm filter and through the
//! native Envoy dynamic module (`make native`) gives the same series on `/stats/prometheus`:
//! names, label sets, types and values. Durations are real time, so two runs cannot agree on
//! their buckets; for them the series and their counts must agree.
//!
//! Each configuration exercises what decides a series' shape: routemeter's own names, a
//! profile with route families and attribute labels (the seeds'), OpenTelemetry's status
//! labels on request histograms.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use routemeter::metrics::LabelKey;
use routemeter_demo::server::ServeOptions;
use serde_json::{json, Value};
use testkit::prom::Exposition;
use testkit::stack::{Build, Stack, StackOptions};

/// A series as compared: name and labels -> value (`None`: a duration bucket or sum).
type Series = BTreeMap<(String, Vec<(String, String)>), Option<f64>>;

/// routemeter's series on a page (Envoy's own left out), and their types.
fn ours(page: &Exposition) -> (Series, BTreeMap<String, String>) {
    let own = |name: &str| !name.starts_with("envoy_");
    let series = page
        .samples
        .iter()
        .filter(|s| own(&s.name))
        .map(|s| {
            let labels = s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let timed = s.name.contains("duration") && !s.name.ends_with("_count");
            ((s.name.clone(), labels), (!timed).then_some(s.value))
        })
        .collect();
    let types = page.types.iter().filter(|(n, _)| own(n)).map(|(n, t)| (n.clone(), t.clone())).collect();
    (series, types)
}

/// The page once routemeter has flushed everything: five scrapes in a row (a second,
/// ten flushes) the same.
fn settled(stack: &Stack) -> Exposition {
    let mut last: Option<Series> = None;
    let mut same = 0;
    for _ in 0..150 {
        let page = stack.scrape();
        let now = ours(&page).0;
        same = if last.as_ref() == Some(&now) && !now.is_empty() { same + 1 } else { 0 };
        if same == 5 {
            return page;
        }
        last = Some(now);
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the page never settled\n{}", stack.logs());
}

/// The demo mix through `build` with the plugin configuration `config`.
fn run(build: Build, config: &Value) -> (Series, BTreeMap<String, String>) {
    let parsed = routemeter::config::Config::from_json(config.to_string().as_bytes()).unwrap();
    let shipped: Vec<&str> = LabelKey::ALL.iter().map(|k| k.as_str()).collect();
    let extra_tags = routemeter_cli::compat::stats_tags(&parsed)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag_name"].as_str().unwrap().to_string())
        .filter(|n| !shipped.contains(&n.as_str()))
        .collect();
    let stack = Stack::start(StackOptions {
        demo: ServeOptions { max_upload_bytes: 1_000_000, ..StackOptions::default().demo },
        plugin_config: Some(config.to_string()),
        extra_tags,
        build,
        ..StackOptions::default()
    });
    let sent = testkit::traffic::demo_mix(stack.listener).unwrap();
    assert_eq!(sent.len(), 24, "{sent:?}");
    ours(&settled(&stack))
}

fn with_flush(mut config: Value) -> Value {
    config["flush_interval_ms"] = json!(100);
    config
}

fn both_builds_agree(config: Value, requests: f64, counted_as: &str) {
    let config = with_flush(config);
    let (wasm, wasm_types) = run(Build::Wasm, &config);
    let (native, native_types) = run(Build::Native, &config);
    // The mix is counted whole (24 answered and one the client cut off, less exclusions).
    let total: f64 = wasm.iter().filter(|((n, _), _)| n == counted_as).filter_map(|(_, v)| *v).sum();
    assert_eq!(total, requests, "{counted_as} in the Wasm build's page");
    let only = |a: &Series, b: &Series| a.keys().filter(|k| !b.contains_key(*k)).cloned().collect::<Vec<_>>();
    assert_eq!(only(&wasm, &native), vec![], "series only the Wasm build has");
    assert_eq!(only(&native, &wasm), vec![], "series only the native build has");
    let differ: Vec<_> =
        wasm.iter().filter(|(k, v)| native.get(*k) != Some(*v)).map(|(k, v)| (k, v, native.get(k))).collect();
    assert_eq!(differ, vec![], "values that differ (series, Wasm, native)");
    assert_eq!(wasm_types, native_types);
}

#[test]
fn routemeters_own_names_are_the_same_from_both_builds() {
    // The demo's configuration, its OpenAPI source aside: each Wasm VM fetches its own copy
    // and the native module one, so their fetch counters differ by design.
    both_builds_agree(testkit::bootstrap::demo_plugin_config(false), 23.0, "http_requests_total");
}

#[test]
fn a_profile_with_route_families_and_attribute_labels_is_the_same_from_both_builds() {
    let seeds = testkit::bootstrap::Bootstrap::seeds().plugin_config();
    both_builds_agree(seeds, 23.0, "http_requests_total");
}

#[test]
fn opentelemetry_status_labels_are_the_same_from_both_builds() {
    let config = json!({"names": {"profile": "opentelemetry"}});
    both_builds_agree(config, 25.0, "http_server_request_duration_seconds_count");
}

/// A panic in the native module (`make trap-native`: a request with `x-routemeter-trap`
/// panics in its request-headers hook, with the filter's lock held) is caught in the hook:
/// the request goes through, Envoy keeps serving, and the state the panic interrupted carries
/// on: every request is counted once, the one that panicked too (its stream completes
/// normally and is recorded from what Envoy has at completion, as a request whose headers
/// the filter never saw).
#[test]
fn a_panic_in_the_native_module_lets_traffic_through_and_counts_on() {
    let stack = Stack::start(StackOptions {
        build: Build::Native,
        module: Some(testkit::bootstrap::trap_native_path()),
        plugin_config: Some(with_flush(json!({})).to_string()),
        ..StackOptions::default()
    });
    let mut conn = testkit::client::Connection::open(stack.listener).unwrap();
    let get = |path: &str| testkit::client::Request::get(path);
    for _ in 0..3 {
        assert_eq!(conn.send(&get("/api/v1/status/12345")).unwrap().status, 404);
    }
    let trapped = conn.send(&get("/api/v1/status/777").header("x-routemeter-trap", "1")).unwrap();
    assert_eq!(trapped.status, 404, "the request that panicked went through");
    for _ in 0..3 {
        assert_eq!(conn.send(&get("/api/v1/status/12345")).unwrap().status, 404);
    }
    let route = [("method", "GET"), ("route", "/api/v1/status/{id}"), ("status", "404")];
    let page = stack.scrape_until("seven requests", |p| p.get("http_requests_total", &route) == Some(7.0));
    assert_eq!(page.get("http_requests_total", &route), Some(7.0), "{}", stack.logs());
    let log = stack.envoy_log();
    assert!(log.contains("routemeter panicked") && log.contains("test-trap: panicking"), "{}", stack.logs());
}

/// Every Envoy function the native module calls is one our Envoy exports: a missing one
/// would only fail when first called, taking Envoy down.
#[test]
fn every_function_the_native_module_imports_is_in_our_envoy() {
    let nm = |args: &[&str], file: &std::path::Path| -> Vec<String> {
        let out = std::process::Command::new("nm").args(args).arg(file).output().expect("run nm (binutils)");
        assert!(out.status.success(), "nm {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .map(String::from)
            .collect()
    };
    let envoy = std::fs::read_dir(testkit::bootstrap::repo_root().join(".venv/lib"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|python| python.path().join("site-packages/envoy/_bin/envoy"))
        .find(|p| p.is_file())
        .expect("Envoy's binary under .venv (make deps)");
    let exported: std::collections::BTreeSet<String> = nm(&["-D", "--defined-only"], &envoy).into_iter().collect();
    let imported: Vec<String> = nm(&["-D", "--undefined-only"], &testkit::bootstrap::native_path())
        .into_iter()
        .filter(|s| s.starts_with("envoy_dynamic_module_callback_"))
        .collect();
    assert!(imported.len() >= 15, "{imported:?}");
    let missing: Vec<&String> = imported.iter().filter(|s| !exported.contains(*s)).collect();
    assert_eq!(missing, Vec::<&String>::new());
}
