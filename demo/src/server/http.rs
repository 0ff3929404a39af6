//! HTTP/1.x wire format: reading bounded lines, parsing the request head, and writing
//! responses (including bodies too large to hold in memory).

use std::io::{self, BufRead, Write};

use super::query::Query;

/// Upper bound on the request line plus all header lines, so a client cannot make a
/// connection thread buffer without limit.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Size of the buffers used to stream bodies in and out.
pub const IO_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub enum LineError {
    Io(io::Error),
    TooLong,
}

/// Reads one line including its `\n`. `Ok(None)` means the peer closed before sending
/// anything; a close mid-line is an `UnexpectedEof` error.
pub fn read_raw_line<R: BufRead>(r: &mut R, limit: usize) -> Result<Option<Vec<u8>>, LineError> {
    let mut line = Vec::new();
    loop {
        let available = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if available.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            return Err(LineError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let (take, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if line.len() + take > limit {
            return Err(LineError::TooLong);
        }
        line.extend_from_slice(&available[..take]);
        r.consume(take);
        if complete {
            return Ok(Some(line));
        }
    }
}

/// Strips `\r\n` or a bare `\n` (tolerated, as most servers do).
pub fn strip_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path exactly as sent (not percent-decoded: routes and job ids are plain ASCII).
    pub path: String,
    pub query: Query,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub http_minor: u8,
    /// Names lower-cased, values with surrounding whitespace removed.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// `name` must be lower-case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn has_token(&self, header: &str, token: &str) -> bool {
        self.headers_named(header)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// HTTP/1.0 always closes: its keep-alive extension is rare enough that supporting it
    /// is not worth a second set of rules.
    pub fn keep_alive(&self) -> bool {
        self.http_minor >= 1 && !self.has_token("connection", "close")
    }

    pub fn expects_continue(&self) -> bool {
        self.http_minor >= 1 && self.has_token("expect", "100-continue")
    }
}

#[derive(Debug)]
pub enum HeadError {
    /// The connection failed or closed mid-head: nothing useful can be sent back.
    Io,
    Malformed(&'static str),
    UriTooLong,
    HeadersTooLarge,
}

/// Reads a request head. `Ok(None)` is a clean close between requests.
pub fn read_head<R: BufRead>(r: &mut R) -> Result<Option<Request>, HeadError> {
    let mut budget = MAX_HEAD_BYTES;
    // RFC 9112 asks servers to skip empty lines before a request line (some clients send
    // a stray CRLF after a body).
    let request_line = loop {
        let line = match read_raw_line(r, budget) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(None),
            Err(LineError::TooLong) => return Err(HeadError::UriTooLong),
            Err(LineError::Io(_)) => return Err(HeadError::Io),
        };
        budget -= line.len();
        if !strip_eol(&line).is_empty() {
            break line;
        }
    };
    let (method, target, http_minor) = parse_request_line(strip_eol(&request_line))?;
    let (path, raw_query) = target.split_once('?').unwrap_or((target, ""));
    let mut headers = Vec::new();
    loop {
        let line = match read_raw_line(r, budget) {
            Ok(Some(line)) => line,
            Ok(None) => return Err(HeadError::Io),
            Err(LineError::TooLong) => return Err(HeadError::HeadersTooLarge),
            Err(LineError::Io(_)) => return Err(HeadError::Io),
        };
        budget -= line.len();
        let content = strip_eol(&line);
        if content.is_empty() {
            break;
        }
        headers.push(parse_header_line(content)?);
    }
    Ok(Some(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: Query::parse(raw_query),
        http_minor,
        headers,
    }))
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn parse_request_line(line: &[u8]) -> Result<(&str, &str, u8), HeadError> {
    let line =
        std::str::from_utf8(line).map_err(|_| HeadError::Malformed("request line is not UTF-8"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(
            "request line must be: METHOD TARGET HTTP/1.x",
        ));
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(HeadError::Malformed("invalid method"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(HeadError::Malformed(
            "request target must be an absolute path",
        ));
    }
    let minor = match version.strip_prefix("HTTP/1.").map(str::as_bytes) {
        Some([d]) if d.is_ascii_digit() => d - b'0',
        _ => return Err(HeadError::Malformed("unsupported HTTP version")),
    };
    Ok((method, target, minor))
}

fn parse_header_line(line: &[u8]) -> Result<(String, String), HeadError> {
    if line[0] == b' ' || line[0] == b'\t' {
        // Obsolete line folding has been a request-smuggling vector; RFC 9112 allows 400.
        return Err(HeadError::Malformed("folded header line"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(HeadError::Malformed("header line without colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
        return Err(HeadError::Malformed("invalid header name"));
    }
    if value.iter().any(|&b| b == b'\r' || b == 0) {
        return Err(HeadError::Malformed("invalid byte in header value"));
    }
    let value = String::from_utf8_lossy(value);
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    Ok((
        String::from_utf8_lossy(name).to_ascii_lowercase(),
        value.to_string(),
    ))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Bytes(Vec<u8>),
    /// `n` generated bytes, streamed so a large download never needs `n` bytes of memory.
    Generated(u64),
    /// For 204 and 304, which must carry neither content nor a Content-Length.
    None,
    /// Declares `declared` bytes but sends only `sent`, then the connection closes: an
    /// upstream that dies mid-response (`?truncate_at=`).
    CutOff { declared: u64, sent: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Body,
    pub allow: Option<&'static str>,
}

impl Response {
    pub fn json(status: u16, value: serde_json::Value) -> Response {
        let mut bytes = value.to_string().into_bytes();
        bytes.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            body: Body::Bytes(bytes),
            allow: None,
        }
    }

    pub fn error(status: u16, code: &str) -> Response {
        Response::json(status, serde_json::json!({ "error": code }))
    }
}

/// Writes a whole response. `close` adds `Connection: close`; the caller closes.
pub fn write_response<W: Write>(out: &mut W, resp: &Response, close: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        resp.status,
        reason_phrase(resp.status)
    );
    match &resp.body {
        Body::Bytes(b) => push_entity_headers(&mut head, resp.content_type, b.len() as u64),
        Body::Generated(n) | Body::CutOff { declared: n, .. } => push_entity_headers(&mut head, resp.content_type, *n),
        Body::None => {}
    }
    if let Some(allow) = resp.allow {
        head.push_str(&format!("Allow: {allow}\r\n"));
    }
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut head = head.into_bytes();
    match &resp.body {
        Body::Bytes(b) => {
            // One write for head and small body avoids a Nagle/delayed-ACK stall.
            head.extend_from_slice(b);
            out.write_all(&head)?;
        }
        Body::Generated(n) | Body::CutOff { sent: n, .. } => {
            out.write_all(&head)?;
            let filler = [0u8; IO_CHUNK];
            let mut left = *n;
            while left > 0 {
                let step = left.min(IO_CHUNK as u64) as usize;
                out.write_all(&filler[..step])?;
                left -= step as u64;
            }
        }
        Body::None => out.write_all(&head)?,
    }
    out.flush()
}

fn push_entity_headers(head: &mut String, content_type: &str, len: u64) {
    head.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {len}\r\n"
    ));
}

pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        414 => "URI Too Long",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        // Forced statuses can be anything; a class-level phrase keeps the line valid.
        _ => match status / 100 {
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn head(raw: &str) -> Result<Option<Request>, HeadError> {
        read_head(&mut BufReader::with_capacity(3, raw.as_bytes()))
    }

    #[test]
    fn parses_request_line_headers_and_query() {
        let req = head("\r\nPOST /api/v1/upload?filename=a%20b.csv HTTP/1.1\r\nHost: x\r\nX-Y:  spaced \t\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/api/v1/upload");
        assert_eq!(req.query.get("filename"), Some("a b.csv"));
        assert_eq!(req.http_minor, 1);
        assert_eq!(req.header("x-y"), Some("spaced"));
        assert!(req.keep_alive());
    }

    #[test]
    fn connection_rules() {
        let close = head("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!close.keep_alive());
        let old = head("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!old.keep_alive());
        assert!(!old.expects_continue());
        let expect = head("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(expect.expects_continue());
    }

    #[test]
    fn clean_close_is_none() {
        assert!(head("").unwrap().is_none());
    }

    #[test]
    fn rejects_malformed_heads() {
        for raw in [
            "GARBAGE\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "GET http://x/ HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nno colon\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n",
        ] {
            assert!(matches!(head(raw), Err(HeadError::Malformed(_))), "{raw:?}");
        }
    }

    #[test]
    fn enforces_head_limit() {
        let big = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(matches!(head(&big), Err(HeadError::HeadersTooLarge)));
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert!(matches!(head(&long_uri), Err(HeadError::UriTooLong)));
    }

    #[test]
    fn eof_mid_head_is_io_error() {
        assert!(matches!(
            head("GET / HTTP/1.1\r\nHost: x\r\n"),
            Err(HeadError::Io)
        ));
    }

    #[test]
    fn writes_generated_body_and_no_content() {
        let mut out = Vec::new();
        let resp = Response {
            status: 200,
            content_type: "application/octet-stream",
            body: Body::Generated(70_000),
            allow: None,
        };
        write_response(&mut out, &resp, true).unwrap();
        let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 70000\r\nConnection: close\r\n\r\n";
        assert_eq!(&out[..head.len()], head);
        assert_eq!(out.len(), head.len() + 70_000);

        let mut out = Vec::new();
        let resp = Response {
            status: 204,
            content_type: "application/json",
            body: Body::None,
            allow: None,
        };
        write_response(&mut out, &resp, false).unwrap();
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\n\r\n");
    }
}
