//! `BACKUP DATABASE TO '<path>'` and `RESTORE DATABASE FROM '<path>'`
//! (dba and above: a backup holds every user's rows and password hashes,
//! and a restore replaces them). The work is `crate::backup`'s; here are
//! the permissions, where a relative path points, and the job record a
//! backup leaves in `system.jobs`.

use super::{Session, StatementResult};
use crate::backup;
use crate::error::{CoreError, Result};
use crate::jobs::{JobRecord, JobStatus, NODE_ID};
use kalamdb_commons::Role;
use serde_json::json;
use std::path::{Path, PathBuf};

fn require_dba(s: &Session<'_>, what: &str) -> Result<()> {
    if s.caller.role < Role::Dba {
        return Err(CoreError::PermissionDenied(format!(
            "{what} needs the dba role or above"
        )));
    }
    Ok(())
}

/// An absolute path as given; a relative one under `<data_dir>/backups`.
fn resolve(s: &Session<'_>, path: &str) -> PathBuf {
    if Path::new(path).is_absolute() {
        PathBuf::from(path)
    } else {
        s.services.storages.data_dir().join("backups").join(path)
    }
}

pub async fn backup_database(s: &Session<'_>, path: &str) -> Result<StatementResult> {
    require_dba(s, "BACKUP DATABASE")?;
    let dir = resolve(s, path);
    let services = s.services;
    let started = services.clock.now_micros();
    let mut record = JobRecord {
        job_id: services.jobs.new_id("BK"),
        job_type: "backup".into(),
        status: JobStatus::Running,
        namespace_id: String::new(),
        table_name: String::new(),
        trigger: "manual".into(),
        parameters: json!({ "path": dir.display().to_string() }).to_string(),
        message: None,
        result: None,
        error: None,
        created_at: started,
        started_at: Some(started),
        finished_at: None,
        node_id: NODE_ID.into(),
    };
    services.jobs.record(&record)?;
    let outcome =
        backup::write_backup(services.hot.store(), &services.storages, started, &dir).await;
    let finished = services.clock.now_micros();
    record.finished_at = Some(finished);
    match &outcome {
        Ok(manifest) => {
            record.status = JobStatus::Completed;
            record.result = Some(
                json!({
                    "tables": manifest.tables,
                    "files": manifest.files.len(),
                    "bytes": manifest.bytes,
                    "last_seq": manifest.last_seq,
                    "duration_ms": (finished - started) / 1000,
                })
                .to_string(),
            );
        }
        Err(e) => {
            record.status = JobStatus::Failed;
            record.error = Some(e.to_string());
        }
    }
    services.jobs.record(&record)?;
    let manifest = outcome?;
    Ok(StatementResult::message(
        &s.caller,
        format!(
            "Database backed up to {}: {} table(s), {} cold file(s), {} byte(s). Job ID: {}",
            dir.display(),
            manifest.tables,
            manifest.files.len(),
            manifest.bytes,
            record.job_id
        ),
    ))
}

pub fn restore_database(s: &Session<'_>, path: &str) -> Result<StatementResult> {
    require_dba(s, "RESTORE DATABASE")?;
    let dir = resolve(s, path);
    let manifest = backup::stage_restore(s.services.storages.data_dir(), &dir)?;
    Ok(StatementResult::message(
        &s.caller,
        format!(
            "Restore from {} (backed up at {}: {} table(s), {} cold file(s)) is staged: it \
             replaces this server's data when the server next starts",
            dir.display(),
            manifest.created_at,
            manifest.tables,
            manifest.files.len()
        ),
    ))
}
