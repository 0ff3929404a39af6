//! Each VM's tally of the values that go into converted positions, to undo a conversion's
//! mistakes: a value that keeps coming back (`search` in `/v2/orders/{id}`) is a static word
//! after all. Per VM and in memory only: it costs no host call on the request path; the
//! promotion itself is written to the shared state like any other learning step.

use super::{hash, NodeId};

/// Values tracked per converted position (Space-Saving: the heaviest stay).
const SLOTS: usize = 8;
/// A value is promoted when it has come back this often...
const MIN_HITS: u32 = 5;
/// ...and makes up at least this share (in tenths) of the values seen there.
const MIN_SHARE_TENTHS: u32 = 3;

/// One tracked value: its hash, its count, and how much of the count it inherited from the
/// value it replaced (Space-Saving's overestimate; decisions use `count - inherited`).
#[derive(Debug, Default, Clone, Copy)]
struct Slot {
    hash: u64,
    count: u32,
    inherited: u32,
}

#[derive(Debug, Default, Clone)]
struct Tally {
    total: u32,
    slots: [Slot; SLOTS],
}

#[derive(Debug, Default, Clone)]
pub struct Promotions {
    /// By node id (dense: ids are slab slots, bounded by the node budget).
    by_node: Vec<Tally>,
}

/// Other values (ids included) a position must have seen besides the candidate: a value
/// alone at its position merges with nothing, and promoting it would only add a label.
const MIN_OTHERS: u32 = 3;

impl Promotions {
    /// Counts an id at the converted position of `node` (ids are never promoted, but they are
    /// what a static word there would be confused with).
    pub fn observe_id(&mut self, node: NodeId) {
        if let Some(tally) = self.tally(node) {
            tally.total = tally.total.saturating_add(1);
        }
    }

    /// Counts `seg` at the converted position of `node`; true when it should be promoted
    /// (its tally restarts, so a lost write is retried only after it earns it again).
    pub fn observe(&mut self, node: NodeId, seg: &str) -> bool {
        let Some(tally) = self.tally(node) else { return false };
        tally.total = tally.total.saturating_add(1);
        let h = hash(seg.as_bytes());
        let known = tally.slots.iter().position(|s| s.hash == h && s.count > 0);
        // Else the lightest slot is replaced; its count is inherited as a known overestimate.
        let lightest = tally.slots.iter().enumerate().min_by_key(|(_, s)| s.count).map_or(0, |(i, _)| i);
        let Some(slot) = tally.slots.get_mut(known.unwrap_or(lightest)) else { return false };
        if known.is_none() {
            *slot = Slot { hash: h, count: slot.count, inherited: slot.count };
        }
        slot.count = slot.count.saturating_add(1);
        // Seen at least this often (the inherited part may belong to other values).
        let hits = slot.count - slot.inherited;
        let others = tally.total - hits.min(tally.total);
        if hits >= MIN_HITS
            && hits.saturating_mul(10) >= tally.total.saturating_mul(MIN_SHARE_TENTHS)
            && others >= MIN_OTHERS
        {
            *slot = Slot::default();
            return true;
        }
        false
    }

    fn tally(&mut self, node: NodeId) -> Option<&mut Tally> {
        let i = node as usize;
        if self.by_node.len() <= i {
            self.by_node.resize_with(i + 1, Tally::default);
        }
        self.by_node.get_mut(i)
    }

    #[cfg(test)]
    fn observe_id_then(&mut self, node: NodeId, seg: &str) -> bool {
        self.observe_id(node);
        self.observe(node, seg)
    }

    /// Positions being tallied (bounded by the trie's node budget).
    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_keeps_coming_back_is_promoted_once() {
        let mut p = Promotions::default();
        let fired: Vec<bool> =
            ["search", "a", "search", "b", "search", "search", "c", "search"].iter().map(|v| p.observe(7, v)).collect();
        // The fifth `search` of eight values: 5 >= 30 % of 8, and 3 other values.
        assert_eq!(fired, [false, false, false, false, false, false, false, true]);
        assert!(!p.observe(7, "search"));
    }

    #[test]
    fn a_value_alone_at_its_position_is_not_promoted_until_others_come() {
        let mut p = Promotions::default();
        assert!((0..10).all(|_| !p.observe(3, "generate-jitconfig")));
        p.observe_id(3);
        p.observe_id(3);
        assert!(!p.observe(3, "generate-jitconfig"));
        assert!(p.observe_id_then(3, "generate-jitconfig"));
    }

    #[test]
    fn a_rare_value_among_many_is_not() {
        let mut p = Promotions::default();
        let mut fired = false;
        for i in 0..100 {
            fired |= p.observe(1, &format!("user{i}"));
            if i % 10 == 0 {
                fired |= p.observe(1, "alice");
            }
        }
        assert!(!fired);
    }
}
