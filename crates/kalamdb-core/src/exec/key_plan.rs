//! Key queries without the physical planner.
//!
//! The query that finds the rows of `UPDATE t SET .. WHERE pk = $1` (and of
//! a DELETE, or a SELECT the direct path declines) optimizes to a
//! projection over a filter over one table's scan, and the scan seeks a
//! few keys. DataFusion's physical planner spent more time on such a plan
//! (distribution and ordering passes, a repartition that starts tasks)
//! than the lookup took. Here the scan runs as is and the filter and the
//! projection are evaluated on its batches with the very expressions the
//! optimizer produced, made checked as our physical optimizer rule makes
//! them ([`super::checked_math`]), so the results are the planned ones.

use crate::error::Result;
use crate::provider::KalamTableProvider;
use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNode;
use datafusion::datasource::source_as_provider;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_expr::{create_physical_expr, PhysicalExpr};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use std::sync::Arc;

/// Runs `plan` when it is `[Projection] <- [Filter] <- TableScan` of a
/// table whose scan seeks keys; `None` otherwise (plan it).
pub(super) async fn execute(
    plan: &LogicalPlan,
    state: &SessionState,
    task: Arc<TaskContext>,
) -> Result<Option<SendableRecordBatchStream>> {
    let mut node = plan;
    let projection = match node {
        LogicalPlan::Projection(p) => {
            node = p.input.as_ref();
            Some(p)
        }
        _ => None,
    };
    let filter = match node {
        LogicalPlan::Filter(f) => {
            node = f.input.as_ref();
            Some(f)
        }
        _ => None,
    };
    let LogicalPlan::TableScan(scan) = node else {
        return Ok(None);
    };
    let expressions = projection
        .iter()
        .flat_map(|p| p.expr.iter())
        .chain(filter.map(|f| &f.predicate));
    for expr in expressions {
        if !is_row_local(expr)? {
            return Ok(None);
        }
    }
    let provider = source_as_provider(&scan.source)?;
    // Asked before scanning: a plan that does not qualify is planned, and
    // the planner makes its own scan.
    if !provider
        .downcast_ref::<KalamTableProvider>()
        .is_some_and(|table| table.seeks_keys(&scan.filters))
    {
        return Ok(None);
    }
    let exec = provider
        .scan(state, scan.projection.as_ref(), &scan.filters, scan.fetch)
        .await?;
    let props = state.execution_props();
    // Outside physical planning: a subquery would be an error (none passed
    // `is_row_local`).
    let context = PhysicalPlanningContext::default();
    let physical = |e: &Expr, input: &LogicalPlan| -> Result<Arc<dyn PhysicalExpr>> {
        let expr = create_physical_expr(e, input.schema(), props, &context)?;
        Ok(super::checked_math::checked(expr)?.data)
    };
    let predicate = match filter {
        Some(f) => Some(physical(&f.predicate, &f.input)?),
        None => None,
    };
    let columns = match projection {
        Some(p) => Some(
            p.expr
                .iter()
                .map(|e| physical(e, &p.input))
                .collect::<Result<Vec<_>>>()?,
        ),
        None => None,
    };
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let out = schema.clone();
    let rows = exec.execute(0, task)?.map(move |batch| {
        let batch = batch?;
        let batch = match &predicate {
            Some(predicate) => {
                let mask = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
                filter_record_batch(&batch, mask.as_boolean())?
            }
            None => batch,
        };
        match &columns {
            Some(columns) => project(&batch, columns, &out),
            None => Ok(RecordBatch::try_new(out.clone(), batch.columns().to_vec())?),
        }
    });
    Ok(Some(Box::pin(RecordBatchStreamAdapter::new(schema, rows))))
}

fn project(
    batch: &RecordBatch,
    columns: &[Arc<dyn PhysicalExpr>],
    schema: &SchemaRef,
) -> datafusion::error::Result<RecordBatch> {
    let arrays = columns
        .iter()
        .map(|c| c.evaluate(batch)?.into_array(batch.num_rows()))
        .collect::<datafusion::error::Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), arrays)?)
}

/// Whether `expr` reads only the row it is evaluated on (no subquery, no
/// unbound parameter, no aggregate or window).
fn is_row_local(expr: &Expr) -> Result<bool> {
    let foreign = expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::Unnest(_)
                | Expr::GroupingSet(_)
        ))
    })?;
    Ok(!foreign)
}
