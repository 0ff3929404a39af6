//! The parts of Envoy a proxy-wasm filter can observe, shared by every VM (worker thread) of
//! one simulated Envoy: the stats store with Envoy's semantics, shared data with CAS
//! versions, the clock (under test control), and fault injection for host calls.
//!
//! Both hosts use it: the native host (tests/support/mem_host.rs) and the wasm host
//! ([`crate::wasm`]), so a scenario's metrics can be compared between them exactly.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// Labels of a series, sorted by key.
pub type Labels = BTreeMap<String, String>;

/// An upstream's answer to an HTTP call: status and body; `None` is no answer (a timeout).
pub type Answer = Option<(u16, Vec<u8>)>;

/// Envoy metric types, numbered as the proxy-wasm ABI numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatValue {
    Counter(u64),
    Gauge(i64),
    /// Every recorded sample, in order (Envoy keeps approximate bins; keeping samples lets
    /// tests assert exact values).
    Histogram(Vec<u64>),
}

/// A host call failed; the number is the proxy-wasm status the host returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

pub const NOT_FOUND: Status = Status(1);
pub const BAD_ARGUMENT: Status = Status(2);
pub const CAS_MISMATCH: Status = Status(8);
pub const INTERNAL_FAILURE: Status = Status(10);

/// Which host calls fail (with InternalFailure).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    pub metrics: bool,
    pub shared_data: bool,
    pub headers: bool,
    pub clock: bool,
}

#[derive(Default)]
struct State {
    by_name: HashMap<String, usize>,
    names: Vec<String>,
    values: Vec<StatValue>,
    shared: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    define_calls: usize,
    /// Shared-data writes with CAS 0 (which Envoy performs unchecked), by key.
    unchecked_writes: HashMap<String, usize>,
    /// `(cluster, path)` -> the upstream's answer (`None`: no answer, a timeout).
    upstream: HashMap<(String, String), Answer>,
    /// Every HTTP call a filter made: `(cluster, path, authority)`.
    http_calls: Vec<(String, String, String)>,
}

/// Runs once, right after the next shared-data read returns (another worker acting
/// between a VM's read and its write).
type Hook = Box<dyn FnOnce()>;

/// A VM's tick, as registered by its host.
type Ticker = Rc<dyn Fn()>;

/// One simulated Envoy. Cloning gives another handle to the same Envoy.
#[derive(Clone)]
pub struct SimEnvoy {
    state: Rc<RefCell<State>>,
    clock_ns: Rc<Cell<u64>>,
    faults: Rc<Cell<Faults>>,
    after_read: Rc<RefCell<Option<Hook>>>,
    /// Every VM's tick: reading the stats first lets every VM flush (see `settle`).
    tickers: Rc<RefCell<Vec<Ticker>>>,
}

impl Default for SimEnvoy {
    fn default() -> Self {
        SimEnvoy {
            state: Rc::default(),
            clock_ns: Rc::new(Cell::new(1_700_000_000_000_000_000)),
            faults: Rc::default(),
            after_read: Rc::default(),
            tickers: Rc::default(),
        }
    }
}

impl SimEnvoy {
    pub fn new() -> SimEnvoy {
        SimEnvoy::default()
    }

    // ---- clock and faults -------------------------------------------------------------

    pub fn advance_ms(&self, ms: u64) {
        self.advance_ns(ms * 1_000_000);
    }

    pub fn advance_ns(&self, ns: u64) {
        self.clock_ns.set(self.clock_ns.get() + ns);
    }

    /// The host's own clock, for its bookkeeping (`request.duration`); never faulted.
    pub fn clock_ns(&self) -> u64 {
        self.clock_ns.get()
    }

    /// The clock as the filter reads it (fails under `Faults::clock`).
    pub fn now_ns(&self) -> Result<u64, Status> {
        if self.faults().clock {
            return Err(INTERNAL_FAILURE);
        }
        Ok(self.clock_ns.get())
    }

    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    pub fn faults(&self) -> Faults {
        self.faults.get()
    }

    // ---- stats, as Envoy's proxy-wasm host implements them ----------------------------

    /// The same name is the same stat, for every VM.
    pub fn define_metric(&self, kind: Kind, name: &str) -> Result<u32, Status> {
        if self.faults().metrics {
            return Err(INTERNAL_FAILURE);
        }
        let mut s = self.state.borrow_mut();
        s.define_calls += 1;
        if let Some(&id) = s.by_name.get(name) {
            let existing = match s.values[id] {
                StatValue::Counter(_) => Kind::Counter,
                StatValue::Gauge(_) => Kind::Gauge,
                StatValue::Histogram(_) => Kind::Histogram,
            };
            assert_eq!(existing, kind, "{name} redefined with another kind");
            return Ok(id as u32);
        }
        let id = s.values.len();
        s.values.push(match kind {
            Kind::Counter => StatValue::Counter(0),
            Kind::Gauge => StatValue::Gauge(0),
            Kind::Histogram => StatValue::Histogram(Vec::new()),
        });
        s.names.push(name.to_string());
        s.by_name.insert(name.to_string(), id);
        Ok(id as u32)
    }

    /// Counters take only positive deltas (Envoy answers BadArgument); gauges go both ways.
    pub fn increment_metric(&self, id: u32, delta: i64) -> Result<(), Status> {
        if self.faults().metrics {
            return Err(INTERNAL_FAILURE);
        }
        let mut s = self.state.borrow_mut();
        match s.values.get_mut(id as usize).ok_or(NOT_FOUND)? {
            StatValue::Counter(v) if delta > 0 => *v += delta as u64,
            StatValue::Gauge(v) => *v += delta,
            _ => return Err(BAD_ARGUMENT),
        }
        Ok(())
    }

    /// Histograms record a sample; gauges are set. Recording into a counter is a test bug.
    pub fn record_metric(&self, id: u32, value: u64) -> Result<(), Status> {
        if self.faults().metrics {
            return Err(INTERNAL_FAILURE);
        }
        let mut s = self.state.borrow_mut();
        match s.values.get_mut(id as usize).ok_or(NOT_FOUND)? {
            StatValue::Histogram(samples) => samples.push(value),
            StatValue::Gauge(v) => *v = value as i64,
            StatValue::Counter(_) => panic!("record_metric on a counter"),
        }
        Ok(())
    }

    /// How many times `define_metric` was called (the expensive host call), once every VM
    /// has flushed.
    pub fn define_calls(&self) -> usize {
        self.settle();
        self.state.borrow().define_calls
    }

    /// A VM's periodic tick (its glue registers it when the VM starts; it must do nothing once
    /// the VM is gone).
    pub fn register_ticker(&self, tick: Ticker) {
        self.tickers.borrow_mut().push(tick);
    }

    /// Every VM ticks once: what they counted reaches the stats, as it would in Envoy after a
    /// flush interval. Reading the stats settles first, so tests see what a scrape a second
    /// later would.
    pub fn settle(&self) {
        let tickers: Vec<Ticker> = self.tickers.borrow().clone();
        for tick in tickers {
            tick();
        }
    }

    // ---- shared data ------------------------------------------------------------------

    /// The value and its CAS version; NotFound when the key was never set. (An existing
    /// empty value reaches the module as no buffer at all, as in Envoy: see the imports.)
    pub fn get_shared(&self, key: &str) -> Result<(Vec<u8>, u32), Status> {
        if self.faults().shared_data {
            return Err(INTERNAL_FAILURE);
        }
        let value = self.state.borrow().shared.get(key).cloned().ok_or(NOT_FOUND);
        let hook = self.after_read.borrow_mut().take();
        if let Some(hook) = hook {
            hook();
        }
        value
    }

    /// Another worker acts right after the next shared-data read (by anyone) returns.
    pub fn after_next_shared_read(&self, hook: impl FnOnce() + 'static) {
        *self.after_read.borrow_mut() = Some(Box::new(hook));
    }

    /// Writes unless `cas` is non-zero and stale (CasMismatch), as Envoy does: a non-zero
    /// CAS is checked only against an existing key (proxy-wasm-cpp-host `SharedData::set`).
    pub fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
        if self.faults().shared_data {
            return Err(INTERNAL_FAILURE);
        }
        let mut s = self.state.borrow_mut();
        if cas == 0 {
            *s.unchecked_writes.entry(key.to_string()).or_default() += 1;
        }
        if let Some((_, current)) = s.shared.get(key) {
            if cas != 0 && cas != *current {
                return Err(CAS_MISMATCH);
            }
        }
        s.next_cas += 1;
        let version = s.next_cas;
        s.shared.insert(key.to_string(), (value.to_vec(), version));
        Ok(())
    }

    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().shared.get(key).map(|(v, _)| v.clone())
    }

    /// Shared-data writes to `key` made with CAS 0, which Envoy does not check: on a key
    /// several workers write, one of them can overwrite what another wrote a moment before.
    pub fn unchecked_shared_writes(&self, key: &str) -> usize {
        self.state.borrow().unchecked_writes.get(key).copied().unwrap_or(0)
    }

    // ---- HTTP calls from the root context -----------------------------------------------

    /// What `cluster` answers for `path`: a status and body, or `None` for no answer.
    pub fn serve(&self, cluster: &str, path: &str, answer: Option<(u16, &[u8])>) {
        let answer = answer.map(|(status, body)| (status, body.to_vec()));
        self.state.borrow_mut().upstream.insert((cluster.to_string(), path.to_string()), answer);
    }

    /// A filter's HTTP call: recorded, and answered from [`serve`](Self::serve) (an unknown
    /// cluster is BadArgument, as in Envoy; a known cluster without that path answers 404).
    pub fn http_call(&self, cluster: &str, path: &str, authority: &str) -> Result<Answer, Status> {
        let mut s = self.state.borrow_mut();
        if !s.upstream.keys().any(|(c, _)| c == cluster) {
            return Err(BAD_ARGUMENT);
        }
        s.http_calls.push((cluster.to_string(), path.to_string(), authority.to_string()));
        Ok(s.upstream.get(&(cluster.to_string(), path.to_string())).cloned().unwrap_or(Some((404, Vec::new()))))
    }

    /// Every HTTP call made so far: `(cluster, path, authority)`.
    pub fn http_calls(&self) -> Vec<(String, String, String)> {
        self.state.borrow().http_calls.clone()
    }

    // ---- reading metrics back, the way /stats/prometheus would show them --------------

    /// Every series, decoded into (metric name, labels) -> value, once every VM has flushed.
    pub fn series(&self) -> BTreeMap<(String, Labels), StatValue> {
        self.settle();
        let s = self.state.borrow();
        s.names.iter().zip(&s.values).map(|(name, value)| (decode_stat_name(name), value.clone())).collect()
    }

    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> Option<StatValue> {
        let want: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.series().remove(&(metric.to_string(), want))
    }

    pub fn counter(&self, metric: &str, labels: &[(&str, &str)]) -> Option<u64> {
        match self.get(metric, labels)? {
            StatValue::Counter(v) => Some(v),
            other => panic!("{metric} is not a counter: {other:?}"),
        }
    }

    pub fn gauge(&self, metric: &str, labels: &[(&str, &str)]) -> Option<i64> {
        match self.get(metric, labels)? {
            StatValue::Gauge(v) => Some(v),
            other => panic!("{metric} is not a gauge: {other:?}"),
        }
    }

    /// Every recorded sample of a histogram series, in order.
    pub fn histogram(&self, metric: &str, labels: &[(&str, &str)]) -> Option<Vec<u64>> {
        match self.get(metric, labels)? {
            StatValue::Histogram(v) => Some(v),
            other => panic!("{metric} is not a histogram: {other:?}"),
        }
    }

    /// An exact histogram (the counters `<metric>_bucket{le}`, `_sum`, `_count`): cumulative
    /// bucket counts by `le` in bound order, sum, count.
    pub fn exact(&self, metric: &str, labels: &[(&str, &str)]) -> Option<Exact> {
        let series = self.series();
        let want: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let counter = |name: String, l: &Labels| match series.get(&(name, l.clone())) {
            Some(StatValue::Counter(v)) => Some(*v),
            _ => None,
        };
        let count = counter(format!("{metric}_count"), &want)?;
        let sum = counter(format!("{metric}_sum"), &want)?;
        let mut buckets: Vec<(String, u64)> = series
            .iter()
            .filter(|((name, l), _)| {
                *name == format!("{metric}_bucket") && l.iter().filter(|(k, _)| *k != "le").eq(want.iter())
            })
            .filter_map(|((_, l), v)| match v {
                StatValue::Counter(n) => Some((l["le"].clone(), *n)),
                _ => None,
            })
            .collect();
        buckets.sort_by(|a, b| le_value(&a.0).total_cmp(&le_value(&b.0)));
        Some(Exact { buckets, sum, count })
    }

    /// Distinct values of one label across all series of a metric.
    pub fn label_values(&self, metric: &str, key: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .series()
            .into_keys()
            .filter(|(m, _)| m == metric)
            .filter_map(|(_, labels)| labels.get(key).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

/// An exact histogram as Prometheus would read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exact {
    /// `(le, cumulative count)`, `+Inf` last.
    pub buckets: Vec<(String, u64)>,
    pub sum: u64,
    pub count: u64,
}

impl Exact {
    /// Samples per bucket (not cumulative), in bound order.
    pub fn per_bucket(&self) -> Vec<(String, u64)> {
        let mut prev = 0;
        self.buckets
            .iter()
            .map(|(le, n)| {
                let d = n - prev;
                prev = *n;
                (le.clone(), d)
            })
            .collect()
    }
}

fn le_value(le: &str) -> f64 {
    if le == "+Inf" {
        f64::INFINITY
    } else {
        le.parse().unwrap_or(f64::NAN)
    }
}

/// Splits `k1=.=v1;.;k2=.=v2;.;name` into the name and its labels, the way the bootstrap's
/// `stats_tags` regexes do. Written independently of the filter's encoder, so an encoding
/// bug shows up as a wrong series instead of cancelling out.
pub fn decode_stat_name(full: &str) -> (String, Labels) {
    let mut labels = Labels::new();
    let mut rest = full;
    while let Some(eq) = rest.find("=.=") {
        let Some(end) = rest[eq..].find(";.;") else { break };
        labels.insert(rest[..eq].to_string(), rest[eq + 3..eq + end].to_string());
        rest = &rest[eq + end + 3..];
    }
    (rest.to_string(), labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_labels_and_name() {
        let (name, labels) = decode_stat_name("method=.=GET;.;route=.=/a/{id};.;status=.=200;.;http_requests_total");
        assert_eq!(name, "http_requests_total");
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            vec![
                ("method".to_string(), "GET".to_string()),
                ("route".to_string(), "/a/{id}".to_string()),
                ("status".to_string(), "200".to_string()),
            ]
        );
        assert_eq!(decode_stat_name("plain").0, "plain");
    }

    #[test]
    fn envoy_stat_semantics() {
        let e = SimEnvoy::new();
        let c = e.define_metric(Kind::Counter, "c").unwrap();
        assert_eq!(e.define_metric(Kind::Counter, "c"), Ok(c));
        assert_eq!(e.increment_metric(c, 0), Err(BAD_ARGUMENT));
        assert_eq!(e.increment_metric(c, -1), Err(BAD_ARGUMENT));
        e.increment_metric(c, 2).unwrap();
        let g = e.define_metric(Kind::Gauge, "g").unwrap();
        e.increment_metric(g, -3).unwrap();
        let h = e.define_metric(Kind::Histogram, "h").unwrap();
        e.record_metric(h, 7).unwrap();
        assert_eq!(e.increment_metric(99, 1), Err(NOT_FOUND));
        assert_eq!((e.counter("c", &[]), e.gauge("g", &[]), e.histogram("h", &[])), (Some(2), Some(-3), Some(vec![7])));
    }

    #[test]
    fn shared_data_cas() {
        let e = SimEnvoy::new();
        assert_eq!(e.get_shared("k"), Err(NOT_FOUND));
        e.set_shared("k", b"a", 0).unwrap();
        let (v, cas) = e.get_shared("k").unwrap();
        assert_eq!(v, b"a");
        e.set_shared("k", b"b", cas).unwrap();
        assert_eq!(e.set_shared("k", b"c", cas), Err(CAS_MISMATCH));
        assert_eq!(e.shared_data("k"), Some(b"b".to_vec()));
    }
}
