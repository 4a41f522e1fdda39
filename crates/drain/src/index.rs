//! Candidate lookup in a leaf without scanning it: an inverted index from
//! (leaf, position, constant token) to the live clusters of that leaf
//! holding that token there. The answer is the scan's, exactly (same
//! candidates above the threshold, compared in the same leaf order); only
//! the cost changes, from every cluster of the leaf to a few hash lookups.
//!
//! A cluster can reach `sim_th` for a line of `n` tokens only if at least
//! `need` of its constant tokens equal the line's at their positions
//! (`need / n ≥ sim_th`, Drain's similarity). So it matches at least one of
//! *any* `n − need + 1` of the line's positions (pigeonhole): probing the
//! line's rarest positions finds every candidate (prefix filtering, as in
//! similarity joins), and a line whose rare tokens are new costs `n`
//! lookups however many clusters share its leaf.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap, FxHasher};

use crate::tree::NodeId;
use crate::{Cluster, ClusterId};

/// Leaves with at most this many clusters are scanned: for them a scan is
/// cheaper than hashing every token of the line.
pub(crate) const SCAN_MAX: usize = 16;

#[derive(Debug, Default, Clone)]
pub(crate) struct LeafIndex {
    /// Hash of (leaf, position, token) → ids. A collision only adds a
    /// candidate, which the similarity then judges.
    postings: FxHashMap<u64, Vec<ClusterId>>,
    /// Each indexed cluster's leaf and its rank in the leaf's order (the
    /// order a scan compares clusters in, which breaks ties).
    places: FxHashMap<ClusterId, (NodeId, u64)>,
    next_rank: u64,
}

fn key(leaf: NodeId, position: usize, token: &str) -> u64 {
    let mut hasher = FxHasher::default();
    leaf.hash(&mut hasher);
    position.hash(&mut hasher);
    token.hash(&mut hasher);
    hasher.finish()
}

/// Fewest equal tokens a template of `count` tokens needs to reach `sim_th`
/// (the same float comparison as the similarity check).
fn needed(count: usize, sim_th: f64) -> usize {
    (0..=count)
        .find(|&same| same as f64 / count as f64 >= sim_th)
        .unwrap_or(count + 1)
}

impl LeafIndex {
    /// `cluster` was appended to `leaf`.
    pub(crate) fn insert(&mut self, cluster: &Cluster, leaf: NodeId) {
        self.places.insert(cluster.id, (leaf, self.next_rank));
        self.next_rank += 1;
        for (position, token) in cluster.tokens.iter().enumerate() {
            if let Some(token) = token {
                self.postings
                    .entry(key(leaf, position, token))
                    .or_default()
                    .push(cluster.id);
            }
        }
    }

    /// The leaf `id` was appended to.
    pub(crate) fn leaf_of(&self, id: ClusterId) -> Option<NodeId> {
        self.places.get(&id).map(|place| place.0)
    }

    /// `cluster` left the live set.
    pub(crate) fn remove(&mut self, cluster: &Cluster) {
        for (position, token) in cluster.tokens.iter().enumerate() {
            if let Some(token) = token {
                self.remove_posting(cluster.id, position, token);
            }
        }
        self.places.remove(&cluster.id);
    }

    /// `id`'s template no longer holds `token` at `position` (it became a
    /// wildcard).
    pub(crate) fn remove_posting(&mut self, id: ClusterId, position: usize, token: &str) {
        let Some(&(leaf, _)) = self.places.get(&id) else {
            return;
        };
        let key = key(leaf, position, token);
        if let Some(ids) = self.postings.get_mut(&key) {
            if let Some(at) = ids.iter().position(|existing| *existing == id) {
                ids.swap_remove(at);
            }
            if ids.is_empty() {
                self.postings.remove(&key);
            }
        }
    }

    /// The clusters of `leaf` that can reach `sim_th` for `tokens` (and
    /// possibly a few that cannot), in leaf order, into `out`; `false` when
    /// every cluster can (nothing needs to match), so the leaf must be
    /// scanned.
    pub(crate) fn candidates(
        &self,
        leaf: NodeId,
        tokens: &[&str],
        sim_th: f64,
        out: &mut Vec<ClusterId>,
    ) -> bool {
        out.clear();
        let count = tokens.len();
        let need = needed(count, sim_th);
        if need == 0 {
            return false;
        }
        if need > count {
            return true;
        }
        let mut lists: Vec<&[ClusterId]> = tokens
            .iter()
            .enumerate()
            .map(|(position, token)| {
                self.postings
                    .get(&key(leaf, position, token))
                    .map_or(&[][..], Vec::as_slice)
            })
            .collect();
        // The `count - need + 1` shortest lists are enough.
        let probes = count - need + 1;
        if probes < lists.len() {
            lists.select_nth_unstable_by_key(probes - 1, |list| list.len());
        }
        for list in &lists[..probes] {
            out.extend_from_slice(list);
        }
        out.sort_unstable();
        out.dedup();
        out.sort_by_key(|id| self.places.get(id).map_or(u64::MAX, |place| place.1));
        true
    }
}
