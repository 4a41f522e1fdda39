//! The Drain prefix tree: first level keyed by token count, then up to
//! `depth - 2` levels keyed by leading tokens (drain3 counts the root and the
//! token-count level in `depth`; with depth 4 one token level is used), with
//! cluster ids at the leaves.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::ClusterId;

/// The wildcard key, as drain3 spells it.
pub(crate) const WILDCARD: &str = "<*>";

pub(crate) type NodeId = u32;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Node {
    pub(crate) children: FxHashMap<Box<str>, NodeId>,
    pub(crate) cluster_ids: Vec<ClusterId>,
}

/// Arena of nodes plus the token-count level.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
    pub(crate) by_length: FxHashMap<usize, NodeId>,
}

/// drain3's `has_numbers`: any character Python's `str.isdigit` accepts.
pub(crate) fn has_digit(token: &str) -> bool {
    token
        .chars()
        .any(|c| c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric()))
}

impl Tree {
    fn new_node(&mut self) -> NodeId {
        self.nodes.push(Node::default());
        (self.nodes.len() - 1) as NodeId
    }

    /// drain3's `tree_search` descent: the leaf whose clusters are the
    /// candidates for `tokens`, if the path exists.
    pub(crate) fn leaf_for(&self, tokens: &[&str], max_node_depth: usize) -> Option<NodeId> {
        let mut node = *self.by_length.get(&tokens.len())?;
        for (depth, token) in (1usize..).zip(tokens) {
            if depth >= max_node_depth || depth == tokens.len() {
                break;
            }
            let children = &self.nodes[node as usize].children;
            node = match children.get(*token) {
                Some(child) => *child,
                None => *children.get(WILDCARD)?,
            };
        }
        Some(node)
    }

    /// drain3's `add_seq_to_prefix_tree`: routes `tokens` (a new cluster's
    /// template) to a leaf, creating nodes on the way, and appends `id` there.
    /// drain3 also filters evicted ids out of the leaf here, a pass over the
    /// whole leaf per new cluster; this engine takes an evicted id out of
    /// its leaf when it is evicted ([`Tree::forget`]), so leaves hold live
    /// ids only.
    pub(crate) fn insert(
        &mut self,
        tokens: &[Option<&str>],
        id: ClusterId,
        max_node_depth: usize,
        max_children: usize,
        parametrize_numeric_tokens: bool,
    ) -> NodeId {
        let token_count = tokens.len();
        let mut node = match self.by_length.get(&token_count) {
            Some(node) => *node,
            None => {
                let node = self.new_node();
                self.by_length.insert(token_count, node);
                node
            }
        };
        if token_count == 0 {
            self.nodes[node as usize].cluster_ids = vec![id];
            return node;
        }
        for (depth, token) in (1usize..).zip(tokens) {
            if depth >= max_node_depth || depth >= token_count {
                self.nodes[node as usize].cluster_ids.push(id);
                return node;
            }
            let token = token.unwrap_or(WILDCARD);
            node = match self.nodes[node as usize].children.get(token) {
                Some(child) => *child,
                None => self.branch(node, token, max_children, parametrize_numeric_tokens),
            };
        }
        node
    }

    /// Takes `id` out of `leaf`, keeping the order of the others.
    pub(crate) fn forget(&mut self, leaf: NodeId, id: ClusterId) {
        if let Some(node) = self.nodes.get_mut(leaf as usize)
            && let Some(at) = node.cluster_ids.iter().position(|existing| *existing == id)
        {
            node.cluster_ids.remove(at);
        }
    }

    /// The child of `node` a token with no exact child goes to, created if
    /// needed: numbers to the wildcard child; others get their own child until
    /// `max_children`, after which they share the wildcard child.
    fn branch(
        &mut self,
        node: NodeId,
        token: &str,
        max_children: usize,
        parametrize_numeric_tokens: bool,
    ) -> NodeId {
        let children = &self.nodes[node as usize].children;
        let has_wildcard = children.contains_key(WILDCARD);
        let count = children.len();
        let key = if parametrize_numeric_tokens && has_digit(token) {
            WILDCARD
        } else if has_wildcard {
            if count < max_children {
                token
            } else {
                WILDCARD
            }
        } else if count + 1 < max_children {
            token
        } else {
            // The last free slot goes to the wildcard child.
            WILDCARD
        };
        if let Some(child) = self.nodes[node as usize].children.get(key) {
            return *child;
        }
        let child = self.new_node();
        self.nodes[node as usize].children.insert(key.into(), child);
        child
    }
}
