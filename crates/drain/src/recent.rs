//! A small direct-mapped memory of lines that last *matched* a cluster
//! without changing anything, valid while nothing in the engine changed.
//!
//! Once templates settle, most lines (after masking) repeat a line seen
//! before; matching such a line again can only give the same cluster, the
//! same way, as long as no cluster was created, revived, evicted or
//! generalised (the engine's *generation*). Then a hash and one string
//! comparison replace tokenising, routing and the similarity of every
//! candidate. The answer is the full path's, exactly.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;

use crate::ClusterId;

/// Slots (a power of two). Small, because an engine per workload keeps one
/// (about 10 KiB plus the lines held).
const SLOTS: usize = 256;

/// Longest line remembered: longer ones are rare and cost their own hash.
const MAX_LINE: usize = 512;

#[derive(Debug, Clone, Default)]
struct Slot {
    line: String,
    generation: u64,
    id: ClusterId,
}

#[derive(Debug, Clone)]
pub(crate) struct Recent {
    slots: Box<[Slot]>,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            slots: vec![Slot::default(); SLOTS].into_boxed_slice(),
        }
    }
}

fn slot_of(line: &str) -> usize {
    let mut hasher = FxHasher::default();
    line.hash(&mut hasher);
    (hasher.finish() as usize) & (SLOTS - 1)
}

impl Recent {
    /// The cluster `line` matched unchanged in this `generation`, if known.
    pub(crate) fn get(&self, line: &str, generation: u64) -> Option<ClusterId> {
        if line.len() > MAX_LINE {
            return None;
        }
        let slot = &self.slots[slot_of(line)];
        (slot.generation == generation && slot.id != 0 && slot.line == line).then_some(slot.id)
    }

    /// `line` matched `id` without changing anything in `generation`.
    pub(crate) fn put(&mut self, line: &str, generation: u64, id: ClusterId) {
        if line.len() > MAX_LINE {
            return;
        }
        let slot = &mut self.slots[slot_of(line)];
        slot.line.clear();
        slot.line.push_str(line);
        slot.generation = generation;
        slot.id = id;
    }
}
