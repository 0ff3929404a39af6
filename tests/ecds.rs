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

use routemeter_tests::{both_builds, Build};
use serde_json::{json, Value};
use testkit::bootstrap::{
    demo_plugin_config, native_path, shipped_ecds_resource, trap_wasm_path, wasm_path, Bootstrap,
};
use testkit::client::{self, Body, Request};
use testkit::ledger::{Entry, Ledger};
use testkit::process::wait_until;
use testkit::rng::Rng;
use testkit::stack::{Stack, StackOptions};
use testkit::traffic::{steady, steady_h2c, Steady, StopOnDrop, ANY, ITEMS, UPLOAD};

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
    start_with(StackOptions::default())
}

/// Two workers, the filter from ECDS, and a job to poll (its upload is in the ledger).
fn start_with(opts: StackOptions) -> (Stack, String, Ledger) {
    let stack = Stack::start(StackOptions { concurrency: 2, ecds: true, ..opts });
    let up = client::send(stack.listener, &Request::post("/api/v1/upload?filename=a.csv", Body::Sized(10))).unwrap();
    let job = serde_json::from_str::<Value>(&up.text()).unwrap()["job_id"].as_str().unwrap().to_string();
    let ledger = Ledger::default();
    ledger.add(Entry::new("POST", UPLOAD, up.status));
    (stack, job, ledger)
}

/// Waits until the page agrees with the ledger, then checks it exactly
/// ([`Ledger::check`]), and that the route cap held across the change.
fn reconcile(stack: &Stack, ledger: &Ledger) {
    // The demo answers this mix with 200, 201 and 404 only: a 5xx is Envoy failing a request.
    let failed: Vec<_> = ledger.entries().into_iter().filter(|e| e.status >= 500).collect();
    assert!(failed.is_empty(), "requests failed: {failed:?}");
    let page = stack.scrape_until("counters to match the ledger", |p| ledger.check(p).is_ok());
    ledger.check(&page).unwrap_or_else(|e| panic!("{e}\n{}", stack.logs()));
    assert!(page.series("http_requests_in_progress").count() > 0);
    // The bound of the shipped configuration: 100 labels at once, 400 ever (retired ones
    // included), plus the templates and `__other__`.
    let routes = page.label_values("http_requests_total", "route");
    assert!(routes.len() <= 400 + 6, "{} route labels", routes.len());
}

/// A template learned from traffic (no configuration names it).
const LEARNED: &str = "/reports/{id}/pdf";

fn learned_count(stack: &Stack) -> u64 {
    let labels = [("method", "GET"), ("route", LEARNED), ("status", "404")];
    stack.scrape().get("http_requests_total", &labels).unwrap_or(0.0) as u64
}

/// Requests to `/reports/<word>/pdf` with new words, in the ledger as random paths.
fn reports(stack: &Stack, ledger: &Ledger, rng: &mut Rng, n: usize) {
    for _ in 0..n {
        let resp = client::send(stack.listener, &Request::get(&format!("/reports/{}/pdf", rng.word(10)))).unwrap();
        ledger.add(Entry::new("GET", ANY, resp.status));
    }
}

/// Sends report paths until routemeter has learned their template.
fn learn_reports(stack: &Stack, ledger: &Ledger, rng: &mut Rng) {
    for _ in 0..40 {
        reports(stack, ledger, rng, 10);
        if wait_until(Duration::from_secs(2), || learned_count(stack) > 0) {
            return;
        }
    }
    panic!("{LEARNED} never learned\n{}", stack.logs());
}

/// A path of the learned template gets its label at once: what was learned is still known.
fn assert_still_learned(stack: &Stack, ledger: &Ledger, rng: &mut Rng) {
    let before = learned_count(stack);
    reports(stack, ledger, rng, 5);
    let counted = wait_until(Duration::from_secs(10), || learned_count(stack) == before + 5);
    assert!(counted, "{} of 5 new report paths under {LEARNED}", learned_count(stack) - before);
}

/// Steady load from four HTTP/1.1 clients (one of them also sends paths of random words) and
/// one h2c client (16 streams at a time) for two seconds, then `change`, then two more
/// seconds.
///
/// `lenient`: a request that fails is in the ledger with status 0 (for loads across a crash).
fn under_load(stack: &Stack, job: &str, ledger: &Ledger, lenient: bool, change: impl FnOnce()) {
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for seed in 1..=4 {
            let (ledger, stop, target) = (ledger, &stop, stack.listener);
            let load = Steady { hostile: seed == 4, lenient, ..Steady::new(target, job, seed) };
            scope.spawn(move || steady(load, ledger, stop));
        }
        let (stop, load) = (&stop, Steady { lenient, ..Steady::new(stack.listener, job, 5) });
        scope.spawn(move || steady_h2c(load, ledger, stop));
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

both_builds!(a_configuration_change_under_load_loses_and_double_counts_nothing);

fn a_configuration_change_under_load_loses_and_double_counts_nothing(build: Build) {
    let (stack, job, ledger) = start_with(StackOptions { build, ..StackOptions::default() });
    under_load(&stack, &job, &ledger, false, || {
        // A route template the traffic does not use, and other duration buckets. The new
        // configuration lands in the running VMs while the old one finishes its streams.
        let mut config = demo_plugin_config(true);
        config["routes"].as_array_mut().unwrap().push(json!({ "template": "/api/v3/reports/{id}" }));
        config["duration_buckets_ms"] = json!([1, 5, 50, 500, 5000]);
        let created = vms_created(&stack);
        let module = match build {
            Build::Wasm => wasm_path(),
            Build::Native => native_path(),
        };
        update(&stack, &module, &config);
        // The running VMs take it: Envoy creates only a canary to try the configuration.
        assert!(vms_created(&stack) - created <= 1, "new VMs for a configuration update");
    });
    reconcile(&stack, &ledger);
    let page = stack.scrape();
    let les = page.label_values("http_request_duration_milliseconds_bucket", "le");
    assert!(les.contains(&"5".to_string()) && les.contains(&"2500".to_string()), "both bucket sets: {les:?}");
    assert!(ledger.entries().len() > 100 && ledger.excluded() > 0, "{} requests", ledger.entries().len());
    eprintln!("{} requests reconciled across a configuration change", ledger.entries().len());
}

/// `routemeter_openapi_fetches_total`, every status.
fn openapi_fetches(stack: &Stack) -> u64 {
    total(&stack.scrape().counters("routemeter_openapi_fetches_total", &["status"]))
}

fn vms_created(stack: &Stack) -> u64 {
    stack.scrape().get("envoy_wasm_envoy_wasm_runtime_v8_created", &[]).unwrap_or(0.0) as u64
}

/// New code means new VMs: a base VM, its canary and one per worker (measured: 5 on 1.40;
/// a configuration update creates 1, the canary).
fn assert_swapped(stack: &Stack, created_before: u64) {
    let created = vms_created(stack) - created_before;
    assert!(created >= 4, "{created} VMs created: the module was not swapped");
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
    let mut rng = Rng::new(7);
    learn_reports(&stack, &ledger, &mut rng);
    let (created, module) = (vms_created(&stack), rebuilt_module(&dir));
    let fetches = openapi_fetches(&stack);
    under_load(&stack, &job, &ledger, false, || update(&stack, &module, &demo_plugin_config(true)));
    assert_swapped(&stack, created);
    // The new VMs fetched the OpenAPI document too, and that counter went on as well.
    assert!(openapi_fetches(&stack) > fetches, "{fetches} fetches before the swap, {} after", openapi_fetches(&stack));
    assert_still_learned(&stack, &ledger, &mut rng);
    reconcile(&stack, &ledger);
    assert!(ledger.entries().len() > 100, "{} requests", ledger.entries().len());
    eprintln!("{} requests reconciled across a module swap", ledger.entries().len());
    // And back: the first module again, with a configuration change on top.
    let mut config = demo_plugin_config(true);
    config["duration_buckets_ms"] = json!([1, 5, 50, 500, 5000]);
    let created = vms_created(&stack);
    under_load(&stack, &job, &ledger, false, || update(&stack, &wasm_path(), &config));
    assert_swapped(&stack, created);
    assert_still_learned(&stack, &ledger, &mut rng);
    reconcile(&stack, &ledger);
    let _ = std::fs::remove_dir_all(&dir);
}

/// What a crash took with it, as the test build logs it just before it traps (`wasm::test_trap`).
#[derive(Debug)]
struct Crash {
    /// Envoy's thread id: the worker whose VM failed.
    thread: String,
    unflushed_requests: u64,
    in_flight: u64,
    /// Raises of the in-flight gauge from this VM that reached Envoy and whose lowering never
    /// will: requests in flight that started before the last flush, and requests that
    /// started before it and finished after it.
    stuck_in_flight: u64,
}

impl Crash {
    /// Requests the crash took out of the counts: finished and unflushed, in flight, and the
    /// request that trapped.
    fn lost(&self) -> u64 {
        self.unflushed_requests + self.in_flight + 1
    }
}

fn crashes(stack: &Stack) -> Vec<Crash> {
    let log = stack.envoy_log();
    let field = |line: &str, key: &str| -> u64 {
        let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key} in {line}"));
        line[at + key.len() + 1..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    log.lines()
        .filter(|l| l.contains("test-trap: failing the VM;"))
        .map(|l| Crash {
            // "[time][thread][level]..."
            thread: l.split("][").nth(1).unwrap().to_string(),
            unflushed_requests: field(l, "unflushed_requests"),
            in_flight: field(l, "in_flight"),
            stuck_in_flight: field(l, "stuck_in_flight"),
        })
        .collect()
}

const TRAP: &str = "x-routemeter-trap";

fn total(counts: &BTreeMap<Vec<String>, u64>) -> u64 {
    counts.values().sum()
}

/// Waits for the counts to settle at `ledger` minus `lost` requests in all, then checks that
/// no series counted more than the ledger, and that the in-flight gauges add up to `stuck`.
fn reconcile_after_crash(stack: &Stack, ledger: &Ledger, lost: u64, stuck: u64) {
    let want = ledger.requests();
    // Both counts: a scrape can land in the middle of a flush, between a request's counter
    // and its duration histogram.
    let page = stack.scrape_until("counters to settle", |p| {
        total(&p.counters("http_requests_total", &["method", "route", "status"])) + lost == total(&want)
            && total(&p.counters("http_request_duration_milliseconds_count", &["method", "route"])) + lost
                == total(&ledger.pairs())
    });
    let counted = page.counters("http_requests_total", &["method", "route", "status"]);
    assert_eq!(total(&counted) + lost, total(&want), "{counted:?}\n{want:?}\n{}", stack.logs());
    // A known route's series never counts more than the ledger; the rest are random paths.
    let random = ledger.select("GET", ANY).len() as u64;
    let mut others = 0;
    for (series, n) in &counted {
        match want.get(series) {
            Some(w) if series[1] != ANY => assert!(n <= w, "{series:?} counted {n}, the ledger has {w}"),
            _ => others += n,
        }
    }
    assert!(others <= random, "{others} requests under other labels, {random} to random paths");
    let durations = page.counters("http_request_duration_milliseconds_count", &["method", "route"]);
    assert_eq!(total(&durations) + lost, total(&ledger.pairs()));
    let gauges = page.counters("http_requests_in_progress", &["method", "route"]);
    assert_eq!(total(&gauges), stuck, "{gauges:?}");
}

fn reload_successes(stack: &Stack) -> u64 {
    stack.scrape().get("envoy_wasm_routemeter_vm_reload_success", &[]).unwrap_or(0.0) as u64
}

/// A VM that traps (a bug in the filter, made to happen by the test build) under steady load,
/// with `FAIL_RELOAD`: Envoy answers the request it trapped in with a 503, starts a new VM on
/// that worker for the next request, and the counters go on (the stats belong to the
/// configuration, which the new VM shares). The crash loses exactly what the VM held: the
/// requests it counted since its last flush, the ones in flight, the one that trapped; the
/// in-flight gauges keep exactly the raises it had flushed and never lowered.
#[test]
fn a_vm_crash_under_fail_reload_loses_exactly_what_the_vm_held() {
    let opts =
        StackOptions { module: Some(trap_wasm_path()), failure_policy: Some("FAIL_RELOAD"), ..Default::default() };
    let (stack, job, ledger) = start_with(opts);
    let trapped = std::sync::Mutex::new(0);
    under_load(&stack, &job, &ledger, true, || {
        let resp = client::send(stack.listener, &Request::get("/api/v2/items/7").header(TRAP, "1")).unwrap();
        ledger.add(Entry::new("GET", ITEMS, resp.status));
        *trapped.lock().unwrap() = resp.status;
    });
    let crashes = crashes(&stack);
    assert_eq!(crashes.len(), 1, "{crashes:?}");
    let crash = &crashes[0];
    eprintln!("{} requests; the crash: {crash:?}", ledger.entries().len());
    assert_eq!(*trapped.lock().unwrap(), 503, "Envoy's answer to the request the VM failed in");
    assert!(reload_successes(&stack) >= 1, "no VM was reloaded");
    reconcile_after_crash(&stack, &ledger, crash.lost(), crash.stuck_in_flight);
    // Traffic never failed otherwise: only the trapped request and those in flight on the
    // failed VM may have had Envoy's 503 (or a reset, status 0).
    let failed = ledger.entries().iter().filter(|e| e.status == 503 || e.status == 0).count() as u64;
    assert!(failed >= 1 && failed <= 1 + crash.in_flight, "{failed} requests failed; {crash:?}");
}

/// With traffic stopped, makes both workers' VMs trap (the trap requests go into `ledger`):
/// the crashes, and what they lost (unflushed requests) and left raised (in-flight gauges).
fn trap_both_workers(stack: &Stack, ledger: &Ledger) -> (Vec<Crash>, u64, u64) {
    for i in 0..100 {
        if crashes(stack).len() == 2 {
            break;
        }
        // A fresh connection each time: a worker is picked anew.
        let resp =
            client::send(stack.listener, &Request::get(&format!("/api/v2/items/{i}")).header(TRAP, "1")).unwrap();
        ledger.add(Entry::new("GET", ITEMS, resp.status));
    }
    let crashes = crashes(stack);
    assert_eq!(crashes.len(), 2, "{crashes:?}");
    assert_ne!(crashes[0].thread, crashes[1].thread, "both workers");
    assert!(crashes.iter().all(|c| c.in_flight == 0), "traffic was stopped: {crashes:?}");
    let lost = crashes.iter().map(|c| c.unflushed_requests).sum();
    let stuck = crashes.iter().map(|c| c.stuck_in_flight).sum();
    (crashes, lost, stuck)
}

/// With `FAIL_OPEN` a VM that traps stays failed: its worker passes requests unrecorded (and
/// never fails them) until the next configuration or module update starts a new VM. Traffic
/// is stopped around the crashes and the update so that the test knows exactly which
/// requests no VM saw: both workers' VMs are made to fail, then load runs blind, then a
/// configuration update brings recording back.
#[test]
fn a_vm_crash_under_fail_open_stops_recording_until_the_next_update() {
    let opts = StackOptions { module: Some(trap_wasm_path()), failure_policy: Some("FAIL_OPEN"), ..Default::default() };
    let (stack, job, ledger) = start_with(opts);
    under_load(&stack, &job, &ledger, false, || {});
    let blind = Ledger::default();
    let (crashes, lost, stuck) = trap_both_workers(&stack, &blind);
    reconcile_after_crash(&stack, &ledger, lost, stuck);
    let frozen = stack.scrape().counters("http_requests_total", &["method", "route", "status"]);
    // Blind: both VMs failed, every request passes and none is recorded.
    under_load(&stack, &job, &blind, false, || {});
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stack.scrape().counters("http_requests_total", &["method", "route", "status"]), frozen);
    let failed: Vec<_> = blind.entries().into_iter().filter(|e| e.status >= 500).collect();
    assert_eq!(failed.len(), 2, "only the two trapped requests failed: {failed:?}");
    // A configuration update starts new VMs: recording resumes where the counters were.
    let mut config = demo_plugin_config(true);
    config["duration_buckets_ms"] = json!([1, 5, 50, 500, 5000]);
    update(&stack, &trap_wasm_path(), &config);
    let after = Ledger::default();
    under_load(&stack, &job, &after, false, || {});
    for e in after.entries() {
        ledger.add(e);
    }
    reconcile_after_crash(&stack, &ledger, lost, stuck);
    eprintln!("{} recorded, {} blind; the crashes: {crashes:?}", ledger.entries().len(), blind.entries().len());
}

/// With `FAIL_CLOSED` (what Envoy 1.40 does when no policy is set, `UNSPECIFIED`: this test
/// passed with it too on 2026-12-05) a
/// VM that traps stays failed and its worker fails every request after it, unrecorded, until
/// the next configuration or module update starts a new VM. As for `FAIL_OPEN`, traffic is
/// stopped around the crashes and the update so that the loss is known exactly.
#[test]
fn a_vm_crash_under_fail_closed_fails_its_workers_requests_until_the_next_update() {
    let opts =
        StackOptions { module: Some(trap_wasm_path()), failure_policy: Some("FAIL_CLOSED"), ..Default::default() };
    let (stack, job, ledger) = start_with(opts);
    under_load(&stack, &job, &ledger, false, || {});
    let (crashes, lost, stuck) = trap_both_workers(&stack, &Ledger::default());
    reconcile_after_crash(&stack, &ledger, lost, stuck);
    let frozen = stack.scrape().counters("http_requests_total", &["method", "route", "status"]);
    // Closed: both VMs failed, every request fails and none is recorded.
    let closed = Ledger::default();
    under_load(&stack, &job, &closed, true, || {});
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(stack.scrape().counters("http_requests_total", &["method", "route", "status"]), frozen);
    let passed: Vec<_> = closed.entries().into_iter().filter(|e| e.status != 503 && e.status != 0).collect();
    assert!(passed.is_empty() && !closed.entries().is_empty(), "requests that passed a failed VM: {passed:?}");
    // A configuration update starts new VMs: traffic flows and is recorded again.
    let mut config = demo_plugin_config(true);
    config["duration_buckets_ms"] = json!([1, 5, 50, 500, 5000]);
    update(&stack, &trap_wasm_path(), &config);
    let after = Ledger::default();
    under_load(&stack, &job, &after, false, || {});
    for e in after.entries() {
        ledger.add(e);
    }
    reconcile_after_crash(&stack, &ledger, lost, stuck);
    let answered_503 = closed.entries().iter().filter(|e| e.status == 503).count();
    eprintln!(
        "{} recorded, {} failed closed ({answered_503} answered 503, the rest reset); the crashes: {crashes:?}",
        ledger.entries().len(),
        closed.entries().len()
    );
}

/// Why `FAIL_OPEN` is shipped, measured: under `FAIL_RELOAD` a VM that crashes again soon
/// after a reload makes Envoy back off, and it fails requests (503) until the backoff ends,
/// longer each time. Timing-dependent, so not in `make test`: run it with
/// `cargo test --test ecds -- --ignored --nocapture`. Seen on 2026-12-05 (one worker,
/// requests 50 ms apart after each crash, two runs): 0, then 4, then 8 or 9 requests failed;
/// 12 or 13 backoffs, 3 reloads.
#[test]
#[ignore = "measures Envoy's reload backoff (timing)"]
fn fail_reload_fails_requests_while_it_backs_off() {
    let opts = StackOptions {
        concurrency: 1,
        ecds: true,
        module: Some(trap_wasm_path()),
        failure_policy: Some("FAIL_RELOAD"),
        ..StackOptions::default()
    };
    let stack = Stack::start(opts);
    std::thread::sleep(Duration::from_secs(2));
    let mut failed = Vec::new();
    for _ in 0..3 {
        let trapped = client::send(stack.listener, &Request::get("/api/v2/items/7").header(TRAP, "1")).unwrap();
        assert_eq!(trapped.status, 503);
        let statuses: Vec<u16> = (0..20)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(50));
                client::send(stack.listener, &Request::get("/api/v2/items/8")).unwrap().status
            })
            .collect();
        assert_eq!(statuses.last(), Some(&404), "recovered: {statuses:?}");
        failed.push(statuses.iter().filter(|s| **s == 503).count());
    }
    let page = stack.scrape();
    let (backoffs, reloads) = (
        page.get("envoy_wasm_routemeter_vm_reload_backoff", &[]).unwrap_or(0.0),
        page.get("envoy_wasm_routemeter_vm_reload_success", &[]).unwrap_or(0.0),
    );
    eprintln!("requests failed after each crash: {failed:?}; {backoffs} backoffs, {reloads} reloads");
    assert_eq!(reloads, 3.0);
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
