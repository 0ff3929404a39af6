//! The parts of Envoy a proxy-wasm filter can observe, shared by every VM (worker thread) of
//! one simulated Envoy: stats, shared data, the clock and faults are routemeter's in-memory
//! host (`routemeter::host::memory`, the one test double of Envoy's rules); this adds the
//! upstreams HTTP calls reach, the VMs' ticks, and reading the stats back the way
//! `/stats/prometheus` shows them, with stat names decoded independently of the filter.
//!
//! Both hosts use it: the native host (`routemeter-tests`' `native`) and the wasm host
//! ([`crate::wasm`]), so a scenario's metrics can be compared between them exactly.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

pub use routemeter::abi::Status;
pub use routemeter::host::memory::{Faults, MemoryHost, StatValue};

/// Labels of a series, sorted by key.
pub type LabelSet = BTreeMap<String, String>;

/// An upstream's answer to an HTTP call: status and body; `None` is no answer (a timeout).
pub type Answer = Option<(u16, Vec<u8>)>;

/// A VM's tick, as registered by its host.
type Ticker = Rc<dyn Fn()>;

/// What Envoy answers HTTP calls with, and the calls made.
#[derive(Default)]
struct Upstreams {
    /// `(cluster, path)` -> the upstream's answer (`None`: no answer, a timeout).
    answers: HashMap<(String, String), Answer>,
    /// Every HTTP call a filter made: `(cluster, path, authority)`.
    calls: Vec<(String, String, String)>,
}

/// One simulated Envoy. Cloning gives another handle to the same Envoy.
#[derive(Clone, Default)]
pub struct SimEnvoy {
    /// Stats, shared data, clock and faults: routemeter's in-memory host, which follows
    /// Envoy's rules.
    host: Rc<MemoryHost>,
    upstreams: Rc<RefCell<Upstreams>>,
    /// Every VM's tick: reading the stats first lets every VM flush (see `settle`).
    tickers: Rc<RefCell<Vec<Ticker>>>,
}

impl SimEnvoy {
    pub fn new() -> SimEnvoy {
        SimEnvoy::default()
    }

    /// Envoy's stats, shared data, clock and faults, as every VM of it reaches them.
    pub fn host(&self) -> &MemoryHost {
        &self.host
    }

    // ---- clock and faults -------------------------------------------------------------

    pub fn advance_ms(&self, ms: u64) {
        self.advance_ns(ms * 1_000_000);
    }

    pub fn advance_ns(&self, ns: u64) {
        self.host.advance_ns(ns);
    }

    /// The host's own clock, for its bookkeeping (`request.duration`); never faulted.
    pub fn clock_ns(&self) -> u64 {
        self.host.clock_ns()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.host.set_faults(faults);
    }

    pub fn faults(&self) -> Faults {
        self.host.faults()
    }

    // ---- stats ------------------------------------------------------------------------

    /// How many times `define_metric` was called (the expensive host call), once every VM
    /// has flushed.
    pub fn define_calls(&self) -> usize {
        self.settle();
        self.host.calls().define
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

    /// Another worker acts right after the next shared-data read (by anyone) returns.
    pub fn after_next_shared_read(&self, hook: impl FnOnce() + 'static) {
        self.host.after_next_shared_read(hook);
    }

    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.host.shared_value(key)
    }

    /// Shared-data writes to `key` made with CAS 0, which Envoy does not check: on a key
    /// several workers write, one of them can overwrite what another wrote a moment before.
    pub fn unchecked_shared_writes(&self, key: &str) -> usize {
        self.host.unchecked_writes(key)
    }

    // ---- HTTP calls from the root context -----------------------------------------------

    /// What `cluster` answers for `path`: a status and body, or `None` for no answer.
    pub fn serve(&self, cluster: &str, path: &str, answer: Option<(u16, &[u8])>) {
        let answer = answer.map(|(status, body)| (status, body.to_vec()));
        self.upstreams.borrow_mut().answers.insert((cluster.to_string(), path.to_string()), answer);
    }

    /// A filter's HTTP call: recorded, and answered from [`serve`](Self::serve) (an unknown
    /// cluster is BadArgument, as in Envoy; a known cluster without that path answers 404).
    pub fn http_call(&self, cluster: &str, path: &str, authority: &str) -> Result<Answer, Status> {
        let mut u = self.upstreams.borrow_mut();
        if !u.answers.keys().any(|(c, _)| c == cluster) {
            return Err(Status::BadArgument);
        }
        u.calls.push((cluster.to_string(), path.to_string(), authority.to_string()));
        Ok(u.answers.get(&(cluster.to_string(), path.to_string())).cloned().unwrap_or(Some((404, Vec::new()))))
    }

    /// Every HTTP call made so far: `(cluster, path, authority)`.
    pub fn http_calls(&self) -> Vec<(String, String, String)> {
        self.upstreams.borrow().calls.clone()
    }

    // ---- reading metrics back, the way /stats/prometheus would show them --------------

    /// Every series, decoded into (metric name, labels) -> value, once every VM has flushed.
    /// A call Envoy would have refused fails the test (it is a bug in the filter).
    pub fn series(&self) -> BTreeMap<(String, LabelSet), StatValue> {
        self.settle();
        assert_eq!(self.host.refused(), Vec::<String>::new(), "calls Envoy refuses");
        self.host.stats().into_iter().map(|(_, name, value)| (decode_stat_name(&name), value)).collect()
    }

    fn get(&self, metric: &str, labels: &[(&str, &str)]) -> Option<StatValue> {
        let want: LabelSet = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
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
        let want: LabelSet = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let counter = |name: String, l: &LabelSet| match series.get(&(name, l.clone())) {
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
pub fn decode_stat_name(full: &str) -> (String, LabelSet) {
    let mut labels = LabelSet::new();
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
}
