//! Starting a subscription: its feed and its starting point, taken under
//! the scope's write lock so that no commit falls between them.
//!
//! - A snapshot start reads the scope's visible rows (both tiers, one
//!   RocksDB snapshot) through the plan; the rows are held, projected and
//!   bounded, and handed out a page at a time.
//! - `last_rows = n` keeps the n matching rows with the highest `_seq`.
//! - A resume (`from_seq_id = n`) reads nothing up front: the change log's
//!   entries in `(n, S]` are replayed a page at a time.

use super::error::{LiveCode, LiveError, LiveResult};
use super::hub::{ChangeSet, Feed, FeedInfo, Outbox};
use super::plan::{LiveChange, LivePlan};
use super::system::SystemWatch;
use crate::read::{BatchBuilder, FileBatch, FlushedFiles, RowSink, ScopeView, BATCH_ROWS};
use crate::services::Services;
use datafusion::arrow::array::{Array, Int64Array, UInt32Array};
use datafusion::arrow::compute::{
    concat, concat_batches, sort_to_indices, take, take_record_batch,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_commons::Value;
use kalamdb_store::{HotStore, ScopeKey};
use std::collections::VecDeque;
use std::sync::Arc;

/// What a client asked for.
#[derive(Debug, Clone, Default)]
pub struct SubscribeRequest {
    pub subscription_id: String,
    pub connection_id: String,
    pub sql: String,
    pub batch_size: Option<usize>,
    pub last_rows: Option<usize>,
    pub from_seq_id: Option<u64>,
}

/// Where a subscription starts; `from_seq_id` wins over `last_rows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    Snapshot,
    LastRows(usize),
    Resume(u64),
}

impl SubscribeRequest {
    pub fn mode(&self) -> StartMode {
        match (self.from_seq_id, self.last_rows) {
            (Some(seq), _) => StartMode::Resume(seq),
            (None, Some(n)) => StartMode::LastRows(n),
            (None, None) => StartMode::Snapshot,
        }
    }

    /// Rows per initial page: the client's choice within the configured
    /// bound, or the default.
    fn batch_size(&self, config: &super::LiveConfig) -> usize {
        self.batch_size
            .unwrap_or(config.default_batch_size)
            .clamp(1, config.max_batch_size)
    }

    /// The options as `system.live` shows them.
    pub fn options_json(&self) -> String {
        let mut options = serde_json::Map::new();
        if let Some(n) = self.batch_size {
            options.insert("batch_size".into(), n.into());
        }
        if let Some(n) = self.last_rows {
            options.insert("last_rows".into(), n.into());
        }
        if let Some(n) = self.from_seq_id {
            options.insert("from_seq_id".into(), n.into());
        }
        serde_json::Value::Object(options).to_string()
    }
}

/// One page of initial rows.
#[derive(Debug)]
pub struct InitialPage {
    pub rows: RecordBatch,
    pub batch_num: usize,
    pub has_more: bool,
    /// The highest `_seq` among its rows (0: none).
    pub last_seq: u64,
}

/// The change log's range a resume replays.
#[derive(Debug)]
pub struct Replay {
    plan: Arc<LivePlan>,
    store: Arc<HotStore>,
    /// Where references to flushed versions are read.
    cold: Arc<crate::cold::ColdStore>,
    handle: tokio::runtime::Handle,
    scope: ScopeKey,
    after: u64,
    through: u64,
}

/// Row changes read per replay page (in whole writes, so a page may hold
/// a write's worth more).
const REPLAY_PAGE: usize = 1024;

impl Replay {
    /// The next changes of the range, as the subscriber sees them; `None`
    /// once the range is done. Runs on a blocking thread (it may read the
    /// scope's files).
    pub fn next_page(&mut self) -> LiveResult<Option<Vec<LiveChange>>> {
        let plan = &self.plan;
        if self.after >= self.through {
            return Ok(None);
        }
        let snapshot = self.store.snapshot();
        let mut files =
            FlushedFiles::new(&snapshot, &plan.def, &self.scope, &self.cold, &self.handle);
        let writes = self
            .store
            .changes_by_write(
                &snapshot,
                &self.scope,
                self.after,
                self.through,
                REPLAY_PAGE,
                &mut files,
            )
            .map_err(crate::error::CoreError::from)?;
        let Some(last) = writes.last().and_then(|w| w.last()) else {
            self.after = self.through;
            return Ok(None);
        };
        self.after = last.seq;
        // One write at a time, so that a message never mixes writes, as
        // live delivery never does.
        let mut out = Vec::new();
        for changes in writes {
            let set = ChangeSet {
                table_uid: plan.def.uid,
                schema_version: plan.def.schema_version,
                changes,
            };
            out.extend(plan.apply(&set)?);
        }
        Ok(Some(out))
    }
}

/// A started subscription.
#[derive(Debug)]
pub struct Subscription {
    pub feed: Arc<Feed>,
    /// What the subscriber receives.
    pub schema: SchemaRef,
    pub mode: StartMode,
    /// Every change after this `_seq` comes through the feed.
    pub start_seq: u64,
    pub total_rows: usize,
    pages: VecDeque<(RecordBatch, Int64Array)>,
    batch_size: usize,
    batch_num: usize,
    pub replay: Option<Replay>,
    /// A system table's: read again every `system_poll`.
    pub watch: Option<SystemWatch>,
}

impl Subscription {
    /// The next page of initial rows, `None` once all were handed out
    /// (and for a resume, which has none). The first page is given even
    /// when there are no rows, so the client sees its `ready`.
    pub fn next_page(&mut self) -> Option<InitialPage> {
        if matches!(self.mode, StartMode::Resume(_)) {
            return None;
        }
        if self.pages.is_empty() && self.batch_num > 0 {
            return None;
        }
        let mut taken: Vec<RecordBatch> = Vec::new();
        let mut seqs: Vec<Arc<dyn Array>> = Vec::new();
        let mut rows = 0;
        while rows < self.batch_size {
            let Some((batch, seq)) = self.pages.pop_front() else {
                break;
            };
            let want = self.batch_size - rows;
            if batch.num_rows() > want {
                self.pages.push_front((
                    batch.slice(want, batch.num_rows() - want),
                    seq.slice(want, seq.len() - want),
                ));
                taken.push(batch.slice(0, want));
                seqs.push(Arc::new(seq.slice(0, want)));
                rows += want;
            } else {
                rows += batch.num_rows();
                taken.push(batch);
                seqs.push(Arc::new(seq));
            }
        }
        let rows = concat_batches(&self.schema, &taken).ok()?;
        let last_seq = seqs
            .iter()
            .filter_map(|a| a.as_any().downcast_ref::<Int64Array>())
            .flat_map(|a| a.values().iter().copied())
            .max()
            .unwrap_or(0) as u64;
        let page = InitialPage {
            rows,
            batch_num: self.batch_num,
            has_more: !self.pages.is_empty(),
            last_seq,
        };
        self.batch_num += 1;
        Some(page)
    }
}

/// Collects a scope's matching rows through the plan, within a byte bound.
struct Collector<'a> {
    plan: &'a LivePlan,
    builder: BatchBuilder,
    out: Vec<(RecordBatch, Int64Array)>,
    bytes: usize,
    max_bytes: usize,
    /// `last_rows`: only this many, the newest.
    keep: Option<usize>,
    rows: usize,
}

impl Collector<'_> {
    fn take(&mut self, full: RecordBatch) -> crate::error::Result<()> {
        let (rows, seqs) = self.plan.select(&full).map_err(live_to_core)?;
        if rows.num_rows() == 0 {
            return Ok(());
        }
        self.bytes += rows.get_array_memory_size();
        self.rows += rows.num_rows();
        self.out.push((rows, seqs));
        if let Some(keep) = self.keep {
            if self.rows > keep.max(BATCH_ROWS) * 2 {
                self.newest(keep).map_err(live_to_core)?;
            }
        }
        if self.bytes > self.max_bytes {
            return Err(crate::error::CoreError::ResourceExhausted(format!(
                "the initial data of this subscription is over {} MiB; narrow its WHERE or \
                 use the last_rows option",
                self.max_bytes >> 20
            )));
        }
        Ok(())
    }

    fn flush(&mut self) -> crate::error::Result<()> {
        if self.builder.rows > 0 {
            let full = self.builder.finish(self.plan.full_schema())?;
            self.take(full)?;
        }
        Ok(())
    }

    /// Keeps the `keep` rows with the highest `_seq`, in `_seq` order.
    fn newest(&mut self, keep: usize) -> LiveResult<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let batches: Vec<RecordBatch> = self.out.iter().map(|(b, _)| b.clone()).collect();
        let seqs: Vec<&dyn Array> = self.out.iter().map(|(_, s)| s as &dyn Array).collect();
        let all = concat_batches(self.plan.schema(), &batches)?;
        let seqs = concat(&seqs)?;
        let order = sort_to_indices(&seqs, None, None)?;
        let from = order.len().saturating_sub(keep);
        let newest = UInt32Array::from(order.values()[from..].to_vec());
        let rows = take_record_batch(&all, &newest)?;
        let seqs = take(&seqs, &newest, None)?;
        let seqs = seqs
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .expect("_seq stays BIGINT");
        self.rows = rows.num_rows();
        self.bytes = rows.get_array_memory_size();
        self.out = vec![(rows, seqs)];
        Ok(())
    }
}

fn live_to_core(e: LiveError) -> crate::error::CoreError {
    crate::error::CoreError::Execution(e.message)
}

impl RowSink for Collector<'_> {
    fn row(&mut self, seq: u64, values: &[Value]) -> crate::error::Result<bool> {
        self.builder.push(seq, false, values)?;
        if self.builder.rows >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(true)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> crate::error::Result<bool> {
        self.flush()?;
        let plan = self.plan;
        let full = rows.project(
            &plan.def,
            &plan.full_projection(),
            plan.full_schema(),
            from..rows.len(),
            false,
        )?;
        self.take(full)?;
        Ok(true)
    }
}

/// Registers the feed and takes the starting point under the scope lock,
/// then reads the initial rows (a snapshot start) on a blocking thread.
pub(crate) async fn open(
    services: Arc<Services>,
    plan: Arc<LivePlan>,
    scope: ScopeKey,
    info: FeedInfo,
    outbox: Arc<Outbox>,
    request: &SubscribeRequest,
) -> LiveResult<Subscription> {
    let config = &services.live.config;
    let mode = request.mode();
    let batch_size = request.batch_size(config);
    if let StartMode::Resume(after) = mode {
        let store = services.hot.store().clone();
        let cold = services.storages.for_table(&plan.def)?;
        let (feed, start_seq) = {
            let _guard = services.hot.lock_scope(&scope).await;
            let feed = services
                .live
                .hub
                .register(scope.clone(), plan.clone(), info, outbox)?;
            (feed, store.last_seq())
        };
        let floor = store.changes_floor();
        let refuse = |message: String| {
            services.live.hub.unregister(&feed);
            Err(LiveError::new(LiveCode::HistoryUnavailable, message))
        };
        if after < floor {
            return refuse(format!(
                "changes after _seq {after} are no longer kept (the history starts after \
                 _seq {floor}); subscribe again without from_seq_id for a fresh snapshot"
            ));
        }
        if after > start_seq {
            return refuse(format!(
                "from_seq_id {after} is ahead of this server (its last _seq is {start_seq}); \
                 subscribe again without from_seq_id for a fresh snapshot"
            ));
        }
        feed.sent(0, after);
        let plan = feed.plan().expect("a table's feed").clone();
        return Ok(Subscription {
            schema: plan.schema().clone(),
            feed,
            mode,
            start_seq,
            total_rows: 0,
            pages: VecDeque::new(),
            batch_size,
            batch_num: 0,
            watch: None,
            replay: Some(Replay {
                cold,
                handle: tokio::runtime::Handle::current(),
                plan,
                store,
                scope,
                after,
                through: start_seq,
            }),
        });
    }

    let keep = match mode {
        StartMode::LastRows(n) => Some(n),
        _ => None,
    };
    let max_bytes = config.max_initial_bytes;
    let handle = tokio::runtime::Handle::current();
    let task_services = services.clone();
    let task_plan = plan.clone();
    let task_scope = scope.clone();
    let joined = tokio::task::spawn_blocking(move || -> LiveResult<_> {
        let services = task_services;
        let plan = task_plan;
        let scope = task_scope;
        let cold = services.storages.for_table(&plan.def)?;
        let store = services.hot.store();
        let guard = handle.block_on(services.hot.lock_scope(&scope));
        let feed = services
            .live
            .hub
            .register(scope.clone(), plan.clone(), info, outbox)?;
        let snapshot = store.snapshot();
        drop(guard);
        let start_seq = snapshot.watermark;
        let read = || -> crate::error::Result<Vec<(RecordBatch, Int64Array)>> {
            let view = ScopeView::open(&snapshot, &plan.def, &scope)?;
            let mut collector = Collector {
                plan: &plan,
                builder: BatchBuilder::new(&plan.def, &plan.full_projection()),
                out: Vec::new(),
                bytes: 0,
                max_bytes,
                keep,
                rows: 0,
            };
            view.scan(&cold, &handle, &mut collector)?;
            collector.flush()?;
            if let Some(n) = keep {
                collector.newest(n).map_err(live_to_core)?;
            }
            Ok(collector.out)
        };
        match read() {
            Ok(pages) => Ok((feed, start_seq, pages)),
            Err(e) => {
                services.live.hub.unregister(&feed);
                Err(e.into())
            }
        }
    })
    .await
    .map_err(|source| crate::error::CoreError::Task {
        what: "live snapshot",
        source,
    })?;
    let (feed, start_seq, pages) = joined?;
    feed.sent(0, start_seq);
    let total_rows = pages.iter().map(|(b, _)| b.num_rows()).sum();
    Ok(Subscription {
        schema: plan.schema().clone(),
        feed,
        mode,
        start_seq,
        total_rows,
        pages: pages.into(),
        batch_size,
        batch_num: 0,
        replay: None,
        watch: None,
    })
}

/// Starts a live query over a system table: its feed (for `system.live`,
/// limits and `KILL LIVE QUERY`) and its first reading, the initial data.
pub(crate) fn open_watch(
    services: &Services,
    mut watch: SystemWatch,
    info: FeedInfo,
    outbox: Arc<Outbox>,
    request: &SubscribeRequest,
) -> LiveResult<Subscription> {
    let config = &services.live.config;
    let mode = request.mode();
    if let StartMode::Resume(_) = mode {
        return Err(LiveError::new(
            LiveCode::Unsupported,
            "a system table keeps no history of its changes; subscribe without from_seq_id",
        ));
    }
    let mut rows = watch.start(config.max_initial_bytes)?;
    if let StartMode::LastRows(n) = mode {
        rows = rows.slice(rows.num_rows().saturating_sub(n), rows.num_rows().min(n));
    }
    let feed = services.live.hub.register_watch(info, outbox)?;
    let seqs = Int64Array::from(vec![0; rows.num_rows()]);
    Ok(Subscription {
        schema: watch.schema().clone(),
        feed,
        mode,
        start_seq: 0,
        total_rows: rows.num_rows(),
        pages: VecDeque::from([(rows, seqs)]),
        batch_size: request.batch_size(config),
        batch_num: 0,
        replay: None,
        watch: Some(watch),
    })
}
