//! Envoy's dynamic-module ABI (v0.2.0, Envoy 1.40), only what routemeter calls. Declared by
//! hand from the ABI's facts (`source/extensions/dynamic_modules/abi/abi.h`); every symbol
//! is one `nm -D` lists in our Envoy binary. Envoy resolves them when it loads the module.

use std::ffi::c_void;

/// A pointer and a length: Envoy's bytes (valid until the hook returns) or ours (valid
/// during the call).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Buffer {
    pub ptr: *const u8,
    pub len: usize,
}

impl Buffer {
    pub const EMPTY: Buffer = Buffer { ptr: std::ptr::null(), len: 0 };

    pub fn of(bytes: &[u8]) -> Buffer {
        Buffer { ptr: bytes.as_ptr(), len: bytes.len() }
    }

    /// Envoy's bytes, copied.
    ///
    /// # Safety
    /// `ptr` must point to `len` readable bytes (what Envoy returned, in the same hook).
    pub unsafe fn to_vec(self) -> Vec<u8> {
        if self.ptr.is_null() {
            return Vec::new();
        }
        std::slice::from_raw_parts(self.ptr, self.len).to_vec()
    }
}

/// A header as a pair of buffers (`envoy_dynamic_module_type_{envoy,module}_http_header`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub key: Buffer,
    pub value: Buffer,
}

/// `envoy_dynamic_module_type_http_callout_init_result::Success` and
/// `envoy_dynamic_module_type_http_callout_result::Success`.
pub const CALLOUT_SUCCESS: u32 = 0;

/// Envoy's filter configuration and stream objects, opaque.
pub type ConfigEnvoy = *mut c_void;
pub type FilterEnvoy = *mut c_void;
pub type Scheduler = *mut c_void;

/// `envoy_dynamic_module_type_http_header_type`.
pub const REQUEST_HEADER: u32 = 0;

/// `envoy_dynamic_module_type_attribute_id` values.
pub mod attribute {
    pub const REQUEST_SIZE: u32 = 13;
    pub const RESPONSE_CODE: u32 = 15;
    pub const RESPONSE_SIZE: u32 = 21;
    pub const XDS_ROUTE_NAME: u32 = 61;
}

/// `envoy_dynamic_module_type_metrics_result::Success`.
pub const METRICS_SUCCESS: u32 = 0;

/// Every `on_http_filter_*` status enum's `Continue`.
pub const CONTINUE: u32 = 0;

/// `envoy_dynamic_module_type_log_level`.
pub mod level {
    pub const DEBUG: u32 = 1;
    pub const INFO: u32 = 2;
    pub const WARN: u32 = 3;
    pub const ERROR: u32 = 4;
    pub const CRITICAL: u32 = 5;
}

/// `http_get_timing_info` fills 19 `int64` then 19 `bool` (176 bytes with padding); the
/// 18th integer is the request's duration to completion in nanoseconds. The function is
/// in Envoy 1.40 but in no published header: the layout was read from the binary and
/// checked against a 3-second upstream. The buffer is twice that size, so a longer struct
/// from a later Envoy cannot write past it.
pub const TIMING_BYTES: usize = 352;
pub const TIMING_COMPLETE: usize = 17;
pub const TIMING_FIELDS: usize = 19;

extern "C" {
    pub fn envoy_dynamic_module_callback_http_get_header(
        filter: FilterEnvoy,
        kind: u32,
        key: Buffer,
        result: *mut Buffer,
        index: usize,
        count: *mut usize,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_string(
        filter: FilterEnvoy,
        id: u32,
        result: *mut Buffer,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_filter_get_attribute_int(
        filter: FilterEnvoy,
        id: u32,
        result: *mut u64,
    ) -> bool;
    pub fn envoy_dynamic_module_callback_http_get_timing_info(filter: FilterEnvoy, out: *mut u8);

    pub fn envoy_dynamic_module_callback_http_filter_config_define_counter(
        config: ConfigEnvoy,
        name: Buffer,
        labels: *const Buffer,
        labels_len: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_gauge(
        config: ConfigEnvoy,
        name: Buffer,
        labels: *const Buffer,
        labels_len: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_define_histogram(
        config: ConfigEnvoy,
        name: Buffer,
        labels: *const Buffer,
        labels_len: usize,
        id: *mut usize,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_counter(
        config: ConfigEnvoy,
        id: usize,
        values: *const Buffer,
        values_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_increment_gauge(
        config: ConfigEnvoy,
        id: usize,
        values: *const Buffer,
        values_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_decrement_gauge(
        config: ConfigEnvoy,
        id: usize,
        values: *const Buffer,
        values_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_set_gauge(
        config: ConfigEnvoy,
        id: usize,
        values: *const Buffer,
        values_len: usize,
        value: u64,
    ) -> u32;
    pub fn envoy_dynamic_module_callback_http_filter_config_record_histogram_value(
        config: ConfigEnvoy,
        id: usize,
        values: *const Buffer,
        values_len: usize,
        value: u64,
    ) -> u32;

    /// An HTTP call from the configuration (main thread); the answer comes to
    /// `on_http_filter_config_http_callout_done` with the id written to `id`.
    pub fn envoy_dynamic_module_callback_http_filter_config_http_callout(
        config: ConfigEnvoy,
        id: *mut u64,
        cluster: Buffer,
        headers: *const Header,
        headers_len: usize,
        body: Buffer,
        timeout_ms: u64,
    ) -> u32;

    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_new(config: ConfigEnvoy) -> Scheduler;
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_commit(scheduler: Scheduler, event: u64);
    pub fn envoy_dynamic_module_callback_http_filter_config_scheduler_delete(scheduler: Scheduler);

    pub fn envoy_dynamic_module_callback_log(level: u32, message: Buffer);
}
