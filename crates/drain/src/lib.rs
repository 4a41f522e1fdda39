//! Drain log template mining (He et al., "Drain: An Online Log Parsing
//! Approach with Fixed Depth Tree", ICWS 2017) with the semantics of the
//! Python library drain3, so results compare one to one, plus what a
//! long-running sensor needs:
//!
//! - [`Masker`]: regex masks applied before tokenizing, and
//!   [`Masker::builtin`], a default set for common variable tokens;
//! - a cluster cap ([`DrainConfig::max_clusters`]) whose evicted clusters are
//!   kept as bare templates in a *graveyard*, so a returning template is
//!   revived under its old id ([`Change::Revived`]) instead of being reported
//!   as new again (drain3's LRU re-creates and re-reports it);
//! - [`Drain::snapshot`] / [`Drain::restore`]: compact, versioned state, so a
//!   restart reports nothing as new that was known before, with stable ids;
//! - cost that does not grow with the templates of a leaf (`index`) and a
//!   memory of lines that matched unchanged (`recent`), both giving the
//!   answers of drain3's full scan.
//!
//! Pure: no I/O, no clock.

mod classify;
mod index;
mod masking;
mod recent;
mod snapshot;
mod tree;

use std::num::NonZeroUsize;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

pub use masking::{MaskError, MaskRule, Masker};
pub use snapshot::SnapshotError;
use tree::{Tree, WILDCARD};

/// A cluster's id: assigned in creation order from 1, never reused.
pub type ClusterId = u64;

/// Engine settings; the defaults are drain3's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrainConfig {
    /// Tree depth counting the root and the token-count level (≥ 3).
    pub depth: usize,
    /// Similarity threshold: matching non-wildcard tokens / length.
    pub sim_th: f64,
    /// Most children per tree node before tokens share the wildcard child.
    pub max_children: usize,
    /// Most live clusters; least recently used ones move to the graveyard.
    pub max_clusters: Option<usize>,
    /// Strings replaced by a space before splitting on whitespace.
    pub extra_delimiters: Vec<String>,
    /// Route tokens containing a digit to the wildcard child.
    pub parametrize_numeric_tokens: bool,
    /// Most evicted templates remembered; past it the oldest are forgotten
    /// (and could be reported as new again).
    pub max_graveyard: usize,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            depth: 4,
            sim_th: 0.4,
            max_children: 100,
            max_clusters: None,
            extra_delimiters: Vec::new(),
            parametrize_numeric_tokens: true,
            max_graveyard: 1_000_000,
        }
    }
}

impl DrainConfig {
    /// The engine's own default for users who will not tune per system
    /// (use with [`Masker::builtin`]): drain3's settings except depth 5 (two
    /// token levels) and `sim_th` 0.7. The built-in masks turn variable
    /// tokens into named placeholders that count as matches, so a stricter
    /// threshold keeps distinct messages apart without splitting templates.
    /// Chosen on a coarse grid (depth 3–6 × sim_th 0.4–0.8) over the Loghub
    /// benchmark; the example `default_grid` in `inspector-log-eval` prints it.
    pub fn recommended() -> Self {
        DrainConfig {
            depth: 5,
            sim_th: 0.8,
            ..DrainConfig::default()
        }
    }
}

/// Why a config is unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("depth must be at least 3, got {0}")]
    Depth(usize),
    #[error("sim_th must be within [0, 1], got {0}")]
    SimTh(f64),
    #[error("max_children must be at least 2, got {0}")]
    MaxChildren(usize),
    #[error("max_clusters must be at least 1")]
    MaxClusters,
}

impl DrainConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.depth < 3 {
            return Err(ConfigError::Depth(self.depth));
        }
        if !(0.0..=1.0).contains(&self.sim_th) {
            return Err(ConfigError::SimTh(self.sim_th));
        }
        if self.max_children < 2 {
            return Err(ConfigError::MaxChildren(self.max_children));
        }
        if self.max_clusters == Some(0) {
            return Err(ConfigError::MaxClusters);
        }
        Ok(())
    }
}

/// What adding a line did to its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// A new cluster: a template never seen before.
    Created,
    /// An existing cluster whose template gained a wildcard.
    Changed,
    /// An existing cluster, template unchanged.
    Matched,
    /// A cluster evicted earlier (cluster cap) brought back under its old id.
    Revived,
}

/// A template and its statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    id: ClusterId,
    /// Template tokens; `None` is the wildcard `<*>`.
    tokens: Vec<Option<Box<str>>>,
    size: u64,
}

impl Cluster {
    pub fn id(&self) -> ClusterId {
        self.id
    }

    /// Lines matched so far (since the cluster was created or revived).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The template, tokens joined by single spaces, `<*>` for wildcards.
    pub fn template(&self) -> String {
        let mut out = String::new();
        for (i, token) in self.tokens.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(token.as_deref().unwrap_or(WILDCARD));
        }
        out
    }

    fn from_tokens(id: ClusterId, tokens: &[&str]) -> Self {
        Cluster {
            id,
            tokens: tokens
                .iter()
                .map(|t| (*t != WILDCARD).then(|| Box::<str>::from(*t)))
                .collect(),
            size: 1,
        }
    }

    /// The template as one string: tokens joined by a space (no token holds
    /// one), the wildcard as `<*>` (which [`Cluster::from_template`] reads
    /// back as the wildcard, as a line's `<*>` token is).
    fn template_string(&self) -> Box<str> {
        let mut out = String::new();
        for (i, token) in self.tokens.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(token.as_deref().unwrap_or(WILDCARD));
        }
        out.into_boxed_str()
    }

    /// A cluster of size 1 from [`Cluster::template_string`].
    fn from_template(id: ClusterId, template: &str) -> Self {
        let tokens: Vec<&str> = if template.is_empty() {
            Vec::new()
        } else {
            template.split(' ').collect()
        };
        Cluster::from_tokens(id, &tokens)
    }

    /// drain3's `get_seq_distance`: (similarity, wildcard count).
    fn similarity(&self, tokens: &[&str]) -> (f64, usize) {
        if self.tokens.is_empty() {
            return (1.0, 0);
        }
        let mut same = 0usize;
        let mut wildcards = 0usize;
        for (template, token) in self.tokens.iter().zip(tokens) {
            match template {
                None => wildcards += 1,
                Some(text) if **text == **token => same += 1,
                Some(_) => {}
            }
        }
        (same as f64 / self.tokens.len() as f64, wildcards)
    }

    /// drain3's `create_template`, in place; whether anything changed.
    fn merge(&mut self, tokens: &[&str]) -> bool {
        let mut changed = false;
        for (template, token) in self.tokens.iter_mut().zip(tokens) {
            if let Some(text) = template
                && **text != **token
            {
                *template = None;
                changed = true;
            }
        }
        changed
    }
}

/// The result of [`Drain::add`].
#[derive(Debug, Clone, Copy)]
pub struct Added<'a> {
    pub cluster: &'a Cluster,
    pub change: Change,
}

/// The engine.
#[derive(Debug, Clone)]
pub struct Drain {
    config: DrainConfig,
    max_node_depth: usize,
    tree: Tree,
    clusters: FxHashMap<ClusterId, Cluster>,
    /// Recency of live clusters, when capped.
    recency: Option<lru::LruCache<ClusterId, ()>>,
    /// Evicted templates, searchable like the live tree.
    graveyard: Graveyard,
    next_id: ClusterId,
    /// Reused buffer for extra-delimiter replacement.
    scratch: String,
    /// Reused token vector (its allocation, emptied between lines).
    token_buffer: Vec<&'static str>,
    /// Constant tokens of the live clusters by leaf, so a crowded leaf is
    /// not scanned (derived from the tree, so never stored).
    index: index::LeafIndex,
    /// Reused candidate buffer for the index.
    candidates: Vec<ClusterId>,
    /// Leaves with more clusters than this use the index.
    scan_max: usize,
    /// Bumped by every change to the clusters or the tree (anything but a
    /// plain match), so `recent` knows what is still valid.
    generation: u64,
    /// Lines that matched unchanged, by generation.
    recent: recent::Recent,
    /// `recent` is consulted (off only to compare with the full path).
    use_recent: bool,
}

/// Python's `str.split()` separators: Unicode whitespace plus the ASCII
/// information separators \x1c–\x1f (drain3 tokenizes with `split()`).
fn is_python_whitespace(c: char) -> bool {
    if c.is_ascii() {
        matches!(c, ' ' | '\t'..='\r' | '\x1c'..='\x1f')
    } else {
        c.is_whitespace()
    }
}

/// [`is_python_whitespace`]'s split of an ASCII `content` into `tokens`.
fn split_ascii_python_whitespace<'a>(content: &'a str, tokens: &mut Vec<&'a str>) {
    let mut start = None;
    for (i, &b) in content.as_bytes().iter().enumerate() {
        let space = matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f);
        match (space, start) {
            (true, Some(from)) => {
                tokens.push(&content[from..i]);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(from) = start {
        tokens.push(&content[from..]);
    }
}

/// Empties `tokens` and gives back its allocation with a `'static` element
/// type, so the next line can reuse it (in-place collect keeps the buffer).
fn recycle(mut tokens: Vec<&str>) -> Vec<&'static str> {
    tokens.clear();
    tokens.into_iter().map(|_| "").collect()
}

/// Evicted templates, kept compact: each as one string (its tokens joined
/// by a space, which no token holds; the wildcard as `<*>`, which a token
/// becomes anyway), found through a hash of its routing signature (token
/// count and routed leading tokens, as the live tree routes them) instead of
/// a tree of its own. About a fifth of a whole cluster in a tree.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Graveyard {
    templates: FxHashMap<ClusterId, Box<str>>,
    /// Buried ids by routing signature (a hash: a collision only adds a
    /// candidate, which similarity then judges).
    index: FxHashMap<u64, Vec<ClusterId>>,
    /// Burial order, oldest first, for the graveyard's own cap (may hold ids
    /// revived since; compacted when it grows past twice the graveyard).
    order: std::collections::VecDeque<ClusterId>,
}

/// Leading tokens a signature covers at most (the tree's depth, capped so a
/// lookup tries at most 2^8 signatures).
const MAX_SIGNATURE_TOKENS: usize = 8;

/// The routing signature of a template or line: token count and the first
/// routed tokens, hashed; `routed` says, per position, which token a
/// template routes by.
fn signature<'a>(count: usize, routed: impl Iterator<Item = &'a str>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    count.hash(&mut hasher);
    for token in routed {
        token.hash(&mut hasher);
    }
    hasher.finish()
}

/// Positions of a template's routing signature (as the tree routes).
fn signature_len(count: usize, max_node_depth: usize) -> usize {
    count
        .min(max_node_depth)
        .saturating_sub(1)
        .min(MAX_SIGNATURE_TOKENS)
}

impl Drain {
    pub fn new(config: DrainConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let recency = config
            .max_clusters
            .and_then(NonZeroUsize::new)
            .map(|_| lru::LruCache::unbounded());
        Ok(Drain {
            max_node_depth: config.depth - 2,
            index: index::LeafIndex::default(),
            candidates: Vec::new(),
            scan_max: index::SCAN_MAX,
            generation: 0,
            recent: recent::Recent::default(),
            use_recent: true,
            config,
            tree: Tree::default(),
            clusters: FxHashMap::default(),
            recency,
            graveyard: Graveyard::default(),
            next_id: 1,
            scratch: String::new(),
            token_buffer: Vec::new(),
        })
    }

    pub fn config(&self) -> &DrainConfig {
        &self.config
    }

    /// Turns the leaf index off (every leaf scanned, as drain3 does) or on
    /// (the default). Both give the same answers; this is for benchmarks and
    /// equivalence tests.
    pub fn set_leaf_index(&mut self, enabled: bool) {
        self.scan_max = if enabled { index::SCAN_MAX } else { usize::MAX };
    }

    /// Turns the memory of recently matched lines off or on (the default).
    /// Both give the same answers; this is for benchmarks and equivalence
    /// tests.
    pub fn set_recent_lines(&mut self, enabled: bool) {
        self.use_recent = enabled;
    }

    /// Live clusters.
    pub fn clusters(&self) -> impl Iterator<Item = &Cluster> {
        self.clusters.values()
    }

    pub fn cluster(&self, id: ClusterId) -> Option<&Cluster> {
        self.clusters.get(&id)
    }

    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Evicted templates remembered in the graveyard.
    pub fn evicted_count(&self) -> usize {
        self.graveyard.templates.len()
    }

    /// Adds one (already masked) log line.
    pub fn add(&mut self, line: &str) -> Added<'_> {
        if self.use_recent
            && let Some(id) = self.recent.get(line, self.generation)
            && let Some(cluster) = self.clusters.get_mut(&id)
        {
            cluster.size += 1;
            if let Some(recency) = &mut self.recency {
                recency.promote(&id);
            }
            return Added {
                cluster: &self.clusters[&id],
                change: Change::Matched,
            };
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        let content = if self.config.extra_delimiters.is_empty() {
            line.trim()
        } else {
            scratch.clear();
            scratch.push_str(line.trim());
            for delimiter in &self.config.extra_delimiters {
                if scratch.contains(delimiter.as_str()) {
                    scratch = scratch.replace(delimiter.as_str(), " ");
                }
            }
            scratch.as_str()
        };
        let mut tokens: Vec<&str> = std::mem::take(&mut self.token_buffer);
        if content.is_ascii() {
            // The same split, a byte at a time (no char decoding).
            split_ascii_python_whitespace(content, &mut tokens);
        } else {
            tokens.extend(
                content
                    .split(is_python_whitespace)
                    .filter(|t| !t.is_empty()),
            );
        }
        let (id, change) = self.add_tokens(&tokens);
        self.token_buffer = recycle(tokens);
        self.scratch = scratch;
        if change == Change::Matched {
            self.recent.put(line, self.generation, id);
        } else {
            self.generation += 1;
        }
        Added {
            cluster: &self.clusters[&id],
            change,
        }
    }

    fn add_tokens(&mut self, tokens: &[&str]) -> (ClusterId, Change) {
        if let Some(id) = self.best_live_match(tokens)
            && let Some(cluster) = self.clusters.get_mut(&id)
        {
            for (position, (template, token)) in cluster.tokens.iter().zip(tokens).enumerate() {
                if let Some(text) = template
                    && **text != **token
                {
                    self.index.remove_posting(id, position, text);
                }
            }
            let changed = cluster.merge(tokens);
            cluster.size += 1;
            if let Some(recency) = &mut self.recency {
                recency.promote(&id);
            }
            return (
                id,
                if changed {
                    Change::Changed
                } else {
                    Change::Matched
                },
            );
        }
        if let Some(id) = self.graveyard_match(tokens)
            && let Some(mut cluster) = self.graveyard.exhume(id, &self.config, self.max_node_depth)
        {
            cluster.merge(tokens);
            cluster.size = 1;
            self.insert_live(cluster);
            return (id, Change::Revived);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.insert_live(Cluster::from_tokens(id, tokens));
        (id, Change::Created)
    }

    /// drain3's `tree_search` + `fast_match` over live clusters.
    fn best_live_match(&mut self, tokens: &[&str]) -> Option<ClusterId> {
        let leaf = self.tree.leaf_for(tokens, self.max_node_depth)?;
        if tokens.is_empty() {
            // The empty template, if live (leaves hold live ids only).
            return self.tree.nodes[leaf as usize].cluster_ids.first().copied();
        }
        let in_leaf = &self.tree.nodes[leaf as usize].cluster_ids;
        if in_leaf.len() > self.scan_max {
            let mut candidates = std::mem::take(&mut self.candidates);
            if self
                .index
                .candidates(leaf, tokens, self.config.sim_th, &mut candidates)
            {
                let best = best_of(
                    candidates.iter().filter_map(|id| self.clusters.get(id)),
                    tokens,
                    self.config.sim_th,
                );
                self.candidates = candidates;
                return best;
            }
            self.candidates = candidates;
        }
        best_of(
            in_leaf.iter().filter_map(|id| self.clusters.get(id)),
            tokens,
            self.config.sim_th,
        )
    }

    fn graveyard_match(&self, tokens: &[&str]) -> Option<ClusterId> {
        if self.graveyard.templates.is_empty() {
            return None;
        }
        // Every signature a template this line could match may have: per
        // leading position the line's token or the wildcard.
        let positions = signature_len(tokens.len(), self.max_node_depth);
        let mut candidates = Vec::new();
        for choice in 0u32..(1 << positions) {
            let wildcard_at = |i: usize| choice & (1 << i) != 0;
            if (0..positions).any(|i| wildcard_at(i) && tokens[i] == WILDCARD) {
                continue; // the same signature as with the token itself
            }
            let routed = (0..positions).map(|i| if wildcard_at(i) { WILDCARD } else { tokens[i] });
            if let Some(ids) = self.graveyard.index.get(&signature(tokens.len(), routed)) {
                candidates.extend(ids.iter().filter_map(|id| {
                    let template = self.graveyard.templates.get(id)?;
                    Some(Cluster::from_template(*id, template))
                }));
            }
        }
        best_of(candidates.iter(), tokens, self.config.sim_th)
    }

    /// Rebuilds the leaf index from the tree (after a restore): each leaf's
    /// live clusters in its order. Snapshots of earlier versions may list
    /// evicted ids in a leaf, or a revived cluster in its old leaf too:
    /// those are dropped (a cluster stays in the first leaf found).
    fn rebuild_index(&mut self) {
        let mut index = index::LeafIndex::default();
        let mut placed = rustc_hash::FxHashSet::default();
        let clusters = &self.clusters;
        for (leaf, node) in self.tree.nodes.iter_mut().enumerate() {
            node.cluster_ids.retain(|id| match clusters.get(id) {
                Some(cluster) if placed.insert(*id) => {
                    index.insert(cluster, leaf as tree::NodeId);
                    true
                }
                _ => false,
            });
        }
        self.index = index;
    }

    fn insert_live(&mut self, cluster: Cluster) {
        let id = cluster.id;
        let routed: Vec<Option<&str>> = cluster.tokens.iter().map(|t| t.as_deref()).collect();
        let leaf = self.tree.insert(
            &routed,
            id,
            self.max_node_depth,
            self.config.max_children,
            self.config.parametrize_numeric_tokens,
        );
        drop(routed);
        self.index.insert(&cluster, leaf);
        self.clusters.insert(id, cluster);
        if let Some(recency) = &mut self.recency {
            recency.put(id, ());
            let cap = self.config.max_clusters.unwrap_or(usize::MAX);
            while self.clusters.len() > cap {
                let Some((evicted, ())) = recency.pop_lru() else {
                    break;
                };
                if let Some(cluster) = self.clusters.remove(&evicted) {
                    if let Some(leaf) = self.index.leaf_of(evicted) {
                        self.tree.forget(leaf, evicted);
                    }
                    self.index.remove(&cluster);
                    self.graveyard
                        .bury(cluster, &self.config, self.max_node_depth);
                }
            }
        }
    }
}

/// drain3's `fast_match`: highest similarity, ties to the most wildcards,
/// first in leaf order; `None` below `sim_th`.
fn best_of<'a>(
    candidates: impl Iterator<Item = &'a Cluster>,
    tokens: &[&str],
    sim_th: f64,
) -> Option<ClusterId> {
    let mut best: Option<(f64, usize, ClusterId)> = None;
    for cluster in candidates {
        if cluster.tokens.len() != tokens.len() {
            continue;
        }
        let (sim, wildcards) = cluster.similarity(tokens);
        let better = match best {
            None => true,
            Some((best_sim, best_wildcards, _)) => {
                sim > best_sim || (sim == best_sim && wildcards > best_wildcards)
            }
        };
        if better {
            best = Some((sim, wildcards, cluster.id));
        }
    }
    best.filter(|(sim, _, _)| *sim >= sim_th)
        .map(|(_, _, id)| id)
}

impl Graveyard {
    /// The signature `template` is indexed under.
    fn signature_of(template: &Cluster, config: &DrainConfig, max_node_depth: usize) -> u64 {
        let positions = signature_len(template.tokens.len(), max_node_depth);
        // Routed as the tree routes a new template: wildcards, and numbers
        // when parametrized, go to the wildcard.
        let routed = template.tokens[..positions]
            .iter()
            .map(|token| match token {
                Some(text) if !(config.parametrize_numeric_tokens && tree::has_digit(text)) => {
                    &**text
                }
                _ => WILDCARD,
            });
        signature(template.tokens.len(), routed)
    }

    fn bury(&mut self, cluster: Cluster, config: &DrainConfig, max_node_depth: usize) {
        let id = cluster.id;
        let key = Self::signature_of(&cluster, config, max_node_depth);
        self.index.entry(key).or_default().push(id);
        self.templates.insert(id, cluster.template_string());
        self.order.push_back(id);
        while self.templates.len() > config.max_graveyard {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.exhume(oldest, config, max_node_depth);
        }
        if self.order.len() > 2 * self.templates.len() + 1024 {
            let templates = &self.templates;
            self.order.retain(|id| templates.contains_key(id));
        }
    }

    /// Takes buried `id` out (to revive it, or past the cap).
    fn exhume(
        &mut self,
        id: ClusterId,
        config: &DrainConfig,
        max_node_depth: usize,
    ) -> Option<Cluster> {
        let template = self.templates.remove(&id)?;
        let cluster = Cluster::from_template(id, &template);
        let key = Self::signature_of(&cluster, config, max_node_depth);
        if let Some(ids) = self.index.get_mut(&key) {
            ids.retain(|existing| *existing != id);
            if ids.is_empty() {
                self.index.remove(&key);
            }
        }
        Some(cluster)
    }
}

#[cfg(test)]
mod tests;
