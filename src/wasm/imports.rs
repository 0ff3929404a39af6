//! The proxy-wasm ABI 0.2.1 imports routemeter calls, wrapped so that every status becomes a
//! `Result`. The SDK's `hostcalls::*` panic on statuses they do not expect, and a panic traps
//! the VM; a telemetry filter must lose a measurement instead.
//!
//! Buffers the host returns were allocated through our exported `malloc` ([`allocate`], the
//! Rust global allocator), so they are taken over as `Vec`s.

use std::ptr::null_mut;

use crate::abi::{BufferType, LogLevel, MapType, MetricType, Status};
use crate::host::{CasWrite, HostError, MetricId, MetricKind};

const OK: u32 = Status::Ok as u32;
const NOT_FOUND: u32 = Status::NotFound as u32;
const CAS_MISMATCH: u32 = Status::CasMismatch as u32;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, return_map_data: *mut *mut u8, return_map_size: *mut usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

/// Memory for a buffer the host hands over (the `malloc` export). Exactly `size` bytes, so
/// [`take_buffer`] can give it back to the global allocator as a `Vec` of that capacity.
pub fn allocate(size: usize) -> *mut u8 {
    if size == 0 {
        return null_mut();
    }
    match std::alloc::Layout::array::<u8>(size) {
        // SAFETY: the layout is non-zero-sized.
        Ok(layout) => unsafe { std::alloc::alloc(layout) },
        Err(_) => null_mut(),
    }
}

fn check(status: u32) -> Result<(), HostError> {
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Takes ownership of a host-allocated buffer; `None` when the host returned none.
///
/// # Safety
/// `data`/`size` must come from a successful host call that allocated through our allocator.
unsafe fn take_buffer(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        None
    } else {
        Some(Vec::from_raw_parts(data, size, size))
    }
}

/// Runs a host call that returns a buffer; NotFound and a null buffer are `Ok(None)`.
fn get_bytes(call: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> Result<Option<Vec<u8>>, HostError> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    match call(&mut data, &mut size) {
        // SAFETY: on Ok the host filled data/size with a buffer it allocated through us.
        OK => Ok(unsafe { take_buffer(data, size) }),
        NOT_FOUND => Ok(None),
        status => Err(HostError(status)),
    }
}

pub fn log(level: LogLevel, message: &str) {
    // SAFETY: pointer and length describe a live str.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}

pub fn now_nanos() -> Option<u64> {
    let mut t: u64 = 0;
    // SAFETY: t outlives the call.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) }).ok().map(|_| t)
}

pub fn plugin_configuration(size: usize) -> Result<Option<Vec<u8>>, HostError> {
    // SAFETY: out-pointers are valid for the call.
    get_bytes(|d, s| unsafe { proxy_get_buffer_bytes(BufferType::PluginConfiguration as u32, 0, size, d, s) })
}

/// `proxy_http_call` from the root context; the answer arrives in `proxy_on_http_call_response`
/// with the returned token. Envoy answers BadArgument for an unknown cluster.
pub fn http_call(cluster: &str, headers: &[(&str, &str)], timeout_ms: u32) -> Result<u32, HostError> {
    let map = super::header_map::encode(headers);
    let mut token: u32 = 0;
    // SAFETY: every pointer describes a live slice; token outlives the call.
    let status = unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            map.as_ptr(),
            map.len(),
            null_mut(),
            0,
            null_mut(),
            0,
            timeout_ms,
            &mut token,
        )
    };
    check(status).map(|()| token)
}

pub fn set_tick_period_ms(ms: u32) -> Result<(), HostError> {
    // SAFETY: plain value.
    check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

/// A header of the response to our HTTP call (only during `on_http_call_response`).
pub fn http_call_response_header(name: &str) -> Option<Vec<u8>> {
    // SAFETY: name is a live str; out-pointers are valid for the call.
    get_bytes(|d, s| unsafe {
        proxy_get_header_map_value(MapType::HttpCallResponseHeaders as u32, name.as_ptr(), name.len(), d, s)
    })
    .ok()
    .flatten()
}

/// `len` bytes of the body of the response to our HTTP call from `start` (only during
/// `on_http_call_response`).
pub fn http_call_response_body(start: usize, len: usize) -> Option<Vec<u8>> {
    let body = BufferType::HttpCallResponseBody as u32;
    // SAFETY: out-pointers are valid for the call.
    get_bytes(|d, s| unsafe { proxy_get_buffer_bytes(body, start, len, d, s) }).ok().flatten()
}

/// All request headers in the [`super::header_map`] encoding, in one call.
pub fn request_headers() -> Option<Vec<u8>> {
    // SAFETY: out-pointers are valid for the call.
    get_bytes(|d, s| unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, d, s) }).ok().flatten()
}

pub fn response_header(name: &str) -> Option<Vec<u8>> {
    // SAFETY: name is a live str; out-pointers are valid for the call.
    let map = MapType::HttpResponseHeaders as u32;
    get_bytes(|d, s| unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), d, s) }).ok().flatten()
}

/// `path` is the property path with its parts separated by NUL bytes.
pub fn property(path: &[u8]) -> Option<Vec<u8>> {
    // SAFETY: path is a live slice; out-pointers are valid for the call.
    get_bytes(|d, s| unsafe { proxy_get_property(path.as_ptr(), path.len(), d, s) }).ok().flatten()
}

pub fn get_shared_data(key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
    let mut cas: u32 = 0;
    // SAFETY: key is a live str; out-pointers are valid for the call.
    let value = get_bytes(|d, s| unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), d, s, &mut cas) })?;
    Ok((value, cas))
}

pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
    // SAFETY: key and value are live slices.
    match unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) } {
        OK => Ok(CasWrite::Stored),
        CAS_MISMATCH => Ok(CasWrite::Conflict),
        status => Err(HostError(status)),
    }
}

pub fn define_metric(kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
    let kind = match kind {
        MetricKind::Counter => MetricType::Counter,
        MetricKind::Gauge => MetricType::Gauge,
        MetricKind::Histogram => MetricType::Histogram,
    };
    let mut id: u32 = 0;
    // SAFETY: name is a live str; id outlives the call.
    check(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(MetricId(id))
}

pub fn increment_metric(id: MetricId, delta: i64) -> Result<(), HostError> {
    // SAFETY: plain values.
    check(unsafe { proxy_increment_metric(id.0, delta) })
}

pub fn record_metric(id: MetricId, value: u64) -> Result<(), HostError> {
    // SAFETY: plain values.
    check(unsafe { proxy_record_metric(id.0, value) })
}
