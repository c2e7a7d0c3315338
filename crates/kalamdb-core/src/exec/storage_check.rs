//! `STORAGE CHECK id [EXTENDED]`: every file the manifests of the storage's
//! tables name exists, can be read and has the size the manifest recorded;
//! EXTENDED also reads each file's footer and checks its row count. Each
//! problem is one row; the message counts what was checked.

use super::{Session, StatementResult};
use crate::error::{CoreError, Result};
use crate::schema::field;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_commons::KalamType;
use kalamdb_filestore::object_store::{self, path::Path, ObjectStore, ObjectStoreExt};
use kalamdb_filestore::ManifestEntry;
use std::sync::Arc;

/// One file that failed a check.
struct Problem {
    table: String,
    scope: String,
    path: String,
    problem: &'static str,
    detail: String,
}

/// What is wrong with one file; `None` when it is sound.
async fn check_file(
    store: &Arc<dyn ObjectStore>,
    entry: &ManifestEntry,
    extended: bool,
) -> Option<(&'static str, String)> {
    let path = Path::from(entry.path.as_str());
    let size = match store.head(&path).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => {
            return Some((
                "missing",
                "the manifest names it; the storage has no such file".into(),
            ))
        }
        Err(e) => return Some(("unreadable", e.to_string())),
    };
    if size != entry.bytes {
        return Some((
            "size_mismatch",
            format!(
                "the manifest says {} bytes, the file has {size}",
                entry.bytes
            ),
        ));
    }
    if !extended {
        return None;
    }
    match kalamdb_filestore::read_footer(store.clone(), &path, size).await {
        Err(e) => Some(("bad_footer", e.to_string())),
        Ok(footer) if footer.rows != entry.rows => Some((
            "row_count_mismatch",
            format!(
                "the manifest says {} rows, the footer {}",
                entry.rows, footer.rows
            ),
        )),
        Ok(_) => None,
    }
}

pub async fn check_storage(s: &Session<'_>, id: &str, extended: bool) -> Result<StatementResult> {
    s.require_ddl("STORAGE CHECK")?;
    if s.services.storages.get(id).is_none() {
        return Err(CoreError::exec(format!("storage '{id}' not found")));
    }
    let cold = s.services.storages.open(id)?;
    let mut tables = s.services.catalog.tables();
    tables.retain(|t| t.storage_id == id);
    tables.sort_by_key(|t| t.qualified_name());
    let (mut files, mut problems) = (0usize, Vec::new());
    for table in &tables {
        for (scope, entry) in crate::cold::table_manifest_by_scope(s.services.hot.store(), table)? {
            files += 1;
            let Some((problem, detail)) = check_file(&cold.store, &entry, extended).await else {
                continue;
            };
            problems.push(Problem {
                table: table.qualified_name(),
                scope,
                path: entry.path,
                problem,
                detail,
            });
        }
    }
    let schema = Arc::new(Schema::new(vec![
        field("table_id", KalamType::Text, false),
        field("scope", KalamType::Text, false),
        field("path", KalamType::Text, false),
        field("problem", KalamType::Text, false),
        field("detail", KalamType::Text, false),
    ]));
    let column = |f: fn(&Problem) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(problems.iter().map(f)))
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            column(|p| &p.table),
            column(|p| &p.scope),
            column(|p| &p.path),
            column(|p| p.problem),
            column(|p| &p.detail),
        ],
    )?;
    let message = format!(
        "Checked {files} file(s) of {} table(s) on storage '{id}'{}: {} problem(s)",
        tables.len(),
        if extended { ", footers included" } else { "" },
        problems.len()
    );
    Ok(StatementResult {
        schema: Some(schema),
        row_count: problems.len(),
        batches: vec![batch],
        rest: None,
        message: Some(message),
        as_user: s.caller.user_id.to_string(),
    })
}
