//! routemeter delivered the way Istio delivers a WasmPlugin: by extension config discovery
//! (ECDS), here from a watched file (`envoy/envoy-ecds.yaml`). Under steady load (HTTP/1.1 and
//! h2c, two Envoy workers) the plugin configuration changes (a route template added, other
//! duration buckets) and the module is swapped for a rebuilt one: afterwards every counter
//! equals the client's ledger, every in-flight gauge is back at 0, and no request failed.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::{json, Value};
use testkit::bootstrap::{demo_plugin_config, shipped_ecds_resource, wasm_path, Bootstrap};
use testkit::client::{self, Body, Request};
use testkit::ledger::{Entry, Ledger};
use testkit::process::wait_until;
use testkit::stack::{Stack, StackOptions};
use testkit::traffic::{steady, steady_h2c, StopOnDrop, UPLOAD};

#[test]
fn the_ecds_bootstrap_is_the_shipped_one_with_its_filter_discovered() {
    let mut plain = Bootstrap::shipped().0;
    let mut ecds = Bootstrap::shipped_ecds().0;
    let filters = "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters";
    let take_first = |b: &mut Value| b.pointer_mut(filters).unwrap().as_array_mut().unwrap().remove(0);
    let (wasm, discovered) = (take_first(&mut plain), take_first(&mut ecds));
    assert_eq!(discovered["name"], "routemeter");
    assert_eq!(
        discovered["config_discovery"]["type_urls"],
        json!(["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"])
    );
    // The resource is the shipped filter's configuration, word for word.
    let resource = shipped_ecds_resource();
    assert_eq!(resource["resources"][0]["name"], "routemeter");
    assert_eq!(resource["resources"][0]["typed_config"], wasm["typed_config"]);
    // Everything else is the same bootstrap (xDS needs a node).
    ecds.as_object_mut().unwrap().remove("node");
    assert_eq!(ecds, plain);
}

/// The same module with one more custom section: other bytes, so Envoy starts a new VM, as for
/// a rebuilt filter.
fn rebuilt_module(dir: &std::path::Path) -> std::path::PathBuf {
    let mut bytes = std::fs::read(wasm_path()).unwrap();
    let name = b"routemeter-rebuilt";
    bytes.extend_from_slice(&[0, (name.len() + 1) as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    let path = dir.join("routemeter-rebuilt.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn reloads(stack: &Stack) -> u64 {
    let (_, body) = testkit::admin::get(stack.admin, "/stats?filter=extension_config_discovery").unwrap();
    body.lines()
        .filter(|l| l.contains("config_reload:"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn start() -> (Stack, String, Ledger) {
    let stack = Stack::start(StackOptions { concurrency: 2, ecds: true, ..StackOptions::default() });
    let up = client::send(stack.listener, &Request::post("/api/v1/upload?filename=a.csv", Body::Sized(10))).unwrap();
    let job = serde_json::from_str::<Value>(&up.text()).unwrap()["job_id"].as_str().unwrap().to_string();
    let ledger = Ledger::default();
    ledger.add(Entry::new("POST", UPLOAD, up.status));
    (stack, job, ledger)
}

/// Waits until the page agrees with the ledger, then checks every counter, gauge and
/// histogram count against it.
fn reconcile(stack: &Stack, ledger: &Ledger) {
    let want = ledger.requests();
    let page = stack.scrape_until("counters to match the ledger", |p| {
        p.counters("http_requests_total", &["method", "route", "status"]) == want
            && p.series("http_requests_in_progress").all(|s| s.value == 0.0)
    });
    assert_eq!(page.counters("http_requests_total", &["method", "route", "status"]), want, "{}", stack.logs());
    let gauges: BTreeMap<_, _> = page.counters("http_requests_in_progress", &["method", "route"]);
    assert!(!gauges.is_empty() && gauges.values().all(|v| *v == 0), "{gauges:?}");
    // Every request is in exactly one duration histogram count, whatever the buckets were.
    assert_eq!(page.counters("http_request_duration_milliseconds_count", &["method", "route"]), ledger.pairs());
}

/// Steady load from four HTTP/1.1 clients and one h2c client (16 streams at a time) for
/// two seconds, then `change`, then two more seconds.
fn under_load(stack: &Stack, job: &str, ledger: &Ledger, change: impl FnOnce()) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for seed in 1..=4 {
            let (ledger, stop, target) = (ledger, &stop, stack.listener);
            scope.spawn(move || steady(target, job, seed, false, ledger, stop));
        }
        let (stop, target) = (&stop, stack.listener);
        scope.spawn(move || steady_h2c(target, job, 5, false, ledger, stop));
        std::thread::sleep(Duration::from_secs(2));
        change();
        std::thread::sleep(Duration::from_secs(2));
    });
}

/// Applies an ECDS update and waits until Envoy says it took it.
fn update(stack: &Stack, module: &Path, config: &Value) {
    let before = reloads(stack);
    stack.reconfigure(module, &config.to_string());
    let applied = wait_until(Duration::from_secs(20), || reloads(stack) > before);
    assert!(applied, "the update was not applied\n{}", stack.logs());
}

#[test]
fn a_configuration_change_under_load_loses_and_double_counts_nothing() {
    let (stack, job, ledger) = start();
    under_load(&stack, &job, &ledger, || {
        // A route template the traffic does not use, and other duration buckets. The new
        // configuration lands in the running VMs while the old one finishes its streams.
        let mut config = demo_plugin_config(true);
        config["routes"].as_array_mut().unwrap().push(json!({ "template": "/api/v3/reports/{id}" }));
        config["duration_buckets_ms"] = json!([1, 5, 50, 500, 5000]);
        update(&stack, &wasm_path(), &config);
    });
    reconcile(&stack, &ledger);
    let page = stack.scrape();
    let les = page.label_values("http_request_duration_milliseconds_bucket", "le");
    assert!(les.contains(&"5".to_string()) && les.contains(&"2500".to_string()), "both bucket sets: {les:?}");
    assert!(ledger.entries().len() > 100 && ledger.excluded() > 0, "{} requests", ledger.entries().len());
    eprintln!("{} requests reconciled across a configuration change", ledger.entries().len());
}

fn vms_created(stack: &Stack) -> u64 {
    stack.scrape().get("envoy_wasm_envoy_wasm_runtime_v8_created", &[]).unwrap_or(0.0) as u64
}

/// A new module starts new VMs in a new configuration, and Envoy drops a stat no
/// configuration holds. The new VMs define every series the old ones listed before Envoy
/// lets the old configuration go (`metrics::handover`), so the counters go on: the old VMs'
/// last flushes land in them, and nothing restarts from 0.
#[test]
fn a_module_swap_under_load_loses_and_double_counts_nothing() {
    let (stack, job, ledger) = start();
    let dir = std::env::temp_dir().join(format!("routemeter-ecds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (created, module) = (vms_created(&stack), rebuilt_module(&dir));
    under_load(&stack, &job, &ledger, || update(&stack, &module, &demo_plugin_config(true)));
    assert!(vms_created(&stack) > created, "no new VM: the module was not swapped");
    reconcile(&stack, &ledger);
    assert!(ledger.entries().len() > 100, "{} requests", ledger.entries().len());
    eprintln!("{} requests reconciled across a module swap", ledger.entries().len());
    // And back: the first module again, with a configuration change on top.
    let mut config = demo_plugin_config(true);
    config["duration_buckets_ms"] = json!([1, 5, 50, 500, 5000]);
    under_load(&stack, &job, &ledger, || update(&stack, &wasm_path(), &config));
    reconcile(&stack, &ledger);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Istio's `WasmPlugin` carries the shipped plugin configuration, all but the OpenAPI source
/// (whose cluster has another name in a mesh), and the same failure policy.
#[test]
fn the_istio_wasmplugin_carries_the_shipped_configuration() {
    let path = testkit::bootstrap::repo_root().join("envoy/istio/wasmplugin.yaml");
    let plugin: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(plugin["spec"]["pluginConfig"], demo_plugin_config(false));
    let shipped = shipped_ecds_resource();
    assert_eq!(shipped["resources"][0]["typed_config"]["config"]["failure_policy"], "FAIL_OPEN");
    assert_eq!(plugin["spec"]["failStrategy"], "FAIL_OPEN");
}
