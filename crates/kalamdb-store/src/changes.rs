//! The change log: every committed row change, kept for a while so that a
//! live query can resume from any `_seq` it saw.
//!
//! The row versions cannot serve a resume by themselves: a flush keeps only
//! the newest version of each key and removes the hot ones, so the updates
//! in between (and the old values an update or delete carries) are gone.
//! The log is written in the same `WriteBatch` as the versions it
//! describes, so a change is logged if and only if it committed.
//!
//! One entry per write and scope, up to about 1 MiB (a statement's 1,000
//! inserted rows are one entry, not 1,000: RocksDB's cost is mostly per
//! entry, and ingest pays it). Key: `scope (as in row keys) · last _seq of the write (u64
//! BE)`. One scope's changes are one contiguous range in commit order (its
//! writers hold the scope lock while they allocate `_seq` and commit), so
//! a resume reads one range, starting at the first entry whose last `_seq`
//! is above its point. Scope components are terminated, so no scope is a
//! prefix of another; the last eight bytes of a key are always a `_seq`.
//!
//! Value: `count (u32 LE)`, then per change `_seq (u64 LE) · kind (1) ·
//! old _seq (u64 LE) · new length (u32 LE, 0: none) · new · old length ·
//! old`.
//!
//! An insert is logged as a *reference*: its kind byte has [`REF`] set and
//! its `new` holds only the row's encoded primary key (the version key
//! without the scope and `_seq`). The values are the hot version
//! `scope · pk · _seq` itself, written in the same batch, so an insert's
//! bytes go into RocksDB once and ingest does not pay for the log twice.
//! A reader resolves references from the snapshot it reads the log in:
//! from the hot tier, or, once a flush moved the version, from the scope's
//! Parquet files as of that snapshot ([`FlushedVersions`]). A flush writes
//! the newest version of each key to its file, with its `_seq`, and
//! commits that file before it deletes the hot versions; a version it
//! deletes without writing (one an update or delete superseded), and a
//! version a compaction drops, first has its references given their
//! values ([`crate::inline::Inliner`]), before the commit that removes it.
//! So in every snapshot a reference finds its version in one of the tiers
//! or needs none, and the values of an insert are stored once, not in the
//! file and again in the log. Updates and deletes carry their values (the
//! old ones are not kept anywhere else).
//!
//! Retention: a single *floor*. Every change with `_seq` at or below it may
//! be gone; every change above it is kept. The floor only rises, and it is
//! persisted before the entries below it are deleted, so "is the history
//! after `n` complete?" is exactly `n >= floor`. An entry is deleted once
//! all of it is at or below the floor.
//!
//! An older layout (one entry per row change) is not read: a store that
//! has it drops it once, and raises the floor to its last `_seq`, so a
//! resume from before says the history is gone instead of misreading it.

use crate::keys::prefix_end;
use crate::{HotStore, RowVersion, ScopeKey, StoreError};
use rocksdb::{IteratorMode, ReadOptions, WriteOptions};

pub(crate) const CF_CHANGES: &str = "changes";
const FLOOR_KEY: &[u8] = b"\x00changes_floor";
/// Which layout the log is in (absent: the first, per-row one).
const FORMAT_KEY: &[u8] = b"\x00changes_format";
const FORMAT: &[u8] = b"2";
/// Set in a change's kind byte: `new` is the row's primary key, and its
/// values are its hot version (see the module docs).
pub(crate) const REF: u8 = 0x80;

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
        match tag & !REF {
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

/// An entry is closed once it is this large, so that a resume reading the
/// log (one entry at a time) never holds much more than this, whatever the
/// size of the write.
pub(crate) const ENTRY_BYTES: usize = 1 << 20;

/// The changes one batch logs for one scope, encoded as they come.
#[derive(Debug, Default)]
pub(crate) struct PendingChanges {
    scope: Vec<u8>,
    pub(crate) value: Vec<u8>,
    /// What the entry's references stand for: its size once inlined.
    referenced: usize,
    pub(crate) count: u32,
    last_seq: u64,
}

impl PendingChanges {
    fn start(&mut self, scope: &ScopeKey) {
        self.scope.clear();
        self.scope.extend_from_slice(scope.as_bytes());
        self.value.clear();
        self.value.extend_from_slice(&[0; 4]);
        self.referenced = 0;
        self.count = 0;
    }

    /// The entry's size once its references are resolved.
    fn size(&self) -> usize {
        self.value.len() + self.referenced
    }

    /// Appends one change whose versions are already encoded.
    fn push(&mut self, seq: u64, kind: ChangeKind, old_seq: u64, new: &[u8], old: &[u8]) {
        self.push_tagged(seq, kind.tag(), old_seq, new, old);
    }

    /// Appends an insert whose values are its hot version, `pk` the
    /// version key's primary-key part, `row_bytes` the version's size.
    fn push_ref(&mut self, seq: u64, pk: &[u8], row_bytes: usize) {
        self.push_tagged(seq, ChangeKind::Insert.tag() | REF, 0, pk, &[]);
        self.referenced += row_bytes;
    }

    /// Appends a change as read from an entry, with `inlined` as its
    /// values in place of its reference when given.
    pub(crate) fn push_raw(&mut self, seq: u64, raw: &RawChange<'_>, inlined: Option<&[u8]>) {
        let (tag, new) = match inlined {
            Some(values) => (raw.kind.tag(), values),
            None if raw.is_ref => (raw.kind.tag() | REF, raw.new),
            None => (raw.kind.tag(), raw.new),
        };
        self.push_tagged(seq, tag, raw.old_seq, new, raw.old);
    }

    fn push_tagged(&mut self, seq: u64, tag: u8, old_seq: u64, new: &[u8], old: &[u8]) {
        let v = &mut self.value;
        v.extend_from_slice(&seq.to_le_bytes());
        v.push(tag);
        v.extend_from_slice(&old_seq.to_le_bytes());
        v.extend_from_slice(&(new.len() as u32).to_le_bytes());
        v.extend_from_slice(new);
        v.extend_from_slice(&(old.len() as u32).to_le_bytes());
        v.extend_from_slice(old);
        self.count += 1;
        self.last_seq = seq;
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Reads an entry's value, front to back.
pub(crate) struct Entry<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Entry<'a> {
    pub(crate) fn new(value: &'a [u8]) -> Result<Self, StoreError> {
        let mut entry = Self {
            rest: value,
            left: 1,
        };
        entry.left = entry.u32()?;
        Ok(entry)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < n {
            return Err(StoreError::Corrupt("short change entry".into()));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    /// The next change's `_seq`, or `None` at the end; then
    /// read it with [`Entry::raw`].
    fn next_seq(&mut self) -> Result<Option<u64>, StoreError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        self.u64().map(Some)
    }

    /// The next change as stored, its versions still encoded.
    fn raw(&mut self) -> Result<RawChange<'a>, StoreError> {
        let tag = self.take(1)?[0];
        Ok(RawChange {
            kind: ChangeKind::from_tag(tag)?,
            is_ref: tag & REF != 0,
            old_seq: self.u64()?,
            new: self.bytes()?,
            old: self.bytes()?,
        })
    }
}

impl<'a> Entry<'a> {
    /// The entry's changes with `after < _seq <= through`, and whether a
    /// change above `through` ended the read.
    pub(crate) fn changes(
        mut self,
        after: u64,
        through: u64,
    ) -> Result<(Vec<(u64, RawChange<'a>)>, bool), StoreError> {
        let mut out = Vec::with_capacity(self.left as usize);
        while let Some(seq) = self.next_seq()? {
            if seq > through {
                return Ok((out, true));
            }
            let raw = self.raw()?;
            if seq > after {
                out.push((seq, raw));
            }
        }
        Ok((out, false))
    }
}

/// The references among `changes`: primary key and `_seq`, in order.
fn refs_of<'a>(changes: &[(u64, RawChange<'a>)]) -> Vec<(&'a [u8], u64)> {
    changes
        .iter()
        .filter(|(_, raw)| raw.is_ref)
        .map(|(seq, raw)| (raw.new, *seq))
        .collect()
}

/// One logged change before decoding. For a reference, `new` is the
/// primary key it refers by; otherwise `new` and `old` are encoded
/// versions (empty: none).
pub(crate) struct RawChange<'a> {
    pub(crate) kind: ChangeKind,
    pub(crate) is_ref: bool,
    pub(crate) old_seq: u64,
    pub(crate) new: &'a [u8],
    pub(crate) old: &'a [u8],
}

fn decode_version(bytes: &[u8]) -> Result<Option<RowVersion>, StoreError> {
    (!bytes.is_empty())
        .then(|| RowVersion::decode(bytes))
        .transpose()
}

/// Reads the hot versions that references stand for, through one iterator
/// over the scope's versions. An entry's references are read in key order,
/// and a write's rows usually sit side by side in it (one statement's
/// rows, often consecutive keys), so most versions are a step or two
/// forward from the last one, not a seek.
struct Referenced<'s> {
    iter: rocksdb::DBRawIteratorWithThreadMode<'s, rocksdb::DB>,
    /// Versions read, in the order of the entry's references.
    values: Vec<u8>,
    /// Per reference, where its version is in `values`; `None`: not hot.
    ranges: Vec<Option<std::ops::Range<usize>>>,
    order: Vec<(Vec<u8>, usize)>,
}
/// Forward steps tried before a seek: a step costs a fraction of a seek,
/// and versions of other keys (or older versions) may lie in between.
const STEPS_BEFORE_SEEK: usize = 4;

impl<'s> Referenced<'s> {
    fn new(store: &'s HotStore, snapshot: &'s rocksdb::Snapshot<'s>, scope: &ScopeKey) -> Self {
        let mut opts = ReadOptions::default();
        if let Some(end) = prefix_end(scope.as_bytes()) {
            opts.set_iterate_upper_bound(end);
        }
        Self {
            iter: snapshot.raw_iterator_cf_opt(store.rows_cf(), opts),
            values: Vec::new(),
            ranges: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Reads the hot versions of `refs` (primary key, `_seq`), for
    /// [`Referenced::values`]; returns the indices of those not hot.
    fn read(&mut self, scope: &ScopeKey, refs: &[(&[u8], u64)]) -> Result<Vec<usize>, StoreError> {
        self.order.clear();
        for (i, (pk, seq)) in refs.iter().enumerate() {
            let mut key = Vec::with_capacity(scope.as_bytes().len() + pk.len() + 8);
            key.extend_from_slice(scope.as_bytes());
            key.extend_from_slice(pk);
            crate::keys::push_seq(&mut key, *seq);
            self.order.push((key, i));
        }
        if !self.order.is_sorted_by(|a, b| a.0 <= b.0) {
            self.order.sort_unstable();
        }
        self.values.clear();
        self.ranges.clear();
        self.ranges.resize(refs.len(), None);
        let mut missing = Vec::new();
        for (key, i) in std::mem::take(&mut self.order) {
            self.seek(&key);
            match (self.iter.key(), self.iter.value()) {
                (Some(found), Some(value)) if found == key.as_slice() => {
                    let start = self.values.len();
                    self.values.extend_from_slice(value);
                    self.ranges[i] = Some(start..self.values.len());
                }
                _ => {
                    self.iter.status()?;
                    missing.push(i);
                }
            }
        }
        missing.sort_unstable();
        Ok(missing)
    }

    /// Puts the iterator at the first version at or after `key`.
    fn seek(&mut self, key: &[u8]) {
        if self.iter.key().is_some_and(|at| at <= key) {
            for _ in 0..STEPS_BEFORE_SEEK {
                match self.iter.key() {
                    Some(at) if at < key => self.iter.next(),
                    _ => return,
                }
            }
            if self.iter.key().is_some_and(|at| at >= key) {
                return;
            }
        }
        self.iter.seek(key);
    }

    /// The versions read, in the order of the references given to
    /// [`Referenced::read`]; `None` for those not hot.
    fn values(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.ranges
            .iter()
            .map(|range| range.clone().map(|r| &self.values[r]))
    }
}

/// Where a reader finds the versions that references name and the hot tier
/// of its snapshot no longer holds: the scope's files as of that snapshot
/// (see the module docs).
pub trait FlushedVersions {
    /// The versions of `refs` (primary key as in version keys, `_seq`),
    /// in order; an error when one is found nowhere.
    fn versions(&mut self, refs: &[(&[u8], u64)]) -> Result<Vec<RowVersion>, StoreError>;
}

/// For a reader with no files to look in: a reference whose version is not
/// hot is an error, never a silent gap.
pub struct HotOnly;

impl FlushedVersions for HotOnly {
    fn versions(&mut self, refs: &[(&[u8], u64)]) -> Result<Vec<RowVersion>, StoreError> {
        Err(StoreError::Corrupt(format!(
            "the change log refers to a missing row version (_seq {})",
            refs.first().map_or(0, |r| r.1)
        )))
    }
}

/// The entries of `scope` from the first that holds a change above
/// `after`, read from `snapshot`.
fn scope_entries<'s>(
    store: &'s HotStore,
    snapshot: &'s rocksdb::Snapshot<'s>,
    scope: &ScopeKey,
    after: u64,
) -> rocksdb::DBIteratorWithThreadMode<'s, rocksdb::DB> {
    // Keys end with an entry's last `_seq`, so the first key at or above
    // `after + 1` is the first entry that ends above `after`.
    let start = change_key(scope, after.saturating_add(1));
    let mut opts = ReadOptions::default();
    if let Some(end) = prefix_end(scope.as_bytes()) {
        opts.set_iterate_upper_bound(end);
    }
    snapshot.iterator_cf_opt(
        store.changes_cf(),
        opts,
        IteratorMode::From(&start, rocksdb::Direction::Forward),
    )
}

pub(crate) fn change_key(scope: &ScopeKey, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(scope.as_bytes().len() + 8);
    key.extend_from_slice(scope.as_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl HotStore {
    /// Every change of `scope` with `after < _seq <= through`, in `_seq`
    /// order, at most `limit` of them, read from a snapshot of its own with
    /// no files to look in (tests; the engine reads with
    /// [`HotStore::changes_by_write`]). The caller checks the floor first.
    pub fn changes(
        &self,
        scope: &ScopeKey,
        after: u64,
        through: u64,
        limit: usize,
    ) -> Result<Vec<RowChange>, StoreError> {
        let mut out: Vec<RowChange> = self
            .changes_by_write(&self.snapshot(), scope, after, through, limit, &mut HotOnly)?
            .into_iter()
            .flatten()
            .collect();
        out.truncate(limit);
        Ok(out)
    }

    /// The changes of `scope` with `after < _seq <= through` in `snapshot`,
    /// grouped by the write that committed them (a write of over
    /// [`ENTRY_BYTES`] may come as several groups). References the hot tier
    /// does not hold are read through `flushed`, from the same snapshot's
    /// files. Stops at a write's end once `limit` changes are read, so it
    /// may return a write's worth more.
    pub fn changes_by_write(
        &self,
        snapshot: &crate::StoreSnapshot<'_>,
        scope: &ScopeKey,
        after: u64,
        through: u64,
        limit: usize,
        flushed: &mut dyn FlushedVersions,
    ) -> Result<Vec<Vec<RowChange>>, StoreError> {
        if after >= through {
            return Ok(Vec::new());
        }
        let snapshot = &snapshot.snapshot;
        let iter = scope_entries(self, snapshot, scope, after);
        let mut referenced = Referenced::new(self, snapshot, scope);
        let mut out: Vec<Vec<RowChange>> = Vec::new();
        let mut read = 0;
        for item in iter {
            if read >= limit {
                break;
            }
            let (key, value) = item?;
            if !key.starts_with(scope.as_bytes()) {
                break;
            }
            let (raws, done) = Entry::new(&value)?.changes(after, through)?;
            let refs = refs_of(&raws);
            let missing = referenced.read(scope, &refs)?;
            let mut from_files = if missing.is_empty() {
                Vec::new()
            } else {
                let asked: Vec<(&[u8], u64)> = missing.iter().map(|&i| refs[i]).collect();
                let found = flushed.versions(&asked)?;
                if found.len() != asked.len() {
                    return Err(StoreError::Flushed(format!(
                        "{} versions asked, {} found",
                        asked.len(),
                        found.len()
                    )));
                }
                found
            }
            .into_iter();
            let mut write = Vec::with_capacity(raws.len());
            let mut values = referenced.values();
            for (seq, raw) in &raws {
                let new = if raw.is_ref {
                    match values.next().expect("a version per reference") {
                        Some(value) => Some(RowVersion::decode(value)?),
                        None => Some(from_files.next().expect("one per missing reference")),
                    }
                } else {
                    decode_version(raw.new)?
                };
                write.push(RowChange {
                    seq: *seq,
                    kind: raw.kind,
                    new,
                    old: decode_version(raw.old)?,
                    old_seq: raw.old_seq,
                });
            }
            read += write.len();
            let done = done || write.last().is_some_and(|c| c.seq == through);
            if !write.is_empty() {
                out.push(write);
            }
            if done {
                break;
            }
        }
        Ok(out)
    }

    /// Whether a write to `scope` committed after `_seq` `seq`: the log
    /// holds every committed write (module docs), so its last entry of the
    /// scope says. `None` when the log cannot tell: the floor is above
    /// `seq`, so changes after it may be gone. The caller keeps the scope's
    /// writers out for as long as the answer must hold.
    pub fn written_since(&self, scope: &ScopeKey, seq: u64) -> Result<Option<bool>, StoreError> {
        let mut opts = ReadOptions::default();
        if let Some(end) = prefix_end(scope.as_bytes()) {
            opts.set_iterate_upper_bound(end);
        }
        let mut iter = self.db().raw_iterator_cf_opt(self.changes_cf(), opts);
        iter.seek_to_last();
        let last = match iter.key() {
            Some(key) if key.starts_with(scope.as_bytes()) => Some(u64::from_be_bytes(
                key[key.len() - 8..].try_into().expect("8 bytes"),
            )),
            _ => {
                iter.status()?;
                None
            }
        };
        // Read after the log: a trim raises the floor before it deletes,
        // so an entry gone from the read shows as a floor above `seq`.
        if self.changes_floor() > seq {
            return Ok(None);
        }
        Ok(Some(last.is_some_and(|last| last > seq)))
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

    /// Drops a log in the per-row layout (see the module docs) and raises
    /// the floor over it; returns the floor to use.
    pub(crate) fn upgrade_changes(
        db: &rocksdb::DB,
        floor: u64,
        last_seq: u64,
    ) -> Result<u64, StoreError> {
        let meta = db.cf_handle(crate::store::CF_META).expect("meta cf");
        if db.get_cf(meta, FORMAT_KEY)?.as_deref() == Some(FORMAT) {
            return Ok(floor);
        }
        let cf = db.cf_handle(CF_CHANGES).expect("changes cf");
        let had_entries = {
            let mut iter = db.raw_iterator_cf(cf);
            iter.seek_to_first();
            iter.status()?;
            iter.valid()
        };
        let floor = if had_entries {
            floor.max(last_seq)
        } else {
            floor
        };
        let mut batch = rocksdb::WriteBatch::default();
        if had_entries {
            batch.delete_range_cf(cf, b"" as &[u8], &[0xFFu8; 64][..]);
        }
        batch.put_cf(meta, FLOOR_KEY, floor.to_be_bytes());
        batch.put_cf(meta, FORMAT_KEY, FORMAT);
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        db.write_opt(batch, &opts)?;
        Ok(floor)
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
    /// A batch's changes of one scope become one entry.
    pub fn put_change(&mut self, scope: &ScopeKey, change: &RowChange) {
        let mut new = std::mem::take(&mut self.scratch);
        new.clear();
        if let Some(row) = &change.new {
            row.encode_into(&mut new);
        }
        let at = new.len();
        if let Some(row) = &change.old {
            row.encode_into(&mut new);
        }
        let (new_bytes, old_bytes) = new.split_at(at);
        self.pending_changes(scope).push(
            change.seq,
            change.kind,
            change.old_seq,
            new_bytes,
            old_bytes,
        );
        self.scratch = new;
    }

    /// Adds the version of a newly inserted row ([`Self::put_version_at`])
    /// and logs it as an insert that refers to that version (see the
    /// module docs).
    pub fn put_inserted(
        &mut self,
        scope: &ScopeKey,
        pk_prefix: &[u8],
        seq: u64,
        row: &RowVersion,
    ) -> u64 {
        let size = self.put_version_at(pk_prefix, seq, row);
        debug_assert!(pk_prefix.starts_with(scope.as_bytes()));
        let pk = &pk_prefix[scope.as_bytes().len()..];
        let row_bytes = size as usize - pk_prefix.len() - 8;
        self.pending_changes(scope).push_ref(seq, pk, row_bytes);
        size
    }

    /// The entry being built for `scope`; another scope's (or one that is
    /// full) is added first.
    fn pending_changes(&mut self, scope: &ScopeKey) -> &mut PendingChanges {
        if self.changes.scope != scope.as_bytes() || self.changes.size() >= ENTRY_BYTES {
            self.add_pending_changes();
            self.changes.start(scope);
        }
        &mut self.changes
    }

    /// Adds the entry being built to the batch (before it is written).
    pub(crate) fn add_pending_changes(&mut self) {
        let pending = &mut self.changes;
        if pending.is_empty() {
            return;
        }
        pending.value[..4].copy_from_slice(&pending.count.to_le_bytes());
        let mut key = pending.scope.clone();
        key.extend_from_slice(&pending.last_seq.to_be_bytes());
        self.inner
            .put_cf(self.store.changes_cf(), &key, &pending.value);
        pending.count = 0;
        pending.scope.clear();
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
