//! What a live query computes: `SELECT <columns> FROM <table> [WHERE ...]`
//! planned once by DataFusion, then evaluated on each changed row.
//!
//! Only statements whose result can be kept current row by row are
//! accepted: one table, a projection and filters. Anything that needs
//! other rows to decide about one (joins, aggregates, DISTINCT, ORDER BY,
//! LIMIT, windows, subqueries) is refused. The filter and the projection
//! become physical expressions over the table's full row (its columns,
//! `_seq`, `_deleted`), which both the initial snapshot and every change
//! are built as, so the two can never disagree about a row.

use super::error::{LiveCode, LiveError, LiveResult as Result};
use crate::catalog::TableDef;
use crate::error::CoreError;
use crate::read::BatchBuilder;
use crate::schema::table_schema;
use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array};
use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DFSchema, TableReference};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use kalamdb_store::{ChangeKind, RowChange};
use std::sync::Arc;

use super::hub::ChangeSet;

/// Why a statement cannot be a live query.
pub(super) fn unsupported(what: &str) -> LiveError {
    LiveError::new(
        LiveCode::Unsupported,
        format!(
            "a live query cannot maintain {what}; subscribe to SELECT <columns> FROM <table> \
         [WHERE <condition>] (use the last_rows option for the newest rows)"
        ),
    )
}

/// A planned live query.
#[derive(Debug)]
pub struct LivePlan {
    pub def: Arc<TableDef>,
    /// Its rows as evaluated: every column, `_seq`, `_deleted`.
    full_schema: SchemaRef,
    exprs: Compiled,
}

/// The one table a plan reads, with its filters and output expressions.
struct Shape<'p> {
    filters: Vec<&'p Expr>,
    projection: Option<(&'p [Expr], &'p DFSchema)>,
    scan_schema: &'p DFSchema,
    table: Option<&'p TableReference>,
}

fn shape_of(plan: &LogicalPlan) -> Result<Shape<'_>> {
    let mut shape = Shape {
        filters: Vec::new(),
        projection: None,
        scan_schema: plan.schema(),
        table: None,
    };
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::Projection(p) => {
                if shape.projection.is_some() || !shape.filters.is_empty() {
                    return Err(unsupported("a subquery in FROM"));
                }
                shape.projection = Some((&p.expr, p.input.schema()));
                node = &p.input;
            }
            LogicalPlan::Filter(f) => {
                shape.filters.push(&f.predicate);
                node = &f.input;
            }
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::TableScan(scan) => {
                shape.scan_schema = node.schema();
                shape.table = Some(&scan.table_name);
                return Ok(shape);
            }
            LogicalPlan::Aggregate(_) => return Err(unsupported("aggregates or GROUP BY")),
            LogicalPlan::Join(_) => return Err(unsupported("joins")),
            LogicalPlan::Sort(_) => return Err(unsupported("ORDER BY")),
            LogicalPlan::Limit(_) => return Err(unsupported("LIMIT/OFFSET")),
            LogicalPlan::Distinct(_) => return Err(unsupported("DISTINCT")),
            LogicalPlan::Window(_) => return Err(unsupported("window functions")),
            LogicalPlan::Union(_) => return Err(unsupported("UNION")),
            LogicalPlan::EmptyRelation(_) | LogicalPlan::Values(_) => {
                return Err(unsupported("a query without a table"))
            }
            other => {
                return Err(unsupported(&format!(
                    "this query ({})",
                    kalamdb_commons::excerpt(&other.display().to_string(), 60)
                )))
            }
        }
    }
}

fn has_subquery(expr: &Expr) -> bool {
    use datafusion::common::tree_node::TreeNode;
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
        ))
    })
    .unwrap_or(true)
}

/// A live query's one table, and what it computes over each of its rows.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub table: TableReference,
    /// Over the scanned row (the table's columns, then `_seq` and
    /// `_deleted` where the table has them).
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    pub projection: Vec<Arc<dyn PhysicalExpr>>,
    /// What the subscriber receives.
    pub schema: SchemaRef,
}

impl Compiled {
    /// Checks an analyzed SELECT's shape and compiles its filter and
    /// output expressions.
    pub(crate) fn new(plan: &LogicalPlan, props: &ExecutionProps) -> Result<Self> {
        let shape = shape_of(plan)?;
        let physical = |expr: &Expr, schema: &DFSchema| -> Result<Arc<dyn PhysicalExpr>> {
            if has_subquery(expr) {
                return Err(unsupported("subqueries"));
            }
            Ok(create_physical_expr(
                expr,
                schema,
                props,
                &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext::default(),
            )?)
        };
        let filter = shape
            .filters
            .iter()
            .map(|f| (*f).clone())
            .reduce(|a, b| a.and(b))
            .map(|f| physical(&f, shape.scan_schema))
            .transpose()?;
        let (projection, schema) = match shape.projection {
            Some((exprs, input)) => (
                exprs
                    .iter()
                    .map(|e| physical(e, input))
                    .collect::<Result<Vec<_>>>()?,
                Arc::new(plan.schema().as_arrow().clone()),
            ),
            // No projection node: every column the scan yields.
            None => (
                (0..shape.scan_schema.fields().len())
                    .map(|i| {
                        Arc::new(datafusion::physical_expr::expressions::Column::new(
                            shape.scan_schema.field(i).name(),
                            i,
                        )) as Arc<dyn PhysicalExpr>
                    })
                    .collect(),
                Arc::new(shape.scan_schema.as_arrow().clone()),
            ),
        };
        Ok(Self {
            table: shape.table.expect("a shape ends at its scan").clone(),
            filter,
            projection,
            schema,
        })
    }

    /// Which rows of a scanned batch match the filter (NULL: no).
    pub(super) fn matches(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let Some(filter) = &self.filter else {
            return Ok(BooleanArray::from(vec![true; batch.num_rows()]));
        };
        let value = filter.evaluate(batch)?.into_array(batch.num_rows())?;
        let mask = value
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                LiveError::new(
                    LiveCode::InvalidSql,
                    "the WHERE of a live query must be a condition",
                )
            })?;
        // NULL counts as false, as in a WHERE.
        Ok(mask
            .iter()
            .map(|v| Some(v.unwrap_or(false)))
            .collect::<BooleanArray>())
    }

    /// The subscriber's columns of a scanned batch.
    pub(super) fn project(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let arrays = self
            .projection
            .iter()
            .map(|e| Ok(e.evaluate(batch)?.into_array(batch.num_rows())?))
            .collect::<Result<Vec<ArrayRef>>>()?;
        let options = datafusion::arrow::record_batch::RecordBatchOptions::new()
            .with_row_count(Some(batch.num_rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &options,
        )?)
    }
}

impl LivePlan {
    /// A live query of `def`, compiled by [`Compiled::new`].
    pub(crate) fn new(compiled: Compiled, def: Arc<TableDef>) -> Self {
        let full_schema = table_schema(&def, true);
        Self {
            def,
            full_schema,
            exprs: compiled,
        }
    }

    /// What the subscriber receives.
    pub fn schema(&self) -> &SchemaRef {
        &self.exprs.schema
    }

    /// Whether `other` turns every change into the same output: the same
    /// table and schema version, filter, projection and output columns.
    /// Its subscribers can then share what it computes.
    pub(super) fn same_output(&self, other: &LivePlan) -> bool {
        self.def.uid == other.def.uid
            && self.def.schema_version == other.def.schema_version
            && self.exprs.schema == other.exprs.schema
            && self.exprs.filter == other.exprs.filter
            && self.exprs.projection == other.exprs.projection
    }

    /// All of `def`'s columns, and only the rows `filter` keeps.
    #[cfg(test)]
    pub(super) fn whole_table(def: Arc<TableDef>, filter: Option<Arc<dyn PhysicalExpr>>) -> Self {
        use datafusion::physical_expr::expressions::Column;
        let full_schema = table_schema(&def, true);
        let projection = (0..def.columns.len())
            .map(|i| Arc::new(Column::new(full_schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>)
            .collect();
        let schema = Arc::new(
            full_schema
                .project(&(0..def.columns.len()).collect::<Vec<_>>())
                .expect("in range"),
        );
        Self {
            def,
            full_schema,
            exprs: Compiled {
                table: TableReference::bare("kv"),
                filter,
                projection,
                schema,
            },
        }
    }

    /// The projection of `def` every batch fed to this plan is built with.
    pub(super) fn full_projection(&self) -> Vec<usize> {
        (0..self.full_schema.fields().len()).collect()
    }

    pub(super) fn full_schema(&self) -> &SchemaRef {
        &self.full_schema
    }

    /// Which rows of a full batch match the filter (NULL: no).
    pub(super) fn matches(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        self.exprs.matches(batch)
    }

    /// The subscriber's columns of a full batch.
    pub(super) fn project(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        self.exprs.project(batch)
    }

    /// The matching rows of a full batch, projected, with their `_seq`.
    pub(super) fn select(&self, batch: &RecordBatch) -> Result<(RecordBatch, Int64Array)> {
        let mask = self.matches(batch)?;
        let kept = filter_record_batch(batch, &mask)?;
        let seq_index = self.def.columns.len();
        let seqs = kept
            .column(seq_index)
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| LiveError::from(CoreError::Internal("_seq is not BIGINT".into())))?;
        Ok((self.project(&kept)?, seqs))
    }

    /// What a subscriber sees of one committed write: each row change
    /// judged by the filter on its old and its new values (an update that
    /// moves a row into the WHERE is an insert, out of it a delete),
    /// consecutive ones of one kind in one message.
    pub fn apply(&self, set: &ChangeSet) -> Result<Vec<LiveChange>> {
        let rows =
            |pick: fn(&RowChange) -> Option<(u64, &kalamdb_store::RowVersion)>| -> Result<_> {
                let mut builder = BatchBuilder::new(&self.def, &self.full_projection());
                let mut index = Vec::with_capacity(set.changes.len());
                for change in &set.changes {
                    index.push(match pick(change) {
                        Some((seq, row)) => {
                            builder.push_version(seq, row)?;
                            Some(builder.rows - 1)
                        }
                        None => None,
                    });
                }
                let batch = builder.finish(&self.full_schema)?;
                let mask = self.matches(&batch)?;
                Ok((batch, mask, index))
            };
        let (new_batch, new_match, new_at) = rows(|c| c.new.as_ref().map(|r| (c.seq, r)))?;
        let (old_batch, old_match, old_at) = rows(|c| c.old.as_ref().map(|r| (c.old_seq, r)))?;
        let is = |mask: &BooleanArray, at: Option<usize>| at.is_some_and(|i| mask.value(i));

        let mut runs: Vec<Run> = Vec::new();
        for (i, change) in set.changes.iter().enumerate() {
            let was = is(&old_match, old_at[i]);
            let now = is(&new_match, new_at[i]);
            let kind = match (change.kind, was, now) {
                (ChangeKind::Insert, _, true) => ChangeKind::Insert,
                (ChangeKind::Update, true, true) => ChangeKind::Update,
                (ChangeKind::Update, false, true) => ChangeKind::Insert,
                (ChangeKind::Update, true, false) | (ChangeKind::Delete, true, _) => {
                    ChangeKind::Delete
                }
                _ => continue,
            };
            let run = match runs.last_mut() {
                Some(run) if run.kind == kind => run,
                _ => {
                    runs.push(Run {
                        kind,
                        new: Vec::new(),
                        old: Vec::new(),
                        last_seq: 0,
                    });
                    runs.last_mut().expect("pushed")
                }
            };
            if kind != ChangeKind::Delete {
                run.new.push(new_at[i].expect("matched") as u32);
            }
            if kind != ChangeKind::Insert {
                run.old.push(old_at[i].expect("matched") as u32);
            }
            run.last_seq = change.seq;
        }
        runs.into_iter()
            .map(|run| {
                let take = |batch: &RecordBatch, at: &[u32]| -> Result<Option<RecordBatch>> {
                    if at.is_empty() {
                        return Ok(None);
                    }
                    let indices = datafusion::arrow::array::UInt32Array::from(at.to_vec());
                    Ok(Some(self.project(&take_record_batch(batch, &indices)?)?))
                };
                Ok(LiveChange {
                    kind: run.kind,
                    rows: take(&new_batch, &run.new)?,
                    old_values: take(&old_batch, &run.old)?,
                    last_seq: run.last_seq,
                })
            })
            .collect()
    }
}

struct Run {
    kind: ChangeKind,
    new: Vec<u32>,
    old: Vec<u32>,
    last_seq: u64,
}

/// One change message: rows for inserts and updates, old values for
/// updates and deletes, in the subscriber's columns.
#[derive(Debug)]
pub struct LiveChange {
    pub kind: ChangeKind,
    pub rows: Option<RecordBatch>,
    pub old_values: Option<RecordBatch>,
    /// The `_seq` of its last row change: the resume point once it is sent.
    pub last_seq: u64,
}

impl LiveChange {
    pub fn row_count(&self) -> usize {
        self.rows
            .as_ref()
            .or(self.old_values.as_ref())
            .map_or(0, |b| b.num_rows())
    }
}
