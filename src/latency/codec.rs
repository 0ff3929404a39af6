//! The shared-data values of the latency windows: one blob per VM with what its window holds
//! per route, and the small registry and lease values of [`super::share`]. Decoding answers
//! `None` for anything that is not such a value ([`crate::shared::codec`]).

use super::window::Sparse;
use crate::shared::codec::{put_text, put_varint, Reader};

const BLOB_VERSION: u8 = 1;
/// No route label is longer (the route module caps labels well below this).
pub const MAX_LABEL_BYTES: usize = 1_024;
/// A sparse histogram has at most one entry per dense counter.
const MAX_ENTRIES: u64 = 4_096;

/// One VM's window: when it was written, then each route's merged buckets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub written_ns: u64,
    pub routes: Vec<(String, Sparse)>,
}

impl Blob {
    /// Version, written time, route count, then per route: label, entry count, and entries
    /// as (value delta from the previous entry, count), all varints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![BLOB_VERSION];
        out.extend_from_slice(&self.written_ns.to_le_bytes());
        put_varint(&mut out, self.routes.len() as u64);
        for (label, entries) in &self.routes {
            put_text(&mut out, label);
            put_varint(&mut out, entries.len() as u64);
            let mut previous = 0;
            for &(value, count) in entries {
                put_varint(&mut out, value.saturating_sub(previous));
                put_varint(&mut out, count);
                previous = value;
            }
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Blob> {
        let mut r = Reader::new(bytes);
        if r.u8()? != BLOB_VERSION {
            return None;
        }
        let written_ns = r.u64()?;
        let n_routes = r.varint()?;
        let mut routes = Vec::new();
        for _ in 0..n_routes {
            let label = r.text(MAX_LABEL_BYTES)?.to_string();
            let n = r.varint()?;
            if n > MAX_ENTRIES {
                return None;
            }
            let mut entries = Vec::new();
            let mut value: u64 = 0;
            for _ in 0..n {
                value = value.checked_add(r.varint()?)?;
                entries.push((value, r.varint()?));
            }
            routes.push((label, entries));
        }
        r.is_empty().then_some(Blob { written_ns, routes })
    }
}

/// A list of small numbers (the registry's VM ids), as varints after a count.
pub fn encode_ids(next: u32, ids: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, u64::from(next));
    put_varint(&mut out, ids.len() as u64);
    for &id in ids {
        put_varint(&mut out, u64::from(id));
    }
    out
}

/// `(next id to hand out, ids)`; `None` for bytes that are not such a list.
pub fn decode_ids(bytes: &[u8]) -> Option<(u32, Vec<u32>)> {
    let mut r = Reader::new(bytes);
    let next = u32::try_from(r.varint()?).ok()?;
    let n = r.varint()?;
    if n > u64::from(u16::MAX) {
        return None;
    }
    let ids = (0..n).map(|_| u32::try_from(r.varint()?).ok()).collect::<Option<Vec<u32>>>()?;
    r.is_empty().then_some((next, ids))
}

/// The publisher lease: which VM publishes, until when.
pub fn encode_lease(id: u32, until_ns: u64) -> Vec<u8> {
    let mut out = id.to_le_bytes().to_vec();
    out.extend_from_slice(&until_ns.to_le_bytes());
    out
}

pub fn decode_lease(bytes: &[u8]) -> Option<(u32, u64)> {
    let mut r = Reader::new(bytes);
    let id = r.u32()?;
    let until = r.u64()?;
    r.is_empty().then_some((id, until))
}

/// Route labels whose quantile gauges hold a value (so the next publisher can zero them).
pub fn encode_labels(labels: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, labels.len() as u64);
    for l in labels {
        put_text(&mut out, l);
    }
    out
}

pub fn decode_labels(bytes: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader::new(bytes);
    let n = r.varint()?;
    if n > u64::from(u16::MAX) {
        return None;
    }
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(r.text(MAX_LABEL_BYTES)?.to_string());
    }
    r.is_empty().then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob() -> Blob {
        Blob {
            written_ns: 1_700_000_000_123_456_789,
            routes: vec![
                (
                    "/api/v1/status/{job_id}".into(),
                    vec![(0, 1), (255, 3), (100_351, 1), (3_623_878_655, u64::from(u32::MAX))],
                ),
                ("__other__".into(), vec![]),
            ],
        }
    }

    #[test]
    fn blobs_round_trip() {
        let b = blob();
        assert_eq!(Blob::decode(&b.encode()), Some(b));
        let empty = Blob { written_ns: 0, routes: vec![] };
        assert_eq!(Blob::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn damaged_blobs_are_refused() {
        let bytes = blob().encode();
        for cut in 0..bytes.len() {
            assert_eq!(Blob::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Blob::decode(&longer), None);
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert_eq!(Blob::decode(&other_version), None);
        // A value sum past u64.
        let mut overflow = vec![BLOB_VERSION];
        overflow.extend_from_slice(&0u64.to_le_bytes());
        overflow.extend_from_slice(&[1, 1, b'a', 2]);
        for _ in 0..2 {
            overflow.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 1]);
        }
        assert_eq!(Blob::decode(&overflow), None);
    }

    #[test]
    fn small_values_round_trip() {
        assert_eq!(decode_ids(&encode_ids(7, &[1, 5, 300_000])), Some((7, vec![1, 5, 300_000])));
        assert_eq!(decode_ids(&encode_ids(0, &[])), Some((0, vec![])));
        assert_eq!(decode_ids(&[]), None);
        assert_eq!(decode_lease(&encode_lease(3, 99)), Some((3, 99)));
        assert_eq!(decode_lease(&[1, 2, 3]), None);
        let labels = vec!["/a".to_string(), "__other__".to_string()];
        assert_eq!(decode_labels(&encode_labels(&labels)), Some(labels));
        assert_eq!(decode_labels(&[5, 1]), None);
    }
}
