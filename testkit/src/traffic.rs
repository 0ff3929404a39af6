//! Traffic through Envoy: the mix `make run` sends (the converter's whole life cycle: uploads
//! that succeed and fail for every reason, status polls, downloads ready and not, paths with
//! ids, health checks), and the steady load of the reconfiguration and soak tests, every
//! request in a ledger.

use std::io;
use std::net::SocketAddr;

use std::sync::atomic::{AtomicBool, Ordering};

use crate::client::{self, Body, Connection, Request, Response};
use crate::fault;
use crate::h2c::{self, H2Request};
use crate::ledger::{Entry, Ledger};
use crate::rng::Rng;

pub const UPLOAD: &str = "/api/v1/upload";
pub const STATUS: &str = "/api/v1/status/{job_id}";
pub const ITEMS: &str = "/api/v2/items/{id}";
/// The ledger's route for paths of random words: their labels are the route cap's business.
pub const ANY: &str = "*";

/// Stops a load when dropped, also when an assertion fails mid-way (or a thread scope would
/// wait for the load threads forever).
pub struct StopOnDrop<'a>(pub &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// One request of the steady mix: method, path, body bytes (uploads), the ledger's route
/// (`""` for excluded health checks).
fn pick(rng: &mut Rng, job: &str, hostile: bool) -> (&'static str, String, u64, &'static str) {
    match rng.below(if hostile { 5 } else { 4 }) {
        0 => ("GET", format!("/api/v1/status/{job}"), 0, STATUS),
        1 => ("POST", "/api/v1/upload?filename=a.csv".to_string(), 1 + rng.below(5_000), UPLOAD),
        2 => ("GET", format!("/api/v2/items/{}", rng.below(1_000_000)), 0, ITEMS),
        3 => ("GET", "/health".to_string(), 0, ""),
        _ => ("GET", format!("/{}/{}/{}", rng.word(6), rng.word(8), rng.word(4)), 0, ANY),
    }
}

fn note(ledger: &Ledger, method: &'static str, route: &'static str, status: u16) {
    match route {
        "" => ledger.add_excluded(),
        _ => ledger.add(Entry::new(method, route, status)),
    }
}

/// A steady load: where, which job to poll, its random seed, and what it tolerates.
#[derive(Debug, Clone, Copy)]
pub struct Steady<'a> {
    pub target: SocketAddr,
    pub job: &'a str,
    pub seed: u64,
    /// Also paths of random words (as many distinct paths as requests).
    pub hostile: bool,
    /// A request that fails (a reset, a cut-off response) goes in the ledger with status 0
    /// instead of stopping the test: for loads that cross a crash of the filter's VM.
    pub lenient: bool,
}

impl<'a> Steady<'a> {
    pub fn new(target: SocketAddr, job: &'a str, seed: u64) -> Steady<'a> {
        Steady { target, job, seed, hostile: false, lenient: false }
    }
}

/// Requests until `stop`, on a keep-alive connection and fresh ones: status polls of the job,
/// small uploads, paths with ids, health checks (excluded), and hostile paths if asked. Every
/// request is in the ledger with the label routemeter must give it.
pub fn steady(load: Steady, ledger: &Ledger, stop: &AtomicBool) {
    let mut rng = Rng::new(load.seed);
    let mut conn = Connection::open(load.target).ok();
    while !stop.load(Ordering::SeqCst) {
        let (method, path, body, route) = pick(&mut rng, load.job, load.hostile);
        let req = match method {
            "POST" => Request::post(&path, Body::Sized(body)),
            _ => Request::get(&path),
        };
        let resp = match conn.as_mut().filter(|_| rng.below(2) == 0) {
            Some(c) => c.send(&req),
            None => client::send(load.target, &req),
        };
        let status = match resp {
            Ok(resp) => resp.status,
            Err(_) if load.lenient => {
                // The keep-alive connection may be the one that broke.
                conn = Connection::open(load.target).ok();
                0
            }
            Err(e) => panic!("{} {}: {e}", req.method, req.path),
        };
        note(ledger, method, route, status);
    }
}

/// The same mix over HTTP/2 (h2c, prior knowledge): batches of 16 concurrent streams, each
/// batch on a new connection, until `stop`.
pub fn steady_h2c(load: Steady, ledger: &Ledger, stop: &AtomicBool) {
    let mut rng = Rng::new(load.seed);
    while !stop.load(Ordering::SeqCst) {
        let batch: Vec<_> = (0..16).map(|_| pick(&mut rng, load.job, load.hostile)).collect();
        let requests = batch
            .iter()
            .map(|(method, path, body, _)| H2Request {
                method,
                path: path.clone(),
                chunks: if *body > 0 { vec![*body] } else { Vec::new() },
                content_length: true,
                reset_after: None,
            })
            .collect();
        for (seen, (method, path, _, route)) in h2c::run(load.target, requests).into_iter().zip(&batch) {
            assert!(seen.status != 0 || load.lenient, "{method} {path}: no response over h2c");
            note(ledger, method, route, seen.status);
        }
    }
}

/// Sends the mix to `target`, printing one line per request; returns (request, status).
pub fn demo_mix(target: SocketAddr) -> io::Result<Vec<(String, u16)>> {
    let mut log = Vec::new();
    let mut send = |req: Request| -> io::Result<Response> {
        let resp = client::send(target, &req)?;
        println!(
            "  {:<6} {:<64} -> {} ({} B up, {} B down)",
            req.method,
            req.path,
            resp.status,
            req.body.len(),
            resp.body_len
        );
        log.push((format!("{} {}", req.method, req.path), resp.status));
        Ok(resp)
    };
    let mut jobs = Vec::new();
    for (query, body) in [
        ("filename=q3-report.xlsx", Body::Sized(48_000)),
        ("filename=inventory.csv", Body::Sized(1_200)),
        ("filename=ledger.xlsx", Body::Chunked(vec![1 << 20; 3])),
        ("filename=slow.xlsx&processing_ms=600000", Body::Sized(700_000)),
    ] {
        let resp = send(Request::post(&format!("/api/v1/upload?{query}"), body))?;
        jobs.extend(job_id(&resp));
    }
    let resp =
        send(Request::post("/api/v1/upload", Body::Multipart { filename: "budget.xlsm".into(), size: 250_000 }))?;
    jobs.extend(job_id(&resp));
    send(Request::post("/api/v1/upload?filename=huge.xlsx", Body::Sized(60 << 20)))?;
    send(Request::post("/api/v1/upload?filename=slides.pptx", Body::Sized(9_000)))?;
    send(Request::post("/api/v1/upload?filename=crash.xlsx&force_status=500", Body::Sized(2_000)))?;
    let cut = Request::post("/api/v1/upload?filename=dropped.xlsx", Body::Sized(5_000_000));
    fault::send_and_abort(target, &cut, 1_000_000)?;
    println!("  {:<6} {:<64} -> client vanished after 1000000 of 5000000 B", cut.method, cut.path);

    for id in &jobs {
        send(Request::get(&format!("/api/v1/status/{id}")))?;
        send(Request::get(&format!("/api/v1/download/{id}")))?;
    }
    send(Request::get("/api/v1/status/00000000-0000-4000-8000-000000000000"))?;
    send(Request::get("/api/v1/download/424242"))?;
    if let Some(id) = jobs.first() {
        send(Request::get(&format!("/api/v1/status/{id}?delay_ms=120")))?;
    }
    for path in ["/users/1001/profile", "/users/1002/profile", "/api/v2/reports/2024-11/summary", "/health", "/health"]
    {
        send(Request::get(path))?;
    }
    Ok(log)
}

fn job_id(resp: &Response) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&resp.body_head).ok()?;
    v.get("job_id")?.as_str().map(str::to_string)
}
