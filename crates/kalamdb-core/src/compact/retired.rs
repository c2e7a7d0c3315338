//! Files a compaction replaced, waiting for their last readers.
//!
//! A compaction's commit records each replaced file as to be removed
//! (the same `meta` record an unfinished flush's file has, so start-up
//! removes what a crash left), and queues it here under the read-pin
//! generation that ended with the commit. A sweep removes the files of
//! every generation no reader holds any more: at the end of each
//! compaction, and at every scheduler tick; none while a backup runs.

use crate::cold::{pending_key, Storages};
use crate::error::Result;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::object_store::{Error as StoreError, ObjectStoreExt};
use kalamdb_store::HotStore;
use parking_lot::Mutex;
use tracing::{debug, warn};

#[derive(Debug, Default)]
pub struct Retired {
    queue: Mutex<Vec<RetiredFiles>>,
}

#[derive(Debug, Clone)]
struct RetiredFiles {
    /// Readers pinned in this generation or before may still read them.
    generation: u64,
    storage: String,
    paths: Vec<Path>,
}

impl Retired {
    pub fn push(&self, generation: u64, storage: &str, paths: Vec<Path>) {
        if paths.is_empty() {
            return;
        }
        self.queue.lock().push(RetiredFiles {
            generation,
            storage: storage.to_string(),
            paths,
        });
    }

    /// Files waiting for readers.
    pub fn waiting(&self) -> usize {
        self.queue.lock().iter().map(|r| r.paths.len()).sum()
    }

    /// Removes the files no reader can need any more; returns how many.
    /// A file that cannot be removed now stays queued (and recorded).
    /// `stop_after_first` is a test fail point: the sweep stops after one
    /// file, as a crash between two deletes would.
    pub async fn sweep(
        &self,
        store: &HotStore,
        storages: &Storages,
        stop_after_first: bool,
    ) -> Result<usize> {
        let ready: Vec<RetiredFiles> = {
            let mut queue = self.queue.lock();
            let (ready, waiting) = queue
                .drain(..)
                .partition(|r| store.pins().released(r.generation));
            *queue = waiting;
            ready
        };
        if ready.is_empty() {
            return Ok(0);
        }
        // A backup in progress keeps every file it may copy; the files
        // wait for a later sweep rather than the sweep for the backup (the
        // scheduler's tick must not stall behind one).
        let Some(_removing) = storages.try_removing_files() else {
            self.queue.lock().extend(ready);
            return Ok(0);
        };
        let mut removed = 0;
        let mut left = Vec::new();
        for mut files in ready {
            let cold = match storages.open(&files.storage) {
                Ok(cold) => cold,
                Err(e) => {
                    warn!(storage = %files.storage, error = %e, "cannot open a storage to remove replaced files");
                    left.push(files);
                    continue;
                }
            };
            let mut kept = Vec::new();
            for path in files.paths.drain(..) {
                if stop_after_first && removed == 1 {
                    kept.push(path);
                    continue;
                }
                match cold.store.delete(&path).await {
                    Ok(()) | Err(StoreError::NotFound { .. }) => {
                        let mut batch = store.batch();
                        batch.delete_meta(&pending_key(&files.storage, &path));
                        store.write(batch)?;
                        removed += 1;
                        debug!(file = %path, "removed a file a compaction replaced");
                    }
                    Err(e) => {
                        warn!(file = %path, error = %e, "cannot remove a replaced file yet");
                        kept.push(path);
                    }
                }
            }
            if !kept.is_empty() {
                files.paths = kept;
                left.push(files);
            }
        }
        self.queue.lock().extend(left);
        if stop_after_first {
            return Err(crate::error::CoreError::FailPoint(
                "between the removals of replaced files",
            ));
        }
        Ok(removed)
    }
}
