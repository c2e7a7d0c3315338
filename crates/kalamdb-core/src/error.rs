//! Core errors. Each variant knows its public kind and its error code.

use datafusion::error::DataFusionError;
use kalamdb_commons::error::codes;
use kalamdb_commons::ErrorKind;
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
    #[error("{0}")]
    Internal(String),
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::InvalidSql(_)
            | CoreError::Execution(_)
            | CoreError::InvalidParameter(_)
            | CoreError::EmptySql
            | CoreError::ParamsWithBatch => ErrorKind::InvalidInput,
            CoreError::TableNotFound(_)
            | CoreError::NamespaceNotFound(_)
            | CoreError::UserNotFound(_) => ErrorKind::NotFound,
            CoreError::AlreadyExists(_) => ErrorKind::Conflict,
            CoreError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            CoreError::Unavailable(_) => ErrorKind::Unavailable,
            CoreError::ResourceExhausted(_) | CoreError::Timeout(_) => ErrorKind::InvalidInput,
            CoreError::Store(StoreError::InvalidKey(_)) => ErrorKind::InvalidInput,
            CoreError::Store(_) | CoreError::Internal(_) => ErrorKind::Internal,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            CoreError::InvalidSql(_) => codes::INVALID_SQL,
            CoreError::Execution(_) | CoreError::AlreadyExists(_) => codes::SQL_EXECUTION_ERROR,
            CoreError::InvalidParameter(_) => codes::INVALID_PARAMETER,
            CoreError::EmptySql => codes::EMPTY_SQL,
            CoreError::ParamsWithBatch => codes::PARAMS_WITH_BATCH,
            CoreError::TableNotFound(_) => codes::TABLE_NOT_FOUND,
            CoreError::NamespaceNotFound(_) => codes::NAMESPACE_NOT_FOUND,
            CoreError::UserNotFound(_) => codes::USER_NOT_FOUND,
            CoreError::PermissionDenied(_) => codes::PERMISSION_DENIED,
            CoreError::Unavailable(_) => codes::UNAVAILABLE,
            CoreError::ResourceExhausted(_) => codes::RESOURCE_EXHAUSTED,
            CoreError::Timeout(_) => codes::STATEMENT_TIMEOUT,
            CoreError::Store(StoreError::InvalidKey(_)) => codes::SQL_EXECUTION_ERROR,
            CoreError::Store(_) | CoreError::Internal(_) => codes::INTERNAL_ERROR,
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
            other => CoreError::Internal(other.to_string()),
        }
    }
}

impl From<CoreError> for DataFusionError {
    fn from(err: CoreError) -> Self {
        DataFusionError::External(Box::new(err))
    }
}

impl From<serde_json::Error> for CoreError {
    fn from(err: serde_json::Error) -> Self {
        CoreError::Internal(format!("catalog encoding: {err}"))
    }
}

impl From<kalamdb_filestore::FileStoreError> for CoreError {
    fn from(err: kalamdb_filestore::FileStoreError) -> Self {
        use kalamdb_filestore::FileStoreError as E;
        match err {
            E::InvalidStorage(_) | E::InvalidTemplate { .. } => {
                CoreError::Execution(err.to_string())
            }
            other => CoreError::Internal(format!("cold storage: {other}")),
        }
    }
}
