//! `CREATE/ALTER/DROP STORAGE` and `SHOW STORAGES`.

use super::{Session, StatementResult};
use crate::error::{CoreError, Result};
use kalamdb_commons::validate_identifier;
use kalamdb_filestore::{PathTemplate, StorageDef, StorageType};
use kalamdb_sql::StorageOptions;
use tracing::info;

pub fn create_storage(
    s: &Session<'_>,
    id: &str,
    if_not_exists: bool,
    options: StorageOptions,
) -> Result<StatementResult> {
    s.require_ddl("CREATE STORAGE")?;
    validate_identifier("storage", id).map_err(CoreError::Execution)?;
    let storage_type = StorageType::parse(options.storage_type.as_deref().unwrap_or_default())?;
    let now = s.services.clock.now_micros();
    let def = StorageDef {
        id: id.to_string(),
        storage_type,
        name: options.name.unwrap_or_else(|| id.to_string()),
        description: options.description,
        base_directory: options.base_directory.unwrap_or_default(),
        bucket: options.bucket,
        region: options.region,
        endpoint: options.endpoint,
        shared_tables_template: options
            .shared_tables_template
            .unwrap_or_else(|| PathTemplate::DEFAULT_SHARED.to_string()),
        user_tables_template: options
            .user_tables_template
            .unwrap_or_else(|| PathTemplate::DEFAULT_USER.to_string()),
        credentials: options.credentials,
        created_at: now,
        updated_at: now,
    };
    let created = s.services.storages.create(def)?;
    if !created && !if_not_exists {
        return Err(CoreError::AlreadyExists(format!(
            "storage '{id}' already exists"
        )));
    }
    if created {
        info!(
            storage = id,
            storage_type = storage_type.as_str(),
            "storage created"
        );
    }
    Ok(StatementResult::message(
        &s.caller,
        if created {
            format!("Storage '{id}' created")
        } else {
            format!("Storage '{id}' already exists")
        },
    ))
}

pub fn alter_storage(
    s: &Session<'_>,
    id: &str,
    options: StorageOptions,
) -> Result<StatementResult> {
    s.require_ddl("ALTER STORAGE")?;
    let used_by = tables_on(s, id);
    s.services.storages.alter(id, |old| {
        let moves = options
            .base_directory
            .as_ref()
            .is_some_and(|d| *d != old.base_directory)
            || options
                .bucket
                .as_ref()
                .is_some_and(|b| Some(b) != old.bucket.as_ref());
        if moves {
            if let Some(table) = &used_by {
                return Err(CoreError::exec(format!(
                    "PATH and BUCKET of storage '{id}' cannot change while tables {table} \
                     use it: their files would be left behind"
                )));
            }
        }
        let mut new = old.clone();
        let StorageOptions {
            storage_type: _,
            name,
            description,
            base_directory,
            bucket,
            region,
            endpoint,
            shared_tables_template,
            user_tables_template,
            credentials,
        } = options;
        let set = |slot: &mut String, value: Option<String>| {
            if let Some(value) = value {
                *slot = value;
            }
        };
        set(&mut new.name, name);
        set(&mut new.base_directory, base_directory);
        set(&mut new.shared_tables_template, shared_tables_template);
        set(&mut new.user_tables_template, user_tables_template);
        // An empty string clears an optional setting.
        let set_opt = |slot: &mut Option<String>, value: Option<String>| {
            if let Some(value) = value {
                *slot = (!value.is_empty()).then_some(value);
            }
        };
        set_opt(&mut new.description, description);
        set_opt(&mut new.bucket, bucket);
        set_opt(&mut new.region, region);
        set_opt(&mut new.endpoint, endpoint);
        set_opt(&mut new.credentials, credentials);
        new.updated_at = s.services.clock.now_micros();
        Ok(new)
    })?;
    info!(storage = id, "storage altered");
    Ok(StatementResult::message(
        &s.caller,
        format!("Storage '{id}' updated"),
    ))
}

/// The tables kept on storage `id`, for the refusal to drop it: up to
/// ten by name, then how many more.
fn tables_on(s: &Session<'_>, id: &str) -> Option<String> {
    const NAMED: usize = 10;
    let mut names: Vec<String> = s
        .services
        .catalog
        .tables()
        .into_iter()
        .filter(|t| t.storage_id == id)
        .map(|t| t.qualified_name())
        .collect();
    if names.is_empty() {
        return None;
    }
    names.sort();
    let more = names.len().saturating_sub(NAMED);
    names.truncate(NAMED);
    let mut list = names.join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    Some(list)
}

pub fn drop_storage(s: &Session<'_>, id: &str, if_exists: bool) -> Result<StatementResult> {
    s.require_ddl("DROP STORAGE")?;
    if s.services.storages.drop_storage(id, || tables_on(s, id))? {
        info!(storage = id, "storage dropped");
        Ok(StatementResult::message(
            &s.caller,
            format!("Storage '{id}' dropped"),
        ))
    } else if if_exists {
        Ok(StatementResult::message(
            &s.caller,
            format!("Storage '{id}' does not exist"),
        ))
    } else {
        Err(CoreError::exec(format!("storage '{id}' not found")))
    }
}

pub async fn show_storages(s: &Session<'_>) -> Result<StatementResult> {
    s.internal_query(
        "SELECT storage_id, storage_name, storage_type, base_directory, bucket, region, endpoint, \
         user_tables_template, shared_tables_template, created_at, updated_at \
         FROM system.storages ORDER BY storage_id",
    )
    .await
}
