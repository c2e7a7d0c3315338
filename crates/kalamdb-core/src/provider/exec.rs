//! The plan node of a table scan, so that EXPLAIN says what the scan
//! does (which table, keys sought or the whole scope, its limit and
//! order) and EXPLAIN ANALYZE what it did (keys sought, rows read, files
//! read and pruned by their key range).

use super::scan::{ScanMetrics, ScopeScan};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use std::sync::Arc;

#[derive(Debug)]
pub struct ScopeScanExec {
    scan: ScopeScan,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ScopeScanExec {
    /// `orderings`: the orders its rows come in (primary key ascending).
    pub fn new(scan: ScopeScan, orderings: Vec<LexOrdering>) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(scan.schema().clone(), orderings),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            scan,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for ScopeScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let scan = &self.scan;
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(f, "ScopeScanExec: table={}", scan.table_name())?;
                match scan.keys() {
                    Some(keys) => write!(f, ", keys={}", keys.len())?,
                    None => write!(f, ", scan=scope")?,
                }
                let names: Vec<&str> = scan
                    .schema()
                    .fields()
                    .iter()
                    .map(|field| field.name().as_str())
                    .collect();
                write!(f, ", projection=[{}]", names.join(", "))?;
                if let Some(limit) = scan.limit() {
                    write!(f, ", limit={limit}")?;
                }
                if scan.tombstones() {
                    write!(f, ", deleted_rows=true")?;
                }
                if !self
                    .properties
                    .equivalence_properties()
                    .oeq_class()
                    .is_empty()
                {
                    write!(f, ", order=primary key")?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => write!(f, "table={}", scan.table_name()),
        }
    }
}

impl ExecutionPlan for ScopeScanExec {
    fn name(&self) -> &str {
        "ScopeScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "a table scan has no children".into(),
            ))
        }
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let counter =
            |name: &'static str| MetricBuilder::new(&self.metrics).counter(name, partition);
        let metrics = ScanMetrics {
            keys_sought: counter("keys_sought"),
            rows_read: MetricBuilder::new(&self.metrics).output_rows(partition),
            files_read: counter("files_read"),
            files_pruned: counter("files_pruned"),
        };
        Ok(self.scan.stream(metrics))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn fetch(&self) -> Option<usize> {
        self.scan.limit()
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn ExecutionPlan>> {
        Some(Arc::new(Self {
            scan: self.scan.clone().with_limit(limit),
            properties: self.properties.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}
