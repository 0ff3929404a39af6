//! The learned path trie: nodes in a slab (ids stay valid while a node lives, so the
//! encoding and every VM's cache agree on them), literal children kept sorted, and the one
//! structural operation learning needs, merging a subtree into another.

use super::super::shape::PARAM;

/// Index of a node in the slab; the root is 0 (and 0 as a child link means "none").
pub type NodeId = u32;

pub const ROOT: NodeId = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Root,
    /// A fixed segment (`issues`), stored label-safe.
    Literal,
    /// Any one segment: an id or a learned parameter, `{id}` in the label.
    Param,
    /// Everything below `max_path_depth`, `*` in the label.
    Rest,
    /// An empty slab slot.
    Free,
}

/// Node flags.
pub const CONFIRMED: u8 = 1;
/// This node's child position is a parameter: new values go to its param child.
pub const CONVERTED: u8 = 2;
/// A label ends here and has been issued (it counts against the cap).
pub const TERMINAL: u8 = 4;
/// Two different ids were seen at this node's child position: it is a parameter for ids for
/// good, and an id can no longer be promoted to a version literal (`/rest/api/3`).
pub const IDS_SETTLED: u8 = 8;
pub const ALL_FLAGS: u8 = CONFIRMED | CONVERTED | TERMINAL | IDS_SETTLED;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    pub flags: u8,
    pub parent: NodeId,
    /// Learning observations that went through this node (a literal is confirmed at 2).
    pub hits: u32,
    /// The first id seen at this node's child position (hash) and how often it came back.
    pub id_hash: u32,
    pub id_same: u16,
    pub seg: Box<str>,
    /// Literal (and rest) children, sorted by segment. Derived from `parent` links.
    pub children: Vec<NodeId>,
    /// The param child, or 0.
    pub param: NodeId,
}

impl Node {
    pub fn new(kind: Kind, parent: NodeId, seg: &str) -> Node {
        Node {
            kind,
            flags: 0,
            parent,
            hits: 0,
            id_hash: 0,
            id_same: 0,
            seg: seg.into(),
            children: Vec::new(),
            param: 0,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The slab. Everything here is mechanical; the decisions are in `learn/mod.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trie {
    pub nodes: Vec<Node>,
    free: Vec<NodeId>,
    /// Nodes in use, root included.
    used: usize,
    /// What an id this trie never issued reads as (a free node), and where writes to one go.
    nowhere: Node,
}

impl Default for Trie {
    fn default() -> Self {
        Trie::from_nodes(vec![Node::new(Kind::Root, ROOT, "")], Vec::new())
    }
}

impl Trie {
    /// A trie from decoded slots; links (`children`, `param`) are rebuilt from `parent`.
    /// The caller has validated kinds, parents and segments.
    pub fn from_slots(mut nodes: Vec<Node>) -> Trie {
        for n in &mut nodes {
            n.children.clear();
            n.param = 0;
        }
        let mut free = Vec::new();
        let mut trie = Trie::from_nodes(nodes, Vec::new());
        for id in (1..trie.nodes.len() as NodeId).rev() {
            let (kind, parent) = (trie.node(id).kind, trie.node(id).parent);
            match kind {
                Kind::Free => free.push(id),
                Kind::Param => trie.node_mut(parent).param = id,
                _ => trie.node_mut(parent).children.push(id),
            }
        }
        for id in 0..trie.nodes.len() as NodeId {
            let mut children = std::mem::take(&mut trie.node_mut(id).children);
            children.sort_by(|a, b| trie.node(*a).seg.cmp(&trie.node(*b).seg));
            trie.node_mut(id).children = children;
        }
        trie.used = trie.nodes.len() - free.len();
        trie.free = free;
        trie
    }

    fn from_nodes(nodes: Vec<Node>, free: Vec<NodeId>) -> Trie {
        Trie { used: nodes.len() - free.len(), nodes, free, nowhere: Node::new(Kind::Free, ROOT, "") }
    }

    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// Ids come from this trie; one it never issued reads as a free node.
    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes.get(id as usize).unwrap_or(&self.nowhere)
    }

    /// Writes to an id this trie never issued go nowhere.
    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        match self.nodes.get_mut(id as usize) {
            Some(node) => node,
            None => {
                self.nowhere = Node::new(Kind::Free, ROOT, "");
                &mut self.nowhere
            }
        }
    }

    /// The literal (or rest) child of `parent` whose segment is `seg`.
    pub fn child(&self, parent: NodeId, seg: &str) -> Option<NodeId> {
        let children = &self.node(parent).children;
        children.binary_search_by(|c| (*self.node(*c).seg).cmp(seg)).ok().and_then(|i| children.get(i).copied())
    }

    /// Adds a child; `None` when the slab is at `max_nodes`.
    pub fn add(&mut self, parent: NodeId, kind: Kind, seg: &str, max_nodes: usize) -> Option<NodeId> {
        if self.used >= max_nodes {
            return None;
        }
        Some(self.add_unchecked(parent, kind, seg))
    }

    /// Adds a child whatever the size (a conversion needs its param child even when the
    /// slab is full; it frees more nodes than it adds).
    pub fn add_unchecked(&mut self, parent: NodeId, kind: Kind, seg: &str) -> NodeId {
        let node = Node::new(kind, parent, seg);
        let id = match self.free.pop() {
            Some(id) => {
                *self.node_mut(id) = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as NodeId
            }
        };
        self.used += 1;
        self.link(parent, id);
        id
    }

    fn link(&mut self, parent: NodeId, id: NodeId) {
        self.node_mut(id).parent = parent;
        if self.node(id).kind == Kind::Param {
            self.node_mut(parent).param = id;
            return;
        }
        let seg = self.node(id).seg.clone();
        let pos = self.node(parent).children.binary_search_by(|c| (*self.node(*c).seg).cmp(&seg)).unwrap_or_else(|p| p);
        self.node_mut(parent).children.insert(pos, id);
    }

    fn unlink(&mut self, id: NodeId) {
        let parent = self.node(id).parent;
        if self.node(parent).param == id {
            self.node_mut(parent).param = 0;
        } else {
            self.node_mut(parent).children.retain(|c| *c != id);
        }
    }

    /// Turns the param node `id` (and its subtree) into a literal named `seg` under the same
    /// parent. Used when an id that was the only one ever seen at a position turns out to be
    /// a version (`/rest/api/3`). Every label below changes: see [`Trie::merge`].
    pub fn relabel_as_literal(&mut self, id: NodeId, seg: &str, on_terminal: &mut impl FnMut(bool) -> bool) {
        self.unlink(id);
        let node = self.node_mut(id);
        node.kind = Kind::Literal;
        node.seg = seg.into();
        let parent = node.parent;
        self.link(parent, id);
        self.relabel_terminals(id, on_terminal);
    }

    /// Merges the subtree at `src` into `dst` (children with the same segment merge too) and
    /// frees `src`'s slots. `on_terminal(dst_was_terminal)` is called for every terminal node
    /// merged away, so the caller can keep its label counts; it returns whether the surviving
    /// node may become a terminal (a label) if it is not one yet.
    pub fn merge(&mut self, src: NodeId, dst: NodeId, on_terminal: &mut impl FnMut(bool) -> bool) {
        self.unlink(src);
        self.merge_into(src, dst, on_terminal);
        // Smallest free slot first, the order a decoded copy has: every VM then allocates
        // the same ids from the same state.
        self.free.sort_unstable_by(|a, b| b.cmp(a));
    }

    fn merge_into(&mut self, src: NodeId, dst: NodeId, on_terminal: &mut impl FnMut(bool) -> bool) {
        let s = std::mem::replace(self.node_mut(src), Node::new(Kind::Free, ROOT, ""));
        self.free.push(src);
        self.used -= 1;
        {
            let d = self.node_mut(dst);
            d.hits = d.hits.saturating_add(s.hits);
            d.flags |= s.flags & (CONFIRMED | CONVERTED);
            if s.id_same > 0 {
                if d.id_same == 0 {
                    (d.id_hash, d.id_same) = (s.id_hash, s.id_same);
                } else if d.id_hash != s.id_hash {
                    d.flags |= IDS_SETTLED;
                } else {
                    d.id_same = d.id_same.saturating_add(s.id_same);
                }
            }
            d.flags |= s.flags & IDS_SETTLED;
        }
        if s.has(TERMINAL) {
            let dst_terminal = self.node(dst).has(TERMINAL);
            if on_terminal(dst_terminal) && !dst_terminal {
                self.node_mut(dst).flags |= TERMINAL;
            }
        }
        for child in s.children {
            let seg = self.node(child).seg.clone();
            match self.child(dst, &seg) {
                Some(existing) => self.merge_into(child, existing, on_terminal),
                None => self.move_under(dst, child, on_terminal),
            }
        }
        if s.param != 0 {
            match self.node(dst).param {
                0 => self.move_under(dst, s.param, on_terminal),
                existing => self.merge_into(s.param, existing, on_terminal),
            }
        }
    }

    /// Re-parents a whole subtree: every label in it changes, so each terminal is reported
    /// as merged into a non-terminal (it keeps its flag only if the caller allows).
    fn move_under(&mut self, dst: NodeId, child: NodeId, on_terminal: &mut impl FnMut(bool) -> bool) {
        self.link(dst, child);
        self.relabel_terminals(child, on_terminal);
    }

    /// Every terminal in the subtree at `top` has a new label now.
    fn relabel_terminals(&mut self, top: NodeId, on_terminal: &mut impl FnMut(bool) -> bool) {
        let mut stack = vec![top];
        while let Some(id) = stack.pop() {
            if self.node(id).has(TERMINAL) && !on_terminal(false) {
                self.node_mut(id).flags &= !TERMINAL;
            }
            let node = self.node(id);
            stack.extend(node.children.iter().copied());
            if node.param != 0 {
                stack.push(node.param);
            }
        }
    }

    /// The label of `id`: literal segments, `{id}` for parameters, `*` for the rest.
    pub fn render(&self, id: NodeId, out: &mut String) {
        out.clear();
        let mut path = Vec::new();
        let mut at = id;
        while at != ROOT && path.len() <= 64 {
            path.push(at);
            at = self.node(at).parent;
        }
        for n in path.iter().rev() {
            out.push('/');
            let node = self.node(*n);
            match node.kind {
                Kind::Param => out.push_str(PARAM),
                _ => out.push_str(&node.seg),
            }
        }
        if out.is_empty() {
            out.push('/');
        }
    }

    /// Depth of `id` (the root is 0).
    pub fn depth(&self, id: NodeId) -> usize {
        let mut depth = 0;
        let mut at = id;
        while at != ROOT && depth <= 64 {
            depth += 1;
            at = self.node(at).parent;
        }
        depth
    }
}
