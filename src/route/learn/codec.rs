//! The learned state as bytes, for proxy-wasm shared data: every VM decodes what another
//! wrote, so decoding trusts nothing (another module version, a truncated value) and
//! rebuilds everything derived (child lists, vocabulary).
//!
//! Layout (little-endian): magic `RMLR`, version 1, `live` u32, `issued` u32, name count
//! u16, node slot count u32; each name: length u8 + bytes; each slot: kind u8, flags u8,
//! parent u32, hits u32, id_hash u32, id_same u16, segment length u8 + bytes.

use std::collections::HashSet;
use std::fmt;

use super::trie::{Kind, Node, Trie, ALL_FLAGS, CONFIRMED, ROOT};
use super::{hash, Learned};
use crate::metrics::label_value::is_label_safe;
use crate::route::shape::MAX_SEGMENT_LEN;
use crate::shared::codec::Reader;

const MAGIC: &[u8; 4] = b"RMLR";
const VERSION: u8 = 1;
/// Decoding refuses more slots than any configuration allows.
const MAX_SLOTS: usize = 1 << 17;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "learned routes in shared data: {}", self.0)
    }
}

fn kind_code(kind: Kind) -> u8 {
    match kind {
        Kind::Free => 0,
        Kind::Root => 1,
        Kind::Literal => 2,
        Kind::Param => 3,
        Kind::Rest => 4,
    }
}

pub fn encode(state: &Learned) -> Vec<u8> {
    let nodes = &state.trie.nodes;
    let mut out = Vec::with_capacity(20 + nodes.len() * 24);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&state.live.to_le_bytes());
    out.extend_from_slice(&state.issued.to_le_bytes());
    out.extend_from_slice(&(state.names.len() as u16).to_le_bytes());
    out.extend_from_slice(&(nodes.len() as u32).to_le_bytes());
    for name in &state.names {
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }
    for n in nodes {
        out.push(kind_code(n.kind));
        out.push(n.flags);
        out.extend_from_slice(&n.parent.to_le_bytes());
        out.extend_from_slice(&n.hits.to_le_bytes());
        out.extend_from_slice(&n.id_hash.to_le_bytes());
        out.extend_from_slice(&n.id_same.to_le_bytes());
        out.push(n.seg.len() as u8);
        out.extend_from_slice(n.seg.as_bytes());
    }
    out
}

/// A read that ran out of input.
fn need<T>(value: Option<T>) -> Result<T, DecodeError> {
    value.ok_or_else(|| err("truncated"))
}

/// A segment or name: a length byte, then label-safe UTF-8.
fn text(r: &mut Reader<'_>) -> Result<Box<str>, DecodeError> {
    let len = need(r.u8())? as usize;
    let raw = need(r.take(len))?;
    if !raw.iter().all(|&b| is_label_safe(b)) {
        return Err(err("a segment holds bytes a label may not"));
    }
    std::str::from_utf8(raw).map(Into::into).map_err(|_| err("a segment is not UTF-8"))
}

fn err(what: &str) -> DecodeError {
    DecodeError(what.to_string())
}

pub fn decode(bytes: &[u8]) -> Result<Learned, DecodeError> {
    let mut r = Reader::new(bytes);
    if need(r.take(4))? != MAGIC || need(r.u8())? != VERSION {
        return Err(err("unknown format"));
    }
    let live = need(r.u32())?;
    let issued = need(r.u32())?;
    let name_count = need(r.u16())? as usize;
    let slots = need(r.u32())? as usize;
    if slots == 0 || slots > MAX_SLOTS {
        return Err(err("bad node count"));
    }
    let mut names = Vec::with_capacity(name_count);
    for _ in 0..name_count {
        names.push(text(&mut r)?);
    }
    let mut nodes = Vec::with_capacity(slots);
    for _ in 0..slots {
        let kind = match need(r.u8())? {
            0 => Kind::Free,
            1 => Kind::Root,
            2 => Kind::Literal,
            3 => Kind::Param,
            4 => Kind::Rest,
            _ => return Err(err("unknown node kind")),
        };
        let flags = need(r.u8())?;
        if flags & !ALL_FLAGS != 0 {
            return Err(err("unknown node flag"));
        }
        let mut node = Node::new(kind, need(r.u32())?, "");
        node.flags = flags;
        node.hits = need(r.u32())?;
        node.id_hash = need(r.u32())?;
        node.id_same = need(r.u16())?;
        node.seg = text(&mut r)?;
        nodes.push(node);
    }
    if !r.is_empty() {
        return Err(err("trailing bytes"));
    }
    validate(&nodes)?;
    let vocab: HashSet<u64> =
        nodes.iter().filter(|n| n.kind == Kind::Literal && n.has(CONFIRMED)).map(|n| hash(n.seg.as_bytes())).collect();
    let trie = Trie::from_slots(nodes);
    let terminals = trie.nodes.iter().filter(|n| n.kind != Kind::Free && n.has(super::trie::TERMINAL)).count();
    if live as usize != terminals + names.len() || issued < live {
        return Err(err("label counts do not add up"));
    }
    Ok(Learned { trie, live, issued, names, vocab, dirty: false })
}

/// The shape of a trie: one root at 0, every other node under a live node, at most one
/// param child and distinct literal segments per node, no cycles, sane segments.
fn validate(nodes: &[Node]) -> Result<(), DecodeError> {
    if !nodes.first().is_some_and(|root| root.kind == Kind::Root && root.parent == ROOT) {
        return Err(err("slot 0 is not the root"));
    }
    if nodes.iter().any(|n| n.parent as usize >= nodes.len()) {
        return Err(err("parent out of range"));
    }
    let mut seen: HashSet<(u32, &str)> = HashSet::new();
    let mut params: HashSet<u32> = HashSet::new();
    for (id, n) in nodes.iter().enumerate().skip(1) {
        let Some(parent) = nodes.get(n.parent as usize) else { return Err(err("parent out of range")) };
        let ok = match n.kind {
            Kind::Free => true,
            Kind::Root => false,
            Kind::Param => n.seg.is_empty() && params.insert(n.parent),
            Kind::Literal => !n.seg.is_empty() && n.seg.len() <= MAX_SEGMENT_LEN && seen.insert((n.parent, &n.seg)),
            Kind::Rest => &*n.seg == crate::route::shape::REST && seen.insert((n.parent, &n.seg)),
        };
        if !ok || (n.kind != Kind::Free && (parent.kind == Kind::Free || n.parent as usize == id)) {
            return Err(err("malformed node"));
        }
        // Every chain reaches the root within the depth any configuration allows.
        let mut at = n.parent as usize;
        let mut steps = 0;
        while at != 0 {
            at = nodes.get(at).map_or(0, |n| n.parent as usize);
            steps += 1;
            if steps > 64 {
                return Err(err("a cycle or an over-deep path"));
            }
        }
    }
    Ok(())
}
