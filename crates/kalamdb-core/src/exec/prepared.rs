//! Parsed statements, kept by their text.
//!
//! Applications repeat the same statements with different `$n`
//! parameters; parsing one again costs more than looking it up. A parsed
//! statement depends only on its text (names are resolved against the
//! catalog and the caller each time it runs), so a cached one can never be
//! stale. With it is kept what a direct read can answer of it, and the
//! result of a constant query once computed.

use super::direct::{classify, DirectQuery};
use crate::error::Result;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_sql::KalamStatement;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// Texts longer than this are not cached: long statements are rarely
/// repeated, and the bound keeps the cache's memory small.
pub const MAX_CACHED_SQL_BYTES: usize = 4096;

/// One parsed statement, ready to run any number of times.
#[derive(Debug)]
pub struct Prepared {
    pub statement: KalamStatement,
    /// Its text, when the cache keeps it: its plans are kept by it too
    /// ([`super::plan_cache`]).
    pub(super) text: Option<Arc<str>>,
    pub(super) direct: Option<DirectQuery>,
    /// The result of a [`DirectQuery::Constant`], once computed.
    pub(super) constant: OnceLock<(SchemaRef, Vec<RecordBatch>)>,
}

impl Prepared {
    pub fn new(statement: KalamStatement) -> Self {
        let direct = match &statement {
            KalamStatement::Standard(s) => classify(s),
            _ => None,
        };
        Self {
            statement,
            text: None,
            direct,
            constant: OnceLock::new(),
        }
    }

    fn with_text(statement: KalamStatement, text: &str) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::new(statement)
        }
    }

    /// Whether a direct read may answer it.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }
}

/// Single statements by text, at most `capacity` of them.
#[derive(Debug)]
pub struct StatementCache {
    entries: Mutex<HashMap<Box<str>, Arc<Prepared>>>,
    capacity: usize,
}

impl StatementCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached statement of `sql`, if there is one.
    pub fn cached(&self, sql: &str) -> Option<Arc<Prepared>> {
        if self.capacity == 0 || sql.len() > MAX_CACHED_SQL_BYTES {
            return None;
        }
        self.entries.lock().get(sql).cloned()
    }

    /// The statements of `sql`: from the cache, or by `parse` (whose
    /// result is cached when it is one statement of a cacheable kind).
    pub fn prepare(
        &self,
        sql: &str,
        parse: impl FnOnce(&str) -> Result<Vec<KalamStatement>>,
    ) -> Result<Vec<Arc<Prepared>>> {
        if let Some(found) = self.cached(sql) {
            return Ok(vec![found]);
        }
        let cacheable = self.capacity > 0 && sql.len() <= MAX_CACHED_SQL_BYTES;
        let mut statements = parse(sql)?;
        // Literal INSERTs carry their values in the text, so their texts
        // rarely repeat; they have a parser of their own.
        let keep = cacheable
            && statements.len() == 1
            && !matches!(statements[0], KalamStatement::FastInsert(_));
        if !keep {
            return Ok(statements
                .into_iter()
                .map(|s| Arc::new(Prepared::new(s)))
                .collect());
        }
        let one = Arc::new(Prepared::with_text(statements.remove(0), sql));
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity {
            // Any entry: a statement still in use comes back at the cost
            // of one parse.
            if let Some(old) = entries.keys().next().cloned() {
                entries.remove(&old);
            }
        }
        entries.insert(sql.into(), one.clone());
        Ok(vec![one])
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<Vec<KalamStatement>> {
        Ok(kalamdb_sql::parse_batch(sql)?)
    }

    #[test]
    fn repeated_text_is_parsed_once_and_the_cache_stays_bounded() {
        let cache = StatementCache::new(2);
        let first = cache
            .prepare("SELECT * FROM t WHERE id = $1", parse)
            .unwrap();
        let again = cache
            .prepare("SELECT * FROM t WHERE id = $1", |_| panic!("parsed twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&first[0], &again[0]));
        assert!(first[0].direct.is_some());
        // Batches of several statements are not kept.
        cache.prepare("SELECT 1; SELECT 2", parse).unwrap();
        assert_eq!(cache.len(), 1);
        for i in 0..10 {
            cache.prepare(&format!("SELECT {i}"), parse).unwrap();
        }
        assert_eq!(cache.len(), 2);
        // Nor a long text.
        let long = format!("SELECT '{}'", "x".repeat(MAX_CACHED_SQL_BYTES));
        let cache = StatementCache::new(8);
        cache.prepare(&long, parse).unwrap();
        assert_eq!(cache.len(), 0);
        // A failed parse caches nothing.
        assert!(cache.prepare("SELEC 1", parse).is_err());
        assert_eq!(cache.len(), 0);
    }
}
