//! A scope's rows on their way into its file. The flush's own thread reads
//! RocksDB and gathers the newest versions, as stored, into chunks of
//! [`CHUNK_ROWS`]; building Arrow columns from them and encoding those into
//! Parquet are the rest of the work. From a scope's second chunk on they
//! leave the reading thread ([`crate::offload`]): a lane thread builds each
//! batch and encodes it, so on two cores reading and writing overlap.
//! Building and encoding share the lane's thread: as three threads the
//! stages took turns on the two cores and the flush was slower (see
//! docs/BENCHMARKS.md, "Flush"). Encoding is the larger part, so while the
//! lane is behind the reading thread builds the next batch itself instead
//! of waiting. Memory stays bounded: two chunks or batches wait for the
//! lane, one more is built on the reading thread.
//!
//! A version that does not decode fails the scope as bad data, on
//! whichever thread finds it; it shows at the next chunk or at the finish.

use super::ScopeFailure;
use crate::catalog::TableDef;
use crate::cold::FileSink;
use crate::offload::{Offloaded, Stage};
use crate::read::{BatchBuilder, BATCH_ROWS};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_filestore::{ParquetFileWriter, WrittenFile};
use tokio::runtime::Handle;

/// Rows per chunk: a chunk becomes one batch. Four scan batches: every
/// hand-over between the threads may wake one, and on two cores fewer,
/// larger hand-overs keep them busier (a chunk is about 1.5 MiB for rows
/// of a few short columns).
pub(super) const CHUNK_ROWS: usize = 4 * BATCH_ROWS;

/// Byte strings kept one after another in one buffer: no allocation per
/// string (a flush keeps one per version it reads).
#[derive(Debug, Default)]
pub(super) struct Runs {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Runs {
    pub(super) fn push(&mut self, run: &[u8]) {
        self.bytes.extend_from_slice(run);
        self.ends.push(self.bytes.len());
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// An empty buffer with room for what `self` holds.
    fn with_room_of(&self) -> Self {
        Self {
            bytes: Vec::with_capacity(self.bytes.len()),
            ends: Vec::with_capacity(self.ends.len()),
        }
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(start, end)| &self.bytes[start..*end])
    }
}

/// Stored versions (`RowVersion`'s encoding) with their `_seq`, in key
/// order.
#[derive(Debug, Default)]
pub(super) struct Chunk {
    seqs: Vec<u64>,
    versions: Runs,
}

impl Chunk {
    pub(super) fn push(&mut self, seq: u64, version: &[u8]) {
        self.seqs.push(seq);
        self.versions.push(version);
    }

    pub(super) fn len(&self) -> usize {
        self.seqs.len()
    }

    /// Hands the chunk over, leaving an empty one sized like it (the next
    /// chunk of a large scope fills it without growing it step by step).
    pub(super) fn take(&mut self) -> Chunk {
        let next = Chunk {
            seqs: Vec::with_capacity(self.seqs.len()),
            versions: self.versions.with_room_of(),
        };
        std::mem::replace(self, next)
    }

    fn versions(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.seqs.iter().copied().zip(self.versions.iter())
    }
}

pub(super) struct Lane {
    lane: Offloaded<Build>,
    /// Builds a batch on the reading thread when the lane is behind.
    here: BatchBuilder,
    schema: SchemaRef,
}

/// What the lane gets: a chunk to build and encode, or a batch the reading
/// thread built itself to encode.
enum Work {
    Chunk(Chunk),
    Batch(RecordBatch),
}

/// Builds a scope's batches and hands them to its file.
struct Build {
    batches: BatchBuilder,
    schema: SchemaRef,
    sink: FileSink,
}

fn build(
    batches: &mut BatchBuilder,
    schema: &SchemaRef,
    chunk: &Chunk,
) -> Result<RecordBatch, ScopeFailure> {
    let bad_data = |e: &dyn std::fmt::Display| ScopeFailure::new(None, e.to_string(), true);
    for (seq, version) in chunk.versions() {
        batches
            .push_encoded(seq, version)
            .map_err(|e| bad_data(&e))?;
    }
    batches.finish(schema).map_err(|e| bad_data(&e))
}

impl Stage for Build {
    type Item = Work;
    type Output = WrittenFile;
    type Error = ScopeFailure;
    const NAME: &'static str = "kalamdb-build";

    fn add(&mut self, work: Work) -> Result<(), ScopeFailure> {
        let batch = match work {
            Work::Chunk(chunk) => build(&mut self.batches, &self.schema, &chunk)?,
            Work::Batch(batch) => batch,
        };
        self.sink
            .write(batch)
            .map_err(|e| ScopeFailure::new(None, e.to_string(), false))
    }

    fn finish(self) -> Result<WrittenFile, ScopeFailure> {
        self.sink
            .finish()
            .map_err(|e| ScopeFailure::new(None, e.to_string(), false))
    }

    fn stopped(reason: String) -> ScopeFailure {
        ScopeFailure::new(None, format!("building the file stopped: {reason}"), false)
    }
}

impl Lane {
    pub(super) fn new(
        def: &TableDef,
        schema: SchemaRef,
        file: ParquetFileWriter,
        handle: &Handle,
    ) -> Self {
        let sink = FileSink::here(file, handle);
        let projection: Vec<usize> = (0..def.columns.len() + 2).collect();
        Self {
            lane: Offloaded::new(Build {
                batches: BatchBuilder::with_capacity(def, &projection, CHUNK_ROWS),
                schema: schema.clone(),
                sink,
            }),
            // Grows when first used: most scopes never need it.
            here: BatchBuilder::with_capacity(def, &projection, 0),
            schema,
        }
    }

    /// Hands the chunk to the lane; while the lane is behind (its queue is
    /// full), builds the batch here first, so the two threads share the
    /// building as their speeds allow.
    pub(super) fn write(&mut self, chunk: Chunk) -> Result<(), ScopeFailure> {
        match self.lane.try_add(Work::Chunk(chunk))? {
            None => Ok(()),
            Some(Work::Chunk(chunk)) => {
                let batch = build(&mut self.here, &self.schema, &chunk)?;
                self.lane.add(Work::Batch(batch))
            }
            Some(batch) => self.lane.add(batch),
        }
    }

    /// Completes the file.
    pub(super) fn finish(self) -> Result<WrittenFile, ScopeFailure> {
        self.lane.finish()
    }
}
