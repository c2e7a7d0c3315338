//! The typed statements the rest of KalamDB executes.

use crate::fast_insert::FastInsert;
use crate::storage::StorageOptions;
use kalamdb_commons::{FlushPolicy, KalamType, Role, TableType};
use sqlparser::ast::Statement;

/// `[namespace.]table` as written; the namespace falls back to the request's
/// default namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub namespace: Option<String>,
    pub table: String,
}

/// The options of `SUBSCRIBE TO ... OPTIONS (...)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveOptions {
    pub last_rows: Option<u64>,
    pub batch_size: Option<u64>,
    pub from_seq_id: Option<u64>,
}

/// Who may read a SHARED table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLevel {
    /// Every user reads.
    Public,
    /// Service and above only.
    Private,
}

/// A column default that KalamDB computes at insert time.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnDefault {
    SnowflakeId,
    Now,
    UuidV7,
    Ulid,
    CurrentUser,
    /// Any other expression, kept as SQL text and evaluated per insert.
    Expr(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSpec {
    pub name: String,
    pub data_type: KalamType,
    pub nullable: bool,
    pub default: Option<ColumnDefault>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreateTable {
    pub table: TableRef,
    pub table_type: TableType,
    pub if_not_exists: bool,
    pub columns: Vec<ColumnSpec>,
    pub primary_key: String,
    pub flush_policy: Option<FlushPolicy>,
    pub storage_id: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub access_level: Option<AccessLevel>,
    /// `COMPACTION_MAX_FILES`: compact a scope with more files (0: never
    /// by count).
    pub compaction_max_files: Option<u32>,
    /// `COMPACTION_MAX_SMALL_FILES`: compact a scope with more small files
    /// (0: never).
    pub compaction_max_small_files: Option<u32>,
}

/// `ALTER TABLE`: one or more changes, applied together as one schema
/// version.
#[derive(Debug, Clone, PartialEq)]
pub struct AlterTable {
    pub table: TableRef,
    pub if_exists: bool,
    pub changes: Vec<TableChange>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TableChange {
    AddColumn {
        column: ColumnSpec,
        if_not_exists: bool,
    },
    DropColumn {
        name: String,
        if_exists: bool,
    },
    RenameColumn {
        from: String,
        to: String,
    },
    SetDefault {
        column: String,
        default: ColumnDefault,
    },
    DropDefault {
        column: String,
    },
    SetNotNull {
        column: String,
    },
    DropNotNull {
        column: String,
    },
    /// `ALTER COLUMN c TYPE t` / `MODIFY COLUMN c t`: widening only.
    SetType {
        column: String,
        data_type: KalamType,
    },
    RenameTable {
        to: String,
    },
    SetOptions(TableOptions),
}

/// Table options an `ALTER TABLE ... SET TBLPROPERTIES (...)` changes;
/// `None`: unchanged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableOptions {
    pub flush_policy: Option<FlushPolicy>,
    pub storage_id: Option<String>,
    pub access_level: Option<AccessLevel>,
    pub ttl_seconds: Option<u64>,
    pub compaction_max_files: Option<u32>,
    pub compaction_max_small_files: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserChange {
    Password(String),
    Role(Role),
    Email(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum KalamStatement {
    CreateNamespace {
        name: String,
        if_not_exists: bool,
    },
    DropNamespace {
        name: String,
        if_exists: bool,
        cascade: bool,
    },
    ShowNamespaces,
    /// `USE [NAMESPACE] ns` / `SET NAMESPACE ns`: the default namespace
    /// for the rest of the batch.
    UseNamespace {
        name: String,
    },
    CreateTable(Box<CreateTable>),
    DropTable {
        table: TableRef,
        if_exists: bool,
    },
    ShowTables {
        namespace: Option<String>,
    },
    DescribeTable {
        table: TableRef,
        /// `DESCRIBE TABLE t HISTORY`: its schema versions.
        history: bool,
    },
    AlterTable(Box<AlterTable>),
    /// Hot and cold figures of one table.
    ShowStats {
        table: TableRef,
    },
    CreateUser {
        name: String,
        password: String,
        role: Role,
        email: Option<String>,
    },
    AlterUser {
        name: String,
        change: UserChange,
    },
    DropUser {
        name: String,
        if_exists: bool,
    },
    /// Start a flush job for one table.
    FlushTable {
        table: TableRef,
    },
    /// Start a flush job for every table (of one namespace).
    FlushAll {
        namespace: Option<String>,
    },
    /// Start a compaction job for one table.
    CompactTable {
        table: TableRef,
    },
    /// Start a compaction job for every table (of one namespace).
    CompactAll {
        namespace: Option<String>,
    },
    CreateStorage {
        id: String,
        if_not_exists: bool,
        options: Box<StorageOptions>,
    },
    AlterStorage {
        id: String,
        options: Box<StorageOptions>,
    },
    DropStorage {
        id: String,
        if_exists: bool,
    },
    ShowStorages,
    /// `STORAGE CHECK id [EXTENDED]`: the files the manifests of the
    /// storage's tables name exist with their recorded sizes (EXTENDED:
    /// and their footers read).
    CheckStorage {
        id: String,
        extended: bool,
    },
    /// Write everything one user owns (every USER table, both tiers) as
    /// readable files: the right of access of data-protection laws.
    ExportUserData {
        user: String,
        /// Where to write; by default under the data directory's `exports`.
        path: Option<String>,
    },
    /// The exports made so far.
    ShowExports,
    /// A consistent copy of the whole database (hot tier checkpoint,
    /// catalog, cold files) into a directory on the server.
    BackupDatabase {
        path: String,
    },
    /// Stage a backup to replace this server's data at its next start.
    RestoreDatabase {
        path: String,
    },
    /// Cancel a queued or running job.
    KillJob {
        job_id: String,
    },
    /// Check a live query and say how to open it (`SUBSCRIBE TO`).
    Subscribe {
        table: TableRef,
        /// The WHERE condition, as SQL text.
        selection: Option<String>,
        options: LiveOptions,
    },
    /// End a subscription.
    KillLiveQuery {
        live_id: String,
    },
    /// Stop a running statement by the id its client gave it.
    KillQuery {
        query_id: String,
    },
    /// Run one statement as another user (roles permitting).
    ExecuteAs {
        user: String,
        statement: Box<KalamStatement>,
    },
    /// `BEGIN` / `START TRANSACTION`: the batch's next statements commit
    /// together, at `COMMIT`.
    Begin,
    Commit,
    Rollback,
    /// An INSERT of literal rows, read by the fast path.
    FastInsert(Box<FastInsert>),
    /// A standard statement: a query, INSERT, UPDATE or DELETE.
    Standard(Box<Statement>),
}

impl KalamStatement {
    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            KalamStatement::CreateNamespace { .. } => "CREATE NAMESPACE",
            KalamStatement::DropNamespace { .. } => "DROP NAMESPACE",
            KalamStatement::ShowNamespaces => "SHOW NAMESPACES",
            KalamStatement::UseNamespace { .. } => "USE",
            KalamStatement::CreateTable(_) => "CREATE TABLE",
            KalamStatement::DropTable { .. } => "DROP TABLE",
            KalamStatement::ShowTables { .. } => "SHOW TABLES",
            KalamStatement::DescribeTable { .. } => "DESCRIBE TABLE",
            KalamStatement::AlterTable(_) => "ALTER TABLE",
            KalamStatement::ShowStats { .. } => "SHOW STATS",
            KalamStatement::CreateUser { .. } => "CREATE USER",
            KalamStatement::AlterUser { .. } => "ALTER USER",
            KalamStatement::DropUser { .. } => "DROP USER",
            KalamStatement::FlushTable { .. } => "FLUSH TABLE",
            KalamStatement::FlushAll { .. } => "FLUSH ALL TABLES",
            KalamStatement::CompactTable { .. } => "COMPACT TABLE",
            KalamStatement::CompactAll { .. } => "COMPACT ALL",
            KalamStatement::CreateStorage { .. } => "CREATE STORAGE",
            KalamStatement::AlterStorage { .. } => "ALTER STORAGE",
            KalamStatement::DropStorage { .. } => "DROP STORAGE",
            KalamStatement::ShowStorages => "SHOW STORAGES",
            KalamStatement::CheckStorage { .. } => "STORAGE CHECK",
            KalamStatement::ExportUserData { .. } => "EXPORT USER DATA",
            KalamStatement::ShowExports => "SHOW EXPORT",
            KalamStatement::BackupDatabase { .. } => "BACKUP DATABASE",
            KalamStatement::RestoreDatabase { .. } => "RESTORE DATABASE",
            KalamStatement::KillJob { .. } => "KILL JOB",
            KalamStatement::Subscribe { .. } => "SUBSCRIBE",
            KalamStatement::KillLiveQuery { .. } => "KILL LIVE QUERY",
            KalamStatement::KillQuery { .. } => "KILL QUERY",
            KalamStatement::ExecuteAs { .. } => "EXECUTE AS",
            KalamStatement::Begin => "BEGIN",
            KalamStatement::Commit => "COMMIT",
            KalamStatement::Rollback => "ROLLBACK",
            KalamStatement::FastInsert(_) => "INSERT",
            KalamStatement::Standard(s) => match s.as_ref() {
                Statement::Query(_) => "SELECT",
                Statement::Insert(_) => "INSERT",
                Statement::Update(_) => "UPDATE",
                Statement::Delete(_) => "DELETE",
                _ => "STATEMENT",
            },
        }
    }

    /// Whether a statement timeout may cancel it: queries and row changes
    /// (each commits in one batch, so a cancelled one wrote nothing), not
    /// catalog changes or job control, which must run to their end.
    pub fn may_time_out(&self) -> bool {
        match self {
            KalamStatement::FastInsert(_) | KalamStatement::Standard(_) => true,
            KalamStatement::ExecuteAs { statement, .. } => statement.may_time_out(),
            _ => false,
        }
    }
}
