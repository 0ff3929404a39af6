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

/// Handle of a defined metric, valid for the life of the VM.
pub type MetricId = u32;

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

/// Stream properties the core reads, named by what they mean rather than by their ABI path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// `xds.route_name`: the name of the Envoy route that matched, if any.
    RouteName,
    /// `request.duration`: i64 nanoseconds since the request started (read at log time).
    RequestDuration,
    /// `response.size`: u64 response body bytes sent (read at log time).
    ResponseSize,
}

/// Facts about the current stream, and the clock.
pub trait StreamHost {
    /// The request's `:method` and `:path` (each empty when absent or unreadable). Envoy
    /// serves request headers during the request-headers callback and again in `on_log`.
    /// The two come together because one host call can return both.
    fn method_and_path(&self) -> (Vec<u8>, Vec<u8>);
    /// A response header as text (`:status`), readable in `on_log`; absent when no
    /// response was sent (the client reset the stream first).
    fn response_header(&self, name: &str) -> Option<Vec<u8>>;
    fn property(&self, property: Property) -> Option<Vec<u8>>;
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
