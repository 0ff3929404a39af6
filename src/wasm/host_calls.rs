//! The core's host traits, implemented with proxy-wasm ABI calls: Envoy's bytes become typed
//! facts here ([`decode`]), never in the core.

use super::{abi, decode, header_map};
use crate::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, SharedStore, StreamHost};

/// The host, reached through the proxy-wasm ABI.
pub struct HostCalls;

impl MetricsHost for HostCalls {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        abi::define_metric(kind, name)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        abi::increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        abi::record_metric(id, value)
    }
}

impl StreamHost for HostCalls {
    fn method_and_path(&self) -> (Vec<u8>, Vec<u8>) {
        // One call for the whole map: cheaper than two single-header reads (header_map).
        let Some(map) = abi::request_headers() else { return Default::default() };
        let get = |name| header_map::find(&map, name).map(<[u8]>::to_vec).unwrap_or_default();
        (get(":method"), get(":path"))
    }
    fn response_status(&self) -> Option<u16> {
        decode::status(&abi::response_header(":status")?)
    }
    // Serialised property paths: parts joined by NUL. Envoy >= 1.33 spells them this way.
    fn route_name(&self) -> Option<Vec<u8>> {
        abi::property(b"xds\0route_name")
    }
    fn request_duration_ns(&self) -> Option<u64> {
        decode::u64_property(&abi::property(b"request\0duration")?)
    }
    fn response_body_bytes(&self) -> Option<u64> {
        decode::u64_property(&abi::property(b"response\0size")?)
    }
    fn now_nanos(&self) -> Option<u64> {
        abi::now_nanos()
    }
}

impl SharedStore for HostCalls {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        abi::get_shared_data(key)
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        abi::set_shared_data(key, value, cas)
    }
}
