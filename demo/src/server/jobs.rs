//! The in-memory job store: conversion jobs created by uploads and their readiness.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

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

#[derive(Default)]
struct Inner {
    jobs: HashMap<String, Job>,
    order: VecDeque<String>,
}

pub struct JobStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl JobStore {
    pub fn new(capacity: usize) -> JobStore {
        JobStore { inner: Mutex::default(), capacity: capacity.max(1) }
    }

    /// A panicking handler must not take every later request down with a poisoned lock;
    /// the map is never left half-updated, so its data is still good.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a finished upload and returns the new job's id (a UUID v4).
    pub fn create(&self, output_bytes: u64, processing: Duration) -> String {
        let job = Job { output_bytes, ready_at: Instant::now().checked_add(processing) };
        let id = uuid::Uuid::new_v4().to_string();
        let mut inner = self.lock();
        while inner.order.len() >= self.capacity {
            let Some(old) = inner.order.pop_front() else { break };
            inner.jobs.remove(&old);
        }
        inner.jobs.insert(id.clone(), job);
        inner.order.push_back(id.clone());
        id
    }

    pub fn get(&self, id: &str) -> Option<Job> {
        self.lock().jobs.get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_follows_processing_time() {
        let store = JobStore::new(10);
        let now_ready = store.create(600, Duration::ZERO);
        let later = store.create(5, Duration::from_secs(3600));
        let never = store.create(5, Duration::MAX);
        let now = Instant::now();
        assert_eq!(store.get(&now_ready).map(|j| (j.output_bytes, j.is_ready(now))), Some((600, true)));
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
