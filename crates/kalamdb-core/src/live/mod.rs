//! Live queries: subscriptions that receive every committed change of the
//! rows they select, exactly once, resumable by `_seq`.
//!
//! - The write path logs each row change in the change log
//!   (`kalamdb_store::changes`, same batch as the versions) and, after the
//!   commit and still under the scope lock, hands it to the [`LiveHub`].
//! - A subscription registers its feed under the scope lock and takes its
//!   snapshot there too, so the snapshot holds exactly the changes before
//!   the feed's first delivery ([`open`]).
//! - A resume (`from_seq_id = n`) registers the same way at `_seq` S and
//!   replays the log's changes in `(n, S]` before the live ones; if the log
//!   no longer reaches back to `n` it says so ([`LiveCode::HistoryUnavailable`]).
//! - [`LivePlan`] decides what a change is for one subscriber.
//! - The server owns the sockets: it reads an [`Outbox`] per connection and
//!   encodes what the subscription turns each delivery into.
//!
//! - A system table has no change log; a dba's live query over one reads
//!   it again every `system_poll` and sends the difference ([`SystemWatch`]).
//!
//! Flushes and compactions move rows between files and tiers and never
//! reach the hub, so they are never changes. An insert entry refers to its
//! row's version, which a resume reads from the hot tier or, once flushed,
//! from the scope's files (`read::FlushedFiles`); the only thing either
//! does to the log is write the values into the entries that refer to the
//! versions it removes for good (`kalamdb_store::Inliner`), which changes
//! no entry's meaning.

mod error;
mod history;
mod hub;
pub(crate) mod open;
mod plan;
mod system;

pub use error::{LiveCode, LiveError, LiveResult};
pub use history::History;
pub use hub::{
    ChangeSet, Delivery, Encoded, EndReason, Feed, FeedInfo, LiveHub, Outbox, Published,
};
pub use open::{InitialPage, StartMode, SubscribeRequest, Subscription};
pub(crate) use plan::Compiled;
pub use plan::{LiveChange, LivePlan};
pub use system::SystemWatch;

use crate::catalog::TableDef;
pub use kalamdb_store::ChangeKind;
use kalamdb_store::{RowChange, ScopeKey};
use std::time::Duration;

/// Bounds of live queries (config `[live]`).
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Active subscriptions of one user, over all connections.
    pub max_subscriptions_per_user: usize,
    /// The initial data of one subscription, as Arrow memory.
    pub max_initial_bytes: usize,
    /// Rows per initial batch when the client names none, and the most it
    /// may ask for.
    pub default_batch_size: usize,
    pub max_batch_size: usize,
    /// How long the change log keeps a change (a client may resume from
    /// any `_seq` this recent).
    pub history_retention: Duration,
    /// The change log's size above which older changes go sooner.
    pub history_max_bytes: u64,
    /// Where clients open live queries (the `ws_url` of `SUBSCRIBE TO`).
    pub ws_url: String,
    /// How often a live query over a system table reads it again.
    pub system_poll: Duration,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            max_subscriptions_per_user: 10,
            max_initial_bytes: 64 << 20,
            default_batch_size: 1000,
            max_batch_size: 10_000,
            history_retention: Duration::from_secs(24 * 3600),
            history_max_bytes: 1 << 30,
            ws_url: "/v1/ws".into(),
            system_poll: Duration::from_secs(1),
        }
    }
}

/// The live-query service: the hub, the change log's retention, bounds.
#[derive(Debug)]
pub struct Live {
    pub hub: LiveHub,
    pub history: History,
    pub config: LiveConfig,
}

impl Live {
    pub fn new(config: LiveConfig) -> Self {
        Self {
            hub: LiveHub::new(config.max_subscriptions_per_user),
            history: History::default(),
            config,
        }
    }

    /// See [`LiveHub::publish`].
    pub fn publish(&self, def: &TableDef, scope: &ScopeKey, changes: Vec<RowChange>) {
        self.hub
            .publish(def.uid, def.schema_version, scope, changes);
    }

    pub fn end_table(&self, table_uid: u64, name: &str) {
        self.hub.end_table(table_uid, name);
    }

    pub fn end_table_altered(&self, table_uid: u64, name: &str) {
        self.hub.end_table_altered(table_uid, name);
    }

    pub fn end_user(&self, user_id: &str) {
        self.hub.end_user(user_id);
    }
}
