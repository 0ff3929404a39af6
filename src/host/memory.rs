//! The host in memory: the one test double of Envoy, used by unit tests, the integration
//! tests' native host (through proxy-sim), and the fuzz targets. It follows Envoy's rules,
//! because a fake that disagrees with the real host hides the bugs it exists to find:
//! - stats: the same name is the same stat for every VM; counters take only deltas > 0 and
//!   gauges are set by `record_metric` (a refused call is an error, and listed);
//! - shared data as proxy-wasm-cpp-host keeps it: one version counter for every key, from 1;
//!   a non-zero version is checked only against an existing key (so CAS 0 is an unchecked
//!   write); an empty value reads as no value;
//! - the clock moves only when a test moves it; faults make calls fail as Envoy's can.
//!
//! Compiled on every target (not only under `cfg(test)`) so that other crates' tests use it;
//! the filter itself never refers to it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, RequestHead, SharedStore, StreamHost};
use crate::abi::Status;

/// Failures answer with Envoy's proxy-wasm statuses.
const NOT_FOUND: HostError = HostError(Status::NotFound as u32);
const BAD_ARGUMENT: HostError = HostError(Status::BadArgument as u32);
const INTERNAL_FAILURE: HostError = HostError(Status::InternalFailure as u32);

/// Which host calls fail (with InternalFailure).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    pub metrics: bool,
    pub shared_data: bool,
    pub headers: bool,
    pub clock: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatValue {
    Counter(u64),
    Gauge(i64),
    /// Every recorded sample, in order (Envoy keeps approximate bins; samples let tests
    /// assert exact values).
    Histogram(Vec<u64>),
}

/// How many metric calls of each kind the host served.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    pub define: usize,
    pub increment: usize,
    pub record: usize,
    /// Increments by 0: accepted on gauges, and always a wasted host call.
    pub zero_increments: usize,
    pub shared_reads: usize,
    /// Bytes shared-data reads copied into the VM.
    pub shared_bytes_read: usize,
}

/// Runs once, right after the next shared-data read returns (another worker acting between
/// a VM's read and its write).
type Hook = Box<dyn FnOnce()>;

pub struct MemoryHost {
    state: RefCell<State>,
    after_read: RefCell<Option<Hook>>,
    clock_ns: Cell<u64>,
}

#[derive(Default)]
struct State {
    stats: Vec<(MetricKind, String, StatValue)>,
    by_name: HashMap<String, usize>,
    calls: Calls,
    /// Every `define_metric` call, in order (each costs Envoy a metric id for the VM's life).
    defined: Vec<String>,
    /// Calls Envoy would refuse, described.
    refused: Vec<String>,
    shared: HashMap<String, (Vec<u8>, u32)>,
    /// Shared-data writes so far: the last version handed out.
    writes: u32,
    unchecked_writes: HashMap<String, usize>,
    lose_races: usize,
    faults: Faults,
}

impl Default for MemoryHost {
    fn default() -> Self {
        let clock_ns = Cell::new(1_700_000_000_000_000_000);
        MemoryHost { state: RefCell::default(), after_read: RefCell::default(), clock_ns }
    }
}

impl MemoryHost {
    pub fn new() -> MemoryHost {
        MemoryHost::default()
    }

    // ---- test control ------------------------------------------------------------------

    pub fn set_faults(&self, faults: Faults) {
        self.state.borrow_mut().faults = faults;
    }

    pub fn faults(&self) -> Faults {
        self.state.borrow().faults
    }

    pub fn advance_ns(&self, ns: u64) {
        self.clock_ns.set(self.clock_ns.get() + ns);
    }

    /// The clock as Envoy itself reads it (never faulted).
    pub fn clock_ns(&self) -> u64 {
        self.clock_ns.get()
    }

    /// The next `n` version-checked writes lose a race (another VM wrote first).
    pub fn lose_next_races(&self, n: usize) {
        self.state.borrow_mut().lose_races = n;
    }

    /// Another worker acts right after the next shared-data read (by anyone) returns.
    pub fn after_next_shared_read(&self, hook: impl FnOnce() + 'static) {
        *self.after_read.borrow_mut() = Some(Box::new(hook));
    }

    // ---- reading back ------------------------------------------------------------------

    /// Every stat, in the order first defined: kind, full stat name, value.
    pub fn stats(&self) -> Vec<(MetricKind, String, StatValue)> {
        self.state.borrow().stats.clone()
    }

    pub fn value(&self, name: &str) -> Option<StatValue> {
        let state = self.state.borrow();
        state.stats.get(*state.by_name.get(name)?).map(|(_, _, v)| v.clone())
    }

    pub fn counter(&self, name: &str) -> Option<u64> {
        match self.value(name)? {
            StatValue::Counter(v) => Some(v),
            _ => None,
        }
    }

    pub fn gauge(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            StatValue::Gauge(v) => Some(v),
            _ => None,
        }
    }

    pub fn calls(&self) -> Calls {
        self.state.borrow().calls
    }

    /// The names `define_metric` was called with since the last call, in order.
    pub fn take_defined(&self) -> Vec<String> {
        std::mem::take(&mut self.state.borrow_mut().defined)
    }

    /// Calls Envoy would refuse (a zero or negative counter delta, a sample into a counter,
    /// a name defined again as another kind): each is a bug in the filter.
    pub fn refused(&self) -> Vec<String> {
        self.state.borrow().refused.clone()
    }

    /// A shared value as stored (an empty one included).
    pub fn shared_value(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().shared.get(key).map(|(v, _)| v.clone())
    }

    /// Every shared-data key, sorted.
    pub fn shared_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.state.borrow().shared.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Writes to `key` made with CAS 0, which Envoy does not check: on a key several workers
    /// write, one of them can overwrite what another wrote a moment before.
    pub fn unchecked_writes(&self, key: &str) -> usize {
        self.state.borrow().unchecked_writes.get(key).copied().unwrap_or(0)
    }

    /// The clock as the filter reads it (fails under `Faults::clock`).
    pub fn now_ns(&self) -> Result<u64, HostError> {
        if self.faults().clock {
            return Err(INTERNAL_FAILURE);
        }
        Ok(self.clock_ns.get())
    }

    /// A stream whose facts the host serves (each callback of a simulated stream).
    pub fn on_stream<'a>(&'a self, facts: &'a StreamFacts) -> OnStream<'a> {
        OnStream { host: self, facts }
    }
}

impl State {
    /// A metric call, counted; `Err` when metric calls fail.
    fn metric_call(&mut self, count: impl FnOnce(&mut Calls)) -> Result<(), HostError> {
        if self.faults.metrics {
            return Err(INTERNAL_FAILURE);
        }
        count(&mut self.calls);
        Ok(())
    }

    fn refuse(&mut self, why: String) -> Result<(), HostError> {
        self.refused.push(why);
        Err(BAD_ARGUMENT)
    }
}

impl MetricsHost for MemoryHost {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        let mut s = self.state.borrow_mut();
        s.metric_call(|c| c.define += 1)?;
        s.defined.push(name.to_string());
        if let Some(&i) = s.by_name.get(name) {
            if s.stats.get(i).is_some_and(|(k, _, _)| *k != kind) {
                s.refuse(format!("{name} defined again as a {kind:?}"))?;
            }
            return Ok(MetricId(i as u32));
        }
        let value = match kind {
            MetricKind::Counter => StatValue::Counter(0),
            MetricKind::Gauge => StatValue::Gauge(0),
            MetricKind::Histogram => StatValue::Histogram(Vec::new()),
        };
        s.stats.push((kind, name.to_string(), value));
        let id = s.stats.len() - 1;
        s.by_name.insert(name.to_string(), id);
        Ok(MetricId(id as u32))
    }

    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        let mut s = self.state.borrow_mut();
        s.metric_call(|c| {
            c.increment += 1;
            c.zero_increments += usize::from(delta == 0);
        })?;
        match s.stats.get_mut(id.0 as usize) {
            None => Err(NOT_FOUND),
            Some((_, _, StatValue::Counter(v))) if delta > 0 => {
                *v += delta as u64;
                Ok(())
            }
            Some((_, _, StatValue::Gauge(v))) => {
                *v += delta;
                Ok(())
            }
            Some((_, name, _)) => {
                let why = format!("increment {name} by {delta}");
                s.refuse(why)
            }
        }
    }

    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        let mut s = self.state.borrow_mut();
        s.metric_call(|c| c.record += 1)?;
        match s.stats.get_mut(id.0 as usize) {
            None => Err(NOT_FOUND),
            Some((_, _, StatValue::Histogram(samples))) => {
                samples.push(value);
                Ok(())
            }
            Some((_, _, StatValue::Gauge(v))) => {
                *v = value as i64;
                Ok(())
            }
            Some((_, name, StatValue::Counter(_))) => {
                let why = format!("record {value} into the counter {name}");
                s.refuse(why)
            }
        }
    }
}

impl SharedStore for MemoryHost {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        let found = {
            let mut s = self.state.borrow_mut();
            if s.faults.shared_data {
                return Err(INTERNAL_FAILURE);
            }
            let found = s.shared.get(key).map(|(v, cas)| ((!v.is_empty()).then(|| v.clone()), *cas));
            s.calls.shared_reads += 1;
            s.calls.shared_bytes_read += found.as_ref().and_then(|(v, _)| v.as_ref()).map_or(0, Vec::len);
            found
        };
        // Taken first: the hook reads shared data itself.
        let hook = self.after_read.borrow_mut().take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(found.unwrap_or((None, 0)))
    }

    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        let mut s = self.state.borrow_mut();
        if s.faults.shared_data {
            return Err(INTERNAL_FAILURE);
        }
        if cas == 0 {
            *s.unchecked_writes.entry(key.to_string()).or_default() += 1;
        } else if s.lose_races > 0 {
            s.lose_races -= 1;
            return Ok(CasWrite::Conflict);
        }
        if s.shared.get(key).is_some_and(|(_, current)| cas != 0 && cas != *current) {
            return Ok(CasWrite::Conflict);
        }
        // Versions come from one counter, from 1, skipping 0 when it wraps.
        s.writes = s.writes.wrapping_add(1).max(1);
        let version = s.writes;
        s.shared.insert(key.to_string(), (value.to_vec(), version));
        Ok(CasWrite::Stored)
    }
}

/// Outside any stream (root-context callbacks): no stream facts, only the clock.
impl StreamHost for MemoryHost {
    fn request_head(&self, _headers: &[String]) -> RequestHead {
        RequestHead::default()
    }
    fn response_status(&self) -> Option<u16> {
        None
    }
    fn route_name(&self) -> Option<Vec<u8>> {
        None
    }
    fn request_duration_ns(&self) -> Option<u64> {
        None
    }
    fn request_body_bytes(&self) -> Option<u64> {
        None
    }
    fn response_body_bytes(&self) -> Option<u64> {
        None
    }
    fn plugin_name(&self) -> Option<Vec<u8>> {
        None
    }
    fn now_nanos(&self) -> Option<u64> {
        self.now_ns().ok()
    }
}

/// What the host knows of one stream, as the test sets it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StreamFacts {
    pub method: Vec<u8>,
    pub path: Vec<u8>,
    /// Other request headers (lower-case names).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Envoy serves headers (`:method`, `:path`, `:status`) only in their callbacks and in
    /// the log phase.
    pub headers_readable: bool,
    /// `:status` once a response was sent.
    pub status: Option<u16>,
    pub route_name: Option<Vec<u8>>,
    pub duration_ns: Option<u64>,
    pub request_body_bytes: Option<u64>,
    pub response_body_bytes: Option<u64>,
    pub plugin_name: Option<Vec<u8>>,
}

/// The host during one stream callback: the stream's facts, and everything else of the host.
#[derive(Clone, Copy)]
pub struct OnStream<'a> {
    pub host: &'a MemoryHost,
    pub facts: &'a StreamFacts,
}

impl OnStream<'_> {
    fn headers(&self) -> bool {
        self.facts.headers_readable && !self.host.faults().headers
    }
}

impl StreamHost for OnStream<'_> {
    fn request_head(&self, headers: &[String]) -> RequestHead {
        if !self.headers() {
            return RequestHead { headers: vec![None; headers.len()], ..RequestHead::default() };
        }
        let value = |name: &String| self.facts.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        RequestHead {
            method: self.facts.method.clone(),
            path: self.facts.path.clone(),
            headers: headers.iter().map(value).collect(),
        }
    }
    fn response_status(&self) -> Option<u16> {
        self.facts.status.filter(|s| self.headers() && (100..=999).contains(s))
    }
    fn route_name(&self) -> Option<Vec<u8>> {
        self.facts.route_name.clone()
    }
    fn request_duration_ns(&self) -> Option<u64> {
        self.facts.duration_ns
    }
    fn request_body_bytes(&self) -> Option<u64> {
        self.facts.request_body_bytes
    }
    fn response_body_bytes(&self) -> Option<u64> {
        self.facts.response_body_bytes
    }
    fn plugin_name(&self) -> Option<Vec<u8>> {
        self.facts.plugin_name.clone()
    }
    fn now_nanos(&self) -> Option<u64> {
        self.host.now_nanos()
    }
}

impl MetricsHost for OnStream<'_> {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        self.host.define_metric(kind, name)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.host.increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.host.record_metric(id, value)
    }
}

impl SharedStore for OnStream<'_> {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        self.host.get_shared(key)
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        self.host.set_shared(key, value, cas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_follow_envoy() {
        let e = MemoryHost::new();
        let c = e.define_metric(MetricKind::Counter, "c").unwrap();
        assert_eq!(e.define_metric(MetricKind::Counter, "c"), Ok(c));
        assert_eq!(e.increment_metric(c, 0), Err(BAD_ARGUMENT));
        assert_eq!(e.increment_metric(c, -1), Err(BAD_ARGUMENT));
        e.increment_metric(c, 2).unwrap();
        let g = e.define_metric(MetricKind::Gauge, "g").unwrap();
        e.increment_metric(g, -3).unwrap();
        let h = e.define_metric(MetricKind::Histogram, "h").unwrap();
        e.record_metric(h, 7).unwrap();
        assert_eq!(e.record_metric(c, 1), Err(BAD_ARGUMENT));
        assert_eq!(e.increment_metric(MetricId(99), 1), Err(NOT_FOUND));
        assert_eq!(
            (e.counter("c"), e.gauge("g"), e.value("h")),
            (Some(2), Some(-3), Some(StatValue::Histogram(vec![7])))
        );
        assert_eq!(e.refused(), ["increment c by 0", "increment c by -1", "record 1 into the counter c"]);
        assert_eq!(e.calls(), Calls { define: 4, increment: 5, record: 2, zero_increments: 1, ..Calls::default() });
    }

    #[test]
    fn shared_data_follows_proxy_wasm_cpp_host() {
        let e = MemoryHost::new();
        assert_eq!(e.get_shared("k"), Ok((None, 0)));
        // Creating ignores the version; versions count every write, across keys.
        assert_eq!(e.set_shared("k", b"a", 77), Ok(CasWrite::Stored));
        assert_eq!(e.set_shared("other", b"x", 0), Ok(CasWrite::Stored));
        assert_eq!(e.get_shared("k"), Ok((Some(b"a".to_vec()), 1)));
        assert_eq!(e.set_shared("k", b"b", 2), Ok(CasWrite::Conflict));
        assert_eq!(e.set_shared("k", b"b", 1), Ok(CasWrite::Stored));
        // CAS 0 writes whatever the version; an empty value reads as none.
        assert_eq!(e.set_shared("k", b"", 0), Ok(CasWrite::Stored));
        assert_eq!(e.get_shared("k"), Ok((None, 4)));
        assert_eq!((e.shared_value("k"), e.unchecked_writes("k")), (Some(Vec::new()), 1));
        e.set_faults(Faults { shared_data: true, ..Faults::default() });
        assert_eq!(e.get_shared("k"), Err(INTERNAL_FAILURE));
    }
}
