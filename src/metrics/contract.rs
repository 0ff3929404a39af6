//! The metric contract: every metric routemeter emits, its Envoy type and its labels. The
//! README table and the Envoy bootstrap (`stats_tags`, bucket settings) are checked against
//! this list by tests, so it is the one place a metric is declared.

use crate::host::MetricKind;

/// A label key. The key is written into the stat name and cut out again by the bootstrap's
/// `stats_tags` regex of the same name, which makes it a real Prometheus label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelKey {
    Method,
    Route,
    Status,
    /// A histogram bucket's upper bound (`_bucket` series of exact histograms).
    Le,
    /// Which quantile a latency-quantile gauge holds (`0.99`).
    Quantile,
}

impl LabelKey {
    pub const ALL: [LabelKey; 5] =
        [LabelKey::Method, LabelKey::Route, LabelKey::Status, LabelKey::Le, LabelKey::Quantile];

    pub fn as_str(self) -> &'static str {
        match self {
            LabelKey::Method => "method",
            LabelKey::Route => "route",
            LabelKey::Status => "status",
            LabelKey::Le => "le",
            LabelKey::Quantile => "quantile",
        }
    }

    /// The `stats_tags` regex Envoy needs for this key (Istio's `key=.=value;.;` convention):
    /// group 1 is removed from the stat name, group 2 becomes the label value. The key must
    /// start the name, follow Envoy's `wasmcustom.` scope or end the previous pair: `le=` also
    /// ends `quantile=`, and an unanchored `le` regex tagged every quantile gauge with `le`.
    pub fn tag_regex(self) -> String {
        LabelKey::tag_regex_for(self.as_str())
    }

    /// The same regex for any label name (a profile's, an attribute label's).
    pub fn tag_regex_for(name: &str) -> String {
        format!(r"(?:^|[.;])({name}=\.=(.*?);\.;)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    RequestsTotal,
    RequestDuration,
    RequestsInProgress,
    RequestBodyBytes,
    ResponseBodyBytes,
    UploadsTotal,
    UploadFileSize,
    DownloadsTotal,
    ConfigInvalid,
    OpenApiFetches,
    OpenApiRoutes,
    RequestDurationQuantile,
}

use LabelKey::{Method as M, Quantile as Q, Route as R, Status as S};

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::RequestsTotal,
        Metric::RequestDuration,
        Metric::RequestsInProgress,
        Metric::RequestBodyBytes,
        Metric::ResponseBodyBytes,
        Metric::UploadsTotal,
        Metric::UploadFileSize,
        Metric::DownloadsTotal,
        Metric::ConfigInvalid,
        Metric::OpenApiFetches,
        Metric::OpenApiRoutes,
        Metric::RequestDurationQuantile,
    ];

    /// Name as scraped from `/stats/prometheus`. The unit is in the name because Envoy
    /// histograms take integers: milliseconds and bytes, never seconds.
    pub fn name(self) -> &'static str {
        match self {
            Metric::RequestsTotal => "http_requests_total",
            Metric::RequestDuration => "http_request_duration_milliseconds",
            Metric::RequestsInProgress => "http_requests_in_progress",
            Metric::RequestBodyBytes => "http_request_body_bytes",
            Metric::ResponseBodyBytes => "http_response_body_bytes",
            Metric::UploadsTotal => "uploads_total",
            Metric::UploadFileSize => "upload_file_size_bytes",
            Metric::DownloadsTotal => "downloads_total",
            Metric::ConfigInvalid => "routemeter_config_invalid",
            Metric::OpenApiFetches => "routemeter_openapi_fetches_total",
            Metric::OpenApiRoutes => "routemeter_openapi_routes",
            Metric::RequestDurationQuantile => "http_request_duration_quantile_microseconds",
        }
    }

    pub fn kind(self) -> MetricKind {
        match self {
            Metric::RequestsTotal | Metric::UploadsTotal | Metric::DownloadsTotal | Metric::OpenApiFetches => {
                MetricKind::Counter
            }
            Metric::RequestsInProgress
            | Metric::ConfigInvalid
            | Metric::OpenApiRoutes
            | Metric::RequestDurationQuantile => MetricKind::Gauge,
            Metric::RequestDuration | Metric::RequestBodyBytes | Metric::ResponseBodyBytes | Metric::UploadFileSize => {
                MetricKind::Histogram
            }
        }
    }

    /// Label keys, in the order they are encoded.
    pub fn labels(self) -> &'static [LabelKey] {
        match self {
            Metric::RequestsTotal => &[M, R, S],
            Metric::RequestDuration
            | Metric::RequestsInProgress
            | Metric::RequestBodyBytes
            | Metric::ResponseBodyBytes => &[M, R],
            Metric::UploadsTotal | Metric::DownloadsTotal => &[R, S],
            Metric::UploadFileSize => &[R],
            Metric::OpenApiFetches => &[S],
            Metric::RequestDurationQuantile => &[R, Q],
            Metric::ConfigInvalid | Metric::OpenApiRoutes => &[],
        }
    }

    /// Gauges whose value is set whole by whoever reports it (not added to): a new module's
    /// VMs set them again, so they need no hand-over.
    pub fn is_set_whole(self) -> bool {
        matches!(self, Metric::ConfigInvalid | Metric::OpenApiRoutes | Metric::RequestDurationQuantile)
    }

    /// Histogram unit, which decides the bootstrap's bucket list.
    pub fn unit(self) -> Option<Unit> {
        match self.kind() {
            MetricKind::Histogram if self == Metric::RequestDuration => Some(Unit::Milliseconds),
            MetricKind::Histogram => Some(Unit::Bytes),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Milliseconds,
    Bytes,
}

impl Unit {
    /// The default bucket bounds for this unit (configurable: `duration_buckets_ms`,
    /// `size_buckets_bytes`).
    pub const fn buckets(self) -> &'static [f64] {
        match self {
            Unit::Milliseconds => &[
                1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0, 60000.0,
            ],
            Unit::Bytes => &[1e3, 1e4, 1e5, 5e5, 1e6, 5e6, 1e7, 2.5e7, 5e7, 1e8, 5e8],
        }
    }
}
