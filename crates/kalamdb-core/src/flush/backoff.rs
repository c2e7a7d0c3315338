//! Scopes whose flush failed for a reason a retry cannot fix (data the file
//! cannot hold, a row that does not decode). Such a scope is left out of
//! flushes for a while, longer after each failure, so the scheduler does
//! not start the same doomed job every tick, and its versions do not count
//! towards its table's flush triggers meanwhile: they would make the table
//! due again at once. Other scopes of the table keep flushing. A scope
//! leaves the list when a flush of it commits. The list is in memory: after
//! a restart every scope is tried once more.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

/// One scope that keeps failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingScope {
    /// `None` for the scope of a SHARED table.
    pub user: Option<String>,
    /// Permanent failures in a row.
    pub failures: u32,
    pub cause: String,
    /// Microseconds: the scope is left out of flushes until then.
    pub retry_at: i64,
    /// Hot versions (and their bytes) the scope held at its last try,
    /// which the table's triggers do not count while the scope waits.
    pub versions: u64,
    pub bytes: u64,
}

#[derive(Debug)]
pub struct ScopeBackoff {
    first: Duration,
    max: Duration,
    scopes: Mutex<HashMap<(u64, Option<String>), FailingScope>>,
}

impl ScopeBackoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max,
            scopes: Mutex::new(HashMap::new()),
        }
    }

    /// Records a permanent failure; returns when the scope is tried again.
    pub fn failed(
        &self,
        table_uid: u64,
        user: Option<&str>,
        cause: &str,
        held: (u64, u64),
        now: i64,
    ) -> i64 {
        let mut scopes = self.scopes.lock();
        let key = (table_uid, user.map(String::from));
        let failures = scopes.get(&key).map_or(0, |s| s.failures) + 1;
        let wait = self
            .first
            .saturating_mul(2u32.saturating_pow(failures - 1))
            .min(self.max);
        let retry_at = now.saturating_add(wait.as_micros() as i64);
        scopes.insert(
            key,
            FailingScope {
                user: user.map(String::from),
                failures,
                cause: cause.to_string(),
                retry_at,
                versions: held.0,
                bytes: held.1,
            },
        );
        retry_at
    }

    /// A flush of the scope committed: it is healthy again.
    pub fn succeeded(&self, table_uid: u64, user: Option<&str>) {
        let mut scopes = self.scopes.lock();
        if !scopes.is_empty() {
            scopes.remove(&(table_uid, user.map(String::from)));
        }
    }

    /// Whether a flush at `now` leaves the scope out.
    pub fn waiting(&self, table_uid: u64, user: Option<&str>, now: i64) -> bool {
        let scopes = self.scopes.lock();
        !scopes.is_empty()
            && scopes
                .get(&(table_uid, user.map(String::from)))
                .is_some_and(|s| s.retry_at > now)
    }

    /// A flush skipped the waiting scope and saw what it holds now.
    pub fn still_holds(&self, table_uid: u64, user: Option<&str>, held: (u64, u64)) {
        if let Some(s) = self
            .scopes
            .lock()
            .get_mut(&(table_uid, user.map(String::from)))
        {
            (s.versions, s.bytes) = held;
        }
    }

    /// Versions and bytes of the table's scopes that wait at `now`.
    pub fn held_by_waiting(&self, table_uid: u64, now: i64) -> (u64, u64) {
        let scopes = self.scopes.lock();
        scopes
            .iter()
            .filter(|((uid, _), s)| *uid == table_uid && s.retry_at > now)
            .fold((0, 0), |(v, b), (_, s)| (v + s.versions, b + s.bytes))
    }

    /// The table's failing scopes, by user.
    pub fn of_table(&self, table_uid: u64) -> Vec<FailingScope> {
        let mut list: Vec<FailingScope> = self
            .scopes
            .lock()
            .iter()
            .filter(|((uid, _), _)| *uid == table_uid)
            .map(|(_, s)| s.clone())
            .collect();
        list.sort_by(|a, b| a.user.cmp(&b.user));
        list
    }

    /// A dropped table's scopes are gone.
    pub fn forget_table(&self, table_uid: u64) {
        self.scopes.lock().retain(|(uid, _), _| *uid != table_uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_limit_and_end_on_success() {
        let b = ScopeBackoff::new(Duration::from_secs(10), Duration::from_secs(25));
        let s = 1_000_000;
        assert_eq!(b.failed(1, Some("u"), "bad", (3, 30), 0), 10 * s);
        assert!(b.waiting(1, Some("u"), 9 * s));
        assert!(!b.waiting(1, Some("u"), 10 * s));
        assert!(!b.waiting(1, Some("v"), 0));
        assert_eq!(b.held_by_waiting(1, 0), (3, 30));
        assert_eq!(b.held_by_waiting(1, 10 * s), (0, 0));
        assert_eq!(b.failed(1, Some("u"), "bad", (3, 30), 0), 20 * s);
        assert_eq!(b.failed(1, Some("u"), "bad", (3, 30), 0), 25 * s);
        assert_eq!(b.of_table(1)[0].failures, 3);
        b.succeeded(1, Some("u"));
        assert!(b.of_table(1).is_empty());
    }
}
