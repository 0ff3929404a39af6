//! The route labels this plugin may emit, interned to small ids, with the hard cap on how
//! many distinct dynamic labels exist across the whole Envoy.
//!
//! Template labels come from config and are always present. Dynamic labels (route names,
//! heuristic paths) are admitted until `max_routes` is reached; after that everything new is
//! `__other__`. Each Envoy worker runs its own VM, so a per-VM cap would allow
//! `workers x max_routes` series; instead the admitted set lives in proxy-wasm shared data,
//! updated with compare-and-swap, and each VM keeps a local copy. A VM consults shared data
//! only for a label it has not seen, and never again once the set is full, so the steady
//! state costs no host call and the memory is bounded by the cap.

use std::collections::HashMap;

use crate::host::{CasWrite, HostError, SharedStore};

use super::sanitize::is_label_safe;

/// Index of a label in the table.
pub type RouteId = u32;

/// Label of every request whose route did not fit under the cap.
pub const OTHER_LABEL: &str = "__other__";

/// Shared-data key holding the admitted dynamic labels, one per line.
pub const SHARED_KEY: &str = "routemeter.route_labels.v1";

/// CAS retries before a request settles for `__other__` (it is tried again next time).
const MAX_CAS_ATTEMPTS: usize = 4;

#[derive(Debug)]
pub struct RouteTable {
    labels: Vec<Box<str>>,
    index: HashMap<Box<str>, RouteId>,
    max_dynamic: usize,
    dynamic: usize,
    /// The shared set is full: unknown labels go to `__other__` without a host call.
    full: bool,
    other: RouteId,
}

enum Admission {
    Admitted,
    Full,
    /// Lost every CAS race this time; not cached.
    Contended,
}

impl RouteTable {
    /// A table holding `fixed` labels (templates) plus `__other__`, admitting at most
    /// `max_dynamic` more.
    pub fn new<'a>(fixed: impl IntoIterator<Item = &'a str>, max_dynamic: usize) -> RouteTable {
        let mut table = RouteTable {
            labels: Vec::new(),
            index: HashMap::new(),
            max_dynamic,
            dynamic: 0,
            full: false,
            other: 0,
        };
        table.other = table.intern(OTHER_LABEL);
        for label in fixed {
            table.intern(label);
        }
        table
    }

    /// Creates the empty shared set if no VM has yet, so every later write is CAS-checked
    /// (a write with version 0 is not). Called when a VM is configured.
    pub fn create_shared_set(store: &impl SharedStore) {
        // Envoy answers an existing empty value with no buffer too; only version 0 means absent.
        if let Ok((None, 0)) = store.get_shared(SHARED_KEY) {
            let _ = store.set_shared(SHARED_KEY, b"", 0);
        }
    }

    pub fn label(&self, id: RouteId) -> &str {
        self.labels.get(id as usize).map_or(OTHER_LABEL, |l| l)
    }

    /// Number of labels the table can hand out ids for (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Id of a label that is already present (templates, `__other__`).
    pub fn get(&self, label: &str) -> Option<RouteId> {
        self.index.get(label).copied()
    }

    /// Id for a dynamic label, admitting it if the cap allows. `label` must be label-safe.
    pub fn admit(&mut self, label: &str, store: &impl SharedStore) -> RouteId {
        if let Some(id) = self.get(label) {
            return id;
        }
        if self.full {
            return self.other;
        }
        match self.admit_shared(label, store) {
            Ok(Admission::Admitted) => self.intern_dynamic(label),
            Ok(Admission::Full) => {
                self.full = true;
                self.other
            }
            Ok(Admission::Contended) => self.other,
            // No shared data on this host: fall back to a per-VM cap.
            Err(_) if self.dynamic < self.max_dynamic => self.intern_dynamic(label),
            Err(_) => {
                self.full = true;
                self.other
            }
        }
    }

    fn admit_shared(&mut self, label: &str, store: &impl SharedStore) -> Result<Admission, HostError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let (value, cas) = store.get_shared(SHARED_KEY)?;
            let list = value.unwrap_or_default();
            // Only the first `max_dynamic` entries count: the list outlives VMs, and a VM
            // configured with a lower cap than the one that filled it must not exceed its own.
            let admitted = || list.split(|&b| b == b'\n').filter(|l| !l.is_empty()).take(self.max_dynamic);
            if admitted().any(|l| l == label.as_bytes()) {
                return Ok(Admission::Admitted);
            }
            if admitted().count() >= self.max_dynamic {
                // Learn every admitted label so this VM serves them without asking again.
                for other in admitted() {
                    if let Ok(other) = std::str::from_utf8(other) {
                        if other.bytes().all(is_label_safe) && !other.ends_with('.') && self.get(other).is_none() {
                            self.intern_dynamic(other);
                        }
                    }
                }
                return Ok(Admission::Full);
            }
            let mut grown = Vec::with_capacity(list.len() + label.len() + 1);
            grown.extend_from_slice(&list);
            grown.extend_from_slice(label.as_bytes());
            grown.push(b'\n');
            if store.set_shared(SHARED_KEY, &grown, cas)? == CasWrite::Stored {
                return Ok(Admission::Admitted);
            }
        }
        Ok(Admission::Contended)
    }

    fn intern_dynamic(&mut self, label: &str) -> RouteId {
        // Whatever shared data says, this VM never holds more than its own cap.
        if self.dynamic >= self.max_dynamic && self.get(label).is_none() {
            return self.other;
        }
        let before = self.labels.len();
        let id = self.intern(label);
        if self.labels.len() > before {
            self.dynamic += 1;
        }
        id
    }

    fn intern(&mut self, label: &str) -> RouteId {
        if let Some(id) = self.get(label) {
            return id;
        }
        let id = self.labels.len() as RouteId;
        self.labels.push(label.into());
        self.index.insert(label.into(), id);
        id
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// Shared data where another VM writes between our read and our write, `races` times.
    #[derive(Default)]
    struct RacyStore {
        value: RefCell<(Vec<u8>, u32)>,
        races: RefCell<Vec<&'static str>>,
    }

    impl SharedStore for RacyStore {
        fn get_shared(&self, _key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
            let (v, cas) = self.value.borrow().clone();
            Ok(((cas != 0).then_some(v), cas))
        }
        fn set_shared(&self, _key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
            let mut current = self.value.borrow_mut();
            if let Some(other) = self.races.borrow_mut().pop() {
                // The other VM wins the race.
                current.0.extend_from_slice(other.as_bytes());
                current.0.push(b'\n');
                current.1 += 1;
                return Ok(CasWrite::Conflict);
            }
            if cas != 0 && cas != current.1 {
                return Ok(CasWrite::Conflict);
            }
            *current = (value.to_vec(), current.1 + 1);
            Ok(CasWrite::Stored)
        }
    }

    fn admit(t: &mut RouteTable, label: &str, store: &RacyStore) -> String {
        let id = t.admit(label, store);
        t.label(id).to_string()
    }

    fn labels(store: &RacyStore) -> String {
        String::from_utf8(store.value.borrow().0.clone()).unwrap()
    }

    #[test]
    fn a_lost_cas_race_is_retried_and_keeps_the_winner() {
        let store = RacyStore::default();
        store.races.borrow_mut().push("/x");
        let mut t = RouteTable::new([], 3);
        let a = t.admit("/a", &store);
        assert_eq!(t.label(a), "/a");
        assert_eq!(labels(&store), "/x\n/a\n");
    }

    #[test]
    fn losing_every_race_falls_back_to_other_without_caching_it() {
        let store = RacyStore::default();
        store.races.borrow_mut().extend(["/w", "/x", "/y", "/z"]);
        let mut t = RouteTable::new([], 10);
        assert_eq!(admit(&mut t, "/a", &store), OTHER_LABEL);
        // Next time there is no race: admitted.
        assert_eq!(admit(&mut t, "/a", &store), "/a");
        assert_eq!(labels(&store), "/z\n/y\n/x\n/w\n/a\n");
    }

    #[test]
    fn a_lower_cap_than_the_list_was_filled_with_is_respected() {
        let store = RacyStore::default();
        *store.value.borrow_mut() = (b"/a\n/b\n/c\n/d\n/e\n".to_vec(), 7);
        let mut t = RouteTable::new(["/tpl"], 2);
        let got: Vec<String> = ["/d", "/a", "/e", "/b", "/c"].iter().map(|l| admit(&mut t, l, &store)).collect();
        assert_eq!(got, ["__other__", "/a", "__other__", "/b", "__other__"]);
        // __other__, the template, and two dynamic labels.
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn the_shared_set_is_created_only_when_absent() {
        let store = RacyStore::default();
        RouteTable::create_shared_set(&store);
        assert_eq!(*store.value.borrow(), (Vec::new(), 1));
        // Existing (even empty) set: left alone, version unchanged.
        RouteTable::create_shared_set(&store);
        assert_eq!(store.value.borrow().1, 1);
    }
}
