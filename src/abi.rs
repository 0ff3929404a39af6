//! The proxy-wasm ABI 0.2.1's numbers, one fact written once: the filter's glue (`wasm`), the
//! in-memory host that stands in for Envoy, and the simulator that runs the module all use them.

/// What a host call answers.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    CasMismatch = 8,
    InternalFailure = 10,
}

/// Header maps a filter can read.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    HttpRequestHeaders = 0,
    HttpResponseHeaders = 2,
    HttpCallResponseHeaders = 6,
}

/// Buffers a filter can read.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

/// What a stream callback tells the host to do next.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue = 0,
}

impl Status {
    /// The status with this number, if the ABI defines it here.
    pub fn from_u32(n: u32) -> Option<Status> {
        [Status::Ok, Status::NotFound, Status::BadArgument, Status::CasMismatch, Status::InternalFailure]
            .into_iter()
            .find(|s| *s as u32 == n)
    }
}

impl MetricType {
    pub fn from_u32(n: u32) -> Option<MetricType> {
        [MetricType::Counter, MetricType::Gauge, MetricType::Histogram].into_iter().find(|t| *t as u32 == n)
    }
}
