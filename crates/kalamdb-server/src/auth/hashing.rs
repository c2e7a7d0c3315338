//! Bounds on password checking. Argon2id takes about 19 MiB and tens of
//! milliseconds per hash, so unbounded concurrent logins (even for users
//! that do not exist) would take all the memory. And the lockout must hold
//! under concurrency: the attempts for one user are checked one at a time,
//! each seeing the failures counted before it, so no more than the allowed
//! number of guesses is ever evaluated.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// Logins that may wait for a hash slot; beyond them a login is refused
/// at once (503), so a flood cannot pile up without bound.
const MAX_WAITING: usize = 64;

pub struct HashGate {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// One lock per user name with an attempt in progress.
    users: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while one attempt for a user is checked; the next waits.
pub struct UserTurn {
    name: String,
    gate: Arc<HashGate>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl Drop for UserTurn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut users = self.gate.users.lock();
        // Forget the lock once nobody else holds or waits for it.
        if users
            .get(&self.name)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            users.remove(&self.name);
        }
    }
}

impl HashGate {
    pub fn new(concurrent_hashes: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(concurrent_hashes.max(1))),
            waiting: AtomicUsize::new(0),
            users: Mutex::new(HashMap::new()),
        })
    }

    /// Waits until no other attempt for `name` is being checked.
    pub async fn user_turn(self: &Arc<Self>, name: &str) -> UserTurn {
        let lock = self
            .users
            .lock()
            .entry(name.to_string())
            .or_default()
            .clone();
        let guard = lock.lock_owned().await;
        UserTurn {
            name: name.to_string(),
            gate: self.clone(),
            guard: Some(guard),
        }
    }

    /// A slot to compute one hash in, or `None` when too many logins are
    /// waiting already.
    pub async fn hash_slot(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let permit = self.slots.clone().acquire_owned().await.ok();
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        permit
    }

    /// User names with an attempt in progress (for tests of the clean-up).
    pub fn users_in_progress(&self) -> usize {
        self.users.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_of_one_user_are_serial_and_forgotten_after() {
        let gate = HashGate::new(1);
        let first = gate.user_turn("a").await;
        let gate2 = gate.clone();
        let second = tokio::spawn(async move {
            let _turn = gate2.user_turn("a").await;
        });
        // Another user is not held up.
        drop(gate.user_turn("b").await);
        tokio::task::yield_now().await;
        assert!(!second.is_finished());
        drop(first);
        second.await.unwrap();
        assert_eq!(gate.users_in_progress(), 0);
    }

    #[tokio::test]
    async fn at_most_the_waiting_bound_waits_for_a_slot() {
        let gate = HashGate::new(1);
        let held = gate.hash_slot().await.unwrap();
        let mut waiters = Vec::new();
        for _ in 0..MAX_WAITING {
            let gate = gate.clone();
            waiters.push(tokio::spawn(
                async move { gate.hash_slot().await.is_some() },
            ));
        }
        while gate.waiting.load(Ordering::SeqCst) < MAX_WAITING {
            tokio::task::yield_now().await;
        }
        assert!(gate.hash_slot().await.is_none(), "one too many is refused");
        drop(held);
        for w in waiters {
            assert!(w.await.unwrap());
        }
    }
}
