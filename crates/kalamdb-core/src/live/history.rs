//! How far back the change log reaches: its floor, raised as changes age
//! past the retention or the log outgrows its size bound.

use super::LiveConfig;
use kalamdb_store::{HotStore, StoreError};
use parking_lot::Mutex;
use std::collections::VecDeque;

/// `(time, last _seq)` samples: the floor for an age is the last `_seq` of
/// the newest sample at least that old.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<(i64, u64)>>,
    /// The highest floor computed so far (samples that gave it are gone,
    /// and a pass may not have been due yet).
    target: Mutex<u64>,
    /// When the log was last trimmed (a pass visits every scope).
    trimmed_at: Mutex<Option<i64>>,
}

/// Samples taken per retention period: the floor trails the retention by
/// at most 1/1024 of it, and the samples never need more than about that
/// many entries.
const SAMPLES_PER_RETENTION: i64 = 1024;
/// A bound on the samples whatever the clock does.
const MAX_SAMPLES: usize = 4 * SAMPLES_PER_RETENTION as usize;
/// Trimming passes at most this often (sooner for a shorter retention).
const TRIM_EVERY_MICROS: i64 = 60_000_000;

impl History {
    /// The floor the log should have now (never below the current one).
    pub fn floor(&self, store: &HotStore, now_micros: i64, config: &LiveConfig) -> u64 {
        let last = store.last_seq();
        let current = store.changes_floor();
        let retention = config.history_retention.as_micros() as i64;
        let mut samples = self.samples.lock();
        let spacing = (retention / SAMPLES_PER_RETENTION).max(1);
        if samples
            .back()
            .is_none_or(|&(at, _)| now_micros - at >= spacing)
        {
            samples.push_back((now_micros, last));
        }
        let cutoff = now_micros - retention;
        let mut target = self.target.lock();
        let mut floor = current.max(*target);
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
        *target = floor.min(last);
        *target
    }

    /// Raises the floor and deletes what is below it. Blocks.
    pub fn trim(
        &self,
        store: &HotStore,
        now_micros: i64,
        config: &LiveConfig,
    ) -> Result<u64, StoreError> {
        let floor = self.floor(store, now_micros, config);
        // A pass visits every scope: at most once a minute (or once per
        // retention when that is shorter).
        let every = TRIM_EVERY_MICROS.min(config.history_retention.as_micros() as i64);
        let mut trimmed_at = self.trimmed_at.lock();
        let due = trimmed_at.is_none_or(|at| now_micros - at >= every);
        if due && floor > store.changes_floor() {
            store.trim_changes(floor)?;
            *trimmed_at = Some(now_micros);
        }
        Ok(store.changes_floor())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_store::{ChangeKind, RowChange, RowVersion, ScopeKey, StoreOptions};
    use std::time::Duration;

    const SECOND: i64 = 1_000_000;

    fn log_one(store: &HotStore, scope: &ScopeKey) -> u64 {
        let seq = store.next_seqs(1).unwrap();
        let mut batch = store.batch();
        batch.put_change(
            scope,
            &RowChange {
                seq,
                kind: ChangeKind::Insert,
                new: Some(RowVersion {
                    deleted: false,
                    schema_version: 1,
                    values: vec![],
                }),
                old: None,
                old_seq: 0,
            },
        );
        store.write(batch).unwrap();
        seq
    }

    #[test]
    fn the_floor_trails_the_retention_and_never_falls() {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(dir.path(), StoreOptions::default()).unwrap();
        let scope = ScopeKey::new(1, Some("a"));
        let config = LiveConfig {
            history_retention: Duration::from_secs(100),
            ..LiveConfig::default()
        };
        let history = History::default();
        let first = log_one(&store, &scope);
        assert_eq!(history.trim(&store, 0, &config).unwrap(), 0);
        let second = log_one(&store, &scope);
        assert_eq!(
            history.trim(&store, 50 * SECOND, &config).unwrap(),
            0,
            "nothing is 100 s old"
        );
        // At 101 s the sample taken at 0 s (last _seq: the first change) is
        // past the retention: everything up to it may go, nothing after.
        assert_eq!(history.trim(&store, 101 * SECOND, &config).unwrap(), first);
        let left: Vec<u64> = store
            .changes(&scope, 0, u64::MAX, 10)
            .unwrap()
            .iter()
            .map(|c| c.seq)
            .collect();
        assert_eq!(left, vec![second]);
        // Passes at most once a minute: at 150 s the sample of 50 s is old
        // enough, but the last pass was 49 s ago. The floor never falls.
        assert_eq!(history.trim(&store, 150 * SECOND, &config).unwrap(), first);
        assert_eq!(history.trim(&store, 200 * SECOND, &config).unwrap(), second);
        assert_eq!(history.trim(&store, 10 * SECOND, &config).unwrap(), second);
    }

    #[test]
    fn samples_stay_bounded_at_any_tick_rate() {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(dir.path(), StoreOptions::default()).unwrap();
        let config = LiveConfig::default();
        let history = History::default();
        for tick in 0..100_000 {
            history.floor(&store, tick * SECOND / 10, &config);
        }
        let samples = history.samples.lock().len();
        assert!(
            samples <= 200,
            "{samples} samples for 10,000 s at ten ticks a second"
        );
    }
}
