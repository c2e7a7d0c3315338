//! How far back the change log reaches: its floor, raised as changes age
//! past the retention or the log outgrows its size bound.

use super::LiveConfig;
use kalamdb_store::{HotStore, StoreError};
use parking_lot::Mutex;
use std::collections::VecDeque;

/// A `(time, last _seq)` sample per tick: the floor for an age is the
/// last `_seq` of the newest sample at least that old.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<(i64, u64)>>,
}

/// Samples kept: at one per tick this spans the retention at any tick
/// length that matters; older ones are merged away.
const MAX_SAMPLES: usize = 4096;

impl History {
    /// The floor the log should have now (never below the current one).
    pub fn floor(&self, store: &HotStore, now_micros: i64, config: &LiveConfig) -> u64 {
        let last = store.last_seq();
        let current = store.changes_floor();
        let mut samples = self.samples.lock();
        samples.push_back((now_micros, last));
        let cutoff = now_micros - config.history_retention.as_micros() as i64;
        let mut floor = current;
        while let Some(&(at, seq)) = samples.front() {
            if at > cutoff {
                break;
            }
            floor = floor.max(seq);
            samples.pop_front();
        }
        while samples.len() > MAX_SAMPLES {
            samples.pop_front();
        }
        drop(samples);
        if store.changes_size() > config.history_max_bytes {
            // Over its size: half of what is left goes.
            floor = floor.max(current + (last.saturating_sub(current)) / 2);
        }
        floor.min(last)
    }

    /// Raises the floor and deletes what is below it. Blocks.
    pub fn trim(
        &self,
        store: &HotStore,
        now_micros: i64,
        config: &LiveConfig,
    ) -> Result<u64, StoreError> {
        let floor = self.floor(store, now_micros, config);
        if floor > store.changes_floor() {
            store.trim_changes(floor)?;
        }
        Ok(store.changes_floor())
    }
}
