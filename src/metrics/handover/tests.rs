use super::*;
use crate::host::memory::{Faults, MemoryHost};
use crate::shared::MAX_ATTEMPTS;

const A: (MetricKind, &str) = (MetricKind::Counter, "method=.=GET;.;route=.=/a;.;status=.=200;.;http_requests_total");
const B: (MetricKind, &str) = (MetricKind::Gauge, "method=.=GET;.;route=.=/a;.;http_requests_in_progress");
const C: (MetricKind, &str) = (MetricKind::Histogram, "route=.=/a;.;upload_file_size_bytes");

fn keys() -> Keys {
    Keys::for_plugin("")
}

/// One VM defines series and publishes them.
fn vm_defines(store: &MemoryHost, names: &[(MetricKind, &str)]) -> Handover {
    let mut vm = Handover::new(&keys());
    for (kind, name) in names {
        store.define_metric(*kind, name).unwrap();
        vm.note(*kind, name);
    }
    vm.publish(store);
    vm
}

fn chunk(store: &MemoryHost, i: usize) -> String {
    String::from_utf8(store.shared_value(&keys().series_chunk(i)).unwrap_or_default()).unwrap()
}

#[test]
fn a_new_vm_defines_every_series_the_old_ones_listed_with_its_kind() {
    let store = MemoryHost::new();
    assert_eq!(vm_defines(&store, &[A, B]).waiting(), 0);
    assert_eq!(vm_defines(&store, &[B, C]).waiting(), 0);
    assert_eq!(chunk(&store, 0), format!("c {}\ng {}\nh {}\n", A.1, B.1, C.1));
    store.take_defined();
    // The new module's VM.
    let mut new = Handover::new(&keys());
    new.take_over(&store);
    assert_eq!(store.take_defined(), [A.1, B.1, C.1]);
    assert_eq!(store.stats().iter().map(|(k, n, _)| (*k, n.as_str())).collect::<Vec<_>>(), [A, B, C]);
    // Nothing added: nothing to do. Added by an old VM still draining: only that is defined.
    new.take_over(&store);
    assert!(store.take_defined().is_empty());
    let d = (MetricKind::Counter, "d");
    vm_defines(&store, &[d]);
    store.take_defined();
    new.take_over(&store);
    assert_eq!(store.take_defined(), ["d"]);
    assert_eq!(new.listed(), 4);
}

#[test]
fn a_count_that_fell_behind_is_written_up_and_nothing_is_defined_again() {
    let store = MemoryHost::new();
    vm_defines(&store, &[A]);
    // A VM appended B to the chunk and died before it wrote the count.
    store.set_shared(&keys().series_chunk(0), format!("c {}\ng {}\n", A.1, B.1).as_bytes(), 0).unwrap();
    let mut vm = Handover::new(&keys());
    vm.take_over(&store);
    store.take_defined();
    assert_eq!(vm.listed(), 2);
    for _ in 0..3 {
        vm.take_over(&store);
    }
    assert!(store.take_defined().is_empty());
    assert_eq!(store.shared_value(&keys().series_count()), Some(vec![2]));
}

#[test]
fn a_series_is_defined_at_most_twice_per_vm_whatever_the_interleaving() {
    // Two VMs that each count a new series every tick, publish it and take over.
    let store = MemoryHost::new();
    let (mut x, mut y) = (Handover::new(&keys()), Handover::new(&keys()));
    let rounds = 150;
    for r in 0..rounds {
        for (vm, name) in [(&mut x, format!("x{r}")), (&mut y, format!("y{r}"))] {
            store.define_metric(MetricKind::Counter, &name).unwrap();
            vm.note(MetricKind::Counter, &name);
            vm.publish(&store);
            vm.take_over(&store);
        }
    }
    let listed: usize = (0..=2 * rounds / CHUNK).map(|i| chunk(&store, i).lines().count()).sum();
    assert_eq!(listed, 2 * rounds);
    x.take_over(&store);
    assert_eq!((x.listed(), y.listed()), (2 * rounds, 2 * rounds));
    // Its own VM when it first counts, and the other VM: never the whole list on a change.
    assert_eq!(store.calls().define, 2 * 2 * rounds);
}

#[test]
fn nothing_listed_nothing_defined_and_unreadable_lines_are_skipped() {
    let store = MemoryHost::new();
    let mut vm = Handover::new(&keys());
    vm.take_over(&store);
    assert!(store.take_defined().is_empty());
    let value = format!("x nonsense\nc \n\nc {}\n", A.1);
    store.set_shared(&keys().series_chunk(0), value.as_bytes(), 0).unwrap();
    store.set_shared(&keys().series_count(), &[4], 0).unwrap();
    vm.take_over(&store);
    assert_eq!(vm.listed(), 4);
    assert_eq!(store.take_defined(), [A.1]);
}

#[test]
fn a_lost_race_is_retried_and_an_unavailable_store_keeps_the_series_waiting() {
    let store = MemoryHost::new();
    store.lose_next_races(3);
    assert_eq!(vm_defines(&store, &[A]).waiting(), 0);
    store.set_faults(Faults { shared_data: true, ..Faults::default() });
    let mut waiting = vm_defines(&store, &[B]);
    assert_eq!(waiting.waiting(), 1);
    store.set_faults(Faults::default());
    // Always losing: still waiting after the attempts, published when a write gets through.
    store.lose_next_races(MAX_ATTEMPTS);
    waiting.publish(&store);
    assert_eq!(waiting.waiting(), 1);
    waiting.publish(&store);
    assert_eq!(waiting.waiting(), 0);
    assert_eq!(chunk(&store, 0), format!("c {}\ng {}\n", A.1, B.1));
}

#[test]
fn chunks_fill_up_and_the_list_stops_at_its_bound_counting_what_did_not_fit() {
    let store = MemoryHost::new();
    let names: Vec<String> = (0..CHUNK + 3).map(|i| format!("s{i}")).collect();
    let series: Vec<(MetricKind, &str)> = names.iter().map(|n| (MetricKind::Counter, n.as_str())).collect();
    vm_defines(&store, &series);
    assert_eq!((chunk(&store, 0).lines().count(), chunk(&store, 1).lines().count()), (CHUNK, 3));
    assert_eq!(store.shared_value(&keys().series_count()), Some(vec![CHUNK as u8 + 3]));
    // A list that is full: what comes is counted, not listed.
    let mut count = Vec::new();
    put_varint(&mut count, MAX_SERIES as u64);
    store.set_shared(&keys().series_count(), &count, 0).unwrap();
    let mut full = Handover::new(&keys());
    full.listed = MAX_SERIES;
    full.note(C.0, C.1);
    full.publish(&store);
    assert_eq!((full.waiting(), full.unlisted()), (0, 1));
}

#[test]
fn a_tick_reads_a_few_bytes_whatever_the_length_of_the_list() {
    let store = MemoryHost::new();
    let names: Vec<String> =
        (0..10_000).map(|i| format!("method=.=GET;.;route=.=/r{i};.;http_requests_total")).collect();
    let series: Vec<(MetricKind, &str)> = names.iter().map(|n| (MetricKind::Counter, n.as_str())).collect();
    vm_defines(&store, &series);
    let mut vm = Handover::new(&keys());
    vm.take_over(&store);
    assert_eq!(vm.listed(), 10_000);
    let before = store.calls();
    vm.take_over(&store);
    let after = store.calls();
    assert_eq!((after.shared_reads - before.shared_reads, after.shared_bytes_read - before.shared_bytes_read), (1, 2));
    // One new series: the count and one chunk.
    vm_defines(&store, &[A]);
    let before = store.calls();
    vm.take_over(&store);
    assert_eq!(store.calls().shared_reads - before.shared_reads, 2);
    assert!(store.calls().shared_bytes_read - before.shared_bytes_read < CHUNK * 64);
}

#[test]
fn a_series_noted_twice_or_listed_by_another_vm_is_listed_once() {
    let store = MemoryHost::new();
    vm_defines(&store, &[A, B, A]);
    vm_defines(&store, &[B]);
    // Both VMs define C before either lists it.
    let (mut x, mut y) = (Handover::new(&keys()), Handover::new(&keys()));
    x.note(C.0, C.1);
    y.note(C.0, C.1);
    x.publish(&store);
    y.publish(&store);
    assert_eq!(chunk(&store, 0), format!("c {}\ng {}\nh {}\n", A.1, B.1, C.1));
}
