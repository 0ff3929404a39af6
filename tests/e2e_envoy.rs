//! End to end: demo service + real Envoy 1.40 + the compiled filter with the shipped
//! bootstrap. A scripted traffic mix is sent while a ledger records what really happened on
//! the wire (method, expected route label, status, body bytes each way); then every series
//! in /stats/prometheus is compared with what the ledger says it must be.

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use routemeter::metrics::Unit;
use routemeter_demo::server::ServeOptions;
use routemeter_tests::{both_builds, Build};
use testkit::client::{self, Body, Request, Response};
use testkit::fault;
use testkit::ledger::{Entry, Ledger};
use testkit::outcomes::{download_outcome, upload_outcome};
use testkit::prom::{Exposition, Histogram};
use testkit::stack::{Stack, StackOptions};

const UPLOAD: &str = "/api/v1/upload";
const STATUS: &str = "/api/v1/status/{job_id}";
const DOWNLOAD: &str = "/api/v1/download/{job_id}";

/// The shipped bootstrap's buckets (tests/contract.rs checks envoy.yaml against them).
const SIZE_BOUNDS: &[f64] = Unit::Bytes.buckets();
const MS_BOUNDS: &[f64] = Unit::Milliseconds.buckets();

/// The ledger's wire side for this suite: each request on a fresh connection, recorded with
/// the route label routemeter must give it.
trait Send {
    /// `route: None`: an excluded path, must not be recorded.
    fn send(&self, stack: &Stack, req: Request, route: Option<&'static str>) -> Response;
    /// Bytes Envoy's codec rejects: a 400 that only reaches the filter's `on_log`, without
    /// method or path (so `OTHER` and `/`).
    fn send_malformed(&self, stack: &Stack, raw: &[u8]);
    /// The head and `sent` body bytes, then the client vanishes.
    fn abort(&self, stack: &Stack, req: Request, route: &'static str, sent: u64);
}

impl Send for Ledger {
    fn send(&self, stack: &Stack, req: Request, route: Option<&'static str>) -> Response {
        let resp = client::send(stack.listener, &req).unwrap_or_else(|e| panic!("{} {}: {e}", req.method, req.path));
        if let Some(route) = route {
            let entry = Entry::new(method_label(&req.method), route, resp.status);
            self.add(Entry { request_bytes: req.body.len(), response_bytes: resp.body_len, ..entry });
        }
        resp
    }

    fn send_malformed(&self, stack: &Stack, raw: &[u8]) {
        let resp = fault::send_raw(stack.listener, raw).unwrap();
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(raw));
        self.add(Entry { response_bytes: resp.body_len, ..Entry::new("OTHER", "/", 400) });
    }

    fn abort(&self, stack: &Stack, req: Request, route: &'static str, sent: u64) {
        fault::send_and_abort(stack.listener, &req, sent).unwrap();
        self.add(Entry { request_bytes: sent, ..Entry::new(method_label(&req.method), route, 0) });
    }
}

fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        _ => "OTHER",
    }
}

fn job_id(resp: &Response) -> String {
    assert_eq!(resp.status, 201, "upload failed: {}", resp.text());
    let v: serde_json::Value = serde_json::from_str(&resp.text()).unwrap();
    v["job_id"].as_str().unwrap().to_string()
}

/// routemeter's histograms are exact: `le=b` holds exactly the samples `<= b`, `_sum` is the
/// exact sum.
fn assert_histogram(h: &Histogram, samples: &[u64], bounds: &[f64], what: &str) {
    assert_eq!(h.count, samples.len() as u64, "{what}: count");
    for &le in bounds {
        let want = samples.iter().filter(|&&v| v as f64 <= le).count() as u64;
        assert_eq!(h.bucket(le), Some(want), "{what}: bucket le={le} for samples {samples:?}");
    }
    assert_eq!(h.bucket(f64::INFINITY), Some(samples.len() as u64), "{what}: +Inf");
    let exact: u64 = samples.iter().sum();
    assert_eq!(h.sum, exact as f64, "{what}: sum");
}

both_builds!(demo_traffic_mix_is_reported_exactly);

fn demo_traffic_mix_is_reported_exactly(build: Build) {
    let stack = Stack::start(StackOptions {
        demo: ServeOptions { max_upload_bytes: 1_000_000, ..StackOptions::default().demo },
        build,
        ..StackOptions::default()
    });
    let l = Ledger::default();
    let up = Some(UPLOAD);

    // Uploads: sizes chosen away from bucket bounds.
    let a = job_id(&l.send(&stack, Request::post("/api/v1/upload?filename=a.xlsx", Body::Sized(1_500)), up));
    let b = job_id(&l.send(
        &stack,
        Request::post("/api/v1/upload?filename=b.csv&processing_ms=600000", Body::Sized(250_000)),
        up,
    ));
    let c = job_id(&l.send(
        &stack,
        Request::post("/api/v1/upload?filename=c.xlsx", Body::Chunked(vec![30_000, 30_000, 25_000])),
        up,
    ));
    let d =
        job_id(&l.send(&stack, Request::post(UPLOAD, Body::Multipart { filename: "d.XLSX".into(), size: 5_000 }), up));
    // Bucket-edge probes: exact histograms put 1000 in `le=1000` and 1001 above it (Envoy's
    // own histograms counted everything up to 1099 there), and 100,000 / 100,001 likewise; a
    // size off by a single byte moves one of these across a bucket, and any sum off by one
    // shows in `_sum`.
    let mut probes = Vec::new();
    for body in [Body::Sized(1_000), Body::Sized(1_001), Body::Chunked(vec![50_000, 50_000]), Body::Sized(100_001)] {
        probes.push(job_id(&l.send(&stack, Request::post("/api/v1/upload?filename=edge.xlsx", body), up)));
    }
    let too_big = l.send(&stack, Request::post("/api/v1/upload?filename=big.xlsx", Body::Sized(1_500_000)), up);
    assert_eq!(too_big.status, 413);
    let bad_ext = l.send(&stack, Request::post("/api/v1/upload?filename=e.pdf", Body::Sized(2_000)), up);
    assert_eq!(bad_ext.status, 422);
    let failing =
        l.send(&stack, Request::post("/api/v1/upload?filename=g.xlsx&force_status=500", Body::Sized(120)), up);
    assert_eq!(failing.status, 500);
    l.abort(&stack, Request::post("/api/v1/upload?filename=f.xlsx", Body::Sized(800_000)), UPLOAD, 300_000);

    // Status: known ids (one slow), unknown ids.
    for id in [&a, &b, &c, &d] {
        assert_eq!(l.send(&stack, Request::get(&format!("/api/v1/status/{id}")), Some(STATUS)).status, 200);
    }
    let slow = l.send(&stack, Request::get(&format!("/api/v1/status/{a}?delay_ms=300")), Some(STATUS));
    assert_eq!(slow.status, 200);
    for id in ["5f0c2a3e-9b1d-4c7a-8e2f-0123456789ab", "12345"] {
        assert_eq!(l.send(&stack, Request::get(&format!("/api/v1/status/{id}")), Some(STATUS)).status, 404);
    }

    // Downloads: ready, not ready, unknown.
    let got_a = l.send(&stack, Request::get(&format!("/api/v1/download/{a}")), Some(DOWNLOAD));
    assert_eq!((got_a.status, got_a.body_len), (200, 1_500));
    let got_c = l.send(&stack, Request::get(&format!("/api/v1/download/{c}")), Some(DOWNLOAD));
    assert_eq!((got_c.status, got_c.body_len), (200, 85_000));
    for (id, size) in probes.iter().zip([1_000, 1_001, 100_000, 100_001]) {
        let got = l.send(&stack, Request::get(&format!("/api/v1/download/{id}")), Some(DOWNLOAD));
        assert_eq!((got.status, got.body_len), (200, size));
    }
    assert_eq!(l.send(&stack, Request::get(&format!("/api/v1/download/{b}")), Some(DOWNLOAD)).status, 409);
    for id in ["00000000-0000-4000-8000-000000000000", "987654321"] {
        assert_eq!(l.send(&stack, Request::get(&format!("/api/v1/download/{id}")), Some(DOWNLOAD)).status, 404);
    }

    // Unknown paths with ids in them, and excluded health checks.
    let users = Some("/users/{id}");
    l.send(&stack, Request::get("/users/42"), users);
    l.send(&stack, Request::get("/users/43?tab=files"), users);
    l.send(&stack, Request::get("/api/v2/jobs/123/files/abcdef0123456789"), Some("/api/v2/jobs/{id}/files/{id}"));
    for _ in 0..3 {
        assert_eq!(l.send(&stack, Request::get("/health"), None).status, 200);
    }
    // Envoy drops a trailing dot from tag values; routemeter's label ends in `_` instead, so
    // these stay two series (the strict exposition parser rejects duplicates).
    l.send(&stack, Request::get("/folder/report"), Some("/folder/report"));
    l.send(&stack, Request::get("/folder/report."), Some("/folder/report_"));
    // Requests the codec rejects before any filter runs.
    l.send_malformed(&stack, b"GET abc HTTP/1.1\r\nHost: x\r\n\r\n");
    l.send_malformed(
        &stack,
        b"POST /api/v1/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
    );

    let uploads_seen = l.select("POST", UPLOAD).len();
    assert_eq!(uploads_seen, 12);
    let page = settle(&stack, &l);

    check_requests_total(&page, &l);
    check_per_route_series(&page, &l);
    check_outcomes(&page, &l);
    // The shipped configuration also loads the demo's own OpenAPI document (five paths) from
    // the `converter` cluster at the first tick (the next refresh is 300 s away). Every Wasm
    // VM fetches its own copy: the worker's and the one Envoy keeps on its main thread; the
    // native module is one state for the process, and fetches once.
    let fetches = match build {
        Build::Wasm => 2.0,
        Build::Native => 1.0,
    };
    let page = stack.scrape_until("the OpenAPI document", |p| {
        p.get("routemeter_openapi_fetches_total", &[("status", "ok")]) == Some(fetches)
    });
    let ok = page.get("routemeter_openapi_fetches_total", &[("status", "ok")]);
    assert_eq!(ok, Some(fetches), "{}", stack.logs());
    assert_eq!(page.get("routemeter_openapi_routes", &[]), Some(5.0));

    // The slow status request is at least 300 ms: never in a bucket at or below 250 ms.
    let d = page.histogram("http_request_duration_milliseconds", &[("method", "GET"), ("route", STATUS)]).unwrap();
    assert!(d.bucket(250.0).unwrap() < d.count, "{d:?}");
    assert!(d.sum >= 300.0 * 0.95, "{d:?}");
}

/// The latency quantile gauges are within 1 % of the truth. Two Envoy workers (two VMs) serve
/// connections spread by the kernel; their windows are merged before publication (the exact
/// merge is asserted in the lifecycle suite). 96 requests ask the demo for 500 ms and 4 for
/// 1.5 s. The duration Envoy measures for a request lies between the demo's delay and the time
/// the client saw, so each true quantile lies between the same quantile of the delays and of
/// the client's times: the gauge must be within 1 % of that interval. On a quiet machine the
/// interval is a millisecond wide; on a loaded one it widens, but never past what happened.
#[test]
fn latency_quantiles_are_within_one_percent_of_the_demos_delays() {
    let stack = Stack::start(StackOptions {
        concurrency: 2,
        plugin_config: Some(r#"{"routes": [{"template": "/api/v1/status/{job_id}"}]}"#.into()),
        ..StackOptions::default()
    });
    let delays: Vec<u64> = std::iter::repeat_n(500, 96).chain(std::iter::repeat_n(1_500, 4)).collect();
    let seen: Vec<f64> = std::thread::scope(|scope| {
        let threads: Vec<_> = delays
            .chunks(9)
            .map(|chunk| {
                let listener = stack.listener;
                scope.spawn(move || {
                    let mut seen = Vec::new();
                    for (i, ms) in chunk.iter().enumerate() {
                        // A connection per request, so both workers get some.
                        let req = Request::get(&format!("/api/v1/status/{i}?delay_ms={ms}"));
                        let start = std::time::Instant::now();
                        let resp = client::send(listener, &req).unwrap_or_else(|e| panic!("{}: {e}", req.path));
                        seen.push(start.elapsed().as_secs_f64() * 1e6);
                        assert_eq!(resp.status, 404);
                    }
                    seen
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    });
    let quantile = |page: &Exposition, q: &str| {
        page.get("http_request_duration_quantile_microseconds", &[("route", STATUS), ("quantile", q)])
    };
    let page = stack.scrape_until("the quantiles of all 100 requests", |p| {
        let done = p
            .histogram("http_request_duration_milliseconds", &[("method", "GET"), ("route", STATUS)])
            .is_some_and(|h| h.count == 100);
        // The publication after the flush that carried the last request.
        done && quantile(p, "0.99").is_some_and(|v| v > 1_000_000.0) && quantile(p, "0.9").is_some_and(|v| v > 0.0)
    });
    let page = {
        // One more tick, so every worker's window of all 100 requests is in the merge.
        std::thread::sleep(std::time::Duration::from_millis(2_500));
        let _ = page;
        stack.scrape()
    };
    // The q-quantile of n values by rank (the smallest value with at least q*n at or below it).
    let rank_quantile = |values: &[f64], q: f64| {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v[((q * v.len() as f64).ceil() as usize).max(1) - 1]
    };
    let delays_us: Vec<f64> = delays.iter().map(|ms| *ms as f64 * 1e3).collect();
    for q in ["0.5", "0.9", "0.99", "0.999"] {
        let got = quantile(&page, q).unwrap_or_else(|| panic!("no p{q}: {}", stack.logs()));
        let (low, high) = (rank_quantile(&delays_us, q.parse().unwrap()), rank_quantile(&seen, q.parse().unwrap()));
        assert!(got >= low * 0.99 && got <= high * 1.01, "p{q}: {got} us, truth between {low} and {high} us");
    }
}

/// Waits until every (method, route) histogram count equals the ledger's: histograms reach
/// the admin page only at a stats flush, counters and gauges immediately.
fn settle(stack: &Stack, l: &Ledger) -> Exposition {
    stack.scrape_until("every histogram flushed", |p| {
        p.counters("http_response_body_bytes_count", &["method", "route"]) == l.pairs()
    })
}

fn check_requests_total(page: &Exposition, l: &Ledger) {
    assert_eq!(page.get("routemeter_config_invalid", &[]), Some(0.0));
    assert_eq!(
        page.counters("http_requests_total", &["method", "route", "status"]),
        l.requests(),
        "http_requests_total"
    );
    assert_eq!(page.types.get("http_requests_total").map(String::as_str), Some("counter"));
}

fn check_per_route_series(page: &Exposition, l: &Ledger) {
    let gauges = page.counters("http_requests_in_progress", &["method", "route"]);
    assert_eq!(gauges, l.pairs().into_keys().map(|k| (k, 0)).collect(), "http_requests_in_progress");
    for pair in l.pairs().keys() {
        let (m, r) = (pair[0].as_str(), pair[1].as_str());
        let entries = l.select(m, r);
        let labels = [("method", m), ("route", r)];
        let req: Vec<u64> = entries.iter().map(|e| e.request_bytes).collect();
        let resp: Vec<u64> = entries.iter().map(|e| e.response_bytes).collect();
        let what = format!("{m} {r}");
        assert_histogram(&page.histogram("http_request_body_bytes", &labels).unwrap(), &req, SIZE_BOUNDS, &what);
        assert_histogram(&page.histogram("http_response_body_bytes", &labels).unwrap(), &resp, SIZE_BOUNDS, &what);
        let dur = page.histogram("http_request_duration_milliseconds", &labels).unwrap();
        assert_eq!(dur.count, entries.len() as u64, "{what}: duration count");
        assert_eq!(dur.buckets.len(), MS_BOUNDS.len() + 1, "{what}: duration buckets");
        assert!(MS_BOUNDS.iter().all(|b| dur.bucket(*b).is_some()), "{what}: bucket bounds {dur:?}");
    }
    // No series for anything the ledger does not have (e.g. the excluded /health).
    let routes = page.counters("http_requests_total", &["route"]).into_keys().collect::<Vec<_>>();
    assert_eq!(routes, l.tally(|_| true, |e| vec![e.route.into()]).into_keys().collect::<Vec<_>>());
}

fn check_outcomes(page: &Exposition, l: &Ledger) {
    let uploads = l.outcomes("POST", UPLOAD, upload_outcome);
    let by_outcome = |m: &BTreeMap<Vec<String>, u64>| m.iter().map(|(k, v)| (k[1].clone(), *v)).collect::<Vec<_>>();
    let want = [("aborted", 1), ("failed_error", 1), ("failed_size", 1), ("failed_validation", 1), ("success", 8)];
    assert_eq!(by_outcome(&uploads), want.map(|(k, v)| (k.to_string(), v)));
    assert_eq!(page.counters("uploads_total", &["route", "status"]), uploads);
    let downloads = l.outcomes("GET", DOWNLOAD, download_outcome);
    let want = [("failed_not_found", 2), ("failed_not_ready", 1), ("success", 6)];
    assert_eq!(by_outcome(&downloads), want.map(|(k, v)| (k.to_string(), v)));
    assert_eq!(page.counters("downloads_total", &["route", "status"]), downloads);
    let sizes: Vec<u64> = l.select("POST", UPLOAD).iter().map(|e| e.request_bytes).collect();
    let h = page.histogram("upload_file_size_bytes", &[("route", UPLOAD)]).unwrap();
    assert_histogram(&h, &sizes, SIZE_BOUNDS, "upload_file_size_bytes");
}

both_builds!(invalid_plugin_config_is_logged_by_field_and_traffic_still_flows);

fn invalid_plugin_config_is_logged_by_field_and_traffic_still_flows(build: Build) {
    let stack = Stack::start(StackOptions {
        plugin_config: Some(r#"{"routes": [{"template": "/a", "kind": "uplaod"}]}"#.into()),
        build,
        ..StackOptions::default()
    });
    let resp = client::send(stack.listener, &Request::get("/health")).unwrap();
    assert_eq!(resp.status, 200);
    let log = stack.envoy_log();
    assert!(
        log.contains(
            "invalid plugin configuration: routes[0].kind: unknown variant `uplaod`, expected `upload` or `download`; \
             routemeter records nothing until it is fixed"
        ),
        "{}",
        stack.logs()
    );
    let page = stack.scrape();
    assert_eq!(page.series("http_requests_total").count(), 0);
    assert_eq!(page.get("routemeter_config_invalid", &[]), Some(1.0));
    assert_eq!(page.types.get("routemeter_config_invalid").map(String::as_str), Some("gauge"));
}

/// Prometheus' own checker reads the page routemeter's series are on: `promtool check
/// metrics` (Debian's, `make test` installs it) must parse it. Its lint findings on
/// routemeter's series are exactly the known cost of publishing exact histograms through
/// Envoy, which types `_bucket`, `_sum` and `_count` as three counters (README, "Exact
/// histograms"), and of the contract's unit suffixes; any other finding fails.
#[test]
fn promtool_parses_the_scrape_with_only_the_known_findings() {
    if std::process::Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("SKIPPED: promtool not found (apt-get install prometheus)");
        return;
    }
    let stack = Stack::start(StackOptions::default());
    let l = Ledger::default();
    l.send(&stack, Request::post("/api/v1/upload?filename=a.xlsx", Body::Sized(1_000)), Some(UPLOAD));
    l.send(&stack, Request::get("/api/v1/status/1"), Some(STATUS));
    settle(&stack, &l);
    stack
        .scrape_until("the latency quantiles", |p| p.series("http_request_duration_quantile_microseconds").count() > 0);
    let (_, text) = testkit::admin::get(stack.admin, "/stats/prometheus").expect("scrape");
    let findings =
        testkit::prom::promtool_check(&text).unwrap_or_else(|e| panic!("promtool cannot parse the page: {e}"));
    let ours: std::collections::BTreeSet<String> = findings
        .into_iter()
        .filter(|f| !f.starts_with("envoy_") && !f.ends_with(" no help text"))
        .map(|f| f.replace('"', "'"))
        .collect();
    let mut want = std::collections::BTreeSet::new();
    for family in [
        "http_request_body_bytes",
        "http_response_body_bytes",
        "http_request_duration_milliseconds",
        "upload_file_size_bytes",
    ] {
        for part in ["bucket", "sum", "count"] {
            want.insert(format!("{family}_{part} counter metrics should have '_total' suffix"));
            if family.ends_with("milliseconds") {
                want.insert(format!("{family}_{part} use base unit 'seconds' instead of 'milliseconds'"));
            }
        }
        want.insert(format!("{family}_bucket non-histogram metrics should not have '_bucket' suffix"));
        want.insert(format!("{family}_bucket non-histogram metrics should not have 'le' label"));
        want.insert(format!("{family}_sum non-histogram and non-summary metrics should not have '_sum' suffix"));
        want.insert(format!("{family}_count non-histogram and non-summary metrics should not have '_count' suffix"));
    }
    want.insert(
        "http_request_duration_quantile_microseconds non-summary metrics should not have 'quantile' label".into(),
    );
    want.insert("http_request_duration_quantile_microseconds use base unit 'seconds' instead of 'microseconds'".into());
    assert_eq!(ours, want);
}

/// Two routemeter plugins in one Envoy, on two listeners, with other configurations but the
/// same module and `vm_id`: one VM per worker runs both (Istio gives every `WasmPlugin` the
/// same empty `vm_id`). Each request is counted by its own listener's plugin, with its
/// templates, and each plugin learns under its own cap (shared-data keys carry the plugin's
/// name; shared, `b`'s route would go to `__other__`, `a` having filled the cap of 2).
#[test]
fn two_plugins_in_one_vm_keep_apart() {
    let config = |t: &str| format!(r#"{{"routes": [{{"template": "{t}"}}], "max_routes": 2}}"#);
    let plugins = vec![("a", config("/t/{a}")), ("b", config("/t/{b}"))];
    let stack = Stack::start(StackOptions { plugins, ..StackOptions::default() });
    let traffic = [(0, "/t/1"), (0, "/x"), (0, "/y"), (1, "/t/1"), (1, "/z")];
    for (listener, path) in traffic {
        assert_eq!(client::send(stack.listeners[listener], &Request::get(path)).unwrap().status, 404, "{path}");
    }
    let page = stack.scrape_until("every request", |p| p.series("http_requests_total").count() == 5);
    let routes = page.counters("http_requests_total", &["route"]);
    let want: BTreeMap<Vec<String>, u64> =
        ["/t/{a}", "/t/{b}", "/x", "/y", "/z"].iter().map(|r| (vec![r.to_string()], 1)).collect();
    assert_eq!(routes, want, "{}", stack.logs());
}

/// An OpenAPI document of 200,000 paths (5.6 MB; 5,000 become templates) costs Envoy a
/// bounded amount of memory: every VM (the main thread's and two workers') streams the body
/// through a bounded parse instead of holding it and every path (Wasm linear memory never
/// shrinks). Measured side by side against the same stack serving a five-path document.
#[test]
fn a_large_openapi_document_costs_bounded_memory() {
    let mut doc = String::from(r#"{"openapi": "3.0.0", "info": {"title": "big", "version": "1"}, "paths": {"#);
    for i in 0..200_000 {
        let sep = if i == 0 { "" } else { "," };
        doc.push_str(&format!(r#"{sep}"/r{i:06}/{{id}}": {{"get": {{}}}}"#));
    }
    doc.push_str("}}");
    assert!((5_000_000..6_000_000).contains(&doc.len()), "{} bytes", doc.len());
    let small = r#"{"openapi": "3.0.0", "paths": {"/a": {}, "/b": {}, "/c/{id}": {}, "/d": {}, "/e": {}}}"#;
    let start = |document: &str| {
        let demo = ServeOptions { openapi: Some(document.as_bytes().into()), ..StackOptions::default().demo };
        Stack::start(StackOptions { concurrency: 2, demo, ..StackOptions::default() })
    };
    let (big, reference) = (start(&doc), start(small));
    for (stack, templates) in [(&big, 5_000.0), (&reference, 5.0)] {
        // Each of the three VMs fetches the document (the `ok` count).
        let page = stack.scrape_until("the OpenAPI document in every VM", |p| {
            p.get("routemeter_openapi_fetches_total", &[("status", "ok")]) == Some(3.0)
        });
        assert_eq!(page.get("routemeter_openapi_routes", &[]), Some(templates), "{}", stack.logs());
    }
    std::thread::sleep(std::time::Duration::from_secs(1));
    let ((big_rss, _), (reference_rss, _)) = (big.envoy_memory(), reference.envoy_memory());
    let grown_mb = (big_rss as f64 - reference_rss as f64) / 1024.0;
    eprintln!(
        "Envoy RSS: {big_rss} kB with the 200,000-path document, {reference_rss} kB with 5 paths: +{grown_mb:.1} MB"
    );
    assert!(grown_mb <= 30.0, "+{grown_mb:.1} MB");
}
