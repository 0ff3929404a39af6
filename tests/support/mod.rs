//! The filter's own test doubles: the native host over proxy-sim's simulated Envoy, the
//! dual-host scenario macro, and public API descriptions as traffic. What the end-to-end
//! tests share with the bench (client, Envoy stack, ledger) is the `routemeter-testkit` crate.
#![allow(dead_code)]

pub mod apis;
pub mod mem_host;
pub mod scenarios;
