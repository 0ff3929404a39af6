//! The proxy-wasm glue: Envoy's callbacks in, the core's traits out. Nothing here decides
//! what to record; it forwards callbacks to [`StreamRecorder`] and [`Plugin`] and implements
//! the host traits with [`abi`] calls, decoding Envoy's bytes into typed facts ([`decode`],
//! the one part built on every target, so that it is tested natively).
//!
//! The module exports only the callbacks routemeter uses ([`exports`]): the host skips every
//! callback a module does not export, with no VM entry at all, so a request costs four entries
//! (request headers, a response body chunk, log, delete) plus one per further body chunk. The
//! proxy-wasm SDK exports all 25 callbacks whatever a filter uses (and `proxy_on_context_create`,
//! `proxy_on_response_headers` and `proxy_on_done` on every request); see the README for the
//! measurements that decided this.

mod decode;
mod header_map;

#[cfg(target_arch = "wasm32")]
mod abi;
#[cfg(target_arch = "wasm32")]
mod exports;
#[cfg(target_arch = "wasm32")]
mod host_calls;
#[cfg(target_arch = "wasm32")]
mod logger;
#[cfg(all(target_arch = "wasm32", feature = "test-trap"))]
mod test_trap;
