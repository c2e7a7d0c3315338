//! The public error vocabulary. Every crate keeps its own rich error enum;
//! each of those maps to one [`ErrorCode`], the stable code clients match
//! on. The server decides each code's HTTP status in one function.

use std::fmt;

/// What went wrong, as clients see it (listed in docs/API.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    EmptySql,
    InvalidSql,
    /// A statement that parsed but cannot run: unknown column, type error,
    /// duplicate key, object exists, a function refusing its input.
    SqlExecutionError,
    TableNotFound,
    NamespaceNotFound,
    UserNotFound,
    PermissionDenied,
    ParamsWithBatch,
    InvalidParameter,
    /// A request body that is not the API's JSON.
    InvalidRequest,
    PayloadTooLarge,
    RateLimitExceeded,
    MissingAuthorization,
    InvalidCredentials,
    TokenExpired,
    AccountLocked,
    SetupAlreadyDone,
    /// An unknown route.
    NotFound,
    /// The server is overloaded or a dependency is down; retrying may
    /// succeed.
    Unavailable,
    /// Over a limit on memory, result size, statements or value size.
    ResourceExhausted,
    StatementTimeout,
    /// Stopped by `KILL QUERY` (the client's Ctrl-C).
    QueryCancelled,
    /// A transaction's COMMIT found a row it wrote changed by another
    /// transaction that committed first; nothing of it was applied, and
    /// running it again may succeed.
    TransactionConflict,
    /// A bug or an unexpected failure inside the server.
    InternalError,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 24] = [
        ErrorCode::EmptySql,
        ErrorCode::InvalidSql,
        ErrorCode::SqlExecutionError,
        ErrorCode::TableNotFound,
        ErrorCode::NamespaceNotFound,
        ErrorCode::UserNotFound,
        ErrorCode::PermissionDenied,
        ErrorCode::ParamsWithBatch,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidRequest,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimitExceeded,
        ErrorCode::MissingAuthorization,
        ErrorCode::InvalidCredentials,
        ErrorCode::TokenExpired,
        ErrorCode::AccountLocked,
        ErrorCode::SetupAlreadyDone,
        ErrorCode::NotFound,
        ErrorCode::Unavailable,
        ErrorCode::ResourceExhausted,
        ErrorCode::StatementTimeout,
        ErrorCode::QueryCancelled,
        ErrorCode::TransactionConflict,
        ErrorCode::InternalError,
    ];

    /// The code as clients see it in `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::EmptySql => "EMPTY_SQL",
            ErrorCode::InvalidSql => "INVALID_SQL",
            ErrorCode::SqlExecutionError => "SQL_EXECUTION_ERROR",
            ErrorCode::TableNotFound => "TABLE_NOT_FOUND",
            ErrorCode::NamespaceNotFound => "NAMESPACE_NOT_FOUND",
            ErrorCode::UserNotFound => "USER_NOT_FOUND",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::ParamsWithBatch => "PARAMS_WITH_BATCH",
            ErrorCode::InvalidParameter => "INVALID_PARAMETER",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::MissingAuthorization => "MISSING_AUTHORIZATION",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::AccountLocked => "ACCOUNT_LOCKED",
            ErrorCode::SetupAlreadyDone => "SETUP_ALREADY_DONE",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::ResourceExhausted => "RESOURCE_EXHAUSTED",
            ErrorCode::StatementTimeout => "STATEMENT_TIMEOUT",
            ErrorCode::QueryCancelled => "QUERY_CANCELLED",
            ErrorCode::TransactionConflict => "TRANSACTION_CONFLICT",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code's wire form: what clients match on.
    #[test]
    fn every_code_has_its_name() {
        let names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            names,
            [
                "EMPTY_SQL",
                "INVALID_SQL",
                "SQL_EXECUTION_ERROR",
                "TABLE_NOT_FOUND",
                "NAMESPACE_NOT_FOUND",
                "USER_NOT_FOUND",
                "PERMISSION_DENIED",
                "PARAMS_WITH_BATCH",
                "INVALID_PARAMETER",
                "INVALID_REQUEST",
                "PAYLOAD_TOO_LARGE",
                "RATE_LIMIT_EXCEEDED",
                "MISSING_AUTHORIZATION",
                "INVALID_CREDENTIALS",
                "TOKEN_EXPIRED",
                "ACCOUNT_LOCKED",
                "SETUP_ALREADY_DONE",
                "NOT_FOUND",
                "UNAVAILABLE",
                "RESOURCE_EXHAUSTED",
                "STATEMENT_TIMEOUT",
                "QUERY_CANCELLED",
                "TRANSACTION_CONFLICT",
                "INTERNAL_ERROR",
            ]
        );
    }
}
