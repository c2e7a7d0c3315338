//! Read pins: which readers may still see a manifest state that a commit
//! has replaced.
//!
//! Every snapshot is pinned before RocksDB takes it, in the current
//! generation. A commit that retires files (a compaction replacing a
//! scope's files) then [`ReadPins::advance`]s the generation: a reader
//! pinned after that call took its snapshot after the commit, so it cannot
//! name a retired file; a reader pinned before may, and the retired files
//! stay until [`ReadPins::released`] says every such pin is gone. Pins
//! travel with what a read keeps of its snapshot (a scope's file list),
//! not only with the snapshot itself.
//!
//! Generations change only when files are retired (rarely), so the map of
//! held pins has one or two entries and a pin costs one short lock.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default)]
struct State {
    generation: u64,
    /// Generation -> pins held in it.
    held: BTreeMap<u64, usize>,
}

/// The pins of one store.
#[derive(Debug, Default)]
pub struct ReadPins {
    state: Arc<Mutex<State>>,
}

/// One reader's pin; clones share it, and it is released when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub struct ReadPin {
    _held: Arc<Held>,
}

#[derive(Debug)]
struct Held {
    state: Arc<Mutex<State>>,
    generation: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut state = self.state.lock();
        if let Some(count) = state.held.get_mut(&self.generation) {
            *count -= 1;
            if *count == 0 {
                state.held.remove(&self.generation);
            }
        }
    }
}

impl ReadPins {
    /// A pin in the current generation. Take it before the snapshot.
    pub fn pin(&self) -> ReadPin {
        let generation = {
            let mut state = self.state.lock();
            let generation = state.generation;
            *state.held.entry(generation).or_insert(0) += 1;
            generation
        };
        ReadPin {
            _held: Arc::new(Held {
                state: self.state.clone(),
                generation,
            }),
        }
    }

    /// Starts a new generation after a commit has been written, and returns
    /// the one that ended: readers pinned in it or before may still name
    /// what the commit replaced.
    pub fn advance(&self) -> u64 {
        let mut state = self.state.lock();
        state.generation += 1;
        state.generation - 1
    }

    /// Whether every pin of `generation` and older is gone.
    pub fn released(&self, generation: u64) -> bool {
        self.state
            .lock()
            .held
            .first_key_value()
            .is_none_or(|(&oldest, _)| oldest > generation)
    }

    /// Pins held now (for tests and diagnostics).
    pub fn held(&self) -> usize {
        self.state.lock().held.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_is_released_when_its_last_pin_and_clone_go() {
        let pins = ReadPins::default();
        let before = pins.pin();
        let copy = before.clone();
        let ended = pins.advance();
        let after = pins.pin();
        assert!(!pins.released(ended));
        drop(before);
        // A clone still holds it (a kept file list outlives its snapshot).
        assert!(!pins.released(ended));
        assert_eq!(pins.held(), 2);
        drop(copy);
        // A reader pinned after the advance does not hold older files.
        assert!(pins.released(ended));
        assert!(!pins.released(ended + 1));
        drop(after);
        assert!(pins.released(ended + 1));
        assert_eq!(pins.held(), 0);
    }

    #[test]
    fn older_generations_hold_newer_retirements_too() {
        let pins = ReadPins::default();
        let oldest = pins.pin();
        let first = pins.advance();
        let second = pins.advance();
        assert!(!pins.released(first));
        assert!(!pins.released(second));
        drop(oldest);
        assert!(pins.released(second));
    }
}
