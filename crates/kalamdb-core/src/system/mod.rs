//! Built-in read-only tables: `system.*` and `information_schema.*`.
//!
//! Each is computed from the catalog when a statement names it, as the
//! caller is allowed to see it (`system.users` shows others' accounts only
//! to dba and above, and never a password hash; `system.storages` masks
//! credentials below dba).

mod audit;
mod cluster;
mod columns;
mod datatypes;
mod exports;
mod jobs;
mod live;
mod manifest;
mod namespaces;
mod running;
mod schemas;
pub mod server_logs;
mod settings;
mod storages;
mod tables;
mod users;

use crate::provider::RequestScope;
use crate::services::Services;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{MemTable, SchemaProvider, TableProvider};
use datafusion::error::Result;
use std::sync::Arc;

pub const SYSTEM_SCHEMA: &str = "system";
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// One built-in table: its name, schema and contents.
pub(crate) struct Builtin {
    schema: &'static str,
    name: &'static str,
    arrow_schema: fn() -> SchemaRef,
    rows: fn(&Services, &RequestScope) -> Result<RecordBatch>,
    /// How many leading columns identify a row (a live query over the
    /// table tells an update from a delete and an insert by them).
    key_columns: usize,
}

impl Builtin {
    pub(crate) fn rows(&self, services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
        (self.rows)(services, scope)
    }

    pub(crate) fn key_columns(&self) -> usize {
        self.key_columns
    }
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// The built-in table `schema.name`.
pub(crate) fn builtin(schema: &str, name: &str) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|b| b.schema == schema && b.name == name)
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "namespaces",
        arrow_schema: namespaces::schema,
        rows: namespaces::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "tables",
        arrow_schema: tables::schema,
        rows: tables::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "schemas",
        arrow_schema: schemas::schema,
        rows: schemas::rows,
        key_columns: 2,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "settings",
        arrow_schema: settings::settings_schema,
        rows: settings::settings_rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "stats",
        arrow_schema: settings::stats_schema,
        rows: settings::stats_rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "users",
        arrow_schema: users::schema,
        rows: users::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "storages",
        arrow_schema: storages::schema,
        rows: storages::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "jobs",
        arrow_schema: jobs::schema,
        rows: jobs::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "live",
        arrow_schema: live::schema,
        rows: live::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "columns",
        arrow_schema: columns::kalam_schema,
        rows: columns::kalam_rows,
        key_columns: 4,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "datatypes",
        arrow_schema: datatypes::schema,
        rows: datatypes::rows,
        key_columns: 2,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "manifest",
        arrow_schema: manifest::schema,
        rows: manifest::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "audit_log",
        arrow_schema: audit::schema,
        rows: audit::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "server_logs",
        arrow_schema: server_logs::schema,
        rows: server_logs::rows,
        // Log lines have no key: the whole line is one.
        key_columns: 6,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "running_queries",
        arrow_schema: running::schema,
        rows: running::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "exports",
        arrow_schema: exports::schema,
        rows: exports::rows,
        key_columns: 1,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "job_nodes",
        arrow_schema: cluster::job_nodes_schema,
        rows: cluster::job_nodes_rows,
        key_columns: 2,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "cluster",
        arrow_schema: cluster::cluster_schema,
        rows: cluster::cluster_rows,
        key_columns: 2,
    },
    Builtin {
        schema: SYSTEM_SCHEMA,
        name: "cluster_groups",
        arrow_schema: cluster::groups_schema,
        rows: cluster::groups_rows,
        key_columns: 1,
    },
    Builtin {
        schema: INFORMATION_SCHEMA,
        name: "tables",
        arrow_schema: tables::info_schema,
        rows: tables::info_rows,
        key_columns: 3,
    },
    Builtin {
        schema: INFORMATION_SCHEMA,
        name: "columns",
        arrow_schema: columns::schema,
        rows: columns::rows,
        key_columns: 4,
    },
];

/// `(schema, table, arrow schema)` of every built-in table.
pub fn builtin_tables() -> impl Iterator<Item = (&'static str, &'static str, SchemaRef)> {
    BUILTINS
        .iter()
        .map(|b| (b.schema, b.name, (b.arrow_schema)()))
}

#[derive(Debug)]
pub struct SystemSchema {
    name: &'static str,
    services: Arc<Services>,
    scope: Arc<RequestScope>,
}

impl SystemSchema {
    pub fn new(name: &str, services: Arc<Services>, scope: Arc<RequestScope>) -> Self {
        let name = if name == SYSTEM_SCHEMA {
            SYSTEM_SCHEMA
        } else {
            INFORMATION_SCHEMA
        };
        Self {
            name,
            services,
            scope,
        }
    }

    fn builtin(&self, table: &str) -> Option<&'static Builtin> {
        builtin(self.name, table)
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        BUILTINS
            .iter()
            .filter(|b| b.schema == self.name)
            .map(|b| b.name.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(builtin) = self.builtin(name) else {
            return Ok(None);
        };
        let batch = (builtin.rows)(&self.services, &self.scope)?;
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])?;
        Ok(Some(Arc::new(table)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.builtin(name).is_some()
    }
}

/// Helpers for building system table columns.
mod build {
    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    pub fn text<S: AsRef<str>>(values: impl IntoIterator<Item = S>) -> ArrayRef {
        Arc::new(StringArray::from_iter_values(values))
    }

    pub fn opt_text(values: impl IntoIterator<Item = Option<String>>) -> ArrayRef {
        Arc::new(StringArray::from_iter(values))
    }

    pub fn int32(values: impl IntoIterator<Item = i32>) -> ArrayRef {
        Arc::new(Int32Array::from_iter_values(values))
    }

    pub fn int64(values: impl IntoIterator<Item = i64>) -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(values))
    }

    pub fn opt_int64(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
        Arc::new(Int64Array::from_iter(values))
    }

    pub fn boolean(values: impl IntoIterator<Item = bool>) -> ArrayRef {
        Arc::new(BooleanArray::from_iter(values.into_iter().map(Some)))
    }

    pub fn timestamps(values: impl IntoIterator<Item = Option<i64>>) -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from_iter(values))
    }
}
