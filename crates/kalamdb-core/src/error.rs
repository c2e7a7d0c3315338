//! Core errors. Each variant knows its public error code.

use datafusion::error::DataFusionError;
use kalamdb_commons::ErrorCode;
use kalamdb_store::StoreError;
use std::sync::Arc;
use thiserror::Error;

pub type Result<T, E = CoreError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum CoreError {
    #[error("{0}")]
    InvalidSql(String),
    #[error("{0}")]
    Execution(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("no SQL statement given")]
    EmptySql,
    #[error("params cannot be used with a batch of several statements")]
    ParamsWithBatch,
    #[error("table '{0}' not found")]
    TableNotFound(String),
    #[error("namespace '{0}' not found")]
    NamespaceNotFound(String),
    #[error("user '{0}' not found")]
    UserNotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unavailable(String),
    /// Over a resource limit (memory, result size, statements per request).
    #[error("{0}")]
    ResourceExhausted(String),
    #[error("{0}")]
    Timeout(String),
    #[error("hot tier: {0}")]
    Store(#[from] StoreError),
    /// Building or reading Arrow data the engine made itself failed.
    #[error("{0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    /// A storage refused or failed a request.
    #[error("{0}")]
    ObjectStore(#[from] kalamdb_filestore::object_store::Error),
    #[error("cold storage: {0}")]
    FileStore(#[source] kalamdb_filestore::FileStoreError),
    /// A stored record (catalog, user, job, manifest) that does not encode
    /// or decode.
    #[error("catalog encoding: {0}")]
    Encoding(#[from] serde_json::Error),
    /// A DataFusion failure that is not the statement's fault.
    #[error("{0}")]
    DataFusion(#[source] DataFusionError),
    /// A task on a blocking thread (a scan, a flush, a file lookup) ended
    /// without an answer: it panicked or was cancelled.
    #[error("{what} failed: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    /// A committed file of a table that cannot be read.
    #[error("table {table}: cannot read its file {path}: {cause}")]
    UnreadableFile {
        table: String,
        path: String,
        cause: String,
    },
    /// A stored value that is not what the engine wrote.
    #[error("corrupt {0}")]
    Corrupt(&'static str),
    /// The data directory cannot be used.
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A write planned under a schema version that an ALTER TABLE replaced
    /// before it committed; nothing was written (the statement is run
    /// again, a few times, before this reaches a client).
    #[error("table '{0}' was altered while the statement ran; nothing was written, run it again")]
    SchemaChanged(String),
    /// A transaction could not commit (another committed a write to a row
    /// it wrote first) or go on (its snapshot is gone); nothing of it was
    /// applied.
    #[error("{0}")]
    TransactionConflict(String),
    /// A test fail point stopped the work here, as a crash would.
    #[error("fail point: {0}")]
    FailPoint(&'static str),
    #[error("{0}")]
    Internal(String),
}

impl CoreError {
    /// The public code (and so the HTTP status) of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::InvalidSql(_) => ErrorCode::InvalidSql,
            CoreError::Execution(_) | CoreError::AlreadyExists(_) | CoreError::SchemaChanged(_) => {
                ErrorCode::SqlExecutionError
            }
            CoreError::InvalidParameter(_) => ErrorCode::InvalidParameter,
            CoreError::EmptySql => ErrorCode::EmptySql,
            CoreError::ParamsWithBatch => ErrorCode::ParamsWithBatch,
            CoreError::TableNotFound(_) => ErrorCode::TableNotFound,
            CoreError::NamespaceNotFound(_) => ErrorCode::NamespaceNotFound,
            CoreError::UserNotFound(_) => ErrorCode::UserNotFound,
            CoreError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            CoreError::Unavailable(_) => ErrorCode::Unavailable,
            CoreError::ResourceExhausted(_) => ErrorCode::ResourceExhausted,
            CoreError::Timeout(_) => ErrorCode::StatementTimeout,
            CoreError::TransactionConflict(_) => ErrorCode::TransactionConflict,
            CoreError::Store(StoreError::InvalidKey(_)) => ErrorCode::SqlExecutionError,
            CoreError::Store(_)
            | CoreError::Arrow(_)
            | CoreError::ObjectStore(_)
            | CoreError::FileStore(_)
            | CoreError::Encoding(_)
            | CoreError::DataFusion(_)
            | CoreError::Task { .. }
            | CoreError::UnreadableFile { .. }
            | CoreError::Corrupt(_)
            | CoreError::DataDir { .. }
            | CoreError::FailPoint(_)
            | CoreError::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// A statement that ran longer than the statement timeout, as PostgreSQL
    /// words it.
    pub fn statement_timeout(timeout: std::time::Duration) -> Self {
        CoreError::Timeout(format!(
            "canceling statement due to statement timeout ({} ms)",
            timeout.as_millis()
        ))
    }

    pub fn exec(msg: impl Into<String>) -> Self {
        CoreError::Execution(msg.into())
    }
}

impl From<kalamdb_sql::ParseError> for CoreError {
    fn from(err: kalamdb_sql::ParseError) -> Self {
        CoreError::InvalidSql(err.0)
    }
}

impl From<DataFusionError> for CoreError {
    fn from(err: DataFusionError) -> Self {
        match err {
            DataFusionError::SQL(e, _) => CoreError::InvalidSql(e.to_string()),
            DataFusionError::Plan(msg) => CoreError::Execution(msg),
            DataFusionError::SchemaError(e, _) => CoreError::Execution(e.to_string()),
            DataFusionError::NotImplemented(msg) => {
                CoreError::Execution(format!("not supported: {msg}"))
            }
            DataFusionError::ArrowError(e, _) => match *e {
                datafusion::arrow::error::ArrowError::ArithmeticOverflow(msg) => {
                    CoreError::Execution(format!("integer out of range: {msg}"))
                }
                other => CoreError::Execution(other.to_string()),
            },
            DataFusionError::Execution(msg) => CoreError::Execution(msg),
            // Our own errors come back as they were; any other external
            // error comes from a function refusing its input (an invalid
            // regular expression, say): the statement's fault.
            DataFusionError::External(e) => match e.downcast::<CoreError>() {
                Ok(core) => *core,
                Err(other) => CoreError::Execution(other.to_string()),
            },

            DataFusionError::Context(ctx, inner) => match CoreError::from(*inner) {
                // Our own rules' names tell the user nothing.
                CoreError::Execution(m) if !ctx.starts_with("kalamdb_") => {
                    CoreError::Execution(format!("{ctx}: {m}"))
                }
                other => other,
            },
            DataFusionError::Diagnostic(_, inner) => CoreError::from(*inner),
            DataFusionError::Shared(inner) => match Arc::try_unwrap(inner) {
                Ok(inner) => CoreError::from(inner),
                Err(shared) => CoreError::Execution(shared.to_string()),
            },
            DataFusionError::Collection(mut errors) if !errors.is_empty() => {
                CoreError::from(errors.swap_remove(0))
            }
            DataFusionError::ResourcesExhausted(msg) => CoreError::ResourceExhausted(msg),
            // Planning and naming errors are the statement's fault.
            DataFusionError::Configuration(msg) => CoreError::Execution(msg),
            other => CoreError::DataFusion(other),
        }
    }
}

impl From<CoreError> for DataFusionError {
    fn from(err: CoreError) -> Self {
        DataFusionError::External(Box::new(err))
    }
}

impl From<kalamdb_filestore::FileStoreError> for CoreError {
    fn from(err: kalamdb_filestore::FileStoreError) -> Self {
        use kalamdb_filestore::FileStoreError as E;
        match err {
            E::InvalidStorage(_) | E::InvalidTemplate { .. } => {
                CoreError::Execution(err.to_string())
            }
            other => CoreError::FileStore(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    /// Failures inside the engine keep their cause as a source (for logs)
    /// and are internal errors to the client.
    #[test]
    fn internal_failures_keep_their_source() {
        let arrow = CoreError::from(datafusion::arrow::error::ArrowError::ComputeError(
            "overflow".into(),
        ));
        let json = CoreError::from(serde_json::from_str::<u8>("x").unwrap_err());
        let df = CoreError::from(DataFusionError::Internal("bug".into()));
        let dir = CoreError::DataDir {
            path: "/nowhere".into(),
            source: std::io::Error::other("read-only"),
        };
        for error in [arrow, json, df, dir] {
            assert_eq!(error.code(), ErrorCode::InternalError, "{error}");
            assert!(error.source().is_some(), "{error:?} lost its source");
        }
        // The statement's own faults are not internal.
        let plan = CoreError::from(DataFusionError::Plan("no such column".into()));
        assert_eq!(plan.code(), ErrorCode::SqlExecutionError);
    }

    /// Each kind of failure decides its public code here and nowhere else.
    #[test]
    fn every_kind_has_its_code() {
        let cases = [
            (CoreError::InvalidSql("x".into()), ErrorCode::InvalidSql),
            (CoreError::exec("x"), ErrorCode::SqlExecutionError),
            (
                CoreError::AlreadyExists("x".into()),
                ErrorCode::SqlExecutionError,
            ),
            (
                CoreError::InvalidParameter("x".into()),
                ErrorCode::InvalidParameter,
            ),
            (CoreError::EmptySql, ErrorCode::EmptySql),
            (CoreError::ParamsWithBatch, ErrorCode::ParamsWithBatch),
            (
                CoreError::TableNotFound("t".into()),
                ErrorCode::TableNotFound,
            ),
            (
                CoreError::NamespaceNotFound("n".into()),
                ErrorCode::NamespaceNotFound,
            ),
            (CoreError::UserNotFound("u".into()), ErrorCode::UserNotFound),
            (
                CoreError::PermissionDenied("x".into()),
                ErrorCode::PermissionDenied,
            ),
            (CoreError::Unavailable("x".into()), ErrorCode::Unavailable),
            (
                CoreError::ResourceExhausted("x".into()),
                ErrorCode::ResourceExhausted,
            ),
            (CoreError::Timeout("x".into()), ErrorCode::StatementTimeout),
            (CoreError::Corrupt("counter"), ErrorCode::InternalError),
            (CoreError::FailPoint("here"), ErrorCode::InternalError),
            (
                CoreError::UnreadableFile {
                    table: "a.b".into(),
                    path: "p".into(),
                    cause: "gone".into(),
                },
                ErrorCode::InternalError,
            ),
            (CoreError::Internal("bug".into()), ErrorCode::InternalError),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error:?}");
        }
    }
}
