use std::collections::BTreeMap;

use super::*;

/// `names` and, per route, `(template, names, attribute labels)`, validated.
fn parse(names: &str, routes: &[(&str, &str, &[&str])]) -> Result<Naming, String> {
    let raw: RawNames = serde_json::from_str(names).unwrap();
    let routes = routes
        .iter()
        .enumerate()
        .map(|(i, (template, families, attributes))| RouteNames {
            rule: i,
            field: format!("routes[{i}]"),
            template: template.to_string(),
            families: serde_json::from_str::<BTreeMap<String, RawFamily>>(families).unwrap(),
            attributes: attributes.iter().map(|a| a.to_string()).collect(),
        })
        .collect();
    Naming::from_raw(raw, routes).map_err(|e| e.to_string())
}

fn naming(names: &str) -> Naming {
    parse(names, &[]).unwrap()
}

const GET_A: [&str; 2] = ["GET", "/a"];

#[test]
fn routemeter_names_are_the_default() {
    let n = naming("{}");
    assert_eq!(n, Naming::default());
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
    let n = naming(r#"{"profile": "prometheus_client", "prefix": "api_"}"#);
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
    // Sizes keep bytes, written as Python's prometheus_client writes them (checked with it:
    // `floatToGoString`).
    let size_le = |le| {
        let name = n.stat_name(Metric::RequestBodyBytes, Part::Bucket(le), &GET_A, &[]);
        name.split("le=.=").nth(1).and_then(|rest| rest.split(';').next()).unwrap().to_string()
    };
    let written: Vec<String> =
        ["1000", "500000", "1000000", "25000000", "1000000000", "10000000000", "123456.5", "+Inf"]
            .into_iter()
            .map(size_le)
            .collect();
    assert_eq!(written, ["1000.0", "500000.0", "1e+06", "2.5e+07", "1e+09", "1e+10", "123456.5", "+Inf"]);
    // Not HTTP-prefixed: unchanged apart from the route label.
    assert_eq!(
        n.stat_name(Metric::UploadsTotal, Part::Whole, &["/u", "success"], &[]),
        "endpoint=.=/u;.;status=.=success;.;uploads_total"
    );
    assert_eq!(n.seconds_families(), ["api_request_duration_seconds"]);
}

#[test]
fn instrumentator_groups_statuses_and_names_the_handler() {
    let n = naming(r#"{"profile": "instrumentator"}"#);
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
    let n = naming(r#"{"profile": "opentelemetry"}"#);
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
        "http_request_method=.=GET;.;http_server_active_requests"
    );
    assert_eq!(
        n.stat_name(Metric::RequestsInProgress, Part::Whole, &["OTHER", "/a"], &[]),
        "http_request_method=.=_OTHER;.;http_server_active_requests"
    );
    assert_eq!(n.profile.histogram_status_label(), Some("http_response_status_code"));
    assert_eq!(
        n.label_names(&[]),
        ["http_request_method", "http_route", "http_response_status_code", "status", "quantile", "error_type", "le"]
    );
    assert_eq!(n.seconds_families(), ["http_server_request_duration_seconds"]);
}

/// Seed 000's conversion route: its families (the configuration around them is in
/// `tests/seed_queries.rs`).
const SEED_000: &str = r#"{
    "uploads_total": "excel_conversions_total",
    "http_request_duration_milliseconds": "excel_conversion_duration_seconds",
    "upload_file_size_bytes": {"name": "excel_file_size_bytes", "labels": ["format"]}
}"#;

#[test]
fn a_route_family_drops_route_and_method() {
    let n =
        parse(r#"{"profile": "prometheus_client"}"#, &[("/convert", SEED_000, &["format", "compression"])]).unwrap();
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
fn a_family_keeps_the_status_labels_whatever_attribute_labels_it_keeps() {
    let n = parse(
        r#"{"profile": "opentelemetry"}"#,
        &[(
            "/c",
            r#"{"http_request_duration_milliseconds": {"name": "c_seconds", "labels": ["format"]}}"#,
            &["format", "compression"],
        )],
    )
    .unwrap();
    let extra =
        [("http_response_status_code", "500"), ("error_type", "500"), ("format", "csv"), ("compression", "gzip")];
    assert_eq!(
        n.stat_name(Metric::RequestDuration, Part::Count, &["POST", "/c"], &extra),
        "http_response_status_code=.=500;.;error_type=.=500;.;format=.=csv;.;c_seconds_count"
    );
}

#[test]
fn bad_names_name_the_field() {
    let error = |names: &str| parse(names, &[]).unwrap_err();
    assert_eq!(
        error(r#"{"profile": "statsd"}"#),
        r#"names.profile: unknown profile "statsd"; expected one of routemeter, prometheus_client, instrumentator, opentelemetry"#
    );
    assert_eq!(error(r#"{"prefix": "api_"}"#), "names.prefix: only the prometheus_client profile takes a prefix");
    assert_eq!(
        error(r#"{"profile": "prometheus_client", "prefix": "api"}"#),
        r#"names.prefix: prefix "api" must be a metric name prefix ending in '_' (letters, digits, '_')"#
    );
    let route = |families: &str| parse("{}", &[("/c", families, &[])]).unwrap_err();
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
    assert_eq!(
        parse(
            "{}",
            &[("/c", r#"{"uploads_total": "a_total"}"#, &[]), ("/c", r#"{"downloads_total": "b_total"}"#, &[])]
        )
        .unwrap_err(),
        "routes[1].names: routes[0] has the same template and names its metrics already"
    );
    assert_eq!(
        route(r#"{"uploads_total": "http_requests_in_progress"}"#),
        r#"routes[0].names.uploads_total: "http_requests_in_progress" gives http_requests_in_progress, which http_requests_in_progress already has"#
    );
    assert_eq!(
        route(r#"{"uploads_total": "c_seconds_count", "http_request_duration_milliseconds": "c_seconds"}"#),
        r#"routes[0].names.uploads_total: "c_seconds_count" gives c_seconds_count, which http_request_duration_milliseconds already has"#
    );
    // One metric, one name, on two routes: their series add up.
    assert!(parse(
        "{}",
        &[("/a", r#"{"uploads_total": "c_total"}"#, &[]), ("/b", r#"{"uploads_total": "c_total"}"#, &[])]
    )
    .is_ok());
    assert_eq!(
        route(r#"{"uploads_total": {"name": "c_total", "outcome": "success"}}"#),
        "routes[0].names.uploads_total.outcome: only a duration family takes an outcome"
    );
}

#[test]
fn routemeter_names_encode_in_contract_order() {
    assert_eq!(
        stat_name(Metric::RequestsTotal, &["POST", "/api/v1/upload", "201"]),
        "method=.=POST;.;route=.=/api/v1/upload;.;status=.=201;.;http_requests_total"
    );
    assert_eq!(
        stat_name(Metric::UploadsTotal, &["/api/v1/upload", "failed_size"]),
        "route=.=/api/v1/upload;.;status=.=failed_size;.;uploads_total"
    );
    assert_eq!(stat_name(Metric::UploadFileSize, &["/u"]), "route=.=/u;.;upload_file_size_bytes");
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
