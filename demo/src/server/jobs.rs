//! The in-memory job store: conversion jobs created by uploads, their readiness, and the
//! UUID-v4-shaped ids that name them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Enough for long demo runs; beyond it the oldest jobs go so memory stays bounded.
pub const MAX_JOBS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Job {
    /// The converted file is exactly as large as the upload, so download sizes in the
    /// telemetry can be checked against upload sizes.
    pub output_bytes: u64,
    /// `None` when the processing time overflows the clock: such a job never completes.
    ready_at: Option<Instant>,
}

impl Job {
    pub fn is_ready(&self, now: Instant) -> bool {
        self.ready_at.is_some_and(|t| now >= t)
    }
}

pub struct JobStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    jobs: HashMap<String, Job>,
    order: VecDeque<String>,
    ids: IdGen,
}

impl JobStore {
    pub fn new(capacity: usize) -> JobStore {
        JobStore {
            inner: Mutex::new(Inner {
                jobs: HashMap::new(),
                order: VecDeque::new(),
                ids: IdGen::seeded(),
            }),
            capacity: capacity.max(1),
        }
    }

    /// A panicking handler must not take every later request down with a poisoned lock;
    /// the map is never left half-updated, so its data is still good.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a finished upload and returns the new job's id.
    pub fn create(&self, output_bytes: u64, processing: Duration) -> String {
        let job = Job {
            output_bytes,
            ready_at: Instant::now().checked_add(processing),
        };
        let mut inner = self.lock();
        let id = loop {
            let candidate = inner.ids.uuid();
            if !inner.jobs.contains_key(&candidate) {
                break candidate;
            }
        };
        while inner.order.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(old) => inner.jobs.remove(&old),
                None => break,
            };
        }
        inner.jobs.insert(id.clone(), job);
        inner.order.push_back(id.clone());
        id
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.lock().jobs.get(id).copied()
    }
}

/// xorshift64*: plenty for ids that only need to be unique and unguessable-looking.
struct IdGen {
    state: u64,
}

impl IdGen {
    fn seeded() -> IdGen {
        // The counter keeps two stores created in the same clock tick apart.
        static STORES: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let count = STORES.fetch_add(1, Ordering::Relaxed);
        let seed = splitmix64(nanos ^ count.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // xorshift never leaves the all-zero state.
        IdGen {
            state: if seed == 0 {
                0x853C_49E6_748F_EA9B
            } else {
                seed
            },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x40; // version 4
        b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
        let hex: String = b.iter().map(|byte| format!("{byte:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_uuid_v4(id: &str) -> bool {
        let groups: Vec<&str> = id.split('-').collect();
        groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && groups[2].starts_with('4')
            && matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b')
    }

    #[test]
    fn ids_are_uuid_v4_shaped_and_distinct() {
        let store = JobStore::new(MAX_JOBS);
        let ids: Vec<String> = (0..1000).map(|_| store.create(1, Duration::ZERO)).collect();
        assert!(ids.iter().all(|id| is_uuid_v4(id)), "{ids:?}");
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 1000);
    }

    #[test]
    fn readiness_follows_processing_time() {
        let store = JobStore::new(10);
        let now_ready = store.create(600, Duration::ZERO);
        let later = store.create(5, Duration::from_secs(3600));
        let never = store.create(5, Duration::MAX);
        let now = Instant::now();
        assert_eq!(
            store
                .get(&now_ready)
                .map(|j| (j.output_bytes, j.is_ready(now))),
            Some((600, true))
        );
        assert_eq!(store.get(&later).map(|j| j.is_ready(now)), Some(false));
        assert_eq!(store.get(&never).map(|j| j.is_ready(now)), Some(false));
        assert_eq!(store.get("nope"), None);
    }

    #[test]
    fn drops_oldest_beyond_capacity() {
        let store = JobStore::new(3);
        let ids: Vec<String> = (0..5).map(|i| store.create(i, Duration::ZERO)).collect();
        assert_eq!(store.get(&ids[0]), None);
        assert_eq!(store.get(&ids[1]), None);
        assert_eq!(store.get(&ids[2]).map(|j| j.output_bytes), Some(2));
        assert_eq!(store.get(&ids[4]).map(|j| j.output_bytes), Some(4));
    }
}
