use std::collections::BTreeMap;

use super::*;
use crate::host::memory::{MemoryHost, StatValue};
use crate::host::MetricKind;
use crate::shared::Keys;

/// The stats as `/stats/prometheus` would show the counters and gauges.
fn all(stats: &MemoryHost) -> BTreeMap<String, i64> {
    let value = |v: &StatValue| match v {
        StatValue::Counter(n) => Some(*n as i64),
        StatValue::Gauge(n) => Some(*n),
        StatValue::Histogram(_) => None,
    };
    stats.stats().iter().filter_map(|(_, n, v)| Some((n.clone(), value(v)?))).collect()
}

fn host_calls(stats: &MemoryHost) -> usize {
    let c = stats.calls();
    assert_eq!(
        (c.zero_increments, stats.refused()),
        (0, Vec::<String>::new()),
        "calls Envoy refuses or that do nothing"
    );
    c.define + c.increment + c.record
}

fn value(stats: &MemoryHost, name: &str) -> Option<i64> {
    all(stats).get(name).copied()
}

struct Names;

impl SeriesLabels for Names {
    fn route(&self, series: SeriesId) -> &str {
        ["/a", "/b", "/a"][series.index()]
    }
    /// The third series is `/a` with an attribute label.
    fn attributes(&self, series: SeriesId) -> Vec<(&str, &str)> {
        match series.index() {
            2 => vec![("format", "csv")],
            _ => vec![],
        }
    }
    fn outcome(&self, _: OutcomeId) -> &str {
        "success"
    }
}

fn registry() -> Registry {
    Registry::new(&Keys::for_plugin(""))
}

fn aggregates(mode: HistogramMode) -> Aggregates {
    Aggregates::new(mode, Bounds::new(&[1.0, 2.5, 10.0]).unwrap(), Bounds::new(&[1000.0]).unwrap())
}

fn completed(series: SeriesId, status: u16, ms: u64, req: u64) -> CompletedRequest {
    CompletedRequest {
        series,
        method: Method::Get,
        gauge_raised: true,
        status,
        duration_ms: Some(ms),
        request_bytes: Some(req),
        response_bytes: 7,
    }
}

#[test]
fn the_request_path_makes_no_host_call_and_a_flush_adds_exact_deltas() {
    let (stats, mut agg, mut reg) = (MemoryHost::new(), aggregates(HistogramMode::Exact), registry());
    for (ms, req) in [(0, 0), (1, 999), (2, 1000), (3, 1001), (11, 5)] {
        agg.started(SeriesId::new(0), Method::Get);
        agg.completed(&completed(SeriesId::new(0), 200, ms, req), &Names, &mut reg, &stats);
    }
    agg.started(SeriesId::new(0), Method::Get);
    assert_eq!(host_calls(&stats), 0);
    agg.flush(&Names, &mut reg, &stats);
    let d = "method=.=GET;.;route=.=/a;.;";
    let want: BTreeMap<String, i64> = [
        ("method=.=GET;.;route=.=/a;.;status=.=200;.;http_requests_total", 5),
        ("method=.=GET;.;route=.=/a;.;http_requests_in_progress", 1),
        // 0 and 1 ms <= 1; 2 <= 2.5; 3 <= 10; 11 only in +Inf. Cumulative.
        (&format!("{d}le=.=1;.;http_request_duration_milliseconds_bucket"), 2),
        (&format!("{d}le=.=2.5;.;http_request_duration_milliseconds_bucket"), 3),
        (&format!("{d}le=.=10;.;http_request_duration_milliseconds_bucket"), 4),
        (&format!("{d}le=.=+Inf;.;http_request_duration_milliseconds_bucket"), 5),
        (&format!("{d}http_request_duration_milliseconds_sum"), 17),
        (&format!("{d}http_request_duration_milliseconds_count"), 5),
        (&format!("{d}le=.=1000;.;http_request_body_bytes_bucket"), 4),
        (&format!("{d}le=.=+Inf;.;http_request_body_bytes_bucket"), 5),
        (&format!("{d}http_request_body_bytes_sum"), 3005),
        (&format!("{d}http_request_body_bytes_count"), 5),
        (&format!("{d}le=.=1000;.;http_response_body_bytes_bucket"), 5),
        (&format!("{d}le=.=+Inf;.;http_response_body_bytes_bucket"), 5),
        (&format!("{d}http_response_body_bytes_sum"), 35),
        (&format!("{d}http_response_body_bytes_count"), 5),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), *v))
    .collect();
    assert_eq!(all(&stats), want);
    // Nothing new: a flush makes no call. The last request finishes: the gauge goes back.
    let calls = host_calls(&stats);
    agg.flush(&Names, &mut reg, &stats);
    assert_eq!(host_calls(&stats), calls);
    agg.completed(&completed(SeriesId::new(0), 503, 1, 0), &Names, &mut reg, &stats);
    agg.flush(&Names, &mut reg, &stats);
    assert_eq!(value(&stats, &format!("{d}http_requests_in_progress")), Some(0));
    assert_eq!(value(&stats, "method=.=GET;.;route=.=/a;.;status=.=503;.;http_requests_total"), Some(1));
    assert_eq!(value(&stats, &format!("{d}le=.=1;.;http_request_duration_milliseconds_bucket")), Some(3));
}

#[test]
fn a_series_is_defined_once_and_all_its_buckets_at_once() {
    let (stats, mut agg, mut reg) = (MemoryHost::new(), aggregates(HistogramMode::Exact), registry());
    agg.completed(&completed(SeriesId::new(1), 200, 5, 0), &Names, &mut reg, &stats);
    agg.flush(&Names, &mut reg, &stats);
    let names = stats.stats().len();
    // requests{200}; the in-flight gauge (it went down without going up in this test); 4
    // duration buckets + sum + count; 2 buckets + sum + count for each size histogram.
    assert_eq!(names, 1 + 1 + 6 + 4 + 4);
    for _ in 0..3 {
        agg.completed(&completed(SeriesId::new(1), 200, 5, 0), &Names, &mut reg, &stats);
        agg.flush(&Names, &mut reg, &stats);
    }
    assert_eq!(stats.stats().len(), names);
    assert_eq!(
        value(&stats, "method=.=GET;.;route=.=/b;.;le=.=1;.;http_request_duration_milliseconds_bucket"),
        Some(0)
    );
    assert_eq!(
        value(&stats, "method=.=GET;.;route=.=/b;.;le=.=10;.;http_request_duration_milliseconds_bucket"),
        Some(4)
    );
}

#[test]
fn outcomes_and_upload_sizes() {
    let (stats, mut agg, mut reg) = (MemoryHost::new(), aggregates(HistogramMode::Exact), registry());
    agg.outcome(SeriesId::new(0), Metric::UploadsTotal, crate::transfer::SUCCESS);
    agg.outcome(SeriesId::new(0), Metric::UploadsTotal, crate::transfer::SUCCESS);
    agg.upload_size(SeriesId::new(0), 1500, &Names, &mut reg, &stats);
    agg.flush(&Names, &mut reg, &stats);
    assert_eq!(value(&stats, "route=.=/a;.;status=.=success;.;uploads_total"), Some(2));
    assert_eq!(value(&stats, "route=.=/a;.;le=.=1000;.;upload_file_size_bytes_bucket"), Some(0));
    assert_eq!(value(&stats, "route=.=/a;.;le=.=+Inf;.;upload_file_size_bytes_bucket"), Some(1));
    assert_eq!(value(&stats, "route=.=/a;.;upload_file_size_bytes_sum"), Some(1500));
}

#[test]
fn envoy_mode_records_every_sample_into_an_envoy_histogram() {
    let (stats, mut agg, mut reg) = (MemoryHost::new(), aggregates(HistogramMode::Envoy), registry());
    agg.completed(&completed(SeriesId::new(0), 200, 3, 10), &Names, &mut reg, &stats);
    agg.completed(&completed(SeriesId::new(0), 200, 4, 20), &Names, &mut reg, &stats);
    let (_, _, samples) = stats
        .stats()
        .into_iter()
        .find(|(k, n, _)| *k == MetricKind::Histogram && n.ends_with("http_request_duration_milliseconds"))
        .unwrap();
    assert_eq!(samples, StatValue::Histogram(vec![3, 4]));
    agg.flush(&Names, &mut reg, &stats);
    assert_eq!(value(&stats, "method=.=GET;.;route=.=/a;.;status=.=200;.;http_requests_total"), Some(2));
    assert!(stats.stats().iter().all(|(_, n, _)| !n.ends_with("_bucket")));
}

#[test]
fn unflushed_is_what_the_next_flush_hands_over() {
    let (stats, mut agg, mut reg) = (MemoryHost::new(), aggregates(HistogramMode::Exact), registry());
    assert_eq!(agg.unflushed(), (0, 0));
    for route in [SeriesId::new(0), SeriesId::new(1), SeriesId::new(0)] {
        agg.started(route, Method::Get);
    }
    agg.completed(&completed(SeriesId::new(0), 200, 1, 0), &Names, &mut reg, &stats);
    agg.completed(&completed(SeriesId::new(1), 503, 1, 0), &Names, &mut reg, &stats);
    // Two finished (one per route), one still in flight.
    assert_eq!(agg.unflushed(), (2, 1));
    agg.flush(&Names, &mut reg, &stats);
    assert_eq!(agg.unflushed(), (0, 0));
    // The one in flight ends after the flush: its gauge change is unflushed, -1.
    agg.completed(&completed(SeriesId::new(0), 200, 1, 0), &Names, &mut reg, &stats);
    assert_eq!(agg.unflushed(), (1, -1));
}

#[test]
fn a_series_with_attribute_labels_is_its_own_with_the_labels_after_the_metrics_own() {
    let (stats, mut agg, mut reg) = (MemoryHost::new(), aggregates(HistogramMode::Exact), registry());
    for series in [SeriesId::new(0), SeriesId::new(2), SeriesId::new(2)] {
        agg.started(series, Method::Get);
        agg.completed(&completed(series, 200, 1, 0), &Names, &mut reg, &stats);
    }
    agg.outcome(SeriesId::new(2), Metric::UploadsTotal, crate::transfer::SUCCESS);
    agg.flush(&Names, &mut reg, &stats);
    assert_eq!(value(&stats, "method=.=GET;.;route=.=/a;.;status=.=200;.;http_requests_total"), Some(1));
    assert_eq!(value(&stats, "method=.=GET;.;route=.=/a;.;status=.=200;.;format=.=csv;.;http_requests_total"), Some(2));
    assert_eq!(
        value(&stats, "method=.=GET;.;route=.=/a;.;format=.=csv;.;le=.=1;.;http_request_duration_milliseconds_bucket"),
        Some(2)
    );
    assert_eq!(value(&stats, "method=.=GET;.;route=.=/a;.;format=.=csv;.;http_requests_in_progress"), Some(0));
    assert_eq!(value(&stats, "route=.=/a;.;status=.=success;.;format=.=csv;.;uploads_total"), Some(1));
}

/// OpenTelemetry's request histograms have the status code (and a 5xx its `error_type`):
/// durations and body sizes are kept by status and published with the profile's names, in
/// both histogram modes.
#[test]
fn durations_by_status_under_opentelemetry_names() {
    let naming = crate::metrics::naming::Naming {
        profile: crate::metrics::naming::Profile::OpenTelemetry,
        ..Default::default()
    };
    for mode in [HistogramMode::Exact, HistogramMode::Envoy] {
        let (stats, mut reg) = (MemoryHost::new(), registry().with_naming(naming.clone()));
        let mut agg = aggregates(mode).with_status_label(naming.profile.histogram_status_label());
        for (status, ms) in [(200, 2), (200, 20), (404, 1), (503, 3)] {
            agg.completed(&completed(SeriesId::new(2), status, ms, 0), &Names, &mut reg, &stats);
        }
        agg.flush(&Names, &mut reg, &stats);
        let key = |code: &str| {
            format!(
                "http_request_method=.=GET;.;http_route=.=/a;.;http_response_status_code=.={code};.;format=.=csv;.;"
            )
        };
        match mode {
            HistogramMode::Exact => {
                let name = |code: &str, le: &str| {
                    format!("{}le=.={le};.;http_server_request_duration_seconds_bucket", key(code))
                };
                assert_eq!(value(&stats, &name("200", "0.0025")), Some(1));
                assert_eq!(value(&stats, &name("200", "+Inf")), Some(2));
                assert_eq!(value(&stats, &name("404", "0.001")), Some(1));
                let sum = format!("{}http_server_request_duration_milliseconds_sum", key("200"));
                assert_eq!(value(&stats, &sum), Some(22));
                let size = format!("{}http_server_response_body_size_bytes_count", key("404"));
                assert_eq!(value(&stats, &size), Some(1));
                let error = "http_request_method=.=GET;.;http_route=.=/a;.;http_response_status_code=.=503;.;error_type=.=503;.;format=.=csv;.;le=.=0.01;.;http_server_request_duration_seconds_bucket";
                assert_eq!(value(&stats, error), Some(1));
            }
            HistogramMode::Envoy => {
                let name = format!("{}http_server_request_duration_seconds", key("200"));
                let h = stats.stats().into_iter().find(|(_, n, _)| *n == name).map(|(_, _, v)| v);
                assert_eq!(h, Some(StatValue::Histogram(vec![2, 20])));
            }
        }
        // No request histogram without the status.
        let names: Vec<String> = stats.stats().into_iter().map(|(_, n, _)| n).collect();
        let request_histograms =
            names.iter().filter(|n| !n.ends_with("requests_total") && !n.ends_with("active_requests"));
        assert!(request_histograms.clone().all(|n| n.contains("status_code")), "{names:?}");
        assert_eq!(request_histograms.count(), if mode == HistogramMode::Exact { 3 * (6 + 4 + 4) } else { 3 * 3 });
    }
}

/// Kept by status, a series' request histograms are bounded: 16 codes, then one `_OTHER`.
#[test]
fn statuses_past_sixteen_share_one_set() {
    let naming = crate::metrics::naming::Naming {
        profile: crate::metrics::naming::Profile::OpenTelemetry,
        ..Default::default()
    };
    let (stats, mut reg) = (MemoryHost::new(), registry().with_naming(naming.clone()));
    let mut agg = aggregates(HistogramMode::Exact).with_status_label(naming.profile.histogram_status_label());
    for status in 200..230 {
        agg.completed(&completed(SeriesId::new(0), status, 1, 0), &Names, &mut reg, &stats);
    }
    agg.flush(&Names, &mut reg, &stats);
    let count = |code: &str| {
        let name = format!("http_request_method=.=GET;.;http_route=.=/a;.;http_response_status_code=.={code};.;http_server_request_duration_seconds_count");
        value(&stats, &name)
    };
    assert_eq!((count("200"), count("215"), count("216"), count("_OTHER")), (Some(1), Some(1), None, Some(14)));
}
