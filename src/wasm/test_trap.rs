//! Test builds only (`--features test-trap`; `make trap-wasm` writes
//! target/routemeter-trap.wasm, never the shipped module): a request carrying the header
//! `x-routemeter-trap` makes the VM trap, as a bug in the filter would. Before trapping it
//! logs exactly what the crash takes with it, so the crash tests assert the loss instead of
//! estimating it:
//! - `unflushed_requests`: requests finished since the last flush, never to reach Envoy;
//! - `in_flight`: requests started and not finished, never to be counted by anyone;
//! - `stuck_in_flight`: raises of the in-flight gauge that reached Envoy and whose lowering
//!   never will: requests in flight that started before the last flush, and requests that
//!   started before it and finished after it (their -1 was waiting for the next flush).
//!
//! The request that traps is not recorded either.

use super::{header_map, imports};
use crate::filter::Filter;

pub const HEADER: &str = "x-routemeter-trap";

/// Whether this request asks for the trap (read at the start of request headers).
pub fn asked() -> bool {
    imports::request_headers().is_some_and(|map| header_map::find(&map, HEADER).is_some())
}

/// Logs what the VM holds, then traps.
pub fn fail(filter: &Filter) -> ! {
    let (mut requests, mut gauge) = (0, 0);
    // Streams whose raised in-flight gauge is not lowered yet.
    let holding_gauge = filter.streams_holding_gauge();
    for plugin in filter.plugins() {
        let (r, g) = plugin.unflushed();
        requests += r;
        gauge += g;
    }
    // Envoy has this VM's flushed raises minus its flushed lowerings: what the streams hold
    // now, minus the net change still waiting for a flush.
    let stuck = holding_gauge as i64 - gauge;
    log::error!(
        "test-trap: failing the VM; unflushed_requests={requests} in_flight={holding_gauge} stuck_in_flight={stuck}"
    );
    core::arch::wasm32::unreachable()
}
