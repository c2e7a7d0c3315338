//! `EXPORT USER DATA '<user>' [TO '<path>']` and `SHOW EXPORT`: everything
//! one user owns, every USER table in both tiers as of one snapshot per
//! table, written as files a person can read (the right of access of
//! data-protection laws). One JSON Lines file per table with rows
//! (`<namespace>/<table>.jsonl`, one object per row, keyed by column) and
//! `export.json` naming them all. Rows stream from the scope's merge to the
//! file, so a large user costs disk, not memory.
//!
//! A user may export its own data; dba and above anyone's, and only they
//! may choose where the files go (`TO` writes on the server's disk). The
//! export runs within the statement; `SHOW EXPORT` lists the finished and
//! failed ones, each user only its own.

use super::{Session, StatementResult};
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::read::{FileBatch, RowSink, ScopeView};
use crate::services::Services;
use kalamdb_commons::{KalamType, Role, TableType, Value};
use kalamdb_store::{meta_keys, ScopeKey};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::runtime::Handle;

/// One export, as `SHOW EXPORT` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportRecord {
    pub export_id: String,
    pub user_id: String,
    pub requested_by: String,
    pub status: String,
    pub path: String,
    pub tables: u64,
    pub rows: u64,
    pub bytes: u64,
    pub created_at: i64,
    pub finished_at: i64,
    pub error: Option<String>,
}

/// A cell as a person reads it: numbers as numbers, times as RFC 3339,
/// bytes as `\x` hex, JSON columns as the JSON they hold.
fn cell(value: &Value, t: KalamType) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::I16(v) => json!(v),
        Value::I32(v) => json!(v),
        Value::I64(v) => json!(v),
        Value::F32(v) => json!(v),
        Value::F64(v) => json!(v),
        Value::Decimal(v) => {
            let scale = match t {
                KalamType::Decimal { scale, .. } => scale.max(0) as usize,
                _ => 0,
            };
            let digits = format!("{:0>width$}", v.unsigned_abs(), width = scale + 1);
            let (int, frac) = digits.split_at(digits.len() - scale);
            let sign = if *v < 0 { "-" } else { "" };
            Json::String(if scale == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac}")
            })
        }
        Value::Text(s) if t == KalamType::Json => {
            serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone()))
        }
        Value::Text(s) => Json::String(s.clone()),
        Value::Bytes(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            Json::String(format!("\\x{hex}"))
        }
        Value::Timestamp(v) => Json::String(kalamdb_commons::timestamp_utc(*v)),
        Value::Date(d) => {
            let (y, m, day) = kalamdb_commons::value::civil_date(i64::from(*d));
            Json::String(format!("{y:04}-{m:02}-{day:02}"))
        }
        Value::Time(v) => Json::String(kalamdb_commons::time_of_day(*v)),
    }
}

/// Writes one table's rows of one scope as JSON lines.
struct LinesSink<'a> {
    def: &'a TableDef,
    out: BufWriter<std::fs::File>,
    rows: u64,
}

impl LinesSink<'_> {
    fn write(&mut self, values: &[Value]) -> Result<()> {
        let object: Map<String, Json> = self
            .def
            .columns
            .iter()
            .zip(values)
            .map(|(c, v)| (c.name.clone(), cell(v, c.data_type)))
            .collect();
        serde_json::to_writer(&mut self.out, &object)?;
        self.out.write_all(b"\n").map_err(io_error)?;
        self.rows += 1;
        Ok(())
    }
}

impl RowSink for LinesSink<'_> {
    fn row(&mut self, _seq: u64, values: &[Value]) -> Result<bool> {
        self.write(values)?;
        Ok(true)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> Result<bool> {
        for r in from..rows.len() {
            if !rows.is_deleted(r) {
                self.write(&rows.version(self.def, r)?.values)?;
            }
        }
        Ok(true)
    }
}

fn io_error(e: std::io::Error) -> CoreError {
    CoreError::exec(format!("cannot write the export: {e}"))
}

/// Writes every USER table's rows of `user` under `dir`; returns
/// (tables with rows, rows, bytes). Runs on a blocking thread.
fn write_export(
    services: &Services,
    user: &str,
    dir: &Path,
    handle: &Handle,
) -> Result<(u64, u64, u64)> {
    let mut tables = services.catalog.tables();
    tables.retain(|t| t.table_type == TableType::User);
    tables.sort_by_key(|t| t.qualified_name());
    let mut listed = Vec::new();
    let (mut total_rows, mut bytes) = (0u64, 0u64);
    for def in &tables {
        let scope = ScopeKey::new(def.uid, Some(user));
        let snapshot = services.hot.store().snapshot();
        let view = ScopeView::open(&snapshot, def, &scope)?;
        let cold = services.storages.for_table(def)?;
        let relative = format!("{}/{}.jsonl", def.namespace, def.name);
        let path = dir.join(&relative);
        std::fs::create_dir_all(path.parent().expect("has a parent")).map_err(io_error)?;
        let file = std::fs::File::create_new(&path).map_err(io_error)?;
        let mut sink = LinesSink {
            def,
            out: BufWriter::new(file),
            rows: 0,
        };
        view.scan(&cold, handle, &mut sink)?;
        sink.out.flush().map_err(io_error)?;
        drop(sink.out);
        if sink.rows == 0 {
            // Tables the user has nothing in are named, not written.
            std::fs::remove_file(&path).map_err(io_error)?;
        } else {
            bytes += std::fs::metadata(&path).map_err(io_error)?.len();
        }
        total_rows += sink.rows;
        listed.push(json!({
            "table": def.qualified_name(),
            "rows": sink.rows,
            "file": (sink.rows > 0).then_some(relative),
        }));
    }
    let with_rows = listed.iter().filter(|t| t["rows"] != 0).count() as u64;
    let summary = json!({
        "user": user,
        "exported_at": kalamdb_commons::timestamp_utc(services.clock.now_micros()),
        "tables": listed,
        "rows": total_rows,
    });
    let text = serde_json::to_string_pretty(&summary)?;
    std::fs::write(dir.join("export.json"), &text).map_err(io_error)?;
    Ok((with_rows, total_rows, bytes + text.len() as u64))
}

pub async fn export_user_data(
    s: &Session<'_>,
    user: &str,
    path: Option<&str>,
) -> Result<StatementResult> {
    let own = s.caller.user_id.as_str() == user;
    if !own && s.caller.role < Role::Dba {
        return Err(CoreError::PermissionDenied(format!(
            "only '{user}' or a dba can export the data of '{user}'"
        )));
    }
    if path.is_some() && s.caller.role < Role::Dba {
        return Err(CoreError::PermissionDenied(
            "EXPORT ... TO '<path>' writes on the server's disk: dba and above".into(),
        ));
    }
    if s.services.users.caller_of(user).is_none() {
        return Err(CoreError::UserNotFound(user.to_string()));
    }
    let created_at = s.services.clock.now_micros();
    let export_id = format!("EX-{}", s.services.ids.next_id());
    let exports = s.services.storages.data_dir().join("exports");
    let dir = match path {
        None => exports.join(format!("{user}-{export_id}")),
        Some(p) if Path::new(p).is_absolute() => PathBuf::from(p),
        Some(p) => exports.join(p),
    };
    if dir.exists() {
        return Err(CoreError::exec(format!(
            "{} already exists; an export never overwrites",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(io_error)?;
    let services = Arc::clone(s.services);
    let (user_owned, dir_owned) = (user.to_string(), dir.clone());
    let handle = Handle::current();
    let outcome = tokio::task::spawn_blocking(move || {
        write_export(&services, &user_owned, &dir_owned, &handle)
    })
    .await
    .map_err(|e| CoreError::Internal(format!("the export stopped: {e}")))?;
    let (tables, rows, bytes) = outcome.as_ref().map_or((0, 0, 0), |t| *t);
    let record = ExportRecord {
        export_id: export_id.clone(),
        user_id: user.to_string(),
        requested_by: s.caller.user_id.to_string(),
        status: if outcome.is_ok() {
            "completed"
        } else {
            "failed"
        }
        .into(),
        path: dir.display().to_string(),
        tables,
        rows,
        bytes,
        created_at,
        finished_at: s.services.clock.now_micros(),
        error: outcome.as_ref().err().map(|e| e.to_string()),
    };
    let mut batch = s.services.hot.store().batch();
    batch.put_meta(
        &meta_keys::export(&export_id),
        &serde_json::to_vec(&record)?,
    );
    s.services.hot.store().write(batch)?;
    outcome?;
    Ok(StatementResult::message(
        &s.caller,
        format!(
            "Exported {rows} row(s) of '{user}' from {tables} table(s) to {}. Export ID: {export_id}",
            dir.display()
        ),
    ))
}

/// `system.exports` shows each user only its own exports.
pub async fn show_exports(s: &Session<'_>) -> Result<StatementResult> {
    s.internal_query(
        "SELECT export_id, user_id, status, path, tables, rows, bytes, created_at, finished_at, \
         requested_by, error FROM system.exports ORDER BY created_at",
    )
    .await
}

/// Every export record, oldest first.
pub fn list(services: &Services) -> Result<Vec<ExportRecord>> {
    let mut records = services
        .hot
        .store()
        .meta_scan(meta_keys::EXPORTS)?
        .into_iter()
        .map(|(_, raw)| Ok(serde_json::from_slice(&raw)?))
        .collect::<Result<Vec<ExportRecord>>>()?;
    records.sort_by_key(|r| r.created_at);
    Ok(records)
}
