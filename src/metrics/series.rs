//! Metric ids, defined once per series and cached for the life of the VM. Defining a metric
//! is the expensive host call (Envoy symbolises the name under a lock), so the request path
//! only looks ids up here: a dense vector indexed by route id, then a fixed array by method.
//! Memory is bounded because route ids, methods, statuses (100-999) and outcomes all are.

use crate::host::{MetricId, MetricsHost};
use crate::method::Method;
use crate::outcome::OutcomeId;
use crate::route::RouteId;

use super::contract::Metric;
use super::name::stat_name;

/// Series of one (route, method) pair.
#[derive(Debug, Default)]
pub struct MethodSeries {
    pub in_progress: Option<MetricId>,
    pub duration: Option<MetricId>,
    pub request_bytes: Option<MetricId>,
    pub response_bytes: Option<MetricId>,
    /// `http_requests_total` by status code.
    requests: Vec<(u16, MetricId)>,
}

#[derive(Debug, Default)]
struct RouteSeries {
    by_method: [Option<Box<MethodSeries>>; Method::COUNT],
    /// `uploads_total` / `downloads_total` by outcome. Keyed by metric too: an upload rule
    /// and a download rule may share a template (`PUT` vs `GET /files/{id}`).
    outcomes: Vec<(Metric, OutcomeId, MetricId)>,
    upload_size: Option<MetricId>,
}

#[derive(Debug, Default)]
pub struct SeriesCache {
    routes: Vec<RouteSeries>,
}

/// Defines `metric` with `labels` unless `slot` already holds its id. A failed definition
/// leaves the slot empty, so the next request tries again and only this one value is lost.
fn ensure(host: &impl MetricsHost, slot: &mut Option<MetricId>, metric: Metric, labels: &[&str]) -> Option<MetricId> {
    if slot.is_none() {
        *slot = host.define_metric(metric.kind(), &stat_name(metric, labels)).ok();
    }
    *slot
}

impl SeriesCache {
    fn route(&mut self, route: RouteId) -> &mut RouteSeries {
        let i = route as usize;
        if self.routes.len() <= i {
            self.routes.resize_with(i + 1, RouteSeries::default);
        }
        &mut self.routes[i]
    }

    /// The per-method series of a route, with all four of its fixed metrics defined.
    pub fn method_series(
        &mut self,
        host: &impl MetricsHost,
        route: RouteId,
        route_label: &str,
        method: Method,
    ) -> &mut MethodSeries {
        let s = self.route(route).by_method[method.index()].get_or_insert_with(Box::default);
        let labels = [method.as_str(), route_label];
        ensure(host, &mut s.in_progress, Metric::RequestsInProgress, &labels);
        ensure(host, &mut s.duration, Metric::RequestDuration, &labels);
        ensure(host, &mut s.request_bytes, Metric::RequestBodyBytes, &labels);
        ensure(host, &mut s.response_bytes, Metric::ResponseBodyBytes, &labels);
        s
    }

    /// `uploads_total` / `downloads_total` for one outcome of a route.
    pub fn outcome_counter(
        &mut self,
        host: &impl MetricsHost,
        metric: Metric,
        route: RouteId,
        route_label: &str,
        outcome: OutcomeId,
        outcome_label: &str,
    ) -> Option<MetricId> {
        let r = self.route(route);
        if let Some((_, _, id)) = r.outcomes.iter().find(|(m, o, _)| *m == metric && *o == outcome) {
            return Some(*id);
        }
        let id = host.define_metric(metric.kind(), &stat_name(metric, &[route_label, outcome_label])).ok()?;
        r.outcomes.push((metric, outcome, id));
        Some(id)
    }

    pub fn upload_size(&mut self, host: &impl MetricsHost, route: RouteId, route_label: &str) -> Option<MetricId> {
        ensure(host, &mut self.route(route).upload_size, Metric::UploadFileSize, &[route_label])
    }
}

impl MethodSeries {
    /// `http_requests_total` for one status code, defined on first use.
    pub fn requests_counter(
        &mut self,
        host: &impl MetricsHost,
        method: Method,
        route_label: &str,
        status: u16,
    ) -> Option<MetricId> {
        if let Some((_, id)) = self.requests.iter().find(|(s, _)| *s == status) {
            return Some(*id);
        }
        let code = status.to_string();
        let name = stat_name(Metric::RequestsTotal, &[method.as_str(), route_label, &code]);
        let id = host.define_metric(Metric::RequestsTotal.kind(), &name).ok()?;
        self.requests.push((status, id));
        Some(id)
    }
}
