//! What the client sent and saw, request by request: the oracle end-to-end tests compare
//! routemeter's series with. Shared by client threads; tallies are keyed like the series
//! they are compared with ([`crate::prom::Exposition::counters`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::prom::Exposition;
use crate::traffic::ANY;

/// One request as the client saw it: the method and route labels routemeter must give it,
/// the status (0: no response), body bytes each way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub method: &'static str,
    pub route: &'static str,
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl Entry {
    pub fn new(method: &'static str, route: &'static str, status: u16) -> Entry {
        Entry { method, route, status, request_bytes: 0, response_bytes: 0 }
    }
}

#[derive(Default)]
pub struct Ledger {
    entries: Mutex<Vec<Entry>>,
    /// Requests to excluded paths: answered, never recorded.
    excluded: AtomicUsize,
}

impl Ledger {
    pub fn add(&self, e: Entry) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).push(e);
    }

    pub fn add_excluded(&self) {
        self.excluded.fetch_add(1, Ordering::Relaxed);
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn excluded(&self) -> usize {
        self.excluded.load(Ordering::Relaxed)
    }

    /// Entries matching `keep`, counted by `key`.
    pub fn tally(
        &self,
        keep: impl Fn(&Entry) -> bool,
        key: impl Fn(&Entry) -> Vec<String>,
    ) -> BTreeMap<Vec<String>, u64> {
        let mut m = BTreeMap::new();
        for e in self.entries().iter().filter(|e| keep(e)) {
            *m.entry(key(e)).or_default() += 1;
        }
        m
    }

    /// `http_requests_total` as it must read: by method, route, status.
    pub fn requests(&self) -> BTreeMap<Vec<String>, u64> {
        self.tally(|_| true, |e| vec![e.method.into(), e.route.into(), e.status.to_string()])
    }

    /// Requests by method and route: every per-route histogram's `_count`.
    pub fn pairs(&self) -> BTreeMap<Vec<String>, u64> {
        self.tally(|_| true, |e| vec![e.method.into(), e.route.into()])
    }

    /// An outcome counter as it must read (by route, outcome) for one method and route.
    pub fn outcomes(&self, method: &str, route: &str, outcome: fn(u16) -> &'static str) -> BTreeMap<Vec<String>, u64> {
        self.tally(|e| e.method == method && e.route == route, |e| vec![e.route.into(), outcome(e.status).into()])
    }

    /// Entries with this method and route.
    pub fn select(&self, method: &str, route: &str) -> Vec<Entry> {
        self.entries().into_iter().filter(|e| e.method == method && e.route == route).collect()
    }

    /// Whether `page` shows exactly this ledger: every series of a known route equal (requests
    /// by status, duration histogram counts), requests to random paths ([`ANY`]) all there in
    /// total under whatever labels the route cap gave them, and no request in flight. The
    /// error says what differs.
    pub fn check(&self, page: &Exposition) -> Result<(), String> {
        let known = |e: &Entry| e.route != ANY;
        let random = self.entries().iter().filter(|e| !known(e)).count() as u64;
        let by_status = |e: &Entry| vec![e.method.to_string(), e.route.to_string(), e.status.to_string()];
        let by_route = |e: &Entry| vec![e.method.to_string(), e.route.to_string()];
        let checks = [
            ("http_requests_total", &["method", "route", "status"][..], self.tally(known, by_status)),
            ("http_request_duration_milliseconds_count", &["method", "route"][..], self.tally(known, by_route)),
        ];
        for (metric, keys, want) in checks {
            let counted = page.counters(metric, keys);
            if let Some((series, n)) = want.iter().find(|(k, n)| counted.get(*k) != Some(n)) {
                return Err(format!("{metric} {series:?}: the ledger has {n}, the page {:?}", counted.get(series)));
            }
            let (all, expected) = (counted.values().sum::<u64>(), want.values().sum::<u64>() + random);
            if all != expected {
                return Err(format!("{metric}: {all} in all, the ledger has {expected} ({random} to random paths)"));
            }
        }
        match page.series("http_requests_in_progress").find(|s| s.value != 0.0) {
            Some(s) => Err(format!("in flight after the load: {s:?}")),
            None => Ok(()),
        }
    }
}
