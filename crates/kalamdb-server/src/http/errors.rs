//! Error responses: one place decides status and code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kalamdb_commons::ErrorCode;
use serde_json::json;

/// The HTTP status of a response with this code: the only place it is
/// decided.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        // Unknown tables and failed statements are SQL errors, not unknown
        // routes; the reference keeps them at 400.
        ErrorCode::EmptySql
        | ErrorCode::InvalidSql
        | ErrorCode::SqlExecutionError
        | ErrorCode::TableNotFound
        | ErrorCode::NamespaceNotFound
        | ErrorCode::UserNotFound
        | ErrorCode::ParamsWithBatch
        | ErrorCode::InvalidParameter
        | ErrorCode::InvalidRequest
        | ErrorCode::ResourceExhausted
        | ErrorCode::StatementTimeout
        | ErrorCode::QueryCancelled => StatusCode::BAD_REQUEST,
        ErrorCode::MissingAuthorization
        | ErrorCode::InvalidCredentials
        | ErrorCode::TokenExpired
        | ErrorCode::AccountLocked => StatusCode::UNAUTHORIZED,
        ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::SetupAlreadyDone | ErrorCode::TransactionConflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// An error as the API reports it; its code decides its status.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub took_ms: f64,
    /// Results of the statements of a batch that ran before the failing
    /// one (they are committed).
    pub results: Vec<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            took_ms: 0.0,
            results: Vec::new(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "took": self.took_ms,
            "results": self.results,
            "error": { "code": self.code.as_str(), "message": self.message },
        });
        let status = status_of(self.code);
        let mut response = (status, Json(body)).into_response();
        if matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
        ) {
            // Back-pressure and rate limits: say when trying again makes sense.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// Unknown routes: the one not-found that is a 404.
pub async fn not_found() -> Response {
    ApiError::new(ErrorCode::NotFound, "no such route").into_response()
}

/// A handler panicked: report it, keep serving.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %detail, "request handler panicked");
    ApiError::new(ErrorCode::InternalError, "internal error").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each code reaches the client with its status and code string and,
    /// when retrying makes sense, `Retry-After`.
    #[test]
    fn every_code_becomes_its_response() {
        let statuses = [
            400, 400, 400, 400, 400, 400, 403, 400, 400, 400, 413, 429, 401, 401, 401, 401, 409,
            404, 503, 400, 400, 400, 409, 500,
        ];
        assert_eq!(statuses.len(), ErrorCode::ALL.len());
        for (code, status) in ErrorCode::ALL.into_iter().zip(statuses) {
            let response = ApiError::new(code, "m").into_response();
            assert_eq!(response.status().as_u16(), status, "{code}");
            assert_eq!(
                response
                    .headers()
                    .contains_key(axum::http::header::RETRY_AFTER),
                matches!(code, ErrorCode::Unavailable | ErrorCode::RateLimitExceeded),
                "{code}"
            );
        }
    }
}
