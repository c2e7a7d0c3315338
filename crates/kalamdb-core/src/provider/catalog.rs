//! Catalog and schema providers over the KalamDB catalog.

use super::table::KalamTableProvider;
use super::RequestScope;
use crate::context::CoreContext;
use crate::system;
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::Result;
use std::sync::Arc;

/// The DataFusion catalog name KalamDB registers (three-part names use it).
pub const CATALOG_NAME: &str = "kalam";

#[derive(Debug)]
pub struct KalamCatalog {
    ctx: Arc<CoreContext>,
    scope: Arc<RequestScope>,
}

impl KalamCatalog {
    pub fn new(ctx: Arc<CoreContext>, scope: Arc<RequestScope>) -> Self {
        Self { ctx, scope }
    }
}

impl CatalogProvider for KalamCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ctx
            .catalog
            .namespaces()
            .iter()
            .map(|n| n.name.to_string())
            .collect();
        names.push(system::SYSTEM_SCHEMA.to_string());
        names.push(system::INFORMATION_SCHEMA.to_string());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name == system::SYSTEM_SCHEMA || name == system::INFORMATION_SCHEMA {
            return Some(Arc::new(system::SystemSchema::new(
                name,
                self.ctx.clone(),
                self.scope.clone(),
            )));
        }
        self.ctx.catalog.namespace(name)?;
        Some(Arc::new(NamespaceSchema {
            namespace: name.to_string(),
            ctx: self.ctx.clone(),
            scope: self.scope.clone(),
        }))
    }
}

#[derive(Debug)]
struct NamespaceSchema {
    namespace: String,
    ctx: Arc<CoreContext>,
    scope: Arc<RequestScope>,
}

#[async_trait]
impl SchemaProvider for NamespaceSchema {
    fn table_names(&self) -> Vec<String> {
        self.ctx
            .catalog
            .tables_in(&self.namespace)
            .iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(def) = self.ctx.catalog.table(&self.namespace, name) else {
            return Ok(None);
        };
        let provider = KalamTableProvider::new(self.ctx.clone(), def, self.scope.clone())?;
        Ok(Some(Arc::new(provider)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.ctx.catalog.table(&self.namespace, name).is_some()
    }
}
