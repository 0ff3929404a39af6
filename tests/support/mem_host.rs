//! The native host: the filter's Rust core linked into the test, reaching a simulated Envoy
//! ([`proxy_sim::SimEnvoy`]) through the core's host traits. It implements the same
//! scenario API as the wasm host (`proxy_sim::WasmHost`), so behavioural tests run on both.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_sim::envoy::{Kind, Status, NOT_FOUND};
use proxy_sim::{Host, SimEnvoy, Stream, Vm};
use routemeter::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, SharedStore, StreamHost};
use routemeter::plugin::Plugin;
use routemeter::stream::StreamRecorder;

/// A simulated Envoy running the filter's core natively.
#[derive(Clone, Default)]
pub struct NativeHost {
    envoy: SimEnvoy,
}

impl NativeHost {
    pub fn new() -> NativeHost {
        NativeHost::default()
    }
}

impl Host for NativeHost {
    type Vm = NativeVm;

    fn name(&self) -> &'static str {
        "native"
    }

    fn envoy(&self) -> &SimEnvoy {
        &self.envoy
    }

    /// As the wasm glue's `on_configure` does it.
    fn vm(&self, config_json: &str) -> Result<NativeVm, String> {
        let plugin = routemeter::plugin::configure(config_json.as_bytes(), 0, &EnvoyCalls(&self.envoy))
            .map_err(|e| e.to_string())?;
        let vm = NativeVm { envoy: self.envoy.clone(), plugin: Rc::new(RefCell::new(plugin)), stopped: Rc::default() };
        let (weak, envoy, stopped) = (Rc::downgrade(&vm.plugin), self.envoy.clone(), vm.stopped.clone());
        self.envoy.register_ticker(Rc::new(move || {
            if let Some(plugin) = weak.upgrade() {
                NativeVm { envoy: envoy.clone(), plugin, stopped: stopped.clone() }.tick();
            }
        }));
        Ok(vm)
    }
}

/// The core's host traits on top of the simulated Envoy (no stream facts).
struct EnvoyCalls<'a>(&'a SimEnvoy);

fn host_err(Status(s): Status) -> HostError {
    HostError(s)
}

fn kind(k: MetricKind) -> Kind {
    match k {
        MetricKind::Counter => Kind::Counter,
        MetricKind::Gauge => Kind::Gauge,
        MetricKind::Histogram => Kind::Histogram,
    }
}

impl StreamHost for EnvoyCalls<'_> {
    fn method_and_path(&self) -> (Vec<u8>, Vec<u8>) {
        Default::default()
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
    fn response_body_bytes(&self) -> Option<u64> {
        None
    }
    fn now_nanos(&self) -> Option<u64> {
        self.0.now_ns().ok()
    }
}

impl MetricsHost for EnvoyCalls<'_> {
    fn define_metric(&self, k: MetricKind, name: &str) -> Result<MetricId, HostError> {
        self.0.define_metric(kind(k), name).map(MetricId).map_err(host_err)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.0.increment_metric(id.0, delta).map_err(host_err)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.0.record_metric(id.0, value).map_err(host_err)
    }
}

impl SharedStore for EnvoyCalls<'_> {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        match self.0.get_shared(key) {
            // Envoy hands an empty value over as no buffer.
            Ok((value, cas)) => Ok((Some(value).filter(|v| !v.is_empty()), cas)),
            Err(NOT_FOUND) => Ok((None, 0)),
            Err(e) => Err(host_err(e)),
        }
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        match self.0.set_shared(key, value, cas) {
            Ok(()) => Ok(CasWrite::Stored),
            Err(proxy_sim::envoy::CAS_MISMATCH) => Ok(CasWrite::Conflict),
            Err(e) => Err(host_err(e)),
        }
    }
}

/// One VM (one Envoy worker thread) running the core.
pub struct NativeVm {
    envoy: SimEnvoy,
    plugin: Rc<RefCell<Plugin>>,
    stopped: Rc<std::cell::Cell<bool>>,
}

impl NativeVm {
    /// Route labels this VM knows (the wasm host cannot see inside the VM).
    pub fn known_routes(&self) -> usize {
        self.plugin.borrow().known_routes()
    }
}

impl Vm for NativeVm {
    type Stream = NativeStream;

    fn request_raw(&self, method: &[u8], path: &[u8], route_name: Option<&[u8]>) -> NativeStream {
        let mut stream = self.stream(method, path, route_name);
        stream.callback(|rec, plugin, host| rec.on_request_headers(plugin, host));
        stream.headers_readable = false;
        stream
    }

    fn local_reply_before_filter(&self, method: &[u8], path: &[u8], status: u16, body_len: u64) {
        let mut stream = self.stream(method, path, None);
        stream.response_code = Some(status);
        stream.response_bytes = body_len;
        stream.complete();
    }

    fn stop(&self) {
        self.stop_vm();
    }

    /// As the wasm glue's `on_tick` and `on_http_call_response` do it.
    fn tick(&self) {
        if self.stopped.get() {
            return;
        }
        let calls = EnvoyCalls(&self.envoy);
        let now = self.envoy.now_ns().ok();
        let Some(fetch) = self.plugin.borrow_mut().tick(now, &calls) else { return };
        let now = now.unwrap_or(0);
        match self.envoy.http_call(&fetch.cluster, &fetch.path, &fetch.authority) {
            Ok(Some((status, body))) => {
                self.plugin.borrow_mut().openapi_response(now, Some(status), body.len(), || Some(body.clone()), &calls)
            }
            Ok(None) => self.plugin.borrow_mut().openapi_response(now, None, 0, || None, &calls),
            Err(_) => self.plugin.borrow_mut().openapi_dispatch_failed(now, &calls),
        }
    }
}

impl NativeVm {
    /// As the wasm glue's root `on_done` does it.
    fn stop_vm(&self) {
        if !self.stopped.replace(true) {
            self.plugin.borrow_mut().stop(&EnvoyCalls(&self.envoy));
        }
    }

    fn stream(&self, method: &[u8], path: &[u8], route_name: Option<&[u8]>) -> NativeStream {
        NativeStream {
            envoy: self.envoy.clone(),
            plugin: self.plugin.clone(),
            recorder: StreamRecorder::default(),
            request_headers: vec![(":method".into(), method.to_vec()), (":path".into(), path.to_vec())],
            headers_readable: true,
            response_code: None,
            route_name: route_name.map(<[u8]>::to_vec),
            started_ns: self.envoy.clock_ns(),
            response_bytes: 0,
        }
    }
}

/// One HTTP stream in flight through the native VM.
pub struct NativeStream {
    envoy: SimEnvoy,
    plugin: Rc<RefCell<Plugin>>,
    recorder: StreamRecorder,
    request_headers: Vec<(String, Vec<u8>)>,
    /// Envoy only serves request headers during the request-headers callback.
    headers_readable: bool,
    response_code: Option<u16>,
    route_name: Option<Vec<u8>>,
    started_ns: u64,
    /// What Envoy reports as `response.size`.
    response_bytes: u64,
}

impl NativeStream {
    fn callback(&mut self, f: impl FnOnce(&mut StreamRecorder, &mut Plugin, &NativeStream)) {
        let plugin = self.plugin.clone();
        let mut plugin = plugin.borrow_mut();
        let mut recorder = std::mem::take(&mut self.recorder);
        f(&mut recorder, &mut plugin, self);
        self.recorder = recorder;
    }

    pub fn is_active(&self) -> bool {
        self.recorder.is_recording()
    }
}

impl Stream for NativeStream {
    fn send_body(&mut self, len: usize) -> &mut Self {
        self.recorder.on_request_body(len);
        self
    }

    fn respond(&mut self, status: u16, body_len: usize) -> &mut Self {
        self.response_code = Some(status);
        if body_len > 0 {
            self.response_body(body_len);
        }
        self
    }

    fn response_body(&mut self, len: usize) -> &mut Self {
        self.response_bytes += len as u64;
        self.recorder.on_response_body(len);
        self
    }

    /// Envoy serves request headers again in the log phase.
    fn log(&mut self) {
        self.headers_readable = true;
        self.callback(|rec, plugin, host| rec.on_log(plugin, host));
        self.headers_readable = false;
    }
}

impl StreamHost for NativeStream {
    fn method_and_path(&self) -> (Vec<u8>, Vec<u8>) {
        if !self.headers_readable || self.envoy.faults().headers {
            return Default::default();
        }
        let get = |name: &str| {
            self.request_headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
        };
        (get(":method"), get(":path"))
    }

    /// Response headers are readable in the log phase, once a response was sent.
    fn response_status(&self) -> Option<u16> {
        if !self.headers_readable || self.envoy.faults().headers {
            return None;
        }
        self.response_code.filter(|c| (100..=999).contains(c))
    }

    fn route_name(&self) -> Option<Vec<u8>> {
        self.route_name.clone()
    }

    fn request_duration_ns(&self) -> Option<u64> {
        Some(self.envoy.clock_ns().saturating_sub(self.started_ns))
    }

    fn response_body_bytes(&self) -> Option<u64> {
        Some(self.response_bytes)
    }

    fn now_nanos(&self) -> Option<u64> {
        self.envoy.now_ns().ok()
    }
}

impl MetricsHost for NativeStream {
    fn define_metric(&self, k: MetricKind, name: &str) -> Result<MetricId, HostError> {
        EnvoyCalls(&self.envoy).define_metric(k, name)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        EnvoyCalls(&self.envoy).increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        EnvoyCalls(&self.envoy).record_metric(id, value)
    }
}

impl SharedStore for NativeStream {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        EnvoyCalls(&self.envoy).get_shared(key)
    }
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        EnvoyCalls(&self.envoy).set_shared(key, value, cas)
    }
}
