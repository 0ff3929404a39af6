//! Encoding labels into an Envoy stat name. The proxy-wasm ABI has no labels, so a series is
//! named `method=.=GET;.;route=.=/api/v1/upload;.;http_requests_total` and the bootstrap's
//! `stats_tags` turn each `key=.=value;.;` back into a label. Values must already be
//! label-safe (no `;`, `=`, quotes, backslashes or control bytes): route labels are sanitised
//! when built, methods and outcomes come from fixed or validated sets, statuses are numbers.

#[cfg(test)]
use super::contract::LabelKey;
use super::contract::Metric;

/// The stat name of `metric` with `values` for its labels, in `metric.labels()` order.
/// Only called when a series is first defined.
pub fn stat_name(metric: Metric, values: &[&str]) -> String {
    part_name(metric, Part::Whole, values, &[])
}

/// Which series of a metric: the metric itself, or one of the counters an exact histogram is
/// published as (`_bucket` with an `le` label, `_sum`, `_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part<'a> {
    Whole,
    Bucket(&'a str),
    Sum,
    Count,
}

impl Part<'_> {
    pub fn suffix(self) -> &'static str {
        match self {
            Part::Whole => "",
            Part::Bucket(_) => "_bucket",
            Part::Sum => "_sum",
            Part::Count => "_count",
        }
    }
}

/// The stat name of one series of `metric` under routemeter's own names; `extra` labels (a
/// route's attribute labels: `(name, value)`, validated when configured) go after the
/// metric's own, then `le`. Other names: [`crate::naming::Naming::stat_name`].
pub fn part_name(metric: Metric, part: Part, values: &[&str], extra: &[(&str, &str)]) -> String {
    debug_assert_eq!(metric.labels().len(), values.len(), "{metric:?}");
    crate::naming::Naming::default().stat_name(metric, part, values, extra)
}

/// One `key=.=value;.;` pair.
pub(crate) fn push_label(name: &mut String, key: &str, value: &str) {
    name.push_str(key);
    name.push_str("=.=");
    name.push_str(value);
    name.push_str(";.;");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_in_contract_order() {
        assert_eq!(
            stat_name(Metric::RequestsTotal, &["POST", "/api/v1/upload", "201"]),
            "method=.=POST;.;route=.=/api/v1/upload;.;status=.=201;.;http_requests_total"
        );
        assert_eq!(
            stat_name(Metric::UploadsTotal, &["/api/v1/upload", "failed_size"]),
            "route=.=/api/v1/upload;.;status=.=failed_size;.;uploads_total"
        );
        assert_eq!(stat_name(Metric::UploadFileSize, &["/u"]), "route=.=/u;.;upload_file_size_bytes");
    }

    #[test]
    fn histogram_parts() {
        let labels = ["GET", "/a"];
        assert_eq!(
            part_name(Metric::RequestDuration, Part::Bucket("2.5"), &labels, &[("format", "csv")]),
            "method=.=GET;.;route=.=/a;.;format=.=csv;.;le=.=2.5;.;http_request_duration_milliseconds_bucket"
        );
        assert_eq!(
            part_name(Metric::RequestDuration, Part::Sum, &labels, &[]),
            "method=.=GET;.;route=.=/a;.;http_request_duration_milliseconds_sum"
        );
        assert_eq!(
            part_name(Metric::UploadFileSize, Part::Count, &["/u"], &[]),
            "route=.=/u;.;upload_file_size_bytes_count"
        );
    }

    #[test]
    fn tag_regexes() {
        assert_eq!(LabelKey::Route.tag_regex(), r"(?:^|[.;])(route=\.=(.*?);\.;)");
    }
}
