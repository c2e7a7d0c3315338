//! A scope's visible rows in key order: a k-way merge of its hot versions
//! and its files (each sorted by key), in which the version with the
//! highest `_seq` wins and a tombstone hides its key.
//!
//! The files sit in a min-heap by their current key, so each row costs a
//! logarithm of the file count, not a pass over every file. Where the rest
//! of a file's batch lies wholly below every other source's next key, no
//! other version of those keys exists, and the rows go to the sink as Arrow
//! columns; a scope with one file and no newer hot rows is read that way
//! from end to end.

use super::cursor::{FileCursor, FileRead};
use super::decode::{unreadable_file, FileBatch};
use super::{RowSink, ScopeView, Version};
use crate::cold::bridge;
use crate::cold::ColdStore;
use crate::error::Result;
use kalamdb_commons::Value;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tokio::runtime::Handle;

impl ScopeView<'_> {
    /// Every visible row of the scope, in key order, into `sink`, until it
    /// says stop. Runs on a blocking thread.
    pub fn scan(&self, cold: &ColdStore, handle: &Handle, sink: &mut dyn RowSink) -> Result<()> {
        let mut hot = self.live_hot(self.scope.as_bytes()).peekable();
        if self.files.is_empty() {
            // Only hot rows: stream them straight from the snapshot.
            for item in hot {
                let (_, seq, row) = item?;
                if !self.emit(sink, seq, row.deleted, &row.values)? {
                    break;
                }
            }
            return Ok(());
        }
        self.files_read
            .set(self.files_read.get() + self.files.entries.len());
        if self.files.settled() && !self.has_live_hot()? {
            return self.scan_settled(cold, handle, sink);
        }
        // Other columns' ranges may skip rows only where no file holds an
        // older version of their keys.
        let unsafe_values = !self.read.values.is_empty() && !self.files.keys_apart();
        let read = if unsafe_values {
            FileRead {
                values: Vec::new(),
                ..self.read.clone()
            }
        } else {
            self.read.clone()
        };
        let mut files = self
            .files
            .entries
            .iter()
            .map(|e| FileCursor::open(cold, handle, self.def, self.scope, e, &read))
            .collect::<Result<Vec<_>>>()?;
        // (current key, file index) of every file not at its end.
        let mut heap = BinaryHeap::with_capacity(files.len());
        for (i, file) in files.iter_mut().enumerate() {
            if let Some(key) = file.peek_key()? {
                heap.push(Reverse((key.to_vec(), i)));
            }
        }
        loop {
            let hot_key = match hot.peek() {
                Some(Ok((key, _, _))) => Some(key.as_slice()),
                Some(Err(_)) => return Err(hot.next().and_then(|r| r.err()).expect("peeked")),
                None => None,
            };
            let file_key = heap.peek().map(|Reverse((key, _))| key.as_slice());
            let hot_first = match (hot_key, file_key) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(h), Some(f)) => h < f,
            };
            if hot_first {
                let (_, seq, row) = hot.next().expect("peeked")?;
                if !self.emit(sink, seq, row.deleted, &row.values)? {
                    break;
                }
                continue;
            }
            let Reverse((min, i)) = heap.pop().expect("peeked");
            let shadowed = hot_key == Some(min.as_slice());
            let next_other = match (heap.peek(), hot_key) {
                (Some(Reverse((f, _))), Some(h)) => Some(f.as_slice().min(h)),
                (Some(Reverse((f, _))), None) => Some(f.as_slice()),
                (None, h) => h,
            };
            // The rest of this file's batch lies below every other source.
            // (Another source at `min`, a file or a hot version, makes
            // `next_other` at most `min`, which no last key is below.)
            let pass_through = match (files[i].last_key_of_batch()?, next_other) {
                (Some(last), Some(other)) => last < other,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if pass_through {
                let (rows, from) = files[i].rest_of_batch().expect("not at its end");
                let go_on = sink.file_rows(rows, from)?;
                files[i].finish_batch()?;
                if !go_on {
                    break;
                }
                if let Some(key) = files[i].peek_key()? {
                    heap.push(Reverse((key.to_vec(), i)));
                }
                continue;
            }
            // Every file holding `min`: the highest `_seq` wins.
            let mut best: Option<Version> = None;
            let mut holders = vec![i];
            while heap.peek().is_some_and(|Reverse((key, _))| *key == min) {
                let Reverse((_, j)) = heap.pop().expect("peeked");
                holders.push(j);
            }
            for j in holders {
                let version = files[j].take()?;
                let older = match &best {
                    Some(b) if b.seq > version.seq => Some(version),
                    _ => best.replace(version),
                };
                if let Some(older) = older {
                    sink.superseded(older)?;
                }
                if let Some(key) = files[j].peek_key()? {
                    heap.push(Reverse((key.to_vec(), j)));
                }
            }
            if shadowed {
                // A live hot version is newer than every file's.
                let (_, seq, row) = hot.next().expect("peeked")?;
                if let Some(older) = best.replace(Version::from((seq, row))) {
                    sink.superseded(older)?;
                }
            }
            if let Some(version) = best {
                if !self.emit(sink, version.seq, version.deleted, &version.values)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// [`Self::scan`] of a scope whose files hold each key once, with no
    /// tombstones and no hot version newer than them: every row of every
    /// file is visible as it is, so the files are read one after another
    /// in key order, only the asked columns, with no merge (no keys
    /// compared, no `_seq` unless asked).
    fn scan_settled(
        &self,
        cold: &ColdStore,
        handle: &Handle,
        sink: &mut dyn RowSink,
    ) -> Result<()> {
        let names = self.read.plain_columns(self.def);
        for entry in self.files.by_key() {
            let mut scan = self
                .read
                .open(cold, handle, self.def, entry, names.as_deref())?;
            while let Some(batch) = bridge::wait(handle, scan.next_batch()) {
                let batch = batch.map_err(|e| unreadable_file(self.def, &entry.path, e))?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let rows = FileBatch::decode_columns(self.def, entry.schema_version, &batch)?;
                if !sink.file_rows(&rows, 0)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// One key's newest version to the sink: a live row, a tombstone when
    /// the view asked for them, else nothing. Whether to go on.
    pub(crate) fn emit(
        &self,
        sink: &mut dyn RowSink,
        seq: u64,
        deleted: bool,
        values: &[Value],
    ) -> Result<bool> {
        match (deleted, self.tombstones) {
            (false, _) => sink.row(seq, values),
            (true, true) => sink.tombstone(seq, values),
            (true, false) => Ok(true),
        }
    }

    /// Hands a lookup's versions to `sink` in key order, as [`Self::emit`]
    /// would one by one, until the sink wants no more.
    pub fn emit_found(&self, sink: &mut dyn RowSink, found: super::Versions) -> Result<()> {
        for version in found.into_values() {
            if !self.emit(sink, version.seq, version.deleted, &version.values)? {
                break;
            }
        }
        Ok(())
    }
}
