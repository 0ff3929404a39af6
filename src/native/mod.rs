//! The native glue: routemeter as an Envoy dynamic module (`make native`:
//! `target/libroutemeter.so`), the same core as the Wasm filter behind the same host
//! traits. Envoy's hooks in ([`exports`], forwarded to the one [`crate::filter::Filter`] of
//! the process), the core's host traits out ([`host_calls`]: stream facts over the ABI's
//! [`abi`], series over Envoy's labelled metrics in [`metrics`], [`shared_data`] in process
//! memory), ticks from a thread of ours through Envoy's configuration scheduler
//! ([`ticker`]), the OpenAPI document over Envoy's HTTP callouts ([`callout`]), and the log
//! ([`logger`]); [`pin`] keeps the module loaded while its thread lives.
//!
//! Built with the `native` feature for the host target; `shared_data` is built everywhere
//! so that `cargo test` tests it.

pub mod shared_data;

#[cfg(feature = "native")]
mod abi;
#[cfg(feature = "native")]
mod callout;
#[cfg(feature = "native")]
mod exports;
#[cfg(feature = "native")]
mod host_calls;
#[cfg(feature = "native")]
mod logger;
#[cfg(feature = "native")]
mod metrics;
#[cfg(feature = "native")]
mod pin;
#[cfg(feature = "native")]
mod ticker;
