//! Feeds every log line the server prints into `system.server_logs` (the
//! last few thousand, kept in memory by the engine).

use kalamdb_commons::clock::{Clock, SystemClock};
use kalamdb_core::server_logs::{capture, LogLine};
use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

pub struct CaptureLayer;

/// The event's message, then its other fields as `key=value`.
#[derive(Default)]
struct Message {
    message: String,
    fields: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut message = Message::default();
        event.record(&mut message);
        // A log line's time is the wall clock's, like the printed line's.
        let micros = SystemClock.now_micros();
        capture(LogLine {
            timestamp: kalamdb_commons::timestamp_utc(micros),
            level: meta.level().to_string(),
            thread: std::thread::current().name().map(String::from),
            target: Some(meta.target().to_string()),
            line: meta.line().map(i64::from),
            message: message.message + &message.fields,
        });
    }
}
