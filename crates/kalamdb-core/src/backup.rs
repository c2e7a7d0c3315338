//! Whole-database backups and their restore.
//!
//! A backup is a directory a person can move around:
//!
//! ```text
//! <backup>/backup.json              what it holds (format, time, every file)
//! <backup>/rocksdb/                 a RocksDB checkpoint of the hot tier:
//!                                   rows, change log, catalog, users,
//!                                   storages, manifests, jobs, as of one instant
//! <backup>/cold/<storage>/<path>    every cold file those manifests name
//! ```
//!
//! The checkpoint is the point in time: the files copied are exactly the
//! ones its manifests name, read from the checkpoint itself, and no
//! committed file is deleted while a backup runs (`Storages::pause_removals`),
//! so flushes and writes go on meanwhile without making the copy
//! inconsistent. Files of S3 storages are copied too, so a backup does not
//! depend on the bucket it came from.
//!
//! A restore replaces a server's data, so it happens while the engine is
//! closed: `RESTORE DATABASE FROM` (or the server's `--restore-from`) only
//! checks the backup and stages it in `<data_dir>/restore.json`; the next
//! start applies it before the hot tier opens ([`apply_staged_restore`]),
//! then writes the cold files back into their storages
//! ([`restore_cold_files`]). The data it replaces is kept beside it
//! (`rocksdb.before-restore-<micros>`), never deleted. Every step can be
//! repeated, so a crash part-way only means the next start does it again.

use crate::catalog::Catalog;
use crate::cold::{table_manifest_entries, Storages};
use crate::error::{CoreError, Result};
use futures::StreamExt;
use kalamdb_filestore::object_store::path::Path as ObjectPath;
use kalamdb_filestore::object_store::{ObjectStoreExt, PutPayload};
use kalamdb_store::HotStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tracing::info;

/// The file describing a backup.
pub const BACKUP_FILE: &str = "backup.json";
/// The format this server writes and reads.
const FORMAT: u32 = 1;
/// A restore waiting for the next start, in the data directory.
const STAGED_RESTORE: &str = "restore.json";
const HOT_DIR: &str = "rocksdb";
const COLD_DIR: &str = "cold";

/// What a backup holds (its `backup.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupManifest {
    pub format: u32,
    pub kalamdb_version: String,
    /// RFC 3339.
    pub created_at: String,
    /// The highest `_seq` handed out when the checkpoint was taken.
    pub last_seq: u64,
    pub tables: u64,
    pub files: Vec<BackedUpFile>,
    /// The cold files' bytes.
    pub bytes: u64,
}

/// One cold file in a backup, under `cold/<storage>/<path>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackedUpFile {
    pub storage: String,
    pub path: String,
    pub bytes: u64,
}

/// A staged restore (`restore.json`).
#[derive(Debug, Serialize, Deserialize)]
struct StagedRestore {
    from: PathBuf,
    /// The hot tier is in place; only the cold files remain (so a start
    /// that fails on them does not replace the hot tier again).
    #[serde(default)]
    hot_done: bool,
}

fn write_staged(data_dir: &Path, staged: &StagedRestore) -> Result<()> {
    let path = data_dir.join(STAGED_RESTORE);
    let temp = data_dir.join(format!("{STAGED_RESTORE}.tmp"));
    std::fs::write(&temp, serde_json::to_vec(staged)?).map_err(|e| io("cannot write", &temp, e))?;
    std::fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(|e| io("cannot sync", &temp, e))?;
    std::fs::rename(&temp, &path).map_err(|e| io("cannot write", &path, e))
}

fn io(what: &str, path: &Path, e: std::io::Error) -> CoreError {
    CoreError::exec(format!("{what} {}: {e}", path.display()))
}

/// Writes a backup of the whole database into `dir`, which must not exist
/// or be empty.
pub async fn write_backup(
    store: &Arc<HotStore>,
    storages: &Storages,
    now_micros: i64,
    dir: &Path,
) -> Result<BackupManifest> {
    if dir.exists() && std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_some()) {
        return Err(CoreError::exec(format!(
            "{} exists and is not empty; a backup never overwrites",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create", dir, e))?;
    let _paused = storages.pause_removals().await;
    let (store, checkpoint) = (store.clone(), dir.join(HOT_DIR));
    let (last_seq, tables, wanted) = tokio::task::spawn_blocking(move || {
        store.checkpoint(&checkpoint)?;
        // The checkpoint's own catalog and manifests name the files: the
        // live ones may have moved on already.
        let frozen = Arc::new(HotStore::open_read_only(&checkpoint)?);
        let catalog = Catalog::load(frozen.clone())?;
        let tables = catalog.tables();
        let mut wanted = Vec::new();
        for table in &tables {
            for entry in table_manifest_entries(&frozen, table.uid)? {
                wanted.push((table.storage_id.clone(), entry.path));
            }
        }
        Ok::<_, CoreError>((frozen.last_seq(), tables.len() as u64, wanted))
    })
    .await
    .map_err(|e| CoreError::Internal(format!("the checkpoint stopped: {e}")))??;
    let mut files = Vec::with_capacity(wanted.len());
    for (storage, path) in wanted {
        let target = dir.join(COLD_DIR).join(&storage).join(&path);
        let bytes = copy_out(storages, &storage, &path, &target).await?;
        files.push(BackedUpFile {
            storage,
            path,
            bytes,
        });
    }
    let manifest = BackupManifest {
        format: FORMAT,
        kalamdb_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: kalamdb_commons::timestamp_utc(now_micros),
        last_seq,
        tables,
        bytes: files.iter().map(|f| f.bytes).sum(),
        files,
    };
    // Written last: a directory without it is not a backup.
    let text = serde_json::to_vec_pretty(&manifest)?;
    let path = dir.join(BACKUP_FILE);
    std::fs::write(&path, text).map_err(|e| io("cannot write", &path, e))?;
    info!(dir = %dir.display(), files = manifest.files.len(), bytes = manifest.bytes, "backup written");
    Ok(manifest)
}

/// Streams one cold file to a local file; returns its size.
async fn copy_out(storages: &Storages, storage: &str, path: &str, target: &Path) -> Result<u64> {
    let cold = storages.open(storage)?;
    let source = ObjectPath::from(path);
    let mut stream = cold
        .store
        .get(&source)
        .await
        .map_err(|e| CoreError::exec(format!("cannot read {storage}:{path}: {e}")))?
        .into_stream();
    tokio::fs::create_dir_all(target.parent().expect("under the backup"))
        .await
        .map_err(|e| io("cannot create", target, e))?;
    let mut out = tokio::fs::File::create_new(target)
        .await
        .map_err(|e| io("cannot create", target, e))?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| CoreError::exec(format!("cannot read {storage}:{path}: {e}")))?;
        out.write_all(&chunk)
            .await
            .map_err(|e| io("cannot write", target, e))?;
        bytes += chunk.len() as u64;
    }
    out.sync_all()
        .await
        .map_err(|e| io("cannot write", target, e))?;
    Ok(bytes)
}

/// Reads and checks a backup's `backup.json`.
pub fn read_manifest(dir: &Path) -> Result<BackupManifest> {
    let path = dir.join(BACKUP_FILE);
    let raw = std::fs::read(&path).map_err(|e| {
        CoreError::exec(format!(
            "{} is not a KalamDB backup (cannot read {BACKUP_FILE}: {e})",
            dir.display()
        ))
    })?;
    let manifest: BackupManifest = serde_json::from_slice(&raw).map_err(|e| {
        CoreError::exec(format!(
            "{} is not a KalamDB backup file: {e}",
            path.display()
        ))
    })?;
    if manifest.format != FORMAT {
        return Err(CoreError::exec(format!(
            "backup format {} is not supported (this server reads format {FORMAT})",
            manifest.format
        )));
    }
    if !dir.join(HOT_DIR).is_dir() {
        return Err(CoreError::exec(format!(
            "{} has no {HOT_DIR} checkpoint",
            dir.display()
        )));
    }
    Ok(manifest)
}

/// Checks the backup in `from` and stages it for the next start of the
/// server whose data directory is `data_dir`.
pub fn stage_restore(data_dir: &Path, from: &Path) -> Result<BackupManifest> {
    let from = from
        .canonicalize()
        .map_err(|e| io("cannot open the backup", from, e))?;
    let manifest = read_manifest(&from)?;
    std::fs::create_dir_all(data_dir).map_err(|e| io("cannot create", data_dir, e))?;
    write_staged(
        data_dir,
        &StagedRestore {
            from,
            hot_done: false,
        },
    )?;
    Ok(manifest)
}

/// Before the hot tier opens: replaces it with a staged backup's
/// checkpoint. Returns the backup's directory while its cold files remain
/// to be written back ([`restore_cold_files`]).
pub fn apply_staged_restore(data_dir: &Path, now_micros: i64) -> Result<Option<PathBuf>> {
    let staged = data_dir.join(STAGED_RESTORE);
    let raw = match std::fs::read(&staged) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("cannot read", &staged, e)),
    };
    let StagedRestore { from, hot_done } = serde_json::from_slice(&raw)?;
    read_manifest(&from).map_err(|e| {
        CoreError::exec(format!(
            "a restore is staged but cannot proceed: {e} (remove {} to start without it)",
            staged.display()
        ))
    })?;
    if hot_done {
        return Ok(Some(from));
    }
    let incoming = data_dir.join("rocksdb.restoring");
    if incoming.exists() {
        std::fs::remove_dir_all(&incoming).map_err(|e| io("cannot remove", &incoming, e))?;
    }
    copy_dir(&from.join(HOT_DIR), &incoming)?;
    let live = data_dir.join(HOT_DIR);
    if live.exists() {
        let kept = data_dir.join(format!("rocksdb.before-restore-{now_micros}"));
        std::fs::rename(&live, &kept).map_err(|e| io("cannot move aside", &live, e))?;
        info!(kept = %kept.display(), "the data a restore replaces is kept");
    }
    std::fs::rename(&incoming, &live).map_err(|e| io("cannot move", &incoming, e))?;
    write_staged(
        data_dir,
        &StagedRestore {
            from: from.clone(),
            hot_done: true,
        },
    )?;
    info!(from = %from.display(), "hot tier restored from a backup");
    Ok(Some(from))
}

/// After the engine opened on a restored hot tier: writes the backup's
/// cold files into their storages (skipping those already there at their
/// size), then ends the staged restore.
pub async fn restore_cold_files(data_dir: &Path, from: &Path, storages: &Storages) -> Result<u64> {
    let manifest = read_manifest(from)?;
    let mut written = 0;
    for file in &manifest.files {
        let cold = storages.open(&file.storage)?;
        let target = ObjectPath::from(file.path.as_str());
        if let Ok(meta) = cold.store.head(&target).await {
            if meta.size == file.bytes {
                continue;
            }
        }
        let source = from.join(COLD_DIR).join(&file.storage).join(&file.path);
        let body = tokio::fs::read(&source)
            .await
            .map_err(|e| io("cannot read", &source, e))?;
        cold.store
            .put(&target, PutPayload::from(body))
            .await
            .map_err(|e| {
                CoreError::exec(format!("cannot write {}:{}: {e}", file.storage, file.path))
            })?;
        written += 1;
    }
    let staged = data_dir.join(STAGED_RESTORE);
    std::fs::remove_file(&staged).map_err(|e| io("cannot remove", &staged, e))?;
    info!(from = %from.display(), files = manifest.files.len(), written, "restore finished");
    Ok(written)
}

/// Copies a checkpoint (a flat directory of files), each file synced
/// before the directory is renamed into place.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| io("cannot create", to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io("cannot read", from, e))? {
        let source = entry.map_err(|e| io("cannot read", from, e))?.path();
        let Some(name) = source.file_name() else {
            continue;
        };
        if !source.is_file() {
            return Err(CoreError::exec(format!(
                "{} is not a file; a checkpoint holds only files",
                source.display()
            )));
        }
        let target = to.join(name);
        std::fs::copy(&source, &target).map_err(|e| io("cannot copy", &source, e))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(|e| io("cannot sync", &target, e))?;
    }
    Ok(())
}
