//! The proxy-wasm glue: Envoy's callbacks in, the core's traits out. Nothing here decides
//! what to record; it forwards callbacks to [`StreamRecorder`] and [`Plugin`] and implements
//! the host traits with [`abi`] calls. Built only for `wasm32`.
//!
//! The module exports only the callbacks routemeter uses ([`exports`]): the host skips every
//! callback a module does not export, with no VM entry at all, so a request costs four entries
//! (request headers, a response body chunk, log, delete) plus one per further body chunk. The
//! proxy-wasm SDK exports all 25 callbacks whatever a filter uses (and `proxy_on_context_create`,
//! `proxy_on_response_headers` and `proxy_on_done` on every request); see the README for the
//! measurements that decided this.

mod abi;
mod exports;
mod logger;

use crate::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, Property, SharedStore, StreamHost};

/// The host, reached through the proxy-wasm ABI.
struct HostCalls;

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
        let get = |name| crate::header_map::find(&map, name).map(<[u8]>::to_vec).unwrap_or_default();
        (get(":method"), get(":path"))
    }
    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        abi::response_header(name)
    }
    fn property(&self, property: Property) -> Option<Vec<u8>> {
        // Serialised property paths: parts joined by NUL. Envoy >= 1.33 spells them this way.
        abi::property(match property {
            Property::RouteName => b"xds\0route_name",
            Property::RequestDuration => b"request\0duration",
            Property::ResponseSize => b"response\0size",
        })
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
