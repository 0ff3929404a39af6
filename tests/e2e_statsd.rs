//! Stats sinks: routemeter's metrics leave through Envoy's own sinks, not only the admin
//! page. A `dog_statsd` sink points at a UDP socket this test reads; known traffic goes
//! through Envoy in both histogram modes and what the sink delivers is compared exactly:
//! - `"histograms": "exact"`: the histograms arrive as counters (`_bucket` with an `le` tag,
//!   `_sum`, `_count`), so their deltas add up to the exact totals;
//! - `"histograms": "envoy"`: every sample arrives on its own, with its exact value.
//!
//! Counters are deltas per flush in both modes, and every line carries its tags. Envoy names
//! them `envoy.wasmcustom.<metric>` (the sink's prefix and the Wasm stats scope).

// A test crate: unwrap, expect and panic are how it fails (the filter itself denies them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use testkit::client::{self, Body, Request};
use testkit::stack::{Stack, StackOptions};

const UPLOAD: &str = "/api/v1/upload";
const STATUS: &str = "/api/v1/status/{job_id}";
const UPLOAD_SIZES: [u64; 3] = [1_000, 2_500, 40_000];

/// One statsd line: `name:value|type|#tag:value,...`.
#[derive(Debug, Clone, PartialEq)]
struct Line {
    name: String,
    value: f64,
    kind: String,
    tags: BTreeMap<String, String>,
}

fn parse(line: &str) -> Line {
    let (name, rest) = line.split_once(':').unwrap_or_else(|| panic!("no ':' in {line:?}"));
    let mut fields = rest.split('|');
    let value = fields.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("bad value in {line:?}"));
    let kind = fields.next().unwrap_or_else(|| panic!("no type in {line:?}")).to_string();
    let mut tags = BTreeMap::new();
    for field in fields {
        let list = field.strip_prefix('#').unwrap_or_else(|| panic!("unexpected field {field:?} in {line:?}"));
        for tag in list.split(',') {
            let (k, v) = tag.split_once(':').unwrap_or_else(|| panic!("bad tag {tag:?} in {line:?}"));
            assert!(tags.insert(k.to_string(), v.to_string()).is_none(), "tag {k} twice in {line:?}");
        }
    }
    Line { name: name.to_string(), value, kind, tags }
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// What one test run saw: the responses' statuses and every line the sink sent.
struct Run {
    upload_status: u16,
    status_status: u16,
    lines: Vec<Line>,
}

impl Run {
    /// Sum of a counter's deltas over every flush, for exactly these tags.
    fn counter(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let want = tags(want);
        self.lines.iter().filter(|l| l.name == name && l.kind == "c" && l.tags == want).map(|l| l.value).sum()
    }

    /// Every sample of a histogram with exactly these tags, sorted, with its statsd type.
    fn samples(&self, name: &str, want: &[(&str, &str)]) -> Vec<(f64, String)> {
        let want = tags(want);
        let mut v: Vec<(f64, String)> =
            self.lines.iter().filter(|l| l.name == name && l.tags == want).map(|l| (l.value, l.kind.clone())).collect();
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v
    }

    fn routemeter_lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.tags.contains_key("route"))
    }
}

/// Sends three uploads and two status requests through Envoy with a `dog_statsd` sink, and
/// collects what the sink sends until the request counter has all five and one more second.
fn run(histograms: &str) -> Run {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    sink.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let config = format!(
        r#"{{"histograms": "{histograms}", "routes": [{{"template": "{UPLOAD}"}}, {{"template": "{STATUS}"}}]}}"#
    );
    let stack = Stack::start(StackOptions {
        plugin_config: Some(config),
        dog_statsd: Some(sink.local_addr().unwrap()),
        ..StackOptions::default()
    });
    let mut upload_status = Vec::new();
    for (i, size) in UPLOAD_SIZES.iter().enumerate() {
        let req = Request::post(&format!("{UPLOAD}?filename=f{i}.csv"), Body::Sized(*size));
        upload_status.push(client::send(stack.listener, &req).expect("upload").status);
    }
    let mut status_status = Vec::new();
    for id in ["a1", "b2"] {
        status_status
            .push(client::send(stack.listener, &Request::get(&format!("/api/v1/status/{id}"))).expect("status").status);
    }
    assert!(upload_status.iter().all(|s| *s == upload_status[0]), "{upload_status:?}");
    assert!(status_status.iter().all(|s| *s == status_status[0]), "{status_status:?}");

    let mut run = Run { upload_status: upload_status[0], status_status: status_status[0], lines: Vec::new() };
    let mut buf = vec![0u8; 65_536];
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut complete_at: Option<Instant> = None;
    while Instant::now() < deadline && complete_at.is_none_or(|t| t.elapsed() < Duration::from_secs(1)) {
        if let Ok(n) = sink.recv(&mut buf) {
            let text = std::str::from_utf8(&buf[..n]).expect("statsd datagrams are text");
            run.lines.extend(text.lines().filter(|l| !l.is_empty()).map(parse));
        }
        let total: f64 =
            run.lines.iter().filter(|l| l.name == "envoy.wasmcustom.http_requests_total").map(|l| l.value).sum();
        if complete_at.is_none() && total >= 5.0 {
            complete_at = Some(Instant::now());
        }
    }
    assert!(complete_at.is_some(), "the sink never delivered five requests\n{}", stack.logs());
    run
}

/// Checks what both modes share: request counters as tagged deltas, clean names and tags.
fn check_counters(run: &Run) {
    let up = run.upload_status.to_string();
    let st = run.status_status.to_string();
    assert_eq!(
        run.counter("envoy.wasmcustom.http_requests_total", &[("method", "POST"), ("route", UPLOAD), ("status", &up)]),
        3.0
    );
    assert_eq!(
        run.counter("envoy.wasmcustom.http_requests_total", &[("method", "GET"), ("route", STATUS), ("status", &st)]),
        2.0
    );
    let all: f64 = run.lines.iter().filter(|l| l.name == "envoy.wasmcustom.http_requests_total").map(|l| l.value).sum();
    assert_eq!(all, 5.0, "no other request series");
    // (In-flight gauges reach sinks once a flush saw a request in flight: Envoy's sinks skip
    // gauges never set or raised, and a 0 delta cannot mark one used. Not asserted here.)
    // Every routemeter line carries only contract tags: the names are clean.
    for line in run.routemeter_lines() {
        assert!(!line.name.contains("=.="), "{line:?}");
        assert!(
            line.tags.keys().all(|k| ["method", "route", "status", "le", "quantile"].contains(&k.as_str())),
            "{line:?}"
        );
    }
}

#[test]
fn dog_statsd_gets_exact_histogram_counters_in_exact_mode() {
    let run = run("exact");
    check_counters(&run);
    let post = [("method", "POST"), ("route", UPLOAD)];
    let name = "envoy.wasmcustom.http_request_body_bytes";
    assert_eq!(run.counter(&format!("{name}_sum"), &post), UPLOAD_SIZES.iter().sum::<u64>() as f64);
    assert_eq!(run.counter(&format!("{name}_count"), &post), 3.0);
    // Cumulative buckets: exactly the uploads at or below each bound.
    for bound in routemeter::metrics::Unit::Bytes.buckets() {
        let le = format!("{bound}");
        let want = UPLOAD_SIZES.iter().filter(|s| **s as f64 <= *bound).count() as f64;
        let got = run.counter(&format!("{name}_bucket"), &[("method", "POST"), ("route", UPLOAD), ("le", &le)]);
        assert_eq!(got, want, "le={le}");
    }
    assert_eq!(run.counter(&format!("{name}_bucket"), &[("method", "POST"), ("route", UPLOAD), ("le", "+Inf")]), 3.0);
    // No per-sample histogram lines: exact mode records no Envoy histograms.
    assert!(
        run.routemeter_lines().all(|l| l.kind == "c" || l.kind == "g"),
        "{:?}",
        run.routemeter_lines().find(|l| l.kind != "c" && l.kind != "g")
    );
}

#[test]
fn dog_statsd_gets_every_sample_in_envoy_mode() {
    let run = run("envoy");
    check_counters(&run);
    let post = [("method", "POST"), ("route", UPLOAD)];
    let samples = run.samples("envoy.wasmcustom.http_request_body_bytes", &post);
    let values: Vec<f64> = samples.iter().map(|s| s.0).collect();
    assert_eq!(values, UPLOAD_SIZES.map(|s| s as f64).to_vec(), "{samples:?}");
    // Envoy's statsd sinks send every histogram sample as a timer, whatever its unit.
    assert!(samples.iter().all(|s| s.1 == "ms"), "{samples:?}");
    // Status requests send no body: three samples of 0 bytes would be wrong, two are right.
    let get = [("method", "GET"), ("route", STATUS)];
    assert_eq!(
        run.samples("envoy.wasmcustom.http_request_body_bytes", &get).iter().map(|s| s.0).collect::<Vec<_>>(),
        vec![0.0, 0.0]
    );
    assert_eq!(run.samples("envoy.wasmcustom.http_request_duration_milliseconds", &get).len(), 2);
    // No bucket counters in this mode.
    assert!(run.routemeter_lines().all(|l| !l.name.ends_with("_bucket") && !l.name.ends_with("_sum")));
}
