//! Finding tables named in statements, and the permission rules for them.

use super::Session;
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::system::{INFORMATION_SCHEMA, SYSTEM_SCHEMA};
use kalamdb_commons::TableType;
use kalamdb_sql::sqlparser::ast::ObjectName;
use kalamdb_sql::TableRef;
use std::sync::Arc;

impl Session<'_> {
    pub(super) fn namespace_of(&self, table: &TableRef) -> String {
        table
            .namespace
            .clone()
            .unwrap_or_else(|| self.default_namespace.clone())
    }

    /// The definition of a USER or SHARED table.
    pub(super) fn resolve_table(&self, table: &TableRef) -> Result<Arc<TableDef>> {
        let ns = self.namespace_of(table);
        if ns == SYSTEM_SCHEMA || ns == INFORMATION_SCHEMA {
            return Err(CoreError::PermissionDenied(format!(
                "{ns}.{} is a read-only system table",
                table.table
            )));
        }
        if self.services.catalog.namespace(&ns).is_none() {
            return Err(CoreError::NamespaceNotFound(ns));
        }
        self.services
            .catalog
            .table(&ns, &table.table)
            .ok_or_else(|| CoreError::TableNotFound(format!("{ns}.{}", table.table)))
    }

    pub(super) fn resolve_object_name(&self, name: &ObjectName) -> Result<Arc<TableDef>> {
        self.resolve_table(&kalamdb_sql::table_ref_of(name)?)
    }

    /// Writing rows: anyone in their own scope of a USER table; SHARED
    /// tables need service or above.
    pub(super) fn check_write(&self, table: &TableDef) -> Result<()> {
        match table.table_type {
            TableType::User | TableType::Stream => Ok(()),
            TableType::Shared if self.caller.role.can_write_shared() => Ok(()),
            TableType::Shared => Err(CoreError::PermissionDenied(format!(
                "writing SHARED table '{}' requires the service role or above",
                table.qualified_name()
            ))),
            TableType::System => Err(CoreError::PermissionDenied(
                "system tables are read-only".into(),
            )),
        }
    }

    pub(super) fn require_ddl(&self, what: &str) -> Result<()> {
        if self.caller.role.can_run_ddl() {
            Ok(())
        } else {
            Err(CoreError::PermissionDenied(format!(
                "{what} requires the dba role or above"
            )))
        }
    }
}
