//! proxy-sim: a test-only proxy-wasm host for routemeter. See README.md.
//!
//! - [`envoy`]: what a filter can observe of Envoy (stats, shared data, clock), shared by the
//!   native and the wasm host so their metrics compare exactly;
//! - [`scenario`]: the domain API behavioural tests are written in;
//! - [`wasm`]: the compiled `routemeter.wasm` under wasmtime, with fuel metering.

pub mod envoy;
pub mod scenario;
pub mod wasm;

pub use envoy::{Exact, Faults, LabelSet, SimEnvoy, StatValue};
pub use scenario::{Host, Stream, Vm};
pub use wasm::{WasmHost, WasmStream, WasmVm};
