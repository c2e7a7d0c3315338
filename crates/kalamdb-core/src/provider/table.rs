//! The table provider of USER and SHARED tables.

use super::scan::ScopeScan;
use super::RequestScope;
use crate::catalog::TableDef;
use crate::error::CoreError;
use crate::schema::table_schema;
use crate::services::Services;
use crate::users::Caller;
use crate::values::coerce_scalar;
use async_trait::async_trait;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType as DfTableType,
};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use kalamdb_commons::Value;
use kalamdb_commons::{KalamType, Role, TableType};
use kalamdb_filestore::{KeyProbe, KeyRange};
use kalamdb_store::ScopeKey;
use std::sync::Arc;

/// One table as one caller sees it: a USER table shows only the caller's
/// rows; a SHARED table shows every row.
#[derive(Debug)]
pub struct KalamTableProvider {
    services: Arc<Services>,
    def: Arc<TableDef>,
    schema: SchemaRef,
    scope_key: ScopeKey,
    /// Deleted rows too (a query naming `_deleted`).
    tombstones: bool,
    /// The statement's transaction, whose snapshot and writes scans read.
    txn: Option<Arc<dyn super::TxReads>>,
}

impl KalamTableProvider {
    pub fn new(
        services: Arc<Services>,
        def: Arc<TableDef>,
        scope: Arc<RequestScope>,
    ) -> Result<Self, CoreError> {
        let scope_key = scope_key_for(&def, &scope.caller)?;
        let mut schema = table_schema(&def, scope.system_columns);
        if scope.tombstones {
            // A USER table's deleted rows are the caller's own; a SHARED
            // table's are nobody's, so they are for service and above.
            if def.table_type == TableType::Shared && scope.caller.role < Role::Service {
                return Err(CoreError::PermissionDenied(format!(
                    "reading the deleted rows of SHARED table '{}' (_deleted) requires the \
                     service role or above",
                    def.qualified_name()
                )));
            }
            // Tombstones written before DELETE kept the row hold NULL in
            // every column but the key.
            let pk = def.pk_index();
            let fields: Vec<_> = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let nullable = f.is_nullable() || (i != pk && i < def.columns.len());
                    f.as_ref().clone().with_nullable(nullable)
                })
                .collect();
            schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        }
        Ok(Self {
            schema,
            services,
            def,
            scope_key,
            tombstones: scope.tombstones,
            txn: scope.txn.clone(),
        })
    }
}

impl KalamTableProvider {
    /// The primary-key values a filter limits the scan to: `pk = literal`,
    /// `pk IN (literals)` and ORs of those, as stored. `None` when the
    /// filter is anything else, or a value cannot be a key (then the scan
    /// reads the scope and the filter decides).
    /// Whether a scan with these (bound) filters reads given keys, not a
    /// range: what [`TableProvider::scan`] decides from the same filters.
    pub fn seeks_keys(&self, filters: &[Expr]) -> bool {
        filters.iter().any(|f| self.point_keys(f).is_some())
    }

    fn point_keys(&self, filter: &Expr) -> Option<Vec<Value>> {
        let pk = &self.def.columns[self.def.pk_index()];
        let mut operands = Vec::new();
        if !self.key_operands(filter, &mut operands) {
            return None;
        }
        operands
            .into_iter()
            .map(|operand| match operand {
                Expr::Literal(v, _) => coerce_scalar(v, pk.data_type, &pk.name)
                    .ok()
                    .filter(|v| !v.is_null()),
                _ => None,
            })
            .collect()
    }

    /// Whether a filter will give [`Self::point_keys`] once its `$n`
    /// parameters are bound: a kept plan is optimized before they are, and
    /// its scan must still receive the filter to seek.
    fn seeks_once_bound(&self, filter: &Expr) -> bool {
        let mut operands = Vec::new();
        self.key_operands(filter, &mut operands)
            && operands
                .iter()
                .all(|e| matches!(e, Expr::Literal(..) | Expr::Placeholder(_)))
            && operands.iter().any(|e| matches!(e, Expr::Placeholder(_)))
    }

    /// Collects what a filter compares the primary key with in `pk = v`,
    /// `pk IN (v, ...)` and ORs of them; false for any other filter.
    fn key_operands<'e>(&self, filter: &'e Expr, operands: &mut Vec<&'e Expr>) -> bool {
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Eq,
                right,
            }) => {
                let operand = if self.is_key(left) {
                    right
                } else if self.is_key(right) {
                    left
                } else {
                    return false;
                };
                operands.push(operand);
                true
            }
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::Or,
                right,
            }) => self.key_operands(left, operands) && self.key_operands(right, operands),
            Expr::InList(list) if !list.negated && self.is_key(&list.expr) => {
                operands.extend(list.list.iter());
                true
            }
            _ => false,
        }
    }

    /// The key range filters limit a scan to (`pk > v`, `pk <= v`,
    /// `pk BETWEEN a AND b`, their mirror images, several of them), as
    /// inclusive bounds; `None` when none does. A scan skips the parts of
    /// files whose keys all lie outside it: every version of such a key is
    /// outside it too, and the filter (still applied) drops them anyway.
    fn key_range(&self, filters: &[Expr]) -> Option<KeyRange> {
        self.column_ranges(filters)
            .into_iter()
            .find(|r| r.column == self.def.primary_key)
    }

    /// The ranges filters put on other columns. Only a scope whose files
    /// hold each key once may skip row groups by them (see `FileRead`).
    fn value_ranges(&self, filters: &[Expr]) -> Vec<KeyRange> {
        self.column_ranges(filters)
            .into_iter()
            .filter(|r| r.column != self.def.primary_key)
            .collect()
    }

    /// Per column, the inclusive range its comparisons with literals in
    /// `filters` allow.
    fn column_ranges(&self, filters: &[Expr]) -> Vec<KeyRange> {
        let mut ranges: Vec<KeyRange> = Vec::new();
        for (column, low, high) in filters.iter().flat_map(|f| self.bounds(f)) {
            let name = &self.def.columns[column].name;
            let at = match ranges.iter().position(|r| r.column == *name) {
                Some(at) => at,
                None => {
                    ranges.push(KeyRange {
                        column: name.clone(),
                        low: None,
                        high: None,
                    });
                    ranges.len() - 1
                }
            };
            let range = &mut ranges[at];
            if let Some(low) = low {
                range.low = Some(match range.low.take() {
                    Some(old) => tighter(old, low, std::cmp::Ordering::Greater),
                    None => low,
                });
            }
            if let Some(high) = high {
                range.high = Some(match range.high.take() {
                    Some(old) => tighter(old, high, std::cmp::Ordering::Less),
                    None => high,
                });
            }
        }
        ranges
    }

    /// The (column, low, high) bounds one filter puts on columns.
    fn bounds(&self, filter: &Expr) -> Vec<(usize, Option<KeyProbe>, Option<KeyProbe>)> {
        match filter {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                let mut both = self.bounds(left);
                both.extend(self.bounds(right));
                both
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (column, op, value) = match (self.column_of(left), self.column_of(right)) {
                    (Some(column), None) => (column, *op, right.as_ref()),
                    (None, Some(column)) => match op.swap() {
                        Some(op) => (column, op, left.as_ref()),
                        None => return Vec::new(),
                    },
                    _ => return Vec::new(),
                };
                let Some(value) = self.probe_of(column, value) else {
                    return Vec::new();
                };
                match op {
                    Operator::Gt | Operator::GtEq => vec![(column, Some(value), None)],
                    Operator::Lt | Operator::LtEq => vec![(column, None, Some(value))],
                    Operator::Eq => vec![(column, Some(value.clone()), Some(value))],
                    _ => Vec::new(),
                }
            }
            Expr::Between(between) if !between.negated => {
                let Some(column) = self.column_of(&between.expr) else {
                    return Vec::new();
                };
                match (
                    self.probe_of(column, &between.low),
                    self.probe_of(column, &between.high),
                ) {
                    (Some(low), Some(high)) => vec![(column, Some(low), Some(high))],
                    _ => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// A literal as column `column`'s statistics can compare it, when it
    /// is one.
    fn probe_of(&self, column: usize, value: &Expr) -> Option<KeyProbe> {
        let def = &self.def.columns[column];
        let Expr::Literal(v, _) = value else {
            return None;
        };
        let value = coerce_scalar(v, def.data_type, &def.name).ok()?;
        match crate::read::probe(&value) {
            KeyProbe::Unknown => None,
            known => Some(known),
        }
    }

    /// The table column an expression is, perhaps widened by a cast (as
    /// type coercion does to an integer column compared with a wider
    /// literal). Only a widening of an integer column: other casts (to
    /// text, to boolean) match values the literal does not name.
    fn column_of(&self, expr: &Expr) -> Option<usize> {
        let widened = |to: &DataType, from: KalamType| {
            matches!(to, DataType::Int16 | DataType::Int32 | DataType::Int64)
                && matches!(
                    from,
                    KalamType::SmallInt | KalamType::Int | KalamType::BigInt
                )
        };
        let (inner, cast_to) = match expr {
            Expr::Cast(cast) => (cast.expr.as_ref(), Some(cast.field.data_type())),
            other => (other, None),
        };
        let Expr::Column(c) = inner else {
            return None;
        };
        let index = self.def.column_index(&c.name)?;
        match cast_to {
            Some(to) if !widened(to, self.def.columns[index].data_type) => None,
            _ => Some(index),
        }
    }

    /// Whether `column` is the primary key, perhaps widened by a cast (as
    /// type coercion does to an INT key compared with a BIGINT literal).
    fn is_key(&self, column: &Expr) -> bool {
        self.column_of(column) == Some(self.def.pk_index())
    }
}

/// Of two bounds, the one further in direction `way` (`Greater`: the
/// higher low bound; `Less`: the lower high bound). Bounds of different
/// kinds (cannot happen for one key column) keep the first.
fn tighter(old: KeyProbe, new: KeyProbe, way: std::cmp::Ordering) -> KeyProbe {
    let order = match (&old, &new) {
        (KeyProbe::Int(a), KeyProbe::Int(b)) => b.cmp(a),
        (KeyProbe::Bytes(a), KeyProbe::Bytes(b)) => b.cmp(a),
        _ => return old,
    };
    if order == way {
        new
    } else {
        old
    }
}

/// The hot-tier scope a caller reads and writes in a table.
pub fn scope_key_for(def: &TableDef, caller: &Caller) -> Result<ScopeKey, CoreError> {
    match def.table_type {
        TableType::User | TableType::Stream => {
            Ok(ScopeKey::new(def.uid, Some(caller.user_id.as_str())))
        }
        TableType::Shared => {
            if !def.public && caller.role < Role::Service {
                return Err(CoreError::PermissionDenied(format!(
                    "table '{}' is PRIVATE: service role or above required",
                    def.qualified_name()
                )));
            }
            Ok(ScopeKey::new(def.uid, None))
        }
        TableType::System => Err(CoreError::Internal("system tables have no rows".into())),
    }
}

#[async_trait]
impl TableProvider for KalamTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> DfTableType {
        DfTableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // `pk = literal` (or IN, or OR) narrows the scan to those keys; DataFusion still
        // applies every filter itself (Inexact), after version resolution.
        Ok(filters
            .iter()
            .map(|f| {
                if self.point_keys(f).is_some()
                    || self.seeks_once_bound(f)
                    || !self.bounds(f).is_empty()
                {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let projected = Arc::new(self.schema.project(&projection)?);
        let points = filters.iter().find_map(|f| self.point_keys(f));
        let range = self.key_range(filters);
        let values = self.value_ranges(filters);
        // Rows come in primary-key order (scans merge by key, lookups
        // return keys in order), so ORDER BY pk needs no sort and
        // ORDER BY pk LIMIT n reads n rows.
        let pk = self.def.pk_index();
        let ordering: Vec<LexOrdering> = projection
            .iter()
            .position(|&i| i == pk)
            .map(|at| {
                let column = Arc::new(datafusion::physical_expr::expressions::Column::new(
                    &self.def.primary_key,
                    at,
                ));
                // The key is never NULL, so both NULLS placements hold.
                [true, false].map(|nulls_first| {
                    LexOrdering::new([PhysicalSortExpr::new(
                        column.clone(),
                        SortOptions {
                            descending: false,
                            nulls_first,
                        },
                    )])
                })
            })
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        let scan = ScopeScan::new(
            self.services.clone(),
            self.def.clone(),
            self.scope_key.clone(),
            projected.clone(),
            projection,
            limit,
            points,
        )
        .with_tombstones(self.tombstones)
        .with_ranges(range, values);
        let scan = match &self.txn {
            Some(txn) => scan.with_overlay(txn.overlay(&self.def, &self.scope_key).await),
            None => scan,
        };
        let exec = super::exec::ScopeScanExec::new(scan, ordering);
        Ok(Arc::new(exec))
    }
}
