//! Namespaces, tables and users.

use super::{Session, StatementResult};
use crate::catalog::{
    is_public, ColumnDef, CompactionOptions, NamespaceDef, TableDef, DEFAULT_NAMESPACE,
    LOCAL_STORAGE,
};
use crate::cold::{pending_key, remove_table_files, table_file_paths, table_manifest_entries};
use crate::error::{CoreError, Result};
use crate::system::{INFORMATION_SCHEMA, SYSTEM_SCHEMA};
use crate::users::ROOT_USER;
use kalamdb_commons::{NamespaceId, Role, TableName, TableType, UserId};
use kalamdb_filestore::ManifestEntry;
use kalamdb_sql::{CreateTable, TableRef, UserChange};
use tracing::{info, warn};

/// Names of built-in schemas, in any case: `"SYSTEM"` would read as a
/// different namespace to the catalog but as the system schema to tools
/// and people, and to case-insensitive file systems.
fn reserved(ns: &str) -> bool {
    [SYSTEM_SCHEMA, INFORMATION_SCHEMA, "pg_catalog"]
        .iter()
        .any(|r| ns.eq_ignore_ascii_case(r))
}

pub fn create_namespace(
    s: &Session<'_>,
    name: &str,
    if_not_exists: bool,
) -> Result<StatementResult> {
    s.require_ddl("CREATE NAMESPACE")?;
    let id = NamespaceId::new(name).map_err(CoreError::Execution)?;
    if reserved(name) {
        return Err(CoreError::exec(format!(
            "namespace name '{name}' is reserved"
        )));
    }
    let created = s.services.catalog.create_namespace(NamespaceDef {
        name: id,
        created_at: s.services.clock.now_micros(),
    })?;
    if !created && !if_not_exists {
        return Err(CoreError::AlreadyExists(format!(
            "namespace '{name}' already exists"
        )));
    }
    if created {
        info!(namespace = name, user = %s.caller.user_id, "namespace created");
    }
    Ok(StatementResult::message(
        &s.caller,
        if created {
            format!("Namespace '{name}' created")
        } else {
            format!("Namespace '{name}' already exists")
        },
    ))
}

pub async fn drop_namespace(
    s: &Session<'_>,
    name: &str,
    if_exists: bool,
    cascade: bool,
) -> Result<StatementResult> {
    s.require_ddl("DROP NAMESPACE")?;
    if name == DEFAULT_NAMESPACE || reserved(name) {
        return Err(CoreError::exec(format!(
            "namespace '{name}' cannot be dropped"
        )));
    }
    if s.services.catalog.namespace(name).is_none() {
        if if_exists {
            return Ok(StatementResult::message(
                &s.caller,
                format!("Namespace '{name}' does not exist"),
            ));
        }
        return Err(CoreError::NamespaceNotFound(name.to_string()));
    }
    let tables = s.services.catalog.tables_in(name);
    if !tables.is_empty() && !cascade {
        return Err(CoreError::exec(format!(
            "namespace '{name}' has {} table(s); drop them first or use CASCADE",
            tables.len()
        )));
    }
    // Holding every table's flush and compaction locks: nothing commits a
    // file while its table goes away, and the files listed below are all
    // there are.
    let mut held = Vec::with_capacity(tables.len());
    let mut files = Vec::with_capacity(tables.len());
    for table in &tables {
        held.push(s.services.flusher.table_lock(table.uid).lock_owned().await);
        held.push(
            s.services
                .flusher
                .compact_lock(table.uid)
                .lock_owned()
                .await,
        );
        files.push(table_manifest_entries(s.services.hot.store(), table.uid)?);
    }
    // And every table's schema gate: no write of its rows commits after
    // the drop (see `drop_table`). In table-id order, the order in which a
    // transaction's commit takes its tables' gates: taken in two orders,
    // the two could each hold a gate the other waits for.
    let mut by_uid: Vec<&std::sync::Arc<TableDef>> = tables.iter().collect();
    by_uid.sort_by_key(|table| table.uid);
    let mut gates = Vec::with_capacity(tables.len());
    for table in by_uid {
        gates.push(table.schemas.gate.write().await);
    }
    let doomed: Vec<Vec<u8>> = tables
        .iter()
        .zip(&files)
        .flat_map(|(table, entries)| removal_records(table, entries))
        .collect();
    let dropped = s.services.catalog.drop_namespace(name, &doomed)?;
    for table in &dropped {
        table.schemas.mark_dropped();
    }
    drop(gates);
    drop(held);
    for table in &dropped {
        s.services.hot.dropped(table.uid)?;
        s.services.flusher.forget_table(table.uid);
        s.services.reads.forget(table.uid);
        s.services
            .live
            .end_table(table.uid, &table.qualified_name());
    }
    for (table, entries) in tables.iter().zip(files) {
        remove_files(s, table, &entries).await;
    }
    info!(
        namespace = name,
        tables = dropped.len(),
        "namespace dropped"
    );
    Ok(StatementResult::message(
        &s.caller,
        format!("Namespace '{name}' dropped"),
    ))
}

pub fn create_table(s: &Session<'_>, create: CreateTable) -> Result<StatementResult> {
    s.require_ddl("CREATE TABLE")?;
    let ns = s.namespace_of(&create.table);
    if reserved(&ns) {
        return Err(CoreError::PermissionDenied(format!(
            "cannot create tables in '{ns}'"
        )));
    }
    let namespace = NamespaceId::new(&ns).map_err(CoreError::Execution)?;
    let name = TableName::new(&create.table.table).map_err(CoreError::Execution)?;
    if create.table_type == TableType::Stream {
        return Err(CoreError::exec(
            "STREAM tables are not supported yet; use a USER or SHARED table",
        ));
    }
    if create.ttl_seconds.is_some() {
        return Err(CoreError::exec("TTL_SECONDS applies to STREAM tables only"));
    }
    let compaction = CompactionOptions {
        max_files: create.compaction_max_files,
        max_small_files: create.compaction_max_small_files,
    };
    if !compaction.is_default() && create.table_type == TableType::Stream {
        return Err(CoreError::exec(
            "COMPACTION options apply to USER and SHARED tables only (STREAM tables have no files)",
        ));
    }
    if create.access_level.is_some() && create.table_type != TableType::Shared {
        return Err(CoreError::exec(
            "ACCESS_LEVEL applies to SHARED tables only",
        ));
    }
    let storage_id = create
        .storage_id
        .unwrap_or_else(|| LOCAL_STORAGE.to_string());
    let now = s.services.clock.now_micros();
    let column_count = create.columns.len();
    let def = TableDef {
        uid: 0,
        namespace,
        name,
        table_type: create.table_type,
        columns: create
            .columns
            .into_iter()
            .zip(1..)
            .map(|(c, id)| ColumnDef {
                id,
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
                default: c.default.map(Into::into),
                fill: None,
            })
            .collect(),
        primary_key: create.primary_key,
        flush_policy: create.flush_policy,
        storage_id,
        ttl_seconds: None,
        public: is_public(create.access_level),
        schema_version: 1,
        created_at: now,
        updated_at: now,
        compaction,
        next_column_id: column_count as u32 + 1,
        schemas: Default::default(),
    };
    let qualified = def.qualified_name();
    let (created, def) = s
        .services
        .storages
        .while_exists(&def.storage_id.clone(), || {
            s.services.catalog.create_table(def)
        })?;
    if created {
        s.services.hot.created(def.uid);
    }
    if !created && !create.if_not_exists {
        return Err(CoreError::AlreadyExists(format!(
            "table '{qualified}' already exists"
        )));
    }
    if created {
        info!(table = %qualified, table_type = %create.table_type, "table created");
    }
    Ok(StatementResult::message(
        &s.caller,
        if created {
            format!("Table '{qualified}' created")
        } else {
            format!("Table '{qualified}' already exists")
        },
    ))
}

pub async fn drop_table(
    s: &Session<'_>,
    table: &TableRef,
    if_exists: bool,
) -> Result<StatementResult> {
    s.require_ddl("DROP TABLE")?;
    let ns = s.namespace_of(table);
    let qualified = format!("{ns}.{}", table.table);
    let existing = s.services.catalog.table(&ns, &table.table);
    // See drop_namespace: no flush or compaction may commit while the
    // table is dropped.
    let _moving = match &existing {
        Some(def) => Some((
            s.services.flusher.table_lock(def.uid).lock_owned().await,
            s.services.flusher.compact_lock(def.uid).lock_owned().await,
        )),
        None => None,
    };
    // Writes hold the schema gate from their check to their commit: taken
    // exclusively, no write of the table is in flight, and those waiting
    // find it dropped.
    let _gate = match &existing {
        Some(def) => Some(def.schemas.gate.write().await),
        None => None,
    };
    let files = match &existing {
        Some(def) => table_manifest_entries(s.services.hot.store(), def.uid)?,
        None => Vec::new(),
    };
    let doomed = match &existing {
        Some(def) => removal_records(def, &files),
        None => Vec::new(),
    };
    match s.services.catalog.drop_table(&ns, &table.table, &doomed)? {
        Some(def) => {
            def.schemas.mark_dropped();
            s.services.hot.dropped(def.uid)?;
            s.services.flusher.forget_table(def.uid);
            s.services.reads.forget(def.uid);
            s.services.live.end_table(def.uid, &qualified);
            remove_files(s, &def, &files).await;
            info!(table = %qualified, "table dropped");
            Ok(StatementResult::message(
                &s.caller,
                format!("Table '{qualified}' dropped"),
            ))
        }
        None if if_exists => Ok(StatementResult::message(
            &s.caller,
            format!("Table '{qualified}' does not exist"),
        )),
        None => Err(CoreError::TableNotFound(qualified)),
    }
}

/// Records of the files a drop must remove (its data files and the
/// `manifest.json` copies beside them), written with the drop itself: a
/// file whose removal a crash interrupts is removed at the next start.
fn removal_records(def: &TableDef, entries: &[ManifestEntry]) -> Vec<Vec<u8>> {
    table_file_paths(entries)
        .iter()
        .map(|path| pending_key(&def.storage_id, path))
        .collect()
}

/// Deletes a dropped table's files. The table is gone from the catalog
/// already; a file that cannot be removed now keeps its record and is
/// removed at the next start.
async fn remove_files(s: &Session<'_>, def: &TableDef, entries: &[ManifestEntry]) {
    if entries.is_empty() {
        return;
    }
    let _removing = s.services.storages.removing_files().await;
    match s.services.storages.for_table(def) {
        Ok(cold) => {
            remove_table_files(
                s.services.hot.store(),
                &cold,
                &def.qualified_name(),
                entries,
            )
            .await
        }
        Err(e) => {
            warn!(table = %def.qualified_name(), error = %e, "cannot open the storage to remove files")
        }
    }
}

pub fn create_user(
    s: &Session<'_>,
    name: &str,
    password: &str,
    role: Role,
    email: Option<String>,
) -> Result<StatementResult> {
    s.require_ddl("CREATE USER")?;
    if role > s.caller.role {
        return Err(CoreError::PermissionDenied(format!(
            "cannot create a user with role {role} above your own"
        )));
    }
    let id = UserId::new(name).map_err(CoreError::Execution)?;
    s.services.users.create(id, password, role, email)?;
    info!(user = name, %role, "user created");
    Ok(StatementResult::message(
        &s.caller,
        format!("User '{name}' created"),
    ))
}

pub fn alter_user(s: &Session<'_>, name: &str, change: UserChange) -> Result<StatementResult> {
    let is_self = s.caller.user_id.as_str() == name;
    let target = s
        .services
        .users
        .active(name)
        .ok_or_else(|| CoreError::UserNotFound(name.to_string()))?;
    let changes_role = matches!(change, UserChange::Role(_));
    if !is_self || changes_role {
        s.require_ddl("ALTER USER")?;
        if target.role > s.caller.role {
            return Err(CoreError::PermissionDenied(format!(
                "cannot alter user '{name}' whose role is above your own"
            )));
        }
    }
    if let UserChange::Role(role) = change {
        if role > s.caller.role {
            return Err(CoreError::PermissionDenied(format!(
                "cannot grant role {role} above your own"
            )));
        }
        if name == ROOT_USER {
            return Err(CoreError::PermissionDenied(
                "root's role cannot change".into(),
            ));
        }
    }
    match change {
        UserChange::Password(password) => {
            // Tokens issued under the old password stop working.
            s.services.users.set_password(name, &password)?;
            info!(user = name, "password changed; the user's sessions ended");
        }
        UserChange::Role(role) => s.services.users.update(name, |record| {
            record.role = role;
            Ok(())
        })?,
        UserChange::Email(email) => s.services.users.update(name, |record| {
            record.email = Some(email);
            Ok(())
        })?,
    }
    info!(user = name, "user altered");
    Ok(StatementResult::message(
        &s.caller,
        format!("User '{name}' updated"),
    ))
}

pub fn drop_user(s: &Session<'_>, name: &str, if_exists: bool) -> Result<StatementResult> {
    s.require_ddl("DROP USER")?;
    if name == ROOT_USER || name == s.caller.user_id.as_str() {
        return Err(CoreError::PermissionDenied(format!(
            "user '{name}' cannot be dropped"
        )));
    }
    if let Some(target) = s.services.users.active(name) {
        if target.role > s.caller.role {
            return Err(CoreError::PermissionDenied(format!(
                "cannot drop user '{name}' whose role is above your own"
            )));
        }
    }
    if s.services.users.drop_user(name)? {
        s.services.live.end_user(name);
        info!(user = name, "user dropped");
        Ok(StatementResult::message(
            &s.caller,
            format!("User '{name}' dropped"),
        ))
    } else if if_exists {
        Ok(StatementResult::message(
            &s.caller,
            format!("User '{name}' does not exist"),
        ))
    } else {
        Err(CoreError::UserNotFound(name.to_string()))
    }
}
