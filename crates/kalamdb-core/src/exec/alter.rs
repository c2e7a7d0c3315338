//! `ALTER TABLE`: a new schema version, never a rewrite of rows or files.
//!
//! Columns keep their ids (`catalog`'s `schemas.rs`), so what was written
//! before reads through the new version: an added column reads as its fill
//! (its default, evaluated once now) in old rows, a dropped one is gone
//! for good, a renamed one keeps its values, a widened one reads its old
//! values in the wider type. The change holds the table's schema gate
//! exclusively from its checks of the existing rows to its commit, so no
//! write lands between them; writes planned under the old version and not
//! yet committed are run again under the new one.

use super::insert::default_value;
use super::{Session, StatementResult};
use crate::catalog::{is_public, widens, ColumnDef, StoredValue, TableDef};
use crate::error::{CoreError, Result};
use kalamdb_commons::{TableName, TableType};
use kalamdb_sql::{AlterTable, TableChange, TableOptions};
use std::sync::Arc;
use tracing::info;

/// Most columns a table may have, dropped ones not counted (PostgreSQL's
/// limit too).
const MAX_COLUMNS: usize = 1600;

/// What the change needs checked against the rows before it commits.
#[derive(Default)]
struct Checks {
    /// Column ids that become NOT NULL.
    not_null: Vec<u32>,
    /// Column ids added NOT NULL without a fill: only an empty table may.
    needs_empty: Vec<u32>,
    /// A column subscribers may read went away or changed type.
    ends_subscriptions: bool,
    /// Notices for changes that did nothing (`IF [NOT] EXISTS`).
    skipped: Vec<String>,
}

pub async fn alter_table(s: &Session<'_>, alter: AlterTable) -> Result<StatementResult> {
    s.require_ddl("ALTER TABLE")?;
    let def = match s.resolve_table(&alter.table) {
        Ok(def) => def,
        Err(CoreError::TableNotFound(name)) if alter.if_exists => {
            return Ok(StatementResult::message(
                &s.caller,
                format!("Table '{name}' does not exist"),
            ))
        }
        Err(e) => return Err(e),
    };
    // No write commits from here until the change has (see the module).
    let schemas = def.schemas.clone();
    let _gate = schemas.gate.write().await;
    let def = s
        .services
        .catalog
        .table(def.namespace.as_str(), def.name.as_str())
        .filter(|current| current.uid == def.uid)
        .ok_or_else(|| CoreError::TableNotFound(def.qualified_name()))?;
    let mut new = (*def).clone();
    new.updated_at = s.services.clock.now_micros();
    let mut checks = Checks::default();
    let mut said = Vec::with_capacity(alter.changes.len());
    for change in alter.changes {
        said.push(describe(&change));
        apply(s, &def, &mut new, change, &mut checks).await?;
    }
    for &id in &checks.not_null {
        let Some(at) = new.columns.iter().position(|c| c.id == id) else {
            continue;
        };
        // Rows read in the old version's columns: the new one may have
        // renamed the column, its values are the same.
        let Some(old_at) = def.columns.iter().position(|c| c.id == id) else {
            continue;
        };
        if super::alter_check::any_row(s.services, &def, Some(old_at)).await? {
            return Err(CoreError::exec(format!(
                "column '{}' of '{}' contains NULL values: SET NOT NULL refused",
                new.columns[at].name,
                def.qualified_name()
            )));
        }
    }
    if let Some(&id) = checks.needs_empty.first() {
        if super::alter_check::any_row(s.services, &def, None).await? {
            let name = new
                .columns
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.name.clone());
            return Err(CoreError::exec(format!(
                "column '{}' cannot be added NOT NULL without a DEFAULT: '{}' has rows (give it a DEFAULT)",
                name.unwrap_or_default(),
                def.qualified_name()
            )));
        }
    }
    let change = format!("ALTER TABLE {}", said.join(", "));
    let committed = s.services.catalog.alter_table(&def, new, change)?;
    if checks.ends_subscriptions {
        s.services
            .live
            .end_table_altered(committed.uid, &committed.qualified_name());
    }
    info!(table = %committed.qualified_name(), schema_version = committed.schema_version, "table altered");
    let mut message = format!(
        "Table '{}' altered (schema version {})",
        committed.qualified_name(),
        committed.schema_version
    );
    for skipped in checks.skipped {
        message.push_str("; ");
        message.push_str(&skipped);
    }
    Ok(StatementResult::message(&s.caller, message))
}

fn column_at(def: &TableDef, name: &str) -> Result<usize> {
    def.column_index(name).ok_or_else(|| {
        CoreError::exec(format!(
            "column '{name}' of '{}' does not exist",
            def.qualified_name()
        ))
    })
}

fn not_the_key(def: &TableDef, name: &str, what: &str) -> Result<()> {
    if name == def.primary_key {
        return Err(CoreError::exec(format!(
            "cannot {what} the primary key column '{name}': a table's key never changes"
        )));
    }
    Ok(())
}

async fn apply(
    s: &Session<'_>,
    old: &TableDef,
    new: &mut TableDef,
    change: TableChange,
    checks: &mut Checks,
) -> Result<()> {
    match change {
        TableChange::AddColumn {
            column,
            if_not_exists,
        } => {
            if new.column_index(&column.name).is_some() {
                if if_not_exists {
                    checks
                        .skipped
                        .push(format!("column '{}' already exists, skipped", column.name));
                    return Ok(());
                }
                return Err(CoreError::AlreadyExists(format!(
                    "column '{}' of '{}' already exists",
                    column.name,
                    new.qualified_name()
                )));
            }
            if new.columns.len() >= MAX_COLUMNS {
                return Err(CoreError::exec(format!(
                    "tables can have at most {MAX_COLUMNS} columns"
                )));
            }
            let default = column.default.map(crate::catalog::DefaultSpec::from);
            // Old rows read the default as it is now, once for all of them
            // (no rewrite): a volatile default (NOW()) gives them all one
            // value.
            let fill = match &default {
                Some(spec) => Some(
                    default_value(s, spec, column.data_type, &column.name)
                        .await
                        .map(|v| {
                            crate::values::validate_value(v, column.data_type, &column.name)
                        })??,
                ),
                None => None,
            }
            .filter(|v| !v.is_null());
            let id = new.next_column_id.max(1);
            new.next_column_id = id + 1;
            if !column.nullable && fill.is_none() {
                checks.needs_empty.push(id);
            }
            new.columns.push(ColumnDef {
                id,
                name: column.name,
                data_type: column.data_type,
                nullable: column.nullable,
                default,
                fill: fill.map(StoredValue),
            });
        }
        TableChange::DropColumn { name, if_exists } => {
            let Some(at) = new.column_index(&name) else {
                if if_exists {
                    checks
                        .skipped
                        .push(format!("column '{name}' does not exist, skipped"));
                    return Ok(());
                }
                return Err(column_at(new, &name).unwrap_err());
            };
            not_the_key(new, &name, "drop")?;
            new.columns.remove(at);
            checks.ends_subscriptions = true;
        }
        TableChange::RenameColumn { from, to } => {
            let at = column_at(new, &from)?;
            not_the_key(new, &from, "rename")?;
            if new.column_index(&to).is_some() {
                return Err(CoreError::AlreadyExists(format!(
                    "column '{to}' of '{}' already exists",
                    new.qualified_name()
                )));
            }
            new.columns[at].name = to;
        }
        TableChange::SetDefault { column, default } => {
            let at = column_at(new, &column)?;
            let spec = crate::catalog::DefaultSpec::from(default);
            let t = new.columns[at].data_type;
            // Evaluated once now, so a default that can never fit the
            // column fails here rather than at every later INSERT.
            default_value(s, &spec, t, &column).await?;
            new.columns[at].default = Some(spec);
        }
        TableChange::DropDefault { column } => {
            let at = column_at(new, &column)?;
            new.columns[at].default = None;
        }
        TableChange::SetNotNull { column } => {
            let at = column_at(new, &column)?;
            if new.columns[at].nullable {
                new.columns[at].nullable = false;
                let id = new.columns[at].id;
                // A column added by this same statement has no rows yet.
                if old.columns.iter().any(|c| c.id == id) {
                    checks.not_null.push(id);
                } else if new.columns[at].fill.is_none() {
                    checks.needs_empty.push(id);
                }
            }
        }
        TableChange::DropNotNull { column } => {
            let at = column_at(new, &column)?;
            not_the_key(new, &column, "make NULL-able")?;
            new.columns[at].nullable = true;
        }
        TableChange::SetType { column, data_type } => {
            let at = column_at(new, &column)?;
            not_the_key(new, &column, "change the type of")?;
            let from = new.columns[at].data_type;
            if !widens(from, data_type) {
                return Err(CoreError::exec(format!(
                    "column '{column}' cannot change from {from} to {data_type}: only widening \
                     without a rewrite is supported (SMALLINT to INT or BIGINT, INT to BIGINT, FLOAT to DOUBLE)"
                )));
            }
            if from != data_type {
                new.columns[at].data_type = data_type;
                checks.ends_subscriptions = true;
            }
        }
        TableChange::RenameTable { to } => {
            new.name = TableName::new(&to).map_err(CoreError::Execution)?;
        }
        TableChange::SetOptions(options) => set_options(s, new, options)?,
    }
    Ok(())
}

fn set_options(s: &Session<'_>, new: &mut TableDef, options: TableOptions) -> Result<()> {
    if let Some(policy) = options.flush_policy {
        new.flush_policy = Some(policy);
    }
    if let Some(level) = options.access_level {
        if new.table_type != TableType::Shared {
            return Err(CoreError::exec(
                "ACCESS_LEVEL applies to SHARED tables only",
            ));
        }
        new.public = is_public(Some(level));
    }
    if options.ttl_seconds.is_some() {
        return Err(CoreError::exec("TTL_SECONDS applies to STREAM tables only"));
    }
    if let Some(n) = options.compaction_max_files {
        new.compaction.max_files = Some(n);
    }
    if let Some(n) = options.compaction_max_small_files {
        new.compaction.max_small_files = Some(n);
    }
    if let Some(storage) = options.storage_id {
        if s.services.storages.get(&storage).is_none() {
            return Err(CoreError::exec(format!(
                "storage '{storage}' does not exist"
            )));
        }
        if storage != new.storage_id {
            // Files record no storage of their own: every file of a table
            // is read from the table's storage.
            let files = crate::cold::table_manifest_entries(s.services.hot.store(), new.uid)?;
            if !files.is_empty() {
                return Err(CoreError::exec(format!(
                    "'{}' has {} file(s) in storage '{}': its STORAGE_ID can change only while it has none",
                    new.qualified_name(),
                    files.len(),
                    new.storage_id
                )));
            }
            new.storage_id = storage;
        }
    }
    Ok(())
}

/// How the history shows one change.
fn describe(change: &TableChange) -> String {
    match change {
        TableChange::AddColumn { column, .. } => format!(
            "ADD COLUMN {} {}{}",
            column.name,
            column.data_type,
            if column.nullable { "" } else { " NOT NULL" }
        ),
        TableChange::DropColumn { name, .. } => format!("DROP COLUMN {name}"),
        TableChange::RenameColumn { from, to } => format!("RENAME COLUMN {from} TO {to}"),
        TableChange::SetDefault { column, default } => format!(
            "ALTER COLUMN {column} SET DEFAULT {}",
            crate::catalog::DefaultSpec::from(default.clone()).sql()
        ),
        TableChange::DropDefault { column } => format!("ALTER COLUMN {column} DROP DEFAULT"),
        TableChange::SetNotNull { column } => format!("ALTER COLUMN {column} SET NOT NULL"),
        TableChange::DropNotNull { column } => format!("ALTER COLUMN {column} DROP NOT NULL"),
        TableChange::SetType { column, data_type } => {
            format!("ALTER COLUMN {column} TYPE {data_type}")
        }
        TableChange::RenameTable { to } => format!("RENAME TO {to}"),
        TableChange::SetOptions(_) => "SET TBLPROPERTIES".into(),
    }
}

/// `DESCRIBE TABLE t HISTORY`: one row per schema version, oldest first.
pub fn describe_history(s: &Session<'_>, def: &Arc<TableDef>) -> Result<StatementResult> {
    use crate::schema::field;
    use datafusion::arrow::array::{ArrayRef, Int32Array, StringArray, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::arrow::record_batch::RecordBatch;
    use kalamdb_commons::KalamType;
    let versions = def.schemas.all();
    let columns = |v: &crate::catalog::SchemaVersion| {
        v.columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    c.name,
                    c.data_type,
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let schema = Arc::new(Schema::new(vec![
        field("version", KalamType::Int, false),
        field("created_at", KalamType::Timestamp, false),
        field("change", KalamType::Text, false),
        field("columns", KalamType::Text, false),
    ]));
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(
            versions.iter().map(|v| v.version as i32),
        )),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            versions.iter().map(|v| v.created_at),
        )),
        Arc::new(StringArray::from_iter_values(
            versions.iter().map(|v| v.change.as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            versions.iter().map(|v| columns(v)),
        )),
    ];
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    Ok(StatementResult {
        schema: Some(schema),
        row_count: batch.num_rows(),
        batches: vec![batch],
        rest: None,
        message: None,
        as_user: s.caller.user_id.to_string(),
    })
}
