//! What the core needs from the proxy, as three small traits. The wasm glue implements them
//! with proxy-wasm host calls; tests implement them in memory. Every call can fail: a failure
//! loses one measurement and nothing else, so nothing here returns a value the core must
//! unwrap.

/// Envoy metric types, as the proxy-wasm ABI numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

/// Handle of a defined metric, valid for the life of the VM: only the host hands them out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricId(pub u32);

/// A host call did not succeed; the status is kept for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

/// Envoy's stats: define a metric once, then update it by id.
pub trait MetricsHost {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError>;
    /// Counters take `delta > 0`; gauges take either sign.
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError>;
    /// Histograms record integer values (milliseconds, bytes).
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError>;
}

/// Facts about the current stream, and the clock, typed: the glue decodes Envoy's encodings
/// (decimal `:status`, 8-byte little-endian integer properties) so the core never sees bytes
/// it would have to parse.
pub trait StreamHost {
    /// The request's `:method` and `:path` (each empty when absent or unreadable). Envoy
    /// serves request headers during the request-headers callback and again in `on_log`.
    /// The two come together because one host call can return both.
    fn method_and_path(&self) -> (Vec<u8>, Vec<u8>);
    /// The response status (`:status`), readable in `on_log`: `None` when no response was
    /// sent (the client reset the stream first) or it is not a 3-digit code (100-999).
    fn response_status(&self) -> Option<u16>;
    /// `xds.route_name`: the name of the Envoy route that matched, if any.
    fn route_name(&self) -> Option<Vec<u8>>;
    /// `request.duration`: nanoseconds since the request started, Envoy's count (at log time).
    fn request_duration_ns(&self) -> Option<u64>;
    /// `response.size`: response body bytes Envoy sent (at log time).
    fn response_body_bytes(&self) -> Option<u64>;
    /// Wall-clock nanoseconds; only differences are used.
    fn now_nanos(&self) -> Option<u64>;
}

/// Outcome of a compare-and-swap write to shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasWrite {
    Stored,
    /// Somebody else wrote first; read again.
    Conflict,
}

/// The CAS that only creates: Envoy checks a non-zero CAS only against an existing key, and
/// its CAS counter starts at 1 and counts writes, so writing a new key with CAS `u32::MAX`
/// succeeds only while the key is still absent (proxy-wasm-cpp-host `SharedData::set`).
pub const CREATE_ONLY: u32 = u32::MAX;

/// Data shared by all VMs of the plugin (one per Envoy worker thread), with CAS versions.
pub trait SharedStore {
    /// The value and its version (0 when the key does not exist yet).
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError>;
    /// Writes `value` if the key is still at version `cas` (0: do not check).
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError>;
}

/// Everything a stream needs; implemented for any type that has all three.
pub trait Host: MetricsHost + StreamHost + SharedStore {}
impl<T: MetricsHost + StreamHost + SharedStore> Host for T {}

#[cfg(test)]
pub mod memory;
