//! `DESCRIBE TABLE t HISTORY` lists every schema version, oldest first,
//! with what changed and the columns it had; `system.tables` shows the
//! current version; both survive a restart.

use crate::util::{caller, open, run};
use kalamdb_core::arrow::array::AsArray;
use kalamdb_core::arrow::datatypes::Int32Type;
use kalamdb_core::KalamDb;

async fn history(db: &KalamDb) -> Vec<(i32, String, String)> {
    let results = db
        .execute("DESCRIBE TABLE h.t HISTORY", &[], None, &caller("root"))
        .await
        .unwrap();
    let mut out = Vec::new();
    for batch in &results[0].batches {
        let versions = batch.column(0).as_primitive::<Int32Type>();
        let changes = batch.column(2).as_string::<i32>();
        let columns = batch.column(3).as_string::<i32>();
        for r in 0..batch.num_rows() {
            out.push((
                versions.value(r),
                changes.value(r).to_string(),
                columns.value(r).to_string(),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_each_version_with_its_change_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    run(
        &db,
        "root",
        "CREATE NAMESPACE h; CREATE SHARED TABLE h.t (id INT PRIMARY KEY, a TEXT NOT NULL)",
    )
    .await;
    run(
        &db,
        "root",
        "ALTER TABLE h.t ADD COLUMN b BIGINT DEFAULT 1, RENAME COLUMN a TO a2",
    )
    .await;
    run(&db, "root", "ALTER TABLE h.t DROP COLUMN b").await;
    run(
        &db,
        "root",
        "ALTER TABLE h.t SET TBLPROPERTIES (ACCESS_LEVEL='PRIVATE')",
    )
    .await;
    let want = vec![
        (
            1,
            "CREATE TABLE".to_string(),
            "id Int NOT NULL, a Text NOT NULL".to_string(),
        ),
        (
            2,
            "ALTER TABLE ADD COLUMN b BigInt, RENAME COLUMN a TO a2".to_string(),
            "id Int NOT NULL, a2 Text NOT NULL, b BigInt".to_string(),
        ),
        (
            3,
            "ALTER TABLE DROP COLUMN b".to_string(),
            "id Int NOT NULL, a2 Text NOT NULL".to_string(),
        ),
        (
            4,
            "ALTER TABLE SET TBLPROPERTIES".to_string(),
            "id Int NOT NULL, a2 Text NOT NULL".to_string(),
        ),
    ];
    assert_eq!(history(&db).await, want);
    db.close().await;
    let db = open(dir.path());
    assert_eq!(history(&db).await, want, "after a restart");
    let results = db
        .execute(
            "SELECT schema_version, access_level FROM system.tables WHERE table_name = 't'",
            &[],
            None,
            &caller("root"),
        )
        .await
        .unwrap();
    let batch = &results[0].batches[0];
    assert_eq!(batch.column(0).as_primitive::<Int32Type>().value(0), 4);
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "PRIVATE");
    db.close().await;
}

/// Every version stays readable, so the history only grows: it is
/// bounded, and the ALTER past the bound is a clear error that changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    run(
        &db,
        "root",
        "CREATE NAMESPACE hb; CREATE SHARED TABLE hb.t (id INT PRIMARY KEY)",
    )
    .await;
    for i in 1..kalamdb_core::MAX_SCHEMA_VERSIONS {
        run(
            &db,
            "root",
            &format!("ALTER TABLE hb.t SET TBLPROPERTIES (FLUSH_POLICY='rows:{i}')"),
        )
        .await;
    }
    let error = db
        .execute(
            "ALTER TABLE hb.t ADD COLUMN late INT",
            &[],
            None,
            &caller("root"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.error.code(),
        kalamdb_commons::ErrorCode::ResourceExhausted
    );
    assert!(error.to_string().contains("schema versions"), "{error}");
    let results = db
        .execute(
            "SELECT schema_version FROM system.tables WHERE table_name = 't'",
            &[],
            None,
            &caller("root"),
        )
        .await
        .unwrap();
    assert_eq!(
        results[0].batches[0]
            .column(0)
            .as_primitive::<Int32Type>()
            .value(0) as u32,
        kalamdb_core::MAX_SCHEMA_VERSIONS
    );
    db.close().await;
}
