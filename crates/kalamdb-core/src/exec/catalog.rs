//! The DataFusion catalog of one statement: the caller's namespaces and
//! tables, plus the system schemas.

use crate::provider::{KalamTableProvider, RequestScope};
use crate::services::Services;
use crate::system;
use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::error::Result;
use std::sync::Arc;

/// The catalog a statement plans against, made for one caller: every
/// table it hands out is already scoped to that caller's rows.
#[derive(Debug)]
pub struct KalamCatalog {
    services: Arc<Services>,
    scope: Arc<RequestScope>,
}

impl KalamCatalog {
    pub fn new(services: Arc<Services>, scope: Arc<RequestScope>) -> Self {
        Self { services, scope }
    }
}

impl CatalogProvider for KalamCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .services
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
                self.services.clone(),
                self.scope.clone(),
            )));
        }
        self.services.catalog.namespace(name)?;
        Some(Arc::new(NamespaceSchema {
            namespace: name.to_string(),
            services: self.services.clone(),
            scope: self.scope.clone(),
        }))
    }
}

#[derive(Debug)]
struct NamespaceSchema {
    namespace: String,
    services: Arc<Services>,
    scope: Arc<RequestScope>,
}

#[async_trait]
impl SchemaProvider for NamespaceSchema {
    fn table_names(&self) -> Vec<String> {
        self.services
            .catalog
            .tables_in(&self.namespace)
            .iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(def) = self.services.catalog.table(&self.namespace, name) else {
            return Ok(None);
        };
        let provider = KalamTableProvider::new(self.services.clone(), def, self.scope.clone())?;
        Ok(Some(Arc::new(provider)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.services.catalog.table(&self.namespace, name).is_some()
    }
}
