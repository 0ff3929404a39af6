//! Route labels beyond configured templates, on both hosts (native core and compiled
//! .wasm): learned templates shared by every worker, the shared state's creation and races,
//! the cap after learning, and templates from the upstream's OpenAPI document.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proxy_sim::{Host, SimEnvoy, Stream, Vm};
use routemeter::route::learn::decode;

/// Where the simulated plugin (it has no name) shares its learned routes.
fn learned_key() -> String {
    routemeter::shared::Keys::for_plugin("").learned_routes()
}

fn requests(envoy: &SimEnvoy, method: &str, route: &str, status: &str) -> Option<u64> {
    envoy.counter("http_requests_total", &[("method", method), ("route", route), ("status", status)])
}

fn send(vm: &impl Vm, method: &str, path: &str, status: u16) {
    let mut s = vm.request(method, path);
    s.respond(status, 0);
    s.complete();
}

fn routes(envoy: &SimEnvoy) -> Vec<String> {
    envoy.label_values("http_requests_total", "route")
}

const DOC: &str = r#"{
  "openapi": "3.1.0",
  "info": {"title": "converter", "version": "1"},
  "paths": {
    "/api/v1/upload": {"post": {}},
    "/api/v1/status/{job_id}": {"get": {}},
    "/api/v1/download/{job_id}": {"get": {}},
    "/api/v1/jobs/{job_id}/files/{name}.{ext}": {"get": {}},
    "/api/v1/jobs/latest": {"get": {}}
  }
}"#;

/// Two workers see different halves of the traffic and give every request the same label:
/// what one learns, the other uses.
fn learned_templates_are_shared_by_every_worker<H: Host>(host: &H) {
    let envoy = host.envoy();
    let w1 = host.vm("{}").unwrap();
    let w2 = host.vm("{}").unwrap();
    let paths = [
        "/repos/octo/hello-world/issues",
        "/repos/torvalds/linux/pulls",
        "/repos/alice/notes/pulls",
        "/repos/bob/site/issues",
        "/users/carol",
        "/users/dave/repos",
        "/repos/erin/app/issues/42",
    ];
    for (i, p) in paths.iter().enumerate() {
        send(if i % 2 == 0 { &w1 } else { &w2 }, "GET", p, 200);
    }
    for (i, p) in paths.iter().enumerate() {
        send(if i % 2 == 0 { &w2 } else { &w1 }, "GET", p, 200);
    }
    assert_eq!(
        routes(envoy),
        [
            "/repos/{id}/hello-world/issues",
            "/repos/{id}/linux/pulls",
            "/repos/{id}/{id}/issues",
            "/repos/{id}/{id}/issues/{id}",
            "/repos/{id}/{id}/pulls",
            "/users/{id}",
            "/users/{id}/repos",
        ]
    );
    assert_eq!(requests(envoy, "GET", "/repos/{id}/{id}/issues", "200"), Some(3));
    assert_eq!(requests(envoy, "GET", "/repos/{id}/{id}/pulls", "200"), Some(3));
    // Two guesses were made before `notes` showed that position is a parameter; they are
    // retired (their series stay) and do not count against the cap.
    let state = decode(&envoy.shared_data(&learned_key()).unwrap()).unwrap();
    assert_eq!(state.label_counts(), (5, 7));
}

/// Issue #10, item 4: Envoy checks a CAS of 0 against nothing, so such a write can wipe what
/// another worker wrote a moment before. No VM ever writes the learned state that way, not
/// when it is configured, not when it creates the shared value.
fn no_worker_writes_shared_data_unchecked<H: Host>(host: &H) {
    let envoy = host.envoy();
    let w1 = host.vm(r#"{"max_routes": 1}"#).unwrap();
    send(&w1, "GET", "/a", 200);
    let w2 = host.vm(r#"{"max_routes": 1}"#).unwrap();
    send(&w2, "GET", "/b", 200);
    send(&w1, "GET", "/a", 200);
    assert_eq!(envoy.unchecked_shared_writes(&learned_key()), 0);
    assert_eq!(routes(envoy), ["/a", "__other__"]);
}

/// Worker 2 reads the (absent) shared state, then worker 1 creates it before worker 2
/// writes: worker 2's create-only write fails, it reads again and finds the cap full.
fn a_worker_that_loses_the_race_to_create_the_shared_state_keeps_the_cap<H: Host>(host: &H) {
    let envoy = host.envoy();
    let w1 = std::rc::Rc::new(host.vm(r#"{"max_routes": 1}"#).unwrap());
    let w2 = host.vm(r#"{"max_routes": 1}"#).unwrap();
    let other = w1.clone();
    envoy.after_next_shared_read(move || send(&*other, "GET", "/a", 200));
    send(&w2, "GET", "/b", 200);
    assert_eq!(routes(envoy), ["/a", "__other__"]);
    assert_eq!(requests(envoy, "GET", "__other__", "200"), Some(1));
    assert_eq!(envoy.unchecked_shared_writes(&learned_key()), 0);
}

/// Labels guessed before a position was learned are retired when it is: the cap is for real
/// overload, not for the first requests.
fn early_guesses_do_not_hold_the_cap<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(r#"{"max_routes": 3}"#).unwrap();
    for p in ["/page/kavo", "/page/mira", "/page/teno", "/page/loru", "/page/sapi", "/page/dune", "/x/a", "/y/a"] {
        send(&vm, "GET", p, 200);
    }
    assert_eq!(routes(envoy), ["/page/kavo", "/page/mira", "/page/teno", "/page/{id}", "/x/a", "/y/a", "__other__"]);
    assert_eq!(requests(envoy, "GET", "__other__", "200"), Some(2));
}

/// Every template of the document labels its requests, most specific first; paths the
/// document does not have are still learned. (Before the document arrived, the first
/// request was labelled by learning: `status` is a collection, so `/status/{id}`.)
fn openapi_templates_label_requests_exactly<H: Host>(host: &H) {
    let envoy = host.envoy();
    envoy.serve("app", "/openapi.json", Some((200, DOC.as_bytes())));
    let vm = host.vm(r#"{"openapi": {"cluster": "app"}}"#).unwrap();
    send(&vm, "GET", "/api/v1/status/kavo", 200);
    vm.tick();
    vm.tick();
    for p in [
        "/api/v1/status/mira",
        "/api/v1/download/teno",
        "/api/v1/jobs/latest",
        "/api/v1/jobs/loru/files/report.xlsx",
        "/other/thing",
    ] {
        send(&vm, "GET", p, 200);
    }
    send(&vm, "POST", "/api/v1/upload?filename=a.xlsx", 201);
    assert_eq!(
        routes(envoy),
        [
            "/api/v1/download/{job_id}",
            "/api/v1/jobs/latest",
            "/api/v1/jobs/{job_id}/files/{name}.{ext}",
            "/api/v1/status/{id}",
            "/api/v1/status/{job_id}",
            "/api/v1/upload",
            "/other/thing",
        ]
    );
    assert_eq!(envoy.http_calls(), [("app".to_string(), "/openapi.json".to_string(), "app".to_string())]);
    assert_eq!(envoy.counter("routemeter_openapi_fetches_total", &[("status", "ok")]), Some(1));
    assert_eq!(envoy.gauge("routemeter_openapi_routes", &[]), Some(5));
}

/// A failed refresh keeps the last good routes, counts the failure, and retries sooner.
fn openapi_failures_keep_the_last_good_routes<H: Host>(host: &H) {
    let envoy = host.envoy();
    envoy.serve("app", "/spec", Some((200, DOC.as_bytes())));
    let vm = host.vm(r#"{"openapi": {"cluster": "app", "path": "/spec", "refresh_seconds": 60}}"#).unwrap();
    vm.tick();
    envoy.serve("app", "/spec", Some((503, b"busy")));
    envoy.advance_ms(60_000);
    vm.tick();
    envoy.serve("app", "/spec", None);
    envoy.advance_ms(30_000);
    vm.tick();
    envoy.serve("app", "/spec", Some((200, b"<html>not a spec</html>")));
    envoy.advance_ms(30_000);
    vm.tick();
    send(&vm, "GET", "/api/v1/status/kavo", 200);
    assert_eq!(routes(envoy), ["/api/v1/status/{job_id}"]);
    for (status, n) in [("ok", 1), ("http_error", 1), ("unavailable", 1), ("invalid", 1)] {
        assert_eq!(envoy.counter("routemeter_openapi_fetches_total", &[("status", status)]), Some(n), "{status}");
    }
    assert_eq!(envoy.http_calls().len(), 4);
}

/// A cluster Envoy does not know: the call cannot be made; counted, traffic unaffected.
fn openapi_from_an_unknown_cluster_is_counted_as_unavailable<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(r#"{"openapi": {"cluster": "nope"}}"#).unwrap();
    vm.tick();
    send(&vm, "GET", "/users/kavo", 200);
    assert_eq!(envoy.counter("routemeter_openapi_fetches_total", &[("status", "unavailable")]), Some(1));
    assert_eq!(routes(envoy), ["/users/{id}"]);
}

routemeter_tests::dual_host!(
    learned_templates_are_shared_by_every_worker,
    no_worker_writes_shared_data_unchecked,
    a_worker_that_loses_the_race_to_create_the_shared_state_keeps_the_cap,
    early_guesses_do_not_hold_the_cap,
    openapi_templates_label_requests_exactly,
    openapi_failures_keep_the_last_good_routes,
    openapi_from_an_unknown_cluster_is_counted_as_unavailable,
);
