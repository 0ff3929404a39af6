//! Keeps every series alive across a module update.
//!
//! Envoy holds a Wasm VM's stats in the stats scope of its filter configuration and drops a
//! stat when no scope holds it any more; a stat is shared by name, so a stat defined again
//! while another scope still holds it is the same stat and counts on (both measured on Envoy
//! 1.40, `tests/ecds.rs`). A configuration update keeps its VMs, and so its stats. A module
//! update starts new VMs in a new configuration: without help, every routemeter series went
//! with the old VMs, and with them what they flushed on their way out.
//!
//! So every series a VM defines is listed in shared data, which lives as long as any VM of
//! the `vm_id` does, and a VM being configured first defines every listed series. Envoy
//! configures a new module once on the main thread (its "canary") while it builds the new
//! configuration, before it lets the old one go: from then on the new configuration holds
//! every series, the old VMs' last flushes land in them, and the counters never go back.
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

fn letter(kind: MetricKind) -> char {
    match kind {
        MetricKind::Counter => 'c',
        MetricKind::Gauge => 'g',
        MetricKind::Histogram => 'h',
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

/// Defines every listed series in this VM, so that its configuration holds them, unless the
/// list is still at `version` (what the last call saw; 0 takes over whatever is listed).
/// Returns the list's version. Unreadable lines are skipped; a host failure leaves that
/// series alone.
///
/// Configuring takes over once; every tick takes over again when the list changed, so that
/// series the old VMs define while they drain are held too. (A series the old VMs define for
/// the first time in their very last flush, as their configuration goes, still goes with it.)
pub fn take_over(host: &(impl MetricsHost + SharedStore), version: u32) -> u32 {
    let Ok((Some(bytes), now)) = host.get_shared(SHARED_KEY) else { return version };
    if now == version && version != 0 {
        return version;
    }
    for (kind, name) in String::from_utf8_lossy(&bytes).lines().filter_map(parse) {
        let _ = host.define_metric(kind, name);
    }
    now
}

/// Series defined since the last publication, waiting for it.
#[derive(Debug, Default)]
pub struct Unpublished(RefCell<Vec<(MetricKind, String)>>);

impl Unpublished {
    /// `host`, noting every series it defines.
    pub fn noting<'a, H: MetricsHost>(&'a self, host: &'a H) -> Noting<'a, H> {
        Noting { host, log: self }
    }

    /// Adds what is waiting to the shared list (compare-and-swap). What could not be written
    /// waits for the next call. `known` is the list version this VM has taken over; the
    /// result is the version it has taken over now: the one it wrote, when nobody else had
    /// added anything since `known` (its own series need no second definition).
    pub fn publish(&self, store: &impl SharedStore, known: u32) -> u32 {
        let mut waiting = self.0.borrow_mut();
        if waiting.is_empty() {
            return known;
        }
        for _ in 0..MAX_ATTEMPTS {
            let Ok((value, cas)) = store.get_shared(SHARED_KEY) else { return known };
            let old = value.unwrap_or_default();
            let old_text = String::from_utf8_lossy(&old);
            let listed: HashSet<&str> = old_text.lines().collect();
            let mut text = old_text.to_string();
            for (kind, name) in waiting.iter() {
                let line = format!("{} {name}", letter(*kind));
                if !listed.contains(line.as_str()) && !name.contains('\n') && text.len() + line.len() < MAX_BYTES {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            if text.len() == old.len() {
                waiting.clear();
                return known;
            }
            match store.set_shared(SHARED_KEY, text.as_bytes(), if cas == 0 { CREATE_ONLY } else { cas }) {
                Ok(CasWrite::Stored) => {
                    waiting.clear();
                    if cas != known {
                        return known;
                    }
                    // Envoy does not say which version a write made: read it back.
                    return match store.get_shared(SHARED_KEY) {
                        Ok((Some(now), version)) if now == text.as_bytes() => version,
                        _ => known,
                    };
                }
                Ok(CasWrite::Conflict) => continue,
                Err(_) => return known,
            }
        }
        known
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
