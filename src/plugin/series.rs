//! Which series a request counts in: its route label and, when the route has attribute
//! labels, its combination of their values, interned to a dense id the aggregates index by.
//! A route without attribute labels (the common case) finds its id with one index; the others
//! through a map, bounded: past its bound everything new counts in `__other__`.

use std::collections::HashMap;

use crate::metrics::SeriesId;
use crate::route::{LabelId, RuleId, OTHER};

/// What a series is: a route label, the rule that matched (its attribute labels), and the
/// combination of their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesKey {
    pub route: LabelId,
    pub rule: Option<RuleId>,
    /// `None`: the route has no attribute labels.
    pub combination: Option<u32>,
}

#[derive(Debug)]
pub struct SeriesTable {
    keys: Vec<SeriesKey>,
    /// Routes without attribute labels, by route id.
    plain: Vec<Option<SeriesId>>,
    attributed: HashMap<(LabelId, Option<RuleId>, u32), SeriesId>,
    max: usize,
}

impl SeriesTable {
    pub fn new(max: usize) -> SeriesTable {
        SeriesTable { keys: Vec::new(), plain: Vec::new(), attributed: HashMap::new(), max: max.max(1) }
    }

    pub fn id(&mut self, key: SeriesKey) -> SeriesId {
        match key.combination {
            None => {
                let i = key.route.index();
                if let Some(Some(id)) = self.plain.get(i) {
                    return *id;
                }
                let Some(id) = self.push(key) else { return self.other() };
                if self.plain.len() <= i {
                    self.plain.resize(i + 1, None);
                }
                if let Some(slot) = self.plain.get_mut(i) {
                    *slot = Some(id);
                }
                id
            }
            Some(combination) => {
                let k = (key.route, key.rule, combination);
                if let Some(id) = self.attributed.get(&k) {
                    return *id;
                }
                let Some(id) = self.push(key) else { return self.other() };
                self.attributed.insert(k, id);
                id
            }
        }
    }

    fn push(&mut self, key: SeriesKey) -> Option<SeriesId> {
        (self.keys.len() < self.max).then(|| {
            self.keys.push(key);
            SeriesId::new(self.keys.len() - 1)
        })
    }

    /// `__other__`, without attribute labels: where series past the bound count.
    fn other(&mut self) -> SeriesId {
        if let Some(Some(id)) = self.plain.get(OTHER.index()) {
            return *id;
        }
        self.keys.push(SeriesKey { route: OTHER, rule: None, combination: None });
        let id = SeriesId::new(self.keys.len() - 1);
        if self.plain.is_empty() {
            self.plain.push(None);
        }
        if let Some(slot) = self.plain.get_mut(OTHER.index()) {
            *slot = Some(id);
        }
        id
    }

    pub fn key(&self, id: SeriesId) -> Option<&SeriesKey> {
        self.keys.get(id.index())
    }
}
