use super::*;
use crate::config::Config;
use crate::metrics::part_name;

fn naming(json: &str) -> Naming {
    Config::from_json(json.as_bytes()).unwrap().naming
}

fn error(json: &str) -> String {
    Config::from_json(json.as_bytes()).unwrap_err().to_string()
}

const GET_A: [&str; 2] = ["GET", "/a"];

#[test]
fn routemeter_names_are_the_default() {
    let n = naming("{}");
    for (metric, part, values) in [
        (Metric::RequestsTotal, Part::Whole, &["POST", "/u", "201"][..]),
        (Metric::RequestDuration, Part::Bucket("2.5"), &GET_A[..]),
        (Metric::RequestDuration, Part::Sum, &GET_A[..]),
        (Metric::UploadsTotal, Part::Whole, &["/u", "success"][..]),
    ] {
        assert_eq!(
            n.stat_name(metric, part, values, &[("f", "csv")]),
            part_name(metric, part, values, &[("f", "csv")])
        );
    }
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Bucket("2.5"), &GET_A, &[]),
        "method=.=GET;.;route=.=/a;.;le=.=2.5;.;http_request_duration_milliseconds_bucket"
    );
}

#[test]
fn prometheus_client_with_a_prefix_is_seed_004() {
    let n = naming(r#"{"names": {"profile": "prometheus_client", "prefix": "api_"}}"#);
    assert_eq!(
        n.stat_name(Metric::RequestsTotal, Part::Whole, &["GET", "/a", "503"], &[]),
        "method=.=GET;.;endpoint=.=/a;.;status=.=503;.;api_requests_total"
    );
    let bucket = |le| n.stat_name(Metric::RequestDuration, Part::Bucket(le), &GET_A, &[]);
    assert_eq!(bucket("10"), "method=.=GET;.;endpoint=.=/a;.;le=.=0.01;.;api_request_duration_seconds_bucket");
    assert_eq!(bucket("1000"), "method=.=GET;.;endpoint=.=/a;.;le=.=1.0;.;api_request_duration_seconds_bucket");
    assert_eq!(bucket("2500"), "method=.=GET;.;endpoint=.=/a;.;le=.=2.5;.;api_request_duration_seconds_bucket");
    assert_eq!(bucket("+Inf"), "method=.=GET;.;endpoint=.=/a;.;le=.=+Inf;.;api_request_duration_seconds_bucket");
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Sum, &GET_A, &[]),
        "method=.=GET;.;endpoint=.=/a;.;api_request_duration_milliseconds_sum"
    );
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Count, &GET_A, &[]),
        "method=.=GET;.;endpoint=.=/a;.;api_request_duration_seconds_count"
    );
    assert_eq!(
        n.stat_name(Metric::RequestsInProgress, Part::Whole, &GET_A, &[]),
        "method=.=GET;.;endpoint=.=/a;.;api_requests_in_progress"
    );
    // Sizes keep bytes, written as Python floats.
    assert_eq!(
        n.stat_name(Metric::RequestBodyBytes, Part::Bucket("1000"), &GET_A, &[]),
        "method=.=GET;.;endpoint=.=/a;.;le=.=1000.0;.;api_request_body_bytes_bucket"
    );
    // Not HTTP-prefixed: unchanged apart from the route label.
    assert_eq!(
        n.stat_name(Metric::UploadsTotal, Part::Whole, &["/u", "success"], &[]),
        "endpoint=.=/u;.;status=.=success;.;uploads_total"
    );
    assert_eq!(n.seconds_families(), ["api_request_duration_seconds"]);
}

#[test]
fn instrumentator_groups_statuses_and_names_the_handler() {
    let n = naming(r#"{"names": {"profile": "instrumentator"}}"#);
    assert_eq!(
        n.stat_name(Metric::RequestsTotal, Part::Whole, &["GET", "/a", "201"], &[]),
        "method=.=GET;.;handler=.=/a;.;status=.=2xx;.;http_requests_total"
    );
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Bucket("100"), &GET_A, &[]),
        "method=.=GET;.;handler=.=/a;.;le=.=0.1;.;http_request_duration_seconds_bucket"
    );
    assert_eq!(
        n.stat_name(Metric::RequestsInProgress, Part::Whole, &GET_A, &[]),
        "method=.=GET;.;handler=.=/a;.;http_requests_inprogress"
    );
    assert_eq!(
        n.stat_name(Metric::ResponseBodyBytes, Part::Count, &GET_A, &[]),
        "handler=.=/a;.;http_response_size_bytes_count"
    );
    // Outcomes are not statuses.
    assert_eq!(
        n.stat_name(Metric::UploadsTotal, Part::Whole, &["/u", "failed_size"], &[]),
        "handler=.=/u;.;status=.=failed_size;.;uploads_total"
    );
}

#[test]
fn opentelemetry_uses_the_semantic_conventions() {
    let n = naming(r#"{"names": {"profile": "opentelemetry"}}"#);
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Bucket("1000"), &GET_A, &[]),
        "http_request_method=.=GET;.;http_route=.=/a;.;le=.=1;.;http_server_request_duration_seconds_bucket"
    );
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Bucket("75"), &GET_A, &[]),
        "http_request_method=.=GET;.;http_route=.=/a;.;le=.=0.075;.;http_server_request_duration_seconds_bucket"
    );
    assert_eq!(
        n.stat_name(Metric::RequestsTotal, Part::Whole, &["GET", "/a", "404"], &[]),
        "http_request_method=.=GET;.;http_route=.=/a;.;http_response_status_code=.=404;.;http_server_requests_total"
    );
    assert_eq!(
        n.stat_name(Metric::RequestsInProgress, Part::Whole, &GET_A, &[]),
        "http_request_method=.=GET;.;http_route=.=/a;.;http_server_active_requests"
    );
    assert_eq!(
        n.stat_name(Metric::RequestsInProgress, Part::Whole, &["OTHER", "/a"], &[]),
        "http_request_method=.=_OTHER;.;http_route=.=/a;.;http_server_active_requests"
    );
    assert_eq!(n.profile.duration_status_label(), Some("http_response_status_code"));
    assert_eq!(n.seconds_families(), ["http_server_request_duration_seconds"]);
}

const SEED_000: &str = r#"{
  "names": {"profile": "prometheus_client"},
  "routes": [{
    "template": "/convert", "methods": ["POST"], "kind": "upload",
    "outcomes": {"2xx": "success", "4xx": "error", "5xx": "error", "0": "error"},
    "labels": [
      {"name": "format", "query": "output_format", "values": ["csv", "json"]},
      {"name": "compression", "query": "compression", "values": ["gzip", "zip"]}
    ],
    "names": {
      "uploads_total": "excel_conversions_total",
      "http_request_duration_milliseconds": "excel_conversion_duration_seconds",
      "upload_file_size_bytes": {"name": "excel_file_size_bytes", "labels": ["format"]}
    }
  }]
}"#;

#[test]
fn a_route_family_drops_route_and_method() {
    let n = naming(SEED_000);
    let attrs = [("format", "csv"), ("compression", "gzip")];
    assert_eq!(
        n.stat_name(Metric::UploadsTotal, Part::Whole, &["/convert", "success"], &attrs),
        "status=.=success;.;format=.=csv;.;compression=.=gzip;.;excel_conversions_total"
    );
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Bucket("500"), &["POST", "/convert"], &attrs),
        "format=.=csv;.;compression=.=gzip;.;le=.=0.5;.;excel_conversion_duration_seconds_bucket"
    );
    assert_eq!(
        n.stat_name(Metric::UploadFileSize, Part::Bucket("1000"), &["/convert"], &attrs),
        "format=.=csv;.;le=.=1000.0;.;excel_file_size_bytes_bucket"
    );
    // The route's other metrics keep the profile's names.
    assert_eq!(
        n.stat_name(Metric::RequestsTotal, Part::Whole, &["POST", "/convert", "200"], &attrs),
        "method=.=POST;.;endpoint=.=/convert;.;status=.=200;.;format=.=csv;.;compression=.=gzip;.;http_requests_total"
    );
    assert_eq!(n.seconds_families(), ["http_request_duration_seconds", "excel_conversion_duration_seconds"]);
    assert_eq!(
        n.label_names(&["format", "compression"]),
        ["method", "endpoint", "status", "quantile", "le", "format", "compression"]
    );
}

#[test]
fn bad_names_name_the_field() {
    assert_eq!(
        error(r#"{"names": {"profile": "statsd"}}"#),
        r#"names.profile: unknown profile "statsd"; expected one of routemeter, prometheus_client, instrumentator, opentelemetry"#
    );
    assert_eq!(
        error(r#"{"names": {"prefix": "api_"}}"#),
        "names.prefix: only the prometheus_client profile takes a prefix"
    );
    assert_eq!(
        error(r#"{"names": {"profile": "prometheus_client", "prefix": "api"}}"#),
        r#"names.prefix: prefix "api" must be a metric name prefix ending in '_' (letters, digits, '_')"#
    );
    let route = |names: &str| error(&format!(r#"{{"routes": [{{"template": "/c", "names": {names}}}]}}"#));
    assert_eq!(
        route(r#"{"conversions": "x_total"}"#),
        "routes[0].names.conversions: not a per-route metric; expected one of http_requests_total, http_request_duration_milliseconds, http_requests_in_progress, http_request_body_bytes, http_response_body_bytes, uploads_total, upload_file_size_bytes, downloads_total"
    );
    assert_eq!(
        route(r#"{"http_request_duration_milliseconds": "conversion_time"}"#),
        r#"routes[0].names.http_request_duration_milliseconds: "conversion_time": a duration's name ends in _seconds or _milliseconds (its unit)"#
    );
    assert_eq!(
        route(r#"{"uploads_total": "bad-name"}"#),
        r#"routes[0].names.uploads_total: "bad-name" is not a metric name (letters, digits, '_')"#
    );
    assert_eq!(
        route(r#"{"uploads_total": {"name": "c_total", "labels": ["format"]}}"#),
        r#"routes[0].names.uploads_total.labels: label "format" is not one of this route's labels ()"#
    );
}

#[test]
fn a_duration_family_may_time_one_outcome() {
    let with = |kind: &str, outcome: &str| {
        format!(
            r#"{{"routes": [{{"template": "/c"{kind}, "names": {{"http_request_duration_milliseconds": {{"name": "c_seconds", "outcome": "{outcome}"}}}}}}]}}"#
        )
    };
    let config = Config::from_json(with(r#", "kind": "upload""#, "success").as_bytes()).unwrap();
    assert_eq!(config.rules[0].transfer.as_ref().unwrap().durations_of, Some(crate::transfer::SUCCESS));
    assert_eq!(
        error(&with("", "success")),
        r#"routes[0].names.http_request_duration_milliseconds.outcome: only routes with "kind": "upload" or "download" have outcomes"#
    );
    assert_eq!(
        error(&with(r#", "kind": "upload""#, "fine")),
        r#"routes[0].names.http_request_duration_milliseconds.outcome: unknown outcome "fine""#
    );
    assert_eq!(
        error(
            r#"{"routes": [{"template": "/c", "kind": "upload", "names": {"uploads_total": {"name": "c_total", "outcome": "success"}}}]}"#
        ),
        "routes[0].names.uploads_total.outcome: only a duration family takes an outcome"
    );
}
