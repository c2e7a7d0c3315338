//! The compaction of one table: its scopes one after another, each in as
//! many rounds as it needs, then the removal of the files no reader needs.

use super::scope::{Round, ScopeJob};
use super::select::{Mode, MAX_MERGE_FILES};
use super::{CompactFailPoint, CompactHooks, CompactStats};
use crate::catalog::TableDef;
use crate::cold::{bridge, ColdStore};
use crate::error::Result;
use crate::flush::{CancelFlag, Flusher};
use kalamdb_commons::TableType;
use kalamdb_store::keys::scope_of;
use kalamdb_store::{meta_keys, ScopeKey};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::runtime::Handle;
use tracing::info;

/// Compacts `scopes` of `def` (all its scopes with files when `None`).
/// Runs on a blocking thread; `handle` drives the object store.
#[allow(clippy::too_many_arguments)]
pub fn compact_table(
    env: &Flusher,
    cold: &Arc<ColdStore>,
    handle: &Handle,
    def: &TableDef,
    scopes: Option<Vec<ScopeKey>>,
    mode: Mode,
    cancel: Option<&CancelFlag>,
    hooks: &CompactHooks,
) -> Result<CompactStats> {
    let started = kalamdb_commons::clock::monotonic();
    let policy = env.compaction_policy(def);
    let scopes = match scopes {
        Some(scopes) => scopes,
        None => scopes_with_files(env, def)?,
    };
    info!(table = %def.qualified_name(), scopes = scopes.len(), ?mode, "compaction started");
    let user_scoped = def.table_type != TableType::Shared;
    let mut stats = CompactStats::default();
    let mut outcome = Ok(());
    'scopes: for scope in &scopes {
        if cancel.is_some_and(|c| c.is_set()) {
            stats.cancelled = true;
            break;
        }
        let (_, user) = scope_of(scope.as_bytes(), user_scoped)?;
        let job = ScopeJob {
            env,
            cold,
            handle,
            def,
            scope,
            user: user.as_deref(),
            policy: &policy,
            hooks,
            cancel,
        };
        let mut merged = false;
        // Each round merges at most MAX_MERGE_FILES files into fewer; a
        // scope of any length needs a bounded number of them.
        for _ in 0..ROUNDS_PER_SCOPE {
            match job.round(mode, &mut stats) {
                Ok(Round::Merged) => merged = true,
                Ok(Round::Nothing) => break,
                Ok(Round::Cancelled) => {
                    stats.cancelled = true;
                    break 'scopes;
                }
                Err(e) => {
                    outcome = Err(e);
                    break 'scopes;
                }
            }
        }
        stats.scopes += u64::from(merged);
    }
    // Old files whose readers are gone go now, even after a failure.
    let stop_between = hooks.fail_at == Some(CompactFailPoint::BetweenDeletes);
    if outcome.is_ok() || stop_between {
        let swept = bridge::wait(
            handle,
            env.retired
                .sweep(env.hot().store(), env.storages(), stop_between),
        );
        match swept {
            Ok(removed) => stats.files_removed += removed as u64,
            Err(e) => outcome = outcome.and(Err(e)),
        }
    }
    outcome?;
    stats.duration_ms = started.elapsed().as_millis() as u64;
    info!(
        table = %def.qualified_name(),
        scopes = stats.scopes,
        files_in = stats.files_in,
        files_out = stats.files_out,
        tombstones_dropped = stats.tombstones_dropped,
        cancelled = stats.cancelled,
        duration_ms = stats.duration_ms,
        "compaction finished"
    );
    Ok(stats)
}

/// Rounds one scope gets in one job (each merges up to
/// [`MAX_MERGE_FILES`] files into fewer); a scope that still needs more is
/// continued by the next job.
const ROUNDS_PER_SCOPE: usize = 64;

const _: () = assert!(MAX_MERGE_FILES >= 2);

/// Every scope of `def` that has committed files.
fn scopes_with_files(env: &Flusher, def: &TableDef) -> Result<Vec<ScopeKey>> {
    let user_scoped = def.table_type != TableType::Shared;
    let mut scopes = BTreeSet::new();
    for (key, _) in env
        .hot()
        .store()
        .meta_scan(&meta_keys::table_manifests(def.uid))?
    {
        scopes.insert(meta_keys::manifest_scope(&key, user_scoped)?.to_vec());
    }
    Ok(scopes
        .into_iter()
        .map(|bytes| ScopeKey::from_key_prefix(&bytes))
        .collect())
}
