//! Direct reads: the shapes of query that need no optimizer (primary-key
//! lookups, `LIMIT` reads of one scope, `COUNT(*)` of one scope, constant
//! `SELECT`s), answered straight from the scope's view instead of through
//! DataFusion's planner.
//!
//! A direct read must answer exactly as the planned query would: the same
//! rows in the same order, the same column names and types. Whenever it is
//! not sure (a table or column it cannot find, a key it cannot coerce, a
//! table the caller may not read), it declines and the statement is
//! planned, so errors always come from one place. Tests compare both paths
//! on the same data.

mod classify;

pub use classify::{classify, DirectQuery, DirectRead, KeyArg, Output};

use super::{Session, StatementResult};
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::provider::scope_key_for;
use crate::read::{table_columns, CountingSink, FileRead, ProjectingSink, ScopeView};
use crate::schema::table_schema;
use crate::system::{INFORMATION_SCHEMA, SYSTEM_SCHEMA};
use crate::values::{coerce_scalar, param_to_scalar};
use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::scalar::ScalarValue;
use kalamdb_commons::{KalamType, TableType, Value};
use kalamdb_store::ScopeKey;
use std::sync::Arc;

/// What a resolved direct read does.
enum Plan {
    /// Read these keys.
    Keys(Vec<Value>),
    /// Read the scope in key order, at most `limit` rows.
    Scan(usize),
    /// Count the scope's visible rows.
    Count,
    /// Count which of these keys have a visible row.
    CountKeys(Vec<Value>),
}

/// A direct read bound to a table, a caller and parameters.
struct Bound {
    def: Arc<TableDef>,
    scope: ScopeKey,
    projection: Vec<usize>,
    schema: SchemaRef,
    plan: Plan,
}

/// Runs `read`, or returns `None` when it must be planned instead.
pub(super) async fn run(
    session: &Session<'_>,
    query: &DirectRead,
) -> Result<Option<StatementResult>> {
    let Some(bound) = bind(session, query) else {
        return Ok(None);
    };
    let (schema, batches) = read_bound(session.services, bound).await?;
    // The same caps as a planned query's result.
    let stream = Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema.clone(),
            futures::stream::iter(batches.into_iter().map(Ok)),
        ),
    );
    let collected = super::limits::collect_bounded(stream, &session.query.limits, None).await?;
    let row_count = collected.batches.iter().map(|b| b.num_rows()).sum();
    Ok(Some(StatementResult {
        schema: Some(schema),
        batches: collected.batches,
        rest: None,
        row_count,
        message: None,
        as_user: session.caller.user_id.to_string(),
    }))
}

/// Resolves names against the catalog and binds parameters; `None` for
/// anything the planner should decide (and report).
fn bind(session: &Session<'_>, read: &DirectRead) -> Option<Bound> {
    let namespace = read
        .namespace
        .as_deref()
        .unwrap_or(&session.default_namespace);
    if namespace == SYSTEM_SCHEMA || namespace == INFORMATION_SCHEMA {
        return None;
    }
    let def = session.services.catalog.table(namespace, &read.table)?;
    if def.table_type == TableType::System {
        return None;
    }
    let scope = scope_key_for(&def, &session.caller).ok()?;
    let pk = def.pk_index();
    let column = |name: &str| def.columns.iter().position(|c| c.name == name);
    if let Some(order_by) = &read.order_by {
        if column(order_by)? != pk {
            return None;
        }
    }
    let keys = match &read.filter {
        Some((name, args)) => {
            if column(name)? != pk {
                return None;
            }
            Some(keys(session, &def, args)?)
        }
        None => None,
    };
    // Parameters the statement does not use: the planner decides what
    // that means.
    let used = read
        .filter
        .iter()
        .flat_map(|(_, args)| args)
        .filter(|a| matches!(a, KeyArg::Param(_)))
        .count();
    if used != session.params.len() {
        return None;
    }
    let table = table_schema(&def, false);
    let (projection, schema) = match &read.output {
        Output::Count(name) => (
            Vec::new(),
            Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)])),
        ),
        Output::Star => ((0..def.columns.len()).collect(), table),
        Output::Columns(columns) => {
            let mut projection = Vec::with_capacity(columns.len());
            let mut fields = Vec::with_capacity(columns.len());
            for (name, output) in columns {
                let i = column(name)?;
                projection.push(i);
                fields.push(table.field(i).clone().with_name(output));
            }
            (projection, Arc::new(Schema::new(fields)))
        }
    };
    let plan = match (keys, &read.output) {
        (Some(keys), Output::Count(_)) => Plan::CountKeys(keys),
        (Some(keys), _) => Plan::Keys(keys),
        (None, Output::Count(_)) => Plan::Count,
        (None, _) => Plan::Scan(read.limit?),
    };
    Some(Bound {
        def,
        scope,
        projection,
        schema,
        plan,
    })
}

/// The keys as stored, or `None` when one is not plainly a value of the
/// key's type (the planner's coercion rules decide those).
fn keys(session: &Session<'_>, def: &TableDef, args: &[KeyArg]) -> Option<Vec<Value>> {
    let pk = &def.columns[def.pk_index()];
    let integer = matches!(
        pk.data_type,
        KalamType::SmallInt | KalamType::Int | KalamType::BigInt
    );
    let text = pk.data_type == KalamType::Text;
    let is_integer = |s: &str| {
        let digits = s.strip_prefix('-').unwrap_or(s);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    args.iter()
        .map(|arg| {
            let scalar = match arg {
                KeyArg::Number(n) if integer && is_integer(n) => {
                    ScalarValue::Int64(Some(n.parse().ok()?))
                }
                KeyArg::Text(s) if text => ScalarValue::Utf8(Some(s.clone())),
                KeyArg::Text(s) if integer && is_integer(s) => {
                    ScalarValue::Int64(Some(s.parse().ok()?))
                }
                KeyArg::Param(i) => {
                    let scalar = param_to_scalar(*i, session.params.get(*i)?).ok()?;
                    match &scalar {
                        ScalarValue::Int64(Some(_)) if integer => scalar,
                        ScalarValue::Utf8(Some(_)) if text => scalar,
                        _ => return None,
                    }
                }
                _ => return None,
            };
            coerce_scalar(&scalar, pk.data_type, &pk.name)
                .ok()
                .filter(|v| !v.is_null())
        })
        .collect()
}

/// Lookups and short scans that the hot tier and the file cache answer
/// alone (nothing to fetch) run where they are: RocksDB reads of a few
/// keys and the decoding of a cached page take microseconds, less than a
/// hand-off to another thread. The rest runs on a blocking thread, as file
/// reads and long scans block.
async fn read_bound(
    services: &Arc<crate::services::Services>,
    bound: Bound,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let keyed = matches!(bound.plan, Plan::Keys(_) | Plan::CountKeys(_));
    services.reads.record(bound.def.uid, keyed);
    if let Some(answer) = execute(services, &bound, Where::InPlace)? {
        return Ok(answer);
    }
    let services = services.clone();
    let guard = services.hot.scans().enter();
    tokio::task::spawn_blocking(move || {
        let _guard = guard;
        execute(&services, &bound, Where::Blocking)
    })
    .await
    .map_err(|e| CoreError::Internal(format!("direct read failed: {e}")))??
    .ok_or_else(|| CoreError::Internal("a direct read was left unanswered".into()))
}

/// The most rows a scan of hot rows reads in place.
const IN_PLACE_SCAN_ROWS: usize = 1000;

#[derive(PartialEq)]
enum Where {
    /// On an async worker: only what needs no file and little time.
    InPlace,
    Blocking,
}

/// Answers the bound read, or `None` (only `InPlace`) when it would read a
/// file or take long.
fn execute(
    services: &Arc<crate::services::Services>,
    bound: &Bound,
    at: Where,
) -> Result<Option<(SchemaRef, Vec<RecordBatch>)>> {
    let snapshot = services.hot.store().snapshot();
    let view = ScopeView::open(&snapshot, &bound.def, &bound.scope)?.reading(FileRead {
        columns: Some(table_columns(&bound.def, &bound.projection)),
        range: None,
        values: Vec::new(),
        seq: bound.projection.contains(&bound.def.columns.len()),
    });
    // Files are read only on a blocking thread (`Where::Blocking`).
    let handle = tokio::runtime::Handle::current();
    let cold = services.storages.for_table(&bound.def)?;
    let in_place = at == Where::InPlace;
    let found = match &bound.plan {
        Plan::Keys(keys) | Plan::CountKeys(keys) if in_place => {
            match view.lookup_in_place(&cold, keys)? {
                Some(found) => Some(found),
                None => return Ok(None),
            }
        }
        Plan::Keys(keys) | Plan::CountKeys(keys) => Some(view.lookup(&cold, &handle, keys)?),
        Plan::Scan(limit) if in_place && (*limit > IN_PLACE_SCAN_ROWS || view.has_files()) => {
            return Ok(None)
        }
        Plan::Count if in_place => return Ok(None),
        Plan::Scan(_) | Plan::Count => None,
    };
    if let Plan::Count | Plan::CountKeys(_) = bound.plan {
        let rows = match &found {
            Some(found) => found.values().filter(|v| !v.deleted).count() as u64,
            None => match view.count_without_merge()? {
                Some(rows) => rows,
                None => {
                    let mut counter = CountingSink::default();
                    view.scan(&cold, &handle, &mut counter)?;
                    counter.rows
                }
            },
        };
        let count: ArrayRef = Arc::new(Int64Array::from(vec![rows as i64]));
        let batch = RecordBatch::try_new(bound.schema.clone(), vec![count])?;
        return Ok(Some((bound.schema.clone(), vec![batch])));
    }
    let limit = match bound.plan {
        Plan::Scan(limit) => Some(limit),
        _ => None,
    };
    let mut batches = Vec::new();
    let mut keep = |batch: RecordBatch| {
        batches.push(batch);
        true
    };
    let mut sink = ProjectingSink::new(
        &bound.def,
        &bound.projection,
        &bound.schema,
        limit,
        false,
        &mut keep,
    );
    match found {
        Some(found) => view.emit_found(&mut sink, found)?,
        None if limit == Some(0) => {}
        None => view.scan(&cold, &handle, &mut sink)?,
    }
    sink.flush()?;
    drop(sink);
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(bound.schema.clone()));
    }
    Ok(Some((bound.schema.clone(), batches)))
}
