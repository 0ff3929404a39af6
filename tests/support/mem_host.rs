//! An in-memory Envoy for native lifecycle tests: a stats store with Envoy's semantics
//! (counters reject deltas <= 0, gauges go both ways, histograms keep every sample, the same
//! name is the same stat across VMs), shared data with CAS versions, a test-controlled clock,
//! and streams that carry request headers and properties.
//!
//! It decodes `key=.=value;.;` stat names on its own, independently of the crate's encoder,
//! so a bug in the encoding shows up as a missing series rather than cancelling out.
//!
//! Scenario API:
//! ```ignore
//! let envoy = MemEnvoy::new();
//! let vm = envoy.vm(CONFIG).unwrap();           // one Envoy worker's VM
//! let mut up = vm.request("POST", "/api/v1/upload");
//! up.send_body(1000);
//! envoy.advance_ms(40);
//! up.respond(201, 57);                           // response code + body bytes
//! up.complete();                                 // on_log
//! assert_eq!(envoy.counter("uploads_total", &[("route", "/api/v1/upload"), ("status", "success")]), Some(1));
//! ```

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use routemeter::config::ConfigError;
use routemeter::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, Property, SharedStore, StreamHost};
use routemeter::plugin::Plugin;
use routemeter::stream::StreamRecorder;

/// Labels of a series, sorted by key.
pub type Labels = BTreeMap<String, String>;

#[derive(Debug, Clone, PartialEq)]
pub enum StatValue {
    Counter(u64),
    Gauge(i64),
    Histogram(Vec<u64>),
}

#[derive(Debug)]
struct Stat {
    kind: MetricKind,
    value: StatValue,
}

/// Host-call failure injection.
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    pub metrics: bool,
    pub shared_data: bool,
    pub headers: bool,
    pub clock: bool,
}

#[derive(Default)]
struct EnvoyState {
    /// Full stat name -> stat; ids index into `by_id`.
    stats: HashMap<String, usize>,
    by_id: Vec<Stat>,
    names: Vec<String>,
    shared: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    define_calls: usize,
}

/// The simulated Envoy: state shared by all VMs (worker threads) of the plugin.
#[derive(Clone, Default)]
pub struct MemEnvoy {
    state: Rc<RefCell<EnvoyState>>,
    clock_ns: Rc<Cell<u64>>,
    faults: Rc<Cell<Faults>>,
}

impl MemEnvoy {
    pub fn new() -> MemEnvoy {
        let envoy = MemEnvoy::default();
        envoy.clock_ns.set(1_700_000_000_000_000_000);
        envoy
    }

    /// A new VM with this plugin configuration, as Envoy's `on_configure` would build it.
    pub fn vm(&self, config_json: &str) -> Result<Vm, ConfigError> {
        let plugin = routemeter::plugin::configure(config_json.as_bytes(), self)?;
        Ok(Vm { envoy: self.clone(), plugin: Rc::new(RefCell::new(plugin)) })
    }

    pub fn advance_ms(&self, ms: u64) {
        self.clock_ns.set(self.clock_ns.get() + ms * 1_000_000);
    }

    pub fn advance_ns(&self, ns: u64) {
        self.clock_ns.set(self.clock_ns.get() + ns);
    }

    pub fn set_faults(&self, faults: Faults) {
        self.faults.set(faults);
    }

    /// How many times `define_metric` was called (the expensive host call).
    pub fn define_calls(&self) -> usize {
        self.state.borrow().define_calls
    }

    /// Every series, decoded into (metric name, labels) -> value.
    pub fn series(&self) -> BTreeMap<(String, Labels), StatValue> {
        let state = self.state.borrow();
        state
            .names
            .iter()
            .zip(&state.by_id)
            .map(|(name, stat)| {
                let (metric, labels) = decode_stat_name(name);
                ((metric, labels), stat.value.clone())
            })
            .collect()
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

    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.state.borrow().shared.get(key).map(|(v, _)| v.clone())
    }
}

/// Splits `k1=.=v1;.;k2=.=v2;.;name` into the name and its labels, the way the bootstrap's
/// `stats_tags` regexes do.
pub fn decode_stat_name(full: &str) -> (String, Labels) {
    let mut labels = Labels::new();
    let mut rest = full;
    while let Some(eq) = rest.find("=.=") {
        let Some(end) = rest[eq..].find(";.;") else { break };
        let key = &rest[..eq];
        let value = &rest[eq + 3..eq + end];
        labels.insert(key.to_string(), value.to_string());
        rest = &rest[eq + end + 3..];
    }
    (rest.to_string(), labels)
}

impl MetricsHost for MemEnvoy {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        if self.faults.get().metrics {
            return Err(HostError(10));
        }
        let mut s = self.state.borrow_mut();
        s.define_calls += 1;
        if let Some(&id) = s.stats.get(name) {
            assert_eq!(s.by_id[id].kind, kind, "{name} redefined with another kind");
            return Ok(id as MetricId);
        }
        let id = s.by_id.len();
        let value = match kind {
            MetricKind::Counter => StatValue::Counter(0),
            MetricKind::Gauge => StatValue::Gauge(0),
            MetricKind::Histogram => StatValue::Histogram(Vec::new()),
        };
        s.by_id.push(Stat { kind, value });
        s.names.push(name.to_string());
        s.stats.insert(name.to_string(), id);
        Ok(id as MetricId)
    }

    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        if self.faults.get().metrics {
            return Err(HostError(10));
        }
        let mut s = self.state.borrow_mut();
        let stat = s.by_id.get_mut(id as usize).ok_or(HostError(1))?;
        match &mut stat.value {
            StatValue::Counter(v) if delta > 0 => *v += delta as u64,
            StatValue::Counter(_) => return Err(HostError(2)),
            StatValue::Gauge(v) => *v += delta,
            StatValue::Histogram(_) => return Err(HostError(2)),
        }
        Ok(())
    }

    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        if self.faults.get().metrics {
            return Err(HostError(10));
        }
        let mut s = self.state.borrow_mut();
        let stat = s.by_id.get_mut(id as usize).ok_or(HostError(1))?;
        match &mut stat.value {
            StatValue::Histogram(samples) => samples.push(value),
            // Envoy sets a gauge on record.
            StatValue::Gauge(v) => *v = value as i64,
            other => panic!("record_metric on a counter: {other:?}"),
        }
        Ok(())
    }
}

impl SharedStore for MemEnvoy {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        if self.faults.get().shared_data {
            return Err(HostError(10));
        }
        Ok(match self.state.borrow().shared.get(key) {
            Some((v, cas)) => (Some(v.clone()), *cas),
            None => (None, 0),
        })
    }

    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        if self.faults.get().shared_data {
            return Err(HostError(10));
        }
        let mut s = self.state.borrow_mut();
        if let Some((_, current)) = s.shared.get(key) {
            if cas != 0 && cas != *current {
                return Ok(CasWrite::Conflict);
            }
        }
        s.next_cas += 1;
        let next = s.next_cas;
        s.shared.insert(key.to_string(), (value.to_vec(), next));
        Ok(CasWrite::Stored)
    }
}

/// One VM (one Envoy worker thread) running the plugin.
pub struct Vm {
    envoy: MemEnvoy,
    plugin: Rc<RefCell<Plugin>>,
}

impl Vm {
    /// Starts a request: its headers arrive now.
    pub fn request(&self, method: &str, path: &str) -> Stream {
        self.request_raw(method.as_bytes(), path.as_bytes(), None)
    }

    /// A request whose Envoy route has a name (`xds.route_name`).
    pub fn request_on_route(&self, method: &str, path: &str, route_name: &str) -> Stream {
        self.request_raw(method.as_bytes(), path.as_bytes(), Some(route_name.as_bytes()))
    }

    /// A request with arbitrary bytes as method and path.
    pub fn request_raw(&self, method: &[u8], path: &[u8], route_name: Option<&[u8]>) -> Stream {
        let mut stream = Stream {
            envoy: self.envoy.clone(),
            plugin: self.plugin.clone(),
            recorder: StreamRecorder::default(),
            request_headers: vec![(":method".into(), method.to_vec()), (":path".into(), path.to_vec())],
            headers_readable: true,
            properties: HashMap::new(),
        };
        if let Some(name) = route_name {
            stream.properties.insert(PropertyKey::RouteName, name.to_vec());
        }
        stream.request_headers_done();
        stream
    }

    pub fn known_routes(&self) -> usize {
        self.plugin.borrow().known_routes()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PropertyKey {
    ResponseCode,
    RouteName,
}

/// One HTTP stream in flight through the VM.
pub struct Stream {
    envoy: MemEnvoy,
    plugin: Rc<RefCell<Plugin>>,
    recorder: StreamRecorder,
    request_headers: Vec<(String, Vec<u8>)>,
    /// Envoy only serves request headers during the request-headers callback.
    headers_readable: bool,
    properties: HashMap<PropertyKey, Vec<u8>>,
}

impl Stream {
    fn request_headers_done(&mut self) {
        let plugin = self.plugin.clone();
        let mut plugin = plugin.borrow_mut();
        let mut recorder = std::mem::take(&mut self.recorder);
        recorder.on_request_headers(&mut plugin, &*self);
        self.recorder = recorder;
        self.headers_readable = false;
    }

    /// A request body chunk of `len` bytes passes through.
    pub fn send_body(&mut self, len: usize) -> &mut Self {
        self.recorder.on_request_body(len);
        self
    }

    /// The response starts with `status` and sends `body_len` bytes (in one chunk).
    pub fn respond(&mut self, status: u16, body_len: usize) -> &mut Self {
        self.properties.insert(PropertyKey::ResponseCode, u64::from(status).to_le_bytes().to_vec());
        if body_len > 0 {
            self.recorder.on_response_body(body_len);
        }
        self
    }

    /// A further response body chunk.
    pub fn response_body(&mut self, len: usize) -> &mut Self {
        self.recorder.on_response_body(len);
        self
    }

    /// The stream ends: Envoy calls `on_log` (normal completion, local reply or reset alike).
    pub fn complete(mut self) {
        self.log();
    }

    /// Envoy calls `on_log` once more on the same stream (must not double count).
    pub fn log(&mut self) {
        let plugin = self.plugin.clone();
        let mut plugin = plugin.borrow_mut();
        let mut recorder = std::mem::take(&mut self.recorder);
        recorder.on_log(&mut plugin, &*self);
        self.recorder = recorder;
    }

    pub fn is_active(&self) -> bool {
        self.recorder.is_active()
    }
}

impl StreamHost for Stream {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        if !self.headers_readable || self.envoy.faults.get().headers {
            return None;
        }
        self.request_headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    fn property(&self, property: Property) -> Option<Vec<u8>> {
        let key = match property {
            Property::ResponseCode => PropertyKey::ResponseCode,
            Property::RouteName => PropertyKey::RouteName,
        };
        self.properties.get(&key).cloned()
    }

    fn now_nanos(&self) -> Option<u64> {
        (!self.envoy.faults.get().clock).then(|| self.envoy.clock_ns.get())
    }
}

impl MetricsHost for Stream {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        self.envoy.define_metric(kind, name)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.envoy.increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.envoy.record_metric(id, value)
    }
}

impl SharedStore for Stream {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        self.envoy.get_shared(key)
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        self.envoy.set_shared(key, value, cas)
    }
}
