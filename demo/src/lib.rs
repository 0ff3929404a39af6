//! The demo file-conversion service routemeter is shown and tested against. The client
//! side (traffic, summary, test tools) is the `routemeter-testkit` crate.

pub mod server;
