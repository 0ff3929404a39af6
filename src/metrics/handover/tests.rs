use super::*;
use crate::host::memory::Memory;

fn series(names: &[(MetricKind, &str)]) -> Vec<(MetricKind, String)> {
    names.iter().map(|(k, n)| (*k, n.to_string())).collect()
}

/// One VM defines series through the noting host and publishes them.
fn vm_defines(store: &Memory, names: &[(MetricKind, &str)]) -> Unpublished {
    let unpublished = Unpublished::default();
    let host = unpublished.noting(store);
    for (kind, name) in names {
        host.define_metric(*kind, name).unwrap();
    }
    unpublished.publish(store, 0);
    unpublished
}

const A: (MetricKind, &str) = (MetricKind::Counter, "method=.=GET;.;route=.=/a;.;status=.=200;.;http_requests_total");
const B: (MetricKind, &str) = (MetricKind::Gauge, "method=.=GET;.;route=.=/a;.;http_requests_in_progress");
const C: (MetricKind, &str) = (MetricKind::Histogram, "route=.=/a;.;upload_file_size_bytes");

#[test]
fn a_new_vm_defines_every_series_the_old_ones_listed_with_its_kind() {
    let old = Memory::default();
    assert!(vm_defines(&old, &[A, B]).is_empty());
    assert!(vm_defines(&old, &[B, C]).is_empty());
    assert_eq!(old.get_shared(SHARED_KEY).unwrap().0.unwrap(), format!("c {}\ng {}\nh {}\n", A.1, B.1, C.1).as_bytes());
    // The new module's VM: the same shared data, its own stats.
    let new = old.another_vm();
    let version = take_over(&new, 0);
    assert_eq!(*new.defined.borrow(), series(&[A, B, C]));
    // Unchanged: nothing to do. Changed by an old VM still draining: its series are held too.
    new.defined.borrow_mut().clear();
    assert_eq!(take_over(&new, version), version);
    assert!(new.defined.borrow().is_empty());
    let d = (MetricKind::Counter, "d");
    vm_defines(&new, &[d]);
    new.defined.borrow_mut().clear();
    assert!(take_over(&new, version) > version);
    assert_eq!(*new.defined.borrow(), series(&[A, B, C, d]));
}

#[test]
fn nothing_listed_nothing_defined_and_unreadable_lines_are_skipped() {
    let store = Memory::default();
    assert_eq!(take_over(&store, 0), 0);
    assert!(store.defined.borrow().is_empty());
    let value = format!("x nonsense\nc \n\nc {}\n", A.1);
    store.set_shared(SHARED_KEY, value.as_bytes(), 0).unwrap();
    assert_eq!(take_over(&store, 0), 1);
    assert_eq!(*store.defined.borrow(), series(&[A]));
}

#[test]
fn a_lost_race_is_retried_and_an_unavailable_store_keeps_the_series_waiting() {
    let store = Memory::default();
    store.conflicts.set(3);
    assert!(vm_defines(&store, &[A]).is_empty());
    store.unavailable.set(true);
    let waiting = vm_defines(&store, &[B]);
    assert_eq!(waiting.len(), 1);
    store.unavailable.set(false);
    // Always losing: still waiting after the attempts, published when a write gets through.
    store.conflicts.set(MAX_ATTEMPTS);
    waiting.publish(&store, 0);
    assert_eq!(waiting.len(), 1);
    waiting.publish(&store, 0);
    assert!(waiting.is_empty());
    assert_eq!(store.get_shared(SHARED_KEY).unwrap().0.unwrap(), format!("c {}\ng {}\n", A.1, B.1).as_bytes());
}

#[test]
fn the_list_stops_growing_at_its_bound() {
    let store = Memory::default();
    let long = "x".repeat(MAX_BYTES / 2);
    let first = format!("{long}1");
    let second = format!("{long}2");
    vm_defines(&store, &[(MetricKind::Counter, &first), (MetricKind::Counter, &second)]);
    let listed = store.get_shared(SHARED_KEY).unwrap().0.unwrap();
    assert_eq!(listed, format!("c {first}\n").as_bytes());
}

#[test]
fn a_vm_that_wrote_the_latest_list_need_not_take_it_over_again() {
    let store = Memory::default();
    let mine = Unpublished::default();
    mine.noting(&store).define_metric(A.0, A.1).unwrap();
    let version = mine.publish(&store, take_over(&store, 0));
    store.defined.borrow_mut().clear();
    assert_eq!(take_over(&store, version), version);
    assert!(store.defined.borrow().is_empty());
    // Another VM added a series in between: this VM's next write leaves it to take over.
    vm_defines(&store, &[B]);
    mine.noting(&store).define_metric(C.0, C.1).unwrap();
    let after = mine.publish(&store, version);
    assert_eq!(after, version);
    store.defined.borrow_mut().clear();
    take_over(&store, after);
    assert_eq!(*store.defined.borrow(), series(&[A, B, C]));
}
