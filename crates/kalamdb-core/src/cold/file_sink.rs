//! A Parquet file being written, encoded and compressed on a thread of its
//! own once it has more than one batch ([`crate::offload`]), so that a
//! flush or compaction builds the next batch on one core while the last is
//! encoded on the other. A file given up unfinished is left incomplete
//! (never uploaded whole), as a writer dropped on the caller's thread is.

use crate::error::{CoreError, Result};
use crate::offload::{Offloaded, Stage};
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_filestore::{ParquetFileWriter, WrittenFile};
use tokio::runtime::Handle;

pub struct FileSink(Offloaded<Encode>);

struct Encode {
    writer: ParquetFileWriter,
    /// Runs the store's I/O; the stage runs on blocking threads.
    handle: Handle,
}

impl Stage for Encode {
    type Item = RecordBatch;
    type Output = WrittenFile;
    type Error = CoreError;
    const NAME: &'static str = "kalamdb-encode";

    fn add(&mut self, batch: RecordBatch) -> Result<()> {
        Ok(super::bridge::wait(
            &self.handle,
            self.writer.write(&batch),
        )?)
    }

    fn finish(self) -> Result<WrittenFile> {
        Ok(super::bridge::wait(&self.handle, self.writer.finish())?)
    }

    fn stopped(reason: String) -> CoreError {
        CoreError::Internal(format!("writing the file stopped: {reason}"))
    }
}

impl FileSink {
    /// On a blocking thread; `handle` runs the store's I/O.
    pub fn new(writer: ParquetFileWriter, handle: &Handle) -> Self {
        Self(Offloaded::new(Encode {
            writer,
            handle: handle.clone(),
        }))
    }

    /// Encodes on the caller's thread: for a caller on a thread of its own
    /// already (a flush's lane).
    pub fn here(writer: ParquetFileWriter, handle: &Handle) -> Self {
        Self(Offloaded::here(Encode {
            writer,
            handle: handle.clone(),
        }))
    }

    pub fn write(&mut self, batch: RecordBatch) -> Result<()> {
        self.0.add(batch)
    }

    /// Completes the file.
    pub fn finish(self) -> Result<WrittenFile> {
        self.0.finish()
    }
}
