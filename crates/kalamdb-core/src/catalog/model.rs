//! Catalog records, stored as JSON in the `meta` column family.

use super::schemas::{ColumnMap, SchemaHistory, StoredValue};
use crate::error::Result;
use kalamdb_commons::{FlushPolicy, KalamType, NamespaceId, TableName, TableType};
use kalamdb_sql::{AccessLevel, ColumnDefault};
use kalamdb_store::RowVersion;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NamespaceDef {
    pub name: NamespaceId,
    pub created_at: i64,
}

/// How a column gets a value when an INSERT does not give one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "expr", rename_all = "snake_case")]
pub enum DefaultSpec {
    SnowflakeId,
    Now,
    UuidV7,
    Ulid,
    CurrentUser,
    /// An SQL expression, evaluated per inserted row.
    Expr(String),
}

impl From<ColumnDefault> for DefaultSpec {
    fn from(d: ColumnDefault) -> Self {
        match d {
            ColumnDefault::SnowflakeId => DefaultSpec::SnowflakeId,
            ColumnDefault::Now => DefaultSpec::Now,
            ColumnDefault::UuidV7 => DefaultSpec::UuidV7,
            ColumnDefault::Ulid => DefaultSpec::Ulid,
            ColumnDefault::CurrentUser => DefaultSpec::CurrentUser,
            ColumnDefault::Expr(e) => DefaultSpec::Expr(e),
        }
    }
}

impl DefaultSpec {
    /// The SQL text shown by `DESCRIBE TABLE` and `information_schema`.
    pub fn sql(&self) -> String {
        match self {
            DefaultSpec::SnowflakeId => "SNOWFLAKE_ID()".into(),
            DefaultSpec::Now => "NOW()".into(),
            DefaultSpec::UuidV7 => "UUID_V7()".into(),
            DefaultSpec::Ulid => "ULID()".into(),
            DefaultSpec::CurrentUser => "CURRENT_USER()".into(),
            DefaultSpec::Expr(e) => e.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Stable within the table: kept by renames, never reused (see
    /// `schemas.rs`). 0 in records written before ids existed; the catalog
    /// numbers those columns by position when it loads them.
    #[serde(default)]
    pub id: u32,
    pub name: String,
    pub data_type: KalamType,
    pub nullable: bool,
    pub default: Option<DefaultSpec>,
    /// What rows written before the column was added read: ADD COLUMN's
    /// default, evaluated once then (none: NULL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<StoredValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableDef {
    /// Internal id: the key prefix of the table's rows. Never reused, so a
    /// dropped and re-created table can never see old rows.
    pub uid: u64,
    pub namespace: NamespaceId,
    pub name: TableName,
    pub table_type: TableType,
    pub columns: Vec<ColumnDef>,
    pub primary_key: String,
    pub flush_policy: Option<FlushPolicy>,
    pub storage_id: String,
    pub ttl_seconds: Option<u64>,
    /// For SHARED tables: whether plain users may read.
    pub public: bool,
    pub schema_version: u32,
    pub created_at: i64,
    pub updated_at: i64,
    /// Thresholds of automatic compaction where the table sets its own.
    #[serde(default, skip_serializing_if = "CompactionOptions::is_default")]
    pub compaction: CompactionOptions,
    /// The id the next added column gets.
    #[serde(default)]
    pub next_column_id: u32,
    /// Every schema version of the table, shared by all its definitions
    /// (kept in records of their own, not in this one).
    #[serde(skip)]
    pub schemas: Arc<SchemaHistory>,
}

/// A table's own compaction thresholds (`COMPACTION_MAX_FILES`,
/// `COMPACTION_MAX_SMALL_FILES`); `None`: the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_files: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_small_files: Option<u32>,
}

impl CompactionOptions {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl TableDef {
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }

    /// How rows (or files) of schema version `from` read as this
    /// definition's version; `None` when they are the same.
    pub fn map_from(&self, from: u32) -> Result<Option<Arc<ColumnMap>>> {
        if from == self.schema_version {
            return Ok(None);
        }
        self.schemas.map(from, self.schema_version).map(Some)
    }

    /// A stored row version with its values in this definition's columns.
    pub fn upgrade(&self, mut row: RowVersion) -> Result<RowVersion> {
        if let Some(map) = self.map_from(row.schema_version)? {
            row.values = map.apply(std::mem::take(&mut row.values));
            row.schema_version = self.schema_version;
        }
        Ok(row)
    }

    /// This definition with the columns of the newest schema version, for
    /// what writes files (a flush, a compaction): called after taking its
    /// snapshot, it is at least as new as every row version the snapshot
    /// holds (see `schemas.rs`), so no row loses a column by it.
    pub fn at_latest(&self) -> TableDef {
        let mut def = self.clone();
        if let Some(latest) = self.schemas.latest() {
            if latest.version != self.schema_version {
                def.columns = latest.columns.clone();
                def.schema_version = latest.version;
            }
        }
        def
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    pub fn pk_index(&self) -> usize {
        self.column_index(&self.primary_key)
            .expect("primary key column exists (checked at CREATE TABLE)")
    }

    /// The policy in force: the declared one or the documented default.
    pub fn effective_flush_policy(&self) -> FlushPolicy {
        self.flush_policy.unwrap_or(FlushPolicy::DEFAULT)
    }

    pub fn access_level_name(&self) -> Option<&'static str> {
        match self.table_type {
            TableType::Shared => Some(if self.public { "PUBLIC" } else { "PRIVATE" }),
            _ => None,
        }
    }
}

/// The access level a CREATE TABLE asked for, resolved to `public`.
pub fn is_public(level: Option<AccessLevel>) -> bool {
    !matches!(level, Some(AccessLevel::Private))
}
