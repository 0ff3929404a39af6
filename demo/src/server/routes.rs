//! Routing and the endpoint handlers: one request in, one response out, with the demo's
//! query-parameter overrides (`delay_ms`, `force_status`, `processing_ms`, `truncate_at`).

use std::io::{self, BufRead, Write};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::body::{self, BodyReader, Consumed};
use super::http::{write_response, Body, Request, Response};
use super::upload::{self, FilenameSniffer};
use super::Shared;

/// The demo's own OpenAPI document, served like FastAPI serves its own at `/openapi.json`.
const OPENAPI: &[u8] = include_bytes!("openapi.json");

/// A longer sleep would only tie up a thread; alert demos need seconds, not minutes.
const MAX_DELAY_MS: u64 = 60_000;

/// What the connection loop should do after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    /// A response saying `Connection: close` went out; close politely.
    Close,
    /// The peer is gone or the stream is unusable; nothing more can be sent.
    Drop,
}

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

fn resolve<'a>(method: &str, path: &'a str) -> Route<'a> {
    let job_id = |prefix: &str| {
        path.strip_prefix(prefix)
            .filter(|id| !id.is_empty() && !id.contains('/'))
    };
    let (route, allow) = if path == "/api/v1/upload" {
        (Route::Upload, "POST")
    } else if path == "/health" {
        (Route::Health, "GET")
    } else if path == "/openapi.json" {
        (Route::OpenApi, "GET")
    } else if let Some(id) = job_id("/api/v1/status/") {
        (Route::Status(id), "GET")
    } else if let Some(id) = job_id("/api/v1/download/") {
        (Route::Download(id), "GET")
    } else {
        return Route::NotFound;
    };
    if method == allow {
        route
    } else {
        Route::WrongMethod(allow)
    }
}

/// Per-request settings taken from the query string, falling back to the server's.
struct Overrides {
    delay: Duration,
    force_status: Option<u16>,
    processing: Duration,
    /// Downloads stop after this many body bytes and the connection drops.
    truncate_at: Option<u64>,
}

fn overrides(req: &Request, shared: &Shared) -> Result<Overrides, String> {
    let number = |key: &str, default: u64| -> Result<u64, String> {
        match req.query.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("{key} must be a non-negative integer, got '{v}'")),
        }
    };
    let force_status = match req.query.get("force_status") {
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
        truncate_at: match req.query.get("truncate_at") {
            None => None,
            Some(_) => Some(number("truncate_at", 0)?),
        },
    })
}

/// Serves one request whose head has been read: consumes its body, then responds.
pub fn handle<R: BufRead, W: Write>(
    req: &Request,
    reader: &mut R,
    out: &mut W,
    scratch: &mut [u8],
    shared: &Shared,
) -> Next {
    let framing = match body::framing(req) {
        Ok(f) => f,
        Err(reason) => return send(out, &bad_request(reason), true),
    };
    if req.expects_continue() && framing.has_body() {
        let sent = out
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| out.flush());
        if sent.is_err() {
            return Next::Drop;
        }
    }
    let route = resolve(&req.method, &req.path);
    let query_filename = req.query.get("filename").filter(|n| !n.is_empty());
    let mut sniffer = match route {
        Route::Upload if query_filename.is_none() => req
            .header("content-type")
            .and_then(upload::multipart_boundary)
            .map(|b| FilenameSniffer::new(&b)),
        _ => None,
    };
    let max = shared.opts.max_upload_bytes;
    let cap = max.saturating_mul(4);
    let mut body = BodyReader::new(reader, framing);
    let consumed = match body::consume(&mut body, scratch, cap, |piece| {
        if let Some(s) = sniffer.as_mut() {
            s.feed(piece);
        }
    }) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return send(out, &bad_request("bad chunked encoding"), true)
        }
        // Disconnect or stalled client: no response is possible, and no job is created.
        Err(_) => return Next::Drop,
    };
    if consumed.over_cap {
        // The rest of the body is unread, so the connection cannot carry another request.
        let code = if route == Route::Upload {
            "file_too_large"
        } else {
            "body_too_large"
        };
        let resp = Response::json(
            413,
            json!({ "error": code, "max_bytes": max, "received_bytes": consumed.bytes }),
        );
        return send(out, &resp, true);
    }
    let resp = match overrides(req, shared) {
        Err(reason) => Response::json(400, json!({ "error": "bad_query", "reason": reason })),
        Ok(o) => {
            let resp = match o.force_status {
                Some(status) => forced(status),
                None => respond(
                    route,
                    consumed,
                    query_filename,
                    sniffer.as_ref(),
                    &o,
                    shared,
                ),
            };
            if !o.delay.is_zero() {
                thread::sleep(o.delay);
            }
            resp
        }
    };
    let cut_off = matches!(resp.body, Body::CutOff { .. });
    send(out, &resp, cut_off || !req.keep_alive())
}

fn respond(
    route: Route<'_>,
    consumed: Consumed,
    query_filename: Option<&str>,
    sniffer: Option<&FilenameSniffer>,
    o: &Overrides,
    shared: &Shared,
) -> Response {
    match route {
        Route::Upload => {
            let max = shared.opts.max_upload_bytes;
            if consumed.bytes > max {
                return Response::json(
                    413,
                    json!({ "error": "file_too_large", "max_bytes": max, "received_bytes": consumed.bytes }),
                );
            }
            let name = query_filename.or_else(|| sniffer.and_then(FilenameSniffer::filename));
            if let Err(reason) = upload::check_filename(name) {
                return Response::json(422, json!({ "error": "invalid_file", "reason": reason }));
            }
            let id = shared.jobs.create(consumed.bytes, o.processing);
            Response::json(
                201,
                json!({ "job_id": id, "status": "processing", "size_bytes": consumed.bytes }),
            )
        }
        Route::Status(id) => match shared.jobs.get(id) {
            None => Response::error(404, "not_found"),
            Some(job) => {
                let status = if job.is_ready(Instant::now()) {
                    "completed"
                } else {
                    "processing"
                };
                Response::json(
                    200,
                    json!({ "job_id": id, "status": status, "output_bytes": job.output_bytes }),
                )
            }
        },
        Route::Download(id) => match shared.jobs.get(id) {
            None => Response::error(404, "not_found"),
            Some(job) if !job.is_ready(Instant::now()) => Response::error(409, "not_ready"),
            Some(job) => Response {
                status: 200,
                content_type: "application/octet-stream",
                body: match o.truncate_at {
                    Some(sent) if sent < job.output_bytes => Body::CutOff { declared: job.output_bytes, sent },
                    _ => Body::Generated(job.output_bytes),
                },
                allow: None,
            },
        },
        Route::Health => Response::json(200, json!({ "status": "ok" })),
        Route::OpenApi => Response {
            status: 200,
            content_type: "application/json",
            body: Body::Bytes(shared.opts.openapi.as_deref().unwrap_or(OPENAPI).to_vec()),
            allow: None,
        },
        Route::NotFound => Response::error(404, "not_found"),
        Route::WrongMethod(allow) => Response {
            allow: Some(allow),
            ..Response::error(405, "method_not_allowed")
        },
    }
}

fn forced(status: u16) -> Response {
    match status {
        204 | 304 => Response {
            status,
            content_type: "application/json",
            body: Body::None,
            allow: None,
        },
        _ => Response::error(status, "forced"),
    }
}

fn bad_request(reason: &str) -> Response {
    Response::json(400, json!({ "error": "bad_request", "reason": reason }))
}

fn send<W: Write>(out: &mut W, resp: &Response, close: bool) -> Next {
    match write_response(out, resp, close) {
        Err(_) => Next::Drop,
        Ok(()) if close => Next::Close,
        Ok(()) => Next::KeepAlive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_methods() {
        assert_eq!(resolve("POST", "/api/v1/upload"), Route::Upload);
        assert_eq!(resolve("GET", "/api/v1/upload"), Route::WrongMethod("POST"));
        assert_eq!(resolve("GET", "/api/v1/status/abc"), Route::Status("abc"));
        assert_eq!(
            resolve("DELETE", "/api/v1/download/abc"),
            Route::WrongMethod("GET")
        );
        assert_eq!(
            resolve("GET", "/api/v1/download/abc"),
            Route::Download("abc")
        );
        assert_eq!(resolve("GET", "/api/v1/status/"), Route::NotFound);
        assert_eq!(resolve("GET", "/api/v1/status/a/b"), Route::NotFound);
        assert_eq!(resolve("GET", "/health"), Route::Health);
        assert_eq!(resolve("GET", "/openapi.json"), Route::OpenApi);
        assert_eq!(resolve("GET", "/nope"), Route::NotFound);
    }
}
