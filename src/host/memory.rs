//! The host in memory, for unit tests: shared data with Envoy's compare-and-swap rule, and
//! stats that remember what was defined, in order.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::{CasWrite, HostError, MetricId, MetricKind, MetricsHost, SharedStore};

#[derive(Debug, Default)]
pub struct Memory {
    shared: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    writes: Cell<u32>,
    /// Every series defined, in order, once each.
    pub defined: RefCell<Vec<(MetricKind, String)>>,
    /// `define_metric` calls (each costs Envoy a metric id for the life of the VM).
    pub define_calls: Cell<usize>,
    /// The next this many writes lose a race.
    pub conflicts: Cell<usize>,
    /// Every shared-data call fails while set.
    pub unavailable: Cell<bool>,
}

impl Memory {
    /// Another VM of the same `vm_id`, as it finds the shared data now (a copy: later writes
    /// are not shared), with its own stats.
    pub fn another_vm(&self) -> Memory {
        let vm = Memory::default();
        *vm.shared.borrow_mut() = self.shared.borrow().clone();
        vm.writes.set(self.writes.get());
        vm
    }
}

impl SharedStore for Memory {
    fn get_shared(&self, key: &str) -> Result<(Option<Vec<u8>>, u32), HostError> {
        if self.unavailable.get() {
            return Err(HostError(2));
        }
        Ok(self.shared.borrow().get(key).map_or((None, 0), |(v, cas)| (Some(v.clone()), *cas)))
    }
    /// Envoy checks a non-zero CAS only against an existing key; its versions count writes.
    fn set_shared(&self, key: &str, value: &[u8], cas: u32) -> Result<CasWrite, HostError> {
        if self.unavailable.get() {
            return Err(HostError(2));
        }
        let mut shared = self.shared.borrow_mut();
        let current = shared.get(key).map(|(_, c)| *c);
        if self.conflicts.get() > 0 || current.is_some_and(|c| cas != 0 && cas != c) {
            self.conflicts.set(self.conflicts.get().saturating_sub(1));
            return Ok(CasWrite::Conflict);
        }
        self.writes.set(self.writes.get() + 1);
        shared.insert(key.to_string(), (value.to_vec(), self.writes.get()));
        Ok(CasWrite::Stored)
    }
}

impl MetricsHost for Memory {
    fn define_metric(&self, kind: MetricKind, name: &str) -> Result<MetricId, HostError> {
        self.define_calls.set(self.define_calls.get() + 1);
        let mut defined = self.defined.borrow_mut();
        let i = match defined.iter().position(|(_, n)| n == name) {
            Some(i) => i,
            None => {
                defined.push((kind, name.to_string()));
                defined.len() - 1
            }
        };
        Ok(MetricId(i as u32))
    }
    fn increment_metric(&self, _: MetricId, _: i64) -> Result<(), HostError> {
        Ok(())
    }
    fn record_metric(&self, _: MetricId, _: u64) -> Result<(), HostError> {
        Ok(())
    }
}
