//! The native host: the filter's Rust core linked into the test and driven by context id the
//! way the wasm glue drives it (`routemeter::filter::Filter`), over proxy-sim's simulated
//! Envoy, whose stats and shared data are routemeter's in-memory host. It implements the
//! same scenario API as the wasm host (`proxy_sim::WasmHost`), so behavioural tests run on
//! both.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use proxy_sim::{Host, SimEnvoy, Stream, Vm};
use routemeter::filter::Filter;
use routemeter::host::memory::StreamFacts;

/// The root context's id, as in the wasm host.
const ROOT: u32 = 1;

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
        let vm = NativeVm {
            envoy: self.envoy.clone(),
            filter: Rc::default(),
            next_context: Rc::new(Cell::new(ROOT + 1)),
            stopped: Rc::default(),
        };
        vm.reconfigure(config_json)?;
        let (weak, envoy, next_context, stopped) =
            (Rc::downgrade(&vm.filter), self.envoy.clone(), vm.next_context.clone(), vm.stopped.clone());
        self.envoy.register_ticker(Rc::new(move || {
            if let Some(filter) = weak.upgrade() {
                let (envoy, next_context, stopped) = (envoy.clone(), next_context.clone(), stopped.clone());
                NativeVm { envoy, filter, next_context, stopped }.tick();
            }
        }));
        Ok(vm)
    }
}

/// One VM (one Envoy worker thread) running the core.
pub struct NativeVm {
    envoy: SimEnvoy,
    filter: Rc<RefCell<Filter>>,
    next_context: Rc<Cell<u32>>,
    stopped: Rc<Cell<bool>>,
}

impl NativeVm {
    /// Route labels this VM knows (the wasm host cannot see inside the VM).
    pub fn known_routes(&self) -> usize {
        self.filter.borrow().plugins().map(|p| p.known_routes()).sum()
    }

    /// Request headers arrive for a new stream (`on_request_headers`).
    fn start_request(
        &self,
        method: &[u8],
        path: &[u8],
        route_name: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> NativeStream {
        let mut stream = self.stream(method, path, route_name);
        stream.facts.headers = headers.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
        stream.facts.headers_readable = true;
        let context = stream.context;
        self.filter.borrow_mut().request_headers(context, &self.envoy.host().on_stream(&stream.facts));
        stream.facts.headers_readable = false;
        stream
    }

    fn stream(&self, method: &[u8], path: &[u8], route_name: Option<&[u8]>) -> NativeStream {
        let context = self.next_context.get();
        self.next_context.set(context + 1);
        NativeStream {
            envoy: self.envoy.clone(),
            filter: self.filter.clone(),
            context,
            facts: StreamFacts {
                method: method.to_vec(),
                path: path.to_vec(),
                route_name: route_name.map(<[u8]>::to_vec),
                ..StreamFacts::default()
            },
            started_ns: self.envoy.clock_ns(),
            request_bytes: 0,
            response_bytes: 0,
            deleted: false,
        }
    }
}

impl Vm for NativeVm {
    type Stream = NativeStream;

    fn request_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> NativeStream {
        self.start_request(method.as_bytes(), path.as_bytes(), None, headers)
    }

    fn request_raw(&self, method: &[u8], path: &[u8], route_name: Option<&[u8]>) -> NativeStream {
        self.start_request(method, path, route_name, &[])
    }

    fn local_reply_before_filter(&self, method: &[u8], path: &[u8], request_body: u64, status: u16, body_len: u64) {
        let mut stream = self.stream(method, path, None);
        stream.facts.status = Some(status);
        (stream.request_bytes, stream.response_bytes) = (request_body, body_len);
        stream.complete();
    }

    /// As the wasm glue's `on_configure` does it (the plugin has no name).
    fn reconfigure(&self, config_json: &str) -> Result<(), String> {
        let configured = self.filter.borrow_mut().configure(ROOT, "", config_json.as_bytes(), self.envoy.host());
        configured.map(|_| ()).map_err(|e| e.to_string())
    }

    /// As Envoy stops a VM: the root context goes (`on_delete`).
    fn stop(&self) {
        if !self.stopped.replace(true) {
            self.filter.borrow_mut().delete(ROOT, self.envoy.host());
        }
    }

    /// As the wasm glue's `on_tick` and `on_http_call_response` do it.
    fn tick(&self) {
        if self.stopped.get() {
            return;
        }
        let host = self.envoy.host();
        let Some(fetch) = self.filter.borrow_mut().tick(ROOT, host) else { return };
        let mut filter = self.filter.borrow_mut();
        // Answered at once, as the wasm host does; one call at a time, so one token.
        let answer = self.envoy.http_call(&fetch.cluster, &fetch.path, &fetch.authority);
        filter.openapi_dispatched(ROOT, answer.as_ref().map(|_| 1).map_err(|_| ()), host);
        match answer {
            Ok(Some((status, body))) => filter.openapi_response(1, (Some(status), body.len()), &body[..], host),
            Ok(None) => filter.openapi_response(1, (None, 0), std::io::empty(), host),
            Err(_) => {}
        }
    }
}

/// One HTTP stream in flight through the native VM.
pub struct NativeStream {
    envoy: SimEnvoy,
    filter: Rc<RefCell<Filter>>,
    context: u32,
    facts: StreamFacts,
    started_ns: u64,
    /// Request body bytes Envoy received.
    request_bytes: u64,
    /// What Envoy reports as `response.size`.
    response_bytes: u64,
    deleted: bool,
}

impl NativeStream {
    pub fn is_active(&self) -> bool {
        self.filter.borrow().is_recording(self.context)
    }
}

impl Stream for NativeStream {
    fn send_body(&mut self, len: usize) -> &mut Self {
        self.request_bytes += len as u64;
        self.filter.borrow_mut().request_body(self.context, len);
        self
    }

    fn respond(&mut self, status: u16, body_len: usize) -> &mut Self {
        self.facts.status = Some(status);
        if body_len > 0 {
            self.response_body(body_len);
        }
        self
    }

    fn response_body(&mut self, len: usize) -> &mut Self {
        self.response_bytes += len as u64;
        self.filter.borrow_mut().response_body(self.context, len);
        self
    }

    /// Envoy serves request headers again in the log phase, and the stream's totals.
    fn log(&mut self) {
        self.facts.headers_readable = true;
        self.facts.duration_ns = Some(self.envoy.clock_ns().saturating_sub(self.started_ns));
        (self.facts.request_body_bytes, self.facts.response_body_bytes) =
            (Some(self.request_bytes), Some(self.response_bytes));
        self.filter.borrow_mut().log(self.context, &self.envoy.host().on_stream(&self.facts));
        self.facts.headers_readable = false;
    }

    fn complete(mut self) {
        self.log();
        self.delete();
    }
}

impl NativeStream {
    fn delete(&mut self) {
        self.filter.borrow_mut().delete(self.context, self.envoy.host());
        self.deleted = true;
    }
}

impl Drop for NativeStream {
    /// A stream the test did not complete still gets its context deleted, as in Envoy.
    fn drop(&mut self) {
        if !self.deleted && !std::thread::panicking() {
            self.delete();
        }
    }
}
