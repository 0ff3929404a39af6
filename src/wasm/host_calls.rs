//! The core's host traits, implemented with proxy-wasm ABI calls: Envoy's bytes become typed
//! facts here ([`decode`]), never in the core.

use super::{decode, header_map, imports};
use crate::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, SharedStore, StreamHost};

/// The host, reached through the proxy-wasm ABI.
pub struct HostCalls;

impl MetricsHost for HostCalls {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        imports::define_metric(kind, name)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        imports::increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        imports::record_metric(id, value)
    }
}

impl StreamHost for HostCalls {
    fn method_and_path(&self) -> (Vec<u8>, Vec<u8>) {
        // One call for the whole map: cheaper than two single-header reads (header_map).
        let Some(map) = imports::request_headers() else { return Default::default() };
        let get = |name| header_map::find(&map, name).map(<[u8]>::to_vec).unwrap_or_default();
        (get(":method"), get(":path"))
    }
    fn response_status(&self) -> Option<u16> {
        decode::status(&imports::response_header(":status")?)
    }
    // Serialised property paths: parts joined by NUL. Envoy >= 1.33 spells them this way.
    fn route_name(&self) -> Option<Vec<u8>> {
        imports::property(b"xds\0route_name")
    }
    fn request_duration_ns(&self) -> Option<u64> {
        decode::u64_property(&imports::property(b"request\0duration")?)
    }
    /// Envoy has no property for it: `request.total_size` is the body bytes received plus the
    /// request headers' byte size (every key and value), which the header map gives
    /// (`request.size` would be the Content-Length). A request the codec refused has an empty
    /// map, which reads as none (measured on Envoy 1.40): no header bytes.
    fn request_body_bytes(&self) -> Option<u64> {
        let total = decode::u64_property(&imports::property(b"request\0total_size")?)?;
        let headers = imports::request_headers().map_or(Some(0), |map| header_map::byte_size(&map))?;
        total.checked_sub(headers)
    }
    fn response_body_bytes(&self) -> Option<u64> {
        decode::u64_property(&imports::property(b"response\0size")?)
    }
    fn plugin_name(&self) -> Option<Vec<u8>> {
        imports::property(b"plugin_name")
    }
    fn now_nanos(&self) -> Option<u64> {
        imports::now_nanos()
    }
}

impl SharedStore for HostCalls {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        imports::get_shared_data(key)
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        imports::set_shared_data(key, value, cas)
    }
}
