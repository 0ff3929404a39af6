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
//! `SharedData::set`). Without shared data (another host), each VM learns on its own.

use crate::host::{CasWrite, SharedStore};

use super::learn::{decode, encode, Learned, Limits, NodeId, Promotions, Resolve};

/// Shared-data key of the learned routes (the format is versioned inside the value too).
pub const SHARED_KEY: &str = "routemeter.learned_routes.v1";
/// The CAS that only creates: see the module docs.
pub const CREATE_ONLY: u32 = u32::MAX;
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
    /// The host has no shared data: this VM learns alone.
    local_only: bool,
    /// The copy holds a change that was never published: the next read replaces it.
    stale: bool,
    /// Decode failures so far (a value this module version cannot read is replaced).
    pub decode_errors: u32,
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
            local_only: false,
            stale: false,
            decode_errors: 0,
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
        match self.state.resolve(path, &self.limits, &mut self.promotions, &mut self.seg) {
            Resolve::Label(n) => Some(n),
            Resolve::Other => None,
            Resolve::Learn => self.learn(store, |s, lim, seg| s.observe(path, lim, seg)).flatten(),
            Resolve::Promote(depth) => {
                self.learn(store, |s, lim, seg| {
                    s.promote_at(path, depth, lim, seg);
                    s.observe(path, lim, seg)
                })
                .flatten()
            }
        }
    }

    /// The index of an admitted Envoy route name; `None` is `__other__`.
    pub fn resolve_name(&mut self, name: &str, store: &impl SharedStore) -> Option<usize> {
        match self.state.resolve_name(name, &self.limits) {
            Ok(i) => Some(i),
            Err(false) => None,
            Err(true) => self.learn(store, |s, lim, _| s.observe_name(name, lim)).flatten(),
        }
    }

    /// Adopts what other VMs wrote since this one last looked.
    pub fn refresh(&mut self, store: &impl SharedStore) {
        if !self.local_only {
            self.read(store);
        }
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
                            self.decode_errors += 1;
                            log::warn!("{e}; starting from an empty state");
                            Learned::new()
                        }
                    };
                    self.replace(state, value);
                }
                self.cas = Some(cas);
                Some(cas)
            }
            Err(e) => {
                log::warn!("shared data unavailable (host status {}); learning routes in this VM only", e.0);
                self.local_only = true;
                None
            }
        }
    }

    fn replace(&mut self, state: Learned, bytes: Vec<u8>) {
        self.stale = false;
        self.state = state;
        self.bytes = bytes;
        self.generation += 1;
    }

    /// Runs `op` on the latest shared state and publishes the result.
    fn learn<R>(&mut self, store: &impl SharedStore, op: impl Fn(&mut Learned, &Limits, &mut String) -> R) -> Option<R> {
        for _ in 0..MAX_ATTEMPTS {
            let cas = match self.local_only {
                true => None,
                false => self.read(store),
            };
            let result = op(&mut self.state, &self.limits, &mut self.seg);
            if !self.state.take_dirty() {
                return Some(result);
            }
            let Some(cas) = cas else {
                // Learning alone: the copy is the truth.
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
                    log::warn!("shared data write failed (host status {}); learning routes in this VM only", e.0);
                    self.local_only = true;
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
    }
}
