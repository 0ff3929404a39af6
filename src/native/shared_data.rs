//! proxy-wasm's shared data, in process memory: the core keeps learned routes, the series
//! hand-over and latency windows there. Natively every worker is a thread of one process
//! and runs the one [`crate::filter::Filter`] under a lock, so this store is only reached
//! with that lock held. Envoy's rules (proxy-wasm-cpp-host `SharedData`): versions come from
//! one counter that starts at 1 and counts every write; a non-zero `cas` is checked against
//! an existing key only; an empty value reads as no value.

use std::collections::HashMap;

use crate::host::{CasWrite, HostError, SharedStore};

#[derive(Debug, Default)]
pub struct SharedData {
    values: HashMap<String, (Vec<u8>, u32)>,
    writes: u32,
}

impl SharedData {
    pub fn get(&self, key: &str) -> (Option<Vec<u8>>, u32) {
        match self.values.get(key) {
            Some((value, version)) => ((!value.is_empty()).then(|| value.clone()), *version),
            None => (None, 0),
        }
    }

    pub fn set(&mut self, key: &str, value: &[u8], cas: u32) -> CasWrite {
        if self.values.get(key).is_some_and(|(_, current)| cas != 0 && cas != *current) {
            return CasWrite::Conflict;
        }
        self.writes = self.writes.wrapping_add(1).max(1);
        self.values.insert(key.to_string(), (value.to_vec(), self.writes));
        CasWrite::Stored
    }
}

impl SharedStore for std::cell::RefCell<SharedData> {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        Ok(self.borrow().get(key))
    }

    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        Ok(self.borrow_mut().set(key, value, cas))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_compare_and_swap_follow_envoys_rules() {
        let mut data = SharedData::default();
        assert_eq!(data.get("k"), (None, 0));
        assert_eq!(data.set("k", b"a", 0), CasWrite::Stored);
        assert_eq!(data.get("k"), (Some(b"a".to_vec()), 1));
        assert_eq!(data.set("k", b"b", 7), CasWrite::Conflict);
        assert_eq!(data.set("other", b"x", 0), CasWrite::Stored);
        assert_eq!(data.set("k", b"b", 1), CasWrite::Stored);
        assert_eq!(data.get("k"), (Some(b"b".to_vec()), 3));
        // A checked write to a missing key is stored; an empty value reads as none.
        assert_eq!(data.set("new", b"", 9), CasWrite::Stored);
        assert_eq!(data.get("new"), (None, 4));
    }
}
