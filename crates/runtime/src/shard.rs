//! Splitting work between replicas of a sensor: replica `index` of `count`
//! owns the items (metrics, workloads) that rendezvous hashing gives it.
//!
//! Rendezvous (highest-random-weight) hashing: every replica scores an item
//! with `xxh3(item, seed = replica index)` and the highest score owns it. The
//! hash is stable across processes and versions, so replicas agree without
//! talking to each other, and a change from `n` to `n + 1` replicas moves only
//! the items the new replica wins, about `1/(n + 1)` of them (`% n` would
//! move almost all of them).
//!
//! Where a replica learns its share is [`ShardConfig`]: fixed in the file
//! (`shard: {index, count}`), or from its own StatefulSet in Kubernetes
//! (`shard: {statefulset: {}}`), which `inspector-membership` watches so that
//! `kubectl scale` is the only step.

use std::time::Duration;

use serde::Deserialize;

/// Which share of the work this replica owns, as currently known.
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

/// Most replicas a sensor may share its work between: ownership costs one
/// hash per replica per item, so an absurd count (a typo, a hostile
/// StatefulSet) must not turn every pass into billions of hashes.
pub const MAX_REPLICAS: u32 = 1024;

impl Shard {
    /// `1 ≤ count ≤ MAX_REPLICAS` and `index < count`.
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("shard.count must be at least 1".into());
        }
        if self.count > MAX_REPLICAS {
            return Err(format!("shard.count must be at most {MAX_REPLICAS}"));
        }
        if self.index >= self.count {
            return Err(format!(
                "shard.index {} must be below shard.count {}",
                self.index, self.count
            ));
        }
        Ok(())
    }

    /// The replica (of `count`) that owns `item`.
    pub fn owner(item: &str, count: u32) -> u32 {
        (0..count.clamp(1, MAX_REPLICAS))
            .max_by_key(|&replica| {
                xxhash_rust::xxh3::xxh3_64_with_seed(item.as_bytes(), u64::from(replica))
            })
            .unwrap_or(0)
    }

    /// Whether this replica owns `item`. A replica whose index is at or past
    /// the count (a pod being scaled away) owns nothing.
    pub fn owns(&self, item: &str) -> bool {
        self.index < self.count && Self::owner(item, self.count) == self.index
    }
}

/// Where a replica learns its share of the work (the `shard:` config field).
///
/// - `shard: {index: 1, count: 3}`: fixed (outside Kubernetes, or by hand).
/// - `shard: {statefulset: {}}`: the replica count is its StatefulSet's
///   `spec.replicas`, read from the Kubernetes API and followed; the index is
///   the pod's ordinal (the number after the last `-` of `POD_NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawShardConfig")]
pub enum ShardConfig {
    Static(Shard),
    StatefulSet(StatefulSetShard),
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig::Static(Shard::default())
    }
}

impl ShardConfig {
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ShardConfig::Static(shard) => shard.validate(),
            ShardConfig::StatefulSet(set) => set.validate(),
        }
    }
}

/// How to find this replica's StatefulSet. Every field has an in-cluster
/// default, so `statefulset: {}` is the usual form.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatefulSetShard {
    /// This pod's name; default `POD_NAME` (downward API). Its ordinal is the
    /// replica index.
    #[serde(default)]
    pub pod: Option<String>,
    /// The StatefulSet's name; default: the pod name without its ordinal.
    #[serde(default)]
    pub name: Option<String>,
    /// Its namespace; default `POD_NAMESPACE`, else the service account's
    /// namespace file.
    #[serde(default)]
    pub namespace: Option<String>,
    /// How often `spec.replicas` is read again.
    #[serde(default = "default_refresh", with = "humantime_serde")]
    pub refresh: Duration,
    /// Kubernetes API URL; default: in-cluster config or kubeconfig.
    #[serde(default)]
    pub api_url: Option<String>,
}

fn default_refresh() -> Duration {
    Duration::from_secs(10)
}

impl StatefulSetShard {
    pub fn validate(&self) -> Result<(), String> {
        if self.refresh.is_zero() || self.refresh > Duration::from_secs(3600) {
            return Err("shard.statefulset.refresh must be within (0, 1h]".into());
        }
        if let Some(url) = &self.api_url
            && url.parse::<axum::http::Uri>().is_err()
        {
            return Err(format!("shard.statefulset.api_url {url:?} is not a URL"));
        }
        Ok(())
    }
}

/// The `shard:` field as written: either `index`/`count` or `statefulset`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShardConfig {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    statefulset: Option<StatefulSetShard>,
}

impl TryFrom<RawShardConfig> for ShardConfig {
    type Error = String;

    fn try_from(raw: RawShardConfig) -> Result<Self, String> {
        match (raw.statefulset, raw.index, raw.count) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(
                "shard: give either index/count or statefulset, not both (the StatefulSet tells both)"
                    .into(),
            ),
            (Some(set), None, None) => Ok(ShardConfig::StatefulSet(set)),
            (None, index, count) => Ok(ShardConfig::Static(Shard {
                index: index.unwrap_or(0),
                count: count.unwrap_or(1),
            })),
        }
    }
}

/// The ordinal of a StatefulSet pod name (`web-2` → 2).
pub fn pod_ordinal(pod: &str) -> Option<u32> {
    let (_, ordinal) = pod.rsplit_once('-')?;
    ordinal.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items() -> Vec<String> {
        (0..3000).map(|i| format!("metric_{i}")).collect()
    }

    #[test]
    fn every_item_has_exactly_one_owner() {
        let items = items();
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        let mut per_shard = [0usize; 3];
        for item in &items {
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(item)).collect();
            assert_eq!(owners.len(), 1, "{item}");
            per_shard[owners[0]] += 1;
        }
        // Roughly even: each gets a fair share of 1000.
        assert!(per_shard.iter().all(|&n| n > 850), "{per_shard:?}");
    }

    #[test]
    fn a_change_of_count_moves_about_one_item_in_n() {
        let items = items();
        for (from, to) in [(1u32, 2u32), (2, 3), (3, 2), (3, 4), (8, 9)] {
            let moved = items
                .iter()
                .filter(|item| Shard::owner(item, from) != Shard::owner(item, to))
                .count() as f64
                / items.len() as f64;
            // Rendezvous moves exactly the items won by (or lost with) the
            // replica that came or went: 1/max(from, to) of them on average.
            let expected = 1.0 / f64::from(from.max(to));
            assert!(
                (moved - expected).abs() < 0.05,
                "{from}→{to}: moved {moved:.3}, expected {expected:.3}"
            );
        }
    }

    #[test]
    fn a_replica_past_the_count_owns_nothing() {
        let gone = Shard { index: 2, count: 2 };
        assert!(items().iter().all(|item| !gone.owns(item)));
    }

    #[test]
    fn validation() {
        assert!(Shard { index: 0, count: 0 }.validate().is_err());
        assert!(Shard { index: 2, count: 2 }.validate().is_err());
        assert!(Shard::default().validate().is_ok());
        assert!(
            Shard {
                index: 0,
                count: MAX_REPLICAS + 1
            }
            .validate()
            .is_err()
        );
        // Even unvalidated, an absurd count costs at most MAX_REPLICAS hashes.
        assert!(Shard::owner("x", u32::MAX) < MAX_REPLICAS);
        assert!(Shard::default().owns("anything"));
    }

    fn parse(yaml: &str) -> Result<ShardConfig, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn config_forms() {
        assert_eq!(
            parse("{index: 1, count: 3}").unwrap(),
            ShardConfig::Static(Shard { index: 1, count: 3 })
        );
        assert_eq!(parse("{}").unwrap(), ShardConfig::default());
        let ShardConfig::StatefulSet(set) = parse("{statefulset: {}}").unwrap() else {
            panic!("not a statefulset shard");
        };
        assert_eq!(set.refresh, Duration::from_secs(10));
        assert!(parse("{statefulset: {}, count: 2}").is_err());
        assert!(parse("{statefulset: {bogus: 1}}").is_err());
    }

    #[test]
    fn ordinals() {
        assert_eq!(pod_ordinal("trend-predictor-2"), Some(2));
        assert_eq!(pod_ordinal("trend-predictor"), None);
        assert_eq!(pod_ordinal("x-y"), None);
    }
}
