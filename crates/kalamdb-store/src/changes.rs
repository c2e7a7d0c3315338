//! The change log: every committed row change, kept for a while so that a
//! live query can resume from any `_seq` it saw.
//!
//! The row versions cannot serve a resume by themselves: a flush keeps only
//! the newest version of each key and removes the hot ones, so the updates
//! in between (and the old values an update or delete carries) are gone.
//! The log is written in the same `WriteBatch` as the versions it
//! describes, so a change is logged if and only if it committed.
//!
//! Key: `scope (as in row keys) · _seq (u64 BE, ascending)`. One scope's
//! changes are one contiguous range in commit order (its writers hold the
//! scope lock while they allocate `_seq` and commit), so a resume reads one
//! range. Scope components are terminated, so no scope is a prefix of
//! another; the last eight bytes of a key are always its `_seq`.
//!
//! Retention: a single *floor*. Every change with `_seq` at or below it may
//! be gone; every change above it is kept. The floor only rises, and it is
//! persisted before the entries below it are deleted, so "is the history
//! after `n` complete?" is exactly `n >= floor`.

use crate::keys::prefix_end;
use crate::{HotStore, RowVersion, ScopeKey, StoreError};
use rocksdb::{IteratorMode, ReadOptions, WriteOptions};

pub(crate) const CF_CHANGES: &str = "changes";
const FLOOR_KEY: &[u8] = b"\x00changes_floor";

/// What a change did to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Update,
    Delete,
}

impl ChangeKind {
    fn tag(self) -> u8 {
        match self {
            Self::Insert => 1,
            Self::Update => 2,
            Self::Delete => 3,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, StoreError> {
        match tag {
            1 => Ok(Self::Insert),
            2 => Ok(Self::Update),
            3 => Ok(Self::Delete),
            other => Err(StoreError::Corrupt(format!("unknown change kind {other}"))),
        }
    }
}

/// One committed change of one row. `new` is set for inserts and updates,
/// `old` (the row as it was, and the `_seq` of that version) for updates
/// and deletes.
#[derive(Debug, Clone, PartialEq)]
pub struct RowChange {
    pub seq: u64,
    pub kind: ChangeKind,
    pub new: Option<RowVersion>,
    pub old: Option<RowVersion>,
    pub old_seq: u64,
}

impl RowChange {
    /// Value layout: `kind (1) · old _seq (u64 LE) · new length (u32 LE,
    /// 0: none) · new · old` (an empty rest: no old row).
    pub(crate) fn encode_value_into(&self, out: &mut Vec<u8>) {
        out.push(self.kind.tag());
        out.extend_from_slice(&self.old_seq.to_le_bytes());
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        if let Some(new) = &self.new {
            new.encode_into(out);
            let len = (out.len() - len_at - 4) as u32;
            out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        }
        if let Some(old) = &self.old {
            old.encode_into(out);
        }
    }

    fn decode(seq: u64, value: &[u8]) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt("short change entry".into());
        let (&tag, rest) = value.split_first().ok_or_else(corrupt)?;
        let kind = ChangeKind::from_tag(tag)?;
        let old_seq = u64::from_le_bytes(rest.get(..8).ok_or_else(corrupt)?.try_into().unwrap());
        let rest = &rest[8..];
        let len_bytes: [u8; 4] = rest.get(..4).ok_or_else(corrupt)?.try_into().unwrap();
        let len = u32::from_le_bytes(len_bytes) as usize;
        let rest = &rest[4..];
        let new_bytes = rest.get(..len).ok_or_else(corrupt)?;
        let old_bytes = &rest[len..];
        Ok(Self {
            seq,
            kind,
            new: (len > 0)
                .then(|| RowVersion::decode(new_bytes))
                .transpose()?,
            old: (!old_bytes.is_empty())
                .then(|| RowVersion::decode(old_bytes))
                .transpose()?,
            old_seq,
        })
    }
}

pub(crate) fn change_key(scope: &ScopeKey, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(scope.as_bytes().len() + 8);
    key.extend_from_slice(scope.as_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    let at = key
        .len()
        .checked_sub(8)
        .ok_or_else(|| StoreError::Corrupt("change key shorter than a _seq".into()))?;
    Ok(u64::from_be_bytes(key[at..].try_into().unwrap()))
}

impl HotStore {
    /// Every change of `scope` with `after < _seq <= through`, in `_seq`
    /// order, at most `limit` of them. The caller checks the floor first.
    pub fn changes(
        &self,
        scope: &ScopeKey,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<RowChange>, StoreError> {
        if after >= through {
            return Ok(Vec::new());
        }
        let start = change_key(scope, after.saturating_add(1));
        let mut opts = ReadOptions::default();
        // Exclusive bound just above the key of `through`.
        let mut end = change_key(scope, through);
        end.push(0);
        opts.set_iterate_upper_bound(end);
        let iter = self.db().iterator_cf_opt(
            self.changes_cf(),
            opts,
            IteratorMode::From(&start, rocksdb::Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (key, value) = item?;
            out.push(RowChange::decode(seq_of(&key)?, &value)?);
        }
        Ok(out)
    }

    /// Every change at or below this `_seq` may be gone from the log.
    pub fn changes_floor(&self) -> u64 {
        self.changes_floor
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Raises the floor to `floor` (never lowers it) and deletes the entries
    /// at or below it, one range per scope that has any. Returns how many
    /// scopes it visited.
    pub fn trim_changes(&self, floor: u64) -> Result<usize, StoreError> {
        use std::sync::atomic::Ordering;
        if floor <= self.changes_floor() {
            return Ok(0);
        }
        // Persisted first: a crash between here and the deletes leaves
        // entries below the floor, which nobody reads.
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db()
            .put_cf_opt(self.meta_cf(), FLOOR_KEY, floor.to_be_bytes(), &opts)?;
        self.changes_floor.store(floor, Ordering::Release);

        let cf = self.changes_cf();
        let mut iter = self.db().raw_iterator_cf(cf);
        iter.seek_to_first();
        let mut batch = rocksdb::WriteBatch::default();
        let mut scopes = 0;
        while let Some(key) = iter.key() {
            let scope = key[..key.len().saturating_sub(8)].to_vec();
            let scope_key = ScopeKey::from_key_prefix(&scope);
            batch.delete_range_cf(
                cf,
                change_key(&scope_key, 0),
                change_key(&scope_key, floor + 1),
            );
            scopes += 1;
            match prefix_end(&scope) {
                Some(end) => iter.seek(&end),
                None => break,
            }
        }
        iter.status()?;
        self.db().write(batch)?;
        Ok(scopes)
    }

    pub(crate) fn read_changes_floor(db: &rocksdb::DB) -> Result<u64, StoreError> {
        let meta = db.cf_handle(crate::store::CF_META).expect("meta cf");
        match db.get_cf(meta, FLOOR_KEY)? {
            Some(raw) => {
                Ok(u64::from_be_bytes(raw.as_slice().try_into().map_err(
                    |_| StoreError::Corrupt("change log floor".into()),
                )?))
            }
            None => Ok(0),
        }
    }

    /// An estimate of the log's size on disk and in memtables, in bytes.
    pub fn changes_size(&self) -> u64 {
        let cf = self.changes_cf();
        let prop = |name: &str| {
            self.db()
                .property_int_value_cf(cf, name)
                .ok()
                .flatten()
                .unwrap_or(0)
        };
        prop("rocksdb.estimate-live-data-size") + prop("rocksdb.cur-size-all-mem-tables")
    }
}

impl crate::WriteBatch<'_> {
    /// Logs one change of a row of `scope`, committed with this batch.
    pub fn put_change(&mut self, scope: &ScopeKey, change: &RowChange) {
        let key = change_key(scope, change.seq);
        let mut value = std::mem::take(&mut self.scratch);
        value.clear();
        change.encode_value_into(&mut value);
        self.inner.put_cf(self.store.changes_cf(), &key, &value);
        self.scratch = value;
    }

    /// Removes the logged changes of every scope of a table.
    pub fn delete_changes_of_table(&mut self, table_uid: u64) {
        let prefix = ScopeKey::table_prefix(table_uid);
        let cf = self.store.changes_cf();
        match prefix_end(&prefix) {
            Some(end) => self
                .inner
                .delete_range_cf(cf, prefix.as_slice(), end.as_slice()),
            None => self
                .inner
                .delete_range_cf(cf, prefix.as_slice(), &[0xFFu8; 64][..]),
        }
    }
}
