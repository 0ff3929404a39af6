//! The built-in profiles: the names and labels of the instrumentation teams already run.
//! Each one is written from its documentation (`../shared/notes/conventions.md` lists the
//! facts); the tests check every name and label against it.

use crate::metrics::{LabelKey, Metric};

/// OpenTelemetry's `error.type` as a Prometheus label: a server error's status code.
pub const ERROR_TYPE: &str = "error_type";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// routemeter's own names: `route`, milliseconds.
    #[default]
    Routemeter,
    /// prometheus_client written by hand, the seeds' way: `http_requests_total{method,
    /// endpoint,status}`, `http_request_duration_seconds{method,endpoint}`,
    /// `http_requests_in_progress{method,endpoint}`; a prefix replaces `http_`.
    PrometheusClient,
    /// prometheus-fastapi-instrumentator's defaults: `handler`, statuses as classes (`2xx`),
    /// `http_requests_inprogress`, sizes by handler only.
    Instrumentator,
    /// OpenTelemetry's stable HTTP server conventions as Prometheus names:
    /// `http_server_request_duration_seconds{http_request_method,http_route}`.
    OpenTelemetry,
}

impl Profile {
    pub fn from_config(name: &str) -> Option<Profile> {
        Some(match name {
            "routemeter" => Profile::Routemeter,
            "prometheus_client" => Profile::PrometheusClient,
            "instrumentator" => Profile::Instrumentator,
            "opentelemetry" => Profile::OpenTelemetry,
            _ => return None,
        })
    }

    pub const NAMES: &'static str = "routemeter, prometheus_client, instrumentator, opentelemetry";

    /// The metric's name; `prefix` replaces the leading `http_` (prometheus_client only).
    pub fn name(self, metric: Metric, prefix: Option<&str>) -> String {
        let own = metric.name();
        let named = match (self, metric) {
            (Profile::Routemeter, _) => own,
            (_, Metric::RequestDuration) if self == Profile::OpenTelemetry => "http_server_request_duration_seconds",
            (_, Metric::RequestDuration) => "http_request_duration_seconds",
            (Profile::Instrumentator, Metric::RequestsInProgress) => "http_requests_inprogress",
            (Profile::Instrumentator, Metric::RequestBodyBytes) => "http_request_size_bytes",
            (Profile::Instrumentator, Metric::ResponseBodyBytes) => "http_response_size_bytes",
            (Profile::OpenTelemetry, Metric::RequestsInProgress) => "http_server_active_requests",
            (Profile::OpenTelemetry, Metric::RequestBodyBytes) => "http_server_request_body_size_bytes",
            (Profile::OpenTelemetry, Metric::ResponseBodyBytes) => "http_server_response_body_size_bytes",
            // OpenTelemetry counts requests in the duration histogram (`_count`); the
            // counter by status keeps a name of its own.
            (Profile::OpenTelemetry, Metric::RequestsTotal) => "http_server_requests_total",
            _ => own,
        };
        match (prefix, named.strip_prefix("http_")) {
            (Some(p), Some(rest)) if self == Profile::PrometheusClient => format!("{p}{rest}"),
            _ => named.to_string(),
        }
    }

    /// The label `key` of `metric` is published as (`None`: dropped).
    pub fn label(self, metric: Metric, key: LabelKey) -> Option<&'static str> {
        let http = matches!(
            metric,
            Metric::RequestsTotal
                | Metric::RequestDuration
                | Metric::RequestsInProgress
                | Metric::RequestBodyBytes
                | Metric::ResponseBodyBytes
        );
        let own = key.as_str();
        Some(match (self, key) {
            (Profile::Routemeter, _) => own,
            (Profile::PrometheusClient, LabelKey::Route) => "endpoint",
            (Profile::Instrumentator, LabelKey::Route) => "handler",
            (Profile::Instrumentator, LabelKey::Method)
                if matches!(metric, Metric::RequestBodyBytes | Metric::ResponseBodyBytes) =>
            {
                return None
            }
            // `http.server.active_requests` has the method (and scheme) only.
            (Profile::OpenTelemetry, LabelKey::Route) if metric == Metric::RequestsInProgress => return None,
            (Profile::OpenTelemetry, LabelKey::Route) => "http_route",
            (Profile::OpenTelemetry, LabelKey::Method) if http => "http_request_method",
            (Profile::OpenTelemetry, LabelKey::Status) if http => "http_response_status_code",
            _ => own,
        })
    }

    /// The label request histograms (duration, body sizes) carry the status code under:
    /// OpenTelemetry's have `http.response.status_code` (conditionally required: whenever
    /// there is one).
    pub fn histogram_status_label(self) -> Option<&'static str> {
        (self == Profile::OpenTelemetry).then_some("http_response_status_code")
    }

    /// A method label's value: OpenTelemetry spells methods outside the known set `_OTHER`.
    pub fn method(self, method: &str) -> &str {
        match (self, method) {
            (Profile::OpenTelemetry, "OTHER") => "_OTHER",
            _ => method,
        }
    }

    /// instrumentator groups statuses (`2xx`) in `http_requests_total`.
    pub fn status_classes(self, metric: Metric) -> bool {
        self == Profile::Instrumentator && metric == Metric::RequestsTotal
    }

    /// Python clients write `le` as a float (`1.0`, `1000.0`).
    pub fn python_floats(self) -> bool {
        matches!(self, Profile::PrometheusClient | Profile::Instrumentator)
    }

    /// The duration bounds (seconds) the profile's instrumentation uses by default.
    pub fn default_duration_bounds(self) -> &'static [f64] {
        match self {
            Profile::Routemeter => &[],
            // prometheus_client's Histogram default.
            Profile::PrometheusClient => {
                &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
            }
            Profile::Instrumentator => &[0.1, 0.5, 1.0],
            // The conventions' advisory bounds.
            Profile::OpenTelemetry => {
                &[0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
            }
        }
    }
}
