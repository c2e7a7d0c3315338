//! Shared state every statement works with.

use crate::catalog::Catalog;
use crate::cold::ColdStore;
use crate::ids::SnowflakeGen;
use crate::users::Users;
use kalamdb_commons::Clock;
use kalamdb_store::{HotStore, ScopeKey};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// Number of lock stripes for scope writes.
const WRITE_STRIPES: usize = 64;

pub struct CoreContext {
    pub store: Arc<HotStore>,
    pub catalog: Arc<Catalog>,
    pub users: Arc<Users>,
    pub cold: ColdStore,
    pub clock: Arc<dyn Clock>,
    pub snowflake: SnowflakeGen,
    write_locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for CoreContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreContext").finish_non_exhaustive()
    }
}

impl CoreContext {
    pub fn new(
        store: Arc<HotStore>,
        catalog: Arc<Catalog>,
        users: Arc<Users>,
        cold: ColdStore,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            catalog,
            users,
            cold,
            snowflake: SnowflakeGen::new(clock.clone(), 0),
            clock,
            write_locks: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Serializes writers of one scope, so that "check the primary key, then
    /// write" and "read rows, then write new versions" are atomic, and `_seq`
    /// order is commit order within a scope. Readers never take it.
    pub async fn lock_scope(&self, scope: &ScopeKey) -> MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        scope.hash(&mut hasher);
        let stripe = hasher.finish() as usize % WRITE_STRIPES;
        self.write_locks[stripe].lock().await
    }
}
