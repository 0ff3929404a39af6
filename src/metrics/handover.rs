//! Keeps every series alive across a module update.
//!
//! Envoy holds a Wasm VM's stats in the stats scope of its filter configuration and drops a
//! stat when no scope holds it any more; a stat is shared by name, so a stat defined again
//! while another scope still holds it is the same stat and counts on (both measured on Envoy
//! 1.40, `tests/ecds.rs`). A configuration update keeps its VMs, and so its stats. A module
//! update starts new VMs in a new configuration: without help, every routemeter series went
//! with the old VMs, and with them what they flushed on their way out.
//!
//! So every series that accumulates (counters, in-flight gauges, histograms) is listed in
//! shared data, which lives as long as any VM of the `vm_id` does, and a VM being configured
//! first defines every listed series. (Gauges set whole, like the latency quantiles, are not
//! listed: the new VMs set them again.) Envoy configures a new module once on the main thread
//! (its "canary") while it builds the new configuration, before it lets the old one go: from
//! then on the new configuration holds every series, the old VMs' last flushes land in them,
//! and the counters never go back.
//!
//! The list is append-only, in chunks of [`CHUNK`] series under their own keys, with the
//! number listed under one more key ([`Keys::series_count`]). A tick reads only that number
//! (a few bytes) and the chunks holding what other VMs added since; a publication reads and
//! writes one chunk. So neither grows with the list. Each VM remembers a fingerprint of every
//! series it has seen listed, so it lists only what is new. The list stops at [`MAX_SERIES`]
//! (bounded shared memory); a series past it keeps counting but restarts from 0 after a module
//! update: counted ([`Handover::unlisted`]) and logged.
//!
//! Each definition costs Envoy a metric id for as long as the VM lives, so a series is
//! defined at most twice per VM: when it first counts something, and when taken over.

use std::collections::HashSet;

use crate::host::{MetricKind, MetricsHost, SharedStore};
use crate::shared::codec::{put_varint, Reader};
use crate::shared::{update, Change, Keys, Updated};

/// Series per chunk: a publication or a take-over copies at most this many lines it has seen.
pub const CHUNK: usize = 64;
/// The most series listed (at ~100 bytes a line, ~13 MB of shared data).
pub const MAX_SERIES: usize = 1 << 17;

/// One VM's part in the hand-over, for one plugin.
#[derive(Debug, Clone)]
pub struct Handover {
    count_key: String,
    keys: Keys,
    /// Series of the list this VM has read or written: the first `listed` of it.
    listed: usize,
    /// Fingerprints of every series this VM has seen listed or is waiting to list.
    seen: HashSet<u64>,
    /// Defined here and not listed yet.
    waiting: Vec<(MetricKind, String)>,
    /// Series that did not fit under [`MAX_SERIES`].
    unlisted: u64,
}

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

/// FNV-1a of the line: cheap, and a collision only costs one series its hand-over.
fn fingerprint(kind: MetricKind, name: &str) -> u64 {
    let line = [letter(kind), b' '].into_iter().chain(name.bytes());
    line.fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn lines(chunk: Option<&[u8]>) -> Vec<&str> {
    chunk.and_then(|c| std::str::from_utf8(c).ok()).unwrap_or_default().lines().collect()
}

impl Handover {
    pub fn new(keys: &Keys) -> Handover {
        Handover {
            count_key: keys.series_count(),
            keys: keys.clone(),
            listed: 0,
            seen: HashSet::new(),
            waiting: Vec::new(),
            unlisted: 0,
        }
    }

    /// A series this VM just defined: listed at the next [`Handover::publish`] unless it is
    /// listed already.
    pub fn note(&mut self, kind: MetricKind, name: &str) {
        // A line per series: a name with a line break could not be read back.
        if !name.contains('\n') && self.seen.insert(fingerprint(kind, name)) {
            self.waiting.push((kind, name.to_string()));
        }
    }

    /// Series waiting to be listed.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn unlisted(&self) -> u64 {
        self.unlisted
    }

    /// Series listed in all, as far as this VM knows.
    pub fn listed(&self) -> usize {
        self.listed
    }

    fn listed_count(&self, store: &impl SharedStore) -> Option<usize> {
        let (value, _) = store.get_shared(&self.count_key).ok()?;
        Some(value.and_then(|v| Reader::new(&v).varint()).unwrap_or(0) as usize)
    }

    /// Defines the listed series this VM has not seen yet, so that its configuration holds
    /// them: all of them in a new VM, what other VMs added since in one that took over before.
    ///
    /// The count is written after the chunks, so it can fall behind them (a lost race, a VM
    /// that died in between): a VM that knows more writes it up. (The list is never written
    /// anew while a VM of the `vm_id` lives: shared data lives exactly as long.)
    pub fn take_over(&mut self, host: &(impl MetricsHost + SharedStore)) {
        let Some(count) = self.listed_count(host) else { return };
        if count < self.listed {
            self.write_count(host);
        }
        while self.listed < count.min(MAX_SERIES) {
            let chunk = self.listed / CHUNK;
            let Ok((value, _)) = host.get_shared(&self.keys.series_chunk(chunk)) else { return };
            let lines = lines(value.as_deref());
            let new = lines.get(self.listed - chunk * CHUNK..).unwrap_or_default();
            if new.is_empty() {
                return;
            }
            self.adopt(new, host);
        }
    }

    /// Lines other VMs listed: defined here, remembered, no longer waiting here.
    fn adopt(&mut self, lines: &[&str], host: &impl MetricsHost) {
        let mut theirs = HashSet::new();
        for line in lines {
            if let Some((kind, name)) = parse(line) {
                let _ = host.define_metric(kind, name);
                theirs.insert(fingerprint(kind, name));
            }
            self.listed += 1;
        }
        if !self.waiting.is_empty() {
            self.waiting.retain(|(k, n)| !theirs.contains(&fingerprint(*k, n)));
        }
        self.seen.extend(theirs);
    }

    /// Appends what is waiting to the list. What cannot be written now waits for the next
    /// call; what no longer fits is counted and logged.
    pub fn publish(&mut self, host: &(impl MetricsHost + SharedStore)) {
        if self.waiting.is_empty() {
            return;
        }
        self.take_over(host);
        while !self.waiting.is_empty() {
            if self.listed >= MAX_SERIES {
                self.unlisted += self.waiting.len() as u64;
                self.waiting.clear();
                log::warn!(
                    "{} series past the hand-over's {MAX_SERIES}: they restart from 0 after a module update",
                    self.unlisted
                );
                return;
            }
            let chunk = self.listed / CHUNK;
            let skip = self.listed - chunk * CHUNK;
            let waiting = &self.waiting;
            let written = update(host, &self.keys.series_chunk(chunk), |found| {
                // A chunk that is not text is not ours to keep.
                let text = found.value.and_then(|v| std::str::from_utf8(v).ok()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                // What other VMs appended since this VM last read.
                let others: Vec<String> = lines.iter().skip(skip).map(|l| l.to_string()).collect();
                let mut bytes = text.as_bytes().to_vec();
                let room = CHUNK.saturating_sub(lines.len());
                let mut appended = 0;
                for (kind, name) in waiting.iter().filter(|(k, n)| !others.iter().any(|l| parse(l) == Some((*k, n)))) {
                    if appended == room {
                        break;
                    }
                    bytes.extend_from_slice(&[letter(*kind), b' ']);
                    bytes.extend_from_slice(name.as_bytes());
                    bytes.push(b'\n');
                    appended += 1;
                }
                match appended {
                    0 => Change::Keep((others, 0)),
                    _ => Change::Write(bytes, (others, appended)),
                }
            });
            let Ok(Updated::Kept((others, appended)) | Updated::Written((others, appended), _)) = written else {
                return;
            };
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            self.adopt(&others, host);
            // The first `appended` of what still waits are now listed, in that order.
            self.listed += self.waiting.drain(..appended.min(self.waiting.len())).count();
        }
        self.write_count(host);
    }

    /// Raises the shared count to what this VM has listed or read, if it is lower.
    fn write_count(&self, store: &impl SharedStore) {
        let listed = self.listed;
        let _ = update(store, &self.count_key, |found| {
            if found.value.and_then(|v| Reader::new(v).varint()).unwrap_or(0) as usize >= listed {
                return Change::Keep(());
            }
            let mut bytes = Vec::new();
            put_varint(&mut bytes, listed as u64);
            Change::Write(bytes, ())
        });
    }
}

#[cfg(test)]
mod tests;
