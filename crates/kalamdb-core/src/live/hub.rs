//! Who listens to which scope, and the hand-over of committed changes.
//!
//! A writer publishes while it still holds the scope's write lock, right
//! after its batch committed, so one scope's changes reach every feed in
//! commit order. Publishing never waits: each feed belongs to one
//! connection's bounded [`Outbox`], and a feed whose outbox is full is
//! ended (`Overflow`) instead. From then on it is skipped, so what it
//! delivered has no gap; its subscriber learns the last `_seq` it got and
//! resumes from there.
//!
//! The feeds of one scope are grouped by plan: subscribers whose queries
//! compute the same output (a SHARED table's many readers of one SELECT)
//! share one [`Published`] per write, so what the plan makes of it is
//! computed and encoded once for all of them.

use super::error::{LiveCode, LiveError, LiveResult};
use super::plan::{LiveChange, LivePlan};
use kalamdb_store::{RowChange, ScopeKey};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use tokio::sync::{mpsc, Notify};

/// The changes one write committed in one scope, shared by every feed.
#[derive(Debug)]
pub struct ChangeSet {
    pub table_uid: u64,
    /// The table's schema version when the changes were written.
    pub schema_version: u32,
    pub changes: Vec<RowChange>,
}

/// One committed write as the feeds of one plan see it. The first of
/// them to send it computes the plan's changes and encodes them; the
/// others reuse the result.
#[derive(Debug)]
pub struct Published {
    pub set: Arc<ChangeSet>,
    plan: Arc<LivePlan>,
    encoded: OnceLock<Result<Vec<Encoded>, LiveError>>,
}

/// One change message, encoded by the server without the parts that
/// differ between subscribers (their subscription ids).
#[derive(Debug)]
pub struct Encoded {
    pub text: String,
    /// Row changes it carries (for `system.live`).
    pub rows: u64,
    /// Its resume point once it is sent.
    pub last_seq: u64,
}

impl Published {
    /// The plan's changes of this write, each encoded by `encode`, once.
    pub fn encoded(
        &self,
        encode: impl Fn(&LiveChange) -> String,
    ) -> Result<&[Encoded], &LiveError> {
        self.encoded
            .get_or_init(|| {
                let changes = self.plan.apply(&self.set)?;
                Ok(changes
                    .iter()
                    .map(|change| Encoded {
                        text: encode(change),
                        rows: change.row_count() as u64,
                        last_seq: change.last_seq,
                    })
                    .collect())
            })
            .as_deref()
    }

    /// The `_seq` of the write's last row change.
    pub fn last_seq(&self) -> Option<u64> {
        self.set.changes.last().map(|c| c.seq)
    }
}

/// Why a feed stopped receiving changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// Its connection's queue was full.
    Overflow,
    /// `KILL LIVE QUERY`.
    Killed,
    TableDropped(String),
    /// A column it may read was dropped or changed type: its plan's
    /// columns no longer describe the table.
    TableAltered(String),
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
    /// Whose rows it reads: the user, or whom it runs `EXECUTE AS`.
    pub reader_id: String,
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
    /// Shared by the scope's feeds of an equal plan (none: a system
    /// table's watch, which no write reaches).
    plan: Option<Arc<LivePlan>>,
    outbox: Arc<Outbox>,
    ended: Mutex<Option<EndReason>>,
    is_ended: AtomicBool,
    /// Deliveries in the outbox not yet taken.
    in_flight: AtomicUsize,
    delivered: AtomicU64,
    last_seq: AtomicU64,
}

impl Feed {
    fn offer(self: &Arc<Self>, changes: &Arc<Published>) {
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

    pub fn plan(&self) -> Option<&Arc<LivePlan>> {
        self.plan.as_ref()
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
    pub changes: Arc<Published>,
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

/// Table uids start at 1: no write is ever published under this one.
const WATCH_TABLE_UID: u64 = 0;

/// The feeds of one scope that share a plan.
#[derive(Debug)]
struct Group {
    plan: Option<Arc<LivePlan>>,
    feeds: Vec<Arc<Feed>>,
}

/// Every feed, by the scope it listens to.
#[derive(Debug)]
pub struct LiveHub {
    scopes: RwLock<HashMap<ScopeKey, Vec<Group>>>,
    /// Feeds registered, so a server without subscribers skips the map.
    feeds: AtomicUsize,
    /// Registered feeds per user (the connection's user, also for a live
    /// query run `EXECUTE AS` someone else). Changed only under the
    /// `scopes` write lock, so the limit holds under concurrency.
    per_user: Mutex<HashMap<String, usize>>,
    /// The plans in use, by table uid: an equal plan of another scope
    /// (every user's `SELECT * FROM app.messages`) is shared rather than
    /// held once per subscription. Changed under the `scopes` write lock.
    plans: Mutex<HashMap<u64, Vec<Weak<LivePlan>>>>,
    max_per_user: usize,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new(usize::MAX)
    }
}

impl LiveHub {
    /// A hub that lets a user hold at most `max_per_user` feeds.
    pub fn new(max_per_user: usize) -> Self {
        Self {
            scopes: RwLock::default(),
            feeds: AtomicUsize::new(0),
            per_user: Mutex::default(),
            plans: Mutex::default(),
            max_per_user,
        }
    }

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
        let Some(groups) = scopes.get(scope) else {
            return;
        };
        let set = Arc::new(ChangeSet {
            table_uid,
            schema_version,
            changes,
        });
        for group in groups {
            let Some(plan) = &group.plan else {
                continue;
            };
            let published = Arc::new(Published {
                set: set.clone(),
                plan: plan.clone(),
                encoded: OnceLock::new(),
            });
            for feed in &group.feeds {
                feed.offer(&published);
            }
        }
    }

    /// Adds a feed of `scope` running `plan` (or an equal plan already
    /// there, which [`Feed::plan`] then gives). Call with the scope's
    /// write lock held, so that no commit falls between the caller's
    /// snapshot and the feed. Refused when the user holds the most feeds
    /// allowed.
    pub fn register(
        &self,
        scope: ScopeKey,
        plan: Arc<LivePlan>,
        info: FeedInfo,
        outbox: Arc<Outbox>,
    ) -> LiveResult<Arc<Feed>> {
        self.add(scope, Some(plan), info, outbox)
    }

    /// Adds the feed of a system table's watch: listed, counted and ended
    /// like the others, but no write is published to it.
    pub fn register_watch(&self, info: FeedInfo, outbox: Arc<Outbox>) -> LiveResult<Arc<Feed>> {
        self.add(ScopeKey::new(WATCH_TABLE_UID, None), None, info, outbox)
    }

    fn add(
        &self,
        scope: ScopeKey,
        plan: Option<Arc<LivePlan>>,
        info: FeedInfo,
        outbox: Arc<Outbox>,
    ) -> LiveResult<Arc<Feed>> {
        let mut scopes = self.scopes.write();
        {
            let mut per_user = self.per_user.lock();
            let held = per_user.entry(info.user_id.clone()).or_default();
            if *held >= self.max_per_user {
                let max = self.max_per_user;
                return Err(LiveError::new(
                    LiveCode::SubscriptionLimitExceeded,
                    format!(
                        "{} already has {max} live queries, the most allowed",
                        info.user_id
                    ),
                ));
            }
            *held += 1;
        }
        let plan = plan.map(|plan| self.intern(plan));
        let groups = scopes.entry(scope.clone()).or_default();
        let shared = plan.as_ref().and_then(|plan| {
            groups
                .iter()
                .position(|g| g.plan.as_ref().is_some_and(|p| p.same_output(plan)))
        });
        let group = match shared {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    plan,
                    feeds: Vec::new(),
                });
                groups.last_mut().expect("pushed")
            }
        };
        let feed = Arc::new(Feed {
            info,
            scope,
            plan: group.plan.clone(),
            outbox,
            ended: Mutex::new(None),
            is_ended: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            delivered: AtomicU64::new(0),
            last_seq: AtomicU64::new(0),
        });
        group.feeds.push(feed.clone());
        self.feeds.fetch_add(1, Ordering::AcqRel);
        Ok(feed)
    }

    /// An equal plan already in use, or `plan`, remembered from now on.
    fn intern(&self, plan: Arc<LivePlan>) -> Arc<LivePlan> {
        let mut plans = self.plans.lock();
        let known = plans.entry(plan.def.uid).or_default();
        known.retain(|p| p.strong_count() > 0);
        if let Some(equal) = known
            .iter()
            .filter_map(Weak::upgrade)
            .find(|p| p.same_output(&plan))
        {
            return equal;
        }
        known.push(Arc::downgrade(&plan));
        plan
    }

    /// Removes a feed (unsubscribe, or its connection closed).
    pub fn unregister(&self, feed: &Arc<Feed>) {
        let mut scopes = self.scopes.write();
        let Some(groups) = scopes.get_mut(&feed.scope) else {
            return;
        };
        let mut removed = false;
        for group in groups.iter_mut() {
            let before = group.feeds.len();
            group.feeds.retain(|f| !Arc::ptr_eq(f, feed));
            removed |= group.feeds.len() < before;
        }
        if removed {
            self.feeds.fetch_sub(1, Ordering::AcqRel);
            let mut per_user = self.per_user.lock();
            if let Some(held) = per_user.get_mut(&feed.info.user_id) {
                *held -= 1;
                if *held == 0 {
                    per_user.remove(&feed.info.user_id);
                }
            }
        }
        groups.retain(|g| !g.feeds.is_empty());
        if groups.is_empty() {
            scopes.remove(&feed.scope);
        }
    }

    /// Every registered feed.
    pub fn feeds(&self) -> Vec<Arc<Feed>> {
        self.scopes
            .read()
            .values()
            .flatten()
            .flat_map(|g| g.feeds.iter().cloned())
            .collect()
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

    /// A table lost or changed a column: its feeds end (they may resume).
    pub fn end_table_altered(&self, table_uid: u64, name: &str) {
        let prefix = ScopeKey::table_prefix(table_uid);
        self.end_where(
            |f| f.scope.as_bytes().starts_with(&prefix),
            EndReason::TableAltered(name.to_string()),
        );
    }

    /// A user is gone: its feeds end, and those reading as that user.
    pub fn end_user(&self, user_id: &str) {
        self.end_where(
            |f| f.info.user_id == user_id || f.info.reader_id == user_id,
            EndReason::UserDropped,
        );
    }

    /// Feeds registered by one user (those the per-user limit counts).
    #[cfg(test)]
    pub fn count_of_user(&self, user_id: &str) -> usize {
        self.per_user.lock().get(user_id).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{binary, lit, Column};
    use kalamdb_commons::Value;
    use kalamdb_store::{ChangeKind, RowVersion};

    fn info(user: &str) -> FeedInfo {
        FeedInfo {
            live_id: format!("{user}-1"),
            subscription_id: "s".into(),
            user_id: user.into(),
            reader_id: user.into(),
            connection_id: "c".into(),
            sql: String::new(),
            options: String::new(),
            created_at: 0,
        }
    }

    /// Every row of `app.kv`, or those with `id > above`.
    fn plan(above: Option<i64>) -> Arc<LivePlan> {
        let def = Arc::new(crate::read::tests::table());
        let schema = crate::schema::table_schema(&def, true);
        let filter = above.map(|n| {
            binary(
                Arc::new(Column::new("id", 0)),
                Operator::Gt,
                lit(n),
                &schema,
            )
            .unwrap()
        });
        Arc::new(LivePlan::whole_table(def, filter))
    }

    fn insert(seq: u64) -> Vec<RowChange> {
        vec![RowChange {
            seq,
            kind: ChangeKind::Insert,
            new: Some(RowVersion {
                deleted: false,
                schema_version: 1,
                values: vec![Value::I64(seq as i64), Value::Text("x".into())],
            }),
            old: None,
            old_seq: 0,
        }]
    }

    #[test]
    fn a_full_outbox_ends_the_feed_and_later_changes_never_reach_it() {
        let hub = LiveHub::default();
        let scope = ScopeKey::new(7, Some("alice"));
        let (outbox, mut rx) = Outbox::new(2);
        let feed = hub
            .register(scope.clone(), plan(None), info("alice"), outbox)
            .unwrap();
        for seq in 1..=3 {
            hub.publish(7, 1, &scope, insert(seq));
        }
        assert_eq!(feed.end_reason(), Some(EndReason::Overflow));
        assert_eq!(feed.drained_end(), None, "two deliveries are still queued");
        let mut seqs = Vec::new();
        while let Ok(d) = rx.try_recv() {
            d.feed.taken();
            seqs.push(d.changes.set.changes[0].seq);
        }
        assert_eq!(seqs, vec![1, 2], "what was queued precedes the gap");
        hub.publish(7, 1, &scope, insert(4));
        assert!(rx.try_recv().is_err(), "an ended feed gets nothing more");
        assert_eq!(feed.drained_end(), Some(EndReason::Overflow));
    }

    #[test]
    fn other_scopes_and_dropped_tables() {
        let hub = LiveHub::default();
        let alice = ScopeKey::new(7, Some("alice"));
        let bob = ScopeKey::new(7, Some("bob"));
        let (outbox, mut rx) = Outbox::new(8);
        let a = hub
            .register(alice.clone(), plan(None), info("alice"), outbox.clone())
            .unwrap();
        let other = hub
            .register(ScopeKey::new(2, None), plan(None), info("bob"), outbox)
            .unwrap();
        hub.publish(7, 1, &bob, insert(1));
        assert!(rx.try_recv().is_err(), "bob's change is not alice's");
        assert_eq!(hub.count_of_user("alice"), 1);
        hub.end_table(7, "app.kv");
        assert_eq!(
            a.end_reason(),
            Some(EndReason::TableDropped("app.kv".into()))
        );
        assert_eq!(other.end_reason(), None);
        assert_eq!(hub.feeds().len(), 1);
        hub.publish(7, 1, &alice, insert(2));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn feeds_of_an_equal_plan_share_one_encoding_and_others_get_their_own() {
        let hub = LiveHub::default();
        let scope = ScopeKey::new(7, None);
        let (outbox, mut rx) = Outbox::new(8);
        let first = hub
            .register(scope.clone(), plan(Some(1)), info("a"), outbox.clone())
            .unwrap();
        let same = hub
            .register(scope.clone(), plan(Some(1)), info("b"), outbox.clone())
            .unwrap();
        let other = hub
            .register(scope.clone(), plan(Some(5)), info("c"), outbox)
            .unwrap();
        let plan_of = |feed: &Arc<Feed>| feed.plan().expect("a table's feed").clone();
        assert!(
            Arc::ptr_eq(&plan_of(&first), &plan_of(&same)),
            "one plan for both"
        );
        assert!(!Arc::ptr_eq(&plan_of(&first), &plan_of(&other)));

        hub.publish(7, 1, &scope, insert(3));
        let encodings = AtomicUsize::new(0);
        let mut texts = HashMap::new();
        while let Ok(d) = rx.try_recv() {
            d.feed.taken();
            let encoded = d
                .changes
                .encoded(|change| {
                    encodings.fetch_add(1, Ordering::Relaxed);
                    format!("{:?}:{}", change.kind, change.row_count())
                })
                .unwrap();
            let text: Vec<&str> = encoded.iter().map(|e| e.text.as_str()).collect();
            texts.insert(d.feed.info.user_id.clone(), text.join(","));
        }
        // id 3 is above 1, an insert for the first two; not above 5.
        assert_eq!(texts["a"], "Insert:1");
        assert_eq!(texts["b"], "Insert:1");
        assert_eq!(texts["c"], "");
        assert_eq!(
            encodings.load(Ordering::Relaxed),
            1,
            "encoded once for both"
        );

        hub.unregister(&first);
        hub.unregister(&same);
        let again = hub
            .register(scope, plan(Some(1)), info("d"), Outbox::new(1).0)
            .unwrap();
        assert!(
            Arc::ptr_eq(&plan_of(&again), &plan_of(&first)),
            "an equal plan still in use is shared"
        );
        let groups: Vec<usize> = hub.scopes.read()[&ScopeKey::new(7, None)]
            .iter()
            .map(|g| g.feeds.len())
            .collect();
        assert_eq!(groups, vec![1, 1], "the emptied group is gone");
        assert_eq!(hub.feeds().len(), 2);
    }

    #[test]
    fn scopes_with_an_equal_plan_hold_it_once() {
        let hub = LiveHub::default();
        let (outbox, _rx) = Outbox::new(8);
        let alice = hub
            .register(
                ScopeKey::new(7, Some("alice")),
                plan(Some(1)),
                info("alice"),
                outbox.clone(),
            )
            .unwrap();
        let bob = hub
            .register(
                ScopeKey::new(7, Some("bob")),
                plan(Some(1)),
                info("bob"),
                outbox.clone(),
            )
            .unwrap();
        let carol = hub
            .register(
                ScopeKey::new(7, Some("carol")),
                plan(Some(2)),
                info("carol"),
                outbox,
            )
            .unwrap();
        let plan_of = |feed: &Arc<Feed>| feed.plan().expect("a table's feed").clone();
        assert!(Arc::ptr_eq(&plan_of(&alice), &plan_of(&bob)));
        assert!(!Arc::ptr_eq(&plan_of(&alice), &plan_of(&carol)));
        hub.unregister(&alice);
        hub.unregister(&bob);
        drop((alice, bob));
        let alive = hub.plans.lock()[&7]
            .iter()
            .filter(|p| p.strong_count() > 0)
            .count();
        assert_eq!(alive, 1, "a plan nobody uses is not kept");
    }

    #[test]
    fn a_user_over_the_limit_is_refused_until_one_of_theirs_goes() {
        let hub = LiveHub::new(2);
        let scope = ScopeKey::new(7, Some("alice"));
        let (outbox, _rx) = Outbox::new(8);
        let register =
            |user: &str| hub.register(scope.clone(), plan(None), info(user), outbox.clone());
        let first = register("alice").unwrap();
        register("alice").unwrap();
        let refused = register("alice").unwrap_err();
        assert_eq!(refused.code, LiveCode::SubscriptionLimitExceeded);
        register("bob").expect("another user's count is their own");
        assert_eq!(hub.count_of_user("alice"), 2);
        hub.unregister(&first);
        hub.unregister(&first);
        assert_eq!(hub.count_of_user("alice"), 1, "removed once");
        register("alice").expect("room again");
    }
}
