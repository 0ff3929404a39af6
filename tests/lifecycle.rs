//! Complete request lifecycles (headers, body chunks, response, log), each run on two hosts:
//! the filter's Rust core natively, and the compiled `routemeter.wasm` under wasmtime. Both
//! must give exactly the asserted values, and exactly the same series as each other (a
//! difference is a bug in one of them).

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proxy_sim::{Faults, Host, SimEnvoy, Stream, Vm};
use routemeter_tests::native::NativeHost;

/// The demo's plugin configuration, read from envoy/envoy.yaml, without its OpenAPI source
/// (the simulated hosts have no demo cluster to fetch it from).
fn demo() -> String {
    testkit::bootstrap::demo_plugin_config(false).to_string()
}

const UPLOAD: &str = "/api/v1/upload";
const STATUS: &str = "/api/v1/status/{job_id}";
const DOWNLOAD: &str = "/api/v1/download/{job_id}";

fn requests(envoy: &SimEnvoy, method: &str, route: &str, status: &str) -> Option<u64> {
    envoy.counter("http_requests_total", &[("method", method), ("route", route), ("status", status)])
}

fn in_progress(envoy: &SimEnvoy, method: &str, route: &str) -> Option<i64> {
    envoy.gauge("http_requests_in_progress", &[("method", method), ("route", route)])
}

/// The one sample of an exact histogram series (its sum, when its count is 1).
fn one(envoy: &SimEnvoy, metric: &str, labels: &[(&str, &str)]) -> Option<u64> {
    let h = envoy.exact(metric, labels)?;
    assert_eq!(h.count, 1, "{metric} {labels:?}: {h:?}");
    Some(h.sum)
}

const QUANTILES: &str = "http_request_duration_quantile_microseconds";

/// The shared-data keys of the simulated plugin (it has no name).
fn keys() -> routemeter::shared::Keys {
    routemeter::shared::Keys::for_plugin("")
}

/// The series list of the hand-over, every chunk.
fn listed_series(envoy: &SimEnvoy) -> String {
    let chunks = (0..).map_while(|i| envoy.shared_data(&keys().series_chunk(i)));
    chunks.map(|c| String::from_utf8(c).unwrap()).collect()
}

fn hist(envoy: &SimEnvoy, metric: &str, method: &str, route: &str) -> Option<u64> {
    one(envoy, metric, &[("method", method), ("route", route)])
}

fn successful_chunked_upload_records_every_series_exactly<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let mut up = vm.request("POST", "/api/v1/upload?filename=report.xlsx");
    assert_eq!(in_progress(envoy, "POST", UPLOAD), Some(1));
    up.send_body(65_536).send_body(65_536).send_body(1_234);
    envoy.advance_ms(42);
    envoy.advance_ns(999_999);
    up.respond(201, 60).response_body(17);
    up.complete();

    assert_eq!(requests(envoy, "POST", UPLOAD, "201"), Some(1));
    assert_eq!(in_progress(envoy, "POST", UPLOAD), Some(0));
    // 42.999999 ms, rounded up.
    assert_eq!(hist(envoy, "http_request_duration_milliseconds", "POST", UPLOAD), Some(43));
    assert_eq!(hist(envoy, "http_request_body_bytes", "POST", UPLOAD), Some(132_306));
    assert_eq!(hist(envoy, "http_response_body_bytes", "POST", UPLOAD), Some(77));
    assert_eq!(envoy.counter("uploads_total", &[("route", UPLOAD), ("status", "success")]), Some(1));
    assert_eq!(one(envoy, "upload_file_size_bytes", &[("route", UPLOAD)]), Some(132_306));
    // 132,306 bytes: between the 100 kB and 500 kB bounds.
    let sizes = envoy.exact("upload_file_size_bytes", &[("route", UPLOAD)]).unwrap();
    assert_eq!(sizes.per_bucket().into_iter().filter(|(_, n)| *n > 0).collect::<Vec<_>>(), [("500000".to_string(), 1)]);
    // The latency quantiles of the route: 42,999,999 ns is 43,000 us, reported as the middle
    // of its HdrHistogram bucket (42,752-43,007 us), for every quantile of one sample.
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        assert_eq!(envoy.gauge(QUANTILES, &[("route", UPLOAD), ("quantile", q)]), Some(42_880), "p{q}");
    }
    // Nothing else: requests and in-flight; the duration histogram (15 bounds, +Inf, sum,
    // count) and two size histograms (11 bounds + 3); the upload outcome and size; four
    // quantile gauges; the config gauge.
    assert_eq!(envoy.series().len(), 2 + 18 + 14 + 14 + 1 + 14 + 4 + 1, "{:#?}", envoy.series());
}

fn upload_outcomes_follow_the_default_table<H: Host>(host: &H) {
    let cases: &[(u16, &str)] = &[
        (201, "success"),
        (413, "failed_size"),
        (422, "failed_validation"),
        (400, "failed_validation"),
        (500, "failed_error"),
        (503, "failed_error"),
        (302, "failed_error"),
    ];
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let mut seen: std::collections::BTreeMap<&str, u64> = Default::default();
    for (status, outcome) in cases {
        let mut up = vm.request("POST", UPLOAD);
        up.send_body(10).respond(*status, 5);
        up.complete();
        *seen.entry(outcome).or_default() += 1;
        assert_eq!(
            envoy.counter("uploads_total", &[("route", UPLOAD), ("status", outcome)]),
            Some(seen[outcome]),
            "{status}"
        );
        assert_eq!(requests(envoy, "POST", UPLOAD, &status.to_string()), Some(1));
    }
    assert_eq!(envoy.label_values("uploads_total", "status").len(), seen.len());
}

fn download_outcomes_follow_the_default_table<H: Host>(host: &H) {
    let cases: &[(u16, &str)] = &[
        (200, "success"),
        (206, "success"),
        (404, "failed_not_found"),
        (409, "failed_not_ready"),
        (425, "failed_not_ready"),
        (500, "failed_error"),
        (403, "failed_error"),
    ];
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let mut seen: std::collections::BTreeMap<&str, u64> = Default::default();
    for (status, outcome) in cases {
        let mut down = vm.request("GET", "/api/v1/download/5f0c2a3e-9b1d-4c7a-8e2f-0123456789ab");
        down.respond(*status, 0);
        down.complete();
        *seen.entry(outcome).or_default() += 1;
        assert_eq!(
            envoy.counter("downloads_total", &[("route", DOWNLOAD), ("status", outcome)]),
            Some(seen[outcome]),
            "{status}"
        );
    }
    assert_eq!(envoy.label_values("downloads_total", "status").len(), seen.len());
}

fn reset_before_response_is_status_0_and_aborted<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let mut up = vm.request("POST", UPLOAD);
    up.send_body(4096);
    up.complete(); // client went away: on_log with no response code
    assert_eq!(requests(envoy, "POST", UPLOAD, "0"), Some(1));
    assert_eq!(envoy.counter("uploads_total", &[("route", UPLOAD), ("status", "aborted")]), Some(1));
    assert_eq!(one(envoy, "upload_file_size_bytes", &[("route", UPLOAD)]), Some(4096));
    assert_eq!(in_progress(envoy, "POST", UPLOAD), Some(0));
}

fn in_progress_counts_overlapping_requests_and_returns_to_zero<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let a = vm.request("GET", "/api/v1/status/1");
    let b = vm.request("GET", "/api/v1/status/2");
    let c = vm.request("GET", "/api/v1/status/3");
    assert_eq!(in_progress(envoy, "GET", STATUS), Some(3));
    a.complete();
    assert_eq!(in_progress(envoy, "GET", STATUS), Some(2));
    c.complete();
    b.complete();
    assert_eq!(in_progress(envoy, "GET", STATUS), Some(0));
    assert_eq!(requests(envoy, "GET", STATUS, "0"), Some(3));
}

fn a_second_on_log_does_not_count_again<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let mut s = vm.request("GET", "/api/v1/status/1");
    s.respond(200, 10);
    s.log();
    s.log();
    assert_eq!(requests(envoy, "GET", STATUS, "200"), Some(1));
    assert_eq!(hist(envoy, "http_response_body_bytes", "GET", STATUS), Some(10));
    assert_eq!(in_progress(envoy, "GET", STATUS), Some(0));
}

fn excluded_paths_record_nothing<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    for path in ["/health", "/health?probe=1", "/health/"] {
        let mut s = vm.request("GET", path);
        s.respond(200, 15);
        s.complete();
    }
    assert_eq!(envoy.series().len(), 1, "only the config gauge: {:#?}", envoy.series());
    // /healthz is not /health.
    vm.request("GET", "/healthz").complete();
    assert_eq!(requests(envoy, "GET", "/healthz", "0"), Some(1));
}

fn templates_are_per_method_and_unknown_paths_use_the_heuristic<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let paths = [
        ("GET", "/api/v1/upload"),
        ("GET", "/api/v2/jobs/12345/files/5f0c2a3e-9b1d-4c7a-8e2f-0123456789ab?x=1"),
        ("GET", "/api/v2/jobs/777/files/0123456789abcdef"),
        ("DELETE", "/api/v1/status/9"),
        ("PROPFIND", "/api/v1/status/9"),
        ("get", "/a/b/c/d/e/f/g/h/i"),
        ("GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r"),
    ];
    for (method, path) in paths {
        let mut s = vm.request(method, path);
        s.respond(404, 0);
        s.complete();
    }
    assert_eq!(requests(envoy, "GET", "/api/v1/upload", "404"), Some(1));
    assert_eq!(envoy.label_values("uploads_total", "route"), Vec::<String>::new());
    assert_eq!(requests(envoy, "GET", "/api/v2/jobs/{id}/files/{id}", "404"), Some(2));
    assert_eq!(requests(envoy, "DELETE", STATUS, "404"), Some(1));
    assert_eq!(requests(envoy, "OTHER", STATUS, "404"), Some(1));
    // Sixteen segments are kept; deeper paths end in `/*`.
    assert_eq!(requests(envoy, "OTHER", "/a/b/c/d/e/f/g/h/i", "404"), Some(1));
    assert_eq!(requests(envoy, "GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/*", "404"), Some(1));
}

fn hostile_paths_are_counted_with_safe_labels<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm("{}").unwrap();
    let paths: &[&[u8]] = &[
        b"/caf\xc3\xa9/\xff\xfe",
        b"/a%zz%/%%",
        b"/q\"uote/back\\slash",
        b"/new\nline/tab\tx",
        b"/x;route=.=evil;.;/y",
        b"/{id}/{id}",
        b"",
    ];
    for path in paths {
        let mut s = vm.request_raw(b"GET", path, None);
        s.respond(200, 0);
        s.complete();
    }
    let routes = envoy.label_values("http_requests_total", "route");
    assert_eq!(
        routes,
        vec![
            "/",
            "/_id_/_id_",
            "/a%zz%/%%",
            "/caf__/__",
            "/new_line/tab_x",
            "/q_uote/back_slash",
            "/x_route_._evil_._/y"
        ]
    );
    let total: u64 = routes.iter().map(|r| requests(envoy, "GET", r, "200").unwrap()).sum();
    assert_eq!(total, paths.len() as u64);
}

fn route_cap_is_global_across_vms_and_overflows_into_other<H: Host>(host: &H) {
    let envoy = host.envoy();
    let config = r#"{"routes": [{"template": "/api/v1/upload"}], "max_routes": 3}"#;
    let worker1 = host.vm(config).unwrap();
    let worker2 = host.vm(config).unwrap();
    for (vm, path) in [
        (&worker1, "/a"),
        (&worker2, "/b"),
        (&worker2, "/a"),
        (&worker1, "/c"),
        (&worker2, "/d"),
        (&worker1, "/e"),
        (&worker2, "/c"),
        (&worker1, "/api/v1/upload"),
    ] {
        let mut s = vm.request("GET", path);
        s.respond(200, 0);
        s.complete();
    }
    assert_eq!(
        envoy.label_values("http_requests_total", "route"),
        vec!["/a", "/api/v1/upload", "/b", "/c", "__other__"]
    );
    assert_eq!(requests(envoy, "GET", "/a", "200"), Some(2));
    assert_eq!(requests(envoy, "GET", "/c", "200"), Some(2));
    assert_eq!(requests(envoy, "GET", "__other__", "200"), Some(2));
    // The shared learned state holds exactly the three labels.
    let shared = routemeter::route::learn::decode(&envoy.shared_data(&keys().learned_routes()).unwrap()).unwrap();
    assert_eq!(shared.label_counts(), (3, 3));
}

fn without_shared_data_the_cap_holds_per_vm<H: Host>(host: &H) {
    let envoy = host.envoy();
    envoy.set_faults(Faults { shared_data: true, ..Faults::default() });
    let vm = host.vm(r#"{"max_routes": 2}"#).unwrap();
    for path in ["/a", "/b", "/c", "/a"] {
        vm.request("GET", path).complete();
    }
    assert_eq!(envoy.label_values("http_requests_total", "route"), vec!["/a", "/b", "__other__"]);
}

fn many_distinct_paths_keep_memory_and_series_bounded<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(r#"{"max_routes": 50}"#).unwrap();
    for i in 0..5_000 {
        let mut s = vm.request("GET", &format!("/p{i}/q"));
        s.respond(200, 0);
        s.complete();
    }
    // The first 50 paths fill the cap; 13 more are `__other__`; the 64th distinct value at
    // the root makes it a parameter: the 50 labels are retired into `/{id}/q`, which takes
    // everything from then on.
    assert_eq!(envoy.label_values("http_requests_total", "route").len(), 52);
    assert_eq!(requests(envoy, "GET", "__other__", "200"), Some(13));
    assert_eq!(requests(envoy, "GET", "/{id}/q", "200"), Some(4_937));
}

fn metric_ids_are_defined_once_per_series<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let run = |n: usize| {
        for i in 0..n {
            let mut s = vm.request("GET", &format!("/api/v1/status/{i}"));
            s.respond(200, 10);
            s.complete();
        }
    };
    let configured = envoy.define_calls(); // the config gauge
    run(1);
    let after_first = envoy.define_calls();
    // requests{200}, in-flight; duration (15 bounds, +Inf, sum, count), two sizes (11 + 3
    // each); four latency quantile gauges.
    assert_eq!(after_first - configured, 2 + 18 + 14 + 14 + 4);
    run(100);
    assert_eq!(envoy.define_calls(), after_first);
}

/// A module update starts VMs in a new configuration; Envoy keeps only the stats some
/// configuration holds. So every series a flush defines is listed in shared data, and a VM
/// being configured defines every listed series before anything else (`metrics::handover`).
fn a_new_vm_first_defines_every_series_the_others_listed<H: Host>(host: &H) {
    let envoy = host.envoy();
    let old = host.vm(&demo()).unwrap();
    for (method, path, status) in [("GET", "/api/v1/status/1", 200), ("POST", "/api/v1/upload", 201)] {
        let mut s = old.request(method, path);
        s.respond(status, 10);
        s.complete();
    }
    old.tick();
    let listed = listed_series(envoy);
    // Each request: requests{status}, in-flight, duration (15 bounds, +Inf, sum, count), two
    // sizes (11 + 3 each); the upload also uploads_total{outcome} and its file size (11 + 3).
    assert_eq!(listed.lines().count(), 48 + 48 + 1 + 14);
    assert!(listed.lines().all(|l| l.starts_with("c ") || l.starts_with("g ")), "{listed}");
    let before = envoy.define_calls();
    let new = host.vm(&demo()).unwrap();
    // Every listed series, then the configuration gauge.
    assert_eq!(envoy.define_calls() - before, 111 + 1);
    // A series added later is taken over alone, not with the whole list again (each
    // definition costs Envoy a metric id for the life of the VM).
    let before = envoy.define_calls();
    let mut s = old.request("GET", "/api/v1/status/2");
    s.respond(404, 10);
    s.complete();
    old.tick();
    new.tick();
    // The old VM defines requests{404}; the new one takes it over.
    assert_eq!(envoy.define_calls() - before, 2);
}

fn route_name_label_when_configured<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(r#"{"use_route_name": true, "routes": [{"template": "/api/v1/status/{id}"}]}"#).unwrap();
    vm.request_on_route("GET", "/api/v1/status/1", "status_route").complete();
    vm.request_on_route("GET", "/other/42", "catch;all").complete();
    vm.request_on_route("GET", "/other/43", "").complete();
    vm.request("GET", "/other/44").complete();
    assert_eq!(
        envoy.label_values("http_requests_total", "route"),
        vec!["/api/v1/status/{id}", "/other/{id}", "catch_all"]
    );
    assert_eq!(requests(envoy, "GET", "/other/{id}", "0"), Some(2));
}

fn configured_outcome_overrides<H: Host>(host: &H) {
    let envoy = host.envoy();
    let config = r#"{"routes": [{"template": "/dl/{id}", "kind": "download",
        "outcomes": {"410": "failed_expired", "4xx": "failed_client", "0": "cancelled"}}]}"#;
    let vm = host.vm(config).unwrap();
    for status in [410u16, 404, 409, 200, 500] {
        let mut s = vm.request("GET", "/dl/1");
        s.respond(status, 0);
        s.complete();
    }
    vm.request("GET", "/dl/1").complete();
    let got: Vec<(String, u64)> = envoy
        .label_values("downloads_total", "status")
        .into_iter()
        .map(|o| {
            let n = envoy.counter("downloads_total", &[("route", "/dl/{id}"), ("status", &o)]).unwrap();
            (o, n)
        })
        .collect();
    let want: Vec<(String, u64)> =
        [("cancelled", 1), ("failed_client", 2), ("failed_error", 1), ("failed_expired", 1), ("success", 1)]
            .iter()
            .map(|(o, n)| (o.to_string(), *n))
            .collect();
    assert_eq!(got, want);
}

fn durations_are_whole_milliseconds_rounded_up<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm("{}").unwrap();
    for ns in [0u64, 999_999, 1_000_000, 1_999_999, 2_500_000, 60_000_000_000] {
        let s = vm.request("GET", "/t");
        envoy.advance_ns(ns);
        s.complete();
    }
    // 0, 1, 1, 2, 3 and 60,000 ms.
    let h = envoy.exact("http_request_duration_milliseconds", &[("method", "GET"), ("route", "/t")]).unwrap();
    let filled: Vec<(String, u64)> = h.per_bucket().into_iter().filter(|(_, n)| *n > 0).collect();
    let want: Vec<(String, u64)> =
        [("1", 3), ("2.5", 1), ("5", 1), ("60000", 1)].iter().map(|(l, n)| (l.to_string(), *n)).collect();
    assert_eq!((filled, h.sum, h.count), (want, 60_007, 6));
}

/// Failing host calls degrade what they would have told (labels, durations) and delay what
/// failing stat calls would have published; they lose no count: the request path makes no
/// stat call, and a flush that cannot define a series keeps its counts for the next one.
fn host_failures_degrade_labels_and_delay_counts<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    envoy.set_faults(Faults { metrics: true, shared_data: true, headers: true, clock: true });
    let started_broken = vm.request("POST", UPLOAD);
    let mut s = vm.request("GET", "/x/1");
    s.respond(200, 5);
    s.complete();
    // A flush happened (reading settles every VM) and could define nothing.
    assert_eq!(envoy.series().len(), 1, "only the config gauge: {:#?}", envoy.series());
    envoy.set_faults(Faults::default());
    started_broken.complete();
    let mut ok = vm.request("POST", UPLOAD);
    ok.respond(201, 0);
    ok.complete();
    // Headers (request and `:status`) were unreadable for the broken requests: counted as
    // OTHER on "/" with status 0, not dropped.
    assert_eq!(requests(envoy, "OTHER", "/", "0"), Some(2));
    assert_eq!(requests(envoy, "OTHER", "/", "200"), None);
    assert_eq!(in_progress(envoy, "OTHER", "/"), Some(0));
    assert_eq!(requests(envoy, "POST", UPLOAD, "201"), Some(1));
    assert_eq!(in_progress(envoy, "POST", UPLOAD), Some(0));
    // No clock: Envoy's request.duration stands in (no time passed here).
    let d = envoy.exact("http_request_duration_milliseconds", &[("method", "OTHER"), ("route", "/")]).unwrap();
    assert_eq!((d.count, d.sum), (2, 0));
}

fn empty_config_records_with_defaults<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm("").unwrap();
    let mut s = vm.request("POST", "/api/v1/upload");
    s.send_body(3).respond(201, 0);
    s.complete();
    assert_eq!(requests(envoy, "POST", "/api/v1/upload", "201"), Some(1));
    // No kind configured: only the per-(method, route) series, no upload series.
    let mut names: Vec<String> =
        envoy.series().into_keys().map(|(m, _)| m).filter(|m| m != "routemeter_config_invalid").collect();
    names.dedup();
    assert_eq!(
        names,
        vec![
            "http_request_body_bytes_bucket",
            "http_request_body_bytes_count",
            "http_request_body_bytes_sum",
            "http_request_duration_milliseconds_bucket",
            "http_request_duration_milliseconds_count",
            "http_request_duration_milliseconds_sum",
            "http_request_duration_quantile_microseconds",
            "http_requests_in_progress",
            "http_requests_total",
            "http_response_body_bytes_bucket",
            "http_response_body_bytes_count",
            "http_response_body_bytes_sum",
        ]
    );
    let labels = [("method", "POST"), ("route", "/api/v1/upload")];
    assert_eq!(one(envoy, "http_request_body_bytes", &labels), Some(3));
    assert_eq!(one(envoy, "http_request_duration_milliseconds", &labels), Some(0));
    assert_eq!(one(envoy, "http_response_body_bytes", &labels), Some(0));
    assert_eq!(in_progress(envoy, "POST", "/api/v1/upload"), Some(0));
}

fn config_validity_is_a_gauge<H: Host>(host: &H) {
    let envoy = host.envoy();
    let err = host.vm(r#"{"max_routes": 0}"#).err().unwrap();
    assert_eq!(err.to_string(), "max_routes: must be between 1 and 10000, got 0");
    assert_eq!(envoy.gauge("routemeter_config_invalid", &[]), Some(1));
    host.vm(&demo()).unwrap();
    assert_eq!(envoy.gauge("routemeter_config_invalid", &[]), Some(0));
}

/// Local replies of filters before routemeter (authz, rate limits) and codec-level 400s
/// reach only `on_log`; they are counted there, without touching the in-flight gauge.
fn streams_first_seen_at_their_end_are_counted<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    vm.local_reply_before_filter(b"POST", b"/api/v1/upload?filename=a.xlsx", 0, 403, 19);
    vm.local_reply_before_filter(b"", b"", 0, 400, 0);
    assert_eq!(requests(envoy, "POST", UPLOAD, "403"), Some(1));
    assert_eq!(requests(envoy, "OTHER", "/", "400"), Some(1));
    assert_eq!(envoy.counter("uploads_total", &[("route", UPLOAD), ("status", "failed_validation")]), Some(1));
    assert_eq!(one(envoy, "upload_file_size_bytes", &[("route", UPLOAD)]), Some(0));
    assert_eq!(hist(envoy, "http_response_body_bytes", "POST", UPLOAD), Some(19));
    assert_eq!(hist(envoy, "http_request_duration_milliseconds", "POST", UPLOAD), Some(0));
    assert_eq!(in_progress(envoy, "POST", UPLOAD), Some(0));
    assert_eq!(in_progress(envoy, "OTHER", "/"), Some(0));
}

/// A stream first seen at its end takes the request body size Envoy counted (a rate limit
/// or a size check before routemeter answered after part of the upload arrived), not 0.
fn streams_first_seen_at_their_end_take_envoys_request_size<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    vm.local_reply_before_filter(b"POST", b"/api/v1/upload?filename=a.xlsx", 1_048_576, 413, 27);
    assert_eq!(envoy.counter("uploads_total", &[("route", UPLOAD), ("status", "failed_size")]), Some(1));
    assert_eq!(one(envoy, "upload_file_size_bytes", &[("route", UPLOAD)]), Some(1_048_576));
    assert_eq!(hist(envoy, "http_request_body_bytes", "POST", UPLOAD), Some(1_048_576));
    assert_eq!(hist(envoy, "http_response_body_bytes", "POST", UPLOAD), Some(27));
}

/// The root context configured again (a configuration update Envoy delivers to a running
/// root) while requests are in flight: they end on the configuration they started with (its
/// route labels, its upload rule, the in-flight gauge they raised), new ones take the new
/// configuration; a rejected configuration leaves the requests in flight to the old one.
fn a_root_configured_again_keeps_its_requests_in_flight_on_the_old_configuration<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let mut up = vm.request("POST", "/api/v1/upload?filename=a.csv");
    let mut status = vm.request("GET", "/api/v1/status/7");
    assert_eq!(in_progress(envoy, "POST", UPLOAD), Some(1));
    // The new configuration knows no upload route and another status template.
    vm.reconfigure(r#"{"routes": [{"template": "/api/v1/status/{id}"}], "learn": false}"#).unwrap();
    let mut newer = vm.request("GET", "/api/v1/status/8");
    up.send_body(5_000).respond(201, 10);
    up.complete();
    status.respond(200, 10);
    status.complete();
    newer.respond(200, 10);
    newer.complete();
    assert_eq!(requests(envoy, "POST", UPLOAD, "201"), Some(1));
    assert_eq!(envoy.counter("uploads_total", &[("route", UPLOAD), ("status", "success")]), Some(1));
    assert_eq!(one(envoy, "upload_file_size_bytes", &[("route", UPLOAD)]), Some(5_000));
    assert_eq!(requests(envoy, "GET", STATUS, "200"), Some(1));
    assert_eq!(requests(envoy, "GET", "/api/v1/status/{id}", "200"), Some(1));
    assert_eq!((in_progress(envoy, "POST", UPLOAD), in_progress(envoy, "GET", STATUS)), (Some(0), Some(0)));
    assert_eq!(in_progress(envoy, "GET", "/api/v1/status/{id}"), Some(0));
    assert_eq!(envoy.label_values("http_requests_total", "route"), ["/api/v1/status/{id}", STATUS, UPLOAD]);
    // Rejected: the request in flight is still counted, on its own configuration.
    let mut last = vm.request("GET", "/api/v1/status/9");
    assert_eq!(vm.reconfigure(r#"{"max_routes": 0}"#).unwrap_err(), "max_routes: must be between 1 and 10000, got 0");
    last.respond(503, 0);
    last.complete();
    assert_eq!(requests(envoy, "GET", "/api/v1/status/{id}", "503"), Some(1));
    assert_eq!(in_progress(envoy, "GET", "/api/v1/status/{id}"), Some(0));
    assert_eq!(envoy.gauge("routemeter_config_invalid", &[]), Some(1));
}

/// Attribute labels (seed 000's conversions by output format and compression): a query
/// parameter or a header becomes a label of every series of its route; values outside the
/// list become `other`, absent ones the default; a global header label reaches learned routes.
fn attribute_labels_label_every_series_of_their_route<H: Host>(host: &H) {
    let envoy = host.envoy();
    let config = r#"{
        "labels": [{"name": "tenant", "header": "x-tenant", "values": ["acme"]}],
        "routes": [{"template": "/convert", "methods": ["POST"], "kind": "upload", "labels": [
            {"name": "format", "query": "output_format", "values": ["csv", "xlsx"]},
            {"name": "compression", "query": "compression", "values": ["gzip"], "default": "identity"}]}],
        "latency_quantiles": {"quantiles": []}
    }"#;
    let vm = host.vm(config).unwrap();
    let labels = |format: &'static str, compression: &'static str, tenant: &'static str| {
        [
            ("method", "POST"),
            ("route", "/convert"),
            ("format", format),
            ("compression", compression),
            ("tenant", tenant),
        ]
    };
    let mut up = vm.request_with("POST", "/convert?output_format=csv&compression=gzip", &[("x-tenant", "acme")]);
    assert_eq!(envoy.gauge("http_requests_in_progress", &labels("csv", "gzip", "acme")), Some(1));
    up.send_body(1_000).respond(201, 10);
    up.complete();
    for i in 0..50 {
        let mut s = vm.request_with("POST", &format!("/convert?output_format=v{i}"), &[("x-tenant", &format!("t{i}"))]);
        s.send_body(10).respond(422, 0);
        s.complete();
    }
    let mut s = vm.request("GET", "/status");
    s.respond(200, 5);
    s.complete();
    let requests = |l: [(&str, &str); 5], status: &str| {
        let mut l = l.to_vec();
        l.push(("status", status));
        envoy.counter("http_requests_total", &l)
    };
    assert_eq!(requests(labels("csv", "gzip", "acme"), "201"), Some(1));
    assert_eq!(requests(labels("other", "identity", "other"), "422"), Some(50));
    let uploads = |format: &str, compression: &str, tenant: &str, status: &str| {
        let l = [
            ("route", "/convert"),
            ("format", format),
            ("compression", compression),
            ("tenant", tenant),
            ("status", status),
        ];
        envoy.counter("uploads_total", &l)
    };
    assert_eq!(uploads("csv", "gzip", "acme", "success"), Some(1));
    assert_eq!(uploads("other", "identity", "other", "failed_validation"), Some(50));
    let size = [("route", "/convert"), ("format", "csv"), ("compression", "gzip"), ("tenant", "acme")];
    assert_eq!(one(envoy, "upload_file_size_bytes", &size), Some(1_000));
    assert_eq!(one(envoy, "http_request_body_bytes", &labels("csv", "gzip", "acme")), Some(1_000));
    assert_eq!(envoy.gauge("http_requests_in_progress", &labels("csv", "gzip", "acme")), Some(0));
    // The global label on a learned route; 50 hostile values made one label set.
    assert_eq!(
        envoy.counter(
            "http_requests_total",
            &[("method", "GET"), ("route", "/status"), ("status", "200"), ("tenant", "none")]
        ),
        Some(1)
    );
    assert_eq!(envoy.label_values("http_requests_total", "format"), ["csv", "other"]);
}

/// A route's own metric names (seed 000's conversions): outcomes by attribute labels under
/// the family's name, durations of successful conversions only, in seconds; a request with
/// the same route label that did not match the rule (another method) is not timed.
fn a_route_family_names_and_times_its_conversions<H: Host>(host: &H) {
    let envoy = host.envoy();
    let config = r#"{
        "names": {"profile": "prometheus_client"},
        "learn": false,
        "duration_buckets_ms": [100, 500],
        "routes": [{"template": "/convert", "methods": ["POST"], "kind": "upload",
            "outcomes": {"2xx": "success", "5xx": "error"},
            "labels": [{"name": "format", "query": "output_format", "values": ["csv", "json"], "default": "csv"}],
            "names": {
                "uploads_total": "excel_conversions_total",
                "http_request_duration_milliseconds": {"name": "excel_conversion_duration_seconds", "outcome": "success"}
            }}],
        "latency_quantiles": {"quantiles": []}
    }"#;
    let vm = host.vm(config).unwrap();
    for (method, path, ms, status) in [
        ("POST", "/convert?output_format=json", 250, 200),
        ("POST", "/convert", 50, 200),
        ("POST", "/convert", 700, 500),
        ("GET", "/convert?output_format=json", 50, 405),
    ] {
        let mut s = vm.request(method, path);
        envoy.advance_ns(ms * 1_000_000);
        s.respond(status, 10);
        s.complete();
    }
    let conversions =
        |status, format| envoy.counter("excel_conversions_total", &[("status", status), ("format", format)]);
    assert_eq!(
        (conversions("success", "json"), conversions("success", "csv"), conversions("error", "csv")),
        (Some(1), Some(1), Some(1))
    );
    let bucket =
        |format, le| envoy.counter("excel_conversion_duration_seconds_bucket", &[("format", format), ("le", le)]);
    assert_eq!(
        (bucket("json", "0.1"), bucket("json", "0.5"), bucket("csv", "0.1"), bucket("csv", "+Inf")),
        (Some(0), Some(1), Some(1), Some(1))
    );
    let sum = |format| envoy.counter("excel_conversion_duration_milliseconds_sum", &[("format", format)]);
    assert_eq!((sum("json"), sum("csv")), (Some(250), Some(50)));
    // The GET: counted as a request of the route, not timed as a conversion.
    assert_eq!(envoy.counter("excel_conversion_duration_seconds_count", &[]), None);
    assert_eq!(
        envoy.counter("http_requests_total", &[("method", "GET"), ("endpoint", "/convert"), ("status", "405")]),
        Some(1)
    );
}

/// Envoy drops a trailing dot from tag values, so no label may end in one.
fn labels_never_end_in_a_dot<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(r#"{"use_route_name": true}"#).unwrap();
    for path in ["/q/c", "/q/c.", "/q/c.."] {
        vm.request("GET", path).complete();
    }
    vm.request_on_route("GET", "/x", ".").complete();
    assert_eq!(envoy.label_values("http_requests_total", "route"), vec!["/q/c", "/q/c._", "/q/c_", "_"]);
    assert_eq!(host.vm(r#"{"routes": [{"template": "/v1/file."}]}"#).err().unwrap(),
        "routes[0].template: template \"/v1/file.\" must not end with '.': Envoy drops a trailing dot from label values");
}

/// An upload rule and a download rule may share a template; their counters stay apart.
fn upload_and_download_rules_on_one_template<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host
        .vm(r#"{"routes": [
        {"template": "/files/{id}", "methods": ["PUT"], "kind": "upload"},
        {"template": "/files/{id}", "methods": ["GET"], "kind": "download"}]}"#)
        .unwrap();
    let mut up = vm.request("PUT", "/files/1");
    up.send_body(10).respond(201, 0);
    up.complete();
    let mut down = vm.request("GET", "/files/1");
    down.respond(200, 10);
    down.complete();
    assert_eq!(envoy.counter("uploads_total", &[("route", "/files/{id}"), ("status", "success")]), Some(1));
    assert_eq!(envoy.counter("downloads_total", &[("route", "/files/{id}"), ("status", "success")]), Some(1));
}

/// What a VM counted since its last flush reaches Envoy when the VM stops (a new
/// configuration, a module update, shutdown): a reload loses nothing.
fn a_stopping_vm_flushes_what_it_counted<H: Host>(host: &H) {
    let envoy = host.envoy();
    let vm = host.vm(&demo()).unwrap();
    let mut up = vm.request("POST", UPLOAD);
    up.send_body(100).respond(201, 0);
    up.complete();
    let open = vm.request("GET", "/api/v1/status/7");
    vm.stop();
    assert_eq!(requests(envoy, "POST", UPLOAD, "201"), Some(1));
    assert_eq!(envoy.counter("uploads_total", &[("route", UPLOAD), ("status", "success")]), Some(1));
    assert_eq!(one(envoy, "upload_file_size_bytes", &[("route", UPLOAD)]), Some(100));
    // The request still open when the VM went away never finishes in it: the gauge stays
    // raised by exactly that one, as the README says.
    assert_eq!(in_progress(envoy, "GET", STATUS), Some(1));
    std::mem::forget(open);
}

/// The quantile gauges describe the whole proxy: the windows of two VMs are merged (90
/// requests of 10 ms on one, 10 of 500 ms on the other) and published once; a VM that stops
/// leaves the merge; a route whose window empties reads 0.
fn latency_quantiles_merge_every_vm_and_follow_the_window<H: Host>(host: &H) {
    let envoy = host.envoy();
    let (a, b) = (host.vm(&demo()).unwrap(), host.vm(&demo()).unwrap());
    for i in 0..90 {
        let mut s = a.request("GET", &format!("/api/v1/status/{i}"));
        envoy.advance_ms(10);
        s.respond(200, 0);
        s.complete();
    }
    for i in 0..10 {
        let mut s = b.request("GET", &format!("/api/v1/status/{i}"));
        envoy.advance_ms(500);
        s.respond(200, 0);
        s.complete();
    }
    // One tick for every VM: each shares its window; the first one to tick publishes (from
    // the next tick on, it sees the other's window too; reading the stats ticks again).
    envoy.settle();
    let q = |quantile: &str| envoy.gauge(QUANTILES, &[("route", STATUS), ("quantile", quantile)]);
    // The middle of the HdrHistogram bucket: 10,016 for 10 ms (bucket 9,984-10,047 us) and
    // 500,736 for 500 ms (499,712-501,759 us), within 0.2 % of the truth.
    assert_eq!([q("0.5"), q("0.9"), q("0.99"), q("0.999")], [Some(10_016), Some(10_016), Some(500_736), Some(500_736)]);
    for (got, truth) in [(10_016.0, 10_000.0), (500_736.0, 500_000.0)] {
        assert!(f64::abs(got - truth) / truth < 0.01);
    }
    // The quantiles were published by one VM, defined once per label set.
    assert_eq!(envoy.label_values(QUANTILES, "quantile"), ["0.5", "0.9", "0.99", "0.999"]);
    b.stop();
    envoy.settle();
    assert_eq!([q("0.5"), q("0.99")], [Some(10_016), Some(10_016)], "the stopped VM's window left the merge");
    // 61 s later every sub-window of the 60 s window has passed.
    envoy.advance_ms(61_000);
    envoy.settle();
    assert_eq!([q("0.5"), q("0.9"), q("0.99"), q("0.999")], [Some(0); 4]);
}

/// The learned labels outlive VMs. A VM configured with a lower cap keeps serving the labels
/// that already exist (their stats exist in Envoy either way) and creates no new one until
/// the count is under its own cap.
fn a_lowered_cap_holds_after_a_reload<H: Host>(host: &H) {
    let envoy = host.envoy();
    let old = host.vm(r#"{"max_routes": 5}"#).unwrap();
    for p in ["/a", "/b", "/c", "/d", "/e"] {
        old.request("GET", p).complete();
    }
    let new = host.vm(r#"{"max_routes": 2}"#).unwrap();
    for p in ["/e", "/a", "/f", "/d", "/b", "/c", "/g"] {
        new.request("POST", p).complete();
    }
    let post: Vec<String> = envoy
        .series()
        .into_keys()
        .filter(|(m, l)| m == "http_requests_total" && l["method"] == "POST")
        .map(|(_, l)| l["route"].clone())
        .collect();
    assert_eq!(post, vec!["/a", "/b", "/c", "/d", "/e", "__other__"]);
    assert_eq!(requests(envoy, "POST", "__other__", "0"), Some(2));
}

routemeter_tests::dual_host!(
    successful_chunked_upload_records_every_series_exactly,
    upload_outcomes_follow_the_default_table,
    download_outcomes_follow_the_default_table,
    reset_before_response_is_status_0_and_aborted,
    in_progress_counts_overlapping_requests_and_returns_to_zero,
    a_second_on_log_does_not_count_again,
    excluded_paths_record_nothing,
    templates_are_per_method_and_unknown_paths_use_the_heuristic,
    hostile_paths_are_counted_with_safe_labels,
    route_cap_is_global_across_vms_and_overflows_into_other,
    without_shared_data_the_cap_holds_per_vm,
    many_distinct_paths_keep_memory_and_series_bounded,
    metric_ids_are_defined_once_per_series,
    a_new_vm_first_defines_every_series_the_others_listed,
    route_name_label_when_configured,
    configured_outcome_overrides,
    durations_are_whole_milliseconds_rounded_up,
    host_failures_degrade_labels_and_delay_counts,
    empty_config_records_with_defaults,
    config_validity_is_a_gauge,
    streams_first_seen_at_their_end_are_counted,
    streams_first_seen_at_their_end_take_envoys_request_size,
    attribute_labels_label_every_series_of_their_route,
    a_root_configured_again_keeps_its_requests_in_flight_on_the_old_configuration,
    labels_never_end_in_a_dot,
    upload_and_download_rules_on_one_template,
    a_stopping_vm_flushes_what_it_counted,
    latency_quantiles_merge_every_vm_and_follow_the_window,
    a_lowered_cap_holds_after_a_reload,
    a_route_family_names_and_times_its_conversions,
);

/// What only the native host can see: the VM's own route table stays bounded by the cap
/// (the wasm host checks the same through the VM's linear memory, in proxy-sim's tests).
#[test]
fn vm_route_table_is_bounded_by_the_cap() {
    let host = NativeHost::new();
    let worker1 = host.vm(r#"{"routes": [{"template": "/api/v1/upload"}], "max_routes": 3}"#).unwrap();
    let worker2 = host.vm(r#"{"routes": [{"template": "/api/v1/upload"}], "max_routes": 3}"#).unwrap();
    for i in 0..1_000 {
        let vm = if i % 2 == 0 { &worker1 } else { &worker2 };
        vm.request("GET", &format!("/p{i}/q")).complete();
    }
    // Each VM knows the template, `__other__`, the labels it served itself (/p0/q, /p2/q on
    // worker 1; /p1/q on worker 2; the cap of 3 was then full) and `/{id}/q`, which the
    // 64th distinct value at the root turned them into.
    assert_eq!((worker1.known_routes(), worker2.known_routes()), (5, 4));
    let mut s = worker1.request("GET", "/p0/q");
    s.log();
    assert!(!s.is_active());
}
