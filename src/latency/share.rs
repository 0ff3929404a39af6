//! Merging every VM's latency windows and publishing the quantiles once for the proxy.
//!
//! Each Envoy worker runs its own VM, and a quantile of the proxy's traffic cannot be made
//! from per-worker quantiles, so the windows themselves are shared (proxy-wasm shared data,
//! common to the VMs of one plugin):
//! - a VM with something to report takes a unique id from the registry key (CAS) and, at
//!   every tick, writes its window as a blob under its own key ([`super::codec::Blob`]);
//! - one VM holds the publisher lease (CAS, renewed every tick, taken over when it runs out
//!   after three intervals); at each tick it reads the registered blobs, merges them per route
//!   into an `hdrhistogram`, and sets the quantile gauges. Gauges are set, not added, so one
//!   writer is what makes them consistent;
//! - the labels it published are kept in shared data too, so whichever VM publishes next
//!   sets the gauges of routes that went quiet to 0;
//! - a stopping VM deregisters and clears its blob; a VM that stopped without saying so
//!   (crash) has its blob ignored once stale and is pruned later.
//!
//! Every step tolerates failing calls and foreign bytes: the worst outcome is a gauge that
//! is a tick late or, with shared data unavailable, no quantiles at all.

use std::collections::{BTreeMap, HashMap};

use hdrhistogram::Histogram;

use crate::host::{MetricsHost, SharedStore};
use crate::metrics::{Metric, Registry, Slot};
use crate::shared::{self, update, Change, Keys, Updated};

use super::codec::{decode_ids, decode_labels, decode_lease, encode_ids, encode_labels, encode_lease, Blob};
use super::window::{dense, merge_sorted, Sparse, MAX_MICROS};
use super::Quantile;

/// Ticks between checks that this VM is still registered (a publisher prunes VMs that
/// looked dead, which a VM stalled for minutes would).
const REGISTRY_CHECK_TICKS: u64 = 30;

/// How long things stay valid, from the flush interval.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval_ns: u64,
}

impl Timing {
    fn lease_ns(self) -> u64 {
        3 * self.interval_ns
    }
    /// A blob not rewritten for this long belongs to a VM that stopped ticking.
    fn stale_ns(self) -> u64 {
        5 * self.interval_ns
    }
    fn prune_ns(self) -> u64 {
        (20 * self.interval_ns).max(120_000_000_000)
    }
}

#[derive(Debug)]
pub struct Sharing {
    keys: Keys,
    registry_key: String,
    lease_key: String,
    published_key: String,
    id: Option<u32>,
    ticks: u64,
    /// When this VM last wrote its blob.
    written_ns: Option<u64>,
    /// Quantile gauges by route label (one per configured quantile).
    gauges: HashMap<String, Vec<QuantileGauge>>,
    /// An empty histogram of the windows' shape: its bucket arithmetic, no counts.
    shape: Option<Histogram<u8>>,
}

/// One quantile gauge: its series, and the value this VM last set (a publisher sets only
/// what changed).
type QuantileGauge = (Slot, Option<u64>);

/// What a publication needs from the plugin: the quantiles, the bound on labels it accepts
/// from other VMs' windows, and the registry its gauges are defined through.
pub struct Publication<'a> {
    pub quantiles: &'a [Quantile],
    pub max_labels: usize,
    pub registry: &'a mut Registry,
}

/// Runs `change` on the decoded registry and writes it back. `change` returns false to
/// leave the registry as it is. Bytes that are not a registry are replaced.
fn update_registry(
    store: &impl SharedStore,
    key: &str,
    mut change: impl FnMut(&mut u32, &mut Vec<u32>) -> bool,
) -> bool {
    let done = update(store, key, |found| {
        let (mut next, mut ids) = found.value.and_then(decode_ids).unwrap_or((1, Vec::new()));
        match change(&mut next, &mut ids) {
            true => Change::Write(encode_ids(next, &ids), ()),
            false => Change::Keep(()),
        }
    });
    done.is_ok()
}

impl Sharing {
    pub fn new(keys: &Keys) -> Sharing {
        Sharing {
            keys: keys.clone(),
            registry_key: keys.latency_registry(),
            lease_key: keys.latency_lease(),
            published_key: keys.latency_published(),
            id: None,
            ticks: 0,
            written_ns: None,
            gauges: HashMap::new(),
            shape: None,
        }
    }

    fn register(&mut self, store: &impl SharedStore) {
        let mut got = None;
        let ok = update_registry(store, &self.registry_key, |next, ids| {
            got = Some(*next);
            ids.push(*next);
            *next = next.wrapping_add(1).max(1);
            true
        });
        if ok {
            self.id = got;
        }
    }

    /// Adds this VM back if a publisher pruned it (it looked dead while it stalled).
    fn ensure_registered(&mut self, id: u32, store: &impl SharedStore) {
        update_registry(store, &self.registry_key, |_, ids| {
            if ids.contains(&id) {
                return false;
            }
            ids.push(id);
            true
        });
    }

    /// Whether this tick must write the blob: the window changed, or the last write is two
    /// intervals old (a blob unwritten for five is taken for a dead VM's).
    pub fn blob_due(&self, changed: bool, now: u64, timing: Timing) -> bool {
        changed || self.written_ns.is_none_or(|at| now.saturating_sub(at) >= 2 * timing.interval_ns)
    }

    /// One tick at `now`: share this VM's window (`blob`, when [`Sharing::blob_due`]), and
    /// publish if this VM holds the lease.
    pub fn tick<H: MetricsHost + SharedStore>(
        &mut self,
        now: u64,
        blob: Option<&Blob>,
        timing: Timing,
        publication: Publication<'_>,
        host: &H,
    ) {
        self.ticks += 1;
        if self.id.is_none() {
            if blob.is_none_or(|b| b.routes.is_empty()) {
                return;
            }
            self.register(host);
        }
        let Some(id) = self.id else { return };
        if self.ticks % REGISTRY_CHECK_TICKS == 0 {
            self.ensure_registered(id, host);
        }
        // A failed write is tried again at the next tick.
        if blob.is_some_and(|blob| shared::put(host, &self.keys.latency_window(id), &blob.encode())) {
            self.written_ns = Some(now);
        }
        // The lease, taken if it is free or this VM's own.
        let lease = update(host, &self.lease_key, |found| match found.value.and_then(decode_lease) {
            Some((holder, until)) if holder != id && until >= now => Change::Keep(None),
            held => Change::Write(encode_lease(id, now.saturating_add(timing.lease_ns())), Some(held)),
        });
        let Ok(Updated::Written(Some(held), _)) = lease else { return };
        if held.is_none_or(|(holder, _)| holder != id) || self.ticks % REGISTRY_CHECK_TICKS == 0 {
            // Another VM may have set the gauges since this one last did (a publisher that
            // stalled past its lease can still finish a late publication): set them all anew.
            self.gauges.values_mut().flatten().for_each(|(_, value)| *value = None);
        }
        self.publish(now, timing, publication, host);
    }

    /// Merges every live VM's window and sets the quantile gauges.
    fn publish<H: MetricsHost + SharedStore>(&mut self, now: u64, timing: Timing, mut p: Publication<'_>, host: &H) {
        let Ok((Some(registry), _)) = host.get_shared(&self.registry_key) else { return };
        let Some((_, ids)) = decode_ids(&registry) else { return };
        let mut merged: BTreeMap<String, Sparse> = BTreeMap::new();
        let mut dead = Vec::new();
        for id in ids {
            let Ok((Some(bytes), _)) = host.get_shared(&self.keys.latency_window(id)) else { continue };
            let Some(blob) = Blob::decode(&bytes) else { continue };
            let age = now.saturating_sub(blob.written_ns);
            if age > timing.prune_ns() {
                dead.push(id);
            }
            if age > timing.stale_ns() {
                continue;
            }
            for (label, entries) in blob.routes {
                if merged.len() >= p.max_labels && !merged.contains_key(&label) {
                    continue;
                }
                merged.entry(label).or_default().extend(entries);
            }
        }
        if !dead.is_empty() {
            update_registry(host, &self.registry_key, |_, ids| {
                ids.retain(|id| !dead.contains(id));
                true
            });
            for id in &dead {
                shared::put(host, &self.keys.latency_window(*id), &[]);
            }
        }

        let shape = match &mut self.shape {
            Some(shape) => shape,
            none => match dense::<u8>() {
                Some(shape) => none.insert(shape),
                None => return,
            },
        };
        let mut values_by_label = Vec::with_capacity(merged.len());
        for (label, entries) in merged {
            if let Some(values) = quantile_values(entries, p.quantiles, shape) {
                values_by_label.push((label, values));
            }
        }
        let mut published = Vec::with_capacity(values_by_label.len());
        for (label, values) in values_by_label {
            self.set_gauges(&label, &values, &mut p, host);
            published.push(label);
        }
        // Routes that went quiet since the last publication read 0, not their old value.
        let (previous, version) = match host.get_shared(&self.published_key) {
            Ok((bytes, version)) => (bytes.as_deref().and_then(decode_labels).unwrap_or_default(), version),
            Err(_) => (Vec::new(), 0),
        };
        let zeros = vec![0; p.quantiles.len()];
        let quiet: Vec<&String> = previous.iter().filter(|l| published.binary_search(l).is_err()).collect();
        let mut not_zeroed = Vec::new();
        for (i, label) in quiet.into_iter().enumerate() {
            // A label that could not be zeroed now (a failed call, or past this tick's share)
            // stays listed, so a later publication tries again.
            if i >= p.max_labels || !self.set_gauges(label, &zeros, &mut p, host) {
                not_zeroed.push(label.clone());
            }
        }
        if !not_zeroed.is_empty() {
            published.extend(not_zeroed);
            published.sort_unstable();
        }
        if previous != published {
            // Unless another publisher wrote since the read: then its list stands.
            let _ = update(host, &self.published_key, |found| match found.version == version {
                true => Change::Write(encode_labels(&published), ()),
                false => Change::Keep(()),
            });
        }
    }

    /// Sets a route's quantile gauges to `values`; true when every one of them holds its value.
    fn set_gauges(&mut self, label: &str, values: &[u64], p: &mut Publication<'_>, host: &impl MetricsHost) -> bool {
        if self.gauges.len() >= 2 * p.max_labels && !self.gauges.contains_key(label) {
            // Defining again is idempotent in Envoy; this only bounds the cache.
            self.gauges.clear();
        }
        let gauges =
            self.gauges.entry(label.to_string()).or_insert_with(|| vec![(Slot::default(), None); p.quantiles.len()]);
        for (((slot, last), q), &value) in gauges.iter_mut().zip(p.quantiles).zip(values) {
            let id = p.registry.id(slot, host, (Metric::RequestDurationQuantile, &[label, &q.label], &[]));
            if let (Some(id), true) = (id, *last != Some(value)) {
                if host.record_metric(id, value).is_ok() {
                    *last = Some(value);
                }
            }
        }
        gauges.iter().zip(values).all(|((_, last), &value)| *last == Some(value))
    }

    /// The VM stops: leave the registry, clear the blob, hand the lease on.
    pub fn stop(&mut self, host: &impl SharedStore) {
        let Some(id) = self.id.take() else { return };
        update_registry(host, &self.registry_key, |_, ids| {
            let before = ids.len();
            ids.retain(|&i| i != id);
            ids.len() != before
        });
        shared::put(host, &self.keys.latency_window(id), &[]);
        let _ = update(host, &self.lease_key, |found| match found.value.and_then(decode_lease) {
            Some((holder, _)) if holder == id => Change::Write(encode_lease(id, 0), ()),
            _ => Change::Keep(()),
        });
    }
}

/// The configured quantiles of a window's buckets (any order, a bucket possibly listed more
/// than once), in microseconds, as `hdrhistogram` computes them on a dense histogram
/// (`value_at_quantile`, then `median_equivalent`): the middle of the bucket holding the
/// sample of rank ceil(q x n), within 0.4 % of every value in the bucket. Walking the sparse
/// list instead of filling a dense histogram keeps a publication cheap. `None` when there are
/// no samples.
pub fn quantile_values(entries: Sparse, quantiles: &[Quantile], shape: &Histogram<u8>) -> Option<Vec<u64>> {
    let entries = merge_sorted(entries);
    let total = entries.iter().fold(0u64, |t, (_, n)| t.saturating_add(*n));
    if total == 0 {
        return None;
    }
    let mut values = Vec::with_capacity(quantiles.len());
    for q in quantiles {
        let rank = ((q.value.min(1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        let mut value = 0;
        for &(v, n) in &entries {
            seen = seen.saturating_add(n);
            value = v;
            if seen >= rank {
                break;
            }
        }
        // Blob values are bucket tops of at most an hour; anything larger is not ours.
        let value = value.min(MAX_MICROS);
        values.push(shape.lowest_equivalent(value) + (shape.equivalent_range(value) >> 1));
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::{Faults, MemoryHost};
    use crate::metrics::stat_name;

    fn keys() -> Keys {
        Keys::for_plugin("")
    }

    fn registry_key() -> String {
        keys().latency_registry()
    }

    fn lease_key() -> String {
        keys().latency_lease()
    }

    const S: u64 = 1_000_000_000;

    impl Sharing {
        /// A tick that writes `blob`, at its time.
        fn tick_blob(
            &mut self,
            blob: &Blob,
            timing: Timing,
            quantiles: &[Quantile],
            max_labels: usize,
            host: &MemoryHost,
        ) {
            self.tick_at(blob.written_ns, Some(blob), timing, quantiles, max_labels, host);
        }

        fn tick_at(
            &mut self,
            now: u64,
            blob: Option<&Blob>,
            timing: Timing,
            quantiles: &[Quantile],
            max_labels: usize,
            host: &MemoryHost,
        ) {
            let mut registry = Registry::new(&keys());
            self.tick(now, blob, timing, Publication { quantiles, max_labels, registry: &mut registry }, host);
        }
    }
    const TIMING: Timing = Timing { interval_ns: S };

    fn quantiles() -> Vec<Quantile> {
        vec![Quantile { value: 0.5, label: "0.5".into() }, Quantile { value: 0.99, label: "0.99".into() }]
    }

    fn blob(now: u64, micros: u64, n: u64) -> Blob {
        Blob { written_ns: now, routes: vec![("/r".into(), vec![(micros, n)])] }
    }

    fn gauge(store: &MemoryHost, q: &str) -> Option<u64> {
        store.gauge(&stat_name(Metric::RequestDurationQuantile, &["/r", q])).map(|v| v as u64)
    }

    #[test]
    fn a_vm_that_stopped_ticking_leaves_the_merge_and_later_the_registry() {
        let store = MemoryHost::new();
        let (mut a, mut b) = (Sharing::new(&keys()), Sharing::new(&keys()));
        a.tick_blob(&blob(10 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        b.tick_blob(&blob(10 * S, 100_000, 99), TIMING, &quantiles(), 100, &store);
        a.tick_blob(&blob(11 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!((a.id, b.id), (Some(1), Some(2)));
        assert_eq!(gauge(&store, "0.5"), Some(100_096), "b's 99 samples dominate");
        // b crashes: its blob, written at 10 s, is ignored once older than five intervals.
        a.tick_blob(&blob(15 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(gauge(&store, "0.5"), Some(100_096));
        a.tick_blob(&blob(16 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(gauge(&store, "0.5"), Some(1_002), "the middle of 1,000-1,003");
        assert_eq!(decode_ids(&store.get_shared(&registry_key()).unwrap().0.unwrap()), Some((3, vec![1, 2])));
        // After two minutes it is pruned, and its blob cleared.
        a.tick_blob(&blob(131 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_ids(&store.get_shared(&registry_key()).unwrap().0.unwrap()), Some((3, vec![1])));
        assert_eq!(store.get_shared(&keys().latency_window(2)).unwrap().0, None);
    }

    #[test]
    fn the_lease_passes_on_when_its_holder_stops() {
        let store = MemoryHost::new();
        let (mut a, mut b) = (Sharing::new(&keys()), Sharing::new(&keys()));
        a.tick_blob(&blob(10 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        b.tick_blob(&blob(10 * S, 2_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(&lease_key()).unwrap().0.unwrap()), Some((1, 13 * S)));
        // a goes silent without stopping: b takes over once the lease ran out.
        b.tick_blob(&blob(13 * S, 2_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(&lease_key()).unwrap().0.unwrap()).map(|l| l.0), Some(1));
        b.tick_blob(&blob(14 * S, 2_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(&lease_key()).unwrap().0.unwrap()), Some((2, 17 * S)));
        // b stops: it deregisters, clears its blob and hands the lease on at once.
        b.stop(&store);
        assert_eq!(decode_ids(&store.get_shared(&registry_key()).unwrap().0.unwrap()), Some((3, vec![1])));
        a.tick_blob(&blob(15 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(&lease_key()).unwrap().0.unwrap()), Some((1, 18 * S)));
        assert_eq!(gauge(&store, "0.99"), Some(1_002));
    }

    #[test]
    fn foreign_bytes_in_shared_data_are_survived() {
        let store = MemoryHost::new();
        for key in [registry_key(), lease_key(), keys().latency_published(), keys().latency_window(1)] {
            store.set_shared(&key, &[0xff, 0x00, 0x13], 0).unwrap();
        }
        let mut a = Sharing::new(&keys());
        a.tick_blob(&blob(10 * S, 5_000, 3), TIMING, &quantiles(), 100, &store);
        // The registry was unreadable, so it started over; the lease was unreadable, so free.
        assert_eq!(a.id, Some(1));
        assert_eq!(gauge(&store, "0.5"), Some(5_008));
        assert_eq!(
            decode_labels(&store.get_shared(&keys().latency_published()).unwrap().0.unwrap()),
            Some(vec!["/r".to_string()])
        );
    }

    #[test]
    fn a_quiet_route_whose_zeroing_failed_is_zeroed_later() {
        let store = MemoryHost::new();
        let mut a = Sharing::new(&keys());
        a.tick_blob(&blob(10 * S, 5_000, 3), TIMING, &quantiles(), 100, &store);
        assert_eq!(gauge(&store, "0.5"), Some(5_008));
        // The route goes quiet while gauge writes fail: it stays listed as published.
        store.set_faults(Faults { metrics: true, ..Faults::default() });
        let quiet = Blob { written_ns: 11 * S, routes: vec![] };
        a.tick_blob(&quiet, TIMING, &quantiles(), 100, &store);
        assert_eq!(gauge(&store, "0.5"), Some(5_008));
        assert_eq!(
            decode_labels(&store.get_shared(&keys().latency_published()).unwrap().0.unwrap()),
            Some(vec!["/r".to_string()])
        );
        // Writes work again: the next publication zeroes it and forgets it.
        store.set_faults(Faults::default());
        a.tick_at(12 * S, None, TIMING, &quantiles(), 100, &store);
        assert_eq!((gauge(&store, "0.5"), gauge(&store, "0.99")), (Some(0), Some(0)));
        assert_eq!(decode_labels(&store.get_shared(&keys().latency_published()).unwrap().0.unwrap()), Some(vec![]));
    }

    #[test]
    fn labels_beyond_the_cap_are_not_published() {
        let store = MemoryHost::new();
        let mut a = Sharing::new(&keys());
        let routes = (0..10).map(|i| (format!("/r{i}"), vec![(7, 1)])).collect();
        a.tick_blob(&Blob { written_ns: S, routes }, TIMING, &quantiles(), 4, &store);
        assert_eq!(store.stats().len(), 4 * 2);
    }

    #[test]
    fn quantiles_follow_hdrhistogram() {
        let q = quantiles();
        let shape = dense::<u8>().unwrap();
        assert_eq!(quantile_values(vec![], &q, &shape), None);
        // 100 samples: p50 is the 50th (1 ms, bucket 1,000-1,003), p99 the 99th (250 ms, bucket 249,856-250,879).
        let entries = vec![(250_879, 1), (1_003, 98), (250_879, 1)];
        assert_eq!(quantile_values(entries.clone(), &q, &shape), Some(vec![1_002, 250_368]));
        // The same as hdrhistogram's own answer on a dense histogram of those samples.
        let mut h = dense::<u64>().unwrap();
        for (v, n) in entries {
            h.record_n(v, n).unwrap();
        }
        let theirs: Vec<u64> = q.iter().map(|q| h.median_equivalent(h.value_at_quantile(q.value))).collect();
        assert_eq!(theirs, vec![1_002, 250_368]);
    }
}
