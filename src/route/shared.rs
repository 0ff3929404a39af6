//! This VM's copy of the learned routes and its synchronisation with the other VMs (one per
//! Envoy worker) through proxy-wasm shared data.
//!
//! The shared value is the truth; every VM keeps a decoded copy and its CAS version. A
//! request whose path the copy resolves to a final label costs no host call. Anything
//! undecided reads the shared value, decodes it if another VM changed it, learns, and
//! writes back with compare-and-swap, retrying a few times when another VM wrote first. So
//! every decision is taken on the latest state, and every worker gives the same request the
//! same label. A periodic `refresh` picks up what other VMs learned (promotions) for paths
//! this VM considers final.
//!
//! Creation is CAS-checked too: Envoy checks a non-zero CAS only against an existing key,
//! and its CAS counter starts at 1 and counts writes, so writing a new key with CAS
//! `u32::MAX` succeeds only while the key is still absent (proxy-wasm-cpp-host
//! `SharedData::set`). Without shared data (another host, or a failing call), the VM learns
//! on its own until the shared value can be read again.

use crate::host::{CasWrite, SharedStore, CREATE_ONLY};

use super::learn::{decode, encode, Learned, Limits, NodeId, Promotions, Resolve};

/// Shared-data key of the learned routes (the format is versioned inside the value too).
pub const SHARED_KEY: &str = "routemeter.learned_routes.v1";
/// Compare-and-swap attempts before a request settles for `__other__` (it learns next time).
const MAX_ATTEMPTS: usize = 16;

#[derive(Debug)]
pub struct SharedLearned {
    state: Learned,
    limits: Limits,
    /// The shared version the copy equals, when known.
    cas: Option<u32>,
    /// The bytes of the copy as last read or written (recognises an unchanged value).
    bytes: Vec<u8>,
    /// Bumped whenever node ids may have changed meaning (a decode): callers drop caches.
    generation: u64,
    promotions: Promotions,
    /// The copy holds a change that was never published: the next read replaces it.
    stale: bool,
    seg: String,
}

impl SharedLearned {
    pub fn new(limits: Limits) -> SharedLearned {
        SharedLearned {
            state: Learned::new(),
            limits,
            cas: None,
            bytes: Vec::new(),
            generation: 0,
            promotions: Promotions::default(),
            stale: false,
            seg: String::with_capacity(64),
        }
    }

    pub fn state(&self) -> &Learned {
        &self.state
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The terminal `path` ends at, learning if needed; `None` is `__other__`.
    pub fn resolve_path(&mut self, path: &[u8], store: &impl SharedStore) -> Option<NodeId> {
        if self.stale {
            self.read(store);
        }
        match self.state.resolve(path, &self.limits, &mut self.promotions, &mut self.seg) {
            Resolve::Label(n) => Some(n),
            Resolve::Other => None,
            Resolve::Learn => self.learn(store, |s, lim, seg| s.observe(path, lim, seg)).flatten(),
            Resolve::Promote(depth) => self
                .learn(store, |s, lim, seg| {
                    s.promote_at(path, depth, lim, seg);
                    s.observe(path, lim, seg)
                })
                .flatten(),
        }
    }

    /// The index of an admitted Envoy route name; `None` is `__other__`.
    pub fn resolve_name(&mut self, name: &str, store: &impl SharedStore) -> Option<usize> {
        if self.stale {
            self.read(store);
        }
        match self.state.resolve_name(name, &self.limits) {
            Ok(i) => Some(i),
            Err(false) => None,
            Err(true) => self.learn(store, |s, lim, _| s.observe_name(name, lim)).flatten(),
        }
    }

    /// Adopts what other VMs wrote since this one last looked.
    pub fn refresh(&mut self, store: &impl SharedStore) {
        self.read(store);
    }

    /// Reads the shared value into the copy; the CAS to write against (0: absent).
    fn read(&mut self, store: &impl SharedStore) -> Option<u32> {
        match store.get_shared(SHARED_KEY) {
            Ok((value, cas)) => {
                let value = value.unwrap_or_default();
                if cas == 0 && value.is_empty() {
                    if self.stale || self.cas.is_some_and(|c| c != 0) || !self.bytes.is_empty() {
                        // Absent (never written, or every VM of this plugin was gone).
                        self.replace(Learned::new(), Vec::new());
                    }
                } else if self.stale || (self.cas != Some(cas) && value != self.bytes) {
                    let state = match decode(&value) {
                        Ok(state) => state,
                        Err(e) => {
                            // Start over, but the labels published so far still exist in
                            // Envoy: the lifetime bound keeps counting them.
                            log::warn!("{e}; starting from an empty state");
                            Learned::after(&self.state)
                        }
                    };
                    self.replace(state, value);
                }
                self.cas = Some(cas);
                Some(cas)
            }
            Err(e) => {
                log::warn!("shared data unavailable (host status {}); this VM learns on its own meanwhile", e.0);
                None
            }
        }
    }

    fn replace(&mut self, state: Learned, bytes: Vec<u8>) {
        self.stale = false;
        self.state = state;
        self.bytes = bytes;
        self.generation += 1;
        // Node ids may mean other nodes now.
        self.promotions = Promotions::default();
    }

    /// Runs `op` on the latest shared state and publishes the result.
    fn learn<R>(
        &mut self,
        store: &impl SharedStore,
        op: impl Fn(&mut Learned, &Limits, &mut String) -> R,
    ) -> Option<R> {
        for _ in 0..MAX_ATTEMPTS {
            let cas = self.read(store);
            let result = op(&mut self.state, &self.limits, &mut self.seg);
            if !self.state.take_dirty() {
                return Some(result);
            }
            let Some(cas) = cas else {
                // No shared data right now: the copy learns alone until it is back.
                self.generation += 1;
                return Some(result);
            };
            let bytes = encode(&self.state);
            let write_cas = if cas == 0 { CREATE_ONLY } else { cas };
            match store.set_shared(SHARED_KEY, &bytes, write_cas) {
                Ok(CasWrite::Stored) => {
                    self.cas = None;
                    self.bytes = bytes;
                    self.generation += 1;
                    return Some(result);
                }
                Ok(CasWrite::Conflict) => self.forget(),
                Err(e) => {
                    log::warn!("shared data write failed (host status {}); this VM learns on its own meanwhile", e.0);
                    self.generation += 1;
                    return Some(result);
                }
            }
        }
        // Another VM won every race: drop the unsaved change, learn again next time.
        self.forget();
        None
    }

    /// The copy no longer matches anything shared: the next read decodes.
    fn forget(&mut self) {
        self.cas = None;
        self.bytes.clear();
        self.stale = true;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::host::HostError;

    /// Shared data with Envoy's CAS rule, and a switch that makes every write lose a race.
    #[derive(Default)]
    struct Store {
        value: RefCell<Option<(Vec<u8>, u32)>>,
        always_conflict: Cell<bool>,
        reads: Cell<usize>,
    }

    impl SharedStore for Store {
        fn get_shared(&self, _key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
            self.reads.set(self.reads.get() + 1);
            Ok(self.value.borrow().clone().map_or((None, 0), |(v, c)| (Some(v), c)))
        }
        fn set_shared(&self, _key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
            let mut v = self.value.borrow_mut();
            let current = v.as_ref().map(|(_, c)| *c);
            if self.always_conflict.get() || current.is_some_and(|c| cas != c) {
                return Ok(CasWrite::Conflict);
            }
            *v = Some((value.to_vec(), current.unwrap_or(0) + 1));
            Ok(CasWrite::Stored)
        }
    }

    fn label(vm: &mut SharedLearned, store: &Store, path: &str) -> String {
        let mut out = String::new();
        match vm.resolve_path(path.as_bytes(), store) {
            Some(n) => vm.state().render(n, &mut out),
            None => out.push_str("__other__"),
        }
        out
    }

    fn limits() -> Limits {
        Limits::new(10, 16, true)
    }

    #[test]
    fn losing_every_race_serves_nothing_unpublished() {
        let store = Store::default();
        let mut vm = SharedLearned::new(limits());
        // Twice: `a` confirmed, `/a` final.
        assert_eq!(label(&mut vm, &store, "/a"), "/a");
        assert_eq!(label(&mut vm, &store, "/a"), "/a");
        store.always_conflict.set(true);
        assert_eq!(label(&mut vm, &store, "/b"), "__other__");
        // The copy had learned `/b` but never published it: the next request reads first.
        store.always_conflict.set(false);
        let reads = store.reads.get();
        assert_eq!(label(&mut vm, &store, "/a"), "/a");
        assert_eq!(store.reads.get(), reads + 1);
        assert_eq!(vm.state().label_counts(), (1, 1));
    }

    #[test]
    fn an_unreadable_value_is_replaced_and_the_lifetime_count_kept() {
        let store = Store::default();
        let mut vm = SharedLearned::new(limits());
        for p in ["/a", "/b", "/c"] {
            label(&mut vm, &store, p);
        }
        *store.value.borrow_mut() = Some((b"RMLR\x01garbage".to_vec(), 99));
        assert_eq!(label(&mut vm, &store, "/d"), "/d");
        assert_eq!(vm.state().label_counts(), (1, 4));
        let written = decode(&store.value.borrow().clone().unwrap().0).unwrap();
        assert_eq!(written.label_counts(), (1, 4));
    }

    #[test]
    fn a_refresh_adopts_what_another_worker_learned() {
        let store = Store::default();
        let (mut w1, mut w2) = (SharedLearned::new(limits()), SharedLearned::new(limits()));
        assert_eq!(label(&mut w1, &store, "/users/alice"), "/users/{id}");
        assert_eq!(label(&mut w2, &store, "/users/bob"), "/users/{id}");
        // Worker 1 promotes `me`; worker 2's copy still sends it to {id} without asking...
        let paths = [
            "/users/me",
            "/users/1",
            "/users/me",
            "/users/2",
            "/users/me",
            "/users/3",
            "/users/me",
            "/users/me",
            "/users/me",
        ];
        let got: Vec<String> = paths.iter().map(|p| label(&mut w1, &store, p)).collect();
        assert_eq!(got.last().map(String::as_str), Some("/users/me"));
        assert_eq!(label(&mut w2, &store, "/users/me"), "/users/{id}");
        // ...until its tick.
        w2.refresh(&store);
        assert_eq!(label(&mut w2, &store, "/users/me"), "/users/me");
    }
}
