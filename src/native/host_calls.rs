//! The core's host traits over the dynamic-module ABI: stream facts from Envoy's callbacks,
//! metrics through [`Metrics`], shared data in process memory. One `Calls` is made per
//! hook, with the stream (if the hook has one) and the configuration it runs under.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use super::abi::{self, attribute, Buffer, FilterEnvoy};
use super::metrics::{Metrics, Op};
use super::shared_data::SharedData;
use crate::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, RequestHead, SharedStore, StreamHost};

pub struct Calls<'a> {
    /// The stream of this hook, if it has one.
    pub stream: Option<FilterEnvoy>,
    /// The configuration the hook runs under (its root id) and its plugin's name.
    pub root: u32,
    pub plugin: &'a str,
    pub metrics: &'a RefCell<Metrics>,
    pub shared: &'a RefCell<SharedData>,
}

impl Calls<'_> {
    /// A request header's first value.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        let stream = self.stream?;
        let mut value = Buffer::EMPTY;
        let mut count = 0usize;
        // SAFETY: the stream is the one Envoy passed to this hook; the value is copied
        // before the hook returns.
        let found = unsafe {
            abi::envoy_dynamic_module_callback_http_get_header(
                stream,
                abi::REQUEST_HEADER,
                Buffer::of(name.as_bytes()),
                &mut value,
                0,
                &mut count,
            )
        };
        // SAFETY: Envoy's buffer, in this hook.
        (found && count > 0).then(|| unsafe { value.to_vec() })
    }

    pub fn int_attribute(&self, id: u32) -> Option<u64> {
        let stream = self.stream?;
        let mut value = 0u64;
        // SAFETY: the stream of this hook.
        unsafe { abi::envoy_dynamic_module_callback_http_filter_get_attribute_int(stream, id, &mut value) }
            .then_some(value)
    }
}

impl MetricsHost for Calls<'_> {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        self.metrics.borrow_mut().define((self.root, self.plugin), kind, name)
    }

    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.metrics.borrow_mut().emit(id, Op::Add(delta))
    }

    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.metrics.borrow_mut().emit(id, Op::Value(value))
    }
}

impl StreamHost for Calls<'_> {
    fn request_head(&self, headers: &[String]) -> RequestHead {
        RequestHead {
            method: self.string_attribute(4).unwrap_or_default(),
            path: self.string_attribute(0).unwrap_or_default(),
            headers: headers.iter().map(|h| self.header(h)).collect(),
        }
    }

    fn response_status(&self) -> Option<u16> {
        self.int_attribute(attribute::RESPONSE_CODE).filter(|c| (100..=999).contains(c)).map(|c| c as u16)
    }

    fn route_name(&self) -> Option<Vec<u8>> {
        self.string_attribute(attribute::XDS_ROUTE_NAME)
    }

    fn request_duration_ns(&self) -> Option<u64> {
        self.duration()
    }

    fn request_body_bytes(&self) -> Option<u64> {
        self.int_attribute(attribute::REQUEST_SIZE)
    }

    fn response_body_bytes(&self) -> Option<u64> {
        self.int_attribute(attribute::RESPONSE_SIZE)
    }

    fn plugin_name(&self) -> Option<Vec<u8>> {
        Some(self.plugin.as_bytes().to_vec())
    }

    fn now_nanos(&self) -> Option<u64> {
        SystemTime::now().duration_since(UNIX_EPOCH).ok().map(|d| d.as_nanos() as u64)
    }
}

impl Calls<'_> {
    pub fn string_attribute(&self, id: u32) -> Option<Vec<u8>> {
        let stream = self.stream?;
        let mut value = Buffer::EMPTY;
        // SAFETY: the stream of this hook; the value is copied before it returns.
        let found =
            unsafe { abi::envoy_dynamic_module_callback_http_filter_get_attribute_string(stream, id, &mut value) };
        // SAFETY: Envoy's buffer, in this hook.
        found.then(|| unsafe { value.to_vec() })
    }

    fn duration(&self) -> Option<u64> {
        let stream = self.stream?;
        // 8-byte aligned, as the struct Envoy fills.
        let mut timing = [0u64; abi::TIMING_BYTES / 8];
        // SAFETY: the stream of this hook; the buffer is larger than the struct Envoy fills.
        unsafe { abi::envoy_dynamic_module_callback_http_get_timing_info(stream, timing.as_mut_ptr().cast()) };
        let bytes: Vec<u8> = timing.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let at = abi::TIMING_COMPLETE * 8;
        let has = bytes.get(abi::TIMING_FIELDS * 8 + abi::TIMING_COMPLETE).is_some_and(|b| *b != 0);
        let ns = bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).map(i64::from_ne_bytes)?;
        (has && ns >= 0).then_some(ns as u64)
    }
}

impl SharedStore for Calls<'_> {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        self.shared.get_shared(key)
    }

    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        self.shared.set_shared(key, value, cas)
    }
}
