//! Shared test support. Each test binary uses a different part of it.
#![allow(dead_code)]

pub mod envoy;
pub mod h2c;
pub mod mem_host;
pub mod outcomes;
pub mod apis;
pub mod rng;
pub mod scenarios;
