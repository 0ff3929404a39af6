//! The compiled filter under wasmtime, driven the way Envoy drives it: `_initialize`, a root
//! context with `on_vm_start` and `on_configure`, then per stream `on_context_create`,
//! `on_request_headers`, `on_request_body`*, `on_response_headers`, `on_response_body`*,
//! `on_log`, `on_done`, `on_delete`. A trap fails the test with the filter's last critical
//! log line (its panic message). Fuel metering counts the work each call does.

mod imports;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::OnceLock;

use routemeter::abi::LogLevel;
use wasmtime::{Config, Engine, Instance, Linker, Module, Store, TypedFunc};

pub use imports::{StreamFacts, VmState, IMPLEMENTED};

use crate::envoy::SimEnvoy;
use crate::scenario::{Host, Stream, Vm};

const ROOT_CONTEXT: i32 = 1;
/// The prefix of the filter's log line for a rejected configuration.
const CONFIG_REJECTED: &str = "invalid plugin configuration: ";

/// The module under test: `$ROUTEMETER_WASM`, or the filter `make wasm` ships. A shipped file
/// older than cargo's own output (a `cargo build` without `make wasm`) would test old code,
/// so that is refused.
pub fn wasm_path() -> PathBuf {
    testkit::bootstrap::wasm_path()
}

/// Compiled once per test process (compiling takes most of the start-up time).
fn compiled() -> &'static (Engine, Module) {
    static COMPILED: OnceLock<(Engine, Module)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let path = wasm_path();
        assert!(path.exists(), "no filter at {}: run `make wasm` (make test does)", path.display());
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).unwrap_or_else(|e| panic!("wasmtime engine: {e}"));
        let module = Module::from_file(&engine, &path).unwrap_or_else(|e| panic!("compile {}: {e}", path.display()));
        (engine, module)
    })
}

/// A simulated Envoy running the compiled filter.
#[derive(Clone, Default)]
pub struct WasmHost {
    envoy: SimEnvoy,
}

impl WasmHost {
    pub fn new() -> WasmHost {
        WasmHost::default()
    }

    /// A VM, or the instantiation error (for tests of the harness itself).
    pub fn start_vm(&self, config_json: &str) -> Result<WasmVm, String> {
        WasmVm::start(self.envoy.clone(), config_json)
    }
}

impl Host for WasmHost {
    type Vm = WasmVm;

    fn name(&self) -> &'static str {
        "wasm"
    }

    fn envoy(&self) -> &SimEnvoy {
        &self.envoy
    }

    fn vm(&self, config_json: &str) -> Result<WasmVm, String> {
        self.start_vm(config_json)
    }
}

/// The stream callbacks, each `None` when the module does not export it: Envoy skips those
/// with no VM entry, and so does the simulator.
struct Exports {
    context_create: Option<TypedFunc<(i32, i32), ()>>,
    request_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    request_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    response_headers: Option<TypedFunc<(i32, i32, i32), i32>>,
    response_body: Option<TypedFunc<(i32, i32, i32), i32>>,
    log: Option<TypedFunc<i32, ()>>,
    done: Option<TypedFunc<i32, i32>>,
    delete: Option<TypedFunc<i32, ()>>,
}

/// Calls an optional export: Envoy's default when the module does not export it.
fn call_or<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
    func: &Option<TypedFunc<P, R>>,
    store: &mut Store<VmState>,
    params: P,
    absent: R,
) -> wasmtime::Result<R> {
    match func {
        Some(f) => {
            store.data_mut().entries += 1;
            f.call(store, params)
        }
        None => Ok(absent),
    }
}

struct Inner {
    store: Store<VmState>,
    instance: Instance,
    exports: Exports,
    next_context: i32,
    stopped: bool,
}

/// One VM (one Envoy worker thread) running the compiled filter.
#[derive(Clone)]
pub struct WasmVm {
    inner: Rc<RefCell<Inner>>,
}

impl WasmVm {
    fn start(envoy: SimEnvoy, config_json: &str) -> Result<WasmVm, String> {
        let (engine, module) = compiled();
        let mut linker = Linker::new(engine);
        imports::link(&mut linker, module).map_err(|e| format!("link: {e}"))?;
        let state = VmState::new(envoy, config_json.as_bytes().to_vec());
        let mut store = Store::new(engine, state);
        store.set_fuel(u64::MAX).map_err(|e| e.to_string())?;
        let instance = linker.instantiate(&mut store, module).map_err(|e| format!("instantiate: {e}"))?;
        // Like Envoy, look every callback up by name; a missing one is skipped, one with the
        // wrong signature fails the load.
        let exports = {
            fn get<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
                instance: &Instance,
                store: &mut Store<VmState>,
                name: &str,
            ) -> Result<Option<TypedFunc<P, R>>, String> {
                match instance.get_func(&mut *store, name) {
                    None => Ok(None),
                    Some(f) => f.typed::<P, R>(&*store).map(Some).map_err(|e| format!("{name}: {e}")),
                }
            }
            Exports {
                context_create: get(&instance, &mut store, "proxy_on_context_create")?,
                request_headers: get(&instance, &mut store, "proxy_on_request_headers")?,
                request_body: get(&instance, &mut store, "proxy_on_request_body")?,
                response_headers: get(&instance, &mut store, "proxy_on_response_headers")?,
                response_body: get(&instance, &mut store, "proxy_on_response_body")?,
                log: get(&instance, &mut store, "proxy_on_log")?,
                done: get(&instance, &mut store, "proxy_on_done")?,
                delete: get(&instance, &mut store, "proxy_on_delete")?,
            }
        };
        let vm = WasmVm {
            inner: Rc::new(RefCell::new(Inner {
                store,
                instance,
                exports,
                next_context: ROOT_CONTEXT + 1,
                stopped: false,
            })),
        };
        vm.call_export::<(), ()>("_initialize", ())?;
        if vm.exports_fn("proxy_on_context_create") {
            vm.call_export::<(i32, i32), ()>("proxy_on_context_create", (ROOT_CONTEXT, 0))?;
        }
        if vm.exports_fn("proxy_on_vm_start")
            && vm.call_export::<(i32, i32), i32>("proxy_on_vm_start", (ROOT_CONTEXT, 0))? == 0
        {
            return Err("on_vm_start returned false".into());
        }
        vm.configure(config_json)?;
        let weak = Rc::downgrade(&vm.inner);
        envoy_of(&vm).register_ticker(Rc::new(move || {
            if let Some(inner) = weak.upgrade() {
                WasmVm { inner }.tick();
            }
        }));
        Ok(vm)
    }

    /// `proxy_on_configure` of the root context with this configuration. routemeter accepts
    /// every configuration at the ABI level (so Envoy keeps running) and reports a rejected
    /// one in its log: that is the `Err`.
    fn configure(&self, config_json: &str) -> Result<(), String> {
        let seen = self.logs().len();
        self.inner.borrow_mut().store.data_mut().plugin_config = config_json.as_bytes().to_vec();
        let size = config_json.len() as i32;
        if self.exports_fn("proxy_on_configure")
            && self.call_export::<(i32, i32), i32>("proxy_on_configure", (ROOT_CONTEXT, size))? == 0
        {
            return Err("on_configure returned false".into());
        }
        match self
            .logs()
            .into_iter()
            .skip(seen)
            .find_map(|(_, l)| l.find(CONFIG_REJECTED).map(|i| l[i + CONFIG_REJECTED.len()..].to_string()))
        {
            Some(line) => Err(line.split("; routemeter records nothing").next().unwrap_or(&line).to_string()),
            None => Ok(()),
        }
    }

    /// Whether the module exports a function of this name.
    pub fn exports_fn(&self, name: &str) -> bool {
        let mut inner = self.inner.borrow_mut();
        let Inner { store, instance, .. } = &mut *inner;
        instance.get_func(&mut *store, name).is_some()
    }

    /// VM entries for stream callbacks so far (each costs a transition in Envoy).
    pub fn stream_entries(&self) -> u64 {
        self.inner.borrow().store.data().entries
    }

    /// Calls an export by name; a trap becomes `Err` with the filter's last critical log.
    pub fn call_export<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &self,
        name: &str,
        params: P,
    ) -> Result<R, String> {
        let mut inner = self.inner.borrow_mut();
        let Inner { store, instance, .. } = &mut *inner;
        let func = instance.get_typed_func::<P, R>(&mut *store, name).map_err(|e| format!("export {name}: {e}"))?;
        func.call(&mut *store, params).map_err(|e| trap_report(name, &e, store.data()))
    }

    /// Names of the module's imports that are linked to trapping stubs (not simulated).
    pub fn stubbed_imports() -> Vec<String> {
        let (_, module) = compiled();
        module
            .imports()
            .filter(|i| !(i.module() == "env" && IMPLEMENTED.contains(&i.name())))
            .map(|i| i.name().to_string())
            .collect()
    }

    /// Calls an import the way the filter would, with zeroed arguments (harness self-test).
    pub fn call_import(&self, name: &str) -> Result<(), String> {
        let (engine, module) = compiled();
        let mut inner = self.inner.borrow_mut();
        let store = &mut inner.store;
        let mut linker = Linker::new(engine);
        imports::link(&mut linker, module).map_err(|e| e.to_string())?;
        let func = match linker.get(&mut *store, "env", name) {
            Ok(wasmtime::Extern::Func(f)) => f,
            _ => return Err(format!("no import {name}")),
        };
        let ty = func.ty(&*store);
        let params: Vec<wasmtime::Val> =
            ty.params().map(|t| wasmtime::Val::default_for_ty(&t).unwrap_or(wasmtime::Val::I32(0))).collect();
        let mut results: Vec<wasmtime::Val> = ty.results().map(|_| wasmtime::Val::I32(0)).collect();
        func.call(&mut *store, &params, &mut results).map_err(|e| format!("{e:?}"))
    }

    /// Every `proxy_log` line so far: `(level, message)`.
    pub fn logs(&self) -> Vec<(i32, String)> {
        self.inner.borrow().store.data().logs.clone()
    }

    /// The tick period the filter asked for (0: none).
    pub fn tick_period_ms(&self) -> u32 {
        self.inner.borrow().store.data().tick_period_ms
    }

    fn call_root<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(&self, name: &str, params: P) -> R {
        self.call_export(name, params).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Fuel (wasm instructions, roughly) the VM has burned since it started.
    pub fn fuel_consumed(&self) -> u64 {
        u64::MAX - self.inner.borrow().store.get_fuel().unwrap_or(u64::MAX)
    }

    /// Size of the filter's linear memory.
    pub fn memory_bytes(&self) -> usize {
        let mut inner = self.inner.borrow_mut();
        let Inner { store, instance, .. } = &mut *inner;
        instance.get_memory(&mut *store, "memory").map_or(0, |m| m.data_size(&*store))
    }

    /// Runs one stream callback with `facts` as the host's view of the stream.
    fn dispatch<R>(
        &self,
        what: &str,
        facts: &mut StreamFacts,
        call: impl FnOnce(&Exports, &mut Store<VmState>) -> wasmtime::Result<R>,
    ) -> R {
        let mut inner = self.inner.borrow_mut();
        let Inner { store, exports, .. } = &mut *inner;
        store.data_mut().stream = std::mem::take(facts);
        let result = call(exports, store);
        *facts = std::mem::take(&mut store.data_mut().stream);
        result.unwrap_or_else(|e| panic!("{}", trap_report(what, &e, store.data())))
    }
}

/// Why a call trapped, with the filter's own last words (its panic hook logs at critical).
fn trap_report(what: &str, error: &wasmtime::Error, state: &VmState) -> String {
    let last = state.logs.iter().rev().find(|(level, _)| *level >= LogLevel::Critical as i32).map(|(_, l)| l.as_str());
    format!("the filter trapped in {what}: {error:?}\nfilter log: {}", last.unwrap_or("(nothing logged)"))
}

impl Vm for WasmVm {
    type Stream = WasmStream;

    /// `proxy_on_tick`, then every HTTP call it made is answered
    /// (`proxy_on_http_call_response`), as Envoy would shortly after.
    fn tick(&self) {
        if self.tick_period_ms() == 0 || self.inner.borrow().stopped {
            return;
        }
        if self.exports_fn("proxy_on_tick") {
            self.call_root::<i32, ()>("proxy_on_tick", ROOT_CONTEXT);
        }
        let pending = std::mem::take(&mut self.inner.borrow_mut().store.data_mut().pending_calls);
        for (token, answer) in pending {
            let (headers, body_size) = match &answer {
                Some((_, body)) => (1, body.len() as i32),
                None => (0, 0),
            };
            self.inner.borrow_mut().store.data_mut().call_response = answer;
            if self.exports_fn("proxy_on_http_call_response") {
                self.call_root::<(i32, i32, i32, i32, i32), ()>(
                    "proxy_on_http_call_response",
                    (ROOT_CONTEXT, token as i32, headers, body_size, 0),
                );
            }
            self.inner.borrow_mut().store.data_mut().call_response = None;
        }
    }

    fn request_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> WasmStream {
        let extra: Vec<(String, Vec<u8>)> =
            headers.iter().map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
        self.start_request(method.as_bytes(), path.as_bytes(), None, extra)
    }

    fn request_raw(&self, method: &[u8], path: &[u8], route_name: Option<&[u8]>) -> WasmStream {
        self.start_request(method, path, route_name, Vec::new())
    }

    fn reconfigure(&self, config_json: &str) -> Result<(), String> {
        self.configure(config_json)
    }

    fn stop(&self) {
        if std::mem::replace(&mut self.inner.borrow_mut().stopped, true) {
            return;
        }
        // Envoy's startShutdown: on_done (true when not exported), then on_delete.
        let done =
            !self.exports_fn("proxy_on_done") || self.call_root::<(i32,), i32>("proxy_on_done", (ROOT_CONTEXT,)) != 0;
        if done && self.exports_fn("proxy_on_delete") {
            self.call_root::<(i32,), ()>("proxy_on_delete", (ROOT_CONTEXT,));
        }
    }

    fn local_reply_before_filter(&self, method: &[u8], path: &[u8], request_body: u64, status: u16, body_len: u64) {
        let mut stream = self.new_stream(method, path);
        (stream.request_bytes, stream.response_bytes) = (request_body, body_len);
        stream.facts.response_headers = vec![(":status".into(), status.to_string().into_bytes())];
        stream.complete();
    }
}

fn envoy_of(vm: &WasmVm) -> SimEnvoy {
    vm.inner.borrow().store.data().envoy.clone()
}

impl WasmVm {
    /// Request headers arrive for a new stream (`proxy_on_request_headers`).
    fn start_request(
        &self,
        method: &[u8],
        path: &[u8],
        route_name: Option<&[u8]>,
        extra: Vec<(String, Vec<u8>)>,
    ) -> WasmStream {
        let mut stream = self.new_stream(method, path);

        stream.facts.request_headers.extend(extra);
        if let Some(name) = route_name {
            stream.facts.properties.insert(b"xds\0route_name".to_vec(), name.to_vec());
        }
        let (ctx, n_headers) = (stream.ctx, stream.facts.request_headers.len() as i32);
        stream.facts.headers_readable = true;
        stream.vm.dispatch("proxy_on_request_headers", &mut stream.facts, |e, s| {
            call_or(&e.request_headers, s, (ctx, n_headers, 0), 0)
        });
        stream.facts.headers_readable = false;
        stream
    }

    fn envoy(&self) -> SimEnvoy {
        self.inner.borrow().store.data().envoy.clone()
    }

    /// A new stream context (`proxy_on_context_create`), headers not yet delivered.
    fn new_stream(&self, method: &[u8], path: &[u8]) -> WasmStream {
        let ctx = {
            let mut inner = self.inner.borrow_mut();
            inner.next_context += 1;
            inner.next_context
        };
        let facts = StreamFacts {
            // In Envoy's order: pseudo-headers first, then what the client and the connection
            // manager added.
            request_headers: vec![
                (":authority".into(), b"service".to_vec()),
                (":path".into(), path.to_vec()),
                (":method".into(), method.to_vec()),
                (":scheme".into(), b"http".to_vec()),
                ("user-agent".into(), b"proxy-sim".to_vec()),
                ("x-request-id".into(), format!("req-{ctx}").into_bytes()),
            ],
            response_headers: Vec::new(),
            headers_readable: false,
            properties: Default::default(),
        };
        let started_ns = self.envoy().clock_ns();
        let mut stream = WasmStream {
            vm: self.clone(),
            ctx,
            facts,
            deleted: false,
            started_ns,
            request_bytes: 0,
            response_bytes: 0,
        };
        stream.vm.dispatch("proxy_on_context_create", &mut stream.facts, |e, s| {
            call_or(&e.context_create, s, (ctx, ROOT_CONTEXT), ())
        });
        stream
    }
}

/// One stream through the compiled filter.
pub struct WasmStream {
    vm: WasmVm,
    ctx: i32,
    facts: StreamFacts,
    deleted: bool,
    started_ns: u64,
    /// Request body bytes Envoy received.
    request_bytes: u64,
    /// What Envoy reports as `response.size`.
    response_bytes: u64,
}

impl WasmStream {
    fn delete(&mut self) {
        let ctx = self.ctx;
        // Envoy's ContextBase::destroy: on_done, then (when it says done) on_delete.
        if self.vm.dispatch("proxy_on_done", &mut self.facts, |e, s| call_or(&e.done, s, ctx, 1)) != 0 {
            self.vm.dispatch("proxy_on_delete", &mut self.facts, |e, s| call_or(&e.delete, s, ctx, ()));
        }
        self.deleted = true;
    }
}

impl Stream for WasmStream {
    fn send_body(&mut self, len: usize) -> &mut Self {
        self.request_bytes += len as u64;
        let ctx = self.ctx;
        self.vm.dispatch("proxy_on_request_body", &mut self.facts, |e, s| {
            call_or(&e.request_body, s, (ctx, len as i32, 0), 0)
        });
        self
    }

    fn respond(&mut self, status: u16, body_len: usize) -> &mut Self {
        let ctx = self.ctx;
        self.facts.response_headers = vec![(":status".into(), status.to_string().into_bytes())];
        self.vm.dispatch("proxy_on_response_headers", &mut self.facts, |e, s| {
            call_or(&e.response_headers, s, (ctx, 1, 0), 0)
        });
        if body_len > 0 {
            self.response_body(body_len);
        }
        self
    }

    fn response_body(&mut self, len: usize) -> &mut Self {
        self.response_bytes += len as u64;
        let ctx = self.ctx;
        self.vm.dispatch("proxy_on_response_body", &mut self.facts, |e, s| {
            call_or(&e.response_body, s, (ctx, len as i32, 0), 0)
        });
        self
    }

    /// Envoy serves request headers again in the log phase, and the stream's totals.
    fn log(&mut self) {
        let ctx = self.ctx;
        let elapsed = self.vm.envoy().clock_ns().saturating_sub(self.started_ns);
        self.facts.properties.insert(b"request\0duration".to_vec(), elapsed.to_le_bytes().to_vec());
        self.facts.properties.insert(b"response\0size".to_vec(), self.response_bytes.to_le_bytes().to_vec());
        // Envoy's `request.total_size`: body bytes received plus the headers' byte size.
        let headers: usize = self.facts.request_headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        let total = self.request_bytes + headers as u64;
        self.facts.properties.insert(b"request\0total_size".to_vec(), total.to_le_bytes().to_vec());
        self.facts.headers_readable = true;
        self.vm.dispatch("proxy_on_log", &mut self.facts, |e, s| call_or(&e.log, s, ctx, ()));
        self.facts.headers_readable = false;
    }

    fn complete(mut self) {
        self.log();
        self.delete();
    }
}

impl Drop for WasmStream {
    /// A stream the test did not complete still gets its context deleted, as in Envoy.
    fn drop(&mut self) {
        if !self.deleted && !std::thread::panicking() {
            self.delete();
        }
    }
}
