//! Who listens to which scope, and the hand-over of committed changes.
//!
//! A writer publishes while it still holds the scope's write lock, right
//! after its batch committed, so one scope's changes reach every feed in
//! commit order. Publishing never waits: each feed belongs to one
//! connection's bounded [`Outbox`], and a feed whose outbox is full is
//! ended (`Overflow`) instead. From then on it is skipped, so what it
//! delivered has no gap; its subscriber learns the last `_seq` it got and
//! resumes from there.

use kalamdb_store::{RowChange, ScopeKey};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// The changes one write committed in one scope, shared by every feed.
#[derive(Debug)]
pub struct ChangeSet {
    pub table_uid: u64,
    /// The table's schema version when the changes were written.
    pub schema_version: u32,
    pub changes: Vec<RowChange>,
}

/// Why a feed stopped receiving changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// Its connection's queue was full.
    Overflow,
    /// `KILL LIVE QUERY`.
    Killed,
    TableDropped(String),
    UserDropped,
    /// The connection went away.
    Closed,
}

/// What `system.live` shows of a subscription.
#[derive(Debug, Clone)]
pub struct FeedInfo {
    /// Server-wide id (`KILL LIVE QUERY '<id>'`).
    pub live_id: String,
    /// The client's own id for it.
    pub subscription_id: String,
    pub user_id: String,
    pub connection_id: String,
    pub sql: String,
    pub options: String,
    pub created_at: i64,
}

/// One subscription's place in the hub.
#[derive(Debug)]
pub struct Feed {
    pub info: FeedInfo,
    scope: ScopeKey,
    outbox: Arc<Outbox>,
    ended: Mutex<Option<EndReason>>,
    is_ended: AtomicBool,
    /// Deliveries in the outbox not yet taken.
    in_flight: AtomicUsize,
    delivered: AtomicU64,
    last_seq: AtomicU64,
}

impl Feed {
    fn offer(self: &Arc<Self>, changes: &Arc<ChangeSet>) {
        if self.is_ended.load(Ordering::Acquire) {
            return;
        }
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let delivery = Delivery {
            feed: self.clone(),
            changes: changes.clone(),
        };
        if let Err(e) = self.outbox.tx.try_send(delivery) {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.end(match e {
                mpsc::error::TrySendError::Full(_) => EndReason::Overflow,
                mpsc::error::TrySendError::Closed(_) => EndReason::Closed,
            });
        }
    }

    /// Stops the feed (the first reason wins) and wakes its connection.
    pub fn end(&self, reason: EndReason) {
        let mut ended = self.ended.lock();
        if ended.is_none() {
            *ended = Some(reason);
            self.is_ended.store(true, Ordering::Release);
            self.outbox.wake.notify_one();
        }
    }

    pub fn end_reason(&self) -> Option<EndReason> {
        self.ended.lock().clone()
    }

    /// Ended, and nothing of it is left in the outbox: the subscriber has
    /// everything it will get.
    pub fn drained_end(&self) -> Option<EndReason> {
        if self.in_flight.load(Ordering::Acquire) == 0 {
            self.end_reason()
        } else {
            None
        }
    }

    /// The connection took one delivery of this feed from its outbox.
    pub fn taken(&self) {
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }

    /// The connection sent changes up to `seq` to the client.
    pub fn sent(&self, changes: u64, seq: u64) {
        self.delivered.fetch_add(changes, Ordering::Relaxed);
        self.last_seq.fetch_max(seq, Ordering::Relaxed);
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// The newest `_seq` the subscriber has been sent (its resume point).
    pub fn last_seq(&self) -> u64 {
        self.last_seq.load(Ordering::Relaxed)
    }
}

/// One delivery: a feed's share of a committed write.
#[derive(Debug)]
pub struct Delivery {
    pub feed: Arc<Feed>,
    pub changes: Arc<ChangeSet>,
}

/// One connection's queue of deliveries, bounded.
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Delivery>,
    /// Woken when one of the connection's feeds ends.
    pub wake: Notify,
}

impl Outbox {
    /// An outbox of `capacity` deliveries and the receiving end.
    pub fn new(capacity: usize) -> (Arc<Self>, mpsc::Receiver<Delivery>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Arc::new(Self {
                tx,
                wake: Notify::new(),
            }),
            rx,
        )
    }
}

/// Every feed, by the scope it listens to.
#[derive(Debug, Default)]
pub struct LiveHub {
    scopes: RwLock<HashMap<ScopeKey, Vec<Arc<Feed>>>>,
    /// Feeds registered, so a server without subscribers skips the map.
    feeds: AtomicUsize,
}

impl LiveHub {
    /// Hands `changes` of `scope` to every feed of it. Call with the
    /// scope's write lock held, after the commit.
    pub fn publish(
        &self,
        table_uid: u64,
        schema_version: u32,
        scope: &ScopeKey,
        changes: Vec<RowChange>,
    ) {
        if self.feeds.load(Ordering::Acquire) == 0 || changes.is_empty() {
            return;
        }
        let scopes = self.scopes.read();
        let Some(feeds) = scopes.get(scope) else {
            return;
        };
        let set = Arc::new(ChangeSet {
            table_uid,
            schema_version,
            changes,
        });
        for feed in feeds {
            feed.offer(&set);
        }
    }

    /// Adds a feed of `scope`. Call with the scope's write lock held, so
    /// that no commit falls between the caller's snapshot and the feed.
    pub fn register(&self, scope: ScopeKey, info: FeedInfo, outbox: Arc<Outbox>) -> Arc<Feed> {
        let feed = Arc::new(Feed {
            info,
            scope: scope.clone(),
            outbox,
            ended: Mutex::new(None),
            is_ended: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
        });
        self.scopes
            .write()
            .entry(scope)
            .or_default()
            .push(feed.clone());
        self.feeds.fetch_add(1, Ordering::AcqRel);
        feed
    }

    /// Removes a feed (unsubscribe, or its connection closed).
    pub fn unregister(&self, feed: &Arc<Feed>) {
        let mut scopes = self.scopes.write();
        if let Some(list) = scopes.get_mut(&feed.scope) {
            let before = list.len();
            list.retain(|f| !Arc::ptr_eq(f, feed));
            if list.len() < before {
                self.feeds.fetch_sub(1, Ordering::AcqRel);
            }
            if list.is_empty() {
                scopes.remove(&feed.scope);
            }
        }
    }

    /// Every registered feed.
    pub fn feeds(&self) -> Vec<Arc<Feed>> {
        self.scopes.read().values().flatten().cloned().collect()
    }

    /// Ends the feeds that `pick` selects with `reason`; returns how many.
    pub fn end_where(&self, pick: impl Fn(&Feed) -> bool, reason: EndReason) -> usize {
        let doomed: Vec<Arc<Feed>> = self.feeds().into_iter().filter(|f| pick(f)).collect();
        for feed in &doomed {
            feed.end(reason.clone());
            self.unregister(feed);
        }
        doomed.len()
    }

    /// A table is gone: its feeds end.
    pub fn end_table(&self, table_uid: u64, name: &str) {
        let prefix = ScopeKey::table_prefix(table_uid);
        self.end_where(
            |f| f.scope.as_bytes().starts_with(&prefix),
            EndReason::TableDropped(name.to_string()),
        );
    }

    /// A user is gone: its feeds end.
    pub fn end_user(&self, user_id: &str) {
        self.end_where(|f| f.info.user_id == user_id, EndReason::UserDropped);
    }

    /// Feeds of one user, for the per-user limit.
    pub fn count_of_user(&self, user_id: &str) -> usize {
        self.scopes
            .read()
            .values()
            .flatten()
            .filter(|f| f.info.user_id == user_id && f.end_reason().is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_store::{ChangeKind, RowVersion};

    fn info(user: &str) -> FeedInfo {
        FeedInfo {
            live_id: format!("{user}-1"),
            subscription_id: "s".into(),
            user_id: user.into(),
            connection_id: "c".into(),
            sql: String::new(),
            options: String::new(),
            created_at: 0,
        }
    }

    fn insert(seq: u64) -> Vec<RowChange> {
        vec![RowChange {
            seq,
            kind: ChangeKind::Insert,
            new: Some(RowVersion {
                deleted: false,
                schema_version: 1,
                values: vec![],
            }),
            old: None,
            old_seq: 0,
        }]
    }

    #[test]
    fn a_full_outbox_ends_the_feed_and_later_changes_never_reach_it() {
        let hub = LiveHub::default();
        let scope = ScopeKey::new(1, Some("alice"));
        let (outbox, mut rx) = Outbox::new(2);
        let feed = hub.register(scope.clone(), info("alice"), outbox);
        for seq in 1..=3 {
            hub.publish(1, 1, &scope, insert(seq));
        }
        assert_eq!(feed.end_reason(), Some(EndReason::Overflow));
        assert_eq!(feed.drained_end(), None, "two deliveries are still queued");
        let mut seqs = Vec::new();
        while let Ok(d) = rx.try_recv() {
            d.feed.taken();
            seqs.push(d.changes.changes[0].seq);
        }
        assert_eq!(seqs, vec![1, 2], "what was queued precedes the gap");
        hub.publish(1, 1, &scope, insert(4));
        assert!(rx.try_recv().is_err(), "an ended feed gets nothing more");
        assert_eq!(feed.drained_end(), Some(EndReason::Overflow));
    }

    #[test]
    fn other_scopes_and_dropped_tables() {
        let hub = LiveHub::default();
        let alice = ScopeKey::new(1, Some("alice"));
        let bob = ScopeKey::new(1, Some("bob"));
        let (outbox, mut rx) = Outbox::new(8);
        let a = hub.register(alice.clone(), info("alice"), outbox.clone());
        let other = hub.register(ScopeKey::new(2, None), info("bob"), outbox);
        hub.publish(1, 1, &bob, insert(1));
        assert!(rx.try_recv().is_err(), "bob's change is not alice's");
        assert_eq!(hub.count_of_user("alice"), 1);
        hub.end_table(1, "app.t");
        assert_eq!(
            a.end_reason(),
            Some(EndReason::TableDropped("app.t".into()))
        );
        assert_eq!(other.end_reason(), None);
        assert_eq!(hub.feeds().len(), 1);
        hub.publish(1, 1, &alice, insert(2));
        assert!(rx.try_recv().is_err());
    }
}
