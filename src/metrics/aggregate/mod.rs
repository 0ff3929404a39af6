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
use crate::outcome::OutcomeId;
use crate::route::LabelId;

use super::buckets::Bounds;
use super::contract::Metric;
use super::name::{part_name, Part};

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
    id: Option<MetricId>,
    pending: u64,
}

#[derive(Debug, Default)]
struct Gauge {
    id: Option<MetricId>,
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
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
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
    duration: Bounds,
    size: Bounds,
    routes: Vec<RouteSeries>,
    /// Routes with something to flush.
    dirty: Vec<LabelId>,
}

/// A finished request, as the aggregates need it.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub route: LabelId,
    pub method: Method,
    /// The in-progress gauge was raised for it (not for streams first seen at their end).
    pub gauge_raised: bool,
    pub status: u16,
    /// Whole milliseconds, when known.
    pub duration_ms: Option<u64>,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

/// Label values of a route, for the first definition of its series.
pub trait SeriesLabels {
    fn route(&self, id: LabelId) -> &str;
    fn outcome(&self, id: OutcomeId) -> &str;
}

impl Aggregates {
    pub fn new(mode: HistogramMode, duration: Bounds, size: Bounds) -> Aggregates {
        Aggregates { mode, duration, size, routes: Vec::new(), dirty: Vec::new() }
    }

    pub fn mode(&self) -> HistogramMode {
        self.mode
    }

    /// A request started: the in-flight gauge goes up.
    pub fn started(&mut self, route: LabelId, method: Method) {
        let (d, s) = (self.duration.len(), self.size.len());
        method_series(route_series(&mut self.routes, &mut self.dirty, route), method, d, s).in_progress.pending += 1;
    }

    /// A request finished. In `envoy` mode the histogram samples go to Envoy now (the only
    /// host calls on the request path), which is why labels and the host come along.
    pub fn finished(&mut self, f: &Finished, labels: &impl SeriesLabels, host: &impl MetricsHost) {
        let Aggregates { mode, duration: duration_bounds, size: size_bounds, routes, dirty } = self;
        let mode = *mode;
        let r = route_series(routes, dirty, f.route);
        let s = method_series(r, f.method, duration_bounds.len(), size_bounds.len());
        if f.gauge_raised {
            s.in_progress.pending -= 1;
        }
        match s.requests.iter_mut().find(|(code, _)| *code == f.status) {
            Some((_, c)) => c.pending += 1,
            None => s.requests.push((f.status, Counter { id: None, pending: 1 })),
        }
        let values = [f.method.as_str(), labels.route(f.route)];
        let samples = [
            (Metric::RequestDuration, f.duration_ms, &*duration_bounds),
            (Metric::RequestBodyBytes, Some(f.request_bytes), &*size_bounds),
            (Metric::ResponseBodyBytes, Some(f.response_bytes), &*size_bounds),
        ];
        for (metric, value, bounds) in samples {
            let Some(value) = value else { continue };
            let h = match metric {
                Metric::RequestDuration => &mut s.duration,
                Metric::RequestBodyBytes => &mut s.request_bytes,
                _ => &mut s.response_bytes,
            };
            add(h, mode, bounds, metric, &values, value, host);
        }
    }

    /// One more `uploads_total` / `downloads_total` in an outcome.
    pub fn outcome(&mut self, route: LabelId, metric: Metric, outcome: OutcomeId) {
        let r = route_series(&mut self.routes, &mut self.dirty, route);
        match r.outcomes.iter_mut().find(|(m, o, _)| *m == metric && *o == outcome) {
            Some((_, _, c)) => c.pending += 1,
            None => r.outcomes.push((metric, outcome, Counter { id: None, pending: 1 })),
        }
    }

    /// An upload's body size.
    pub fn upload_size(&mut self, route: LabelId, bytes: u64, labels: &impl SeriesLabels, host: &impl MetricsHost) {
        let Aggregates { mode, size, routes, dirty, .. } = self;
        let n = size.len();
        let h = route_series(routes, dirty, route).upload_size.get_or_insert_with(|| Box::new(Histogram::new(n)));
        add(h, *mode, size, Metric::UploadFileSize, &[labels.route(route)], bytes, host);
    }

    /// Everything counted since the last flush goes to Envoy's stats as deltas.
    pub fn flush(&mut self, labels: &impl SeriesLabels, host: &impl MetricsHost) {
        let dirty = std::mem::take(&mut self.dirty);
        for route in dirty {
            let (mode, duration, size) = (self.mode, &self.duration, &self.size);
            let Some(r) = self.routes.get_mut(route.index()) else { continue };
            r.dirty = false;
            let label = labels.route(route);
            for (i, s) in r.by_method.iter_mut().enumerate() {
                let Some(s) = s else { continue };
                let method = Method::from_index(i).as_str();
                for (status, c) in &mut s.requests {
                    let code = status.to_string();
                    flush_counter(c, Metric::RequestsTotal, &[method, label, &code], host);
                }
                flush_gauge(&mut s.in_progress, Metric::RequestsInProgress, &[method, label], host);
                if mode == HistogramMode::Exact {
                    let values = [method, label];
                    flush_histogram(&mut s.duration, duration, Metric::RequestDuration, &values, host);
                    flush_histogram(&mut s.request_bytes, size, Metric::RequestBodyBytes, &values, host);
                    flush_histogram(&mut s.response_bytes, size, Metric::ResponseBodyBytes, &values, host);
                }
            }
            for (metric, outcome, c) in &mut r.outcomes {
                flush_counter(c, *metric, &[label, labels.outcome(*outcome)], host);
            }
            if let (Some(h), HistogramMode::Exact) = (&mut r.upload_size, mode) {
                flush_histogram(h, size, Metric::UploadFileSize, &[label], host);
            }
        }
    }

    /// Routes waiting for a flush (for tests).
    pub fn pending_routes(&self) -> usize {
        self.dirty.len()
    }

    /// What the next flush would hand to Envoy: requests finished since the last flush (all
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

/// The series of a route, listed for the next flush.
fn route_series<'a>(routes: &'a mut Vec<RouteSeries>, dirty: &mut Vec<LabelId>, route: LabelId) -> &'a mut RouteSeries {
    let i = route.index();
    if routes.len() <= i {
        routes.resize_with(i + 1, RouteSeries::default);
    }
    let r = &mut routes[i];
    if !r.dirty {
        r.dirty = true;
        dirty.push(route);
    }
    r
}

fn method_series(
    r: &mut RouteSeries,
    method: Method,
    duration_buckets: usize,
    size_buckets: usize,
) -> &mut MethodSeries {
    r.by_method[method.index()].get_or_insert_with(|| {
        Box::new(MethodSeries {
            requests: Vec::new(),
            in_progress: Gauge::default(),
            duration: Histogram::new(duration_buckets),
            request_bytes: Histogram::new(size_buckets),
            response_bytes: Histogram::new(size_buckets),
        })
    })
}

fn add(
    h: &mut Histogram,
    mode: HistogramMode,
    bounds: &Bounds,
    metric: Metric,
    values: &[&str],
    v: u64,
    host: &impl MetricsHost,
) {
    match mode {
        HistogramMode::Exact => {
            let i = bounds.index(v);
            h.counts[i] += 1;
            h.sum = h.sum.saturating_add(v);
            h.count += 1;
        }
        HistogramMode::Envoy => {
            if h.ids.is_none() {
                h.ids = host
                    .define_metric(metric.kind(), &part_name(metric, Part::Whole, values))
                    .ok()
                    .map(|id| vec![id].into());
            }
            if let Some(ids) = &h.ids {
                let _ = host.record_metric(ids[0], v);
            }
        }
    }
}

fn flush_counter(c: &mut Counter, metric: Metric, values: &[&str], host: &impl MetricsHost) {
    if c.pending == 0 {
        return;
    }
    if c.id.is_none() {
        // Defining can fail; the count waits for the next flush.
        c.id = host.define_metric(metric.kind(), &part_name(metric, Part::Whole, values)).ok();
    }
    if let Some(id) = c.id {
        let _ = host.increment_metric(id, c.pending.min(i64::MAX as u64) as i64);
        c.pending = 0;
    }
}

/// The gauge is defined at the first flush after its series was touched, even when the
/// requests went up and down in between: the series shows 0 rather than not existing.
fn flush_gauge(g: &mut Gauge, metric: Metric, values: &[&str], host: &impl MetricsHost) {
    if g.id.is_none() {
        g.id = host.define_metric(metric.kind(), &part_name(metric, Part::Whole, values)).ok();
    }
    if let (Some(id), true) = (g.id, g.pending != 0) {
        let _ = host.increment_metric(id, g.pending);
        g.pending = 0;
    }
}

/// Cumulative bucket deltas, then sum and count. All of a histogram's counters are defined
/// together the first time, so Prometheus sees every bucket from the start.
fn flush_histogram(h: &mut Histogram, bounds: &Bounds, metric: Metric, values: &[&str], host: &impl MetricsHost) {
    if h.count == 0 {
        return;
    }
    if h.ids.is_none() {
        let define = |part| host.define_metric(crate::host::MetricKind::Counter, &part_name(metric, part, values)).ok();
        let mut ids = Vec::with_capacity(bounds.len() + 2);
        for i in 0..bounds.len() {
            ids.push(define(Part::Bucket(bounds.le(i))));
        }
        ids.push(define(Part::Sum));
        ids.push(define(Part::Count));
        h.ids = ids.into_iter().collect::<Option<Vec<_>>>().map(Vec::into_boxed_slice);
    }
    let Some(ids) = &h.ids else { return };
    let mut cumulative = 0;
    for (i, n) in h.counts.iter_mut().enumerate() {
        cumulative += std::mem::take(n);
        if cumulative > 0 {
            let _ = host.increment_metric(ids[i], cumulative.min(i64::MAX as u64) as i64);
        }
    }
    let n = ids.len();
    if h.sum > 0 {
        let _ = host.increment_metric(ids[n - 2], h.sum.min(i64::MAX as u64) as i64);
    }
    let _ = host.increment_metric(ids[n - 1], h.count.min(i64::MAX as u64) as i64);
    (h.sum, h.count) = (0, 0);
}

#[cfg(test)]
mod tests;
