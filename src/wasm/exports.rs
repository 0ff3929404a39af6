//! The proxy-wasm ABI 0.2.1 exports, only those routemeter uses. Envoy looks every
//! `proxy_on_*` up by name when it loads the module and skips the ones that are missing, so
//! `proxy_on_context_create`, `proxy_on_response_headers`, `proxy_on_done` and the rest cost
//! nothing per request.
//!
//! Without `proxy_on_context_create` a stream is known from its first callback on; without
//! it the module also cannot tell which root context (plugin configuration) a stream belongs
//! to, so one VM serves one configuration: a second, different configuration in the same VM
//! (the same `vm_id`) is refused with an error in the log (give it its own `vm_id`).
//!
//! Every export catches nothing and returns quickly: panics abort the VM (after the panic
//! hook logs why), and nothing here calls an API that panics on a host status.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::host_calls::HostCalls;
use super::{abi, decode, logger};
use crate::plugin::{self, Plugin};
use crate::stream::StreamRecorder;

/// `Action::Continue`: routemeter never pauses a stream.
const CONTINUE: u32 = 0;

#[derive(Default)]
struct Vm {
    /// The root context whose configuration the plugin runs.
    root: Option<u32>,
    /// Its configuration, to tell a second root context's apart.
    config: Vec<u8>,
    /// `None` until a configuration is accepted; streams then pass through unrecorded.
    plugin: Option<Plugin>,
    /// Streams by context id, from their first callback to `proxy_on_delete`.
    streams: HashMap<u32, StreamRecorder, BuildHasherDefault<ContextIds>>,
}

/// Context ids are small sequential integers: hashing them is wasted work.
#[derive(Default)]
struct ContextIds(u64);

impl Hasher for ContextIds {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

thread_local! {
    static VM: RefCell<Vm> = RefCell::new(Vm::default());
}

/// Runs `f` on the VM's state. The host never calls back into these callbacks during one
/// (host calls only call `malloc`), so the borrow cannot fail; if it ever did, the callback
/// is skipped rather than panicking.
fn with_vm(f: impl FnOnce(&mut Vm)) {
    VM.with(|vm| {
        if let Ok(mut vm) = vm.try_borrow_mut() {
            f(&mut vm);
        }
    });
}

#[no_mangle]
pub extern "C" fn _initialize() {
    logger::install();
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// How the host hands over data: memory from the Rust allocator, taken back by `abi`.
#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut u8 {
    abi::allocate(size)
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
    let bytes = match abi::plugin_configuration(plugin_configuration_size) {
        Ok(bytes) => bytes.unwrap_or_default(),
        Err(status) => {
            log::error!("cannot read the plugin configuration (host status {}); routemeter records nothing", status.0);
            return 1;
        }
    };
    with_vm(|vm| {
        if vm.root.is_some_and(|r| r != root) {
            if bytes != vm.config {
                log::error!(
                    "invalid plugin configuration: a second, different routemeter configuration shares this VM; \
                     give each configuration its own vm_id (this one is ignored, the first stays in use)"
                );
            }
            return;
        }
        match plugin::configure(&bytes, &HostCalls) {
            Ok(plugin) => {
                log::info!("configured: {}", plugin.describe());
                // The tick flushes what the VM counted, refreshes learned routes, runs the
                // OpenAPI schedule.
                if let Err(status) = abi::set_tick_period_ms(plugin.tick_period_ms() as u32) {
                    log::error!("no tick (host status {}): counts cannot reach Envoy's stats", status.0);
                }
                vm.plugin = Some(plugin);
            }
            Err(e) => {
                log::error!("invalid plugin configuration: {e}; routemeter records nothing until it is fixed");
                vm.plugin = None;
            }
        }
        vm.root = Some(root);
        vm.config = bytes;
    });
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(_root: u32) {
    with_vm(|vm| {
        let Some(plugin) = &mut vm.plugin else { return };
        let now = abi::now_nanos();
        let Some(fetch) = plugin.tick(now, &HostCalls) else { return };
        let headers = [(":method", "GET"), (":path", fetch.path.as_str()), (":authority", fetch.authority.as_str())];
        let timeout = fetch.timeout_ms.min(u64::from(u32::MAX)) as u32;
        if let Err(status) = abi::http_call(&fetch.cluster, &headers, timeout) {
            log::warn!("openapi: cannot call cluster {:?} (host status {})", fetch.cluster, status.0);
            plugin.openapi_dispatch_failed(now.unwrap_or(0), &HostCalls);
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    _root: u32,
    _token: u32,
    _headers: usize,
    body_size: usize,
    _trailers: usize,
) {
    with_vm(|vm| {
        let Some(plugin) = &mut vm.plugin else { return };
        let now = abi::now_nanos().unwrap_or(0);
        // Absent on a timeout or reset (Envoy then passes no headers).
        let status = abi::http_call_response_header(":status").and_then(|v| decode::status(&v));
        plugin.openapi_response(now, status, body_size, || abi::http_call_response_body(body_size), &HostCalls);
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    with_vm(|vm| {
        let Vm { plugin: Some(plugin), streams, .. } = vm else { return };
        streams.entry(context).or_default().on_request_headers(plugin, &HostCalls);
    });
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context: u32, body_size: usize, _end_of_stream: u32) -> u32 {
    with_vm(|vm| {
        if let Some(stream) = vm.streams.get_mut(&context) {
            stream.on_request_body(body_size);
        }
    });
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(context: u32, body_size: usize, _end_of_stream: u32) -> u32 {
    with_vm(|vm| {
        if let Some(stream) = vm.streams.get_mut(&context) {
            stream.on_response_body(body_size);
        }
    });
    CONTINUE
}

/// The stream is complete. A stream first seen here (a local reply of an earlier filter, a
/// request the codec refused) is counted too; its state stays until `proxy_on_delete` so a
/// second `on_log` cannot count it again.
#[no_mangle]
pub extern "C" fn proxy_on_log(context: u32) {
    with_vm(|vm| {
        let Vm { plugin: Some(plugin), streams, .. } = vm else { return };
        streams.entry(context).or_default().on_log(plugin, &HostCalls);
    });
}

/// A stream's context goes away; for the root context, the VM is stopping (reconfiguration,
/// module update, shutdown): what it counted is flushed, so a reload loses nothing.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context: u32) {
    with_vm(|vm| {
        if vm.root == Some(context) {
            if let Some(plugin) = &mut vm.plugin {
                plugin.stop(&HostCalls);
            }
            return;
        }
        vm.streams.remove(&context);
    });
}
