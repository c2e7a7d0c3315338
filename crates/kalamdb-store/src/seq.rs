//! `_seq` allocation: strictly increasing across restarts, without a synced
//! write per row. The store persists a reservation limit; numbers below it
//! are handed out from memory. After a crash the next start begins at the
//! persisted limit, so a number is never reused (gaps are fine).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many numbers one synced reservation covers.
pub const RESERVATION_BLOCK: u64 = 1 << 20;

#[derive(Debug)]
pub struct SeqAllocator {
    next: AtomicU64,
    limit: AtomicU64,
    extend_lock: Mutex<()>,
}

impl SeqAllocator {
    /// Starts handing out numbers at `persisted_limit` (the limit found on disk).
    pub fn new(persisted_limit: u64) -> Self {
        let start = persisted_limit.max(1);
        Self {
            next: AtomicU64::new(start),
            limit: AtomicU64::new(start),
            extend_lock: Mutex::new(()),
        }
    }

    /// Returns `n` consecutive numbers (the first one). `persist` must durably
    /// record a new limit before returning Ok.
    pub fn allocate<E>(
        &self,
        n: u64,
        persist: impl FnOnce(u64) -> Result<(), E>,
    ) -> Result<u64, E> {
        let first = self.next.fetch_add(n, Ordering::SeqCst);
        let end = first + n;
        if end <= self.limit.load(Ordering::SeqCst) {
            return Ok(first);
        }
        let _guard = self.extend_lock.lock();
        let limit = self.limit.load(Ordering::SeqCst);
        if end <= limit {
            return Ok(first);
        }
        let new_limit = end.max(limit) + RESERVATION_BLOCK;
        persist(new_limit)?;
        self.limit.store(new_limit, Ordering::SeqCst);
        Ok(first)
    }

    /// The highest number handed out so far (or the start minus one).
    pub fn last_allocated(&self) -> u64 {
        self.next.load(Ordering::SeqCst) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_only_when_a_block_runs_out() {
        let alloc = SeqAllocator::new(0);
        let mut persisted = Vec::new();
        let first = alloc
            .allocate(1, |l| {
                persisted.push(l);
                Ok::<_, ()>(())
            })
            .unwrap();
        assert_eq!(first, 1);
        for _ in 0..1000 {
            alloc
                .allocate(1, |_| -> Result<(), ()> { panic!("no reservation needed") })
                .unwrap();
        }
        assert_eq!(persisted, vec![2 + RESERVATION_BLOCK]);
        assert_eq!(alloc.last_allocated(), 1001);
    }

    #[test]
    fn restart_continues_above_the_persisted_limit() {
        let alloc = SeqAllocator::new(5_000);
        let n = alloc.allocate(3, |_| Ok::<_, ()>(())).unwrap();
        assert_eq!(n, 5_000);
        assert_eq!(alloc.allocate(1, |_| Ok::<_, ()>(())).unwrap(), 5_003);
    }

    #[test]
    fn failed_persist_is_reported() {
        let alloc = SeqAllocator::new(0);
        assert!(alloc.allocate(1, |_| Err("disk full")).is_err());
    }
}
