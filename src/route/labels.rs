//! The route labels a VM has handed out, interned to small ids for the metric-id cache:
//! `__other__` is id 0, then templates, learned labels and route names as they appear.
//! Bounded: past `max` labels everything new is `__other__` (the sources themselves are
//! bounded well below that; this only keeps a misbehaving source from growing memory).

use std::collections::HashMap;

/// A route label's index in the table: not an Envoy route, and only this table makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LabelId(pub(crate) u32);

impl LabelId {
    /// Its position, for tables kept per label.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Label of every request whose route did not fit under the cap.
pub const OTHER_LABEL: &str = "__other__";
pub const OTHER: LabelId = LabelId(0);

#[derive(Debug)]
pub struct LabelTable {
    labels: Vec<Box<str>>,
    index: HashMap<Box<str>, LabelId>,
    max: usize,
}

impl LabelTable {
    pub fn new(max: usize) -> LabelTable {
        let mut labels = LabelTable { labels: Vec::new(), index: HashMap::new(), max: max.max(1) };
        labels.intern(OTHER_LABEL);
        labels
    }

    pub fn intern(&mut self, label: &str) -> LabelId {
        if let Some(&id) = self.index.get(label) {
            return id;
        }
        if self.labels.len() >= self.max {
            return OTHER;
        }
        let id = LabelId(self.labels.len() as u32);
        self.labels.push(label.into());
        self.index.insert(label.into(), id);
        id
    }

    pub fn label(&self, id: LabelId) -> &str {
        self.labels.get(id.index()).map_or(OTHER_LABEL, |l| l)
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_up_to_the_bound() {
        let mut l = LabelTable::new(3);
        assert_eq!(
            (l.intern("/a"), l.intern("/b"), l.intern("/a"), l.intern("/c")),
            (LabelId(1), LabelId(2), LabelId(1), OTHER)
        );
        assert_eq!((l.label(LabelId(1)), l.label(LabelId(0)), l.label(LabelId(99))), ("/a", OTHER_LABEL, OTHER_LABEL));
    }
}
