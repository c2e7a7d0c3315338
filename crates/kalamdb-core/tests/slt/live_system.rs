//! A live query over a system table holds at most `live.max_initial_bytes`
//! of it, at its start and at every later reading.

use crate::util::{caller, open_with, run};
use kalamdb_core::{EngineConfig, LiveCode, LiveConfig, Outbox, SubscribeRequest};
use std::sync::Arc;

fn request(id: &str) -> SubscribeRequest {
    SubscribeRequest {
        subscription_id: id.into(),
        connection_id: "c1".into(),
        sql: "SELECT namespace_id, table_count FROM system.namespaces".into(),
        ..SubscribeRequest::default()
    }
}

#[tokio::test]
async fn a_system_table_over_the_bound_ends_its_live_query() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        live: LiveConfig {
            max_initial_bytes: 1,
            ..LiveConfig::default()
        },
        ..EngineConfig::default()
    };
    let db = open_with(dir.path(), config, Arc::new(kalamdb_commons::SystemClock));
    let root = caller("root");
    let (outbox, _rx) = Outbox::new(8);
    // At the start: refused, and nothing is left registered.
    let refused = db
        .subscribe(&root, request("big"), outbox.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code, LiveCode::SubscriptionFailed, "{refused:?}");
    assert!(
        refused.message.contains("over 1 bytes"),
        "{}",
        refused.message
    );
    let listed = crate::util::query(&db, "root", "SELECT live_id FROM system.live").await;
    assert!(listed.is_empty(), "{listed:?}");
    drop(db);

    // At a later reading: the table grew past what the watch may hold.
    let db = crate::util::open(dir.path());
    let mut live = db.subscribe(&root, request("grows"), outbox).await.unwrap();
    let watch = live.watch.as_mut().expect("a system table's watch");
    run(&db, "root", "CREATE NAMESPACE app").await;
    let bound = 64 << 20;
    let changes = watch.poll(bound).unwrap();
    assert_eq!(changes.len(), 1, "the new namespace is an insert");
    let over = watch.poll(1).unwrap_err();
    assert_eq!(over.code, LiveCode::SubscriptionFailed, "{over:?}");
}
