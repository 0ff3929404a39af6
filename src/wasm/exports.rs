//! The proxy-wasm ABI 0.2.1 exports, only those routemeter uses. Envoy looks every
//! `proxy_on_*` up by name when it loads the module and skips the ones that are missing, so
//! `proxy_on_context_create`, `proxy_on_response_headers`, `proxy_on_done` and the rest cost
//! nothing per request.
//!
//! Without `proxy_on_context_create` a stream is known from its first callback on, and the
//! module is not told which root context (plugin configuration) it belongs to. A new
//! configuration in a running VM is how Envoy applies an update (ECDS, Istio's WasmPlugin):
//! the new root context is configured while the old one still finishes its streams. So a
//! stream belongs to the newest configuration when it starts and keeps that one; an older
//! configuration flushes what it counted when its root context goes, and again after each of
//! its streams that finishes later, and is dropped with its last stream. (Two listeners that
//! share a `vm_id` with different configurations would have all new streams recorded with the
//! newest: give each configuration its own `vm_id`.)
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

/// One configured root context.
struct Root {
    id: u32,
    /// `None` when its configuration was rejected: its streams pass through unrecorded.
    plugin: Option<Plugin>,
    /// Its root context is gone; it lives on only for streams that started with it.
    retired: bool,
}

/// A stream: the root context it started with, and what it has seen.
#[derive(Default)]
struct Stream {
    root: u32,
    recorder: StreamRecorder,
}

#[derive(Default)]
struct Vm {
    /// Oldest first; new streams start with the last.
    roots: Vec<Root>,
    /// Streams by context id, from their first callback to `proxy_on_delete`.
    streams: HashMap<u32, Stream, BuildHasherDefault<ContextIds>>,
}

impl Vm {
    fn root(&mut self, id: u32) -> Option<&mut Root> {
        self.roots.iter_mut().find(|r| r.id == id)
    }

    /// The stream `context`, new ones with the newest configuration, and its root's plugin.
    fn stream(&mut self, context: u32) -> Option<(&mut Stream, &mut Root)> {
        let newest = self.roots.last()?.id;
        let stream = self.streams.entry(context).or_insert_with(|| Stream { root: newest, ..Stream::default() });
        let root = self.roots.iter_mut().find(|r| r.id == stream.root)?;
        Some((stream, root))
    }

    /// Drops a retired root once no stream started with it is left.
    fn drop_if_done(&mut self, root: u32) {
        if !self.streams.values().any(|s| s.root == root) {
            self.roots.retain(|r| !(r.id == root && r.retired));
        }
    }
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
        // A VM configured again has taken over part of the series list already.
        let taken = vm.roots.iter().filter_map(|r| r.plugin.as_ref()).map(Plugin::series_taken).max().unwrap_or(0);
        let plugin = match plugin::configure(&bytes, taken, &HostCalls) {
            Ok(plugin) => {
                log::info!("configured: {}", plugin.describe());
                // The tick flushes what the VM counted, refreshes learned routes, runs the
                // OpenAPI schedule.
                if let Err(status) = abi::set_tick_period_ms(plugin.tick_period_ms() as u32) {
                    log::error!("no tick (host status {}): counts cannot reach Envoy's stats", status.0);
                }
                Some(plugin)
            }
            Err(e) => {
                log::error!("invalid plugin configuration: {e}; routemeter records nothing until it is fixed");
                None
            }
        };
        match vm.root(root) {
            // The same root context configured again: what the old plugin counted goes first.
            Some(known) => {
                if let Some(old) = &mut known.plugin {
                    old.stop(&HostCalls);
                }
                known.plugin = plugin;
            }
            None => vm.roots.push(Root { id: root, plugin, retired: false }),
        }
    });
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root: u32) {
    with_vm(|vm| {
        let Some(Root { plugin: Some(plugin), .. }) = vm.root(root) else { return };
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
    root: u32,
    _token: u32,
    _headers: usize,
    body_size: usize,
    _trailers: usize,
) {
    with_vm(|vm| {
        let Some(Root { plugin: Some(plugin), .. }) = vm.root(root) else { return };
        let now = abi::now_nanos().unwrap_or(0);
        // Absent on a timeout or reset (Envoy then passes no headers).
        let status = abi::http_call_response_header(":status").and_then(|v| decode::status(&v));
        plugin.openapi_response(now, status, body_size, || abi::http_call_response_body(body_size), &HostCalls);
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    with_vm(|vm| {
        #[cfg(feature = "test-trap")]
        if super::test_trap::asked() {
            super::test_trap::fail(
                vm.roots.iter().filter_map(|r| r.plugin.as_ref()),
                vm.streams.values().filter(|s| s.recorder.holds_gauge()).count(),
            );
        }
        let Some((stream, Root { plugin: Some(plugin), .. })) = vm.stream(context) else { return };
        stream.recorder.on_request_headers(plugin, &HostCalls);
    });
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_request_body(context: u32, body_size: usize, _end_of_stream: u32) -> u32 {
    with_vm(|vm| {
        if let Some(stream) = vm.streams.get_mut(&context) {
            stream.recorder.on_request_body(body_size);
        }
    });
    CONTINUE
}

#[no_mangle]
pub extern "C" fn proxy_on_response_body(context: u32, body_size: usize, _end_of_stream: u32) -> u32 {
    with_vm(|vm| {
        if let Some(stream) = vm.streams.get_mut(&context) {
            stream.recorder.on_response_body(body_size);
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
        let Some((stream, Root { plugin: Some(plugin), retired, .. })) = vm.stream(context) else { return };
        stream.recorder.on_log(plugin, &HostCalls);
        // A configuration whose root context is gone has no tick: flush now.
        if *retired {
            plugin.flush(&HostCalls);
        }
    });
}

/// A stream's context goes away; or a root context: its configuration was replaced, or the
/// VM is stopping (module update, shutdown). What it counted is flushed, so a reload loses
/// nothing; it stays for streams that started with it.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context: u32) {
    with_vm(|vm| {
        if let Some(root) = vm.root(context) {
            if let Some(plugin) = &mut root.plugin {
                plugin.stop(&HostCalls);
            }
            root.retired = true;
            vm.drop_if_done(context);
        } else if let Some(stream) = vm.streams.remove(&context) {
            // Only a retired configuration is looked after (a scan of the streams): the common
            // case costs one comparison per root.
            if vm.roots.iter().any(|r| r.id == stream.root && r.retired) {
                vm.drop_if_done(stream.root);
            }
        }
    });
}
