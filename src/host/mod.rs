//! What the core needs from the proxy, as three small traits. The wasm glue implements them
//! with proxy-wasm host calls; [`memory`] implements them in memory, following Envoy's rules,
//! for every test. Every call can fail: a failure loses one measurement and nothing else, so
//! nothing here returns a value the core must unwrap.

pub mod memory;

/// Envoy's metric types (each host numbers them its own way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

/// Envoy's stats: define a metric once, then update it by id. (Only the metrics registry
/// defines metrics.)
pub trait MetricsHost {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError>;
    /// Counters take `delta > 0`; gauges take either sign.
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError>;
    /// Histograms record integer values (milliseconds, bytes); gauges are set.
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError>;
}

/// Facts about the current stream, and the clock, typed: the glue decodes Envoy's encodings
/// (decimal `:status`, 8-byte little-endian integer properties) so the core never sees bytes
/// it would have to parse.
pub trait StreamHost {
    /// The request's `:method` and `:path` (each empty when absent or unreadable) and the
    /// values of `headers` (what attribute labels read). Envoy serves request headers during
    /// the request-headers callback and again in `on_log`. They come together because one
    /// host call can return them all.
    fn request_head(&self, headers: &[String]) -> RequestHead;
    /// The response status (`:status`), readable in `on_log`: `None` when no response was
    /// sent (the client reset the stream first) or it is not a 3-digit code (100-999).
    fn response_status(&self) -> Option<u16>;
    /// `xds.route_name`: the name of the Envoy route that matched, if any.
    fn route_name(&self) -> Option<Vec<u8>>;
    /// `request.duration`: nanoseconds since the request started, Envoy's count (at log time).
    fn request_duration_ns(&self) -> Option<u64>;
    /// Request body bytes Envoy received (at log time), for streams whose body callbacks the
    /// filter never saw.
    fn request_body_bytes(&self) -> Option<u64>;
    /// `response.size`: response body bytes Envoy sent (at log time).
    fn response_body_bytes(&self) -> Option<u64>;
    /// The name of the plugin whose filter runs this stream (`plugin_name`); asked only when
    /// one VM runs several plugins.
    fn plugin_name(&self) -> Option<Vec<u8>>;
    /// Wall-clock nanoseconds; only differences are used.
    fn now_nanos(&self) -> Option<u64>;
}

/// What the filter reads of a request's headers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    /// The headers asked for, in that order (`None`: absent).
    pub headers: Vec<Option<Vec<u8>>>,
}

/// Outcome of a compare-and-swap write to shared data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasWrite {
    Stored,
    /// Somebody else wrote first; read again.
    Conflict,
}

/// Data shared by all VMs of one `vm_id` (one per Envoy worker thread), with Envoy's rules
/// (proxy-wasm-cpp-host `SharedData`): versions come from one counter that starts at 1 and
/// counts every write; a write with a non-zero version is checked against an existing key
/// only; an empty value reads as no value. The `shared` module is the one place that writes it.
pub trait SharedStore {
    /// The value and its version (0 when the key does not exist).
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError>;
    /// Writes `value` if the key is still at version `cas` (0: do not check).
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError>;
}

/// Everything a stream needs; implemented for any type that has all three.
pub trait Host: MetricsHost + StreamHost + SharedStore {}
impl<T: MetricsHost + StreamHost + SharedStore> Host for T {}
