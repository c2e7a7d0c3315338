//! The one bridge from blocking code to the async object stores.
//!
//! RocksDB iteration blocks, so scans and flushes run on blocking threads
//! (`spawn_blocking`), and they reach a storage (async: local files, S3)
//! by waiting here on the runtime's handle. That is only allowed on such a
//! thread: on an async worker `Handle::block_on` panics instead of stalling
//! the runtime, which keeps the rule checked.

use std::future::Future;
use tokio::runtime::Handle;

/// Runs `work` on the runtime behind `handle` and waits for it.
pub fn wait<F: Future>(handle: &Handle, work: F) -> F::Output {
    handle.block_on(work)
}
