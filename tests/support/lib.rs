//! What routemeter's integration suites share: the native host (the filter's core driven the
//! way the wasm glue drives it, over proxy-sim's simulated Envoy), the macro that runs a
//! scenario on both hosts, the one that runs an end-to-end scenario on both builds
//! (Wasm and the native module), and public API descriptions as traffic. What the end-to-end suites
//! share with the bench (client, Envoy stack, ledger) is the `routemeter-testkit` crate.

// Test support: unwrap, expect and panic are how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod apis;
pub mod builds;
pub mod dual_host;
pub mod native;

/// The filter's two builds through a real Envoy, for `both_builds!`'s expansions.
pub use testkit::stack::Build;

/// The simulator, for `dual_host!`'s expansions.
pub use proxy_sim;
