//! Splitting work between replicas of a sensor: replica `index` of `count`
//! owns the items (metrics, workloads) whose stable hash mod `count` is
//! `index`. The hash (xxh3) is stable across processes and versions, so every
//! replica agrees without talking to the others.
//!
//! In Kubernetes run the sensor as a StatefulSet and set `count` to its
//! replicas and `index` from the pod's ordinal (`INSPECTOR_SHARD__INDEX` from
//! the `apps.kubernetes.io/pod-index` label through the downward API).

use serde::Deserialize;

/// Which share of the work this replica owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// This replica's index, `0..count`.
    #[serde(default)]
    pub index: u32,
    /// Number of replicas sharing the work.
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// `shard.count must be ≥ 1` and `index < count`.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("shard.count must be at least 1".into());
        }
        if self.index >= self.count {
            return Err(format!(
                "shard.index {} must be below shard.count {}",
                self.index, self.count
            ));
        }
        Ok(())
    }

    /// Whether this replica owns `item`.
    pub fn owns(&self, item: &str) -> bool {
        self.count <= 1
            || xxhash_rust::xxh3::xxh3_64(item.as_bytes()) % u64::from(self.count)
                == u64::from(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_has_exactly_one_owner() {
        let items: Vec<String> = (0..1000).map(|i| format!("metric_{i}")).collect();
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        let mut per_shard = [0usize; 3];
        for item in &items {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(item)).collect();
            assert_eq!(owners.len(), 1, "{item}");
            per_shard[owners[0]] += 1;
        }
        // Roughly even: each gets a fair share.
        assert!(per_shard.iter().all(|&n| n > 250), "{per_shard:?}");
    }

    #[test]
    fn validation() {
        assert!(Shard { index: 0, count: 0 }.validate().is_err());
        assert!(Shard { index: 2, count: 2 }.validate().is_err());
        assert!(Shard::default().validate().is_ok());
        assert!(Shard::default().owns("anything"));
    }
}
