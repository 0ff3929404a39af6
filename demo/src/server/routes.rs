//! Routing and the endpoint handlers: one request in, its body streamed and counted (never
//! held whole), one response out, with the demo's query-parameter overrides (`delay_ms`,
//! `force_status`, `processing_ms`, `truncate_at`).

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::upload::{self, SNIFF_BYTES};
use super::Shared;

/// The demo's own OpenAPI document, served like FastAPI serves its own at `/openapi.json`.
const OPENAPI: &[u8] = include_bytes!("openapi.json");
/// A longer sleep would only hold a connection; alert demos need seconds, not minutes.
const MAX_DELAY_MS: u64 = 60_000;
/// Once a request has started, a client silent for this long is treated as gone.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to keep reading an upload we refuse before answering: a close with unread bytes
/// is a TCP reset, and a reset can destroy the answer before the client reads it.
const LINGER: Duration = Duration::from_secs(2);

/// Larger request heads get 431 (Envoy's own default limit is 60 KiB).
const MAX_HEAD_BYTES: usize = 64 * 1024;

type Body = http_body_util::combinators::BoxBody<Bytes, io::Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Upload,
    Status(&'a str),
    Download(&'a str),
    Health,
    OpenApi,
    NotFound,
    WrongMethod(&'static str),
}

fn resolve<'a>(method: &Method, path: &'a str) -> Route<'a> {
    let job_id = |prefix: &str| path.strip_prefix(prefix).filter(|id| !id.is_empty() && !id.contains('/'));
    let (route, allow) = if path == "/api/v1/upload" {
        (Route::Upload, Method::POST)
    } else if path == "/health" {
        (Route::Health, Method::GET)
    } else if path == "/openapi.json" {
        (Route::OpenApi, Method::GET)
    } else if let Some(id) = job_id("/api/v1/status/") {
        (Route::Status(id), Method::GET)
    } else if let Some(id) = job_id("/api/v1/download/") {
        (Route::Download(id), Method::GET)
    } else {
        return Route::NotFound;
    };
    match (method == allow, allow) {
        (true, _) => route,
        (false, Method::POST) => Route::WrongMethod("POST"),
        (false, _) => Route::WrongMethod("GET"),
    }
}

fn reply(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).map_err(|never: Infallible| match never {}).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json_reply(status: u16, value: serde_json::Value) -> Response<Body> {
    reply(status, "application/json", value.to_string())
}

fn error(status: u16, code: &str) -> Response<Body> {
    json_reply(status, json!({ "error": code }))
}

fn closing(mut resp: Response<Body>) -> Response<Body> {
    resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Per-request settings taken from the query string, falling back to the server's.
struct Overrides {
    delay: Duration,
    force_status: Option<u16>,
    processing: Duration,
    /// Downloads stop after this many body bytes and the connection drops.
    truncate_at: Option<u64>,
}

fn overrides(query: &[(String, String)], shared: &Shared) -> Result<Overrides, String> {
    let get = |key: &str| query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let number = |key: &str, default: u64| match get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{key} must be a non-negative integer, got '{v}'")),
    };
    let force_status = match get("force_status") {
        None => None,
        // A 1xx cannot be a final response: the client would wait for another forever.
        Some(v) => match v.parse::<u16>() {
            Ok(s @ 200..=599) => Some(s),
            _ => return Err(format!("force_status must be 200..=599, got '{v}'")),
        },
    };
    Ok(Overrides {
        delay: Duration::from_millis(number("delay_ms", shared.opts.delay_ms)?.min(MAX_DELAY_MS)),
        force_status,
        processing: Duration::from_millis(number("processing_ms", shared.opts.processing_ms)?),
        truncate_at: get("truncate_at").map(|_| number("truncate_at", 0)).transpose()?,
    })
}

/// Serves one request. An `Err` drops the connection without a response (the client went
/// away or stalled mid-body).
pub async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> io::Result<Response<Body>> {
    let path = req.uri().path().to_string();
    let route = resolve(req.method(), &path);
    let query: Vec<(String, String)> = serde_urlencoded::from_str(req.uri().query().unwrap_or("")).unwrap_or_default();
    let query_filename = query.iter().find(|(k, v)| k == "filename" && !v.is_empty()).map(|(_, v)| v.clone());
    let multipart = match (route, &query_filename) {
        (Route::Upload, None) => req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string),
        _ => None,
    };
    // hyper's own limit on the head is not exact (a head read in one go is never measured).
    let head_bytes: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if head_bytes > MAX_HEAD_BYTES {
        return Ok(closing(json_reply(
            431,
            json!({ "error": "bad_request", "reason": "request header section too large" }),
        )));
    }
    let max = shared.opts.max_upload_bytes;
    let cap = max.saturating_mul(4);
    let mut body = req.into_body();
    let (mut received, mut head) = (0u64, Vec::new());
    loop {
        let frame = match tokio::time::timeout(REQUEST_READ_TIMEOUT, body.frame()).await {
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "client silent mid-request")),
            Ok(None) => break,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) if e.is_incomplete_message() => return Err(io::Error::other(e)),
            Ok(Some(Err(_))) => return Ok(closing(bad_request("bad chunked encoding"))),
        };
        let Ok(data) = frame.into_data() else { continue };
        received += data.len() as u64;
        if multipart.is_some() && head.len() < SNIFF_BYTES {
            head.extend_from_slice(&data[..data.len().min(SNIFF_BYTES - head.len())]);
        }
        if received > cap {
            // The rest of the body stays unread: answer and close (after a short drain).
            let deadline = Instant::now() + LINGER;
            while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline.into(), body.frame()).await {}
            let code = if route == Route::Upload { "file_too_large" } else { "body_too_large" };
            let reply = json!({ "error": code, "max_bytes": max, "received_bytes": cap + 1 });
            return Ok(closing(json_reply(413, reply)));
        }
    }
    let o = match overrides(&query, &shared) {
        Ok(o) => o,
        Err(reason) => return Ok(json_reply(400, json!({ "error": "bad_query", "reason": reason }))),
    };
    let resp = match o.force_status {
        Some(status @ (204 | 304)) => reply(status, "application/json", Bytes::new()),
        Some(status) => error(status, "forced"),
        None => {
            let filename = match (query_filename, multipart) {
                (Some(name), _) => Some(name),
                (None, Some(ct)) => upload::multipart_filename(&ct, Bytes::from(head)).await,
                (None, None) => None,
            };
            respond(route, received, filename.as_deref(), &o, &shared)
        }
    };
    if !o.delay.is_zero() {
        tokio::time::sleep(o.delay).await;
    }
    Ok(resp)
}

fn bad_request(reason: &str) -> Response<Body> {
    json_reply(400, json!({ "error": "bad_request", "reason": reason }))
}

fn respond(route: Route<'_>, received: u64, filename: Option<&str>, o: &Overrides, shared: &Shared) -> Response<Body> {
    let now = Instant::now();
    match route {
        Route::Upload => {
            let max = shared.opts.max_upload_bytes;
            if received > max {
                return json_reply(
                    413,
                    json!({ "error": "file_too_large", "max_bytes": max, "received_bytes": received }),
                );
            }
            if let Err(reason) = upload::check_filename(filename) {
                return json_reply(422, json!({ "error": "invalid_file", "reason": reason }));
            }
            let id = shared.jobs.create(received, o.processing);
            json_reply(201, json!({ "job_id": id, "status": "processing", "size_bytes": received }))
        }
        Route::Status(id) => match shared.jobs.get(id) {
            None => error(404, "not_found"),
            Some(job) => {
                let status = if job.is_ready(now) { "completed" } else { "processing" };
                json_reply(200, json!({ "job_id": id, "status": status, "output_bytes": job.output_bytes }))
            }
        },
        Route::Download(id) => match shared.jobs.get(id) {
            None => error(404, "not_found"),
            Some(job) if !job.is_ready(now) => error(409, "not_ready"),
            Some(job) => {
                let cut = o.truncate_at.filter(|sent| *sent < job.output_bytes);
                let generated =
                    Generated { left: cut.unwrap_or(job.output_bytes), cut_off: cut.is_some(), flushed: false };
                let mut resp = Response::new(generated.boxed());
                let headers = resp.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
                // Declares the whole file even when it will be cut off.
                headers.insert(CONTENT_LENGTH, HeaderValue::from(job.output_bytes));
                if cut.is_some() {
                    headers.insert(CONNECTION, HeaderValue::from_static("close"));
                }
                resp
            }
        },
        Route::Health => json_reply(200, json!({ "status": "ok" })),
        Route::OpenApi => reply(200, "application/json", shared.opts.openapi.as_deref().unwrap_or(OPENAPI).to_vec()),
        Route::NotFound => error(404, "not_found"),
        Route::WrongMethod(allow) => {
            let mut resp = error(405, "method_not_allowed");
            resp.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
            resp
        }
    }
}

/// A download generated on the fly; `cut_off` ends it with an error after `left` bytes,
/// which makes hyper drop the connection mid-body.
struct Generated {
    left: u64,
    cut_off: bool,
    /// hyper writes what it has only when the body waits: wait once before the error, or
    /// the cut-off part would never leave.
    flushed: bool,
}

static BLOCK: [u8; 64 * 1024] = [b'x'; 64 * 1024];

impl hyper::body::Body for Generated {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        if self.left == 0 && self.cut_off && !self.flushed {
            self.flushed = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if self.left == 0 {
            let cut = std::mem::take(&mut self.cut_off);
            return Poll::Ready(cut.then(|| Err(io::Error::new(io::ErrorKind::ConnectionAborted, "truncate_at"))));
        }
        let n = self.left.min(BLOCK.len() as u64);
        self.left -= n;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&BLOCK[..n as usize])))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0 && !self.cut_off
    }

    fn size_hint(&self) -> SizeHint {
        if self.cut_off {
            SizeHint::default()
        } else {
            SizeHint::with_exact(self.left)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_methods() {
        assert_eq!(resolve(&Method::POST, "/api/v1/upload"), Route::Upload);
        assert_eq!(resolve(&Method::GET, "/api/v1/upload"), Route::WrongMethod("POST"));
        assert_eq!(resolve(&Method::GET, "/api/v1/status/abc"), Route::Status("abc"));
        assert_eq!(resolve(&Method::DELETE, "/api/v1/download/abc"), Route::WrongMethod("GET"));
        assert_eq!(resolve(&Method::GET, "/api/v1/download/abc"), Route::Download("abc"));
        assert_eq!(resolve(&Method::GET, "/api/v1/status/"), Route::NotFound);
        assert_eq!(resolve(&Method::GET, "/api/v1/status/a/b"), Route::NotFound);
        assert_eq!(resolve(&Method::GET, "/health"), Route::Health);
        assert_eq!(resolve(&Method::GET, "/openapi.json"), Route::OpenApi);
        assert_eq!(resolve(&Method::GET, "/nope"), Route::NotFound);
    }
}
