//! The hooks Envoy calls, each forwarded to the one [`Filter`] of the process. Envoy 1.40
//! refuses a module that lacks any of 21 hooks, so the ones a metrics filter never needs
//! (callouts, per-filter scheduler, watermarks) are here too and do nothing.
//!
//! Every hook catches panics: unwinding into Envoy is undefined behaviour and an abort
//! takes the proxy down. A hook that panics lets its request through unrecorded; a panic
//! with the lock held leaves the state as it was when it happened (the next hook carries on
//! with it: the core's state is valid between any two of its calls).
//!
//! Workers are threads of one process, so the filter is one state for all of them (one
//! "VM"): learned routes are learned once, and streams take a short lock at request
//! headers and at completion. Body hooks take nothing: sizes are Envoy's, at completion.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{LazyLock, Mutex, PoisonError};

use super::abi::{attribute, Buffer, ConfigEnvoy, FilterEnvoy, Header, CONTINUE};
use super::callout::{self, Chunks};
use super::host_calls::Calls;
use super::metrics::Metrics;
use super::shared_data::SharedData;
use super::{logger, pin, ticker};
use crate::config::Config;
use crate::filter::Filter;

struct Module {
    filter: Filter,
    metrics: RefCell<Metrics>,
    shared: RefCell<SharedData>,
}

static MODULE: LazyLock<Mutex<Module>> = LazyLock::new(|| {
    Mutex::new(Module { filter: Filter::new(), metrics: RefCell::default(), shared: RefCell::default() })
});

/// Context ids: streams count up from 1, configurations down from `u32::MAX`, so that a
/// stream id never names a configuration (the core tells them apart by id).
static NEXT_STREAM: AtomicU32 = AtomicU32::new(1);
static NEXT_ROOT: AtomicU32 = AtomicU32::new(u32::MAX);
const STREAM_IDS: u32 = 1 << 31;

fn next_stream() -> u32 {
    let step = |id: u32| Some(if id + 1 >= STREAM_IDS { 1 } else { id + 1 });
    NEXT_STREAM.fetch_update(Ordering::Relaxed, Ordering::Relaxed, step).unwrap_or(1)
}

/// The stream's id, made unique among the streams the filter holds (after 2^31 streams the
/// ids wrap; a long-lived stream may still hold one). Under the lock, at the stream's first
/// use of the filter.
fn claim(s: &mut NativeStream, filter: &Filter) -> u32 {
    if !s.claimed {
        while filter.has_stream(s.context) {
            s.context = next_stream();
        }
        s.claimed = true;
    }
    s.context
}

/// A configuration as Envoy holds it (our pointer, returned by `config_new`).
struct NativeConfig {
    root: u32,
    name: String,
}

/// A stream as Envoy holds it.
struct NativeStream {
    context: u32,
    root: u32,
    config: *const NativeConfig,
    /// Deleted from the filter at completion (its destroy then has nothing to do).
    done: bool,
    /// Its id is checked unique ([`claim`]).
    claimed: bool,
}

/// Runs `f` with the filter and a host for (`root`, `plugin`, `stream`); `default` if it
/// panics.
fn run<R>(default: R, f: impl FnOnce(&mut Filter, &Calls) -> R, at: (u32, &str, Option<FilterEnvoy>)) -> R {
    catch_unwind(AssertUnwindSafe(|| {
        let mut guard = MODULE.lock().unwrap_or_else(PoisonError::into_inner);
        let Module { filter, metrics, shared } = &mut *guard;
        let calls = Calls { stream: at.2, root: at.0, plugin: at.1, metrics, shared };
        f(filter, &calls)
    }))
    .unwrap_or(default)
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    let _ = catch_unwind(logger::install);
    pin::in_memory();
    c"v0.2.0".as_ptr()
}

/// Accepts every configuration, as the Wasm build does: a rejected one is logged, counted
/// (`routemeter_config_invalid`) and records nothing; it does not fail the listener.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    envoy: ConfigEnvoy,
    name: Buffer,
    config: Buffer,
) -> *const c_void {
    let made = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: Envoy's buffers for this hook.
        let (name, config) = unsafe { (name.to_vec(), config.to_vec()) };
        let name = String::from_utf8_lossy(&name).into_owned();
        let root = NEXT_ROOT.fetch_sub(1, Ordering::Relaxed);
        // Every shape the configuration can publish, now or never (Envoy freezes them).
        let parsed = Config::from_json(&config).or_else(|_| Config::from_json(b"{}"));
        let shapes = parsed.map(|c| c.series_shapes()).unwrap_or_default();
        let configured = run(
            None,
            |filter, calls| {
                calls.metrics.borrow_mut().add_configuration(root, envoy, &name, shapes);
                Some(filter.configure(root, &name, &config, calls))
            },
            (root, &name, None),
        );
        match configured {
            Some(Ok(c)) => {
                log::info!("configured: {}", c.description);
                ticker::start(root, envoy, c.tick_period_ms);
            }
            Some(Err(e)) => {
                log::error!("invalid plugin configuration: {e}; routemeter records nothing until it is fixed")
            }
            None => log::error!("configuring failed; routemeter records nothing"),
        }
        Box::into_raw(Box::new(NativeConfig { root, name })) as *const c_void
    }));
    made.unwrap_or(std::ptr::null())
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_destroy(config: *const c_void) {
    let _ = catch_unwind(|| {
        if config.is_null() {
            return;
        }
        // SAFETY: ours, from `config_new`; Envoy destroys it once.
        let config = unsafe { Box::from_raw(config as *mut NativeConfig) };
        ticker::stop(config.root);
        // Its series move to the configuration that replaced it; then it flushes and goes.
        run(
            (),
            |filter, calls| {
                calls.metrics.borrow_mut().remove_configuration(config.root);
                // Envoy cancels its callouts without an answer: as failed fetches, so that
                // the configuration is not kept waiting for one.
                for token in callout::abandoned(config.root) {
                    filter.openapi_response(token, (None, 0), std::io::empty(), calls);
                }
                filter.delete(config.root, calls);
            },
            (config.root, &config.name, None),
        );
    });
}

/// The tick ([`ticker`]), on Envoy's main thread.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_scheduled(
    envoy: ConfigEnvoy,
    config: *const c_void,
    _event: u64,
) {
    let _ = catch_unwind(|| {
        // SAFETY: ours, alive while Envoy schedules for it.
        let Some(config) = (unsafe { (config as *const NativeConfig).as_ref() }) else { return };
        run(
            (),
            |filter, calls| {
                if let Some(fetch) = filter.tick(config.root, calls) {
                    let token = callout::send(envoy, config.root, &fetch);
                    filter.openapi_dispatched(config.root, token, calls);
                }
            },
            (config.root, &config.name, None),
        );
    });
}

/// The answer to the OpenAPI fetch (main thread): headers and body chunks are Envoy's, for
/// this hook only; the core reads the document from them as it parses.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_http_callout_done(
    _envoy: ConfigEnvoy,
    config: *const c_void,
    id: u64,
    result: u32,
    headers: *const Header,
    headers_len: usize,
    chunks: *const Buffer,
    chunks_len: usize,
) {
    let _ = catch_unwind(|| {
        // SAFETY: ours, alive while Envoy answers its callouts.
        let Some(config) = (unsafe { (config as *const NativeConfig).as_ref() }) else { return };
        // SAFETY: Envoy's headers and chunks, for this hook.
        let (status, body) =
            unsafe { (callout::status(result, headers, headers_len), Chunks::new(chunks, chunks_len)) };
        let Some(token) = callout::answered(config.root, id) else { return };
        run(
            (),
            |filter, calls| filter.openapi_response(token, (status, body.total()), body, calls),
            (config.root, &config.name, None),
        );
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(config: *const c_void, _envoy: FilterEnvoy) -> *const c_void {
    let made = catch_unwind(|| {
        // SAFETY: ours; Envoy keeps the configuration alive while its streams run.
        let root = unsafe { (config as *const NativeConfig).as_ref() }.map_or(0, |c| c.root);
        let config = config as *const NativeConfig;
        let stream = NativeStream { context: next_stream(), root, config, done: false, claimed: false };
        Box::into_raw(Box::new(stream)) as *const c_void
    });
    made.unwrap_or(std::ptr::null())
}

/// The stream behind Envoy's pointer, and its configuration's plugin name.
///
/// # Safety
/// `stream` is ours, from `filter_new`, not yet destroyed.
unsafe fn stream<'a>(stream: *const c_void) -> Option<(&'a mut NativeStream, &'a str)> {
    let stream = (stream as *mut NativeStream).as_mut()?;
    let name = stream.config.as_ref().map_or("", |c| c.name.as_str());
    Some((stream, name))
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_headers(
    envoy: FilterEnvoy,
    filter: *const c_void,
    _end_of_stream: bool,
) -> u32 {
    let _ = catch_unwind(|| {
        // SAFETY: ours, during one of its hooks.
        let Some((s, plugin)) = (unsafe { stream(filter) }) else { return };
        let root = s.root;
        run(
            (),
            |filter, calls| {
                #[cfg(feature = "test-trap")]
                test_trap(calls);
                let context = claim(s, filter);
                filter.request_headers(context, calls)
            },
            (root, plugin, Some(envoy)),
        );
    });
    CONTINUE
}

/// Test builds only (`make trap-native`, target/libroutemeter-trap.so): a request with the
/// header `x-routemeter-trap` panics in its request-headers hook with the lock held, as a
/// bug in the filter would.
#[cfg(feature = "test-trap")]
#[allow(clippy::panic)]
fn test_trap(calls: &Calls) {
    if calls.header("x-routemeter-trap").is_some() {
        panic!("test-trap: panicking in request headers");
    }
}

/// The stream is complete (normally, by local reply or by reset): the sizes are Envoy's
/// counts, then the request is recorded and the stream leaves the filter.
#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_stream_complete(envoy: FilterEnvoy, filter: *const c_void) {
    let _ = catch_unwind(|| {
        // SAFETY: ours, during one of its hooks.
        let Some((s, plugin)) = (unsafe { stream(filter) }) else { return };
        let root = s.root;
        run(
            (),
            |filter, calls| {
                let context = claim(s, filter);
                if filter.is_recording(context) {
                    let size = |id| calls.int_attribute(id).unwrap_or(0) as usize;
                    filter.request_body(context, size(attribute::REQUEST_SIZE));
                    filter.response_body(context, size(attribute::RESPONSE_SIZE));
                }
                filter.log(context, calls);
                filter.delete(context, calls);
            },
            (root, plugin, Some(envoy)),
        );
        s.done = true;
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_destroy(filter: *const c_void) {
    let _ = catch_unwind(|| {
        if filter.is_null() {
            return;
        }
        // SAFETY: ours, from `filter_new`; Envoy destroys it once.
        let s = unsafe { Box::from_raw(filter as *mut NativeStream) };
        // A stream that never reached the filter holds nothing there (and its unclaimed id
        // may be another stream's).
        if !s.done && s.claimed {
            // SAFETY: the configuration outlives its streams.
            let plugin = unsafe { s.config.as_ref() }.map_or("", |c| c.name.as_str());
            run((), |filter, calls| filter.delete(s.context, calls), (s.root, plugin, None));
        }
    });
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_body(_: FilterEnvoy, _: *const c_void, _: bool) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_request_trailers(_: FilterEnvoy, _: *const c_void) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_headers(
    _: FilterEnvoy,
    _: *const c_void,
    _: bool,
) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_body(_: FilterEnvoy, _: *const c_void, _: bool) -> u32 {
    CONTINUE
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_response_trailers(_: FilterEnvoy, _: *const c_void) -> u32 {
    CONTINUE
}

/// Hooks required by Envoy 1.40 and never triggered: routemeter makes no callouts or streams
/// of its own per request, schedules nothing per stream and watches no buffers. Envoy
/// expects nothing back from them.
macro_rules! unused_hooks {
    ($($name:ident),* $(,)?) => {$(
        #[no_mangle]
        pub extern "C" fn $name() {}
    )*};
}

unused_hooks!(
    envoy_dynamic_module_on_http_filter_http_callout_done,
    envoy_dynamic_module_on_http_filter_http_stream_headers,
    envoy_dynamic_module_on_http_filter_http_stream_data,
    envoy_dynamic_module_on_http_filter_http_stream_trailers,
    envoy_dynamic_module_on_http_filter_http_stream_complete,
    envoy_dynamic_module_on_http_filter_http_stream_reset,
    envoy_dynamic_module_on_http_filter_scheduled,
    envoy_dynamic_module_on_http_filter_downstream_above_write_buffer_high_watermark,
    envoy_dynamic_module_on_http_filter_downstream_below_write_buffer_low_watermark,
);
