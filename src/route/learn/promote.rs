//! Each VM's tally of the values that go into converted positions, to undo a conversion's
//! mistakes: a value that keeps coming back (`search` in `/v2/orders/{id}`) is a static word
//! after all. Per VM and in memory only: it costs no host call on the request path; the
//! promotion itself is written to the shared state like any other learning step.

use std::collections::HashMap;

use super::{hash, NodeId};

/// Values tracked per converted position (Space-Saving: the heaviest stay).
const SLOTS: usize = 8;
/// A value is promoted when it has come back this often...
const MIN_HITS: u32 = 5;
/// ...and makes up at least this share (in tenths) of the values seen there.
const MIN_SHARE_TENTHS: u32 = 3;

#[derive(Debug, Default, Clone)]
struct Tally {
    total: u32,
    slots: [(u64, u32); SLOTS],
}

#[derive(Debug, Default, Clone)]
pub struct Promotions {
    by_node: HashMap<NodeId, Tally>,
}

impl Promotions {
    /// Counts `seg` at the converted position of `node`; true when it should be promoted
    /// (its tally restarts, so a lost write is retried only after it earns it again).
    pub fn observe(&mut self, node: NodeId, seg: &str) -> bool {
        let tally = self.by_node.entry(node).or_default();
        tally.total = tally.total.saturating_add(1);
        let h = hash(seg.as_bytes());
        let slot = match tally.slots.iter().position(|(k, n)| *k == h && *n > 0) {
            Some(i) => i,
            None => {
                // Replace the lightest slot, inheriting its count (Space-Saving's bound).
                let (i, _) = tally.slots.iter().enumerate().min_by_key(|(_, (_, n))| *n).unwrap_or((0, &(0, 0)));
                tally.slots[i].0 = h;
                i
            }
        };
        tally.slots[slot].1 = tally.slots[slot].1.saturating_add(1);
        let hits = tally.slots[slot].1;
        if hits >= MIN_HITS && hits.saturating_mul(10) >= tally.total.saturating_mul(MIN_SHARE_TENTHS) {
            tally.slots[slot] = (0, 0);
            return true;
        }
        false
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
        let fired: Vec<bool> = ["search", "a", "search", "b", "search", "search", "c", "search"]
            .iter()
            .map(|v| p.observe(7, v))
            .collect();
        // The fifth `search` of eight values: 5 >= 30 % of 8.
        assert_eq!(fired, [false, false, false, false, false, false, false, true]);
        assert!(!p.observe(7, "search"));
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
