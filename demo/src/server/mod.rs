//! The demo file-conversion service routemeter is tested against: its options, start-up,
//! the accept loop, and the per-connection keep-alive loop (one thread per connection).

mod body;
mod http;
mod jobs;
mod query;
mod routes;
mod upload;

use std::io::{BufRead, BufReader, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use http::{write_response, HeadError, Response, IO_CHUNK};
use jobs::{JobStore, MAX_JOBS};
use routes::Next;

/// Once a request has started, a client silent for this long is treated as gone, so a
/// stalled upload cannot hold a thread forever.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to keep draining a client we are closing on, so the kernel does not answer
/// its still-arriving bytes with a reset that would destroy our final response.
const LINGER: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Uploads larger than this get 413 (after the body has been read).
    pub max_upload_bytes: u64,
    /// Sleep before every response; `?delay_ms=` overrides it per request.
    pub delay_ms: u64,
    /// Time from upload to a job being downloadable; `?processing_ms=` overrides it.
    pub processing_ms: u64,
    /// Served at `GET /openapi.json` instead of the demo's own document (tests serve public
    /// API descriptions this way, as FastAPI serves its own).
    pub openapi: Option<std::sync::Arc<[u8]>>,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            max_upload_bytes: 50 * 1024 * 1024,
            delay_ms: 0,
            processing_ms: 0,
            openapi: None,
        }
    }
}

/// State every connection thread shares.
struct Shared {
    opts: ServeOptions,
    jobs: JobStore,
}

/// A bound server whose accept loop runs on its own thread.
pub struct RunningServer {
    /// The address actually bound (the real port when asked for port 0).
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl RunningServer {
    /// Blocks on the accept loop, which runs until the process ends.
    pub fn wait(self) {
        let _ = self.accept.join();
    }
}

/// Binds `opts.listen` and starts accepting connections in the background.
pub fn start(opts: ServeOptions) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind(opts.listen)?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        opts,
        jobs: JobStore::new(MAX_JOBS),
    });
    let accept = thread::Builder::new()
        .name("demo-accept".into())
        .spawn(move || accept_loop(listener, shared))?;
    Ok(RunningServer { addr, accept })
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name("demo-conn".into())
                    .spawn(move || serve_connection(stream, &shared));
                if let Err(e) = spawned {
                    eprintln!("routemeter-demo: cannot start connection thread: {e}");
                }
            }
            Err(e) => {
                // Usually out of file descriptors: back off instead of spinning.
                eprintln!("routemeter-demo: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::with_capacity(IO_CHUNK, read_half);
    let mut writer = stream;
    let mut scratch = vec![0u8; IO_CHUNK];
    loop {
        // No idle timeout between requests: closing a pooled connection from our side
        // races with Envoy reusing it and shows up as spurious 503s in the very metrics
        // being demonstrated. Envoy's pool decides when idle connections go.
        if writer.set_read_timeout(None).is_err() {
            return;
        }
        match reader.fill_buf() {
            Ok([]) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
        if writer.set_read_timeout(Some(REQUEST_READ_TIMEOUT)).is_err() {
            return;
        }
        let next = match http::read_head(&mut reader) {
            Ok(None) | Err(HeadError::Io) => Next::Drop,
            Ok(Some(req)) => routes::handle(&req, &mut reader, &mut writer, &mut scratch, shared),
            Err(HeadError::Malformed(reason)) => refuse(&mut writer, 400, reason),
            Err(HeadError::UriTooLong) => refuse(&mut writer, 414, "request line too long"),
            Err(HeadError::HeadersTooLarge) => {
                refuse(&mut writer, 431, "request header section too large")
            }
        };
        match next {
            Next::KeepAlive => continue,
            Next::Close => return linger_close(&writer, &mut reader, &mut scratch),
            Next::Drop => return,
        }
    }
}

fn refuse(out: &mut TcpStream, status: u16, reason: &str) -> Next {
    let resp = Response::json(
        status,
        serde_json::json!({ "error": "bad_request", "reason": reason }),
    );
    match write_response(out, &resp, true) {
        Ok(()) => Next::Close,
        Err(_) => Next::Drop,
    }
}

/// Half-closes, then discards whatever the client still sends for a short while.
fn linger_close(stream: &TcpStream, reader: &mut impl Read, scratch: &mut [u8]) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    while let Some(left) = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match reader.read(scratch) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
