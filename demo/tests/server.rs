//! End-to-end tests of the demo service over real sockets, speaking raw HTTP/1.1 so the
//! wire behaviour (framing, keep-alive, 100-continue) is what gets checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use routemeter_demo::server::{start, ServeOptions};

fn server() -> SocketAddr {
    let opts = ServeOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        max_upload_bytes: 1000,
        ..Default::default()
    };
    start(opts).unwrap().addr
}

struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        // Failing tests should fail, not hang.
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, raw: &[u8]) {
        self.writer.write_all(raw).unwrap();
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line.trim_end_matches(['\r', '\n']).to_string()
    }

    fn read_response(&mut self) -> Resp {
        let status_line = self.read_line();
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut headers = Vec::new();
        loop {
            let line = self.read_line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        resp.body = vec![0; len];
        self.reader.read_exact(&mut resp.body).unwrap();
        resp
    }

    fn request(&mut self, raw: &[u8]) -> Resp {
        self.send(raw);
        self.read_response()
    }

    /// True when the server has closed its side (EOF, nothing more sent).
    fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).unwrap();
        rest.is_empty()
    }
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    Conn::open(addr).request(format!("GET {path} HTTP/1.1\r\nHost: demo\r\n\r\n").as_bytes())
}

fn upload(addr: SocketAddr, query: &str, body: &[u8]) -> Resp {
    let mut raw = format!(
        "POST /api/v1/upload{query} HTTP/1.1\r\nHost: demo\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    Conn::open(addr).request(&raw)
}

fn job_id(resp: &Resp) -> String {
    resp.json()["job_id"].as_str().unwrap().to_string()
}

#[test]
fn upload_status_download_round_trip() {
    let addr = server();
    let up = upload(addr, "?filename=a.xlsx", &[b'x'; 600]);
    assert_eq!(up.status, 201);
    assert_eq!(up.header("content-type"), Some("application/json"));
    let id = job_id(&up);
    assert_eq!(
        up.json(),
        serde_json::json!({ "job_id": id, "status": "processing", "size_bytes": 600 })
    );

    let status = get(addr, &format!("/api/v1/status/{id}"));
    assert_eq!(status.status, 200);
    assert_eq!(
        status.json(),
        serde_json::json!({ "job_id": id, "status": "completed", "output_bytes": 600 })
    );

    let down = get(addr, &format!("/api/v1/download/{id}"));
    assert_eq!(down.status, 200);
    assert_eq!(
        down.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(down.header("content-length"), Some("600"));
    assert_eq!(down.body.len(), 600);
}

#[test]
fn oversized_upload_is_413() {
    let resp = upload(server(), "?filename=a.xlsx", &[b'x'; 1001]);
    assert_eq!(resp.status, 413);
    assert_eq!(
        resp.json(),
        serde_json::json!({ "error": "file_too_large", "max_bytes": 1000, "received_bytes": 1001 })
    );
}

#[test]
fn endless_upload_is_cut_off_and_closed() {
    let mut conn = Conn::open(server());
    conn.send(b"POST /api/v1/upload?filename=a.csv HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    conn.send(&[b'x'; 5000]);
    let resp = conn.read_response();
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("connection"), Some("close"));
    assert_eq!(resp.json()["received_bytes"], 4001);
}

#[test]
fn wrong_extension_is_422() {
    let resp = upload(server(), "?filename=a.pdf", b"%PDF");
    assert_eq!(resp.status, 422);
    assert_eq!(resp.json()["error"], "invalid_file");
    assert_eq!(upload(server(), "", b"data").status, 422);
}

#[test]
fn chunked_upload_counts_decoded_bytes() {
    let addr = server();
    let mut raw =
        b"POST /api/v1/upload?filename=b.csv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_vec();
    for (size, ext) in [(200, ""), (300, ";ext=1"), (200, "")] {
        raw.extend_from_slice(format!("{size:x}{ext}\r\n").as_bytes());
        raw.extend_from_slice(&vec![b'c'; size]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    let up = Conn::open(addr).request(&raw);
    assert_eq!(up.status, 201);
    assert_eq!(up.json()["size_bytes"], 700);
    let down = get(addr, &format!("/api/v1/download/{}", job_id(&up)));
    assert_eq!(down.status, 200);
    assert_eq!(down.body.len(), 700);
}

#[test]
fn bad_chunk_encoding_is_400_and_closes() {
    let mut conn = Conn::open(server());
    let resp = conn.request(
        b"POST /api/v1/upload?filename=b.csv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    );
    assert_eq!(resp.status, 400);
    assert!(conn.closed());
}

#[test]
fn multipart_filename_is_used() {
    let body = b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"report.XLSX\"\r\nContent-Type: application/octet-stream\r\n\r\nPK..\r\n--b0undary--\r\n";
    let mut raw = format!(
        "POST /api/v1/upload HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let resp = Conn::open(server()).request(&raw);
    assert_eq!(resp.status, 201);
    assert_eq!(resp.json()["size_bytes"], body.len());
}

#[test]
fn unfinished_job_download_is_409() {
    let addr = server();
    let id = job_id(&upload(
        addr,
        "?filename=a.ods&processing_ms=600000",
        b"abc",
    ));
    assert_eq!(
        get(addr, &format!("/api/v1/status/{id}")).json()["status"],
        "processing"
    );
    let down = get(addr, &format!("/api/v1/download/{id}"));
    assert_eq!(down.status, 409);
    assert_eq!(down.json(), serde_json::json!({ "error": "not_ready" }));
}

#[test]
fn unknown_job_is_404() {
    let addr = server();
    for path in [
        "/api/v1/status/00000000-0000-4000-8000-000000000000",
        "/api/v1/download/nope",
    ] {
        let resp = get(addr, path);
        assert_eq!(resp.status, 404);
        assert_eq!(resp.json(), serde_json::json!({ "error": "not_found" }));
    }
}

#[test]
fn keep_alive_serves_several_requests() {
    let mut conn = Conn::open(server());
    // A body on a GET must be consumed, or it would be read as the next request.
    let first = conn.request(b"GET /health HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None);
    let second = conn
        .request(b"POST /api/v1/upload?filename=x.xls HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(second.status, 201);
    let last = conn.request(b"GET /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_eq!(last.status, 404);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(conn.closed());
}

#[test]
fn http_1_0_closes_after_response() {
    let mut conn = Conn::open(server());
    assert_eq!(conn.request(b"GET /health HTTP/1.0\r\n\r\n").status, 200);
    assert!(conn.closed());
}

#[test]
fn expect_100_continue_gets_interim_response() {
    let mut conn = Conn::open(server());
    conn.send(b"POST /api/v1/upload?filename=a.csv HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    // The interim response must arrive before the body is sent.
    assert_eq!(conn.read_line(), "HTTP/1.1 100 Continue");
    assert_eq!(conn.read_line(), "");
    let resp = conn.request(b"a,b\n");
    assert_eq!(resp.status, 201);
    assert_eq!(resp.json()["size_bytes"], 4);
}

#[test]
fn force_status_replies_that_status() {
    let addr = server();
    let resp = upload(addr, "?filename=a.xlsx&force_status=503", b"abc");
    assert_eq!(resp.status, 503);
    assert_eq!(resp.json(), serde_json::json!({ "error": "forced" }));
    let mut conn = Conn::open(addr);
    let empty = conn.request(b"GET /health?force_status=204 HTTP/1.1\r\n\r\n");
    assert_eq!(
        (
            empty.status,
            empty.header("content-length"),
            empty.body.len()
        ),
        (204, None, 0)
    );
    // The connection is still in sync after a body-less response.
    assert_eq!(conn.request(b"GET /health HTTP/1.1\r\n\r\n").status, 200);
    assert_eq!(get(addr, "/health?force_status=abc").status, 400);
}

#[test]
fn health_is_ok() {
    let resp = get(server(), "/health");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), serde_json::json!({ "status": "ok" }));
}

#[test]
fn wrong_method_is_405_with_allow() {
    let resp = get(server(), "/api/v1/upload");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
}

#[test]
fn malformed_request_line_is_400_and_closes() {
    let mut conn = Conn::open(server());
    let resp = conn.request(b"THIS IS NOT HTTP\r\n\r\n");
    assert_eq!(resp.status, 400);
    assert!(conn.closed());
}

#[test]
fn oversized_head_is_431() {
    let mut conn = Conn::open(server());
    let raw = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let resp = conn.request(raw.as_bytes());
    assert_eq!(resp.status, 431);
}

#[test]
fn disconnect_mid_body_leaves_server_healthy() {
    let addr = server();
    let mut conn = Conn::open(addr);
    conn.send(
        b"POST /api/v1/upload?filename=a.csv HTTP/1.1\r\nContent-Length: 500\r\n\r\nonly a little",
    );
    drop(conn);
    assert_eq!(get(addr, "/health").status, 200);
}

#[test]
fn truncated_download_declares_everything_sends_part_and_closes() {
    let addr = server();
    let id = job_id(&upload(addr, "?filename=a.xlsx", &[b'x'; 600]));
    let mut conn = Conn::open(addr);
    conn.send(format!("GET /api/v1/download/{id}?truncate_at=250 HTTP/1.1\r\nHost: demo\r\n\r\n").as_bytes());
    assert_eq!(conn.read_line(), "HTTP/1.1 200 OK");
    let mut head = Vec::new();
    loop {
        let line = conn.read_line();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    assert!(head.contains(&"Content-Length: 600".to_string()), "{head:?}");
    assert!(head.contains(&"Connection: close".to_string()), "{head:?}");
    let mut body = Vec::new();
    conn.reader.read_to_end(&mut body).unwrap();
    assert_eq!(body.len(), 250);
    // Not truncated when the cut is past the end.
    let whole = get(addr, &format!("/api/v1/download/{id}?truncate_at=600"));
    assert_eq!((whole.status, whole.body.len()), (200, 600));
}
