//! RocksDB compactions of the key ranges flushes emptied, run one at a time
//! on a blocking thread after the flush has finished.
//!
//! A flush that removed many hot versions of a scope leaves them as
//! tombstones until RocksDB compacts their range; seeks there step over
//! them meanwhile. Compacting the range at once cost a large flush about a
//! third of its time, spent after its work was committed, so the flush
//! hands the range over and returns. Ranges asked for twice before their
//! turn are compacted once; past [`MAX_WAITING`] ranges a request is
//! dropped, and RocksDB's own compactions get to the range in time.

use super::tasks::TaskCounter;
use kalamdb_store::HotStore;
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::runtime::Handle;
use tracing::debug;

/// Ranges waiting for their compaction, at most.
const MAX_WAITING: usize = 4096;

#[derive(Debug, Default)]
pub struct Tidier {
    /// Ranges (key prefixes) to compact, and whether a worker is draining
    /// them.
    waiting: Mutex<(BTreeSet<Vec<u8>>, bool)>,
    running: Arc<TaskCounter>,
}

impl Tidier {
    /// Queues the range under `prefix`; starts the worker on `handle`'s
    /// blocking threads unless it runs already.
    pub fn request(self: &Arc<Self>, store: &Arc<HotStore>, handle: &Handle, prefix: &[u8]) {
        if !self.admit(prefix) {
            return;
        }
        let guard = self.running.enter();
        let this = self.clone();
        let store = store.clone();
        handle.spawn_blocking(move || {
            let _running = guard;
            loop {
                let next = {
                    let mut waiting = this.waiting.lock();
                    match waiting.0.pop_first() {
                        Some(prefix) => prefix,
                        None => {
                            waiting.1 = false;
                            return;
                        }
                    }
                };
                store.compact_rows(&next);
            }
        });
    }

    /// Queues `prefix`; whether a worker must be started for it (none is
    /// running).
    fn admit(&self, prefix: &[u8]) -> bool {
        let mut waiting = self.waiting.lock();
        if waiting.0.len() >= MAX_WAITING {
            debug!("range compaction queue full; left to RocksDB");
            return false;
        }
        waiting.0.insert(prefix.to_vec());
        !std::mem::replace(&mut waiting.1, true)
    }

    /// Waits until every range asked for is compacted (the store is about
    /// to close).
    pub async fn wait_idle(&self) {
        self.running.wait_idle().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_worker_at_a_time_and_no_more_than_the_bound_waits() {
        let tidier = Tidier::default();
        assert!(
            tidier.admit(b"scope-0"),
            "the first request starts the worker"
        );
        assert!(!tidier.admit(b"scope-0"), "a worker is running");
        for i in 1..MAX_WAITING + 100 {
            assert!(!tidier.admit(format!("scope-{i}").as_bytes()));
        }
        let waiting = tidier.waiting.lock();
        assert_eq!(
            waiting.0.len(),
            MAX_WAITING,
            "past the bound, left to RocksDB"
        );
        assert!(
            waiting.0.contains(b"scope-0".as_slice()),
            "asked twice, queued once"
        );
    }
}
