//! routemeter's test kit: what the end-to-end tests, the bench, the demo's own tests and
//! `make run` share. The filter's own test doubles live elsewhere: the in-memory host in
//! routemeter itself (`routemeter::host::memory`), the simulated Envoy in `tests/proxy-sim/`,
//! the native host and the dual-host macro in the suites' own crate (`tests/support/`).
//!
//! - talking HTTP: [`client`] (hyper), [`fault`] (raw-socket fault verbs), [`h2c`];
//! - reading Envoy: [`admin`], [`prom`] (a strict exposition parser: the test oracle);
//! - running Envoy and friends: [`bootstrap`] (generated from `envoy/envoy.yaml`), [`stack`]
//!   (demo + Envoy), [`process`] (kill on drop), [`alerting`] (webhook, Prometheus queries);
//! - the oracle: [`ledger`], [`outcomes`], [`rng`] (seeded workloads);
//! - `make run`: [`traffic`], [`summary`] (the `routemeter-kit` command).

pub mod admin;
pub mod alerting;
pub mod bootstrap;
pub mod client;
pub mod fault;
pub mod h2c;
pub mod ledger;
pub mod outcomes;
pub mod process;
pub mod prom;
pub mod rng;
pub mod stack;
pub mod summary;
pub mod traffic;
