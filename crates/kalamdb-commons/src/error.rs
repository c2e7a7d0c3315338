//! The small public error vocabulary. Every crate keeps its own rich error
//! enum; each of those maps to one `ErrorKind` plus a stable code string, and
//! the HTTP layer turns the kind into a status in exactly one place.

use std::fmt;

/// What class of failure an error is, from the client's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request or statement is malformed or refers to something invalid.
    InvalidInput,
    /// A named object (table, namespace, user, job) does not exist.
    NotFound,
    /// The caller is not authenticated.
    Unauthenticated,
    /// The caller is authenticated but may not do this.
    PermissionDenied,
    /// The request conflicts with existing state (duplicate key, object exists).
    Conflict,
    /// The request is larger than allowed.
    TooLarge,
    /// The server is overloaded or a dependency is down; retrying may succeed.
    Unavailable,
    /// A bug or an unexpected failure inside the server.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Conflict => "conflict",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        };
        f.write_str(s)
    }
}

/// Stable error codes that clients match on (listed in docs/API.md).
pub mod codes {
    pub const EMPTY_SQL: &str = "EMPTY_SQL";
    pub const INVALID_SQL: &str = "INVALID_SQL";
    pub const SQL_EXECUTION_ERROR: &str = "SQL_EXECUTION_ERROR";
    pub const TABLE_NOT_FOUND: &str = "TABLE_NOT_FOUND";
    pub const NAMESPACE_NOT_FOUND: &str = "NAMESPACE_NOT_FOUND";
    pub const USER_NOT_FOUND: &str = "USER_NOT_FOUND";
    pub const ALREADY_EXISTS: &str = "ALREADY_EXISTS";
    pub const PERMISSION_DENIED: &str = "PERMISSION_DENIED";
    pub const PARAMS_WITH_BATCH: &str = "PARAMS_WITH_BATCH";
    pub const INVALID_PARAMETER: &str = "INVALID_PARAMETER";
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
    pub const INTERNAL_ERROR: &str = "INTERNAL_ERROR";
    pub const MISSING_AUTHORIZATION: &str = "MISSING_AUTHORIZATION";
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
    pub const ACCOUNT_LOCKED: &str = "ACCOUNT_LOCKED";
    pub const SETUP_ALREADY_DONE: &str = "SETUP_ALREADY_DONE";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const UNAVAILABLE: &str = "UNAVAILABLE";
    pub const RESOURCE_EXHAUSTED: &str = "RESOURCE_EXHAUSTED";
    pub const STATEMENT_TIMEOUT: &str = "STATEMENT_TIMEOUT";
}
