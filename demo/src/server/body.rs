//! Request bodies: choosing the framing (Content-Length or chunked), decoding chunked
//! transfer coding, and draining a body in fixed-size pieces while counting its bytes.

use std::io::{self, BufRead, Read};

use super::http::{read_raw_line, strip_eol, LineError, Request};

/// Chunk-size lines are tiny; extensions beyond this are an attack, not a client.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

impl Framing {
    pub fn has_body(self) -> bool {
        self != Framing::Length(0)
    }
}

/// Works out how the request body is delimited. An error means the body's end cannot be
/// found, so the connection cannot be reused.
pub fn framing(req: &Request) -> Result<Framing, &'static str> {
    let codings: Vec<String> = req
        .headers_named("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect();
    let lengths: Vec<&str> = req
        .headers_named("content-length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !codings.is_empty() {
        // Both headers at once is the classic request-smuggling shape: refuse it.
        if !lengths.is_empty() {
            return Err("both Transfer-Encoding and Content-Length");
        }
        let chunked = codings.iter().filter(|c| *c == "chunked").count();
        if chunked != 1 || codings.last().map(String::as_str) != Some("chunked") {
            return Err("Transfer-Encoding must end with chunked");
        }
        return Ok(Framing::Chunked);
    }
    let Some(first) = lengths.first() else {
        return Ok(Framing::Length(0));
    };
    if lengths.iter().any(|l| l != first) {
        return Err("conflicting Content-Length values");
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid Content-Length");
    }
    first
        .parse()
        .map(Framing::Length)
        .map_err(|_| "invalid Content-Length")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers,
    Done,
}

/// Yields the decoded body bytes. Malformed chunked coding is `InvalidData`; the peer
/// closing early is `UnexpectedEof`.
pub struct BodyReader<'a, R> {
    inner: &'a mut R,
    state: State,
    trailer_bytes: usize,
}

impl<'a, R: BufRead> BodyReader<'a, R> {
    pub fn new(inner: &'a mut R, framing: Framing) -> Self {
        let state = match framing {
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
        };
        BodyReader {
            inner,
            state,
            trailer_bytes: 0,
        }
    }

    fn line(&mut self) -> io::Result<Vec<u8>> {
        match read_raw_line(self.inner, MAX_CHUNK_LINE) {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(io::ErrorKind::UnexpectedEof.into()),
            Err(LineError::TooLong) => Err(invalid("chunk line too long")),
            Err(LineError::Io(e)) => Err(e),
        }
    }
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Parses `1a;name=value` (extensions are accepted and ignored).
fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let size = line.split(|&b| b == b';').next().unwrap_or(&[]);
    let size = match size.iter().rposition(|&b| b != b' ' && b != b'\t') {
        Some(end) => &size[..=end],
        None => &[][..],
    };
    if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid("invalid chunk size"));
    }
    let digits = std::str::from_utf8(size).map_err(|_| invalid("invalid chunk size"))?;
    u64::from_str_radix(digits, 16).map_err(|_| invalid("invalid chunk size"))
}

impl<R: BufRead> Read for BodyReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Done | State::Length(0) => {
                    self.state = State::Done;
                    return Ok(0);
                }
                State::Length(left) | State::ChunkData(left) => {
                    let want = left.min(buf.len() as u64) as usize;
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let left = left - n as u64;
                    self.state = match self.state {
                        State::Length(_) => State::Length(left),
                        _ if left == 0 => State::ChunkDataEnd,
                        _ => State::ChunkData(left),
                    };
                    return Ok(n);
                }
                State::ChunkSize => {
                    let line = self.line()?;
                    let size = parse_chunk_size(strip_eol(&line))?;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkDataEnd => {
                    if !strip_eol(&self.line()?).is_empty() {
                        return Err(invalid("chunk data longer than its size"));
                    }
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let line = self.line()?;
                    self.trailer_bytes += line.len();
                    if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err(invalid("trailers too large"));
                    }
                    if strip_eol(&line).is_empty() {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    pub bytes: u64,
    /// Reading stopped because the body passed the cap; the rest is still unread.
    pub over_cap: bool,
}

/// Reads `body` to its end through `buf`, handing each piece to `on_chunk`, and stops
/// once `cap + 1` bytes have arrived (never more, so the count does not depend on how
/// the peer's data happened to be split into reads).
pub fn consume<R: Read>(
    body: &mut R,
    buf: &mut [u8],
    cap: u64,
    mut on_chunk: impl FnMut(&[u8]),
) -> io::Result<Consumed> {
    let mut bytes = 0u64;
    loop {
        let room = cap.saturating_sub(bytes).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = match body.read(&mut buf[..want]) {
            Ok(0) => {
                return Ok(Consumed {
                    bytes,
                    over_cap: false,
                })
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        bytes = bytes.saturating_add(n as u64);
        on_chunk(&buf[..n]);
        if bytes > cap {
            return Ok(Consumed {
                bytes,
                over_cap: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    /// Decodes with a 1-byte BufReader so every line and chunk arrives split across reads.
    fn decode_split(raw: &[u8], framing: Framing) -> (io::Result<Vec<u8>>, Vec<u8>) {
        let mut src = BufReader::with_capacity(1, raw);
        let mut out = Vec::new();
        let res = BodyReader::new(&mut src, framing)
            .read_to_end(&mut out)
            .map(|_| out);
        let mut rest = Vec::new();
        src.read_to_end(&mut rest).unwrap();
        (res, rest)
    }

    #[test]
    fn decodes_chunks_with_extensions_and_trailers() {
        let raw = b"5;name=\"v\"\r\nhello\r\n6 ; ext\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\nNEXT";
        let (body, rest) = decode_split(raw, Framing::Chunked);
        assert_eq!(body.unwrap(), b"hello world0123456789");
        assert_eq!(rest, b"NEXT");
    }

    #[test]
    fn decodes_chunks_from_one_buffer_too() {
        let raw = b"3\r\nabc\r\n0\r\n\r\n";
        let mut src = BufReader::new(&raw[..]);
        let mut out = Vec::new();
        BodyReader::new(&mut src, Framing::Chunked)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abc");
    }

    #[test]
    fn bad_chunk_encodings_are_invalid_data() {
        for raw in [
            &b"zz\r\nabc\r\n0\r\n\r\n"[..],
            b"\r\nabc\r\n0\r\n\r\n",
            b"3\r\nabcd\r\n0\r\n\r\n",
            b"-3\r\nabc\r\n0\r\n\r\n",
            b"0x3\r\nabc\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
        ] {
            let (body, _) = decode_split(raw, Framing::Chunked);
            assert_eq!(
                body.unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn truncated_bodies_are_unexpected_eof() {
        for (raw, framing) in [
            (&b"5\r\nhel"[..], Framing::Chunked),
            (b"5\r\nhello\r\n", Framing::Chunked),
            (b"abc", Framing::Length(10)),
        ] {
            let (body, _) = decode_split(raw, framing);
            assert_eq!(
                body.unwrap_err().kind(),
                io::ErrorKind::UnexpectedEof,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn content_length_stops_at_length() {
        let (body, rest) = decode_split(b"abcdefGET", Framing::Length(6));
        assert_eq!(body.unwrap(), b"abcdef");
        assert_eq!(rest, b"GET");
    }

    #[test]
    fn consume_counts_and_caps() {
        let data = vec![7u8; 10_000];
        let mut buf = [0u8; 1024];
        let mut seen = 0;
        let c = consume(&mut &data[..], &mut buf, 20_000, |c| seen += c.len()).unwrap();
        assert_eq!(
            c,
            Consumed {
                bytes: 10_000,
                over_cap: false
            }
        );
        assert_eq!(seen, 10_000);
        let c = consume(&mut &data[..], &mut buf, 2_000, |_| {}).unwrap();
        assert_eq!(
            c,
            Consumed {
                bytes: 2_001,
                over_cap: true
            }
        );
    }

    fn req(headers: &[(&str, &str)]) -> Request {
        Request {
            method: "POST".into(),
            path: "/".into(),
            query: Default::default(),
            http_minor: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn framing_rules() {
        assert_eq!(framing(&req(&[])), Ok(Framing::Length(0)));
        assert_eq!(
            framing(&req(&[("content-length", "42")])),
            Ok(Framing::Length(42))
        );
        assert_eq!(
            framing(&req(&[("content-length", "42, 42")])),
            Ok(Framing::Length(42))
        );
        assert_eq!(
            framing(&req(&[("transfer-encoding", "Chunked")])),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            framing(&req(&[("transfer-encoding", "gzip, chunked")])),
            Ok(Framing::Chunked)
        );
        for bad in [
            vec![("content-length", "4"), ("content-length", "5")],
            vec![("content-length", "+5")],
            vec![("content-length", "99999999999999999999999")],
            vec![("transfer-encoding", "gzip")],
            vec![("transfer-encoding", "chunked, chunked")],
            vec![("transfer-encoding", "chunked"), ("content-length", "3")],
        ] {
            assert!(framing(&req(&bad)).is_err(), "{bad:?}");
        }
    }
}
