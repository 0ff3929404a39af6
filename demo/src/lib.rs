//! The routemeter demo kit: the file-conversion service routemeter is shown and tested
//! against, plus the client-side tools `make run` and the end-to-end tests share.

pub mod admin;
pub mod client;
pub mod prom;
pub mod server;
pub mod summary;
pub mod traffic;
