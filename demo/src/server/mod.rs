//! The demo file-conversion service routemeter is tested against, on hyper: its options,
//! start-up and the accept loop. What each endpoint does is in [`routes`].

mod jobs;
mod routes;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use jobs::{JobStore, MAX_JOBS};

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
    pub openapi: Option<Arc<[u8]>>,
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

/// State every connection shares.
struct Shared {
    opts: ServeOptions,
    jobs: JobStore,
}

/// A bound server whose runtime runs on its own thread.
pub struct RunningServer {
    /// The address actually bound (the real port when asked for port 0).
    pub addr: SocketAddr,
    thread: JoinHandle<()>,
}

impl RunningServer {
    /// Blocks while the server runs (until the process ends).
    pub fn wait(self) {
        let _ = self.thread.join();
    }
}

/// Binds `opts.listen` and serves in the background.
pub fn start(opts: ServeOptions) -> std::io::Result<RunningServer> {
    let listener = std::net::TcpListener::bind(opts.listen)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let shared = Arc::new(Shared { opts, jobs: JobStore::new(MAX_JOBS) });
    let thread = std::thread::Builder::new().name("demo".into()).spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => return eprintln!("routemeter-demo: {e}"),
            };
            loop {
                let tcp = match listener.accept().await {
                    Ok((tcp, _)) => tcp,
                    Err(e) => {
                        // Usually out of file descriptors: back off instead of spinning.
                        eprintln!("routemeter-demo: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let service = service_fn(move |req| routes::handle(req, Arc::clone(&shared)));
                // No timer, hence no idle timeout between requests: closing a pooled
                // connection from our side races with Envoy reusing it and shows up as
                // spurious 503s in the very metrics being demonstrated. Envoy's pool decides
                // when idle connections go. Title-case header names, as most servers write them.
                let conn = hyper::server::conn::http1::Builder::new()
                    .title_case_headers(true)
                    .serve_connection(TokioIo::new(tcp), service);
                tokio::spawn(conn);
            }
        })
    })?;
    Ok(RunningServer { addr, thread })
}
