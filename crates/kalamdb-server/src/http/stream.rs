//! The body of a successful `/v1/api/sql` request: whole when every result
//! was collected, streamed when the last statement's result is large.
//!
//! A streamed body has already been answered with 200 when the rest of the
//! rows are read, so a failure after that (a result cap, the statement
//! timeout, an unreadable file) cannot become an error response. The body
//! is then cut off instead: the connection closes before the final chunk,
//! so no client can take a partial result for a whole one.

use super::encode;
use axum::body::{Body, Bytes};
use kalamdb_core::ResultStream;
use kalamdb_core::StatementResult;
use std::time::Instant;
use tokio::sync::mpsc;

/// Bytes gathered before they are handed to the connection.
const CHUNK_BYTES: usize = 256 << 10;

enum Chunk {
    Data(Bytes),
    End,
    Failed(String),
}

/// The body for the results of a batch that succeeded. Streaming needs a
/// Tokio runtime to pump the rest from; this is called on the query runtime.
pub fn reply(
    mut results: Vec<StatementResult>,
    started: Instant,
    deadline: tokio::time::Instant,
) -> Body {
    let mut out = Vec::new();
    encode::body_head(&mut out);
    let rest = results.last_mut().and_then(|last| last.rest.take());
    let Some(rest) = rest else {
        for (i, result) in results.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            encode::result(&mut out, result);
        }
        encode::body_tail(&mut out, took_ms(started));
        return Body::from(out);
    };
    let mut last = results.pop().expect("the rest belongs to the last result");
    for result in &results {
        encode::result(&mut out, result);
        out.push(b',');
    }
    drop(results);
    encode::result_head(&mut out, &last);
    let mut first = true;
    for batch in std::mem::take(&mut last.batches) {
        encode::rows(&mut out, &batch, &mut first);
    }
    // Two chunks in flight: the reader's pace sets the writer's.
    let (tx, rx) = mpsc::channel(2);
    let pump = Pump {
        tx,
        last,
        first,
        started,
    };
    tokio::spawn(pump.run(out, rest, deadline));
    Body::from_stream(futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Chunk::Data(bytes)) => Some((Ok(bytes), Some(rx))),
            Some(Chunk::End) => None,
            Some(Chunk::Failed(why)) => Some((Err(std::io::Error::other(why)), None)),
            None => Some((Err(std::io::Error::other("the result stopped")), None)),
        }
    }))
}

/// Reads the rest of a result and sends it on as JSON.
struct Pump {
    tx: mpsc::Sender<Chunk>,
    /// The last result, its schema and the rows already sent.
    last: StatementResult,
    first: bool,
    started: Instant,
}

impl Pump {
    async fn run(mut self, head: Vec<u8>, rest: ResultStream, deadline: tokio::time::Instant) {
        let failure = match tokio::time::timeout_at(deadline, self.send(head, rest)).await {
            Ok(Ok(())) => return,
            Ok(Err(why)) => why,
            Err(_) => "the request took longer than its time limit".to_string(),
        };
        tracing::warn!(
            error = %failure,
            user = %self.last.as_user,
            "a streamed result stopped before its end; its response is cut off"
        );
        // If the channel is full the client is not reading; dropping the
        // sender cuts the body off just the same.
        let _ = self.tx.try_send(Chunk::Failed(failure));
    }

    async fn send(&mut self, mut out: Vec<u8>, mut rest: ResultStream) -> Result<(), String> {
        let mut rows = self.last.row_count;
        loop {
            if out.len() >= CHUNK_BYTES {
                data(&self.tx, std::mem::take(&mut out)).await?;
            }
            match rest.next().await {
                None => break,
                Some(Ok(batch)) => {
                    rows += batch.num_rows();
                    encode::rows(&mut out, &batch, &mut self.first);
                }
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
        encode::result_tail(&mut out, &self.last, rows);
        encode::body_tail(&mut out, took_ms(self.started));
        data(&self.tx, out).await?;
        self.tx
            .send(Chunk::End)
            .await
            .map_err(|_| "the client went away".to_string())
    }
}

async fn data(tx: &mpsc::Sender<Chunk>, bytes: Vec<u8>) -> Result<(), String> {
    tx.send(Chunk::Data(Bytes::from(bytes)))
        .await
        .map_err(|_| "the client went away".to_string())
}

fn took_ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
