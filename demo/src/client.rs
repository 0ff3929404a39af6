//! A small HTTP/1.1 client over raw TCP, for the traffic `make run` sends and for the
//! end-to-end tests. Raw on purpose: it must send what ordinary clients will not (chunked
//! uploads of chosen chunk sizes, a Content-Length that lies, a body cut off mid-way) and
//! report exactly how many bytes went each way, so tests can compare routemeter's numbers
//! with a ledger of what really happened.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

const CHUNK: usize = 64 * 1024;
const TIMEOUT: Duration = Duration::from_secs(60);
const MULTIPART_BOUNDARY: &str = "routemeter-demo-boundary-7d3f";

/// A request body, generated on the fly (never held in memory whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Empty,
    /// `Content-Length: n` and n bytes.
    Sized(u64),
    /// `Transfer-Encoding: chunked` with these chunk sizes.
    Chunked(Vec<u64>),
    /// `multipart/form-data` with one file part of `size` bytes.
    Multipart { filename: String, size: u64 },
}

impl Body {
    /// Body bytes on the wire after chunk framing is removed: what Envoy hands the filter.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Sized(n) => *n,
            Body::Chunked(chunks) => chunks.iter().sum(),
            Body::Multipart { filename, size } => {
                (multipart_head(filename).len() + multipart_tail().len()) as u64 + size
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn multipart_head(filename: &str) -> String {
    format!(
        "--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
}

fn multipart_tail() -> String {
    format!("\r\n--{MULTIPART_BOUNDARY}--\r\n")
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Body bytes received (after de-chunking).
    pub body_len: u64,
    /// The first 4 KiB of the body, for JSON answers.
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

/// One keep-alive connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: SocketAddr) -> io::Result<Connection> {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Connection { stream: BufReader::new(stream) })
    }

    /// Sends a request and reads the final response (interim 1xx responses are skipped).
    /// With `Expect: 100-continue` the body waits for the interim `100 Continue`.
    pub fn send(&mut self, req: &Request) -> io::Result<Response> {
        self.write_head(req, false)?;
        let expects_continue =
            req.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case("100-continue"));
        if expects_continue && !req.body.is_empty() {
            let interim = read_line(&mut self.stream)?;
            if !interim.starts_with("HTTP/1.1 100") {
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("expected 100 Continue, got {interim:?}")));
            }
            while !read_line(&mut self.stream)?.is_empty() {}
        }
        write_body(self.stream.get_mut(), &req.body, u64::MAX)?;
        read_response(&mut self.stream, &req.method)
    }

    /// Sends raw bytes as they are (malformed requests included) and reads the response.
    pub fn send_raw(&mut self, raw: &[u8]) -> io::Result<Response> {
        self.stream.get_mut().write_all(raw)?;
        read_response(&mut self.stream, "")
    }

    /// Sends the head and the first `sent` body bytes, then closes the connection without
    /// reading anything: the client vanished mid-upload.
    pub fn send_and_abort(mut self, req: &Request, sent: u64) -> io::Result<()> {
        self.write_head(req, false)?;
        write_body(self.stream.get_mut(), &req.body, sent)?;
        self.stream.get_mut().flush()?;
        // Give the proxy a moment to read what was sent before the FIN arrives; not needed
        // for correctness (data is read before EOF), only to keep the scenario realistic.
        std::thread::sleep(Duration::from_millis(50));
        self.stream.get_mut().shutdown(Shutdown::Both)
    }

    fn write_head(&mut self, req: &Request, close: bool) -> io::Result<()> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: routemeter.test\r\n", req.method, req.path);
        match &req.body {
            Body::Empty => {}
            Body::Sized(n) => head.push_str(&format!("Content-Length: {n}\r\n")),
            Body::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
            Body::Multipart { .. } => head.push_str(&format!(
                "Content-Type: multipart/form-data; boundary={MULTIPART_BOUNDARY}\r\nContent-Length: {}\r\n",
                req.body.len()
            )),
        }
        for (k, v) in &req.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        self.stream.get_mut().write_all(head.as_bytes())
    }
}

/// One request on a fresh connection.
pub fn send(addr: SocketAddr, req: &Request) -> io::Result<Response> {
    Connection::open(addr)?.send(req)
}

/// Writes at most `limit` body bytes (framing not counted) in 64 KiB pieces.
fn write_body(w: &mut TcpStream, body: &Body, limit: u64) -> io::Result<()> {
    let mut budget = limit;
    match body {
        Body::Empty => Ok(()),
        Body::Sized(n) => write_filler(w, (*n).min(budget)),
        Body::Chunked(chunks) => {
            for &c in chunks {
                let n = c.min(budget);
                if n == 0 {
                    return Ok(());
                }
                w.write_all(format!("{n:x}\r\n").as_bytes())?;
                write_filler(w, n)?;
                w.write_all(b"\r\n")?;
                budget -= n;
            }
            if budget > 0 {
                w.write_all(b"0\r\n\r\n")?;
            }
            Ok(())
        }
        Body::Multipart { filename, size } => {
            let head = multipart_head(filename);
            let tail = multipart_tail();
            let n = (head.len() as u64).min(budget) as usize;
            w.write_all(&head.as_bytes()[..n])?;
            budget -= n as u64;
            let n = (*size).min(budget);
            write_filler(w, n)?;
            budget -= n;
            let n = (tail.len() as u64).min(budget) as usize;
            w.write_all(&tail.as_bytes()[..n])
        }
    }
}

fn write_filler(w: &mut TcpStream, mut n: u64) -> io::Result<()> {
    let block = [b'x'; CHUNK];
    while n > 0 {
        let k = n.min(CHUNK as u64) as usize;
        w.write_all(&block[..k])?;
        n -= k as u64;
    }
    Ok(())
}

fn read_line(r: &mut impl BufRead) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn read_response(r: &mut BufReader<TcpStream>, method: &str) -> io::Result<Response> {
    loop {
        let status_line = read_line(r)?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad status line {status_line:?}")))?;
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        if (100..200).contains(&status) {
            continue;
        }
        let mut resp = Response { status, headers, body_len: 0, body_head: Vec::new() };
        let no_body = method == "HEAD" || status == 204 || status == 304;
        if !no_body {
            read_body(r, &mut resp)?;
        }
        return Ok(resp);
    }
}

fn read_body(r: &mut BufReader<TcpStream>, resp: &mut Response) -> io::Result<()> {
    if resp.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let size_line = read_line(r)?;
            let size = u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                while !read_line(r)?.is_empty() {}
                return Ok(());
            }
            read_into(r, resp, Some(size))?;
            read_line(r)?;
        }
    } else {
        // Without a length the body runs until the server closes.
        let len = resp.header("content-length").and_then(|v| v.parse::<u64>().ok());
        read_into(r, resp, len)
    }
}

/// Reads `len` body bytes (or up to EOF when `None`), counting them and keeping the first 4 KiB.
fn read_into(r: &mut BufReader<TcpStream>, resp: &mut Response, len: Option<u64>) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut left = len.unwrap_or(u64::MAX);
    while left > 0 {
        let n = r.read(&mut buf[..left.min(CHUNK as u64) as usize])?;
        if n == 0 {
            return match len {
                None => Ok(()),
                Some(_) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut off")),
            };
        }
        resp.body_len += n as u64;
        let room = 4096usize.saturating_sub(resp.body_head.len());
        resp.body_head.extend_from_slice(&buf[..n.min(room)]);
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_lengths() {
        assert_eq!(Body::Empty.len(), 0);
        assert_eq!(Body::Sized(7).len(), 7);
        assert_eq!(Body::Chunked(vec![3, 4, 5]).len(), 12);
        let m = Body::Multipart { filename: "a.xlsx".into(), size: 100 };
        assert_eq!(m.len(), (multipart_head("a.xlsx").len() + multipart_tail().len() + 100) as u64);
        assert_eq!(multipart_head("a.xlsx").len(), 139);
        assert_eq!(multipart_tail().len(), 37);
    }
}
