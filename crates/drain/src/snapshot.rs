//! Versioned, compact snapshots of the engine's state (postcard), so that a
//! restarted sensor knows every template it knew before, under the same ids.
//!
//! Layout: the magic `DRAIN` + one version byte, then the postcard body. A
//! new layout gets a new version; [`Drain::restore`] reads the versions it
//! knows (1: graveyard as a tree of whole clusters; 2: compact graveyard)
//! and refuses others with a clear error rather than guessing.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::tree::Tree;
use crate::{Cluster, ClusterId, Drain, DrainConfig, Graveyard};

const MAGIC: &[u8; 5] = b"DRAIN";
const VERSION: u8 = 2;

/// Why a snapshot could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Drain snapshot (bad magic)")]
    NotASnapshot,
    #[error("snapshot version {0} is not supported (this build reads version {VERSION})")]
    Version(u8),
    #[error("corrupt snapshot: {0}")]
    Corrupt(#[from] postcard::Error),
    #[error("snapshot config is invalid: {0}")]
    Config(#[from] crate::ConfigError),
}

#[derive(Serialize, Deserialize)]
struct SnapshotV2 {
    config: DrainConfig,
    tree: Tree,
    clusters: FxHashMap<ClusterId, Cluster>,
    /// Live cluster ids, least recently used first (when capped).
    recency: Vec<ClusterId>,
    graveyard: Graveyard,
    next_id: ClusterId,
}

/// Version 1: the same, with the graveyard as whole clusters in a tree.
#[derive(Deserialize)]
struct SnapshotV1 {
    config: DrainConfig,
    tree: Tree,
    clusters: FxHashMap<ClusterId, Cluster>,
    recency: Vec<ClusterId>,
    graveyard: GraveyardV1,
    next_id: ClusterId,
}

#[derive(Deserialize)]
struct GraveyardV1 {
    #[allow(dead_code)] // read to skip it: postcard is not self-describing
    tree: Tree,
    clusters: FxHashMap<ClusterId, Cluster>,
    #[allow(dead_code)]
    leaves: FxHashMap<ClusterId, crate::tree::NodeId>,
    order: std::collections::VecDeque<ClusterId>,
}

impl SnapshotV1 {
    /// The same state in the current layout (the graveyard re-buried in
    /// its order).
    fn upgrade(self) -> SnapshotV2 {
        let max_node_depth = self.config.depth - 2;
        let mut graveyard = Graveyard::default();
        let mut buried = self.graveyard.clusters;
        for id in self.graveyard.order {
            if let Some(cluster) = buried.remove(&id) {
                graveyard.bury(cluster, &self.config, max_node_depth);
            }
        }
        SnapshotV2 {
            config: self.config,
            tree: self.tree,
            clusters: self.clusters,
            recency: self.recency,
            graveyard,
            next_id: self.next_id,
        }
    }
}

impl Drain {
    /// The whole state as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let recency = self
            .recency
            .as_ref()
            .map(|lru| lru.iter().rev().map(|(id, ())| *id).collect())
            .unwrap_or_default();
        let body = SnapshotV2 {
            config: self.config.clone(),
            tree: self.tree.clone(),
            clusters: self.clusters.clone(),
            recency,
            graveyard: self.graveyard.clone(),
            next_id: self.next_id,
        };
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        // Serializing plain data into a Vec cannot fail.
        postcard::to_io(&body, &mut out).expect("snapshot serializes");
        out
    }

    /// Rebuilds an engine from [`Drain::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<Drain, SnapshotError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or(SnapshotError::NotASnapshot)?;
        let (&version, body) = rest.split_first().ok_or(SnapshotError::NotASnapshot)?;
        let state: SnapshotV2 = match version {
            1 => {
                let old: SnapshotV1 = postcard::from_bytes(body)?;
                // Its config must be valid before it is used to re-bury.
                old.config.validate()?;
                old.upgrade()
            }
            VERSION => postcard::from_bytes(body)?,
            other => return Err(SnapshotError::Version(other)),
        };
        let mut drain = Drain::new(state.config)?;
        drain.tree = state.tree;
        drain.clusters = state.clusters;
        if let Some(lru) = &mut drain.recency {
            for id in state.recency {
                lru.put(id, ());
            }
        }
        drain.graveyard = state.graveyard;
        drain.next_id = state.next_id;
        drain.rebuild_index();
        Ok(drain)
    }
}
