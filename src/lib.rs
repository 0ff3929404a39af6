//! routemeter: per-route HTTP telemetry from a proxy-wasm filter.
//!
//! The crate is a pure core plus a thin wasm glue:
//! - [`config`]: plugin configuration, parsed then validated;
//! - [`route`]: which `route` label a request gets (templates, OpenAPI, route name, learned
//!   templates, cap);
//! - [`openapi`]: route templates from an OpenAPI document, and when to fetch it;
//! - `latency`: per-route latency quantiles (HdrHistogram windows merged across VMs);
//! - [`method`], [`outcome`]: the `method` label and upload/download outcome classes;
//! - [`metrics`]: the metric contract, label encoding into stat names, the metric-id cache;
//! - [`slo`]: per-route service level objectives (their latency thresholds become bucket bounds);
//! - [`plugin`], [`stream`]: per-VM state and the per-stream lifecycle;
//! - [`host`]: the traits through which the core reaches the proxy, with typed facts;
//! - `wasm`: proxy-wasm callbacks and ABI calls implementing [`host`] (wasm32 only), and the
//!   decoding of Envoy's bytes (`decode`, `header_map`: the ABI's header-map encoding).
//!
//! Nothing outside `wasm` imports proxy-wasm, so `cargo test` runs the whole core natively.

pub mod config;
pub mod host;
pub(crate) mod latency;
pub mod method;
pub mod metrics;
pub mod openapi;
pub mod outcome;
pub mod plugin;
pub mod route;
pub mod slo;
pub mod stream;

// The glue: host calls on wasm32 only; its decoding of Envoy's bytes everywhere (tested).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod wasm;
