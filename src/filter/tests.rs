use super::*;
use crate::host::memory::{MemoryHost, StreamFacts};
use crate::metrics::stat_name;
use crate::metrics::Metric::{RequestsInProgress, RequestsTotal};

fn facts(method: &str, path: &str, plugin: &str) -> StreamFacts {
    StreamFacts {
        method: method.into(),
        path: path.into(),
        headers_readable: true,
        status: Some(200),
        plugin_name: Some(plugin.into()),
        ..StreamFacts::default()
    }
}

fn config(template: &str) -> String {
    format!(r#"{{"routes": [{{"template": "{template}"}}], "latency_quantiles": {{"quantiles": []}}}}"#)
}

fn requests(host: &MemoryHost, route: &str) -> Option<u64> {
    host.counter(&stat_name(RequestsTotal, &["GET", route, "200"]))
}

fn in_progress(host: &MemoryHost, route: &str) -> Option<i64> {
    host.gauge(&stat_name(RequestsInProgress, &["GET", route]))
}

/// Starts stream `context` (request headers), as the host would.
fn start(filter: &mut Filter, host: &MemoryHost, context: u32, stream: &StreamFacts) {
    filter.request_headers(context, &host.on_stream(stream));
}

fn end(filter: &mut Filter, host: &MemoryHost, context: u32, stream: &StreamFacts) {
    filter.log(context, &host.on_stream(stream));
    filter.delete(context, host);
}

#[test]
fn a_root_configured_again_keeps_the_old_configuration_for_its_streams() {
    let (host, mut filter) = (MemoryHost::new(), Filter::new());
    filter.configure(1, "rm", config("/a/{x}").as_bytes(), &host).unwrap();
    let old = facts("GET", "/a/1", "rm");
    start(&mut filter, &host, 10, &old);
    filter.tick(1, &host);
    assert_eq!(in_progress(&host, "/a/{x}"), Some(1));
    // The same root, configured again under a request in flight.
    filter.configure(1, "rm", config("/a/{y}").as_bytes(), &host).unwrap();
    let new = facts("GET", "/a/2", "rm");
    start(&mut filter, &host, 11, &new);
    end(&mut filter, &host, 10, &old);
    end(&mut filter, &host, 11, &new);
    filter.tick(1, &host);
    assert_eq!((requests(&host, "/a/{x}"), requests(&host, "/a/{y}")), (Some(1), Some(1)));
    assert_eq!((in_progress(&host, "/a/{x}"), in_progress(&host, "/a/{y}")), (Some(0), Some(0)));
    assert_eq!(requests(&host, "__other__"), None);
    // The old configuration went with its last stream.
    assert_eq!(filter.plugins().count(), 1);
}

#[test]
fn a_rejected_new_configuration_leaves_the_streams_in_flight_to_the_old_one() {
    let (host, mut filter) = (MemoryHost::new(), Filter::new());
    filter.configure(1, "rm", config("/a/{x}").as_bytes(), &host).unwrap();
    let old = facts("GET", "/a/1", "rm");
    start(&mut filter, &host, 10, &old);
    filter.tick(1, &host);
    let rejected = filter.configure(1, "rm", br#"{"max_routes": 0}"#, &host).unwrap_err();
    assert_eq!(rejected.to_string(), "max_routes: must be between 1 and 10000, got 0");
    end(&mut filter, &host, 10, &old);
    // New streams pass unrecorded; the one in flight is counted and its gauge comes down.
    let new = facts("GET", "/a/2", "rm");
    start(&mut filter, &host, 11, &new);
    end(&mut filter, &host, 11, &new);
    assert_eq!((requests(&host, "/a/{x}"), in_progress(&host, "/a/{x}")), (Some(1), Some(0)));
    assert_eq!(host.gauge(&stat_name(crate::metrics::Metric::ConfigInvalid, &[])), Some(1));
}

#[test]
fn two_plugins_in_one_vm_keep_their_streams_and_their_shared_data_apart() {
    let (host, mut filter) = (MemoryHost::new(), Filter::new());
    let learning = |t: &str| format!(r#"{{"routes": [{{"template": "{t}"}}], "max_routes": 2}}"#);
    filter.configure(1, "a", learning("/t/{a}").as_bytes(), &host).unwrap();
    filter.configure(2, "b", learning("/t/{b}").as_bytes(), &host).unwrap();
    // A request through both plugins' filters is two streams, one per plugin.
    let traffic = [("/t/1", "a"), ("/t/1", "b"), ("/x", "a"), ("/y", "a"), ("/z", "b")];
    for (context, (path, plugin)) in (10..).zip(traffic) {
        let s = facts("GET", path, plugin);
        start(&mut filter, &host, context, &s);
        end(&mut filter, &host, context, &s);
    }
    filter.tick(1, &host);
    filter.tick(2, &host);
    assert_eq!((requests(&host, "/t/{a}"), requests(&host, "/t/{b}")), (Some(1), Some(1)));
    // `a` learned /x and /y, its cap of 2; `b` learned /z under its own (a shared cap would
    // have sent it to __other__).
    assert_eq!((requests(&host, "/x"), requests(&host, "/y"), requests(&host, "/z")), (Some(1), Some(1), Some(1)));
    assert_eq!(requests(&host, "__other__"), None);
    let keys = host.shared_keys();
    assert!(keys.contains(&"routemeter.a.learned_routes.v1".to_string()), "{keys:?}");
    assert!(keys.contains(&"routemeter.b.learned_routes.v1".to_string()), "{keys:?}");
}

#[test]
fn a_new_root_takes_new_streams_and_the_old_one_flushes_as_its_streams_end() {
    let (host, mut filter) = (MemoryHost::new(), Filter::new());
    filter.configure(1, "rm", config("/a/{x}").as_bytes(), &host).unwrap();
    let old = facts("GET", "/a/1", "rm");
    start(&mut filter, &host, 10, &old);
    // An ECDS update: a new root context, then the old one goes.
    filter.configure(2, "rm", config("/a/{y}").as_bytes(), &host).unwrap();
    filter.delete(1, &host);
    let new = facts("GET", "/a/2", "rm");
    start(&mut filter, &host, 11, &new);
    end(&mut filter, &host, 10, &old);
    assert_eq!((requests(&host, "/a/{x}"), in_progress(&host, "/a/{x}")), (Some(1), Some(0)));
    end(&mut filter, &host, 11, &new);
    filter.tick(2, &host);
    assert_eq!((requests(&host, "/a/{y}"), in_progress(&host, "/a/{y}")), (Some(1), Some(0)));
    assert_eq!(filter.plugins().count(), 1);
}

#[test]
fn an_openapi_answer_goes_to_the_configuration_that_asked() {
    let (host, mut filter) = (MemoryHost::new(), Filter::new());
    let openapi = |path: &str| format!(r#"{{"openapi": {{"cluster": "app", "path": "{path}"}}}}"#);
    filter.configure(1, "rm", openapi("/v1.json").as_bytes(), &host).unwrap();
    assert_eq!(filter.tick(1, &host).map(|f| f.path), Some("/v1.json".to_string()));
    filter.openapi_dispatched(1, Ok(7), &host);
    // Configured again while the call is out: the new configuration fetches its own document
    // (the old one gave the proxy's fetch slot back).
    filter.configure(1, "rm", openapi("/v2.json").as_bytes(), &host).unwrap();
    assert_eq!(filter.tick(1, &host).map(|f| f.path), Some("/v2.json".to_string()));
    filter.openapi_dispatched(1, Ok(8), &host);
    let v1 = br#"{"openapi": "3.0.0", "paths": {"/one": {}}}"#;
    filter.openapi_response(7, (Some(200), v1.len()), &v1[..], &host);
    // The old configuration took its answer and went; the new one still waits for its own.
    assert_eq!(filter.plugins().count(), 1);
    assert_eq!(filter.plugins().next().map(|p| p.resolver().openapi_templates()), Some(0));
    let v2 = br#"{"openapi": "3.0.0", "paths": {"/two": {}, "/three": {}}}"#;
    filter.openapi_response(8, (Some(200), v2.len()), &v2[..], &host);
    assert_eq!(filter.plugins().next().map(|p| p.resolver().openapi_templates()), Some(2));
}
