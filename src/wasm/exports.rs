//! The proxy-wasm ABI 0.2.1 exports, only those routemeter uses. Envoy looks every
//! `proxy_on_*` up by name when it loads the module and skips the ones that are missing, so
//! `proxy_on_context_create`, `proxy_on_response_headers`, `proxy_on_done` and the rest cost
//! nothing per request. Each forwards to the VM's [`Filter`], which owns what a context id
//! means (which configuration a stream belongs to, when a replaced one goes).
//!
//! Every export catches nothing and returns quickly: panics abort the VM (after the panic
//! hook logs why), and nothing here calls an API that panics on a host status.

use std::cell::RefCell;

use super::host_calls::HostCalls;
use super::{decode, imports, logger};
use crate::abi::Action;
use crate::filter::Filter;

thread_local! {
    static FILTER: RefCell<Filter> = RefCell::new(Filter::new());
}

/// Runs `f` on the VM's filter. The host never calls back into these callbacks during one
/// (host calls only call `malloc`), so the borrow cannot fail; if it ever did, the callback
/// is skipped rather than panicking.
fn with_filter(f: impl FnOnce(&mut Filter)) {
    FILTER.with(|filter| {
        if let Ok(mut filter) = filter.try_borrow_mut() {
            f(&mut filter);
        }
    });
}

#[no_mangle]
pub extern "C" fn _initialize() {
    logger::install();
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// How the host hands over data: memory from the Rust allocator, taken back by `imports`.
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut u8 {
    imports::allocate(size)
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root: u32, _vm_configuration_size: usize) -> u32 {
    1
}

/// Accepts every configuration at the ABI level: Envoy 1.40 refuses its whole bootstrap when
/// `on_configure` fails (measured, with FAIL_OPEN too), which would turn a telemetry typo into
/// an outage. A rejected configuration is logged and records nothing.
#[no_mangle]
pub extern "C" fn proxy_on_configure(root: u32, plugin_configuration_size: usize) -> u32 {
    let bytes = match imports::plugin_configuration(plugin_configuration_size) {
        Ok(bytes) => bytes.unwrap_or_default(),
        Err(status) => {
            log::error!("cannot read the plugin configuration (host status {}); routemeter records nothing", status.0);
            return 1;
        }
    };
    let name = imports::property(b"plugin_name").and_then(|n| String::from_utf8(n).ok()).unwrap_or_default();
    with_filter(|filter| match filter.configure(root, &name, &bytes, &HostCalls) {
        Ok(configured) => {
            log::info!("configured: {}", configured.description);
            // The tick flushes what the VM counted, refreshes learned routes, runs the
            // OpenAPI schedule.
            if let Err(status) = imports::set_tick_period_ms(configured.tick_period_ms as u32) {
                log::error!("no tick (host status {}): counts cannot reach Envoy's stats", status.0);
            }
        }
        Err(e) => log::error!("invalid plugin configuration: {e}; routemeter records nothing until it is fixed"),
    });
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root: u32) {
    with_filter(|filter| {
        let Some(fetch) = filter.tick(root, &HostCalls) else { return };
        let headers = [(":method", "GET"), (":path", fetch.path.as_str()), (":authority", fetch.authority.as_str())];
        let timeout = fetch.timeout_ms.min(u64::from(u32::MAX)) as u32;
        let token = imports::http_call(&fetch.cluster, &headers, timeout).map_err(|status| {
            log::warn!("openapi: cannot call cluster {:?} (host status {})", fetch.cluster, status.0);
        });
        filter.openapi_dispatched(root, token, &HostCalls);
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _root: u32,
    token: u32,
    _headers: usize,
    body_size: usize,
    _trailers: usize,
) {
    with_filter(|filter| {
        // Absent on a timeout or reset (Envoy then passes no headers).
        let status = imports::http_call_response_header(":status").and_then(|v| decode::status(&v));
        let body = CallBody { size: body_size, read: 0, chunk: Vec::new(), at: 0 };
        filter.openapi_response(token, (status, body_size), body, &HostCalls);
    });
}

/// The body of the answer to an HTTP call, read from the host in pieces as it is parsed, so
/// that a large document never sits in the VM's memory whole.
struct CallBody {
    size: usize,
    /// Bytes taken from the host so far.
    read: usize,
    chunk: Vec<u8>,
    /// Bytes of `chunk` handed on.
    at: usize,
}

impl std::io::Read for CallBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        const PIECE: usize = 64 << 10;
        if self.at == self.chunk.len() {
            if self.read >= self.size {
                return Ok(0);
            }
            self.chunk = imports::http_call_response_body(self.read, PIECE.min(self.size - self.read))
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            (self.read, self.at) = (self.read + self.chunk.len(), 0);
        }
        let rest = self.chunk.get(self.at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        self.at += n;
        Ok(n)
    }
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    with_filter(|filter| {
        #[cfg(feature = "test-trap")]
        if super::test_trap::asked() {
            super::test_trap::fail(filter);
        }
        filter.request_headers(context, &HostCalls);
    });
    Action::Continue as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context: u32, body_size: usize, _end_of_stream: u32) -> u32 {
    with_filter(|filter| filter.request_body(context, body_size));
    Action::Continue as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(context: u32, body_size: usize, _end_of_stream: u32) -> u32 {
    with_filter(|filter| filter.response_body(context, body_size));
    Action::Continue as u32
}

/// The stream is complete ([`Filter::log`]).
#[no_mangle]
pub extern "C" fn proxy_on_log(context: u32) {
    with_filter(|filter| filter.log(context, &HostCalls));
}

/// A stream's or a root's context goes away ([`Filter::delete`]).
#[no_mangle]
pub extern "C" fn proxy_on_delete(context: u32) {
    with_filter(|filter| filter.delete(context, &HostCalls));
}
