//! Integer overflow is an error, as in PostgreSQL (`bigint out of range`),
//! not a silent wrap. DataFusion's `+`, `-` and `*` wrap unless their
//! physical expression asks for checked arithmetic, and its `sum` wraps;
//! this module turns both into checked forms.

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::aggregate::sum_checked;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Expr, GroupsAccumulator,
    LogicalPlan, Operator, ReversedUDAF, Signature,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
use datafusion::physical_plan::ExecutionPlan;
use std::sync::Arc;

/// Rewrites the arithmetic of projections and filters to checked forms.
#[derive(Debug, Default)]
pub struct CheckedArithmetic;

/// `expr` with its `+`, `-` and `*` failing on overflow.
pub(super) fn checked(expr: Arc<dyn PhysicalExpr>) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    expr.transform_up(|e| {
        let Some(binary) = e.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        if !matches!(
            binary.op(),
            Operator::Plus | Operator::Minus | Operator::Multiply
        ) {
            return Ok(Transformed::no(e));
        }
        Ok(Transformed::yes(Arc::new(
            BinaryExpr::new(binary.left().clone(), *binary.op(), binary.right().clone())
                .with_fail_on_overflow(true),
        )))
    })
}

impl PhysicalOptimizerRule for CheckedArithmetic {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                let mut changed = false;
                let mut exprs = Vec::with_capacity(projection.expr().len());
                for p in projection.expr() {
                    let t = checked(p.expr.clone())?;
                    changed |= t.transformed;
                    exprs.push(ProjectionExpr {
                        expr: t.data,
                        alias: p.alias.clone(),
                    });
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let rebuilt = ProjectionExec::try_new(exprs, projection.input().clone())?;
                return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
            }
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                let t = checked(filter.predicate().clone())?;
                if !t.transformed {
                    return Ok(Transformed::no(node));
                }
                let rebuilt = FilterExecBuilder::from(filter)
                    .with_predicate(t.data)
                    .build()?;
                return Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "kalamdb_checked_arithmetic"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Checks arithmetic of integer constants before the optimizer's constant
/// folding (which wraps) sees it: `SELECT 9223372036854775807 + 1` is an
/// error, as in PostgreSQL. Nothing is rewritten (that would rename output
/// columns); a constant expression that overflows fails the statement.
#[derive(Debug, Default)]
pub struct CheckedConstants;

/// The value of an integer constant expression, or `None` when it is not
/// one; an error when computing it overflows. Recursion is bounded by the
/// parser's expression depth limit.
fn constant_value(expr: &Expr) -> Result<Option<ScalarValue>> {
    match expr {
        Expr::Literal(v, _) if !v.is_null() && v.data_type().is_integer() => Ok(Some(v.clone())),
        Expr::BinaryExpr(binary) => {
            let (Some(l), Some(r)) = (
                constant_value(&binary.left)?,
                constant_value(&binary.right)?,
            ) else {
                return Ok(None);
            };
            let value = match binary.op {
                Operator::Plus => l.add_checked(&r),
                Operator::Minus => l.sub_checked(&r),
                Operator::Multiply => l.mul_checked(&r),
                _ => return Ok(None),
            };
            match value {
                Ok(v) => Ok(Some(v)),
                Err(_) => exec_err!("integer out of range: {l} {} {r}", binary.op),
            }
        }
        // `2147483647::INT + 1`: the cast's value, in the cast's type, so
        // the sum is checked at that width.
        Expr::Cast(cast) if cast.field.data_type().is_integer() => {
            let to = cast.field.data_type();
            match constant_value(&cast.expr)? {
                Some(v) => match v.cast_to(to) {
                    Ok(cast_value) => Ok(Some(cast_value)),
                    Err(_) => exec_err!("integer out of range: {v} as {to}"),
                },
                None => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

fn check_constants(expr: &Expr) -> Result<()> {
    expr.apply(|e| {
        if let Expr::BinaryExpr(_) = e {
            if constant_value(e)?.is_some() {
                // Its operands are checked with it.
                return Ok(TreeNodeRecursion::Jump);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map(|_| ())
}

impl AnalyzerRule for CheckedConstants {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|e| check_constants(e).map(|()| TreeNodeRecursion::Continue))
        })?;
        Ok(plan)
    }

    fn name(&self) -> &str {
        "kalamdb_checked_constants"
    }
}

/// Replaces `sum` with a form that fails on overflow of integer sums.
pub fn checked_sum(state: &mut SessionState) -> Result<()> {
    let Some(inner) = state.aggregate_functions().get("sum").cloned() else {
        return Ok(());
    };
    state.register_udaf(Arc::new(AggregateUDF::new_from_impl(CheckedSum { inner })))?;
    Ok(())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CheckedSum {
    inner: Arc<AggregateUDF>,
}

impl CheckedSum {
    /// Integer sums (returned as Int64) get the checked accumulator.
    fn applies(args: &AccumulatorArgs) -> bool {
        !args.is_distinct && args.return_field.data_type() == &DataType::Int64
    }

    fn imp(&self) -> &Arc<dyn AggregateUDFImpl> {
        self.inner.inner()
    }
}

impl AggregateUDFImpl for CheckedSum {
    fn name(&self) -> &str {
        self.imp().name()
    }

    fn aliases(&self) -> &[String] {
        self.imp().aliases()
    }

    fn signature(&self) -> &Signature {
        self.imp().signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.imp().return_type(arg_types)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.imp().coerce_types(arg_types)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.imp().state_fields(args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if Self::applies(&args) {
            return Ok(Box::new(CheckedSumAccumulator::default()));
        }
        self.imp().accumulator(args)
    }

    fn groups_accumulator_supported(&self, args: AccumulatorArgs) -> bool {
        // Grouped integer sums use the checked accumulator per group.
        !Self::applies(&args) && self.imp().groups_accumulator_supported(args)
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        self.imp().create_groups_accumulator(args)
    }

    fn create_sliding_accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        if Self::applies(&args) {
            return Ok(Box::new(CheckedSumAccumulator::default()));
        }
        self.imp().create_sliding_accumulator(args)
    }

    fn reverse_expr(&self) -> ReversedUDAF {
        ReversedUDAF::Identical
    }

    fn default_value(&self, data_type: &DataType) -> Result<ScalarValue> {
        self.imp().default_value(data_type)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.imp().documentation()
    }
}

#[derive(Debug, Default)]
struct CheckedSumAccumulator {
    sum: Option<i64>,
}

fn out_of_range<T>() -> Result<T> {
    exec_err!("bigint out of range: the sum does not fit in 64 bits")
}

impl CheckedSumAccumulator {
    fn add(&mut self, values: &ArrayRef, negate: bool) -> Result<()> {
        let values = cast(values, &DataType::Int64)?;
        let values = values.as_primitive::<Int64Type>();
        let part = match sum_checked(values) {
            Ok(part) => part,
            Err(_) => return out_of_range(),
        };
        let Some(part) = part else { return Ok(()) };
        let next = match (self.sum, negate) {
            (None, false) => Some(part),
            (None, true) => part.checked_neg(),
            (Some(s), false) => s.checked_add(part),
            (Some(s), true) => s.checked_sub(part),
        };
        match next {
            Some(next) => self.sum = Some(next),
            None => return out_of_range(),
        }
        Ok(())
    }
}

impl Accumulator for CheckedSumAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], false)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.add(&states[0], false)
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.add(&values[0], true)
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(self.sum))
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(self.sum)])
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}
