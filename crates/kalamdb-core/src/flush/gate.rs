//! One mover per scope at a time: a flush and a compaction of the same
//! scope never run at once (../shared/DESIGN.md, "Compaction"), while
//! other scopes of the same table move freely. A flush enters each scope
//! it writes for the time of that scope's file and commit, a compaction
//! for the time of its merge and commit; whoever comes second waits.

use kalamdb_store::ScopeKey;
use parking_lot::{Condvar, Mutex};
use std::collections::HashSet;

/// The scopes being moved now.
#[derive(Debug, Default)]
pub struct ScopeGate {
    busy: Mutex<HashSet<Vec<u8>>>,
    freed: Condvar,
}

/// Held while one scope is being moved; frees it when dropped.
#[derive(Debug)]
pub struct ScopeTurn<'a> {
    gate: &'a ScopeGate,
    scope: Vec<u8>,
}

impl ScopeGate {
    /// Waits until nobody moves `scope`, then takes it. Blocks: for the
    /// flush and compaction threads only.
    pub fn enter(&self, scope: &ScopeKey) -> ScopeTurn<'_> {
        let key = scope.as_bytes().to_vec();
        let mut busy = self.busy.lock();
        while busy.contains(&key) {
            self.freed.wait(&mut busy);
        }
        busy.insert(key.clone());
        ScopeTurn {
            gate: self,
            scope: key,
        }
    }

    /// Whether someone moves `scope` now.
    #[cfg(test)]
    pub fn is_busy(&self, scope: &ScopeKey) -> bool {
        self.busy.lock().contains(scope.as_bytes())
    }
}

impl Drop for ScopeTurn<'_> {
    fn drop(&mut self) {
        self.gate.busy.lock().remove(&self.scope);
        self.gate.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_second_mover_of_a_scope_waits_and_others_do_not() {
        let gate = Arc::new(ScopeGate::default());
        let alice = ScopeKey::new(7, Some("alice"));
        let bob = ScopeKey::new(7, Some("bob"));
        let first = gate.enter(&alice);
        // Another scope of the same table is free.
        drop(gate.enter(&bob));
        let entered = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (gate, entered, alice) = (gate.clone(), entered.clone(), alice.clone());
            std::thread::spawn(move || {
                tx.send(()).unwrap();
                let _turn = gate.enter(&alice);
                entered.store(true, Ordering::SeqCst);
            })
        };
        rx.recv().unwrap();
        assert!(gate.is_busy(&alice));
        assert!(!entered.load(Ordering::SeqCst));
        drop(first);
        waiter.join().unwrap();
        assert!(entered.load(Ordering::SeqCst));
        assert!(!gate.is_busy(&alice));
    }
}
