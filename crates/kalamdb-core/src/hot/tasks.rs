//! Counting blocking tasks (scans) that still use the engine, so closing it
//! can wait for them instead of leaving RocksDB open behind their backs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct TaskCounter {
    running: AtomicUsize,
    idle: Notify,
}

impl TaskCounter {
    pub fn enter(self: &Arc<Self>) -> TaskGuard {
        self.running.fetch_add(1, Ordering::SeqCst);
        TaskGuard(self.clone())
    }

    /// Waits until no task is running.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.running.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Held by a running task; dropping it marks the task done.
pub struct TaskGuard(Arc<TaskCounter>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
