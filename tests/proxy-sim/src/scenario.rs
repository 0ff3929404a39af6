//! The scenario API: how a behavioural test drives a filter, in the domain's words. Two hosts
//! implement it, the native in-memory host (the filter's Rust core linked into the test) and
//! the wasm host (the compiled `routemeter.wasm` under wasmtime); tests written against these
//! traits run on both and must produce identical metrics.
//!
//! ```ignore
//! fn upload<H: Host>(host: &H) {
//!     let vm = host.vm(CONFIG).unwrap();            // one Envoy worker's VM
//!     let mut up = vm.request("POST", "/api/v1/upload");
//!     up.send_body(1000);
//!     host.envoy().advance_ms(40);
//!     up.respond(201, 57);                           // response code + body bytes
//!     up.complete();                                 // stream ends: on_log
//!     assert_eq!(host.envoy().counter("uploads_total", &[..]), Some(1));
//! }
//! ```

use crate::envoy::SimEnvoy;

/// A simulated Envoy running one build of the filter.
pub trait Host {
    type Vm: Vm + 'static;

    /// Short name for test output: `native` or `wasm`.
    fn name(&self) -> &'static str;

    fn envoy(&self) -> &SimEnvoy;

    /// A new VM (one per Envoy worker thread) with this plugin configuration. A rejected
    /// configuration is `Err` with the filter's error message.
    fn vm(&self, config_json: &str) -> Result<Self::Vm, String>;
}

/// One VM running the plugin.
pub trait Vm {
    type Stream: Stream;

    /// A request whose headers arrive now, with arbitrary bytes as method and path, and
    /// optionally a matched Envoy route name (`xds.route_name`).
    fn request_raw(&self, method: &[u8], path: &[u8], route_name: Option<&[u8]>) -> Self::Stream;

    fn request(&self, method: &str, path: &str) -> Self::Stream {
        self.request_raw(method.as_bytes(), path.as_bytes(), None)
    }

    /// A request with these further headers (lower-case names).
    fn request_with(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Self::Stream;

    fn request_on_route(&self, method: &str, path: &str, route_name: &str) -> Self::Stream {
        self.request_raw(method.as_bytes(), path.as_bytes(), Some(route_name.as_bytes()))
    }

    /// A stream the filter first sees at its end: a filter before it (authz, rate limit) or
    /// the codec answered `status` with `body_len` bytes after `request_body` bytes of the
    /// request's body had arrived, so only `on_log` runs.
    fn local_reply_before_filter(&self, method: &[u8], path: &[u8], request_body: u64, status: u16, body_len: u64);

    /// The root context is configured again with another configuration (`Err`: the filter
    /// rejected it), while streams may be in flight.
    fn reconfigure(&self, config_json: &str) -> Result<(), String>;

    /// The root context's periodic tick; HTTP calls it makes are answered at once from
    /// [`SimEnvoy::serve`](crate::envoy::SimEnvoy::serve).
    fn tick(&self);

    /// The VM goes away as Envoy stops it (reconfiguration, shutdown): the root context's
    /// `on_done` and `on_delete`. Nothing else may be asked of it afterwards.
    fn stop(&self);
}

/// One HTTP stream in flight.
pub trait Stream: Sized {
    /// A request body chunk of `len` bytes passes through.
    fn send_body(&mut self, len: usize) -> &mut Self;

    /// The response starts with `status` and sends `body_len` bytes (one chunk, if any).
    fn respond(&mut self, status: u16, body_len: usize) -> &mut Self;

    /// A further response body chunk.
    fn response_body(&mut self, len: usize) -> &mut Self;

    /// Envoy calls `on_log` (normal end, local reply and reset alike).
    fn log(&mut self);

    /// The stream ends: `on_log`, then the context goes away.
    fn complete(mut self) {
        self.log();
    }
}
