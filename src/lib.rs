//! routemeter: per-route HTTP telemetry from a proxy-wasm filter.
//!
//! A pure core behind small host traits, and a thin wasm glue:
//! - [`filter`]: the filter as the proxy drives it (root contexts and streams by id), over
//!   [`plugin`] (one configuration in one VM) and [`stream`] (one request's lifecycle);
//! - [`config`]: the plugin configuration, parsed then validated, assembled from the
//!   sections each domain owns ([`config_error`]: the error they all return);
//! - [`route`]: which `route` label a request gets (templates, OpenAPI, route name, learned
//!   templates, cap);
//! - [`openapi`]: route templates from an OpenAPI document, and when to fetch it;
//! - [`latency`]: per-route latency quantiles (HdrHistogram windows merged across VMs);
//! - [`method`], [`transfer`]: the `method` label; upload/download routes and outcome classes;
//! - [`attribute`]: request attributes (a query parameter, a header) as bounded labels;
//! - [`metrics`]: the names series are published under (`metrics::naming`: routemeter's, a
//!   profile's such as the seeds' prometheus_client, instrumentator, OpenTelemetry, a route's
//!   own families), the metric contract, label encoding into stat names, the one registry that
//!   defines series, the hand-over across module updates, the in-VM counts;
//! - [`slo`]: per-route service level objectives (their latency thresholds become bucket bounds);
//! - [`shared`]: proxy-wasm shared data: every key, its format, the one compare-and-swap loop;
//! - [`host`]: the traits through which the core reaches the proxy, with typed facts, and the
//!   in-memory host every test uses;
//! - [`abi`]: the proxy-wasm ABI's numbers;
//! - `wasm`: proxy-wasm callbacks and ABI calls implementing [`host`] (wasm32 only), and the
//!   decoding of Envoy's bytes (`decode`, `header_map`: the ABI's header-map encoding).
//!
//! - `native`: the same core as an Envoy dynamic module (a shared library with a C ABI):
//!   Envoy's hooks, and [`host`] over its callbacks (`native` feature).
//!
//! Nothing outside `wasm` calls proxy-wasm and nothing outside `native` calls Envoy's
//! module ABI, so `cargo test` runs the whole core natively.

pub mod abi;
pub mod attribute;
pub mod config;
pub mod config_error;
pub mod filter;
pub mod host;
pub mod latency;
pub mod method;
pub mod metrics;
pub mod openapi;
pub mod plugin;
pub mod route;
pub mod shared;
pub mod slo;
pub mod stream;
pub mod transfer;

// The native glue (an Envoy dynamic module, `native` feature); never in the .wasm.
#[cfg(not(target_arch = "wasm32"))]
#[cfg_attr(not(feature = "native"), allow(dead_code))]
mod native;

// The glue: host calls on wasm32 only; its decoding of Envoy's bytes everywhere (tested).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod wasm;
