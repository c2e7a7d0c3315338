//! Every key of the `meta` column family, in one place: the catalog, users,
//! sessions, jobs, scheduler state and the cold tier's bookkeeping all live
//! there, and a key written by one version must be found by the next.
//!
//! | key | value | kept by |
//! |---|---|---|
//! | `ns/<namespace>` | namespace definition (JSON) | catalog |
//! | `tbl/<namespace>/<table>` | table definition (JSON) | catalog |
//! | `next_table_uid` | next table uid (u64 BE) | catalog |
//! | `schema/<table uid BE><version BE>` | one schema version of a table (JSON) | catalog |
//! | `user/<user id>` | user record (JSON) | users |
//! | `session/<session id>` | login session (JSON) | sessions |
//! | `job/<job id>` | job record (JSON) | jobs |
//! | `lastflush/<table uid BE>` | last flush time (i64 BE micros) | scheduler |
//! | `mf/<scope>/<file name>` | manifest entry (JSON) | cold tier |
//! | `pf/<storage id>\0<path>` | empty: a file that may exist uncommitted | cold tier |
//! | `stg/<storage id>` | storage definition (JSON) | cold tier |
//! | `audit/<micros BE><n BE>` | audit log entry (JSON) | audit log |
//! | `export/<export id>` | user data export record (JSON) | exports |
//!
//! `<scope>` is a [`ScopeKey`]: the table uid (u64 BE), then for USER tables
//! the escaped user id, so one scope's manifest keys are one prefix range and
//! one table's are another. Names are the catalog's (namespaces and tables
//! cannot hold `/`), ids are the caller's; only the last component of a key
//! may be free text, so no two kinds of key overlap. The golden test below
//! freezes the bytes.

use crate::ScopeKey;

pub const NAMESPACES: &[u8] = b"ns/";
pub const TABLES: &[u8] = b"tbl/";
pub const NEXT_TABLE_UID: &[u8] = b"next_table_uid";
pub const USERS: &[u8] = b"user/";
pub const SESSIONS: &[u8] = b"session/";
pub const JOBS: &[u8] = b"job/";
pub const LAST_FLUSH: &[u8] = b"lastflush/";
pub const MANIFESTS: &[u8] = b"mf/";
pub const MANIFEST_VERSIONS: &[u8] = b"mv/";
pub const PENDING_FILES: &[u8] = b"pf/";
pub const STORAGES: &[u8] = b"stg/";
pub const AUDIT: &[u8] = b"audit/";
pub const EXPORTS: &[u8] = b"export/";
pub const SCHEMAS: &[u8] = b"schema/";

pub fn namespace(name: &str) -> Vec<u8> {
    [NAMESPACES, name.as_bytes()].concat()
}

pub fn table(namespace: &str, table: &str) -> Vec<u8> {
    [TABLES, namespace.as_bytes(), b"/", table.as_bytes()].concat()
}

pub fn user(id: &str) -> Vec<u8> {
    [USERS, id.as_bytes()].concat()
}

pub fn session(id: &str) -> Vec<u8> {
    [SESSIONS, id.as_bytes()].concat()
}

pub fn job(id: &str) -> Vec<u8> {
    [JOBS, id.as_bytes()].concat()
}

/// One schema version of a table; a table's versions are one prefix
/// range ([`table_schemas`]), oldest first.
pub fn schema_version(table_uid: u64, version: u32) -> Vec<u8> {
    [SCHEMAS, &table_uid.to_be_bytes(), &version.to_be_bytes()].concat()
}

/// Every schema version of one table.
pub fn table_schemas(table_uid: u64) -> Vec<u8> {
    [SCHEMAS, &table_uid.to_be_bytes()].concat()
}

pub fn last_flush(table_uid: u64) -> Vec<u8> {
    [LAST_FLUSH, &table_uid.to_be_bytes()].concat()
}

pub fn storage(id: &str) -> Vec<u8> {
    [STORAGES, id.as_bytes()].concat()
}

pub fn export(id: &str) -> Vec<u8> {
    [EXPORTS, id.as_bytes()].concat()
}

/// One audit log entry: its time, then a counter so entries of the same
/// microsecond keep their order; keys sort oldest first.
pub fn audit_entry(micros: i64, n: u64) -> Vec<u8> {
    [AUDIT, &micros.to_be_bytes(), &n.to_be_bytes()].concat()
}

/// Every manifest entry of one scope.
pub fn scope_manifest(scope: &ScopeKey) -> Vec<u8> {
    [MANIFESTS, scope.as_bytes(), b"/"].concat()
}

/// A number that changes with every commit that changes a scope's manifest
/// entries (never taking a value it had before), so that a reader can
/// tell from one point read whether the entries it listed before are still
/// the ones its snapshot holds. Beside the entries, not among them: a scan
/// of a table's entries reads entries only.
pub fn scope_manifest_version(scope: &ScopeKey) -> Vec<u8> {
    [MANIFEST_VERSIONS, scope.as_bytes()].concat()
}

/// The manifest versions of every scope of one table.
pub fn table_manifest_versions(table_uid: u64) -> Vec<u8> {
    [MANIFEST_VERSIONS, &ScopeKey::table_prefix(table_uid)].concat()
}

/// Every manifest entry of one table, whatever the scope.
pub fn table_manifests(table_uid: u64) -> Vec<u8> {
    [MANIFESTS, &ScopeKey::table_prefix(table_uid)].concat()
}

/// The scope (as [`ScopeKey`] bytes) of a manifest entry's key
/// ([`manifest_entry`]).
pub fn manifest_scope(key: &[u8], user_scoped: bool) -> Result<&[u8], crate::StoreError> {
    let scope = key.get(MANIFESTS.len()..).unwrap_or_default();
    let (len, _) = crate::keys::scope_of(scope, user_scoped)?;
    Ok(&scope[..len])
}

/// The manifest entry of one file of a scope.
pub fn manifest_entry(scope: &ScopeKey, file_name: &str) -> Vec<u8> {
    [scope_manifest(scope).as_slice(), file_name.as_bytes()].concat()
}

/// The record of a file that may exist but is not (or no longer)
/// committed: written before a flush writes the file, and by DROP for the
/// files it removes.
pub fn pending_file(storage: &str, path: &str) -> Vec<u8> {
    [PENDING_FILES, storage.as_bytes(), b"\0", path.as_bytes()].concat()
}

/// The storage and path of a [`pending_file`] key; `None` for another key.
pub fn split_pending_file(key: &[u8]) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(PENDING_FILES)?;
    let split = rest.iter().position(|&b| b == 0)?;
    let storage = std::str::from_utf8(&rest[..split]).ok()?;
    let path = std::str::from_utf8(&rest[split + 1..]).ok()?;
    Some((storage, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout on disk. Changing a line here means existing data
    /// directories can no longer be read: a change must be deliberate and
    /// come with a migration.
    #[test]
    fn the_layout_is_frozen() {
        let user_scope = ScopeKey::new(7, Some("al\0ice"));
        let shared_scope = ScopeKey::new(7, None);
        let cases: Vec<(Vec<u8>, &[u8])> = vec![
            (namespace("app"), b"ns/app"),
            (table("app", "notes"), b"tbl/app/notes"),
            (NEXT_TABLE_UID.to_vec(), b"next_table_uid"),
            (user("alice"), b"user/alice"),
            (session("s1"), b"session/s1"),
            (job("FL-1"), b"job/FL-1"),
            (last_flush(7), b"lastflush/\0\0\0\0\0\0\0\x07"),
            (storage("local"), b"stg/local"),
            (export("EX-1"), b"export/EX-1"),
            (schema_version(7, 2), b"schema/\0\0\0\0\0\0\0\x07\0\0\0\x02"),
            (table_schemas(7), b"schema/\0\0\0\0\0\0\0\x07"),
            (
                audit_entry(0x0102, 3),
                b"audit/\0\0\0\0\0\0\x01\x02\0\0\0\0\0\0\0\x03",
            ),
            (
                manifest_entry(&user_scope, "batch-9-t7.parquet"),
                b"mf/\0\0\0\0\0\0\0\x07al\0\xffice\0\x01/batch-9-t7.parquet",
            ),
            (
                manifest_entry(&shared_scope, "batch-9-t7.parquet"),
                b"mf/\0\0\0\0\0\0\0\x07/batch-9-t7.parquet",
            ),
            (table_manifests(7), b"mf/\0\0\0\0\0\0\0\x07"),
            (
                scope_manifest_version(&user_scope),
                b"mv/\0\0\0\0\0\0\0\x07al\0\xffice\0\x01",
            ),
            (
                pending_file("local", "app/notes/f.parquet"),
                b"pf/local\0app/notes/f.parquet",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want, "{}", String::from_utf8_lossy(want));
        }
    }

    #[test]
    fn a_scope_manifest_range_holds_only_that_scope() {
        let alice = scope_manifest(&ScopeKey::new(7, Some("alice")));
        let alicia = manifest_entry(&ScopeKey::new(7, Some("alicia")), "f");
        let shared = manifest_entry(&ScopeKey::new(7, None), "f");
        assert!(!alicia.starts_with(&alice));
        assert!(!shared.starts_with(&alice));
        assert!(scope_manifest_version(&ScopeKey::new(7, Some("alice")))
            .starts_with(&table_manifest_versions(7)));
        assert!(alicia.starts_with(&table_manifests(7)));
        assert!(!alicia.starts_with(&table_manifests(8)));
    }

    #[test]
    fn pending_keys_split_back() {
        let key = pending_file("s3", "a/b\u{e9}.parquet");
        assert_eq!(split_pending_file(&key), Some(("s3", "a/b\u{e9}.parquet")));
        assert_eq!(split_pending_file(b"pf/no-separator"), None);
        assert_eq!(split_pending_file(b"mf/x\0y"), None);
    }
}
