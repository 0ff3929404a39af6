//! The core's host traits, implemented with proxy-wasm ABI calls: Envoy's bytes become typed
//! facts here ([`decode`]), never in the core.

use super::{decode, header_map, imports};
use crate::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, RequestHead, SharedStore, StreamHost};

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
    fn request_head(&self, headers: &[String]) -> RequestHead {
        // One call for the whole map: cheaper than a single-header read each (header_map).
        let Some(map) = imports::request_headers() else {
            return RequestHead { headers: vec![None; headers.len()], ..RequestHead::default() };
        };
        let get = |name: &str| header_map::find(&map, name).map(<[u8]>::to_vec);
        RequestHead {
            method: get(":method").unwrap_or_default(),
            path: get(":path").unwrap_or_default(),
            headers: if headers.is_empty() { Vec::new() } else { headers.iter().map(|h| get(h)).collect() },
        }
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
