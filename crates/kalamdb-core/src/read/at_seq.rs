//! Reading exact versions (key and `_seq`) from a scope's files: what the
//! change log's references name once a flush moved the versions out of the
//! hot tier (see `kalamdb_store::changes`).

use super::decode::FileBatch;
use super::lookup::read_for_keys;
use super::{probe, ScopeFiles, Version};
use crate::catalog::TableDef;
use crate::cold::ColdStore;
use crate::error::Result;
use kalamdb_store::{keys, FlushedVersions, RowVersion, ScopeKey, StoreError, StoreSnapshot};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::runtime::Handle;

impl ScopeFiles {
    /// The version of each `(encoded key, _seq)` of `wanted` that the
    /// files hold, `None` where none does. Only files whose key and `_seq`
    /// ranges hold a wanted version are read, and of them only the row
    /// groups and pages the keys may be in. Runs on a blocking thread.
    pub fn versions_at(
        &self,
        cold: &ColdStore,
        handle: &Handle,
        def: &TableDef,
        scope: &ScopeKey,
        wanted: &[(Vec<u8>, u64)],
    ) -> Result<Vec<Option<Version>>> {
        let pk_type = &def.columns[def.pk_index()].data_type;
        let prefix = scope.as_bytes().len();
        let mut found: Vec<Option<Version>> = vec![None; wanted.len()];
        let index: HashMap<(&[u8], u64), usize> = wanted
            .iter()
            .enumerate()
            .map(|(i, (key, seq))| ((key.as_slice(), *seq), i))
            .collect();
        for entry in self.entries.iter().rev() {
            let asked: Vec<usize> = (0..wanted.len())
                .filter(|&i| found[i].is_none())
                .filter(|&i| {
                    let (key, seq) = (&wanted[i].0, wanted[i].1 as i64);
                    entry.may_contain(key) && entry.min_seq <= seq && seq <= entry.max_seq
                })
                .collect();
            if asked.is_empty() {
                continue;
            }
            let probes = asked
                .iter()
                .map(|&i| Ok(probe(&keys::decode_pk(&wanted[i].0[prefix..], pk_type)?)))
                .collect::<Result<Vec<_>>>()?;
            for batch in read_for_keys(cold, handle, def, entry, &probes)? {
                let rows = FileBatch::decode(def, entry.schema_version, &batch, &entry.path)?;
                for r in 0..rows.len() {
                    let key = rows.key(def, scope, r)?;
                    let Some(seq) = rows.seq(r) else { continue };
                    if let Some(&i) = index.get(&(key.as_slice(), seq)) {
                        found[i] = Some(rows.version(def, r)?);
                    }
                }
            }
        }
        Ok(found)
    }
}

/// The change log's way into a scope's files as of one snapshot: the
/// versions its references name that the snapshot's hot tier no longer
/// holds. The files are listed on the first ask (most reads need none).
pub struct FlushedFiles<'a> {
    snapshot: &'a StoreSnapshot<'a>,
    def: &'a TableDef,
    scope: &'a ScopeKey,
    cold: &'a Arc<ColdStore>,
    handle: &'a Handle,
    files: Option<ScopeFiles>,
}

impl<'a> FlushedFiles<'a> {
    pub fn new(
        snapshot: &'a StoreSnapshot<'a>,
        def: &'a TableDef,
        scope: &'a ScopeKey,
        cold: &'a Arc<ColdStore>,
        handle: &'a Handle,
    ) -> Self {
        Self {
            snapshot,
            def,
            scope,
            cold,
            handle,
            files: None,
        }
    }

    fn read(&mut self, refs: &[(&[u8], u64)]) -> Result<Vec<RowVersion>> {
        let files = match &mut self.files {
            Some(files) => files,
            none => none.insert(ScopeFiles::read(self.snapshot, self.scope)?),
        };
        let wanted: Vec<(Vec<u8>, u64)> = refs
            .iter()
            .map(|(pk, seq)| ([self.scope.as_bytes(), pk].concat(), *seq))
            .collect();
        let found = files.versions_at(self.cold, self.handle, self.def, self.scope, &wanted)?;
        found
            .into_iter()
            .zip(refs)
            .map(|(version, (_, seq))| match version {
                Some(v) => Ok(RowVersion {
                    deleted: v.deleted,
                    schema_version: self.def.schema_version,
                    values: v.values,
                }),
                None => Err(crate::error::CoreError::Internal(format!(
                    "the change log refers to a row version (_seq {seq}) that is neither \
                     hot nor in the scope's files"
                ))),
            })
            .collect()
    }
}

impl FlushedVersions for FlushedFiles<'_> {
    fn versions(&mut self, refs: &[(&[u8], u64)]) -> Result<Vec<RowVersion>, StoreError> {
        self.read(refs)
            .map_err(|e| StoreError::Flushed(e.to_string()))
    }
}
