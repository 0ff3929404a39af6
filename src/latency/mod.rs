//! Latency quantiles per route: exact to 1 % over a sliding window, merged across the VMs of
//! every Envoy worker, published as gauges
//! `http_request_duration_quantile_microseconds{route, quantile}`.
//!
//! They answer "what is p99 on this proxy right now" without the bucket interpolation of
//! `histogram_quantile()`. They cannot be aggregated across proxies (no quantile can); the
//! exact `_bucket` counters can, and stay the series for fleet-wide SLOs.
//!
//! - [`config`]: the `latency_quantiles` configuration;
//! - [`window`]: one route's HdrHistogram window;
//! - [`codec`]: the shared-data encoding of windows and of the coordination values;
//! - [`share`]: the protocol by which VMs share windows and one of them publishes.

mod codec;
pub mod config;
mod share;
mod window;

pub use codec::Blob;
pub use config::{LatencyConfig, Quantile, RawLatency};
pub use share::{Publication, Sharing, Timing};
pub use window::{Window, SUB_WINDOWS};

use crate::host::{MetricsHost, SharedStore};
use crate::metrics::Registry;
use crate::route::LabelId;
use crate::shared::Keys;

/// This VM's latency windows, by route id.
#[derive(Debug)]
pub struct LatencyQuantiles {
    quantiles: Vec<Quantile>,
    /// Length of a sub-window.
    sub_ns: u64,
    windows: Vec<Option<Box<Window>>>,
    sharing: Sharing,
}

impl LatencyQuantiles {
    pub fn new(config: &LatencyConfig, keys: &Keys) -> LatencyQuantiles {
        LatencyQuantiles {
            quantiles: config.quantiles.clone(),
            sub_ns: (config.window_seconds * 1_000_000_000 / SUB_WINDOWS).max(1),
            windows: Vec::new(),
            sharing: Sharing::new(keys),
        }
    }

    /// One finished request of `route` that took `duration_ns`, ending at `now_ns`.
    pub fn record(&mut self, route: LabelId, duration_ns: u64, now_ns: u64) {
        let epoch = now_ns / self.sub_ns;
        let i = route.index();
        if i >= self.windows.len() {
            // Route ids are dense and bounded by the label table's cap.
            self.windows.resize_with(i + 1, || None);
        }
        let Some(slot) = self.windows.get_mut(i) else { return };
        if slot.is_none() {
            *slot = Window::new(epoch).map(Box::new);
        }
        if let Some(w) = slot {
            w.record(duration_ns.saturating_add(500) / 1_000, epoch);
        }
    }

    /// The periodic tick: move every window to `now_ns` (windows left empty are freed), share
    /// what is left, and publish the proxy's quantiles if this VM holds the lease.
    /// `known_labels` (this VM's route labels) bounds the labels a publication accepts from
    /// other VMs' blobs.
    pub fn tick<H: MetricsHost + SharedStore>(
        &mut self,
        now_ns: u64,
        interval_ms: u64,
        (label, known_labels): (impl Fn(LabelId) -> String, usize),
        registry: &mut Registry,
        host: &H,
    ) {
        let epoch = now_ns / self.sub_ns;
        let mut changed = false;
        for slot in &mut self.windows {
            let Some(w) = slot else { continue };
            if w.advance(epoch) {
                *slot = None;
                changed = true;
            } else {
                changed |= w.merged().1;
            }
        }
        let timing = Timing { interval_ns: interval_ms * 1_000_000 };
        // Only a window that changed (or a heartbeat) is encoded and written again.
        let blob = self.sharing.blob_due(changed, now_ns, timing).then(|| Blob {
            written_ns: now_ns,
            routes: (self.windows.iter_mut().enumerate())
                .filter_map(|(route, slot)| Some((label(LabelId(route as u32)), slot.as_mut()?.merged().0.clone())))
                .collect(),
        });
        // Every VM has the same sources of labels (templates, the shared learned routes, the
        // same OpenAPI document); the margin covers one that learned a few more.
        let max_labels = (2 * known_labels).max(1_024);
        let publication = Publication { quantiles: &self.quantiles, max_labels, registry };
        self.sharing.tick(now_ns, blob.as_ref(), timing, publication, host);
    }

    /// The VM stops: its window leaves the shared set.
    pub fn stop(&mut self, host: &impl SharedStore) {
        self.sharing.stop(host);
    }

    /// Routes with a window, and the bytes they hold (for the memory report).
    pub fn footprint(&self) -> (usize, usize) {
        let live = self.windows.iter().flatten();
        (live.clone().count(), live.map(|w| w.heap_bytes()).sum())
    }
}
