//! Statements running now under an id their client chose, so that `KILL
//! QUERY '<id>'` from another connection can stop one: what psql's cancel
//! request is to PostgreSQL, and what the `kalam` CLI sends on Ctrl-C.
//!
//! The server registers each request that runs on the query runtime with
//! the task's abort handle; the entry goes when the request ends (the
//! guard's drop), so the table holds at most one entry per request in
//! flight and needs no other bound.

use kalamdb_commons::Role;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::task::AbortHandle;

/// The longest query id accepted: ids are the client's, and a table of
/// them must not grow with what a client sends.
pub const MAX_QUERY_ID_LEN: usize = 64;

/// The SQL kept per running statement for `system.running_queries`: at
/// most this many characters (the caller cuts it, before it copies).
pub const RUNNING_SQL_CHARS: usize = 500;

struct Running {
    query_id: String,
    user_id: String,
    sql: String,
    started_at: i64,
    abort: AbortHandle,
}

/// One row of `system.running_queries`.
pub(crate) struct RunningInfo {
    pub query_id: String,
    pub user_id: String,
    pub sql: String,
    pub started_at: i64,
}

#[derive(Default)]
pub struct RunningQueries {
    entries: Mutex<HashMap<u64, Running>>,
    next_key: AtomicU64,
}

/// Removes its entry when the request ends, however it ends.
pub struct RunningGuard<'a> {
    queries: &'a RunningQueries,
    key: u64,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.queries.entries.lock().remove(&self.key);
    }
}

/// Whether `id` may name a query: 1 to 64 of letters, digits, `-`, `_`,
/// `.` and `:` (UUIDs, ULIDs and the like), nothing to escape in a message.
pub fn valid_query_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_QUERY_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

impl RunningQueries {
    /// Records a running request of `user_id` under the client's id;
    /// `sql` an excerpt of at most [`RUNNING_SQL_CHARS`], `started_at` in
    /// micros.
    pub fn register(
        &self,
        query_id: &str,
        user_id: &str,
        sql: &str,
        started_at: i64,
        abort: AbortHandle,
    ) -> RunningGuard<'_> {
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().insert(
            key,
            Running {
                query_id: query_id.to_string(),
                user_id: user_id.to_string(),
                sql: sql.to_string(),
                started_at,
                abort,
            },
        );
        RunningGuard { queries: self, key }
    }

    /// What runs now, oldest first.
    pub(crate) fn list(&self) -> Vec<RunningInfo> {
        let mut out: Vec<RunningInfo> = self
            .entries
            .lock()
            .values()
            .map(|r| RunningInfo {
                query_id: r.query_id.clone(),
                user_id: r.user_id.clone(),
                sql: r.sql.clone(),
                started_at: r.started_at,
            })
            .collect();
        out.sort_by(|a, b| {
            a.started_at
                .cmp(&b.started_at)
                .then(a.query_id.cmp(&b.query_id))
        });
        out
    }

    /// Stops the caller's statements running under `query_id` (anyone's,
    /// for a dba or system caller); how many were stopped. Another user's
    /// query reads as not found rather than as forbidden, so ids cannot be
    /// probed.
    pub fn kill(&self, query_id: &str, user_id: &str, role: Role) -> usize {
        let entries = self.entries.lock();
        let mut stopped = 0;
        for running in entries.values() {
            if running.query_id == query_id && (running.user_id == user_id || role >= Role::Dba) {
                running.abort.abort();
                stopped += 1;
            }
        }
        stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_and_plain() {
        assert!(valid_query_id("0191d2c4-7f1e-7a4b-9c3d-2f1e0a9b8c7d"));
        assert!(valid_query_id("cli:42"));
        assert!(!valid_query_id(""));
        assert!(!valid_query_id("a b"));
        assert!(!valid_query_id("x'; DROP"));
        assert!(!valid_query_id(&"a".repeat(65)));
    }

    #[tokio::test]
    async fn kill_stops_only_what_the_caller_may_stop() {
        let queries = RunningQueries::default();
        let task = tokio::spawn(std::future::pending::<()>());
        let guard = queries.register("q1", "alice", "SELECT 1", 5, task.abort_handle());
        assert_eq!(queries.list().len(), 1);
        assert_eq!(queries.kill("q1", "bob", Role::User), 0);
        assert_eq!(queries.kill("q2", "alice", Role::User), 0);
        assert_eq!(queries.kill("q1", "alice", Role::User), 1);
        assert!(task.await.unwrap_err().is_cancelled());
        drop(guard);
        assert!(queries.list().is_empty());
        assert_eq!(queries.kill("q1", "root", Role::System), 0);
        let task = tokio::spawn(std::future::pending::<()>());
        let _guard = queries.register("q1", "alice", "SELECT 2", 6, task.abort_handle());
        assert_eq!(queries.kill("q1", "ops", Role::Dba), 1);
    }
}
