//! The proxy-wasm glue: Envoy's callbacks in ([`exports`], forwarded to the core's
//! [`crate::filter::Filter`]), the core's host traits out ([`host_calls`], over the ABI's
//! [`imports`]), Envoy's bytes decoded into typed facts ([`decode`], [`header_map`]: the parts
//! built on every target, so that they are tested natively).
//!
//! The module exports only the callbacks routemeter uses: the host skips every callback a
//! module does not export, with no VM entry at all, so a request costs four entries (request
//! headers, a response body chunk, log, delete) plus one per further body chunk. The
//! proxy-wasm SDK exports all 25 callbacks whatever a filter uses (and
//! `proxy_on_context_create`, `proxy_on_response_headers` and `proxy_on_done` on every
//! request); see the README for the measurements that decided this.

mod decode;
mod header_map;

#[cfg(target_arch = "wasm32")]
mod exports;
#[cfg(target_arch = "wasm32")]
mod host_calls;
#[cfg(target_arch = "wasm32")]
mod imports;
#[cfg(target_arch = "wasm32")]
mod logger;
#[cfg(all(target_arch = "wasm32", feature = "test-trap"))]
mod test_trap;
