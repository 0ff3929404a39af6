//! An Envoy dynamic module that does nothing: the hooks Envoy 1.40 requires, each returning
//! at once (`Continue`). What it adds to Envoy per request is what any native HTTP filter
//! pays before doing any work: Envoy's filter object, and a call per stream event.

use std::ffi::{c_char, c_void};

/// A non-null pointer for Envoy to hold (it refuses a null configuration or filter).
static NOTHING: u8 = 0;

fn nothing() -> *const c_void {
    &NOTHING as *const u8 as *const c_void
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_program_init() -> *const c_char {
    c"v0.2.0".as_ptr()
}

/// A pointer and a length, as Envoy passes the filter's name and configuration.
#[repr(C)]
pub struct Buffer {
    pub ptr: *const u8,
    pub len: usize,
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_config_new(
    _: *mut c_void,
    _: Buffer,
    _: Buffer,
) -> *const c_void {
    nothing()
}

#[no_mangle]
pub extern "C" fn envoy_dynamic_module_on_http_filter_new(_: *const c_void, _: *mut c_void) -> *const c_void {
    nothing()
}

/// Every event hook: `Continue` (0) where Envoy expects a status, ignored where it expects
/// nothing.
macro_rules! continue_hooks {
    ($($name:ident),* $(,)?) => {$(
        #[no_mangle]
        pub extern "C" fn $name() -> u32 {
            0
        }
    )*};
}

continue_hooks!(
    envoy_dynamic_module_on_http_filter_config_destroy,
    envoy_dynamic_module_on_http_filter_request_headers,
    envoy_dynamic_module_on_http_filter_request_body,
    envoy_dynamic_module_on_http_filter_request_trailers,
    envoy_dynamic_module_on_http_filter_response_headers,
    envoy_dynamic_module_on_http_filter_response_body,
    envoy_dynamic_module_on_http_filter_response_trailers,
    envoy_dynamic_module_on_http_filter_stream_complete,
    envoy_dynamic_module_on_http_filter_destroy,
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
