//! Envoy's admin interface (and Prometheus' HTTP API, which answers the same way): a GET,
//! readiness, and the parsed Prometheus page.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::client::get_text;
use crate::process::wait_until;
use crate::prom::Exposition;

/// A GET on an admin interface: (status, body); `None` when nothing answers.
pub fn get(admin: SocketAddr, path: &str) -> Option<(u16, String)> {
    get_text(admin, path).ok()
}

/// Polls `path` (`/ready` for Envoy, `/-/ready` for Prometheus) until it answers 200.
pub fn wait_ready(admin: SocketAddr, path: &str, timeout: Duration) -> bool {
    wait_until(timeout, || get(admin, path).is_some_and(|(code, _)| code == 200))
}

/// The parsed `/stats/prometheus` page.
pub fn scrape(admin: SocketAddr) -> io::Result<Exposition> {
    let (code, body) = get_text(admin, "/stats/prometheus")?;
    if code != 200 {
        return Err(io::Error::other(format!("/stats/prometheus answered {code}")));
    }
    Exposition::parse(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
