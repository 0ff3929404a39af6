//! The traffic mix `make run` sends through Envoy: the converter's whole life cycle
//! (uploads that succeed and fail for every reason, status polls, downloads ready and not),
//! plus paths with ids in them and health checks, so every routemeter series has data.

use std::io;
use std::net::SocketAddr;

use crate::client::{self, Body, Request, Response};
use crate::fault;

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
