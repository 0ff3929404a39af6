//! What the VM counts between two flushes. The request path only adds to plain integers here:
//! no host call. [`Aggregates::flush`] (every `flush_interval_ms`, and when the VM stops)
//! defines each series the first time it has something to say and adds the deltas to Envoy's
//! stats. Counts from every worker's VM add up in Envoy, as before; a crash loses at most
//! what was counted since the last flush.
//!
//! Histograms are published exactly (the default): as counters `<name>_bucket{le=...}`
//! (cumulative, `+Inf` included), `<name>_sum` and `<name>_count`, with the bounds from the
//! configuration. In `envoy` mode they are recorded into Envoy histograms instead, one host
//! call per sample, as stats sinks expect.
//!
//! Memory is bounded because route ids, methods, statuses (100-999) and outcomes all are.

use crate::host::{MetricId, MetricsHost};
use crate::method::Method;
use crate::transfer::OutcomeId;

use super::buckets::Bounds;
use super::contract::Metric;
use super::name::Part;
use super::registry::{Registry, Slot};

/// Status codes one series keeps request histograms for, when they are kept by status.
const MAX_STATUSES: usize = 16;
/// The code the others share (`_OTHER`); real codes are 0-999.
const OTHER_STATUS: u16 = u16::MAX;

/// What the aggregates are keyed by: a route label and its attribute labels' values,
/// interned by the plugin to a dense index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesId(u32);

impl SeriesId {
    pub(crate) fn new(index: usize) -> SeriesId {
        SeriesId(index as u32)
    }

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// How histograms reach Envoy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistogramMode {
    /// Bucket, sum and count counters, exact for every sample.
    #[default]
    Exact,
    /// Envoy histograms (approximate; what stats sinks turn into timers/distributions).
    Envoy,
}

#[derive(Debug, Default)]
struct Counter {
    slot: Slot,
    pending: u64,
}

#[derive(Debug, Default)]
struct Gauge {
    slot: Slot,
    pending: i64,
}

/// One histogram series (one label set).
#[derive(Debug)]
struct Histogram {
    /// Exact: one id per bucket, then sum, then count. Envoy: the histogram's id.
    ids: Option<Box<[MetricId]>>,
    /// Samples per bucket since the last flush (not cumulative).
    counts: Box<[u64]>,
    sum: u64,
    count: u64,
}

impl Histogram {
    fn new(buckets: usize) -> Histogram {
        Histogram { ids: None, counts: vec![0; buckets].into_boxed_slice(), sum: 0, count: 0 }
    }
}

#[derive(Debug)]
struct MethodSeries {
    /// `http_requests_total` by status code.
    requests: Vec<(u16, Counter)>,
    in_progress: Gauge,
    histograms: RequestHistograms,
    /// The histograms by status code, when the names want a status label on them
    /// (OpenTelemetry's `http_response_status_code`); `histograms` stays empty then.
    by_status: Vec<(u16, RequestHistograms)>,
}

/// What every request adds a sample to.
#[derive(Debug)]
struct RequestHistograms {
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl RequestHistograms {
    fn new(duration: usize, size: usize) -> RequestHistograms {
        RequestHistograms {
            duration: Histogram::new(duration),
            request_bytes: Histogram::new(size),
            response_bytes: Histogram::new(size),
        }
    }
}

#[derive(Debug, Default)]
struct RouteSeries {
    by_method: [Option<Box<MethodSeries>>; Method::COUNT],
    /// `uploads_total` / `downloads_total` by outcome. Keyed by metric too: an upload rule
    /// and a download rule may share a template (`PUT` vs `GET /files/{id}`).
    outcomes: Vec<(Metric, OutcomeId, Counter)>,
    upload_size: Option<Box<Histogram>>,
    /// Listed in `Aggregates::dirty`.
    dirty: bool,
}

#[derive(Debug)]
pub struct Aggregates {
    mode: HistogramMode,
    /// The label the request histograms carry their status code under, if they do.
    status_label: Option<&'static str>,
    duration: Bounds,
    size: Bounds,
    /// By series key (a route, and its attribute labels' values).
    routes: Vec<RouteSeries>,
    /// Series keys with something to flush.
    dirty: Vec<SeriesId>,
}

/// A completed request, as the aggregates need it.
#[derive(Debug, Clone, Copy)]
pub struct CompletedRequest {
    pub series: SeriesId,
    pub method: Method,
    /// The in-progress gauge was raised for it (not for streams first seen at their end).
    pub gauge_raised: bool,
    pub status: u16,
    /// Whole milliseconds, when known.
    pub duration_ms: Option<u64>,
    /// When known (a stream first seen at its end has Envoy's count, which can fail).
    pub request_bytes: Option<u64>,
    pub response_bytes: u64,
}

/// Label values of a series key, for the first definition of its series.
pub trait SeriesLabels {
    fn route(&self, series: SeriesId) -> &str;
    /// Its attribute labels, `(name, value)`.
    fn attributes(&self, series: SeriesId) -> Vec<(&str, &str)>;
    fn outcome(&self, id: OutcomeId) -> &str;
}

impl Aggregates {
    pub fn new(mode: HistogramMode, duration: Bounds, size: Bounds) -> Aggregates {
        Aggregates { mode, status_label: None, duration, size, routes: Vec::new(), dirty: Vec::new() }
    }

    /// Durations and body sizes keyed by status code too, published with it as the label
    /// `name` (and 5xx codes as `error_type` as well, as OpenTelemetry's `error.type`).
    pub fn with_status_label(mut self, name: Option<&'static str>) -> Aggregates {
        self.status_label = name;
        self
    }

    pub fn mode(&self) -> HistogramMode {
        self.mode
    }

    /// A request started: the in-flight gauge goes up.
    pub fn started(&mut self, series: SeriesId, method: Method) {
        let (d, s) = (self.duration.len(), self.size.len());
        let r = route_series(&mut self.routes, &mut self.dirty, series);
        if let Some(s) = r.and_then(|r| method_series(r, method, d, s)) {
            s.in_progress.pending += 1;
        }
    }

    /// A request completed. In `envoy` mode the histogram samples go to Envoy now (the only
    /// host calls on the request path), which is why labels and the host come along.
    pub fn completed(
        &mut self,
        c: &CompletedRequest,
        labels: &impl SeriesLabels,
        registry: &mut Registry,
        host: &impl MetricsHost,
    ) {
        let Aggregates { mode, status_label, duration, size, routes, dirty } = self;
        let r = route_series(routes, dirty, c.series);
        let Some(s) = r.and_then(|r| method_series(r, c.method, duration.len(), size.len())) else { return };
        let status = status_label.map(|name| (name, status_code(&s.by_status, c.status)));
        let histograms = match status {
            None => &mut s.histograms,
            Some((_, code)) => {
                let at = match s.by_status.iter().position(|(known, _)| *known == code) {
                    Some(at) => at,
                    None => {
                        s.by_status.push((code, RequestHistograms::new(duration.len(), size.len())));
                        s.by_status.len() - 1
                    }
                };
                match s.by_status.get_mut(at) {
                    Some((_, h)) => h,
                    None => return,
                }
            }
        };
        if c.gauge_raised {
            s.in_progress.pending -= 1;
        }
        match s.requests.iter_mut().find(|(code, _)| *code == c.status) {
            Some((_, counter)) => counter.pending += 1,
            None => s.requests.push((c.status, Counter { slot: Slot::default(), pending: 1 })),
        }
        let samples = [
            (&mut histograms.duration, Metric::RequestDuration, c.duration_ms, &*duration),
            (&mut histograms.request_bytes, Metric::RequestBodyBytes, c.request_bytes, &*size),
            (&mut histograms.response_bytes, Metric::ResponseBodyBytes, Some(c.response_bytes), &*size),
        ];
        for (h, metric, value, bounds) in samples {
            if let Some(value) = value {
                let series = (c.series, labels, status);
                add(h, (*mode, bounds), (metric, c.method.as_str()), series, value, (registry, host));
            }
        }
    }

    /// One more `uploads_total` / `downloads_total` in an outcome.
    pub fn outcome(&mut self, series: SeriesId, metric: Metric, outcome: OutcomeId) {
        let Some(r) = route_series(&mut self.routes, &mut self.dirty, series) else { return };
        match r.outcomes.iter_mut().find(|(m, o, _)| *m == metric && *o == outcome) {
            Some((_, _, c)) => c.pending += 1,
            None => r.outcomes.push((metric, outcome, Counter { slot: Slot::default(), pending: 1 })),
        }
    }

    /// An upload's body size.
    pub fn upload_size(
        &mut self,
        series: SeriesId,
        bytes: u64,
        labels: &impl SeriesLabels,
        registry: &mut Registry,
        host: &impl MetricsHost,
    ) {
        let Aggregates { mode, size, routes, dirty, .. } = self;
        let Some(r) = route_series(routes, dirty, series) else { return };
        let h = r.upload_size.get_or_insert_with(|| Box::new(Histogram::new(size.len())));
        add(h, (*mode, size), (Metric::UploadFileSize, ""), (series, labels, None), bytes, (registry, host));
    }

    /// Everything counted since the last flush goes to Envoy's stats as deltas.
    pub fn flush(&mut self, labels: &impl SeriesLabels, registry: &mut Registry, host: &impl MetricsHost) {
        let exact = self.mode == HistogramMode::Exact;
        for series in std::mem::take(&mut self.dirty) {
            let Some(r) = self.routes.get_mut(series.index()) else { continue };
            r.dirty = false;
            let (label, extra) = (labels.route(series), labels.attributes(series));
            let extra = &extra[..];
            for (i, s) in r.by_method.iter_mut().enumerate() {
                let Some(s) = s else { continue };
                let method = Method::from_index(i).as_str();
                for (status, c) in &mut s.requests {
                    // The status label is spelled only for a series not defined yet.
                    let code = if c.pending > 0 && c.slot.id().is_none() { status.to_string() } else { String::new() };
                    flush_counter(c, (Metric::RequestsTotal, &[method, label, &code], extra), registry, host);
                }
                let values = [method, label];
                flush_gauge(&mut s.in_progress, (Metric::RequestsInProgress, &values, extra), registry, host);
                if exact {
                    let bounds = (&self.duration, &self.size);
                    flush_request_histograms(&mut s.histograms, bounds, (&values, extra), registry, host);
                    for (code, h) in &mut s.by_status {
                        let Some(name) = self.status_label else { break };
                        if h.duration.count + h.request_bytes.count + h.response_bytes.count == 0 {
                            continue;
                        }
                        let status = status_labels(name, *code);
                        let with_status: Vec<(&str, &str)> =
                            status.iter().map(|(k, v)| (*k, v.as_str())).chain(extra.iter().copied()).collect();
                        flush_request_histograms(h, bounds, (&values, &with_status), registry, host);
                    }
                }
            }
            for (metric, outcome, c) in &mut r.outcomes {
                flush_counter(c, (*metric, &[label, labels.outcome(*outcome)], extra), registry, host);
            }
            if let (Some(h), true) = (&mut r.upload_size, exact) {
                flush_histogram(h, &self.size, (Metric::UploadFileSize, &[label], extra), registry, host);
            }
        }
    }

    /// Series keys waiting for a flush (for tests).
    pub fn pending_routes(&self) -> usize {
        self.dirty.len()
    }

    /// What the next flush would hand to Envoy: requests completed since the last flush (all
    /// statuses), and the net change of the in-flight gauges. This is what a VM that dies
    /// now takes with it (the crash tests read it from a test build).
    pub fn unflushed(&self) -> (u64, i64) {
        let mut requests = 0;
        let mut in_progress = 0;
        // Every route, not only the dirty ones: a count whose series could not be defined
        // waits in a route the last flush took off the list.
        for r in &self.routes {
            for s in r.by_method.iter().flatten() {
                requests += s.requests.iter().map(|(_, c)| c.pending).sum::<u64>();
                in_progress += s.in_progress.pending;
            }
        }
        (requests, in_progress)
    }
}

/// A series: its metric, its own label values, its attribute labels.
type Series<'a> = (Metric, &'a [&'a str], &'a [(&'a str, &'a str)]);

/// The series of a key, listed for the next flush (`None` only past the series table's
/// bound, which ids never reach).
fn route_series<'a>(
    routes: &'a mut Vec<RouteSeries>,
    dirty: &mut Vec<SeriesId>,
    series: SeriesId,
) -> Option<&'a mut RouteSeries> {
    let i = series.index();
    if routes.len() <= i {
        routes.resize_with(i + 1, RouteSeries::default);
    }
    let r = routes.get_mut(i)?;
    if !r.dirty {
        r.dirty = true;
        dirty.push(series);
    }
    Some(r)
}

fn method_series(r: &mut RouteSeries, method: Method, duration: usize, size: usize) -> Option<&mut MethodSeries> {
    let s = r.by_method.get_mut(method.index())?;
    Some(s.get_or_insert_with(|| {
        Box::new(MethodSeries {
            requests: Vec::new(),
            in_progress: Gauge::default(),
            histograms: RequestHistograms::new(duration, size),
            by_status: Vec::new(),
        })
    }))
}

/// One sample. In `envoy` mode its series is defined at the first sample: `method` is the
/// method label (empty for the upload size, which has none), `status` a status label's name
/// and code when durations carry one.
fn add(
    h: &mut Histogram,
    (mode, bounds): (HistogramMode, &Bounds),
    (metric, method): (Metric, &str),
    (series, labels, status): (SeriesId, &impl SeriesLabels, Option<(&'static str, u16)>),
    v: u64,
    (registry, host): (&mut Registry, &impl MetricsHost),
) {
    match mode {
        HistogramMode::Exact => {
            if let Some(n) = h.counts.get_mut(bounds.index(v)) {
                *n += 1;
            }
            h.sum = h.sum.saturating_add(v);
            h.count += 1;
        }
        HistogramMode::Envoy => {
            if h.ids.is_none() {
                let (route, attributes) = (labels.route(series), labels.attributes(series));
                let status = status.map(|(name, code)| status_labels(name, code)).unwrap_or_default();
                let extra: Vec<(&str, &str)> =
                    status.iter().map(|(k, v)| (*k, v.as_str())).chain(attributes.iter().copied()).collect();
                let with_method = [method, route];
                let values: &[&str] = if method.is_empty() { &with_method[1..] } else { &with_method };
                h.ids = registry.define(host, metric, (Part::Whole, values, &extra)).map(|id| vec![id].into());
            }
            if let Some(id) = h.ids.as_deref().and_then(<[MetricId]>::first) {
                let _ = host.record_metric(*id, v);
            }
        }
    }
}

/// The code a request's histograms are kept under: its own, or past MAX_STATUSES codes of
/// one series the `_OTHER` set (each code is ~45 stats in Envoy).
fn status_code(kept: &[(u16, RequestHistograms)], status: u16) -> u16 {
    match kept.iter().any(|(code, _)| *code == status) {
        false if kept.len() >= MAX_STATUSES => OTHER_STATUS,
        _ => status,
    }
}

/// The status labels of a request histogram: the code, and for a 5xx the code as
/// `error_type` too (OpenTelemetry's `error.type` of a server error is its status code).
fn status_labels(name: &'static str, code: u16) -> Vec<(&'static str, String)> {
    if code == OTHER_STATUS {
        return vec![(name, "_OTHER".to_string())];
    }
    let mut labels = vec![(name, code.to_string())];
    if (500..600).contains(&code) {
        labels.push((super::naming::ERROR_TYPE, code.to_string()));
    }
    labels
}

/// The three request histograms of one label set.
fn flush_request_histograms(
    h: &mut RequestHistograms,
    (duration, size): (&Bounds, &Bounds),
    (values, extra): (&[&str], &[(&str, &str)]),
    registry: &mut Registry,
    host: &impl MetricsHost,
) {
    let histograms = [
        (&mut h.duration, duration, Metric::RequestDuration),
        (&mut h.request_bytes, size, Metric::RequestBodyBytes),
        (&mut h.response_bytes, size, Metric::ResponseBodyBytes),
    ];
    for (h, bounds, metric) in histograms {
        flush_histogram(h, bounds, (metric, values, extra), registry, host);
    }
}

/// A delta for Envoy: counts never exceed `i64::MAX` in practice, and are clamped if they do.
fn delta(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

fn flush_counter(c: &mut Counter, series: Series<'_>, registry: &mut Registry, host: &impl MetricsHost) {
    if c.pending == 0 {
        return;
    }
    // Defining can fail; the count waits for the next flush.
    if let Some(id) = registry.id(&mut c.slot, host, series) {
        let _ = host.increment_metric(id, delta(c.pending));
        c.pending = 0;
    }
}

/// The gauge is defined at the first flush after its series was touched, even when the
/// requests went up and down in between: the series shows 0 rather than not existing.
fn flush_gauge(g: &mut Gauge, series: Series<'_>, registry: &mut Registry, host: &impl MetricsHost) {
    let id = registry.id(&mut g.slot, host, series);
    if let (Some(id), true) = (id, g.pending != 0) {
        let _ = host.increment_metric(id, g.pending);
        g.pending = 0;
    }
}

/// Cumulative bucket deltas, then sum and count. All of a histogram's counters are defined
/// together the first time, so Prometheus sees every bucket from the start.
fn flush_histogram(
    h: &mut Histogram,
    bounds: &Bounds,
    (metric, values, extra): Series<'_>,
    registry: &mut Registry,
    host: &impl MetricsHost,
) {
    if h.count == 0 {
        return;
    }
    if h.ids.is_none() {
        let parts = (0..bounds.len()).map(|i| Part::Bucket(bounds.le(i))).chain([Part::Sum, Part::Count]);
        h.ids = parts.map(|part| registry.define(host, metric, (part, values, extra))).collect();
    }
    let Some((count_id, rest)) = h.ids.as_deref().and_then(<[MetricId]>::split_last) else { return };
    let Some((sum_id, bucket_ids)) = rest.split_last() else { return };
    let mut cumulative = 0;
    for (id, n) in bucket_ids.iter().zip(h.counts.iter_mut()) {
        cumulative += std::mem::take(n);
        if cumulative > 0 {
            let _ = host.increment_metric(*id, delta(cumulative));
        }
    }
    if h.sum > 0 {
        let _ = host.increment_metric(*sum_id, delta(h.sum));
    }
    let _ = host.increment_metric(*count_id, delta(h.count));
    (h.sum, h.count) = (0, 0);
}

#[cfg(test)]
mod tests;
