use crate::*;
use kalamdb_commons::{FlushPolicy, KalamType, Role, TableType};

fn create(sql: &str) -> CreateTable {
    match parse_statement(sql).unwrap() {
        KalamStatement::CreateTable(t) => *t,
        other => panic!("not a CREATE TABLE: {other:?}"),
    }
}

#[test]
fn create_user_table_with_options_in_with_clause() {
    let t = create(
        "CREATE TABLE App.Messages (id BIGINT PRIMARY KEY DEFAULT SNOWFLAKE_ID(), body TEXT NOT NULL, \
         at TIMESTAMP DEFAULT NOW(), amount DECIMAL(10,2)) \
         WITH (TYPE='USER', STORAGE_ID='local', FLUSH_POLICY='rows:100,interval:60')",
    );
    assert_eq!(t.table_type, TableType::User);
    assert_eq!(t.table.namespace.as_deref(), Some("app"));
    assert_eq!(t.table.table, "messages");
    assert_eq!(t.primary_key, "id");
    assert_eq!(
        t.flush_policy,
        Some(FlushPolicy::new(Some(100), Some(60)).unwrap())
    );
    assert_eq!(t.storage_id.as_deref(), Some("local"));
    assert_eq!(t.columns[0].default, Some(ColumnDefault::SnowflakeId));
    assert!(!t.columns[0].nullable && !t.columns[1].nullable && t.columns[2].nullable);
    assert_eq!(t.columns[2].default, Some(ColumnDefault::Now));
    assert_eq!(
        t.columns[3].data_type,
        KalamType::Decimal {
            precision: 10,
            scale: 2
        }
    );
}

#[test]
fn create_table_with_trailing_clauses() {
    let t = create("CREATE USER TABLE ns.t (id INT, PRIMARY KEY (id)) FLUSH ROWS 50 FLUSH INTERVAL 30s STORAGE s3_main");
    assert_eq!(t.table_type, TableType::User);
    assert_eq!(
        t.flush_policy,
        Some(FlushPolicy::new(Some(50), Some(30)).unwrap())
    );
    assert_eq!(t.storage_id.as_deref(), Some("s3_main"));

    let t = create("CREATE SHARED TABLE t (k TEXT PRIMARY KEY) FLUSH POLICY COMBINED ROW_LIMIT 7 TIME_INTERVAL 9");
    assert_eq!(t.table_type, TableType::Shared);
    assert_eq!(
        t.flush_policy,
        Some(FlushPolicy::new(Some(7), Some(9)).unwrap())
    );

    let t = create("CREATE TABLE t (id BIGSERIAL PRIMARY KEY)");
    assert_eq!(t.table_type, TableType::Shared);
    assert_eq!(t.columns[0].default, Some(ColumnDefault::SnowflakeId));
    assert_eq!(t.flush_policy, None);
}

#[test]
fn create_table_errors() {
    for bad in [
        "CREATE TABLE t (a INT)",
        "CREATE TABLE t (a INT PRIMARY KEY, b INT PRIMARY KEY)",
        "CREATE TABLE t (a FLOAT PRIMARY KEY)",
        "CREATE TABLE t (a INT PRIMARY KEY, a TEXT)",
        "CREATE TABLE t (_seq INT PRIMARY KEY)",
        "CREATE TABLE t (a INT PRIMARY KEY) WITH (TYPE='NOPE')",
        "CREATE USER TABLE t (a INT PRIMARY KEY) WITH (TYPE='SHARED')",
        "CREATE TABLE t (a INT PRIMARY KEY) FLUSH ROWS 0",
        "CREATE TABLE t (a GEOMETRY PRIMARY KEY)",
        "CREATE TABLE t (a DECIMAL(50,2) PRIMARY KEY)",
        "CREATE TABLE t (a INT PRIMARY KEY) garbage",
        "CREATE TABLE a.b.c (a INT PRIMARY KEY)",
    ] {
        assert!(parse_statement(bad).is_err(), "accepted: {bad}");
    }
}

#[test]
fn namespace_and_user_statements() {
    assert_eq!(
        parse_statement("create namespace if not exists App").unwrap(),
        KalamStatement::CreateNamespace {
            name: "app".into(),
            if_not_exists: true
        }
    );
    assert_eq!(
        parse_statement("DROP NAMESPACE x CASCADE").unwrap(),
        KalamStatement::DropNamespace {
            name: "x".into(),
            if_exists: false,
            cascade: true
        }
    );
    assert_eq!(
        parse_statement("CREATE USER 'alice' WITH PASSWORD 'p;w' ROLE dba EMAIL 'a@x.io'").unwrap(),
        KalamStatement::CreateUser {
            name: "alice".into(),
            password: "p;w".into(),
            role: Role::Dba,
            email: Some("a@x.io".into())
        }
    );
    assert_eq!(
        parse_statement("ALTER USER 'bob' SET ROLE service").unwrap(),
        KalamStatement::AlterUser {
            name: "bob".into(),
            change: UserChange::Role(Role::Service)
        }
    );
    assert_eq!(
        parse_statement("DROP USER IF EXISTS 'bob'").unwrap(),
        KalamStatement::DropUser {
            name: "bob".into(),
            if_exists: true
        }
    );
    assert!(parse_statement("CREATE USER 'x'").is_err());
    assert!(parse_statement("CREATE USER 'x' WITH PASSWORD 'p' ROLE king").is_err());
}

#[test]
fn show_and_describe() {
    assert_eq!(
        parse_statement("SHOW TABLES IN app").unwrap(),
        KalamStatement::ShowTables {
            namespace: Some("app".into())
        }
    );
    assert_eq!(
        parse_statement("DESC TABLE app.t").unwrap(),
        KalamStatement::DescribeTable {
            table: TableRef {
                namespace: Some("app".into()),
                table: "t".into()
            },
            history: false
        }
    );
}

#[test]
fn batches_and_standard_statements() {
    let batch = parse_batch(
        "INSERT INTO t VALUES (1, 'a;b'); SELECT * FROM t; UPDATE t SET a = 1; DELETE FROM t",
    )
    .unwrap();
    let kinds: Vec<_> = batch.iter().map(KalamStatement::kind).collect();
    assert_eq!(kinds, ["INSERT", "SELECT", "UPDATE", "DELETE"]);
    let err = parse_batch("SELECT 1; SELEC 2").unwrap_err();
    assert!(err.0.starts_with("Statement 2 failed"), "{}", err.0);
    assert!(parse_statement("CREATE INDEX i ON t (a)").is_err());
}

#[test]
fn nasty_input_is_an_error_not_a_panic() {
    let deep = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(parse_statement(&deep).is_err());
    assert!(parse_statement("SELECT 'unterminated").is_err());
    assert!(parse_statement("SELECT \"x").is_err());
    let huge = format!("SELECT '{}'", "x".repeat(1_000_000));
    assert!(parse_statement(&huge).is_ok());
    assert!(parse_statement("\u{0}\u{1}").is_err());
}

#[test]
fn show_stats_spellings() {
    let want = KalamStatement::ShowStats {
        table: TableRef {
            namespace: Some("app".into()),
            table: "t".into(),
        },
    };
    for sql in [
        "SHOW STATS FOR TABLE app.t",
        "show stats app.t",
        "SHOW STATS TABLE App.T",
    ] {
        assert_eq!(parse_statement(sql).unwrap(), want, "{sql}");
    }
    assert!(parse_statement("SHOW STATS FOR TABLE").is_err());
}
