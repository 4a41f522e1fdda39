//! One Drain state per workload (templates belong to an app, not to a pod),
//! warm-up before reporting, line hygiene, and the snapshot of all of it.
//! No I/O: the service reads lines in and writes snapshot bytes out.

use std::collections::BTreeMap;

use inspector_drain::{Change, Drain, DrainConfig, Masker};
use serde::{Deserialize, Serialize};

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineOrigin {
    pub workload: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// A template never seen before in its workload.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPattern {
    pub cluster_id: u64,
    pub template: String,
    pub example: String,
}

#[derive(Debug)]
struct Workload {
    drain: Drain,
    lines: u64,
}

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MinerSnapshotError {
    #[error("corrupt log-pattern snapshot: {0}")]
    Corrupt(#[from] postcard::Error),
    #[error("workload {workload}: {source}")]
    Workload {
        workload: String,
        #[source]
        source: inspector_drain::SnapshotError,
    },
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    workloads: BTreeMap<String, (u64, Vec<u8>)>,
}

/// All workloads' template state.
#[derive(Debug)]
pub struct Miner {
    config: DrainConfig,
    masker: Masker,
    warmup_lines: u64,
    max_line_bytes: usize,
    workloads: BTreeMap<String, Workload>,
    /// Reused buffer for the masked line.
    masked: String,
}

impl Miner {
    pub fn new(
        config: DrainConfig,
        masker: Masker,
        warmup_lines: u64,
        max_line_bytes: usize,
    ) -> Self {
        Miner {
            config,
            masker,
            warmup_lines,
            max_line_bytes,
            workloads: BTreeMap::new(),
            masked: String::new(),
        }
    }

    /// Learns one line; returns the new pattern when it created a template
    /// after its workload's warm-up. Revived (evicted, then seen again) and
    /// changed templates are not new.
    pub fn learn(&mut self, workload: &str, raw: &str) -> Option<NewPattern> {
        let line = truncate(raw, self.max_line_bytes);
        if line.trim().is_empty() {
            return None;
        }
        if !self.workloads.contains_key(workload) {
            let drain = Drain::new(self.config.clone()).expect("config validated at start");
            self.workloads
                .insert(workload.to_string(), Workload { drain, lines: 0 });
        }
        let state = self.workloads.get_mut(workload).expect("inserted above");
        state.lines += 1;
        let warmed_up = state.lines > self.warmup_lines;
        self.masked.clear();
        self.masker.mask_into(line, &mut self.masked);
        let added = state.drain.add(&self.masked);
        (added.change == Change::Created && warmed_up).then(|| NewPattern {
            cluster_id: added.cluster.id(),
            template: added.cluster.template(),
            example: line.to_string(),
        })
    }

    /// Lines seen and live templates per workload.
    pub fn stats(&self) -> BTreeMap<String, (u64, usize)> {
        self.workloads
            .iter()
            .map(|(name, w)| (name.clone(), (w.lines, w.drain.cluster_count())))
            .collect()
    }

    /// Every workload's state as bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let snapshot = Snapshot {
            version: 1,
            workloads: self
                .workloads
                .iter()
                .map(|(name, w)| (name.clone(), (w.lines, w.drain.snapshot())))
                .collect(),
        };
        postcard::to_allocvec(&snapshot).expect("snapshot serializes")
    }

    /// Restores state saved by [`Miner::snapshot`].
    pub fn restore(&mut self, bytes: &[u8]) -> Result<usize, MinerSnapshotError> {
        let snapshot: Snapshot = postcard::from_bytes(bytes)?;
        for (name, (lines, state)) in snapshot.workloads {
            let drain = Drain::restore(&state).map_err(|source| MinerSnapshotError::Workload {
                workload: name.clone(),
                source,
            })?;
            self.workloads.insert(name, Workload { drain, lines });
        }
        Ok(self.workloads.len())
    }
}

/// `line` cut to at most `max` bytes on a character boundary.
pub fn truncate(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn miner(warmup: u64) -> Miner {
        Miner::new(DrainConfig::recommended(), Masker::builtin(), warmup, 64)
    }

    #[test]
    fn warm_up_then_report_only_new_templates() {
        let mut m = miner(2);
        assert_eq!(m.learn("shop", "GET /cart 200 in 12ms"), None, "warm-up");
        assert_eq!(m.learn("shop", "GET /cart 200 in 15ms"), None, "warm-up");
        assert_eq!(
            m.learn("shop", "GET /cart 200 in 9ms"),
            None,
            "known template"
        );
        let new = m
            .learn("shop", "connection refused to db at 10.0.0.5:5432")
            .unwrap();
        assert_eq!(new.template, "connection refused to db at <IP>");
        assert_eq!(
            m.learn("shop", "connection refused to db at 10.0.0.6:5432"),
            None
        );
        // Another workload has its own state and warm-up.
        assert_eq!(
            m.learn("billing", "connection refused to db at 10.0.0.5:5432"),
            None
        );
    }

    #[test]
    fn long_and_odd_lines_never_crash() {
        let mut m = miner(0);
        let long = "é".repeat(100);
        let new = m.learn("w", &long).unwrap();
        assert!(new.example.len() <= 64);
        assert_eq!(m.learn("w", "   "), None);
    }

    #[test]
    fn snapshot_restores_knowledge() {
        let mut m = miner(0);
        m.learn("shop", "payment declined for order 1");
        let bytes = m.snapshot();
        let mut restored = miner(0);
        assert_eq!(restored.restore(&bytes).unwrap(), 1);
        assert_eq!(restored.learn("shop", "payment declined for order 2"), None);
        assert!(
            restored
                .learn("shop", "totally different message here")
                .is_some()
        );
        assert!(restored.restore(b"garbage").is_err());
    }
}
