//! A map bounded by the bytes its values weigh, evicting by a clock
//! (second chance): an entry read since the hand last passed it is passed
//! over once more. The file caches ([`crate::MetadataCache`],
//! [`crate::KeyFilterCache`], [`crate::BlockCache`]) are one of these, and
//! so is the server's cache of parsed manifest entries.

use foldhash::fast::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

#[derive(Debug)]
struct Entries<K, V> {
    /// Value, its weight in bytes, whether it was read since the hand
    /// passed.
    held: HashMap<K, (V, usize, bool), RandomState>,
    /// The hand goes front to back.
    hand: VecDeque<K>,
    bytes: usize,
}

#[derive(Debug)]
pub struct ClockCache<K, V> {
    entries: Mutex<Entries<K, V>>,
    budget: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<K: Clone + Eq + Hash, V: Clone> ClockCache<K, V> {
    /// A cache of at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> Self {
        Self {
            entries: Mutex::new(Entries {
                held: HashMap::default(),
                hand: VecDeque::new(),
                bytes: 0,
            }),
            budget,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.budget > 0
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let found = self.lock().held.get_mut(key).map(|(value, _, read)| {
            *read = true;
            value.clone()
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps `value`, weighing `bytes`, in place of any value `key` had,
    /// evicting others as the budget needs; a value heavier than the whole
    /// budget is not kept.
    pub fn insert(&self, key: K, value: V, bytes: usize) {
        if bytes > self.budget {
            return;
        }
        let mut entries = self.lock();
        entries.bytes += bytes;
        match entries.held.insert(key.clone(), (value, bytes, false)) {
            // Replaced: the key keeps its place before the hand.
            Some((_, old, _)) => entries.bytes -= old,
            None => entries.hand.push_back(key),
        }
        while entries.bytes > self.budget {
            let Some(key) = entries.hand.pop_front() else {
                break;
            };
            let Some((_, weight, read)) = entries.held.get_mut(&key) else {
                continue;
            };
            if *read {
                *read = false;
                entries.hand.push_back(key);
            } else {
                let freed = *weight;
                entries.held.remove(&key);
                entries.bytes -= freed;
            }
        }
    }

    /// Reads that found their entry, and those that did not.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        // Nothing between the changes of one call can panic halfway, so a
        // poisoned lock still guards consistent entries.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_holds_and_an_entry_read_since_the_hand_passed_stays() {
        let cache = ClockCache::new(30);
        cache.insert("a", 1, 10);
        cache.insert("b", 2, 10);
        cache.insert("c", 3, 10);
        assert_eq!(cache.get(&"a"), Some(1));
        cache.insert("d", 4, 10);
        assert_eq!(cache.bytes(), 30);
        assert_eq!(cache.get(&"b"), None, "the oldest unread went");
        assert_eq!(cache.get(&"a"), Some(1), "read: passed over once");
        cache.insert("huge", 5, 31);
        assert_eq!(cache.get(&"huge"), None, "heavier than the budget");
        assert_eq!(cache.bytes(), 30);
        assert_eq!(cache.hits_and_misses(), (2, 2));
        cache.insert("a", 7, 5);
        assert_eq!((cache.get(&"a"), cache.bytes()), (Some(7), 25), "replaced");
        let none = ClockCache::new(0);
        none.insert("a", 1, 1);
        assert!(!none.is_enabled() && none.get(&"a").is_none());
    }
}
