//! Keeps every series alive across a module update.
//!
//! Envoy holds a Wasm VM's stats in the stats scope of its filter configuration and drops a
//! stat when no scope holds it any more; a stat is shared by name, so a stat defined again
//! while another scope still holds it is the same stat and counts on (both measured on Envoy
//! 1.40, `tests/ecds.rs`). A configuration update keeps its VMs, and so its stats. A module
//! update starts new VMs in a new configuration: without help, every routemeter series went
//! with the old VMs, and with them what they flushed on their way out.
//!
//! So every series of the request metrics (and the OpenAPI fetch counter) a VM defines is
//! listed in shared data, which lives as long as any VM of the `vm_id` does, and a VM being
//! configured first defines every listed series. (Gauges set whole, like the latency
//! quantiles, are not listed: the new VMs set them again.) Envoy configures a new module once
//! on the main thread (its "canary") while it builds the new configuration, before it lets
//! the old one go: from then on the new configuration holds every series, the old VMs' last
//! flushes land in them, and the counters never go back.
//!
//! The list only grows, bounded by the label bounds (routes, methods, statuses, outcomes,
//! bucket sets) and by [`MAX_BYTES`]; a series stays as long as Envoy runs, as Wasm stats do.

use std::cell::RefCell;
use std::collections::HashSet;

use crate::host::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, SharedStore, CREATE_ONLY};

/// Shared-data key of the list: one series per line, its kind letter, a space, its name.
pub const SHARED_KEY: &str = "routemeter.series.v1";
/// A list that would grow beyond this takes no more series (a series left out of it only
/// loses the hand-over).
pub const MAX_BYTES: usize = 4 << 20;
/// Compare-and-swap attempts before a publication waits for the next flush.
const MAX_ATTEMPTS: usize = 16;

fn letter(kind: MetricKind) -> u8 {
    match kind {
        MetricKind::Counter => b'c',
        MetricKind::Gauge => b'g',
        MetricKind::Histogram => b'h',
    }
}

fn parse(line: &str) -> Option<(MetricKind, &str)> {
    let (kind, name) = line.split_once(' ')?;
    let kind = match kind {
        "c" => MetricKind::Counter,
        "g" => MetricKind::Gauge,
        "h" => MetricKind::Histogram,
        _ => return None,
    };
    (!name.is_empty()).then_some((kind, name))
}

/// Defines the listed series this VM has not taken over yet, so that its configuration holds
/// them: the list only grows at its end, and `taken` is how many of its bytes this VM has
/// taken over (0: none). Returns the new count. A list shorter than `taken`, or one that does
/// not break there between two lines, was written anew: all of it is taken over.
///
/// Each definition costs Envoy a little memory for as long as the VM lives (a metric id), so
/// a series is defined at most twice per VM: when it first counts something, and here.
/// Configuring takes over once; every tick takes over what was added since, so that series
/// the old VMs define while they drain are held too. (A series the old VMs define for the
/// first time after the new VMs' last tick before the old configuration goes still goes with
/// it: at most one flush interval.)
pub fn take_over(host: &(impl MetricsHost + SharedStore), taken: usize) -> usize {
    let Ok((Some(bytes), _)) = host.get_shared(SHARED_KEY) else { return taken };
    let from = match taken.checked_sub(1).and_then(|last| bytes.get(last)) {
        Some(b'\n') => taken,
        _ => 0,
    };
    let Some(added) = bytes.get(from..) else { return taken };
    for (kind, name) in String::from_utf8_lossy(added).lines().filter_map(parse) {
        let _ = host.define_metric(kind, name);
    }
    bytes.len()
}

/// Series defined since the last publication, waiting for it.
#[derive(Debug, Default)]
pub struct Unpublished(RefCell<Vec<(MetricKind, String)>>);

impl Unpublished {
    /// `host`, noting every series it defines.
    pub fn noting<'a, H: MetricsHost>(&'a self, host: &'a H) -> Noting<'a, H> {
        Noting { host, log: self }
    }

    /// Appends what is waiting to the shared list (compare-and-swap). What could not be
    /// written waits for the next call. `taken` is how much of the list this VM has taken
    /// over ([`take_over`]); the result is how much it has now: all of it when nobody else
    /// had added anything since (its own series need no second definition).
    pub fn publish(&self, store: &impl SharedStore, taken: usize) -> usize {
        let mut waiting = self.0.borrow_mut();
        if waiting.is_empty() {
            return taken;
        }
        for _ in 0..MAX_ATTEMPTS {
            let Ok((value, cas)) = store.get_shared(SHARED_KEY) else { return taken };
            let old = value.unwrap_or_default();
            let old_text = String::from_utf8_lossy(&old);
            // (kind, name) of every line, borrowed: no copy of the list.
            let mut listed: HashSet<(MetricKind, &str)> = old_text.lines().filter_map(parse).collect();
            let mut text = old.clone();
            let mut added = false;
            for (kind, name) in waiting.iter() {
                let fits = text.len() + name.len() + 3 <= MAX_BYTES;
                if fits && !name.contains('\n') && listed.insert((*kind, name)) {
                    text.extend_from_slice(&[letter(*kind), b' ']);
                    text.extend_from_slice(name.as_bytes());
                    text.push(b'\n');
                    added = true;
                }
            }
            if !added {
                waiting.clear();
                return taken;
            }
            match store.set_shared(SHARED_KEY, &text, if cas == 0 { CREATE_ONLY } else { cas }) {
                Ok(CasWrite::Stored) => {
                    waiting.clear();
                    return if old.len() == taken { text.len() } else { taken };
                }
                Ok(CasWrite::Conflict) => continue,
                Err(_) => return taken,
            }
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

/// A metrics host that notes every series it defines.
pub struct Noting<'a, H> {
    host: &'a H,
    log: &'a Unpublished,
}

impl<H: MetricsHost> MetricsHost for Noting<'_, H> {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        let id = self.host.define_metric(kind, name)?;
        self.log.0.borrow_mut().push((kind, name.to_string()));
        Ok(id)
    }
    fn increment_metric(&self, id: MetricId, delta: i64) -> Result<(), HostError> {
        self.host.increment_metric(id, delta)
    }
    fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
        self.host.record_metric(id, value)
    }
}

#[cfg(test)]
mod tests;
