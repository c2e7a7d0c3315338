//! Planned queries, kept by their text and the caller's scope.
//!
//! Turning a parsed query into an optimized plan costs more than running a
//! small one. An application repeats the same statements (with `$n`
//! parameters), so the plan of a repeated query is kept and used again:
//!
//! - The plan is made for one caller (its tables are scoped to that user's
//!   rows, their access checked for that role) in one default namespace,
//!   so those are part of the key with the text.
//! - It is built from catalog definitions, so it records the catalog's
//!   generation and is not used once the catalog has changed since.
//! - It never holds data: scans read the tiers when they run.
//! - Parameters are bound when it runs. The optimized plan, placeholders and
//!   all (a *generic* plan), is used when each value is of its parameter's
//!   type (or an integer that fits it); otherwise, or when the query calls a
//!   function the optimizer evaluates once per statement (`now()`), the
//!   kept unoptimized plan is bound and optimized for this run (a *custom*
//!   plan), which still skips parsing and SQL planning.
//!
//! Only queries of user tables are kept: system tables are made for one
//! statement's view of the server.

use crate::provider::KalamTableProvider;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use kalamdb_commons::Role;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Whose plan it is, and of what.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanKey {
    pub text: Arc<str>,
    pub user: String,
    pub role: Role,
    pub namespace: String,
    /// For the query of an UPDATE or DELETE: the schema version of its
    /// table, whose columns the query names (its plan must match the
    /// definition it writes with, whichever catalog generation a racing
    /// ALTER TABLE left); 0 for queries.
    pub schema_version: u32,
}

/// One query's plans for one caller.
#[derive(Debug)]
pub struct CachedPlan {
    /// The catalog generation the plan was built at.
    pub generation: u64,
    /// Planned from SQL, parameters unbound, not yet analyzed.
    pub logical: LogicalPlan,
    /// Analyzed and optimized with parameters unbound, when that is safe.
    pub generic: Option<GenericPlan>,
}

/// An optimized plan whose parameters are bound when it runs.
#[derive(Debug)]
pub struct GenericPlan {
    plan: LogicalPlan,
    /// The type of `$1`, `$2`, ...
    params: Vec<DataType>,
}

impl GenericPlan {
    /// A generic plan of `logical` as `optimize` makes it, if it can be
    /// one: no function the optimizer evaluates per statement, and every
    /// parameter typed by the query itself (`id = $1` types `$1` as `id`).
    pub fn new(
        logical: &LogicalPlan,
        optimize: impl FnOnce(&LogicalPlan) -> datafusion::common::Result<LogicalPlan>,
    ) -> Option<Self> {
        if calls_stable_function(logical) {
            return None;
        }
        let plan = optimize(logical).ok()?;
        let mut fields = plan.get_parameter_fields().ok()?;
        let mut params = Vec::with_capacity(fields.len());
        for i in 1..=fields.len() {
            params.push(fields.remove(&format!("${i}"))??.data_type().clone());
        }
        Some(Self { plan, params })
    }

    /// The plan with `values` bound, if each fits its parameter's type
    /// exactly; `None`: plan this run with the values instead.
    pub fn bind(&self, values: &[ScalarValue]) -> Option<LogicalPlan> {
        if values.len() != self.params.len() {
            return None;
        }
        if values.is_empty() {
            return Some(self.plan.clone());
        }
        let bound = values
            .iter()
            .zip(&self.params)
            .map(|(value, to)| fit(value, to))
            .collect::<Option<Vec<_>>>()?;
        self.plan.clone().with_param_values(bound).ok()
    }
}

/// `value` as a value of `to`, when that changes nothing about it: the
/// same type, a NULL, or an integer within the range of an integer type.
/// Anything else (text for a number, a float for an integer) is left to the
/// type coercion of a custom plan, so both plans mean the same.
fn fit(value: &ScalarValue, to: &DataType) -> Option<ScalarValue> {
    let from = value.data_type();
    if &from == to {
        return Some(value.clone());
    }
    if value.is_null() {
        return ScalarValue::try_from(to).ok();
    }
    if from.is_integer() && to.is_integer() {
        let cast = value.cast_to(to).ok()?;
        let back = cast.cast_to(&from).ok()?;
        return (&back == value).then_some(cast);
    }
    None
}

/// Whether the plan calls a function of [`Volatility::Stable`]: the
/// optimizer folds those (`now()`, `current_date`) into constants of the
/// statement it optimizes for.
fn calls_stable_function(plan: &LogicalPlan) -> bool {
    let mut stable = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::ScalarFunction(f) = e {
                    if f.func.signature().volatility == Volatility::Stable {
                        stable = true;
                        return Ok(TreeNodeRecursion::Stop);
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    stable
}

/// Whether a plan may be kept: every table it reads is a user table.
pub fn is_cacheable(plan: &LogicalPlan) -> bool {
    let mut ours = true;
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                let is_user_table = source_as_provider(&scan.source)
                    .is_ok_and(|p| (p.as_ref() as &dyn std::any::Any).is::<KalamTableProvider>());
                ours &= is_user_table;
            }
            // EXPLAIN's text holds the plans it was asked about.
            LogicalPlan::Explain(_) | LogicalPlan::Analyze(_) => ours = false,
            _ => {}
        }
        Ok(if ours {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ours
}

/// Kept plans, at most `capacity` of them.
#[derive(Debug)]
pub struct PlanCache {
    entries: Mutex<HashMap<PlanKey, Arc<CachedPlan>>>,
    capacity: usize,
    /// Runs that used a kept plan.
    reused: AtomicU64,
}

impl PlanCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
            reused: AtomicU64::new(0),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.capacity > 0
    }

    /// The kept plan of `key`, if it was built at catalog `generation`.
    pub fn get(&self, key: &PlanKey, generation: u64) -> Option<Arc<CachedPlan>> {
        let found = self.entries.lock().get(key).cloned()?;
        if found.generation != generation {
            return None;
        }
        self.reused.fetch_add(1, Ordering::Relaxed);
        Some(found)
    }

    pub fn insert(&self, key: PlanKey, plan: CachedPlan) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            // Plans of an older catalog generation can never be used again
            // (the generation only grows): drop them all first.
            entries.retain(|_, p| p.generation >= plan.generation);
        }
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            // Any entry: a plan still in use comes back at the cost of one
            // planning.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(key, Arc::new(plan));
    }

    /// Runs that used a kept plan so far.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit, placeholder, LogicalPlanBuilder};

    fn key(text: &str) -> PlanKey {
        PlanKey {
            text: text.into(),
            user: "u".into(),
            role: Role::User,
            namespace: "default".into(),
            schema_version: 0,
        }
    }

    fn values_plan() -> LogicalPlan {
        LogicalPlanBuilder::values(vec![vec![lit(1i32)]])
            .unwrap()
            .build()
            .unwrap()
    }

    #[test]
    fn plans_are_bounded_and_a_catalog_change_makes_them_stale() {
        let cache = PlanCache::new(2);
        let plan = |generation| CachedPlan {
            generation,
            logical: values_plan(),
            generic: None,
        };
        for text in ["a", "b", "c"] {
            cache.insert(key(text), plan(0));
        }
        assert_eq!(cache.len(), 2, "one plan of the same generation went");
        assert!(cache.get(&key("c"), 0).is_some(), "the newest is kept");
        cache.insert(key("d"), plan(1));
        assert_eq!(cache.len(), 1, "every stale plan went at once");
        assert!(cache.get(&key("c"), 0).is_none());
        assert!(cache.get(&key("d"), 1).is_some());
        assert!(
            cache.get(&key("d"), 2).is_none(),
            "a stale plan is not used"
        );
        assert_eq!(cache.reused(), 2);
        assert!(!PlanCache::new(0).is_enabled());
    }

    #[test]
    fn values_bind_only_when_they_fit_the_parameter_type() {
        assert_eq!(
            fit(&ScalarValue::Int64(Some(5000)), &DataType::Int32),
            Some(ScalarValue::Int32(Some(5000)))
        );
        assert_eq!(
            fit(&ScalarValue::Int64(Some(1 << 40)), &DataType::Int32),
            None
        );
        assert_eq!(fit(&ScalarValue::Int64(Some(-1)), &DataType::UInt8), None);
        assert_eq!(
            fit(&ScalarValue::Utf8(Some("5".into())), &DataType::Int32),
            None
        );
        assert_eq!(
            fit(&ScalarValue::Float64(Some(1.0)), &DataType::Int64),
            None
        );
        assert_eq!(
            fit(&ScalarValue::Null, &DataType::Utf8),
            Some(ScalarValue::Utf8(None))
        );
    }

    #[test]
    fn a_generic_plan_needs_typed_parameters_and_no_stable_functions() {
        let schema = datafusion::arrow::datatypes::Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("id", DataType::Int32, false),
        ]);
        let table = datafusion::logical_expr::table_scan(Some("t"), &schema, None).unwrap();
        let typed = table
            .clone()
            .filter(col("id").eq(placeholder("$1")))
            .unwrap()
            .build()
            .unwrap();
        // The SQL planner types `$1` from the column; this builder does not.
        assert!(GenericPlan::new(&typed, |p| Ok(p.clone())).is_none());
        let now = table
            .project(vec![datafusion::functions::datetime::expr_fn::now()])
            .unwrap()
            .build()
            .unwrap();
        assert!(GenericPlan::new(&now, |p| Ok(p.clone())).is_none());
        let constant = LogicalPlanBuilder::values(vec![vec![lit(1i32)]])
            .unwrap()
            .build()
            .unwrap();
        let generic = GenericPlan::new(&constant, |p| Ok(p.clone())).unwrap();
        assert!(generic.bind(&[]).is_some());
        assert!(generic.bind(&[ScalarValue::Int64(Some(1))]).is_none());
    }
}
