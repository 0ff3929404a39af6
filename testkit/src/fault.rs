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

/// Sends `raw` as it is on a fresh connection and reads the answer ([`Raw::read_response`]).
pub fn send_raw(addr: SocketAddr, raw: &[u8]) -> io::Result<Response> {
    let mut conn = Raw::open(addr)?;
    conn.send(raw)?;
    conn.read_response()
}

/// A connection that writes bytes as given and reads answers as they come: for tests of
/// framing itself (interim responses, closes, bodies cut short).
pub struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn open(addr: SocketAddr) -> io::Result<Raw> {
        Ok(Raw { s: connect(addr)?, buf: Vec::new() })
    }

    pub fn send(&mut self, raw: &[u8]) -> io::Result<()> {
        self.s.write_all(raw)
    }

    /// Reads more into the buffer; false at EOF.
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = self.s.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// The next response (an interim 1xx too): its head, and a body of the declared length,
    /// or what arrives before the server closes (a body cut short ends there). What Envoy and
    /// the demo answer bad requests with is never chunked.
    pub fn read_response(&mut self) -> io::Result<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut head = httparse::Response::new(&mut headers);
            let parsed = head.parse(&self.buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let httparse::Status::Complete(head_len) = parsed else {
                if !self.fill()? {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before a response head"));
                }
                continue;
            };
            let headers =
                head.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()));
            let mut resp = Response {
                status: head.code.unwrap_or(0),
                headers: headers.collect(),
                body_len: 0,
                body_head: Vec::new(),
            };
            if resp.header("transfer-encoding").is_some() {
                return Err(io::Error::other("raw reads read content-length bodies only"));
            }
            let declared = resp.header("content-length").and_then(|v| v.parse::<usize>().ok());
            let until_close = declared.is_none() && resp.status >= 200 && ![204, 304].contains(&resp.status);
            let wanted = declared.unwrap_or(if until_close { usize::MAX } else { 0 });
            while self.buf.len() - head_len < wanted && self.fill()? {}
            let end = head_len + wanted.min(self.buf.len() - head_len);
            resp.body_head = self.buf[head_len..end].to_vec();
            resp.body_len = resp.body_head.len() as u64;
            self.buf.drain(..end);
            return Ok(resp);
        }
    }

    /// True when the server has closed its side and sent nothing more.
    pub fn closed(&mut self) -> bool {
        while let Ok(true) = self.fill() {}
        self.buf.is_empty()
    }
}
