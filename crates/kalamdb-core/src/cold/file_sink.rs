//! A Parquet file being written, encoded on a thread of its own once it
//! has more than one batch, so that a flush or compaction builds the next
//! batch on one core while the last is encoded and compressed on the
//! other.
//!
//! A file of one batch (most scopes of a flush of many users) is written
//! where it is built: a thread per file would cost more than it saves.
//! From the second batch on the writer moves to its thread, and batches go
//! to it through a channel of [`QUEUED_BATCHES`], so at most that many
//! built batches wait in memory. A failure on the thread shows at the next
//! batch or at [`FileSink::finish`]; a file dropped unfinished is left
//! incomplete (never uploaded whole), as a writer dropped here is.

use super::bridge;
use crate::error::{CoreError, Result};
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_filestore::{FileStoreError, ParquetFileWriter, WrittenFile};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use tokio::runtime::Handle;

/// Built batches that may wait for the encoding thread.
const QUEUED_BATCHES: usize = 2;

type Encoded = std::result::Result<WrittenFile, FileStoreError>;

pub struct FileSink {
    state: State,
}

enum State {
    /// No batch or one so far: written on the caller's thread.
    Here {
        writer: Box<ParquetFileWriter>,
        batches: usize,
    },
    /// Encoded on its own thread.
    Piped {
        /// A batch to write, or `None`: finish the file. Closed without
        /// `None`: give the file up.
        batches: SyncSender<Option<RecordBatch>>,
        encoder: JoinHandle<Encoded>,
    },
    /// Finished, failed or being moved.
    Gone,
}

impl FileSink {
    pub fn new(writer: ParquetFileWriter) -> Self {
        Self {
            state: State::Here {
                writer: Box::new(writer),
                batches: 0,
            },
        }
    }

    /// Adds a batch; on a blocking thread (`handle` runs the store's I/O).
    pub fn write(&mut self, handle: &Handle, batch: RecordBatch) -> Result<()> {
        match &mut self.state {
            State::Here { writer, batches } if *batches == 0 => {
                *batches = 1;
                Ok(bridge::wait(handle, writer.write(&batch))?)
            }
            State::Here { .. } => {
                self.pipe(handle)?;
                self.write(handle, batch)
            }
            State::Piped { batches, .. } => {
                if batches.send(Some(batch)).is_ok() {
                    return Ok(());
                }
                // The thread stopped: its error says why.
                match self.join() {
                    Err(e) => Err(e),
                    Ok(_) => Err(CoreError::Internal(
                        "the file's encoding thread ended early".into(),
                    )),
                }
            }
            State::Gone => Err(CoreError::Internal("the file was finished already".into())),
        }
    }

    /// Moves the writer to a thread of its own.
    fn pipe(&mut self, handle: &Handle) -> Result<()> {
        let State::Here { mut writer, .. } = std::mem::replace(&mut self.state, State::Gone) else {
            unreachable!("only a file written here is piped")
        };
        let (tx, rx) = sync_channel::<Option<RecordBatch>>(QUEUED_BATCHES);
        let handle = handle.clone();
        let encoder = crate::background::spawn("kalamdb-encode", move || loop {
            match rx.recv() {
                Ok(Some(batch)) => bridge::wait(&handle, writer.write(&batch))?,
                Ok(None) => return bridge::wait(&handle, writer.finish()),
                Err(_) => {
                    return Err(FileStoreError::InvalidPath(
                        "the file was given up before it was finished".into(),
                    ))
                }
            }
        })?;
        self.state = State::Piped {
            batches: tx,
            encoder,
        };
        Ok(())
    }

    /// Waits for the encoding thread (after the channel is done with).
    fn join(&mut self) -> Result<WrittenFile> {
        let State::Piped { batches, encoder } = std::mem::replace(&mut self.state, State::Gone)
        else {
            return Err(CoreError::Internal("the file was finished already".into()));
        };
        drop(batches);
        let encoded = encoder
            .join()
            .map_err(|_| CoreError::Internal("the file's encoding thread panicked".into()))?;
        Ok(encoded?)
    }

    /// Completes the file.
    pub fn finish(mut self, handle: &Handle) -> Result<WrittenFile> {
        match std::mem::replace(&mut self.state, State::Gone) {
            State::Here { writer, .. } => Ok(bridge::wait(handle, writer.finish())?),
            State::Piped { batches, encoder } => {
                // A closed channel means the thread failed: the join says.
                let _ = batches.send(None);
                self.state = State::Piped { batches, encoder };
                self.join()
            }
            State::Gone => Err(CoreError::Internal("the file was finished already".into())),
        }
    }
}

impl Drop for FileSink {
    /// A file given up: its thread ends (the channel closes without a
    /// finish) and is waited for, so nothing of it outlives its owner.
    fn drop(&mut self) {
        if matches!(self.state, State::Piped { .. }) {
            let _ = self.join();
        }
    }
}
