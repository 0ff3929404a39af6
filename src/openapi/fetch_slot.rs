//! One fetch of the OpenAPI document at a time per proxy. Every VM loads the document itself
//! (its templates live in its own memory), but Envoy buffers each answer whole before a VM
//! reads it, and memory Envoy's allocator took for answers that arrived together stays with
//! the process: the VMs of a proxy take turns (a slot in shared data: until when it is
//! taken), so one answer is in Envoy at a time. A VM that dies holding the slot frees it when
//! its time runs out.

use crate::host::SharedStore;
use crate::shared::{update, Change, Keys, UpdateError, Updated};

#[derive(Debug)]
pub struct FetchSlot {
    key: String,
    /// What this VM wrote when it took the slot (its end time, 8 bytes), while it holds it.
    held: Option<Vec<u8>>,
}

impl FetchSlot {
    pub fn new(keys: &Keys) -> FetchSlot {
        FetchSlot { key: keys.openapi_fetch(), held: None }
    }

    /// Takes the slot until `until_ns` if it is free (never taken, given back, or run out).
    /// Without shared data every VM fetches on its own.
    pub fn take(&mut self, store: &impl SharedStore, now_ns: u64, until_ns: u64) -> bool {
        let mine = until_ns.to_le_bytes().to_vec();
        let taken = update(store, &self.key, |found| {
            let end = found.value.and_then(|v| <[u8; 8]>::try_from(v).ok()).map(u64::from_le_bytes);
            match end {
                Some(end) if end >= now_ns => Change::Keep(false),
                _ => Change::Write(mine.clone(), true),
            }
        });
        match taken {
            Ok(Updated::Written(..)) => self.held = Some(mine),
            // Other VMs keep writing it: some VM has it.
            Ok(Updated::Kept(_)) | Err(UpdateError::Contended) => return false,
            Err(UpdateError::Unavailable(_)) => self.held = None,
        }
        true
    }

    /// Gives the slot back, if this VM still holds it.
    pub fn give_back(&mut self, store: &impl SharedStore) {
        let Some(mine) = self.held.take() else { return };
        let _ = update(store, &self.key, |found| match found.value == Some(&mine[..]) {
            true => Change::Write(Vec::new(), ()),
            false => Change::Keep(()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::{Faults, MemoryHost};

    #[test]
    fn one_vm_at_a_time_until_given_back_or_run_out() {
        let store = MemoryHost::new();
        let keys = Keys::for_plugin("");
        let (mut a, mut b) = (FetchSlot::new(&keys), FetchSlot::new(&keys));
        assert!(a.take(&store, 100, 200));
        assert!(!b.take(&store, 150, 250));
        a.give_back(&store);
        assert!(b.take(&store, 160, 260));
        // b dies holding it: free once its time has run out.
        assert!(!a.take(&store, 260, 360));
        assert!(a.take(&store, 261, 361));
        // b's late give-back leaves a's slot alone.
        b.give_back(&store);
        assert!(!b.take(&store, 300, 400));
        store.set_faults(Faults { shared_data: true, ..Faults::default() });
        assert!(b.take(&store, 300, 400), "without shared data, every VM fetches");
    }
}
