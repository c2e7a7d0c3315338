//! `system.server_logs`: the server's most recent log lines, kept in
//! memory (the last [`CAPACITY`], each message clipped to
//! [`MAX_MESSAGE_CHARS`]), so a dba can read them over SQL without a shell
//! on the machine. The server's logging layer feeds [`capture`]; lines
//! below the configured log level never arrive. Readable by dba and above.

use super::build;
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use kalamdb_commons::{KalamType, Role};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub const CAPACITY: usize = 2_000;
pub const MAX_MESSAGE_CHARS: usize = 4_096;

/// One log line as the server's logger saw it.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub level: String,
    pub thread: Option<String>,
    pub target: Option<String>,
    pub line: Option<i64>,
    pub message: String,
}

/// Process-wide, as the logger it is fed by is.
static LINES: Mutex<VecDeque<LogLine>> = Mutex::new(VecDeque::new());

/// Keeps one log line, dropping the oldest beyond [`CAPACITY`].
pub fn capture(mut line: LogLine) {
    if line.message.len() > MAX_MESSAGE_CHARS {
        line.message = kalamdb_commons::clip(&line.message, MAX_MESSAGE_CHARS);
    }
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    if lines.len() == CAPACITY {
        lines.pop_front();
    }
    lines.push_back(line);
}

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("timestamp", KalamType::Text, false),
        field("level", KalamType::Text, false),
        field("thread", KalamType::Text, true),
        field("target", KalamType::Text, true),
        field("line", KalamType::BigInt, true),
        field("message", KalamType::Text, false),
    ]))
}

pub fn rows(_services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    if scope.caller.role < Role::Dba {
        return Err(DataFusionError::Execution(
            "permission denied: system.server_logs is readable by dba and above".into(),
        ));
    }
    let lines: Vec<LogLine> = LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(lines.iter().map(|l| l.timestamp.as_str())),
            build::text(lines.iter().map(|l| l.level.as_str())),
            build::opt_text(lines.iter().map(|l| l.thread.clone())),
            build::opt_text(lines.iter().map(|l| l.target.clone())),
            build::opt_int64(lines.iter().map(|l| l.line)),
            build::text(lines.iter().map(|l| l.message.as_str())),
        ],
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines_and_clips_long_messages() {
        let line = |message: String| LogLine {
            timestamp: "t".into(),
            level: "INFO".into(),
            thread: None,
            target: None,
            line: None,
            message,
        };
        for i in 0..CAPACITY + 10 {
            capture(line(format!("line {i}")));
        }
        capture(line("x".repeat(MAX_MESSAGE_CHARS * 3)));
        let lines = LINES.lock().unwrap();
        assert_eq!(lines.len(), CAPACITY);
        assert!(lines.iter().all(|l| l.message != "line 10"));
        let last = &lines.back().unwrap().message;
        assert_eq!(
            last.chars().count(),
            MAX_MESSAGE_CHARS + 1,
            "clipped, with its mark"
        );
    }
}
