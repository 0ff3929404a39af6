//! Configuration: what parses, and the exact error for what does not.

use super::*;
use crate::method::Method;
use crate::transfer::{OutcomeId, TransferKind};

fn error_of(json: &str) -> String {
    Config::from_json(json.as_bytes()).unwrap_err().to_string()
}

#[test]
fn empty_and_minimal_configs_use_defaults() {
    for json in ["", "  \n", "{}"] {
        let c = Config::from_json(json.as_bytes()).unwrap();
        assert_eq!(c.max_routes, 100);
        assert_eq!(c.max_path_depth, 16);
        assert!(c.learn);
        assert_eq!(c.openapi, None);
        assert!(!c.use_route_name);
        assert!(c.rules.is_empty() && c.exclusions.is_empty());
    }
    assert_eq!(Config::from_raw(RawConfig::default()).unwrap().max_routes, 100);
}

#[test]
fn full_config_parses() {
    let c = Config::from_json(
        br#"{
        "routes": [
            {"template": "/api/v1/upload", "methods": ["POST", "PUT"], "kind": "upload",
             "outcomes": {"422": "failed_validation", "5xx": "failed_server"}},
            {"template": "/api/v1/download/{job_id}", "kind": "download"},
            {"template": "/static/*"}
        ],
        "exclude": ["/health", "/metrics"],
        "use_route_name": true,
        "max_routes": 250,
        "max_path_depth": 3
    }"#,
    )
    .unwrap();
    assert_eq!(c.rules.len(), 3);
    assert_eq!(c.rules[0].transfer.as_ref().map(|t| t.kind), Some(TransferKind::Upload));
    assert!(c.rules[0].methods.unwrap().contains(Method::Put));
    assert!(!c.rules[0].methods.unwrap().contains(Method::Get));
    assert_eq!(c.rules[1].methods, None);
    assert_eq!(c.rules[2].template.text(), "/static/*");
    assert_eq!(c.exclusions.len(), 2);
    assert_eq!((c.max_routes, c.max_path_depth, c.use_route_name), (250, 3, true));
    assert_eq!(c.outcome_labels.label(OutcomeId(7)), "failed_server");
}

#[test]
fn openapi_source_defaults() {
    let c = Config::from_json(br#"{"openapi": {"cluster": "converter"}, "learn": false}"#).unwrap();
    assert!(!c.learn);
    assert_eq!(
        c.openapi,
        Some(OpenApiConfig {
            cluster: "converter".into(),
            path: "/openapi.json".into(),
            authority: "converter".into(),
            refresh_seconds: 300,
            timeout_ms: 5_000,
            max_bytes: 8 << 20,
            base_path: None,
        })
    );
}

#[test]
fn errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"{"max_rutes": 5}"#, "max_rutes: unknown field `max_rutes`, expected one of `routes`, `exclude`, `use_route_name`, `max_routes`, `max_path_depth`, `learn`, `openapi`, `flush_interval_ms`, `histograms`, `duration_buckets_ms`, `size_buckets_bytes`, `latency_quantiles`, `slos`, `labels`, `max_label_combinations`, `names`"),
        (r#"{"max_routes": 0}"#, "max_routes: must be between 1 and 10000, got 0"),
        (r#"{"max_routes": 10001}"#, "max_routes: must be between 1 and 10000, got 10001"),
        (r#"{"max_routes": -1}"#, "max_routes: invalid value: integer `-1`, expected u64"),
        (r#"{"max_routes": "100"}"#, "max_routes: invalid type: string \"100\", expected u64"),
        (r#"{"max_path_depth": 0}"#, "max_path_depth: must be between 1 and 32, got 0"),
        (r#"{"use_route_name": "yes"}"#, "use_route_name: invalid type: string \"yes\", expected a boolean"),
        (r#"{"routes": [{"methods": ["GET"]}]}"#, "routes[0]: missing field `template`"),
        (r#"{"routes": [{"template": "/a"}, {"template": "b"}]}"#, "routes[1].template: template \"b\" must start with '/'"),
        (r#"{"routes": [{"template": "/a", "kind": "uplaod"}]}"#, "routes[0].kind: unknown variant `uplaod`, expected `upload` or `download`"),
        (r#"{"routes": [{"template": "/a", "methods": []}]}"#, "routes[0].methods: must not be empty; leave it out to match every method"),
        (r#"{"routes": [{"template": "/a", "methods": ["GET", "get"]}]}"#, "routes[0].methods[1]: unknown method \"get\"; expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, OTHER"),
        (r#"{"routes": [{"template": "/a", "outcomes": {"404": "x"}}]}"#, "routes[0].outcomes: only routes with \"kind\": \"upload\" or \"download\" have outcomes"),
        (r#"{"routes": [{"template": "/a", "kind": "download", "outcomes": {"6xx": "x"}}]}"#, "routes[0].outcomes.6xx: key must be a status code 100-599, \"0\" (no response) or a class \"1xx\"-\"5xx\""),
        (r#"{"routes": [{"template": "/a", "kind": "download", "outcomes": {"404": "Not Found"}}]}"#, "routes[0].outcomes.404: outcome \"Not Found\" must be 1-64 characters of a-z, 0-9 and '_', starting with a letter"),
        (r#"{"routes": [{"template": "/a", "path": "/b"}]}"#, "routes[0].path: unknown field `path`, expected one of `template`, `methods`, `kind`, `outcomes`, `labels`, `names`"),
        (r#"{"exclude": ["/ok", "/bad/{x"]}"#, "exclude[1]: template \"/bad/{x\": segment \"{x\" has an unclosed '{'"),
        (r#"{"learn": 1}"#, "learn: invalid type: integer `1`, expected a boolean"),
        (r#"{"flush_interval_ms": 50}"#, "flush_interval_ms: must be between 100 and 60000, got 50"),
        (r#"{"histograms": "approximate"}"#, "histograms: unknown variant `approximate`, expected `exact` or `envoy`"),
        (r#"{"duration_buckets_ms": [10, 5]}"#, "duration_buckets_ms: bounds must increase strictly, got 10 then 5"),
        (r#"{"size_buckets_bytes": []}"#, "size_buckets_bytes: must have 1 to 40 bounds, got 0"),
        (r#"{"size_buckets_bytes": ["1k"]}"#, "size_buckets_bytes[0]: invalid type: string \"1k\", expected f64"),
        (r#"{"latency_quantiles": {"window_seconds": 5}}"#, "latency_quantiles.window_seconds: must be between 10 and 3600, got 5"),
        (r#"{"latency_quantiles": {"quantiles": [0.5, 1]}}"#, "latency_quantiles.quantiles[1]: must be between 0 and 1 (exclusive) with at most 4 decimals, got 1"),
        (r#"{"latency_quantiles": {"quantiles": [0.123456]}}"#, "latency_quantiles.quantiles[0]: must be between 0 and 1 (exclusive) with at most 4 decimals, got 0.123456"),
        (r#"{"latency_quantiles": {"quantiles": [0.9, 0.5]}}"#, "latency_quantiles.quantiles[1]: quantiles must be ascending, without repeats"),
        (r#"{"latency_quantiles": {"quantiles": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}}"#, "latency_quantiles.quantiles: at most 8, got 9"),
        (r#"{"latency_quantiles": {"p99": true}}"#, "latency_quantiles.p99: unknown field `p99`, expected `quantiles` or `window_seconds`"),
        (r#"{"openapi": "/openapi.json"}"#, "openapi: must be a JSON object"),
        (r#"{"openapi": {}}"#, "openapi: missing field `cluster`"),
        (r#"{"openapi": {"cluster": "app", "url": "/x"}}"#, "openapi.url: unknown field `url`, expected one of `cluster`, `path`, `authority`, `refresh_seconds`, `timeout_ms`, `max_bytes`, `base_path`"),
        (r#"{"openapi": {"cluster": ""}}"#, "openapi.cluster: must be an Envoy cluster name (1-256 visible characters)"),
        (r#"{"openapi": {"cluster": "app", "path": "openapi.json"}}"#, "openapi.path: must be a path starting with '/', got \"openapi.json\""),
        (r#"{"openapi": {"cluster": "app", "refresh_seconds": 1}}"#, "openapi.refresh_seconds: must be between 10 and 86400, got 1"),
        (r#"{"openapi": {"cluster": "app", "timeout_ms": 0}}"#, "openapi.timeout_ms: must be between 100 and 60000, got 0"),
        (r#"{"openapi": {"cluster": "app", "max_bytes": 10}}"#, "openapi.max_bytes: must be between 1024 and 67108864, got 10"),
        (r#"{"openapi": {"cluster": "app", "base_path": "v1"}}"#, "openapi.base_path: must be a literal path starting with '/', got \"v1\""),
        (r#"{"routes": 5}"#, "routes: invalid type: integer `5`, expected a sequence"),
        ("[]", "configuration: must be a JSON object"),
        (r#"{"": 1}"#, "\"\": unknown field ``, expected one of `routes`, `exclude`, `use_route_name`, `max_routes`, `max_path_depth`, `learn`, `openapi`, `flush_interval_ms`, `histograms`, `duration_buckets_ms`, `size_buckets_bytes`, `latency_quantiles`, `slos`, `labels`, `max_label_combinations`, `names`"),
        ("null", "configuration: must be a JSON object"),
        (r#"{"routes": [["/a"]]}"#, "routes[0]: must be a JSON object"),
        ("{", "configuration: EOF while parsing an object at line 1 column 1"),
        ("{} x", "configuration: trailing characters at line 1 column 4"),
    ];
    for (json, want) in cases {
        assert_eq!(error_of(json), *want, "config {json}");
    }
}

#[test]
fn outcome_labels_are_bounded() {
    let many: Vec<String> = (0..101).map(|i| format!("\"{}\": \"o{i}\"", 100 + i)).collect();
    let json = format!(r#"{{"routes": [{{"template": "/a", "kind": "upload", "outcomes": {{{}}}}}]}}"#, many.join(","));
    assert_eq!(error_of(&json), "routes[0].outcomes: at most 100 overrides, got 101");
    let rules: Vec<String> = (0..20)
        .map(|r| {
            let o: Vec<String> = (0..3).map(|i| format!("\"{}\": \"r{r}_{i}\"", 200 + i)).collect();
            format!(r#"{{"template": "/r{r}", "kind": "download", "outcomes": {{{}}}}}"#, o.join(","))
        })
        .collect();
    // 7 defaults + 57 new labels (rules 0-18) fit; the 58th, rule 19's first override, does not.
    let json = format!(r#"{{"routes": [{}]}}"#, rules.join(","));
    assert_eq!(
        error_of(&json),
        "routes[19].outcomes.200: more than 64 distinct outcome labels in the configuration (defaults included)"
    );
}

#[test]
fn errors_carry_field_and_reason_separately() {
    let e = Config::from_json(br#"{"max_routes": 0}"#).unwrap_err();
    assert_eq!(e.field, "max_routes");
    assert_eq!(e.reason, "must be between 1 and 10000, got 0");
}

#[test]
fn latency_quantiles_default_on_and_switch_off_with_an_empty_list() {
    let default = Config::from_json(b"{}").unwrap().latency.unwrap();
    let labels: Vec<&str> = default.quantiles.iter().map(|q| q.label.as_str()).collect();
    assert_eq!((labels, default.window_seconds), (vec!["0.5", "0.9", "0.99", "0.999"], 60));
    let custom =
        Config::from_json(br#"{"latency_quantiles": {"quantiles": [0.75, 0.9999], "window_seconds": 300}}"#).unwrap();
    let custom = custom.latency.unwrap();
    assert_eq!(
        (custom.quantiles[1].value, custom.quantiles[1].label.as_str(), custom.window_seconds),
        (0.9999, "0.9999", 300)
    );
    assert_eq!(Config::from_json(br#"{"latency_quantiles": {"quantiles": []}}"#).unwrap().latency, None);
}

#[test]
fn latency_thresholds_become_duration_bounds() {
    let c =
        Config::from_json(br#"{"slos": [{"objective": 99, "latency_ms": 300}, {"objective": 99, "latency_ms": 250}]}"#)
            .unwrap();
    let mut want = crate::metrics::Unit::Milliseconds.buckets().to_vec();
    want.push(300.0);
    want.sort_by(f64::total_cmp);
    assert_eq!(c.duration_buckets.bounds(), want);
    let c =
        Config::from_json(br#"{"duration_buckets_ms": [100], "slos": [{"objective": 99, "latency_ms": 40}]}"#).unwrap();
    assert_eq!(c.duration_buckets.bounds(), [40.0, 100.0]);
    let envoy = br#"{"histograms": "envoy", "slos": [{"objective": 99, "latency_ms": 40}]}"#;
    assert_eq!(
        Config::from_json(envoy).unwrap_err().to_string(),
        "slos[0].latency_ms: latency objectives need \"histograms\": \"exact\" (Envoy's own histograms have the bootstrap's buckets)"
    );
    let bounds: Vec<u32> = (1..=40).collect();
    let full = format!(r#"{{"duration_buckets_ms": {bounds:?}, "slos": [{{"objective": 99, "latency_ms": 41}}]}}"#);
    assert_eq!(
        Config::from_json(full.as_bytes()).unwrap_err().to_string(),
        "slos: with the latency thresholds the duration buckets must have 1 to 40 bounds, got 41"
    );
}

#[test]
fn attribute_labels_are_bounded_per_route() {
    let format = r#"{"name": "format", "query": "output_format", "values": ["csv", "xlsx", "json"]}"#;
    let tenant = r#"{"name": "tenant", "header": "x-tenant", "values": ["a", "b"]}"#;
    let ok = format!(r#"{{"labels": [{tenant}], "routes": [{{"template": "/convert", "labels": [{format}]}}]}}"#);
    let c = Config::from_json(ok.as_bytes()).unwrap();
    assert_eq!(
        (c.labels.len(), c.rules[0].attributes.len(), c.header_names.clone()),
        (1, 1, vec!["x-tenant".to_string()])
    );
    // tenant: 2 + other + none = 4; format: 3 + other + none = 5; 20 on /convert.
    let capped = ok.replacen('{', r#"{"max_label_combinations": 19, "#, 1);
    assert_eq!(
        error_of(&capped),
        "routes[0].labels: 20 combinations of label values (each label's values, other, and its default, multiplied) is more than max_label_combinations 19"
    );
    let twice = format!(r#"{{"labels": [{tenant}], "routes": [{{"template": "/c", "labels": [{tenant}]}}]}}"#);
    assert_eq!(error_of(&twice), "routes[0].labels: label \"tenant\" is named twice");
    assert_eq!(
        error_of(r#"{"max_label_combinations": 0}"#),
        "max_label_combinations: must be between 1 and 10000, got 0"
    );
}

/// Route families (`metrics::naming`) assembled with the routes they name.
#[test]
fn a_duration_family_may_time_one_outcome_of_its_route() {
    let with = |kind: &str, outcome: &str| {
        format!(
            r#"{{"routes": [{{"template": "/c"{kind}, "names": {{"http_request_duration_milliseconds": {{"name": "c_seconds", "outcome": "{outcome}"}}}}}}]}}"#
        )
    };
    let config = Config::from_json(with(r#", "kind": "upload""#, "success").as_bytes()).unwrap();
    assert_eq!(config.rules[0].transfer.as_ref().unwrap().durations_of, Some(crate::transfer::SUCCESS));
    assert_eq!(
        error_of(&with("", "success")),
        r#"routes[0].names.http_request_duration_milliseconds.outcome: only routes with "kind": "upload" or "download" have outcomes"#
    );
    assert_eq!(
        error_of(&with(r#", "kind": "upload""#, "fine")),
        r#"routes[0].names.http_request_duration_milliseconds.outcome: unknown outcome "fine""#
    );
}

#[test]
fn names_reject_what_they_cannot_go_with() {
    assert_eq!(
        error_of(
            r#"{"names": {"profile": "prometheus_client"}, "labels": [{"name": "endpoint", "header": "x-e", "values": ["a"]}]}"#
        ),
        r#"labels[0].name: "endpoint" is a label of the names' profile"#
    );
    assert_eq!(
        error_of(
            r#"{"names": {"profile": "opentelemetry"}, "routes": [{"template": "/a", "labels": [{"name": "error_type", "query": "e", "values": ["a"]}]}]}"#
        ),
        r#"routes[0].labels[0].name: "error_type" is a label of the names' profile"#
    );
    assert_eq!(
        error_of(r#"{"names": {"profile": "instrumentator"}, "histograms": "envoy"}"#),
        r#"histograms: Envoy histograms take whole numbers (milliseconds); the names publish durations in seconds: use "exact""#
    );
    assert_eq!(
        error_of(r#"{"names": {"profile": "prometheus_client"}, "slos": [{"objective": 99}]}"#),
        r#"slos: SLO rules query routemeter's own names: leave "names" out"#
    );
    // Under routemeter's names, `endpoint` is an attribute label like any other.
    assert!(Config::from_json(br#"{"labels": [{"name": "endpoint", "header": "x-e", "values": ["a"]}]}"#).is_ok());
}
