//! The seeds' own dashboards and alerts, unchanged, on routemeter (#21). For each seed
//! service, the same traffic goes through a real Envoy with routemeter (configured as that
//! team would: its profile, routes and attribute labels) to an app instrumented the seed's
//! way (`seeds/inapp.py`: FastAPI + prometheus_client with the seed's names, labels and
//! buckets). Both metric pages are sampled at the same quiescent points (and once with
//! requests in flight), stored with the same timestamps into two Prometheus 2.42 databases
//! (`promtool tsdb create-blocks-from openmetrics`), and every HTTP-level expression of the
//! seed's dashboards and alert rules, copied from `../shared/seeds/`, is evaluated on both
//! at every sample time: the results must be identical, series by series, value by value.
//!
//! Same timestamps on both sides is what makes `rate()` comparable exactly: the test is
//! about the numbers and names, not about two scrapers' phase. Durations sit at least 200 ms
//! below a bucket's upper bound: the proxy's clock includes the app's time plus a few
//! milliseconds, and tens of them on a loaded machine (measured: 12 ms requests crossed a
//! 50 ms bound while a benchmark ran).
//!
//! The Envoy bootstrap's `stats_tags` are the ones `routemeter compat` generates for each
//! configuration, so the tool is checked too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use testkit::admin;
use testkit::alerting::url_encode;
use testkit::bootstrap::{envoy_bin, repo_root, Bootstrap};
use testkit::client::{self, Body, Request};
use testkit::process::{free_ports, wait_port, wait_until, Proc};

/// One expression of a seed, where it is, and whether it is an alert (its whole `expr`,
/// threshold included: firing = a non-empty result).
struct Expr {
    seed: &'static str,
    at: &'static str,
    promql: &'static str,
    alert: bool,
}

const fn panel(seed: &'static str, at: &'static str, promql: &'static str) -> Expr {
    Expr { seed, at, promql, alert: false }
}

const fn alert(seed: &'static str, at: &'static str, promql: &'static str) -> Expr {
    Expr { seed, at, promql, alert: true }
}

/// Every HTTP-level expression of the seeds' dashboards and alert rules, as written there
/// (whitespace of multi-line YAML joined). 002 lists its metrics but writes no expression.
const EXPRESSIONS: [Expr; 21] = [
    panel("000", "000:290", "rate(excel_conversions_total[5m])"),
    panel("000", "000:310", r#"rate(excel_conversions_total{status="success"}[5m])"#),
    panel("000", "000:314", r#"rate(excel_conversions_total{status="error"}[5m])"#),
    panel("000", "000:326", "histogram_quantile(0.95, rate(excel_conversion_duration_seconds_bucket[5m]))"),
    panel("000", "000:330", "histogram_quantile(0.50, rate(excel_conversion_duration_seconds_bucket[5m]))"),
    panel("001", "001:215", "rate(http_requests_total[5m])"),
    panel(
        "001",
        "001:218",
        r#"sum(rate(http_requests_total{status=~"2..|3.."}[5m])) / sum(rate(http_requests_total[5m]))"#,
    ),
    panel("001", "001:224", "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))"),
    panel("001", "001:233", r#"sum(rate(uploads_total{status="success"}[5m])) / sum(rate(uploads_total[5m]))"#),
    panel("001", "001:303", r#"sum(rate(uploads_total{status="success"}[5m])) / sum(rate(uploads_total[5m]))"#),
    alert(
        "001",
        "001:325",
        r#"sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.05"#,
    ),
    alert("001", "001:359", "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m])) > 5"),
    alert("003", "003:231", r#"rate(http_requests_total{status=~"5.."}[5m]) > 0.05"#),
    alert("003", "003:241", "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m])) > 1.0"),
    panel("003", "003:351", "rate(http_requests_total[5m])"),
    panel("003", "003:360", "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))"),
    panel("003", "003:369", r#"rate(http_requests_total{status=~"5.."}[5m])"#),
    panel("004", "004:852", "sum(rate(api_requests_total[5m])) by (endpoint)"),
    panel("004", "004:859", "histogram_quantile(0.95, rate(api_request_duration_seconds_bucket[5m]))"),
    panel(
        "004",
        "004:866",
        r#"sum(rate(api_requests_total{status=~"5.."}[5m])) / sum(rate(api_requests_total[5m])) * 100"#,
    ),
    panel("004", "004:873", "sum(api_requests_in_progress)"),
];

/// Not from a seed: what a team on prometheus-fastapi-instrumentator's defaults queries
/// (request rate by handler and status class, latency by handler, sizes), for the
/// `instrumentator` profile against the real library.
const INSTRUMENTATOR: [Expr; 7] = [
    // Unaggregated: every label set, `le` spelled as the library does (`1.0`), is the same.
    panel("instrumentator", "instrumentator", "rate(http_requests_total[5m])"),
    panel("instrumentator", "instrumentator", "rate(http_request_duration_seconds_bucket[5m])"),
    panel("instrumentator", "instrumentator", "sum by (handler, status) (rate(http_requests_total[5m]))"),
    panel(
        "instrumentator",
        "instrumentator",
        "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    panel(
        "instrumentator",
        "instrumentator",
        "sum by (handler, method) (rate(http_request_duration_seconds_count[5m]))",
    ),
    panel("instrumentator", "instrumentator", "sum by (handler) (rate(http_request_size_bytes_sum[5m]))"),
    panel("instrumentator", "instrumentator", "sum by (handler) (rate(http_response_size_bytes_sum[5m]))"),
];

/// Not from a seed: OpenTelemetry's stable HTTP server metrics as its FastAPI instrumentation
/// exports them to Prometheus, for the `opentelemetry` profile. Aggregated by the conventions'
/// attributes: the SDK adds `otel_scope_*`, `url_scheme` and `network_protocol_version`,
/// which the proxy does not publish.
const OPENTELEMETRY: [Expr; 5] = [
    panel(
        "opentelemetry",
        "opentelemetry",
        "sum by (http_request_method, http_route, http_response_status_code, le) (rate(http_server_request_duration_seconds_bucket[5m]))",
    ),
    panel(
        "opentelemetry",
        "opentelemetry",
        "histogram_quantile(0.95, sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket[5m])))",
    ),
    panel(
        "opentelemetry",
        "opentelemetry",
        "sum by (http_route, http_response_status_code) (rate(http_server_request_duration_seconds_count[5m]))",
    ),
    panel("opentelemetry", "opentelemetry", "sum by (http_request_method) (http_server_active_requests)"),
    panel("opentelemetry", "opentelemetry", "sum by (http_route) (rate(http_server_response_body_size_bytes_sum[5m]))"),
];

/// A request of the traffic: method, path, body bytes.
#[derive(Clone)]
struct Req(&'static str, String, u64);

fn times(n: usize, method: &'static str, path: &str, body: u64) -> Vec<Req> {
    vec![Req(method, path.to_string(), body); n]
}

/// A phase: requests sent together (concurrently); `held` are still in flight when the
/// sample is taken (the in-progress gauges).
struct Phase {
    requests: Vec<Req>,
    held: Vec<Req>,
}

fn phase(parts: Vec<Vec<Req>>) -> Phase {
    Phase { requests: parts.concat(), held: Vec::new() }
}

struct Seed {
    id: &'static str,
    /// The plugin configuration, as the seed's team would write it.
    config: Value,
    /// Envoy routes (seed 003 labels by handler name: Envoy route names).
    routes: Option<Value>,
    phases: Vec<Phase>,
}

fn seeds() -> Vec<Seed> {
    let convert = |format: &str, compression: &str, ms: u64, fail: bool| {
        let fail = if fail { "&fail=1" } else { "" };
        format!("/convert?output_format={format}&compression={compression}&sleep_ms={ms}{fail}")
    };
    let s000 = Seed {
        id: "000",
        config: json!({
            "names": {"profile": "prometheus_client"},
            "duration_buckets_ms": [100, 500, 1000, 2000, 5000, 10000, 30000, 60000, 120000, 300000],
            "learn": false,
            "routes": [{
                "template": "/convert", "methods": ["POST"], "kind": "upload",
                "outcomes": {"2xx": "success", "5xx": "error"},
                "labels": [
                    {"name": "format", "query": "output_format", "values": ["csv", "json"], "default": "csv"},
                    {"name": "compression", "query": "compression", "values": ["none", "gzip"], "default": "none"}
                ],
                "names": {
                    "uploads_total": "excel_conversions_total",
                    "http_request_duration_milliseconds": {"name": "excel_conversion_duration_seconds", "outcome": "success"},
                    "upload_file_size_bytes": {"name": "excel_file_size_bytes", "labels": ["format"]}
                }
            }]
        }),
        routes: None,
        phases: vec![
            phase(vec![
                times(4, "POST", &convert("csv", "none", 300, false), 2_000),
                times(2, "POST", &convert("json", "gzip", 600, false), 2_000),
            ]),
            phase(vec![
                times(3, "POST", &convert("csv", "none", 300, false), 2_000),
                times(2, "POST", &convert("csv", "gzip", 1_200, false), 2_000),
                times(1, "POST", &convert("json", "none", 50, true), 2_000),
            ]),
            phase(vec![
                times(5, "POST", &convert("json", "gzip", 3_000, false), 2_000),
                times(2, "POST", "/convert?sleep_ms=300", 2_000),
            ]),
            phase(vec![
                times(3, "POST", &convert("csv", "none", 50, true), 2_000),
                times(3, "POST", &convert("csv", "none", 600, false), 2_000),
            ]),
            phase(vec![times(4, "POST", &convert("csv", "none", 300, false), 2_000)]),
            phase(vec![times(2, "POST", &convert("json", "gzip", 1_200, false), 2_000)]),
        ],
    };
    let status = |ms: u64, code: u16| format!("/api/v1/status/job-{ms}?sleep_ms={ms}&status={code}");
    let s001 = Seed {
        id: "001",
        config: json!({
            "names": {"profile": "prometheus_client"},
            "duration_buckets_ms": [10, 50, 100, 500, 1000, 2500, 5000, 10000],
            "learn": false,
            "routes": [
                {"template": "/api/v1/upload", "methods": ["POST"], "kind": "upload"},
                {"template": "/api/v1/status/{job_id}"}
            ]
        }),
        routes: None,
        phases: vec![
            phase(vec![
                times(10, "GET", &status(150, 200), 0),
                // The first of a series only starts it: rate() needs two samples.
                times(1, "GET", &status(150, 500), 0),
                times(3, "POST", "/api/v1/upload?filename=a.xlsx&sleep_ms=150", 3_000),
                times(1, "POST", "/api/v1/upload?filename=a.pdf&sleep_ms=150", 3_000),
            ]),
            phase(vec![times(8, "GET", &status(150, 200), 0), times(6, "GET", &status(150, 500), 0)]),
            phase(vec![
                times(10, "GET", &status(150, 200), 0),
                times(1, "POST", "/api/v1/upload?filename=big.xlsx&sleep_ms=150", 60_000),
                times(2, "POST", "/api/v1/upload?filename=a.xlsx&sleep_ms=600", 3_000),
            ]),
            phase(vec![times(8, "GET", &status(7_000, 200), 0), times(6, "GET", &status(150, 200), 0)]),
            phase(vec![times(12, "GET", &status(150, 200), 0)]),
            phase(vec![times(12, "GET", &status(150, 200), 0)]),
            phase(vec![times(12, "GET", &status(150, 200), 0)]),
            phase(vec![times(12, "GET", &status(150, 200), 0)]),
        ],
    };
    let s003 = Seed {
        id: "003",
        config: json!({
            "names": {"profile": "prometheus_client"},
            "duration_buckets_ms": [5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000],
            "learn": false,
            "use_route_name": true
        }),
        routes: Some(json!([
            {"name": "get_trades", "match": {"prefix": "/api/trades"}, "route": {"cluster": "converter", "timeout": "300s"}},
            {"name": "get_positions", "match": {"prefix": "/api/positions"}, "route": {"cluster": "converter", "timeout": "300s"}}
        ])),
        phases: vec![
            phase(vec![
                times(10, "GET", "/api/trades?sleep_ms=280", 0),
                times(1, "GET", "/api/trades?sleep_ms=280&status=500", 0),
                times(5, "GET", "/api/positions?sleep_ms=520", 0),
            ]),
            phase(vec![
                times(5, "GET", "/api/trades?sleep_ms=280", 0),
                times(20, "GET", "/api/trades?sleep_ms=280&status=500", 0),
            ]),
            phase(vec![
                times(6, "GET", "/api/positions?sleep_ms=1700", 0),
                times(4, "GET", "/api/positions?sleep_ms=520", 0),
            ]),
            phase(vec![times(10, "GET", "/api/trades?sleep_ms=280", 0)]),
            phase(vec![times(10, "GET", "/api/trades?sleep_ms=280", 0)]),
            phase(vec![times(10, "GET", "/api/trades?sleep_ms=280", 0)]),
            phase(vec![times(10, "GET", "/api/trades?sleep_ms=280", 0)]),
        ],
    };
    let s004 = Seed {
        id: "004",
        config: json!({
            "names": {"profile": "prometheus_client", "prefix": "api_"},
            "duration_buckets_ms": [10, 50, 100, 500, 1000, 2000, 5000, 10000],
            "learn": false,
            "routes": [{"template": "/api/v1/videos"}, {"template": "/api/v1/jobs"}]
        }),
        routes: None,
        phases: vec![
            phase(vec![
                times(10, "GET", "/api/v1/videos?sleep_ms=150", 0),
                times(1, "GET", "/api/v1/videos?sleep_ms=150&status=503", 0),
                times(4, "POST", "/api/v1/jobs?sleep_ms=150", 1_000),
            ]),
            phase(vec![
                times(5, "GET", "/api/v1/videos?sleep_ms=150&status=503", 0),
                times(5, "GET", "/api/v1/videos?sleep_ms=600", 0),
            ]),
            Phase {
                requests: times(6, "GET", "/api/v1/videos?sleep_ms=150", 0),
                held: times(4, "POST", "/api/v1/jobs?sleep_ms=4000", 1_000),
            },
            phase(vec![times(8, "GET", "/api/v1/videos?sleep_ms=1200", 0)]),
            phase(vec![times(8, "GET", "/api/v1/videos?sleep_ms=150", 0)]),
        ],
    };
    // The two library profiles: the same app routes and traffic, their own bounds (280 ms,
    // 520 ms and 1.2 s sit inside a bucket of both).
    let library = |id: &'static str, names: Value, buckets: Value| Seed {
        id,
        config: json!({
            "names": names,
            "duration_buckets_ms": buckets,
            "learn": false,
            "routes": [{"template": "/items/{item_id}"}, {"template": "/upload", "methods": ["POST"]}]
        }),
        routes: None,
        phases: vec![
            phase(vec![
                times(6, "GET", "/items/1?sleep_ms=280", 0),
                times(2, "GET", "/items/2?sleep_ms=280&status=404", 0),
                times(2, "POST", "/upload?sleep_ms=520", 5_000),
            ]),
            phase(vec![
                times(4, "GET", "/items/3?sleep_ms=1200", 0),
                times(3, "GET", "/items/4?sleep_ms=280&status=500", 0),
                times(1, "POST", "/upload?sleep_ms=280", 70_000),
            ]),
            Phase {
                requests: times(3, "GET", "/items/5?sleep_ms=280", 0),
                held: times(3, "GET", "/items/6?sleep_ms=4000", 0),
            },
            phase(vec![times(6, "GET", "/items/1?sleep_ms=520", 0)]),
        ],
    };
    let instrumentator = library("instrumentator", json!({"profile": "instrumentator"}), json!([100, 500, 1000]));
    let otel_bounds = json!([5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000]);
    let opentelemetry = library("opentelemetry", json!({"profile": "opentelemetry"}), otel_bounds);
    vec![s000, s001, s003, s004, instrumentator, opentelemetry]
}

/// What the test needs, or why it cannot run.
fn python() -> Result<PathBuf, String> {
    for tool in ["promtool", "prometheus"] {
        let found = std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            return Err(format!("{tool} not found (make test installs it)"));
        }
    }
    let python = repo_root().join(".venv/bin/python");
    let ok = Command::new(&python)
        .args(["-c", "import fastapi, uvicorn, prometheus_client, prometheus_fastapi_instrumentator, opentelemetry.instrumentation.fastapi, opentelemetry.exporter.prometheus"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(python)
    } else {
        Err(format!("{} lacks fastapi/uvicorn/prometheus_client (make test installs them)", python.display()))
    }
}

/// One sample page, as `name{labels}` -> value, without Envoy's own stats and without
/// prometheus_client's `_created` series (creation times are not counts).
fn page(addr: SocketAddr, path: &str) -> BTreeMap<String, String> {
    let (code, body) = admin::get(addr, path).unwrap_or_else(|| panic!("nothing answers on {addr}{path}"));
    assert_eq!(code, 200, "{addr}{path}: {body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            let skip = name.starts_with("envoy_") || name.ends_with("_created") || name.starts_with("routemeter_");
            (!skip).then(|| (without_empty_labels(series), value.to_string()))
        })
        .collect()
}

/// A scrape drops labels with an empty value; a backfill keeps them, which would make
/// `error_type=""` (OpenTelemetry's exporter fills it in once one request had an error) a
/// new series. Label values here never hold `",`.
fn without_empty_labels(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else { return series.to_string() };
    let labels = rest.trim_end_matches('}');
    let kept: Vec<&str> = labels.split("\",").filter(|l| !l.ends_with("=\"") && !l.ends_with("=\"\"")).collect();
    let joined = kept.join("\",");
    if joined.is_empty() {
        return name.to_string();
    }
    let closed = if joined.ends_with('"') { joined } else { format!("{joined}\"") };
    format!("{name}{{{closed}}}")
}

/// Sum of the series whose name ends with `suffix`.
fn sum_of(page: &BTreeMap<String, String>, suffix: &str) -> f64 {
    page.iter()
        .filter(|(s, _)| s.split('{').next().is_some_and(|n| n.ends_with(suffix)))
        .map(|(_, v)| v.parse::<f64>().unwrap_or(0.0))
        .sum()
}

/// Requests the app has counted: its request counter, seed 000's conversions (every request
/// of that app is one), or OpenTelemetry's duration count.
fn in_app_requests(page: &BTreeMap<String, String>) -> f64 {
    ["requests_total", "conversions_total", "server_request_duration_seconds_count"]
        .iter()
        .map(|s| sum_of(page, s))
        .sum()
}

/// Requests in flight, whatever the gauge is called; `None` if the page has no such gauge.
fn in_progress(page: &BTreeMap<String, String>) -> Option<f64> {
    const GAUGES: [&str; 3] = ["requests_in_progress", "requests_inprogress", "active_requests"];
    let has = page.keys().any(|s| s.split('{').next().is_some_and(|n| GAUGES.iter().any(|g| n.ends_with(g))));
    has.then(|| GAUGES.iter().map(|s| sum_of(page, s)).sum())
}

fn send_all(listener: SocketAddr, requests: &[Req]) -> Vec<std::thread::JoinHandle<u16>> {
    requests
        .iter()
        .cloned()
        .map(|Req(method, path, body)| {
            std::thread::spawn(move || {
                let req = if method == "POST" { Request::post(&path, Body::Sized(body)) } else { Request::get(&path) };
                client::send(listener, &req).map(|r| r.status).unwrap_or(0)
            })
        })
        .collect()
}

/// A running Prometheus over a backfilled database.
struct Prom {
    addr: SocketAddr,
    _proc: Proc,
}

impl Prom {
    fn backfilled(dir: &Path, samples: &BTreeMap<String, Vec<(i64, String)>>) -> Prom {
        fs::create_dir_all(dir).unwrap();
        let mut om = String::new();
        for (series, points) in samples {
            for (t, v) in points {
                om.push_str(&format!("{series} {v} {t}\n"));
            }
        }
        om.push_str("# EOF\n");
        fs::write(dir.join("samples.om"), om).unwrap();
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(dir.join("samples.om"))
            .arg(dir.join("data"))
            .output()
            .expect("run promtool");
        assert!(out.status.success(), "backfill failed: {}", String::from_utf8_lossy(&out.stderr));
        let (addr, proc) = testkit::alerting::start_prometheus(dir, "global: {}\n");
        Prom { addr, _proc: proc }
    }

    /// The result at `time`, each series as (labels, value text), sorted.
    fn query(&self, promql: &str, time: i64) -> Vec<(String, String)> {
        let path = format!("/api/v1/query?query={}&time={time}", url_encode(promql));
        let (code, body) = admin::get(self.addr, &path).expect("query");
        assert_eq!(code, 200, "{promql}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let mut out: Vec<(String, String)> = v["data"]["result"]
            .as_array()
            .map(|rs| {
                rs.iter().map(|r| (r["metric"].to_string(), r["value"][1].as_str().unwrap_or("").to_string())).collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

/// Runs one seed: traffic, samples, backfill; returns both Prometheus servers and the
/// sample times.
fn run_seed(seed: &Seed, python: &Path, dir: &Path) -> (Prom, Prom, Vec<i64>) {
    let [app_port, metrics_port] = free_ports(2).unwrap()[..] else { unreachable!() };
    let app_addr = SocketAddr::from(([127, 0, 0, 1], app_port));
    let metrics_addr = SocketAddr::from(([127, 0, 0, 1], metrics_port));
    let script = repo_root().join("tests/seeds/inapp.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).args([seed.id, &app_port.to_string(), &metrics_port.to_string()]);
    let mut app = Proc::spawn(&mut cmd, &dir.join("app.log")).expect("start the in-app service");
    let up = wait_port(app_addr, Duration::from_secs(30)) && wait_port(metrics_addr, Duration::from_secs(5));
    assert!(up && app.exited().is_none(), "the in-app service did not start\n{}", app.log_tail(40));

    // Flush often: samples wait for the VM's flush.
    let mut config = seed.config.clone();
    config["flush_interval_ms"] = json!(100);
    let config_text = config.to_string();
    let config = routemeter::config::Config::from_json(config_text.as_bytes()).expect("seed configuration");
    let mut bootstrap = Bootstrap::for_test(app_addr);
    bootstrap.set_plugin_config(&config_text);
    bootstrap.0["stats_config"]["stats_tags"] = routemeter_cli::compat::stats_tags(&config);
    if let Some(routes) = &seed.routes {
        let hcm =
            bootstrap.0.pointer_mut("/static_resources/listeners/0/filter_chains/0/filters/0/typed_config").unwrap();
        hcm["route_config"]["virtual_hosts"][0]["routes"] = routes.clone();
    }
    bootstrap.write(&dir.join("envoy.json"));
    let admin_file = dir.join("admin.txt");
    let mut cmd = Command::new(envoy_bin());
    cmd.arg("-c").arg(dir.join("envoy.json"));
    cmd.args(["--use-dynamic-base-id", "--concurrency", "2", "-l", "warning"]);
    cmd.arg("--admin-address-path").arg(&admin_file).current_dir(repo_root());
    let mut envoy = Proc::spawn(&mut cmd, &dir.join("envoy.log")).expect("spawn envoy");
    let mut envoy_admin = None;
    let ready = wait_until(Duration::from_secs(60), || {
        assert!(envoy.exited().is_none(), "envoy exited\n{}", envoy.log_tail(40));
        envoy_admin = fs::read_to_string(&admin_file).ok().and_then(|s| s.trim().parse::<SocketAddr>().ok());
        envoy_admin.is_some_and(|a| admin::get(a, "/ready").is_some_and(|(c, _)| c == 200))
    });
    assert!(ready, "envoy not ready\n{}", envoy.log_tail(40));
    let envoy_admin = envoy_admin.unwrap();
    let (_, listeners) = admin::get(envoy_admin, "/listeners?format=json").unwrap();
    let listeners: Value = serde_json::from_str(&listeners).unwrap();
    let port = listeners["listener_statuses"][0]["local_address"]["socket_address"]["port_value"].as_u64().unwrap();
    let listener = SocketAddr::from(([127, 0, 0, 1], port as u16));

    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    // Two hours back, on a minute: inside the retention, outside the head block.
    let t0 = (now - 2 * 3600) / 60 * 60;
    let mut theirs: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut ours: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut times = Vec::new();
    let mut sent = 0.0;
    for (k, phase) in seed.phases.iter().enumerate() {
        let statuses: Vec<u16> = send_all(listener, &phase.requests).into_iter().map(|h| h.join().unwrap()).collect();
        assert!(statuses.iter().all(|s| *s != 0), "seed {} phase {k}: a request failed: {statuses:?}", seed.id);
        sent += phase.requests.len() as f64;
        let held = send_all(listener, &phase.held);
        let inflight = phase.held.len() as f64;
        // Quiescent (or exactly `held` in flight) on both sides, and flushed by routemeter.
        let settled = wait_until(Duration::from_secs(20), || {
            let (envoy_page, app_page) = (page(envoy_admin, "/stats/prometheus"), page(metrics_addr, "/metrics"));
            // OpenTelemetry's middleware records after the response is sent: wait for the app too.
            let counted = sum_of(&envoy_page, "requests_total") == sent && in_app_requests(&app_page) == sent;
            // instrumentator has no in-progress gauge by default: then only the proxy's counts.
            let app_gauge = in_progress(&app_page).is_none_or(|n| n == inflight);
            let in_flight = inflight == 0.0 || (in_progress(&envoy_page) == Some(inflight) && app_gauge);
            counted && in_flight
        });
        if !settled {
            let (envoy_page, app_page) = (page(envoy_admin, "/stats/prometheus"), page(metrics_addr, "/metrics"));
            panic!(
                "seed {} phase {k}: after 20 s, of {sent} requests routemeter counted {} and the app {}; \
                 in flight (want {inflight}): routemeter {:?}, app {:?}\n{}\n{}",
                seed.id,
                sum_of(&envoy_page, "requests_total"),
                in_app_requests(&app_page),
                in_progress(&envoy_page),
                in_progress(&app_page),
                envoy.log_tail(20),
                app.log_tail(20)
            );
        }
        let t = t0 + 60 * k as i64;
        times.push(t);
        for (series, value) in page(metrics_addr, "/metrics") {
            theirs.entry(series).or_default().push((t, value));
        }
        for (series, value) in page(envoy_admin, "/stats/prometheus") {
            ours.entry(series).or_default().push((t, value));
        }
        for h in held {
            assert_ne!(h.join().unwrap(), 0);
        }
        sent += phase.held.len() as f64;
    }
    drop(envoy);
    drop(app);
    let in_app = Prom::backfilled(&dir.join("in-app"), &theirs);
    let routemeter = Prom::backfilled(&dir.join("routemeter"), &ours);
    (in_app, routemeter, times)
}

#[test]
fn the_seeds_queries_give_the_same_results_on_routemeter_and_in_app_metrics() {
    let python = match python() {
        Ok(p) => p,
        // `make test` installs the Python side itself and says so: there a missing package is
        // a failure, not a reason to skip (Prometheus from Debian may still be unavailable).
        Err(why) if std::env::var_os("ROUTEMETER_SEED_TOOLS").is_some() && why.contains("lacks") => panic!("{why}"),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let root = std::env::temp_dir().join(format!("routemeter-seeds-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    let mut table = vec!["| seed:line | expression | answered (evaluations, a minute apart) | in-app, busiest evaluation | routemeter, same |".to_string()];
    table.push("|---|---|---|---|---|".into());
    let mut differences = Vec::new();
    for seed in seeds() {
        let dir = root.join(seed.id);
        fs::create_dir_all(&dir).unwrap();
        let (in_app, routemeter, times) = run_seed(&seed, &python, &dir);
        for expr in EXPRESSIONS.iter().chain(&INSTRUMENTATOR).chain(&OPENTELEMETRY).filter(|e| e.seed == seed.id) {
            let mut non_empty = 0;
            let mut quiet = 0;
            let mut firing = Vec::new();
            // The table shows the evaluation with the largest finite total (the busiest).
            let mut shown = (f64::NEG_INFINITY, String::from("(empty)"), String::from("(empty)"));
            for &t in &times {
                let (a, b) = (in_app.query(expr.promql, t), routemeter.query(expr.promql, t));
                if a != b {
                    differences.push(format!(
                        "{} `{}` at t0+{}s:\n  in-app     {a:?}\n  routemeter {b:?}",
                        expr.at,
                        expr.promql,
                        t - times[0]
                    ));
                }
                if b.is_empty() {
                    quiet += 1;
                } else {
                    non_empty += 1;
                    firing.push(format!("{}m", (t - times[0]) / 60));
                    let total: f64 =
                        b.iter().filter_map(|(_, v)| v.parse::<f64>().ok()).filter(|v| v.is_finite()).sum();
                    if total >= shown.0 {
                        shown = (total, summary(&a), summary(&b));
                    }
                }
            }
            if non_empty == 0 {
                differences
                    .push(format!("{} `{}` never answered: the traffic does not exercise it", expr.at, expr.promql));
            }
            if expr.alert && quiet == 0 {
                differences
                    .push(format!("{} `{}` fires at every evaluation: the test cannot tell", expr.at, expr.promql));
            }
            let answered = match expr.alert {
                true => format!("fires at {} of {}", firing.join(" "), times.len()),
                false => format!("{non_empty} of {}", times.len()),
            };
            let promql = expr.promql.replace('|', "\\|");
            table.push(format!("| {} | `{promql}` | {answered} | {} | {} |", expr.at, shown.1, shown.2));
        }
    }
    println!("{}", table.join("\n"));
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
    let _ = fs::remove_dir_all(&root);
}

/// A result in a table cell: each series' value (labels left out but for the first label
/// set's keys), at most three.
fn summary(result: &[(String, String)]) -> String {
    let values: Vec<String> = result
        .iter()
        .take(3)
        .map(|(labels, v)| {
            let labels: BTreeMap<String, String> = serde_json::from_str(labels).unwrap_or_default();
            let short: Vec<String> =
                labels.iter().filter(|(k, _)| *k != "le").map(|(k, v)| format!("{k}={v}")).collect();
            let value = v.parse::<f64>().map(|f| format!("{f:.4}")).unwrap_or_else(|_| v.clone());
            if short.is_empty() {
                value
            } else {
                format!("{{{}}} {value}", short.join(","))
            }
        })
        .collect();
    let more = if result.len() > 3 { format!(" +{}", result.len() - 3) } else { String::new() };
    format!("{}{more}", values.join("; "))
}
