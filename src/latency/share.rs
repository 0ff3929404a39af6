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

use crate::host::{CasWrite, MetricId, MetricsHost, SharedStore, CREATE_ONLY};
use crate::metrics::{stat_name, Metric};

use super::codec::{decode_ids, decode_labels, decode_lease, encode_ids, encode_labels, encode_lease, Blob};
use hdrhistogram::Histogram;

use super::window::{dense, merge_sorted, Sparse, MAX_MICROS};
use super::Quantile;

pub const REGISTRY_KEY: &str = "routemeter.latency.v1.vms";
pub const LEASE_KEY: &str = "routemeter.latency.v1.publisher";
pub const PUBLISHED_KEY: &str = "routemeter.latency.v1.published";
const MAX_ATTEMPTS: usize = 16;
/// Ticks between checks that this VM is still registered (a publisher prunes VMs that
/// looked dead, which a VM stalled for minutes would).
const REGISTRY_CHECK_TICKS: u64 = 30;

pub fn blob_key(id: u32) -> String {
    format!("routemeter.latency.v1.vm.{id}")
}

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

#[derive(Debug, Default)]
pub struct Sharing {
    id: Option<u32>,
    ticks: u64,
    /// When this VM last wrote its blob.
    written_ns: Option<u64>,
    /// Quantile gauges by route label (one per configured quantile).
    gauges: HashMap<String, Vec<QuantileGauge>>,
    /// An empty histogram of the windows' shape: its bucket arithmetic, no counts.
    shape: Option<Histogram<u8>>,
}

/// One quantile gauge: its id once defined, and the value this VM last set (a publisher sets
/// only what changed).
type QuantileGauge = (Option<MetricId>, Option<u64>);

/// Runs `change` on the decoded registry and writes it back with CAS, retrying on conflict.
/// `change` returns false to leave the registry as it is.
fn update_registry(store: &impl SharedStore, mut change: impl FnMut(&mut u32, &mut Vec<u32>) -> bool) -> bool {
    for _ in 0..MAX_ATTEMPTS {
        let Ok((value, cas)) = store.get_shared(REGISTRY_KEY) else { return false };
        let (mut next, mut ids) = match &value {
            Some(bytes) => match decode_ids(bytes) {
                Some(decoded) => decoded,
                // Not ours to interpret: start over rather than fail forever.
                None => (1, Vec::new()),
            },
            None => (1, Vec::new()),
        };
        if !change(&mut next, &mut ids) {
            return true;
        }
        let cas = if value.is_none() && cas == 0 { CREATE_ONLY } else { cas };
        match store.set_shared(REGISTRY_KEY, &encode_ids(next, &ids), cas) {
            Ok(CasWrite::Stored) => return true,
            Ok(CasWrite::Conflict) => continue,
            Err(_) => return false,
        }
    }
    false
}

impl Sharing {
    fn register(&mut self, store: &impl SharedStore) {
        let mut got = None;
        let ok = update_registry(store, |next, ids| {
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
        update_registry(store, |_, ids| {
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
    #[allow(clippy::too_many_arguments)]
    pub fn tick<H: MetricsHost + SharedStore>(
        &mut self,
        now: u64,
        blob: Option<&Blob>,
        timing: Timing,
        quantiles: &[Quantile],
        max_labels: usize,
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
        if let Some(blob) = blob {
            // Unchecked (CAS 0) on purpose: only this VM writes its own key. A failed write is
            // tried again at the next tick.
            if let Ok(CasWrite::Stored) = host.set_shared(&blob_key(id), &blob.encode(), 0) {
                self.written_ns = Some(now);
            }
        }
        let Ok((lease, cas)) = host.get_shared(LEASE_KEY) else { return };
        let (free, taking_over) = match lease.as_deref().and_then(decode_lease) {
            Some((holder, until)) => (holder == id || until < now, holder != id),
            None => (true, true),
        };
        if !free {
            return;
        }
        if taking_over || self.ticks % REGISTRY_CHECK_TICKS == 0 {
            // Another VM may have set the gauges since this one last did (a publisher that
            // stalled past its lease can still finish a late publication): set them all anew.
            self.gauges.values_mut().flatten().for_each(|(_, value)| *value = None);
        }
        let cas = if lease.is_none() && cas == 0 { CREATE_ONLY } else { cas };
        if let Ok(CasWrite::Stored) =
            host.set_shared(LEASE_KEY, &encode_lease(id, now.saturating_add(timing.lease_ns())), cas)
        {
            self.publish(now, timing, quantiles, max_labels, host);
        }
    }

    /// Merges every live VM's window and sets the quantile gauges.
    fn publish<H: MetricsHost + SharedStore>(
        &mut self,
        now: u64,
        timing: Timing,
        quantiles: &[Quantile],
        max_labels: usize,
        host: &H,
    ) {
        let Ok((Some(registry), _)) = host.get_shared(REGISTRY_KEY) else { return };
        let Some((_, ids)) = decode_ids(&registry) else { return };
        let mut merged: BTreeMap<String, Sparse> = BTreeMap::new();
        let mut dead = Vec::new();
        for id in ids {
            let Ok((Some(bytes), _)) = host.get_shared(&blob_key(id)) else { continue };
            let Some(blob) = Blob::decode(&bytes) else { continue };
            let age = now.saturating_sub(blob.written_ns);
            if age > timing.prune_ns() {
                dead.push(id);
            }
            if age > timing.stale_ns() {
                continue;
            }
            for (label, entries) in blob.routes {
                if merged.len() >= max_labels && !merged.contains_key(&label) {
                    continue;
                }
                merged.entry(label).or_default().extend(entries);
            }
        }
        if !dead.is_empty() {
            update_registry(host, |_, ids| {
                ids.retain(|id| !dead.contains(id));
                true
            });
            for id in &dead {
                let _ = host.set_shared(&blob_key(*id), &[], 0);
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
            if let Some(values) = quantile_values(entries, quantiles, shape) {
                values_by_label.push((label, values));
            }
        }
        let mut published = Vec::with_capacity(values_by_label.len());
        for (label, values) in values_by_label {
            self.set_gauges(&label, quantiles, &values, max_labels, host);
            published.push(label);
        }
        // Routes that went quiet since the last publication read 0, not their old value.
        let (previous, cas) = match host.get_shared(PUBLISHED_KEY) {
            Ok((bytes, cas)) => (bytes.as_deref().and_then(decode_labels).unwrap_or_default(), cas),
            Err(_) => (Vec::new(), 0),
        };
        let zeros = vec![0; quantiles.len()];
        let quiet: Vec<&String> = previous.iter().filter(|l| published.binary_search(l).is_err()).collect();
        let mut not_zeroed = Vec::new();
        for (i, label) in quiet.into_iter().enumerate() {
            // A label that could not be zeroed now (a failed call, or past this tick's share)
            // stays listed, so a later publication tries again.
            if i >= max_labels || !self.set_gauges(label, quantiles, &zeros, max_labels, host) {
                not_zeroed.push(label.clone());
            }
        }
        if !not_zeroed.is_empty() {
            published.extend(not_zeroed);
            published.sort_unstable();
        }
        if previous != published {
            let cas = if cas == 0 { CREATE_ONLY } else { cas };
            let _ = host.set_shared(PUBLISHED_KEY, &encode_labels(&published), cas);
        }
    }

    /// Sets a route's quantile gauges to `values`; true when every one of them holds its value.
    fn set_gauges(
        &mut self,
        label: &str,
        quantiles: &[Quantile],
        values: &[u64],
        max_labels: usize,
        host: &impl MetricsHost,
    ) -> bool {
        if self.gauges.len() >= 2 * max_labels && !self.gauges.contains_key(label) {
            // Defining again is idempotent in Envoy; this only bounds the cache.
            self.gauges.clear();
        }
        let gauges = self.gauges.entry(label.to_string()).or_insert_with(|| vec![(None, None); quantiles.len()]);
        let metric = Metric::RequestDurationQuantile;
        for (((id, last), q), &value) in gauges.iter_mut().zip(quantiles).zip(values) {
            if id.is_none() {
                *id = host.define_metric(metric.kind(), &stat_name(metric, &[label, &q.label])).ok();
            }
            if let (Some(id), true) = (*id, *last != Some(value)) {
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
        update_registry(host, |_, ids| {
            let before = ids.len();
            ids.retain(|&i| i != id);
            ids.len() != before
        });
        let _ = host.set_shared(&blob_key(id), &[], 0);
        if let Ok((Some(lease), cas)) = host.get_shared(LEASE_KEY) {
            if decode_lease(&lease).is_some_and(|(holder, _)| holder == id) {
                let _ = host.set_shared(LEASE_KEY, &encode_lease(id, 0), cas);
            }
        }
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
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use crate::host::{HostError, MetricKind};

    /// Shared data with Envoy's CAS rules (a non-zero CAS is checked against an existing
    /// key only; versions count writes) and gauges by name.
    #[derive(Default)]
    struct Store {
        data: RefCell<HashMap<String, (Vec<u8>, u32)>>,
        writes: RefCell<u32>,
        names: RefCell<Vec<String>>,
        gauges: RefCell<HashMap<String, u64>>,
        /// Gauge writes fail while set.
        failing_records: RefCell<bool>,
    }

    impl SharedStore for Store {
        fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
            Ok(match self.data.borrow().get(key) {
                Some((v, cas)) => ((!v.is_empty()).then(|| v.clone()), *cas),
                None => (None, 0),
            })
        }
        fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
            let mut data = self.data.borrow_mut();
            if let Some((_, current)) = data.get(key) {
                if cas != 0 && cas != *current {
                    return Ok(CasWrite::Conflict);
                }
            }
            *self.writes.borrow_mut() += 1;
            data.insert(key.to_string(), (value.to_vec(), *self.writes.borrow()));
            Ok(CasWrite::Stored)
        }
    }

    impl MetricsHost for Store {
        fn define_metric(&self, _: MetricKind, name: &str) -> Result<MetricId, HostError> {
            let mut names = self.names.borrow_mut();
            if let Some(i) = names.iter().position(|n| n == name) {
                return Ok(MetricId(i as u32));
            }
            names.push(name.to_string());
            Ok(MetricId(names.len() as u32 - 1))
        }
        fn increment_metric(&self, _: MetricId, _: i64) -> Result<(), HostError> {
            Ok(())
        }
        fn record_metric(&self, id: MetricId, value: u64) -> Result<(), HostError> {
            if *self.failing_records.borrow() {
                return Err(HostError(10));
            }
            let name = self.names.borrow()[id.0 as usize].clone();
            self.gauges.borrow_mut().insert(name, value);
            Ok(())
        }
    }

    const S: u64 = 1_000_000_000;

    impl Sharing {
        /// A tick that writes `blob`, at its time.
        fn tick_blob(&mut self, blob: &Blob, timing: Timing, quantiles: &[Quantile], max_labels: usize, host: &Store) {
            self.tick(blob.written_ns, Some(blob), timing, quantiles, max_labels, host);
        }
    }
    const TIMING: Timing = Timing { interval_ns: S };

    fn quantiles() -> Vec<Quantile> {
        vec![Quantile { value: 0.5, label: "0.5".into() }, Quantile { value: 0.99, label: "0.99".into() }]
    }

    fn blob(now: u64, micros: u64, n: u64) -> Blob {
        Blob { written_ns: now, routes: vec![("/r".into(), vec![(micros, n)])] }
    }

    fn gauge(store: &Store, q: &str) -> Option<u64> {
        let name = stat_name(Metric::RequestDurationQuantile, &["/r", q]);
        store.gauges.borrow().get(&name).copied()
    }

    #[test]
    fn a_vm_that_stopped_ticking_leaves_the_merge_and_later_the_registry() {
        let store = Store::default();
        let (mut a, mut b) = (Sharing::default(), Sharing::default());
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
        assert_eq!(decode_ids(&store.get_shared(REGISTRY_KEY).unwrap().0.unwrap()), Some((3, vec![1, 2])));
        // After two minutes it is pruned, and its blob cleared.
        a.tick_blob(&blob(131 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_ids(&store.get_shared(REGISTRY_KEY).unwrap().0.unwrap()), Some((3, vec![1])));
        assert_eq!(store.get_shared(&blob_key(2)).unwrap().0, None);
    }

    #[test]
    fn the_lease_passes_on_when_its_holder_stops() {
        let store = Store::default();
        let (mut a, mut b) = (Sharing::default(), Sharing::default());
        a.tick_blob(&blob(10 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        b.tick_blob(&blob(10 * S, 2_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(LEASE_KEY).unwrap().0.unwrap()), Some((1, 13 * S)));
        // a goes silent without stopping: b takes over once the lease ran out.
        b.tick_blob(&blob(13 * S, 2_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(LEASE_KEY).unwrap().0.unwrap()).map(|l| l.0), Some(1));
        b.tick_blob(&blob(14 * S, 2_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(LEASE_KEY).unwrap().0.unwrap()), Some((2, 17 * S)));
        // b stops: it deregisters, clears its blob and hands the lease on at once.
        b.stop(&store);
        assert_eq!(decode_ids(&store.get_shared(REGISTRY_KEY).unwrap().0.unwrap()), Some((3, vec![1])));
        a.tick_blob(&blob(15 * S, 1_000, 1), TIMING, &quantiles(), 100, &store);
        assert_eq!(decode_lease(&store.get_shared(LEASE_KEY).unwrap().0.unwrap()), Some((1, 18 * S)));
        assert_eq!(gauge(&store, "0.99"), Some(1_002));
    }

    #[test]
    fn foreign_bytes_in_shared_data_are_survived() {
        let store = Store::default();
        for key in [REGISTRY_KEY, LEASE_KEY, PUBLISHED_KEY, &blob_key(1)] {
            store.set_shared(key, &[0xff, 0x00, 0x13], 0).unwrap();
        }
        let mut a = Sharing::default();
        a.tick_blob(&blob(10 * S, 5_000, 3), TIMING, &quantiles(), 100, &store);
        // The registry was unreadable, so it started over; the lease was unreadable, so free.
        assert_eq!(a.id, Some(1));
        assert_eq!(gauge(&store, "0.5"), Some(5_008));
        assert_eq!(decode_labels(&store.get_shared(PUBLISHED_KEY).unwrap().0.unwrap()), Some(vec!["/r".to_string()]));
    }

    #[test]
    fn a_quiet_route_whose_zeroing_failed_is_zeroed_later() {
        let store = Store::default();
        let mut a = Sharing::default();
        a.tick_blob(&blob(10 * S, 5_000, 3), TIMING, &quantiles(), 100, &store);
        assert_eq!(gauge(&store, "0.5"), Some(5_008));
        // The route goes quiet while gauge writes fail: it stays listed as published.
        *store.failing_records.borrow_mut() = true;
        let quiet = Blob { written_ns: 11 * S, routes: vec![] };
        a.tick_blob(&quiet, TIMING, &quantiles(), 100, &store);
        assert_eq!(gauge(&store, "0.5"), Some(5_008));
        assert_eq!(decode_labels(&store.get_shared(PUBLISHED_KEY).unwrap().0.unwrap()), Some(vec!["/r".to_string()]));
        // Writes work again: the next publication zeroes it and forgets it.
        *store.failing_records.borrow_mut() = false;
        a.tick(12 * S, None, TIMING, &quantiles(), 100, &store);
        assert_eq!((gauge(&store, "0.5"), gauge(&store, "0.99")), (Some(0), Some(0)));
        assert_eq!(decode_labels(&store.get_shared(PUBLISHED_KEY).unwrap().0.unwrap()), Some(vec![]));
    }

    #[test]
    fn labels_beyond_the_cap_are_not_published() {
        let store = Store::default();
        let mut a = Sharing::default();
        let routes = (0..10).map(|i| (format!("/r{i}"), vec![(7, 1)])).collect();
        a.tick_blob(&Blob { written_ns: S, routes }, TIMING, &quantiles(), 4, &store);
        assert_eq!(store.gauges.borrow().len(), 4 * 2);
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
