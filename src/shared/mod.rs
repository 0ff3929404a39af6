//! proxy-wasm shared data, the one way routemeter writes it. Every VM of a `vm_id` (one per
//! Envoy worker, plus the main thread's) sees the same values, which outlive any one VM.
//! - [`update`]: read, change, write back with compare-and-swap; one retry policy;
//! - [`Keys`]: every key routemeter uses and the format of its value, per plugin;
//! - [`codec`]: the bytes.

pub mod codec;

use crate::host::{CasWrite, HostError, SharedStore};

/// Attempts before an update gives way to VMs that keep writing first (its caller tries
/// again at the next request or tick).
pub const MAX_ATTEMPTS: usize = 16;

/// Envoy checks a non-zero version only against an existing key, and versions count writes
/// from 1 (proxy-wasm-cpp-host `SharedData::set`): written with this version, a key that was
/// absent when read is created only while it is still absent.
const CREATE_ONLY: u32 = u32::MAX;

/// The value an update read.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// `None` when the key is absent or its value empty.
    pub value: Option<&'a [u8]>,
    /// 0 when the key is absent.
    pub version: u32,
}

/// What to do with it.
#[derive(Debug)]
pub enum Change<R> {
    Keep(R),
    Write(Vec<u8>, R),
}

/// What an update did.
#[derive(Debug, PartialEq, Eq)]
pub enum Updated<R> {
    Kept(R),
    /// Stored, with the bytes written.
    Written(R, Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// A shared-data call failed.
    Unavailable(HostError),
    /// Other VMs wrote first [`MAX_ATTEMPTS`] times.
    Contended,
}

/// Reads `key`, asks `change` what to make of it, and writes the result back only if nobody
/// wrote in between; otherwise reads again and asks again. `change` must be a function of what
/// it is given (it may run up to [`MAX_ATTEMPTS`] times).
pub fn update<R>(
    store: &impl SharedStore,
    key: &str,
    mut change: impl FnMut(Found<'_>) -> Change<R>,
) -> Result<Updated<R>, UpdateError> {
    for _ in 0..MAX_ATTEMPTS {
        let (value, version) = store.get_shared(key).map_err(UpdateError::Unavailable)?;
        match change(Found { value: value.as_deref(), version }) {
            Change::Keep(result) => return Ok(Updated::Kept(result)),
            Change::Write(bytes, result) => {
                let cas = if version == 0 { CREATE_ONLY } else { version };
                match store.set_shared(key, &bytes, cas).map_err(UpdateError::Unavailable)? {
                    CasWrite::Stored => return Ok(Updated::Written(result, bytes)),
                    CasWrite::Conflict => continue,
                }
            }
        }
    }
    Err(UpdateError::Contended)
}

/// Writes a key only this VM writes (no version check: nobody else can have written it).
pub fn put(store: &impl SharedStore, key: &str, value: &[u8]) -> bool {
    matches!(store.set_shared(key, value, 0), Ok(CasWrite::Stored))
}

/// Every shared-data key of one plugin, and what its value holds. Keys start with
/// `routemeter.` and the plugin's name (the `name` of Envoy's Wasm plugin configuration, the
/// `WasmPlugin`'s under Istio): VMs of one `vm_id` share data, and two routemeter plugins
/// there (Istio gives every plugin the same empty `vm_id`) must keep their state apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn for_plugin(name: &str) -> Keys {
        let prefix = if name.is_empty() { "routemeter.".to_string() } else { format!("routemeter.{name}.") };
        Keys { prefix }
    }

    fn key(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// The learned routes, written by any VM that learns (`route::learn::codec`: `RMLR`, v1).
    pub fn learned_routes(&self) -> String {
        self.key("learned_routes.v1")
    }

    /// How many series the hand-over lists (a varint; `metrics::handover`).
    pub fn series_count(&self) -> String {
        self.key("series.v2")
    }

    /// The listed series `CHUNK * i ..` (lines `<kind letter> <stat name>`).
    pub fn series_chunk(&self, i: usize) -> String {
        self.key(&format!("series.v2.{i}"))
    }

    /// Until when a VM fetches the OpenAPI document (8 bytes, nanoseconds; `openapi::fetch_slot`).
    pub fn openapi_fetch(&self) -> String {
        self.key("openapi.v1.fetching")
    }

    /// The VMs sharing latency windows (`latency::codec::encode_ids`).
    pub fn latency_registry(&self) -> String {
        self.key("latency.v1.vms")
    }

    /// Which VM publishes the quantiles, until when (`latency::codec::encode_lease`).
    pub fn latency_lease(&self) -> String {
        self.key("latency.v1.publisher")
    }

    /// Route labels whose quantile gauges hold a value (`latency::codec::encode_labels`).
    pub fn latency_published(&self) -> String {
        self.key("latency.v1.published")
    }

    /// One VM's window (`latency::codec::Blob`), written by that VM only.
    pub fn latency_window(&self, vm: u32) -> String {
        self.key(&format!("latency.v1.vm.{vm}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::memory::{Faults, MemoryHost};

    /// Appends a byte, or keeps a value that already ends in it.
    fn append(b: u8) -> impl FnMut(Found<'_>) -> Change<usize> {
        move |found| {
            let mut v = found.value.unwrap_or_default().to_vec();
            if v.last() == Some(&b) {
                return Change::Keep(v.len());
            }
            v.push(b);
            Change::Write(v.clone(), v.len())
        }
    }

    #[test]
    fn updates_create_retry_and_give_way() {
        let store = MemoryHost::new();
        assert_eq!(update(&store, "k", append(1)), Ok(Updated::Written(1, vec![1])));
        assert_eq!(update(&store, "k", append(1)), Ok(Updated::Kept(1)));
        // Another VM writes between this read and this write: read again, change again.
        let store = std::rc::Rc::new(store);
        let s = store.clone();
        store.after_next_shared_read(move || {
            s.set_shared("k", &[1, 9], 0).unwrap();
        });
        assert_eq!(update(&*store, "k", append(2)), Ok(Updated::Written(3, vec![1, 9, 2])));
        // Creating while another VM creates: the create-only write loses, the retry appends.
        let s = store.clone();
        store.after_next_shared_read(move || {
            s.set_shared("new", &[5], 0).unwrap();
        });
        assert_eq!(update(&*store, "new", append(6)), Ok(Updated::Written(2, vec![5, 6])));
        store.lose_next_races(MAX_ATTEMPTS);
        assert_eq!(update(&*store, "k", append(3)), Err(UpdateError::Contended));
        store.set_faults(Faults { shared_data: true, ..Faults::default() });
        assert_eq!(
            update(&*store, "k", append(3)),
            Err(UpdateError::Unavailable(HostError(crate::abi::Status::InternalFailure as u32)))
        );
    }

    #[test]
    fn keys_are_apart_per_plugin() {
        let (a, b, unnamed) = (Keys::for_plugin("a"), Keys::for_plugin("b"), Keys::for_plugin(""));
        assert_eq!(a.learned_routes(), "routemeter.a.learned_routes.v1");
        assert_eq!(unnamed.latency_window(3), "routemeter.latency.v1.vm.3");
        assert_ne!(a.series_chunk(0), b.series_chunk(0));
    }
}
