//! Errors of live queries, with the codes of the WebSocket protocol.

use crate::error::CoreError;

/// The `code` of a WebSocket `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveCode {
    InvalidSql,
    NotFound,
    Unauthorized,
    Unsupported,
    SubscriptionLimitExceeded,
    /// The change history after the requested `_seq` is no longer kept (or
    /// the `_seq` is ahead of this server): resubscribe from a snapshot.
    HistoryUnavailable,
    SubscriptionFailed,
}

impl LiveCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidSql => "INVALID_SQL",
            Self::NotFound => "NOT_FOUND",
            Self::Unauthorized => "UNAUTHORIZED",
            Self::Unsupported => "UNSUPPORTED",
            Self::SubscriptionLimitExceeded => "SUBSCRIPTION_LIMIT_EXCEEDED",
            Self::HistoryUnavailable => "HISTORY_UNAVAILABLE",
            Self::SubscriptionFailed => "SUBSCRIPTION_FAILED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LiveError {
    pub code: LiveCode,
    pub message: String,
}

impl LiveError {
    pub fn new(code: LiveCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<CoreError> for LiveError {
    fn from(e: CoreError) -> Self {
        let code = match &e {
            CoreError::InvalidSql(_) | CoreError::EmptySql => LiveCode::InvalidSql,
            CoreError::TableNotFound(_) | CoreError::NamespaceNotFound(_) => LiveCode::NotFound,
            CoreError::PermissionDenied(_) => LiveCode::Unauthorized,
            _ => LiveCode::SubscriptionFailed,
        };
        // A planning error that is really a syntax or name error reads as such.
        let code = match (code, e.code()) {
            (LiveCode::SubscriptionFailed, kalamdb_commons::ErrorCode::InvalidSql) => {
                LiveCode::InvalidSql
            }
            (LiveCode::SubscriptionFailed, kalamdb_commons::ErrorCode::TableNotFound) => {
                LiveCode::NotFound
            }
            (code, _) => code,
        };
        Self::new(code, e.to_string())
    }
}

impl From<datafusion::error::DataFusionError> for LiveError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        CoreError::from(e).into()
    }
}

impl From<datafusion::arrow::error::ArrowError> for LiveError {
    fn from(e: datafusion::arrow::error::ArrowError) -> Self {
        CoreError::from(e).into()
    }
}

pub type LiveResult<T> = std::result::Result<T, LiveError>;
