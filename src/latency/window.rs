//! One route's latencies over a sliding window, in HdrHistogram form.
//!
//! The window is [`SUB_WINDOWS`] sub-windows long. Requests of the current sub-window go into
//! a dense `hdrhistogram` (O(1) per sample, 1 % relative precision); when the sub-window ends
//! its histogram is kept as a sparse list of (bucket value, count) pairs and the dense one is
//! reset for reuse, so a route holds one dense histogram whatever the window length. A window
//! therefore covers the last `SUB_WINDOWS - 1` whole sub-windows plus the current one: with
//! the default 60 s, between the last 45 and 60 s.

use hdrhistogram::{Counter, Histogram};

/// Sub-windows per window.
pub const SUB_WINDOWS: u64 = 4;
/// Two significant digits: every value is kept to within 1 part in 128 (0.8 %) of itself.
pub const SIGFIG: u8 = 2;
/// Latencies are microseconds; longer than an hour counts as an hour, which bounds the dense
/// histogram at 3,328 counters (13 KB).
pub const MAX_MICROS: u64 = 3_600_000_000;

/// A sparse histogram: (highest value of a bucket, samples in it), values ascending.
pub type Sparse = Vec<(u64, u64)>;

#[derive(Debug)]
pub struct Window {
    current: Histogram<u32>,
    /// The sub-window `current` belongs to.
    epoch: u64,
    /// Earlier sub-windows still inside the window, oldest first.
    past: Vec<(u64, Sparse)>,
    /// [`Window::merged`] as of the last change. Walking the dense histogram is by far the
    /// dearest part of a tick in Wasm (about 40k operations per route), so an idle route
    /// must not pay it every second.
    merged: Option<Sparse>,
}

/// A new dense histogram: auto-resizing from a few hundred bytes up to the [`MAX_MICROS`] bound.
pub fn dense<T: Counter>() -> Option<Histogram<T>> {
    Histogram::new(SIGFIG).ok()
}

impl Window {
    pub fn new(epoch: u64) -> Option<Window> {
        Some(Window { current: dense()?, epoch, past: Vec::new(), merged: None })
    }

    /// Records one latency at sub-window `epoch` (time never runs backwards here: an earlier
    /// epoch, after a wall-clock step back, counts in the current sub-window).
    pub fn record(&mut self, micros: u64, epoch: u64) {
        self.advance(epoch);
        self.merged = None;
        // Grows the histogram as needed (never past MAX_MICROS); a full counter saturates
        // (4e9 samples in one bucket of one sub-window). The only error, a resize beyond
        // usize, cannot happen below MAX_MICROS.
        let _ = self.current.record(micros.min(MAX_MICROS));
    }

    /// Moves to sub-window `epoch`, dropping what left the window. True if nothing is left.
    pub fn advance(&mut self, epoch: u64) -> bool {
        if epoch > self.epoch {
            if !self.current.is_empty() {
                self.past.push((self.epoch, sparse(&self.current)));
                self.current.reset();
            }
            self.epoch = epoch;
            let before = self.past.len();
            self.past.retain(|(e, _)| e + SUB_WINDOWS > epoch);
            if self.past.len() != before {
                self.merged = None;
            }
        }
        self.current.is_empty() && self.past.is_empty()
    }

    /// Everything in the window, merged: values ascending, each once. The flag says whether
    /// it changed since the last call.
    pub fn merged(&mut self) -> (&Sparse, bool) {
        let changed = self.merged.is_none();
        let past = &self.past;
        let current = &self.current;
        let merged = self.merged.get_or_insert_with(|| {
            let mut all: Sparse = past.iter().flat_map(|(_, s)| s.iter().copied()).collect();
            all.extend(sparse(current));
            merge_sorted(all)
        });
        (merged, changed)
    }

    /// Bytes this window holds (dense counters plus sparse lists), for the memory report.
    pub fn heap_bytes(&self) -> usize {
        self.current.distinct_values() * std::mem::size_of::<u32>()
            + self.past.iter().map(|(_, s)| s.capacity() * std::mem::size_of::<(u64, u64)>()).sum::<usize>()
    }
}

/// The recorded buckets of a dense histogram: bucket by bucket from the smallest recorded
/// value until every sample is found. `iter_recorded` gives the same list at several times
/// the cost in Wasm (its iterator tracks quantiles at every step).
pub fn sparse(h: &Histogram<u32>) -> Sparse {
    let total = h.len();
    let mut out = Vec::new();
    let (mut seen, mut value, max) = (0u64, h.min(), h.max());
    // `seen` cannot reach `total` if a counter saturated; past `max` there is nothing left.
    while seen < total && value <= max {
        let n = u64::from(h.count_at(value));
        if n > 0 {
            out.push((h.highest_equivalent(value), n));
            seen = seen.saturating_add(n);
        }
        let next = h.next_non_equivalent(value);
        if next <= value {
            break;
        }
        value = next;
    }
    out
}

/// Sorts and adds up equal values (the same bucket seen in several sub-windows or VMs).
pub fn merge_sorted(mut all: Sparse) -> Sparse {
    all.sort_unstable_by_key(|&(v, _)| v);
    let mut out: Sparse = Vec::with_capacity(all.len());
    for (v, n) in all {
        match out.last_mut() {
            Some((last, count)) if *last == v => *count = count.saturating_add(n),
            _ => out.push((v, n)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(s: &Sparse) -> u64 {
        s.iter().map(|(_, n)| n).sum()
    }

    #[test]
    fn the_window_keeps_the_last_sub_windows() {
        let mut w = Window::new(10).unwrap();
        w.record(1_000, 10);
        w.record(2_000, 11);
        w.record(3_000, 13);
        assert_eq!(total(w.merged().0), 3);
        // Sub-window 14: 10 left the window (14 - 4 + 1 = 11 is the oldest kept).
        assert!(!w.advance(14));
        assert_eq!(total(w.merged().0), 2);
        assert!(!w.advance(16));
        assert_eq!(total(w.merged().0), 1);
        assert!(w.advance(17), "3_000 at 13 left at 17");
        assert_eq!(w.merged().0, &vec![]);
    }

    #[test]
    fn an_earlier_epoch_counts_in_the_current_sub_window() {
        let mut w = Window::new(10).unwrap();
        w.record(5, 10);
        w.record(7, 9);
        assert_eq!(w.merged().0, &vec![(5, 1), (7, 1)]);
    }

    #[test]
    fn values_keep_two_significant_digits() {
        let mut w = Window::new(0).unwrap();
        for v in [0, 1, 255, 256, 257, 100_000, 100_999, MAX_MICROS, u64::MAX] {
            w.record(v, 0);
        }
        let merged = w.merged().0.clone();
        assert_eq!(total(&merged), 9);
        // Below 256 every microsecond is its own bucket; above, buckets are 1/128 to 1/256
        // of the value wide; the top is capped at an hour.
        assert_eq!(merged[..4], [(0, 1), (1, 1), (255, 1), (257, 2)]);
        for &(v, _) in &merged[4..] {
            assert!((100_000..=MAX_MICROS + MAX_MICROS / 128).contains(&v), "{v}");
        }
        let h = dense::<u32>().unwrap();
        for v in [100_000u64, 250_000, 3_000_000, MAX_MICROS] {
            let err = (h.highest_equivalent(v) - h.lowest_equivalent(v)) as f64 / v as f64;
            assert!(err < 0.008, "{v}: bucket width {err}");
        }
    }

    #[test]
    fn sparse_lists_what_iter_recorded_does() {
        let mut h = dense::<u32>().unwrap();
        assert_eq!(sparse(&h), vec![]);
        for (v, n) in [(0, 2), (3, 1), (255, 1), (256, 4), (1_000, 7), (250_000, 1), (MAX_MICROS, 3)] {
            h.record_n(v, n).unwrap();
        }
        let theirs: Sparse =
            h.iter_recorded().map(|v| (v.value_iterated_to(), u64::from(v.count_at_value()))).collect();
        assert_eq!(sparse(&h), theirs);
        assert_eq!(theirs.len(), 7);
    }

    #[test]
    fn merged_says_when_it_changed() {
        let mut w = Window::new(0).unwrap();
        w.record(1_000, 0);
        assert!(w.merged().1);
        assert!(!w.merged().1);
        // A new sub-window moves the sample into the past: the same contents.
        assert!(!w.advance(1));
        assert_eq!(w.merged(), (&vec![(1_003, 1)], false));
        w.record(1_000, 1);
        assert_eq!(w.merged(), (&vec![(1_003, 2)], true));
        // Sub-window 0 leaves the window at 4.
        assert!(!w.advance(4));
        assert_eq!(w.merged(), (&vec![(1_003, 1)], true));
    }

    #[test]
    fn merging_adds_equal_buckets() {
        assert_eq!(merge_sorted(vec![(7, 1), (3, 2), (7, 4), (3, 1)]), vec![(3, 3), (7, 5)]);
        assert_eq!(merge_sorted(vec![(1, u64::MAX), (1, 1)]), vec![(1, u64::MAX)]);
    }

    #[test]
    fn a_long_window_holds_one_dense_histogram() {
        let mut w = Window::new(0).unwrap();
        for epoch in 0..100 {
            for v in [100, 20_000, 3_000_000] {
                w.record(v, epoch);
            }
        }
        assert_eq!(w.past.len(), (SUB_WINDOWS - 1) as usize);
        assert_eq!(total(w.merged().0), 3 * SUB_WINDOWS);
    }
}
