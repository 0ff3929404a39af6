//! The monitoring end to end: a real Prometheus and Alertmanager (Debian's) with the shipped
//! configs from `monitoring/`, scaled to seconds; an Alertmanager webhook (on hyper) that keeps
//! every payload; instant queries against Prometheus' HTTP API.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::admin;
use crate::bootstrap::repo_root;
use crate::process::{free_addr, wait_until, Proc};

/// Prometheus scraping one Envoy admin and notifying Alertmanager, which notifies a webhook.
pub struct Monitoring {
    pub prometheus: SocketAddr,
    pub hook: Webhook,
    _processes: [Proc; 2],
}

fn yaml(path: &str) -> serde_yaml_ng::Value {
    let path = repo_root().join("monitoring").join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn write_yaml(path: &std::path::Path, value: &serde_yaml_ng::Value) {
    let text = serde_yaml_ng::to_string(value).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

impl Monitoring {
    /// The shipped `prometheus.yml` and `alertmanager.yml` in `dir`, with 1 s scrape and
    /// evaluation intervals and 1 s grouping, scraping `envoy_admin`; `rules` are the rule
    /// files (name, text) `prometheus.yml` loads, already scaled by the caller.
    pub fn start(dir: &std::path::Path, envoy_admin: SocketAddr, rules: &[(&str, String)]) -> Monitoring {
        use serde_yaml_ng::Value as Y;
        let hook = Webhook::start().unwrap_or_else(|e| panic!("webhook: {e}"));
        let (am_addr, prom_addr) = (free_addr().expect("free port"), free_addr().expect("free port"));
        let mut am = yaml("alertmanager/alertmanager.yml");
        am["route"]["group_wait"] = Y::from("1s");
        am["route"]["group_interval"] = Y::from("1s");
        am["receivers"][0]["webhook_configs"][0]["url"] =
            Y::from(format!("http://{}/alerts", hook.addr.expect("bound")));
        write_yaml(&dir.join("alertmanager.yml"), &am);
        let mut cmd = std::process::Command::new("prometheus-alertmanager");
        cmd.arg(format!("--config.file={}", dir.join("alertmanager.yml").display()))
            .arg(format!("--storage.path={}", dir.join("am-data").display()))
            .arg(format!("--web.listen-address={am_addr}"))
            .arg("--cluster.listen-address=");
        let alertmanager = Proc::spawn(&mut cmd, &dir.join("alertmanager.log")).expect("start prometheus-alertmanager");

        let mut prom = yaml("prometheus/prometheus.yml");
        prom["global"]["scrape_interval"] = Y::from("1s");
        prom["global"]["evaluation_interval"] = Y::from("1s");
        prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0] = Y::from(am_addr.to_string());
        prom["scrape_configs"][0]["static_configs"][0]["targets"][0] = Y::from(envoy_admin.to_string());
        prom["rule_files"] = rules.iter().map(|(name, _)| Y::from(*name)).collect();
        write_yaml(&dir.join("prometheus.yml"), &prom);
        for (name, text) in rules {
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut cmd = std::process::Command::new("prometheus");
        cmd.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("prom-data").display()))
            .arg(format!("--web.listen-address={prom_addr}"));
        let prometheus = Proc::spawn(&mut cmd, &dir.join("prometheus.log")).expect("start prometheus");
        for (addr, proc) in [(am_addr, &alertmanager), (prom_addr, &prometheus)] {
            let ready = admin::wait_ready(addr, "/-/ready", Duration::from_secs(60));
            assert!(ready, "not ready at {addr}\n{}", proc.log_tail(50));
        }
        Monitoring { prometheus: prom_addr, hook, _processes: [prometheus, alertmanager] }
    }
}

/// Alertmanager webhook payloads received, as JSON.
#[derive(Clone, Default)]
pub struct Webhook {
    pub addr: Option<SocketAddr>,
    inbox: Arc<Mutex<Vec<Value>>>,
}

impl Webhook {
    /// Listens on a free port, on a thread of its own, for the rest of the process.
    pub fn start() -> std::io::Result<Webhook> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let hook = Webhook { addr: Some(listener.local_addr()?), inbox: Arc::default() };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let inbox = hook.inbox.clone();
        std::thread::spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                while let Ok((tcp, _)) = listener.accept().await {
                    let inbox = inbox.clone();
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let inbox = inbox.clone();
                        async move {
                            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            if let Ok(v) = serde_json::from_slice(&body) {
                                inbox.lock().unwrap_or_else(PoisonError::into_inner).push(v);
                            }
                            Ok::<_, Infallible>(hyper::Response::new(Empty::<Bytes>::new()))
                        }
                    });
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service),
                    );
                }
            });
        });
        Ok(hook)
    }

    pub fn received(&self) -> Vec<Value> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits until a payload reports `alert` with these labels in `status` (firing, resolved).
    pub fn wait_for(&self, alert: &str, labels: &[(&str, &str)], status: &str, timeout: Duration) {
        let seen = wait_until(timeout, || {
            self.received().iter().any(|p| {
                p["alerts"].as_array().is_some_and(|alerts| {
                    alerts.iter().any(|a| {
                        a["labels"]["alertname"] == alert
                            && a["status"] == status
                            && labels.iter().all(|(k, v)| a["labels"][k] == *v)
                    })
                })
            })
        });
        assert!(seen, "no '{status}' notification for {alert} {labels:?}; received: {:#?}", self.received());
    }
}

pub fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus instant query: each result's labels and value.
pub fn query(prometheus: SocketAddr, promql: &str) -> Vec<(Value, f64)> {
    let (code, body) = admin::get(prometheus, &format!("/api/v1/query?query={}", url_encode(promql))).expect("query");
    assert_eq!(code, 200, "{promql}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let results = v["data"]["result"].as_array().cloned().unwrap_or_default();
    results
        .iter()
        .map(|r| (r["metric"].clone(), r["value"][1].as_str().unwrap_or("NaN").parse().unwrap_or(f64::NAN)))
        .collect()
}

/// A Prometheus of its own in `dir` (config `prometheus.yml` given as text, data in
/// `dir/data`, log `prometheus.log`), on a free port, ready; killed when dropped.
pub fn start_prometheus(dir: &std::path::Path, config: &str) -> (SocketAddr, Proc) {
    std::fs::write(dir.join("prometheus.yml"), config).unwrap_or_else(|e| panic!("prometheus.yml: {e}"));
    let addr = free_addr().expect("free port");
    let mut cmd = std::process::Command::new("prometheus");
    cmd.arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
        .arg(format!("--web.listen-address={addr}"));
    let proc = Proc::spawn(&mut cmd, &dir.join("prometheus.log")).expect("start prometheus");
    assert!(admin::wait_ready(addr, "/-/ready", Duration::from_secs(60)), "{}", proc.log_tail(30));
    (addr, proc)
}
