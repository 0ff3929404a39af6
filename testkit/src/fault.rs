//! The client's fault verbs: what no HTTP library sends, on a raw socket. A client that
//! vanishes mid-upload, and bytes as they are (malformed heads, hostile paths, methods a
//! codec rejects). Each uses a fresh connection.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use crate::client::{Body, Request, Response};

const TIMEOUT: Duration = Duration::from_secs(60);

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Sends the head and the first `sent` body bytes, then closes the connection without
/// reading anything: the client vanished mid-upload (or, with `sent` 0 and no body, before
/// the response).
pub fn send_and_abort(addr: SocketAddr, req: &Request, sent: u64) -> io::Result<()> {
    let mut s = connect(addr)?;
    let mut wire = format!("{} {} HTTP/1.1\r\n", req.method, req.path).into_bytes();
    for (k, v) in req.head_headers() {
        wire.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    wire.extend_from_slice(b"\r\n");
    for piece in req.body.pieces(sent) {
        if let Body::Chunked(_) = req.body {
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        }
        wire.extend_from_slice(&piece);
    }
    s.write_all(&wire)?;
    // Give the proxy a moment to read what was sent before the FIN arrives; not needed for
    // correctness (data is read before EOF), only to keep the scenario realistic.
    std::thread::sleep(Duration::from_millis(50));
    s.shutdown(Shutdown::Both)
}

/// Sends `raw` as it is and reads the answer: its head, and a body of the declared length
/// (or up to the close). What Envoy answers bad requests with is never chunked.
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> io::Result<Response> {
    let mut s = connect(addr)?;
    s.write_all(raw)?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response head"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut head = httparse::Response::new(&mut headers);
        let parsed = head.parse(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let httparse::Status::Complete(head_len) = parsed else { continue };
        let headers: Vec<(String, String)> =
            head.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
        let mut resp = Response { status: head.code.unwrap_or(0), headers, body_len: 0, body_head: buf[head_len..].to_vec() };
        if resp.header("transfer-encoding").is_some() {
            return Err(io::Error::other("send_raw reads content-length bodies only"));
        }
        let declared = resp.header("content-length").and_then(|v| v.parse::<usize>().ok());
        while declared.is_none_or(|len| resp.body_head.len() < len) {
            match s.read(&mut chunk)? {
                0 => break,
                n => resp.body_head.extend_from_slice(&chunk[..n]),
            }
        }
        resp.body_len = resp.body_head.len() as u64;
        return Ok(resp);
    }
}
