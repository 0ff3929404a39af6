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
//! Without shared data (another host, or a failing call), the VM learns on its own until the
//! shared value can be read again.

use crate::host::SharedStore;
use crate::shared::{update, Change, Found, UpdateError, Updated};

use super::learn::{decode, encode, Learned, Limits, Lookup, NodeId, Promotions};

#[derive(Debug)]
pub struct SharedLearned {
    /// The shared-data key ([`crate::shared::Keys::learned_routes`]).
    key: String,
    limits: Limits,
    replica: Replica,
}

/// This VM's copy of the shared state.
#[derive(Debug, Default)]
struct Replica {
    state: Learned,
    /// The shared version the copy equals, when known.
    version: Option<u32>,
    /// The bytes of the copy as last read or written (recognises an unchanged value).
    bytes: Vec<u8>,
    /// Bumped whenever node ids may have changed meaning (a decode): callers drop caches.
    generation: u64,
    promotions: Promotions,
    /// The copy holds a change that was never shared: the next read replaces it.
    stale: bool,
    seg: String,
}

impl SharedLearned {
    pub fn new(limits: Limits, key: String) -> SharedLearned {
        SharedLearned { key, limits, replica: Replica { seg: String::with_capacity(64), ..Replica::default() } }
    }

    pub fn state(&self) -> &Learned {
        &self.replica.state
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn generation(&self) -> u64 {
        self.replica.generation
    }

    /// The terminal `path` ends at, learning if needed; `None` is `__other__`.
    pub fn resolve_path(&mut self, path: &[u8], store: &impl SharedStore) -> Option<NodeId> {
        if self.replica.stale {
            self.refresh(store);
        }
        let r = &mut self.replica;
        match r.state.lookup(path, &self.limits, &mut r.promotions, &mut r.seg) {
            Lookup::Label(n) => Some(n),
            Lookup::Other => None,
            Lookup::Learn => self.learn(store, |s, lim, seg| s.observe(path, lim, seg)).flatten(),
            Lookup::Promote(depth) => self
                .learn(store, |s, lim, seg| {
                    s.promote_at(path, depth, lim, seg);
                    s.observe(path, lim, seg)
                })
                .flatten(),
        }
    }

    /// The index of an admitted Envoy route name; `None` is `__other__`.
    pub fn resolve_name(&mut self, name: &str, store: &impl SharedStore) -> Option<usize> {
        if self.replica.stale {
            self.refresh(store);
        }
        match self.replica.state.lookup_name(name, &self.limits) {
            Ok(i) => Some(i),
            Err(false) => None,
            Err(true) => self.learn(store, |s, lim, _| s.observe_name(name, lim)).flatten(),
        }
    }

    /// Adopts what other VMs wrote since this one last looked.
    pub fn refresh(&mut self, store: &impl SharedStore) {
        match store.get_shared(&self.key) {
            Ok((value, version)) => self.replica.adopt(Found { value: value.as_deref(), version }),
            Err(e) => log::warn!("shared data unavailable (host status {}); this VM learns on its own meanwhile", e.0),
        }
    }

    /// Runs `op` on the latest shared state and shares the result.
    fn learn<R: Copy>(
        &mut self,
        store: &impl SharedStore,
        op: impl Fn(&mut Learned, &Limits, &mut String) -> R,
    ) -> Option<R> {
        let SharedLearned { key, limits, replica } = self;
        let mut applied = None;
        let outcome = update(store, key, |found| {
            replica.adopt(found);
            let result = op(&mut replica.state, limits, &mut replica.seg);
            applied = Some(result);
            if !replica.state.take_dirty() {
                return Change::Keep(result);
            }
            // Until the write is stored, the copy holds a change nobody else has.
            replica.stale = true;
            Change::Write(encode(&replica.state), result)
        });
        match outcome {
            Ok(Updated::Kept(result)) => Some(result),
            Ok(Updated::Written(result, bytes)) => {
                (replica.stale, replica.version, replica.bytes) = (false, None, bytes);
                replica.generation += 1;
                Some(result)
            }
            Err(UpdateError::Unavailable(e)) => {
                // No shared data right now: the copy learns alone until it is back.
                log::warn!("shared data unavailable (host status {}); this VM learns on its own meanwhile", e.0);
                let result = applied.unwrap_or_else(|| op(&mut replica.state, limits, &mut replica.seg));
                replica.state.take_dirty();
                (replica.stale, replica.generation) = (false, replica.generation + 1);
                Some(result)
            }
            Err(UpdateError::Contended) => {
                // Another VM won every race: drop the unshared change, learn again next time.
                replica.forget();
                None
            }
        }
    }
}

impl Replica {
    /// Takes what shared data holds when it differs from the copy.
    fn adopt(&mut self, found: Found<'_>) {
        let value = found.value.unwrap_or_default();
        if found.version == 0 {
            if self.stale || self.version.is_some_and(|v| v != 0) || !self.bytes.is_empty() {
                // Absent (never written, or every VM of this plugin was gone).
                self.replace(Learned::new(), Vec::new());
            }
        } else if self.stale || (self.version != Some(found.version) && value != self.bytes) {
            let state = match decode(value) {
                Ok(state) => state,
                Err(e) => {
                    // Start over, but the labels issued so far still exist in Envoy: the
                    // lifetime bound keeps counting them.
                    log::warn!("{e}; starting from an empty state");
                    Learned::after(&self.state)
                }
            };
            self.replace(state, value.to_vec());
        }
        self.version = Some(found.version);
    }

    fn replace(&mut self, state: Learned, bytes: Vec<u8>) {
        self.stale = false;
        self.state = state;
        self.bytes = bytes;
        self.generation += 1;
        // Node ids may mean other nodes now.
        self.promotions = Promotions::default();
    }

    /// The copy no longer matches anything shared: the next read decodes.
    fn forget(&mut self) {
        self.version = None;
        self.bytes.clear();
        self.stale = true;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::MemoryHost;
    use crate::shared::{Keys, MAX_ATTEMPTS};

    const KEY: &str = "routemeter.learned_routes.v1";

    fn label(vm: &mut SharedLearned, store: &MemoryHost, path: &str) -> String {
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

    fn vm() -> SharedLearned {
        SharedLearned::new(limits(), Keys::for_plugin("").learned_routes())
    }

    #[test]
    fn losing_every_race_serves_nothing_unpublished() {
        let store = MemoryHost::new();
        let mut vm = vm();
        // Twice: `a` confirmed, `/a` final.
        assert_eq!(label(&mut vm, &store, "/a"), "/a");
        assert_eq!(label(&mut vm, &store, "/a"), "/a");
        store.lose_next_races(MAX_ATTEMPTS);
        assert_eq!(label(&mut vm, &store, "/b"), "__other__");
        // The copy had learned `/b` but never shared it: the next request reads first.
        let reads = store.calls().shared_reads;
        assert_eq!(label(&mut vm, &store, "/a"), "/a");
        assert_eq!(store.calls().shared_reads, reads + 1);
        assert_eq!(vm.state().label_counts(), (1, 1));
    }

    #[test]
    fn an_unreadable_value_is_replaced_and_the_lifetime_count_kept() {
        let store = MemoryHost::new();
        let mut vm = vm();
        for p in ["/a", "/b", "/c"] {
            label(&mut vm, &store, p);
        }
        store.set_shared(KEY, b"RMLR\x01garbage", 0).unwrap();
        assert_eq!(label(&mut vm, &store, "/d"), "/d");
        assert_eq!(vm.state().label_counts(), (1, 4));
        let written = decode(&store.shared_value(KEY).unwrap()).unwrap();
        assert_eq!(written.label_counts(), (1, 4));
    }

    #[test]
    fn a_refresh_adopts_what_another_worker_learned() {
        let store = MemoryHost::new();
        let (mut w1, mut w2) = (vm(), vm());
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
