//! The receiving end of the monitoring tests: an Alertmanager webhook (on hyper) that keeps
//! every payload, and instant queries against Prometheus' HTTP API.

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
use crate::process::wait_until;

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
                    tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service));
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

fn url_encode(s: &str) -> String {
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
