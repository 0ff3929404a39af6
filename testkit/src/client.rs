//! The HTTP/1.1 client of the tests, the bench and `make run`, on hyper. Every response says
//! exactly how many body bytes arrived, so tests can compare routemeter's numbers with a
//! ledger of what really went over the wire. Requests no library would send (a body cut off
//! mid-way, malformed heads) are the fault verbs in [`crate::fault`].

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;

const TIMEOUT: Duration = Duration::from_secs(60);
const MULTIPART_BOUNDARY: &str = "routemeter-demo-boundary-7d3f";
/// How much of a response body [`Response::body_head`] keeps (JSON answers fit).
const HEAD_KEPT: usize = 4096;
static FILLER: [u8; 64 * 1024] = [b'x'; 64 * 1024];

/// A request body, generated on the fly (never held in memory whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    /// `Content-Length: n` and n bytes.
    Sized(u64),
    /// `Transfer-Encoding: chunked` with these chunk sizes.
    Chunked(Vec<u64>),
    /// `multipart/form-data` with one file part of `size` bytes.
    Multipart {
        filename: String,
        size: u64,
    },
}

impl Body {
    /// Body bytes after chunk framing is removed: what Envoy hands the filter.
    pub fn len(&self) -> u64 {
        self.pieces(u64::MAX).iter().map(|p| p.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `limit` body bytes in the pieces they go out in: one piece per chunk of a
    /// chunked body, so each becomes one HTTP chunk.
    pub(crate) fn pieces(&self, limit: u64) -> Vec<Bytes> {
        let filler = |n: u64| -> Vec<Bytes> {
            let mut out = Vec::new();
            let mut left = n;
            while left > 0 {
                let k = left.min(FILLER.len() as u64) as usize;
                out.push(Bytes::from_static(&FILLER[..k]));
                left -= k as u64;
            }
            out
        };
        let mut pieces = match self {
            Body::Empty => Vec::new(),
            Body::Sized(n) => filler(*n),
            Body::Chunked(chunks) => chunks.iter().map(|&c| Bytes::from(vec![b'x'; c as usize])).collect(),
            Body::Multipart { filename, size } => {
                let head = format!(
                    "--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                );
                let mut p = vec![Bytes::from(head)];
                p.extend(filler(*size));
                p.push(Bytes::from(format!("\r\n--{MULTIPART_BOUNDARY}--\r\n")));
                p
            }
        };
        let mut budget = limit;
        pieces.retain_mut(|p| {
            let keep = (p.len() as u64).min(budget);
            p.truncate(keep as usize);
            budget -= keep;
            keep > 0
        });
        pieces
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Request {
    pub fn new(method: &str, path: &str) -> Request {
        Request { method: method.into(), path: path.into(), headers: Vec::new(), body: Body::Empty }
    }

    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    pub fn post(path: &str, body: Body) -> Request {
        Request { body, ..Request::new("POST", path) }
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Every header the request goes out with, framing included (the fault verbs write the
    /// same head by hand).
    pub(crate) fn head_headers(&self) -> Vec<(String, String)> {
        let mut h = vec![("host".to_string(), "routemeter.test".to_string())];
        match &self.body {
            Body::Empty => {}
            Body::Chunked(_) => h.push(("transfer-encoding".into(), "chunked".into())),
            Body::Sized(_) | Body::Multipart { .. } => h.push(("content-length".into(), self.body.len().to_string())),
        }
        if let Body::Multipart { .. } = self.body {
            h.push(("content-type".into(), format!("multipart/form-data; boundary={MULTIPART_BOUNDARY}")));
        }
        h.extend(self.headers.iter().cloned());
        h
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Body bytes received (after de-chunking).
    pub body_len: u64,
    /// The start of the body (4 KiB; all of it from [`get_text`]).
    pub body_head: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body_head).into_owned()
    }
}

/// A request body hyper sends piece by piece.
struct Pieces {
    pieces: std::vec::IntoIter<Bytes>,
    len: Option<u64>,
}

impl hyper::body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.pieces.next().map(|p| Ok(Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        self.len.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// One keep-alive connection (its own single-threaded runtime: callers are plain threads).
pub struct Connection {
    rt: Runtime,
    sender: SendRequest<Pieces>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let sender = rt.block_on(async {
            let tcp = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect(addr)).await.map_err(other)??;
            tcp.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(other)?;
            tokio::spawn(conn);
            Ok::<_, io::Error>(sender)
        })?;
        Ok(Connection { rt, sender })
    }

    /// Sends a request and reads the final response (interim 1xx responses are skipped).
    pub fn send(&mut self, req: &Request) -> io::Result<Response> {
        self.exchange(req, HEAD_KEPT)
    }

    fn exchange(&mut self, req: &Request, keep: usize) -> io::Result<Response> {
        let mut builder = http::Request::builder().method(req.method.as_bytes()).uri(req.path.as_str());
        for (k, v) in req.head_headers() {
            builder = builder.header(k, v);
        }
        let len = (!matches!(req.body, Body::Chunked(_))).then(|| req.body.len());
        let request = builder.body(Pieces { pieces: req.body.pieces(u64::MAX).into_iter(), len }).map_err(other)?;
        let sender = &mut self.sender;
        let exchange = async move {
            sender.ready().await.map_err(other)?;
            let resp = sender.send_request(request).await.map_err(other)?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let mut out = Response { status, headers, body_len: 0, body_head: Vec::new() };
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.map_err(other)?.into_data() {
                    out.body_len += data.len() as u64;
                    let room = keep.saturating_sub(out.body_head.len());
                    out.body_head.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Ok(out)
        };
        self.rt.block_on(async { tokio::time::timeout(TIMEOUT, exchange).await }).map_err(other)?
    }
}

/// One request on a fresh connection.
pub fn send(addr: SocketAddr, req: &Request) -> io::Result<Response> {
    Connection::open(addr)?.send(req)
}

/// A GET whose whole body is kept, as text (admin pages, Prometheus' API).
pub fn get_text(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    let resp = Connection::open(addr)?.exchange(&Request::get(path), usize::MAX)?;
    Ok((resp.status, String::from_utf8_lossy(&resp.body_head).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_lengths_and_pieces() {
        assert_eq!(Body::Empty.len(), 0);
        assert_eq!(Body::Sized(70_000).len(), 70_000);
        assert_eq!(Body::Sized(70_000).pieces(u64::MAX).iter().map(Bytes::len).collect::<Vec<_>>(), [65_536, 4_464]);
        assert_eq!(Body::Chunked(vec![3, 4, 5]).len(), 12);
        assert_eq!(Body::Chunked(vec![3, 4, 5]).pieces(5).iter().map(Bytes::len).collect::<Vec<_>>(), [3, 2]);
        let m = Body::Multipart { filename: "a.xlsx".into(), size: 100 };
        // 139 bytes of part head, 37 of closing delimiter.
        assert_eq!(m.len(), 139 + 100 + 37);
        assert_eq!(m.pieces(140).iter().map(Bytes::len).collect::<Vec<_>>(), [139, 1]);
    }
}
