use std::cell::RefCell;
use std::collections::BTreeMap;

use super::*;
use crate::host::{HostError, MetricKind};

/// Envoy's stats as the flush sees them: names, kinds, values; every call counted.
#[derive(Default)]
struct Stats {
    names: RefCell<Vec<(MetricKind, String)>>,
    values: RefCell<Vec<i64>>,
    samples: RefCell<Vec<Vec<u64>>>,
    calls: RefCell<usize>,
}

impl MetricsHost for Stats {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        *self.calls.borrow_mut() += 1;
        let mut names = self.names.borrow_mut();
        if let Some(i) = names.iter().position(|(_, n)| n == name) {
            return Ok(MetricId(i as u32));
        }
        names.push((kind, name.to_string()));
        self.values.borrow_mut().push(0);
        self.samples.borrow_mut().push(Vec::new());
        Ok(MetricId(names.len() as u32 - 1))
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        *self.calls.borrow_mut() += 1;
        assert!(delta != 0, "Envoy refuses a zero delta");
        if self.names.borrow()[id.0 as usize].0 == MetricKind::Counter {
            assert!(delta > 0, "Envoy refuses a negative counter delta");
        }
        self.values.borrow_mut()[id.0 as usize] += delta;
        Ok(())
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        *self.calls.borrow_mut() += 1;
        self.samples.borrow_mut()[id.0 as usize].push(value);
        Ok(())
    }
}

impl Stats {
    fn value(&self, name: &str) -> Option<i64> {
        let i = self.names.borrow().iter().position(|(_, n)| n == name)?;
        Some(self.values.borrow()[i])
    }
    fn all(&self) -> BTreeMap<String, i64> {
        self.names.borrow().iter().zip(self.values.borrow().iter()).map(|((_, n), v)| (n.clone(), *v)).collect()
    }
    fn calls(&self) -> usize {
        *self.calls.borrow()
    }
}

struct Names;

impl SeriesLabels for Names {
    fn route(&self, id: LabelId) -> &str {
        ["/a", "/b"][id.index()]
    }
    fn outcome(&self, _: OutcomeId) -> &str {
        "success"
    }
}

fn aggregates(mode: HistogramMode) -> Aggregates {
    Aggregates::new(mode, Bounds::new(&[1.0, 2.5, 10.0]).unwrap(), Bounds::new(&[1000.0]).unwrap())
}

fn finished(route: LabelId, status: u16, ms: u64, req: u64) -> Finished {
    Finished {
        route,
        method: Method::Get,
        gauge_raised: true,
        status,
        duration_ms: Some(ms),
        request_bytes: req,
        response_bytes: 7,
    }
}

#[test]
fn the_request_path_makes_no_host_call_and_a_flush_adds_exact_deltas() {
    let (stats, mut agg) = (Stats::default(), aggregates(HistogramMode::Exact));
    for (ms, req) in [(0, 0), (1, 999), (2, 1000), (3, 1001), (11, 5)] {
        agg.started(LabelId(0), Method::Get);
        agg.finished(&finished(LabelId(0), 200, ms, req), &Names, &stats);
    }
    agg.started(LabelId(0), Method::Get);
    assert_eq!(stats.calls(), 0);
    agg.flush(&Names, &stats);
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
    assert_eq!(stats.all(), want);
    // Nothing new: a flush makes no call. The last request finishes: the gauge goes back.
    let calls = stats.calls();
    agg.flush(&Names, &stats);
    assert_eq!(stats.calls(), calls);
    agg.finished(&finished(LabelId(0), 503, 1, 0), &Names, &stats);
    agg.flush(&Names, &stats);
    assert_eq!(stats.value(&format!("{d}http_requests_in_progress")), Some(0));
    assert_eq!(stats.value("method=.=GET;.;route=.=/a;.;status=.=503;.;http_requests_total"), Some(1));
    assert_eq!(stats.value(&format!("{d}le=.=1;.;http_request_duration_milliseconds_bucket")), Some(3));
}

#[test]
fn a_series_is_defined_once_and_all_its_buckets_at_once() {
    let (stats, mut agg) = (Stats::default(), aggregates(HistogramMode::Exact));
    agg.finished(&finished(LabelId(1), 200, 5, 0), &Names, &stats);
    agg.flush(&Names, &stats);
    let names = stats.names.borrow().len();
    // requests{200}; the in-flight gauge (it went down without going up in this test); 4
    // duration buckets + sum + count; 2 buckets + sum + count for each size histogram.
    assert_eq!(names, 1 + 1 + 6 + 4 + 4);
    for _ in 0..3 {
        agg.finished(&finished(LabelId(1), 200, 5, 0), &Names, &stats);
        agg.flush(&Names, &stats);
    }
    assert_eq!(stats.names.borrow().len(), names);
    assert_eq!(stats.value("method=.=GET;.;route=.=/b;.;le=.=1;.;http_request_duration_milliseconds_bucket"), Some(0));
    assert_eq!(stats.value("method=.=GET;.;route=.=/b;.;le=.=10;.;http_request_duration_milliseconds_bucket"), Some(4));
}

#[test]
fn outcomes_and_upload_sizes() {
    let (stats, mut agg) = (Stats::default(), aggregates(HistogramMode::Exact));
    agg.outcome(LabelId(0), Metric::UploadsTotal, crate::outcome::SUCCESS);
    agg.outcome(LabelId(0), Metric::UploadsTotal, crate::outcome::SUCCESS);
    agg.upload_size(LabelId(0), 1500, &Names, &stats);
    agg.flush(&Names, &stats);
    assert_eq!(stats.value("route=.=/a;.;status=.=success;.;uploads_total"), Some(2));
    assert_eq!(stats.value("route=.=/a;.;le=.=1000;.;upload_file_size_bytes_bucket"), Some(0));
    assert_eq!(stats.value("route=.=/a;.;le=.=+Inf;.;upload_file_size_bytes_bucket"), Some(1));
    assert_eq!(stats.value("route=.=/a;.;upload_file_size_bytes_sum"), Some(1500));
}

#[test]
fn envoy_mode_records_every_sample_into_an_envoy_histogram() {
    let (stats, mut agg) = (Stats::default(), aggregates(HistogramMode::Envoy));
    agg.finished(&finished(LabelId(0), 200, 3, 10), &Names, &stats);
    agg.finished(&finished(LabelId(0), 200, 4, 20), &Names, &stats);
    let i = stats
        .names
        .borrow()
        .iter()
        .position(|(k, n)| *k == MetricKind::Histogram && n.ends_with("http_request_duration_milliseconds"))
        .unwrap();
    assert_eq!(stats.samples.borrow()[i], [3, 4]);
    agg.flush(&Names, &stats);
    assert_eq!(stats.value("method=.=GET;.;route=.=/a;.;status=.=200;.;http_requests_total"), Some(2));
    assert!(stats.names.borrow().iter().all(|(_, n)| !n.ends_with("_bucket")));
}

#[test]
fn unflushed_is_what_the_next_flush_hands_over() {
    let (stats, mut agg) = (Stats::default(), aggregates(HistogramMode::Exact));
    assert_eq!(agg.unflushed(), (0, 0));
    for route in [LabelId(0), LabelId(1), LabelId(0)] {
        agg.started(route, Method::Get);
    }
    agg.finished(&finished(LabelId(0), 200, 1, 0), &Names, &stats);
    agg.finished(&finished(LabelId(1), 503, 1, 0), &Names, &stats);
    // Two finished (one per route), one still in flight.
    assert_eq!(agg.unflushed(), (2, 1));
    agg.flush(&Names, &stats);
    assert_eq!(agg.unflushed(), (0, 0));
    // The one in flight ends after the flush: its gauge change is unflushed, -1.
    agg.finished(&finished(LabelId(0), 200, 1, 0), &Names, &stats);
    assert_eq!(agg.unflushed(), (1, -1));
}
