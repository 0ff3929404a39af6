//! Many templates at once (a configuration's rules, an OpenAPI document's thousands of
//! paths): a segment trie that finds the first matching rule, in rule order, while looking
//! only at the branches a path can take. Rule order is the caller's: configured rules as
//! written, OpenAPI templates most specific first.

use super::path::{segments, strip_query_and_fragment};
use super::template::{Pattern, Segment, Template};
use super::RuleId;

#[derive(Debug, Clone, Default)]
struct Node {
    /// Literal children, sorted by segment.
    literals: Vec<(Box<str>, usize)>,
    patterns: Vec<(Pattern, usize)>,
    param: Option<usize>,
    /// Rules that end here.
    ends: Vec<RuleId>,
    /// Rules ending in `*` here (they match this node and anything below).
    rest: Vec<RuleId>,
    /// The smallest rule index in this subtree: branches that cannot beat the best match
    /// so far are skipped.
    min_rule: RuleId,
}

#[derive(Debug, Clone)]
pub struct TemplateSet {
    nodes: Vec<Node>,
}

impl Default for TemplateSet {
    fn default() -> Self {
        TemplateSet { nodes: vec![Node { min_rule: RuleId::MAX, ..Node::default() }] }
    }
}

impl TemplateSet {
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a Template>) -> TemplateSet {
        let mut set = TemplateSet::default();
        for (rule, t) in templates.into_iter().enumerate() {
            set.insert(rule, t);
        }
        set
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.first().is_none_or(|root| root.min_rule == RuleId::MAX)
    }

    fn insert(&mut self, rule: RuleId, t: &Template) {
        let mut at = 0;
        self.lower(at, rule);
        for seg in t.segments() {
            at = self.child(at, seg);
            self.lower(at, rule);
        }
        let Some(node) = self.nodes.get_mut(at) else { return };
        match t.has_rest() {
            true => node.rest.push(rule),
            false => node.ends.push(rule),
        }
    }

    /// `rule` is in the subtree of `at`.
    fn lower(&mut self, at: usize, rule: RuleId) {
        if let Some(node) = self.nodes.get_mut(at) {
            node.min_rule = node.min_rule.min(rule);
        }
    }

    /// The child of `at` for `seg`, added if new (nodes are only ever added: ids stay valid).
    fn child(&mut self, at: usize, seg: &Segment) -> usize {
        let n = self.nodes.len();
        let Some(node) = self.nodes.get_mut(at) else { return at };
        let existing = match seg {
            Segment::Literal(lit) => {
                let i = node.literals.binary_search_by(|(l, _)| l.cmp(lit)).ok();
                i.and_then(|i| node.literals.get(i)).map(|(_, c)| *c)
            }
            Segment::Param => node.param,
            Segment::Pattern(p) => node.patterns.iter().find(|(q, _)| q == p).map(|(_, c)| *c),
        };
        if let Some(c) = existing {
            return c;
        }
        match seg {
            Segment::Literal(lit) => {
                let pos = node.literals.binary_search_by(|(l, _)| l.cmp(lit)).unwrap_or_else(|p| p);
                node.literals.insert(pos, (lit.clone(), n));
            }
            Segment::Param => node.param = Some(n),
            Segment::Pattern(p) => node.patterns.push((p.clone(), n)),
        }
        self.nodes.push(Node { min_rule: RuleId::MAX, ..Node::default() });
        n
    }

    /// The first rule (lowest index) that matches `path` and that `accept` takes (the
    /// method filter). Query and fragment are ignored; empty segments are skipped.
    pub fn find(&self, path: &[u8], accept: impl Fn(RuleId) -> bool) -> Option<RuleId> {
        if self.is_empty() {
            return None;
        }
        let mut best = RuleId::MAX;
        // The segment iterator is cloned at each branch: no buffer, no allocation.
        self.search(0, segments(strip_query_and_fragment(path)), &accept, &mut best);
        (best != RuleId::MAX).then_some(best)
    }

    fn search<'p>(
        &self,
        at: usize,
        mut segs: impl Iterator<Item = &'p [u8]> + Clone,
        accept: &impl Fn(RuleId) -> bool,
        best: &mut RuleId,
    ) {
        let Some(node) = self.nodes.get(at) else { return };
        if node.min_rule >= *best {
            return;
        }
        for &rule in &node.rest {
            if rule < *best && accept(rule) {
                *best = rule;
            }
        }
        let Some(seg) = segs.next() else {
            for &rule in &node.ends {
                if rule < *best && accept(rule) {
                    *best = rule;
                }
            }
            return;
        };
        let literal = node.literals.binary_search_by(|(l, _)| l.as_bytes().cmp(seg)).ok();
        if let Some((_, child)) = literal.and_then(|i| node.literals.get(i)) {
            self.search(*child, segs.clone(), accept, best);
        }
        for (pattern, child) in &node.patterns {
            if pattern.matches(seg) {
                self.search(*child, segs.clone(), accept, best);
            }
        }
        if let Some(child) = node.param {
            self.search(child, segs, accept, best);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(templates: &[&str]) -> TemplateSet {
        let parsed: Vec<Template> = templates.iter().map(|t| Template::parse(t).unwrap()).collect();
        TemplateSet::new(parsed.iter())
    }

    #[test]
    fn the_first_matching_rule_wins_whatever_the_branch() {
        let s = set(&["/a/{x}/c", "/a/b/{y}", "/a/*", "/a/b/c/d"]);
        let cases: &[(&str, Option<usize>)] = &[
            ("/a/b/c", Some(0)),
            ("/a/b/z", Some(1)),
            ("/a/q/c", Some(0)),
            ("/a/q/z", Some(2)),
            ("/a", Some(2)),
            ("/a/b/c/d", Some(2)),
            ("/b", None),
        ];
        for (path, want) in cases {
            assert_eq!(s.find(path.as_bytes(), |_| true), *want, "{path}");
        }
        // A rule the method filter refuses gives way to the next one.
        assert_eq!(s.find(b"/a/b/c", |r| r != 0), Some(1));
    }

    #[test]
    fn paths_deeper_than_any_rule_match_at_every_depth() {
        let deep: String = (0..40).map(|i| format!("/s{i}")).collect();
        let s = set(&[&deep, "/s0/*"]);
        assert_eq!(s.find(deep.as_bytes(), |_| true), Some(0));
        assert_eq!(s.find(format!("{deep}/x").as_bytes(), |_| true), Some(1));
    }
}
