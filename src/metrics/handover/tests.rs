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
    let taken = take_over(&new, 0);
    assert_eq!(*new.defined.borrow(), series(&[A, B, C]));
    // Nothing added: nothing to do. Added by an old VM still draining: only that is defined.
    new.defined.borrow_mut().clear();
    assert_eq!(take_over(&new, taken), taken);
    assert!(new.defined.borrow().is_empty());
    let d = (MetricKind::Counter, "d");
    vm_defines(&new, &[d]);
    new.defined.borrow_mut().clear();
    assert_eq!(take_over(&new, taken), taken + "c d\n".len());
    assert_eq!(*new.defined.borrow(), series(&[d]));
}

#[test]
fn a_list_written_anew_is_taken_over_whole() {
    let store = Memory::default();
    vm_defines(&store, &[A, B]);
    let taken = take_over(&store, 0);
    // Shorter than what was taken, or not breaking between two lines there.
    for value in [format!("c {}\n", C.1), format!("c {}\nc {}\n", C.1, A.1)] {
        store.set_shared(SHARED_KEY, value.as_bytes(), 0).unwrap();
        store.defined.borrow_mut().clear();
        take_over(&store, taken);
        assert_eq!(store.defined.borrow().len(), value.lines().count(), "{value}");
    }
}

#[test]
fn a_series_is_defined_at_most_three_times_in_all_whatever_the_interleaving() {
    // Two VMs that each count a new series every tick, publish it and take over.
    let store = Memory::default();
    let (x, y) = (Unpublished::default(), Unpublished::default());
    let (mut tx, mut ty) = (take_over(&store, 0), take_over(&store, 0));
    let rounds = 50;
    for r in 0..rounds {
        for (vm, taken, name) in [(&x, &mut tx, format!("x{r}")), (&y, &mut ty, format!("y{r}"))] {
            vm.noting(&store).define_metric(MetricKind::Counter, &name).unwrap();
            *taken = vm.publish(&store, *taken);
            *taken = take_over(&store, *taken);
        }
    }
    let listed = store.get_shared(SHARED_KEY).unwrap().0.unwrap();
    assert_eq!(listed.iter().filter(|b| **b == b'\n').count(), 2 * rounds);
    // Its own VM when it first counts, the other VM, and its own VM again when the other
    // wrote in between: never the whole list on every change.
    assert!(store.define_calls.get() <= 3 * 2 * rounds, "{} define calls", store.define_calls.get());
    assert!(store.define_calls.get() >= 2 * 2 * rounds, "{} define calls", store.define_calls.get());
}

#[test]
fn nothing_listed_nothing_defined_and_unreadable_lines_are_skipped() {
    let store = Memory::default();
    assert_eq!(take_over(&store, 0), 0);
    assert!(store.defined.borrow().is_empty());
    let value = format!("x nonsense\nc \n\nc {}\n", A.1);
    store.set_shared(SHARED_KEY, value.as_bytes(), 0).unwrap();
    assert_eq!(take_over(&store, 0), value.len());
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
    let taken = mine.publish(&store, take_over(&store, 0));
    store.defined.borrow_mut().clear();
    assert_eq!(take_over(&store, taken), taken);
    assert!(store.defined.borrow().is_empty());
    // Another VM added a series in between: this VM's next write leaves both to take over.
    vm_defines(&store, &[B]);
    mine.noting(&store).define_metric(C.0, C.1).unwrap();
    let after = mine.publish(&store, taken);
    assert_eq!(after, taken);
    store.defined.borrow_mut().clear();
    take_over(&store, after);
    assert_eq!(*store.defined.borrow(), series(&[B, C]));
}

#[test]
fn a_series_noted_twice_is_listed_once() {
    let store = Memory::default();
    vm_defines(&store, &[A, B, A]);
    vm_defines(&store, &[B]);
    assert_eq!(store.get_shared(SHARED_KEY).unwrap().0.unwrap(), format!("c {}\ng {}\n", A.1, B.1).as_bytes());
}
