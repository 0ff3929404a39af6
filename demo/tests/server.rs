//! The demo service over real sockets, with the client every other test uses: its endpoints
//! through the ordinary client, framing (keep-alive, 100-continue, chunked, cut-off bodies,
//! malformed heads) through the raw connection of the fault verbs.

use std::net::SocketAddr;

use routemeter_demo::server::{start, ServeOptions};
use serde_json::{json, Value};
use testkit::client::{self, Body, Connection, Request, Response};
use testkit::fault::{self, Raw};

fn server() -> SocketAddr {
    let opts = ServeOptions { listen: "127.0.0.1:0".parse().unwrap(), max_upload_bytes: 1000, ..Default::default() };
    start(opts).unwrap().addr
}

fn json(resp: &Response) -> Value {
    serde_json::from_slice(&resp.body_head).unwrap()
}

fn get(addr: SocketAddr, path: &str) -> Response {
    client::send(addr, &Request::get(path)).unwrap()
}

fn upload(addr: SocketAddr, query: &str, size: u64) -> Response {
    client::send(addr, &Request::post(&format!("/api/v1/upload{query}"), Body::Sized(size))).unwrap()
}

fn job_id(resp: &Response) -> String {
    json(resp)["job_id"].as_str().unwrap().to_string()
}

/// A raw request on a fresh connection: the answer, and whether the server closed after it.
fn raw(addr: SocketAddr, bytes: &[u8]) -> (Response, bool) {
    let mut conn = Raw::open(addr).unwrap();
    conn.send(bytes).unwrap();
    let resp = conn.read_response().unwrap();
    (resp, conn.closed())
}

#[test]
fn upload_status_download_round_trip() {
    let addr = server();
    let up = upload(addr, "?filename=a.xlsx", 600);
    assert_eq!(up.status, 201);
    assert_eq!(up.header("content-type"), Some("application/json"));
    let id = job_id(&up);
    assert_eq!(json(&up), json!({ "job_id": id, "status": "processing", "size_bytes": 600 }));

    let status = get(addr, &format!("/api/v1/status/{id}"));
    assert_eq!(status.status, 200);
    assert_eq!(json(&status), json!({ "job_id": id, "status": "completed", "output_bytes": 600 }));

    let down = get(addr, &format!("/api/v1/download/{id}"));
    assert_eq!(down.status, 200);
    assert_eq!(down.header("content-type"), Some("application/octet-stream"));
    assert_eq!(down.header("content-length"), Some("600"));
    assert_eq!(down.body_len, 600);
}

#[test]
fn oversized_upload_is_413() {
    let resp = upload(server(), "?filename=a.xlsx", 1001);
    assert_eq!(resp.status, 413);
    assert_eq!(json(&resp), json!({ "error": "file_too_large", "max_bytes": 1000, "received_bytes": 1001 }));
}

#[test]
fn endless_upload_is_cut_off_and_closed() {
    let mut conn = Raw::open(server()).unwrap();
    conn.send(b"POST /api/v1/upload?filename=a.csv HTTP/1.1\r\nContent-Length: 100000\r\n\r\n").unwrap();
    conn.send(&[b'x'; 5000]).unwrap();
    let resp = conn.read_response().unwrap();
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(json(&resp)["received_bytes"], 4001);
}

#[test]
fn wrong_extension_is_422() {
    let resp = upload(server(), "?filename=a.pdf", 4);
    assert_eq!(resp.status, 422);
    assert_eq!(json(&resp)["error"], "invalid_file");
    assert_eq!(upload(server(), "", 4).status, 422);
}

#[test]
fn chunked_upload_counts_decoded_bytes() {
    let addr = server();
    let mut bytes = b"POST /api/v1/upload?filename=b.csv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for (size, ext) in [(200, ""), (300, ";ext=1"), (200, "")] {
        bytes.extend_from_slice(format!("{size:x}{ext}\r\n").as_bytes());
        bytes.extend_from_slice(&vec![b'c'; size]);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let up = fault::send_raw(addr, &bytes).unwrap();
    assert_eq!(up.status, 201);
    assert_eq!(json(&up)["size_bytes"], 700);
    let down = get(addr, &format!("/api/v1/download/{}", job_id(&up)));
    assert_eq!((down.status, down.body_len), (200, 700));
    // The client's own chunked uploads too.
    let up =
        client::send(addr, &Request::post("/api/v1/upload?filename=c.csv", Body::Chunked(vec![3, 400, 5]))).unwrap();
    assert_eq!(json(&up)["size_bytes"], 408);
}

#[test]
fn bad_chunk_encoding_is_400_and_closes() {
    let (resp, closed) =
        raw(server(), b"POST /api/v1/upload?filename=b.csv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_eq!(resp.status, 400);
    assert!(closed);
}

#[test]
fn multipart_filename_is_used() {
    let body = Body::Multipart { filename: "report.XLSX".into(), size: 4 };
    let resp = client::send(server(), &Request::post("/api/v1/upload", body.clone())).unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(json(&resp)["size_bytes"], body.len());
}

#[test]
fn unfinished_job_download_is_409() {
    let addr = server();
    let id = job_id(&upload(addr, "?filename=a.ods&processing_ms=600000", 3));
    assert_eq!(json(&get(addr, &format!("/api/v1/status/{id}")))["status"], "processing");
    let down = get(addr, &format!("/api/v1/download/{id}"));
    assert_eq!(down.status, 409);
    assert_eq!(json(&down), json!({ "error": "not_ready" }));
}

#[test]
fn unknown_job_is_404() {
    let addr = server();
    for path in ["/api/v1/status/00000000-0000-4000-8000-000000000000", "/api/v1/download/nope"] {
        let resp = get(addr, path);
        assert_eq!(resp.status, 404);
        assert_eq!(json(&resp), json!({ "error": "not_found" }));
    }
}

#[test]
fn keep_alive_serves_several_requests() {
    let addr = server();
    let mut conn = Connection::open(addr).unwrap();
    let first = conn.send(&Request::get("/health")).unwrap();
    assert_eq!((first.status, first.header("connection")), (200, None));
    let second = conn.send(&Request::post("/api/v1/upload?filename=x.xls", Body::Sized(3))).unwrap();
    assert_eq!(second.status, 201);
    // A body on a GET must be consumed, or it would be read as the next request; and a
    // `Connection: close` request is the last.
    let mut conn = Raw::open(addr).unwrap();
    conn.send(b"GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello").unwrap();
    assert_eq!(conn.read_response().unwrap().status, 200);
    conn.send(b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let last = conn.read_response().unwrap();
    assert_eq!((last.status, last.header("connection")), (404, Some("close")));
    assert!(conn.closed());
}

#[test]
fn http_1_0_closes_after_response() {
    let (resp, closed) = raw(server(), b"GET /health HTTP/1.0\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert!(closed);
}

#[test]
fn expect_100_continue_gets_interim_response() {
    let mut conn = Raw::open(server()).unwrap();
    conn.send(b"POST /api/v1/upload?filename=a.csv HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    // The interim response must arrive before the body is sent.
    assert_eq!(conn.read_response().unwrap().status, 100);
    conn.send(b"a,b\n").unwrap();
    let resp = conn.read_response().unwrap();
    assert_eq!(resp.status, 201);
    assert_eq!(json(&resp)["size_bytes"], 4);
}

#[test]
fn force_status_replies_that_status() {
    let addr = server();
    let resp = upload(addr, "?filename=a.xlsx&force_status=503", 3);
    assert_eq!(resp.status, 503);
    assert_eq!(json(&resp), json!({ "error": "forced" }));
    let mut conn = Connection::open(addr).unwrap();
    let empty = conn.send(&Request::get("/health?force_status=204")).unwrap();
    assert_eq!((empty.status, empty.header("content-length"), empty.body_len), (204, None, 0));
    // The connection is still in sync after a body-less response.
    assert_eq!(conn.send(&Request::get("/health")).unwrap().status, 200);
    assert_eq!(get(addr, "/health?force_status=abc").status, 400);
}

#[test]
fn health_is_ok() {
    let resp = get(server(), "/health");
    assert_eq!(resp.status, 200);
    assert_eq!(json(&resp), json!({ "status": "ok" }));
}

#[test]
fn wrong_method_is_405_with_allow() {
    let resp = get(server(), "/api/v1/upload");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
}

#[test]
fn malformed_request_line_is_400_and_closes() {
    let (resp, closed) = raw(server(), b"THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(resp.status, 400);
    assert!(closed);
}

#[test]
fn oversized_head_is_431() {
    let head = format!("GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    assert_eq!(fault::send_raw(server(), head.as_bytes()).unwrap().status, 431);
}

#[test]
fn disconnect_mid_body_leaves_server_healthy() {
    let addr = server();
    fault::send_and_abort(addr, &Request::post("/api/v1/upload?filename=a.csv", Body::Sized(500)), 13).unwrap();
    assert_eq!(get(addr, "/health").status, 200);
}

#[test]
fn truncated_download_declares_everything_sends_part_and_closes() {
    let addr = server();
    let id = job_id(&upload(addr, "?filename=a.xlsx", 600));
    let (cut, closed) =
        raw(addr, format!("GET /api/v1/download/{id}?truncate_at=250 HTTP/1.1\r\nHost: demo\r\n\r\n").as_bytes());
    assert_eq!(cut.status, 200);
    assert_eq!(cut.header("content-length"), Some("600"));
    assert_eq!(cut.header("connection"), Some("close"));
    assert_eq!((cut.body_len, closed), (250, true));
    // The ordinary client sees a body cut off as an error.
    assert!(client::send(addr, &Request::get(&format!("/api/v1/download/{id}?truncate_at=250"))).is_err());
    // Not truncated when the cut is past the end.
    let whole = get(addr, &format!("/api/v1/download/{id}?truncate_at=600"));
    assert_eq!((whole.status, whole.body_len), (200, 600));
}
