//! Learned route templates: which path positions are parameters, learned from the traffic,
//! deterministically, in bounded memory.
//!
//! The state is a trie of path segments ([`trie`]). Each node's child position is undecided
//! until the evidence says it is a parameter ("converted"); from then on new values there
//! go to the node's `{id}` child. IDs (numbers, UUIDs, hex, random tokens) go there at once
//! wherever they appear. The evidence for a conversion:
//! - distinct *plain* values (not confirmed, not shaped like API vocabulary, not a word the
//!   trie already knows as static elsewhere), at least [`Thresholds`] many for the kind of
//!   position: 1 after a plural collection (`/users/alice`), 6 after another word, 6 after
//!   a parameter, 64 at the root and after version segments (`/v1/`, `/api/`), plus one
//!   for every value there already confirmed as static (at most twice the threshold);
//! - or three times the threshold of plain values, confirmed ones included;
//! - or, after a parameter, two values followed by the same word (`/repos/{id}/a/issues`,
//!   `/repos/{id}/b/issues`: `a` and `b` are repository names);
//! - or 64 pending values at one position, whatever they look like (bounds hostile input).
//!
//! A literal seen twice is confirmed (a static word "shared by many requests") and survives
//! a conversion; unconfirmed ones are merged into the parameter. A conversion can be wrong
//! (`/v2/orders/search`); each VM watches the values going into a converted position and
//! promotes one that keeps coming back ([`Promotions`]).
//!
//! Labels: a node where requests end is a terminal, an issued label (a series in Envoy). At most `max_live`
//! terminals exist at a time, and at most `max_issued` labels are ever issued: a
//! conversion retires the labels it merges, so early guesses do not hold the cap for the
//! life of the process, and Envoy's stats (which never expire) stay bounded.
//!
//! Everything here is a pure function of the observations in order (no clock, no
//! randomness): the same traffic gives the same labels on every proxy.

mod codec;
mod promote;
mod trie;

use std::collections::HashSet;

pub use codec::{decode, encode, DecodeError};
pub use promote::Promotions;
pub use trie::{Kind, NodeId, Trie, ROOT};
use trie::{CONFIRMED, CONVERTED, IDS_SETTLED, TERMINAL};

use super::path::{segments, strip_query_and_fragment};
use super::shape::{is_date, is_id, is_version_number, is_version_word, shape, Shape};
use crate::metrics::label_value::{finish_label, push_sanitized};

/// Conversion thresholds by the kind of position (what the parent segment is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub root: u32,
    pub after_version: u32,
    pub after_plural: u32,
    pub after_word: u32,
    pub after_param: u32,
}

impl Thresholds {
    pub const DEFAULT: Thresholds =
        Thresholds { root: 64, after_version: 64, after_plural: 1, after_word: 6, after_param: 6 };
}

/// Values pending at one position before it converts whatever they look like.
pub const MAX_PENDING: usize = 64;
/// A literal is confirmed static when this many learning observations went through it.
const CONFIRM_HITS: u32 = 2;
/// An id that comes back this often, alone, right after a version-like context is a version.
const VERSION_HITS: u16 = 3;

/// The bounds learning works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Labels that may exist at once (`max_routes`).
    pub max_live: u32,
    /// Labels that may ever be issued, retired ones included.
    pub max_issued: u32,
    pub max_nodes: usize,
    pub max_depth: usize,
    /// `None`: never convert (learning off: ids collapse, everything else stays literal).
    pub thresholds: Option<Thresholds>,
}

impl Limits {
    /// The defaults for a cap of `max_routes` labels.
    pub fn new(max_routes: u32, max_depth: usize, learn: bool) -> Limits {
        Limits {
            max_live: max_routes,
            max_issued: max_routes.saturating_mul(4),
            max_nodes: (max_routes as usize).saturating_mul(16).clamp(256, 65_536),
            max_depth,
            thresholds: learn.then_some(Thresholds::DEFAULT),
        }
    }
}

/// What the learned state says about a path without changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The path's label is final: this terminal.
    Label(NodeId),
    /// No label: the cap (or the node budget) is full and this path would need a new one.
    Other,
    /// The path goes through something undecided: observe it (shared state, then decide).
    Learn,
    /// The value at this segment index, at a converted position, came back often enough
    /// to be a static word.
    Promote(usize),
}

/// The learned state. Every VM holds a copy; the shared one is the truth.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Learned {
    trie: Trie,
    /// Published labels that exist now (terminals plus route names).
    live: u32,
    /// Labels ever issued (never decreases).
    issued: u32,
    /// Envoy route names used as labels (`use_route_name`); they share the cap.
    names: Vec<Box<str>>,
    /// Segments confirmed static (hashes): added when a literal is confirmed; a decode
    /// rebuilds it from the confirmed literals the trie still holds, so it drops words whose
    /// nodes a conversion freed (a VM that decoded and one that learned can differ here).
    vocab: HashSet<u64>,
    /// Changed since the last `take_dirty`.
    dirty: bool,
}

impl Learned {
    pub fn new() -> Learned {
        Learned::default()
    }

    /// An empty state that still counts the labels `previous` issued (they exist in
    /// Envoy's stats whatever happens to the learned state).
    pub fn after(previous: &Learned) -> Learned {
        Learned { issued: previous.issued, ..Learned::default() }
    }

    pub fn trie(&self) -> &Trie {
        &self.trie
    }

    /// Labels that exist now and labels ever issued.
    pub fn label_counts(&self) -> (u32, u32) {
        (self.live, self.issued)
    }

    pub fn names(&self) -> &[Box<str>] {
        &self.names
    }

    /// True (once) if the state changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// The label of a terminal.
    pub fn render(&self, node: NodeId, out: &mut String) {
        self.trie.render(node, out);
        finish_label(out);
    }

    fn can_issue(&self, lim: &Limits) -> bool {
        self.live < lim.max_live && self.issued < lim.max_issued
    }

    fn issue(&mut self) {
        self.live += 1;
        self.issued += 1;
        self.dirty = true;
    }

    // ---- route names --------------------------------------------------------------------

    /// Index of an admitted route name; `Err(true)` if it could be admitted (learn it),
    /// `Err(false)` if the cap is full.
    pub fn lookup_name(&self, name: &str, lim: &Limits) -> Result<usize, bool> {
        self.names.iter().position(|n| **n == *name).ok_or_else(|| self.can_issue(lim))
    }

    pub fn observe_name(&mut self, name: &str, lim: &Limits) -> Option<usize> {
        match self.lookup_name(name, lim) {
            Ok(i) => Some(i),
            Err(true) => {
                self.names.push(name.into());
                self.issue();
                Some(self.names.len() - 1)
            }
            Err(false) => None,
        }
    }

    // ---- paths --------------------------------------------------------------------------

    /// Where `path` goes with what is known now. Never changes the state; `promotions` is
    /// this VM's own tally of values at converted positions.
    pub fn lookup(&self, path: &[u8], lim: &Limits, promotions: &mut Promotions, seg: &mut String) -> Lookup {
        let full = self.trie.len() >= lim.max_nodes;
        let mut n = ROOT;
        for (depth, raw) in segments(strip_query_and_fragment(path)).enumerate() {
            if depth == lim.max_depth {
                match self.trie.child(n, super::shape::REST) {
                    Some(rest) => {
                        n = rest;
                        break;
                    }
                    None if full => return Lookup::Other,
                    None => return Lookup::Learn,
                }
            }
            seg.clear();
            push_sanitized(raw, seg);
            if let Some(c) = self.trie.child(n, seg) {
                if !self.trie.node(c).has(CONFIRMED) {
                    return Lookup::Learn;
                }
                n = c;
                continue;
            }
            let node = self.trie.node(n);
            let param = node.param;
            // Only "an id or not" matters on this path (the full shape is for learning).
            let id = is_id(seg.as_bytes());
            match id {
                true if param != 0 && (node.has(CONVERTED) || node.has(IDS_SETTLED)) => {
                    if node.has(CONVERTED) && lim.thresholds.is_some() {
                        promotions.observe_id(n);
                    }
                    n = param;
                }
                // Counting this position's ids needs no new node, even with the slab full.
                true if param != 0 => return Lookup::Learn,
                _ if param != 0 && node.has(CONVERTED) => {
                    if lim.thresholds.is_some() && promotions.observe(n, seg) {
                        return Lookup::Promote(depth);
                    }
                    n = param;
                }
                _ if full => return Lookup::Other,
                _ => return Lookup::Learn,
            }
        }
        match self.trie.node(n).has(TERMINAL) {
            true => Lookup::Label(n),
            false if self.can_issue(lim) => Lookup::Learn,
            false => Lookup::Other,
        }
    }

    /// Learns from `path` and returns its label (`None`: the cap is full). Deterministic: the
    /// same state and path always give the same new state.
    pub fn observe(&mut self, path: &[u8], lim: &Limits, seg: &mut String) -> Option<NodeId> {
        // A conversion above the current node merges it away; walk again from the root.
        for _ in 0..8 {
            match self.walk(path, lim, seg) {
                Walk::Done(node) => return node,
                Walk::Restart => continue,
            }
        }
        None
    }

    /// Makes segment `depth` of `path` a static literal at its position, if the segments
    /// before it lead (through final steps) to a converted position it is not yet in.
    pub fn promote_at(&mut self, path: &[u8], depth: usize, lim: &Limits, seg: &mut String) {
        let mut n = ROOT;
        for (i, raw) in segments(strip_query_and_fragment(path)).enumerate() {
            seg.clear();
            push_sanitized(raw, seg);
            let node = self.trie.node(n);
            if i == depth {
                if node.has(CONVERTED) && self.trie.child(n, seg).is_none() && shape(seg.as_bytes()) != Shape::Id {
                    if let Some(c) = self.trie.add(n, Kind::Literal, seg, lim.max_nodes) {
                        self.confirm(c);
                        self.dirty = true;
                    }
                }
                return;
            }
            n = match self.trie.child(n, seg) {
                Some(c) if self.trie.node(c).has(CONFIRMED) => c,
                Some(_) => return,
                None if node.param != 0
                    && (node.has(CONVERTED) || (node.has(IDS_SETTLED) && shape(seg.as_bytes()) == Shape::Id)) =>
                {
                    node.param
                }
                None => return,
            };
        }
    }

    fn walk(&mut self, path: &[u8], lim: &Limits, seg: &mut String) -> Walk {
        let mut n = ROOT;
        for (depth, raw) in segments(strip_query_and_fragment(path)).enumerate() {
            if depth == lim.max_depth {
                n = match self.trie.child(n, super::shape::REST) {
                    Some(rest) => rest,
                    None => match self.trie.add(n, Kind::Rest, super::shape::REST, lim.max_nodes) {
                        Some(rest) => {
                            self.trie.node_mut(rest).flags |= CONFIRMED;
                            self.dirty = true;
                            rest
                        }
                        None => return Walk::Done(None),
                    },
                };
                break;
            }
            seg.clear();
            push_sanitized(raw, seg);
            if let Some(c) = self.trie.child(n, seg) {
                if !self.trie.node(c).has(CONFIRMED) {
                    let node = self.trie.node_mut(c);
                    node.hits = node.hits.saturating_add(1);
                    if node.hits >= CONFIRM_HITS {
                        self.confirm(c);
                    }
                    self.dirty = true;
                }
                n = c;
                continue;
            }
            let step = match shape(seg.as_bytes()) {
                Shape::Id => self.id_step(n, seg, lim),
                _ if self.trie.node(n).has(CONVERTED) => self.param_step(n, lim),
                s => self.new_value(n, seg, s, lim),
            };
            n = match step {
                Step::To(next) => next,
                Step::Full => return Walk::Done(None),
                Step::Restart => return Walk::Restart,
            };
        }
        Walk::Done(self.terminal(n, lim))
    }

    fn terminal(&mut self, n: NodeId, lim: &Limits) -> Option<NodeId> {
        if self.trie.node(n).has(TERMINAL) {
            return Some(n);
        }
        if !self.can_issue(lim) {
            return None;
        }
        self.trie.node_mut(n).flags |= TERMINAL;
        self.issue();
        Some(n)
    }

    fn confirm(&mut self, c: NodeId) {
        let node = self.trie.node_mut(c);
        node.flags |= CONFIRMED;
        let h = hash(node.seg.as_bytes());
        self.vocab.insert(h);
    }

    /// The param child of `n`, created within the node budget.
    fn param_step(&mut self, n: NodeId, lim: &Limits) -> Step {
        match self.trie.node(n).param {
            0 => match self.trie.add(n, Kind::Param, "", lim.max_nodes) {
                Some(p) => {
                    self.dirty = true;
                    Step::To(p)
                }
                None => Step::Full,
            },
            p => Step::To(p),
        }
    }

    /// An id at `n`'s child position: the param child, unless this id is the only one ever
    /// seen there, keeps coming back, looks like a version and follows a version context
    /// (`/rest/api/3/...`, `/2010-04-01/...`). Settles (no more bookkeeping) at the second
    /// distinct id, or when a repeated id cannot be a version.
    fn id_step(&mut self, n: NodeId, seg: &str, lim: &Limits) -> Step {
        let raw = seg.as_bytes();
        let node = self.trie.node(n);
        // With no param child and no room for one, the id has nowhere to go: stop before
        // the bookkeeping, so a path `resolve` calls Other leaves the state as it was.
        if node.has(CONVERTED)
            || node.has(IDS_SETTLED)
            || lim.thresholds.is_none()
            || (node.param == 0 && self.trie.len() >= lim.max_nodes)
        {
            return self.param_step(n, lim);
        }
        let could_be_version = (is_version_number(raw) || is_date(raw)) && self.version_context(n);
        let h = hash(raw) as u32;
        let node = self.trie.node_mut(n);
        self.dirty = true;
        if node.id_same == 0 {
            (node.id_hash, node.id_same) = (h, 1);
        } else if node.id_hash != h {
            node.flags |= IDS_SETTLED;
        } else {
            node.id_same = node.id_same.saturating_add(1);
            if node.id_same >= VERSION_HITS {
                // Whatever happens now, this position's ids are decided.
                node.flags |= IDS_SETTLED;
                let param = node.param;
                if could_be_version && param != 0 {
                    self.relabel_version(param, seg, lim);
                    return Step::To(param);
                }
            }
        }
        self.param_step(n, lim)
    }

    /// The lone repeated id at a version position is a literal from now on.
    fn relabel_version(&mut self, param: NodeId, seg: &str, lim: &Limits) {
        let Learned { trie, live, issued, .. } = self;
        trie.relabel_as_literal(param, seg, &mut |_| reissue(live, issued, lim));
        self.confirm(param);
    }

    /// Where a repeated lone id is a version rather than a record: the root and right after
    /// `api`, `rest`, `v2`-like words (`/items/1` or `/user/7` stay records).
    fn version_context(&self, n: NodeId) -> bool {
        let node = self.trie.node(n);
        match node.kind {
            Kind::Root => true,
            Kind::Literal => is_version_word(&node.seg),
            _ => false,
        }
    }

    /// A value `n` has not seen at its undecided child position.
    fn new_value(&mut self, n: NodeId, seg: &str, shape: Shape, lim: &Limits) -> Step {
        let Some(c) = self.trie.add(n, Kind::Literal, seg, lim.max_nodes) else { return Step::Full };
        self.dirty = true;
        self.trie.node_mut(c).hits = 1;
        let Some(thresholds) = lim.thresholds else { return Step::To(c) };
        // After a parameter: two of its values followed by the same word are two values of
        // one parameter (`/repos/{id}/a/issues`, `/repos/{id}/b/issues`).
        if self.shares_continuation(n, seg) {
            let _ = self.convert(self.trie.node(n).parent, lim);
            return Step::Restart;
        }
        let pending = self.pending(n);
        let counts = shape == Shape::Plain && !self.vocab.contains(&hash(seg.as_bytes()));
        let k = self.threshold(n, &thresholds);
        // Confirmed words raise the bar, up to double; and plenty of plain values, confirmed
        // or not, decide anyway (names that repeat, as users reload their pages, get confirmed
        // too).
        let raised = k.saturating_add(pending.confirmed.min(k));
        let plenty = pending.plain + pending.confirmed_plain >= k.saturating_mul(3);
        if pending.total >= MAX_PENDING || (counts && (pending.plain >= raised || plenty)) {
            return Step::To(self.convert(n, lim));
        }
        Step::To(c)
    }

    /// `n` is an unconfirmed value of an unconverted parameter position, and another such
    /// value already continues with `seg`.
    fn shares_continuation(&self, n: NodeId, seg: &str) -> bool {
        let node = self.trie.node(n);
        let p = node.parent;
        if n == ROOT || node.kind != Kind::Literal || node.has(CONFIRMED) {
            return false;
        }
        let parent = self.trie.node(p);
        if parent.kind != Kind::Param || parent.has(CONVERTED) {
            return false;
        }
        parent
            .children
            .iter()
            .any(|&sib| sib != n && !self.trie.node(sib).has(CONFIRMED) && self.trie.child(sib, seg).is_some())
    }

    fn threshold(&self, n: NodeId, t: &Thresholds) -> u32 {
        let node = self.trie.node(n);
        match node.kind {
            Kind::Root => t.root,
            Kind::Param => t.after_param,
            _ if is_version_word(&node.seg) => t.after_version,
            _ if is_plural_parent(&node.seg) => t.after_plural,
            _ => t.after_word,
        }
    }

    fn pending(&self, n: NodeId) -> Pending {
        let mut p = Pending::default();
        for &c in &self.trie.node(n).children {
            let child = self.trie.node(c);
            if child.kind != Kind::Literal {
                continue;
            }
            if child.has(CONFIRMED) {
                p.confirmed += 1;
                p.confirmed_plain += u32::from(shape(child.seg.as_bytes()) == Shape::Plain);
                continue;
            }
            p.total += 1;
            let counts =
                shape(child.seg.as_bytes()) == Shape::Plain && !self.vocab.contains(&hash(child.seg.as_bytes()));
            p.plain += u32::from(counts);
        }
        p
    }

    /// `n`'s child position is a parameter from now on: unconfirmed values (and everything
    /// learned below them) merge into the param child; confirmed and known words stay.
    /// Returns the param child. It may take the slab one node over its budget for a moment:
    /// a conversion always merges at least one pending value away.
    fn convert(&mut self, n: NodeId, lim: &Limits) -> NodeId {
        self.trie.node_mut(n).flags |= CONVERTED;
        self.dirty = true;
        let param = match self.trie.node(n).param {
            0 => self.trie.add_unchecked(n, Kind::Param, ""),
            p => p,
        };
        let merged: Vec<NodeId> = self
            .trie
            .node(n)
            .children
            .iter()
            .copied()
            .filter(|&c| {
                let child = self.trie.node(c);
                child.kind == Kind::Literal
                    && !child.has(CONFIRMED)
                    && !self.vocab.contains(&hash(child.seg.as_bytes()))
            })
            .collect();
        let Learned { trie, live, issued, .. } = self;
        for c in merged {
            trie.merge(c, param, &mut |dst_terminal| {
                if dst_terminal {
                    *live = live.saturating_sub(1);
                    false
                } else {
                    reissue(live, issued, lim)
                }
            });
        }
        param
    }
}

/// A terminal's label changed (merged into or moved to a node that had none): its old label
/// is retired and the new one is issued, within the lifetime budget; past it the node
/// loses its terminal (its requests are `__other__` until the budget allows).
fn reissue(live: &mut u32, issued: &mut u32, lim: &Limits) -> bool {
    if *issued < lim.max_issued {
        *issued += 1;
        true
    } else {
        *live = live.saturating_sub(1);
        false
    }
}

enum Walk {
    Done(Option<NodeId>),
    Restart,
}

enum Step {
    To(NodeId),
    /// The node budget is spent.
    Full,
    /// An ancestor converted; the walk starts again.
    Restart,
}

#[derive(Default)]
struct Pending {
    /// Unconfirmed literal values.
    total: usize,
    /// Of those, plain ones (the evidence that counts).
    plain: u32,
    /// Values confirmed static (each raises the bar).
    confirmed: u32,
    /// Of those, plain ones.
    confirmed_plain: u32,
}

/// `users`, `Accounts`, `pullRequests`: a collection, so what follows is likely an id.
fn is_plural_parent(seg: &str) -> bool {
    seg.len() >= 3 && seg.ends_with(['s', 'S'])
}

/// FNV-1a: a stable hash (the same on every VM and every run), for segment identity.
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests;
