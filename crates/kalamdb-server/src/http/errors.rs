//! Error responses: one place decides status and code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kalamdb_commons::error::codes;
use kalamdb_commons::ErrorKind;
use serde_json::json;

/// The HTTP status for a kind of failure.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        // Duplicate keys and existing objects are bad input from the
        // client's view; the API keeps them at 400 (docs/API.md).
        ErrorKind::InvalidInput | ErrorKind::Conflict => StatusCode::BAD_REQUEST,
        // Unknown tables are SQL errors, not unknown routes (404).
        ErrorKind::NotFound => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub code: &'static str,
    pub message: String,
    pub took_ms: f64,
    /// A status other than the kind's (429 for rate limits, 409 for a
    /// repeated set-up).
    pub status: Option<StatusCode>,
    /// Results of the statements of a batch that ran before the failing
    /// one (they are committed).
    pub results: Vec<serde_json::Value>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            code,
            message: message.into(),
            took_ms: 0.0,
            status: None,
            results: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "status": "error",
            "took": self.took_ms,
            "results": self.results,
            "error": { "code": self.code, "message": self.message },
        });
        let status = self.status.unwrap_or(status_of(self.kind));
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
    let mut response =
        ApiError::new(ErrorKind::NotFound, codes::NOT_FOUND, "no such route").into_response();
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

/// A handler panicked: report it, keep serving.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %detail, "request handler panicked");
    ApiError::new(ErrorKind::Internal, codes::INTERNAL_ERROR, "internal error").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status() {
        let cases = [
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::Conflict, 400),
            (ErrorKind::NotFound, 400),
            (ErrorKind::Unauthenticated, 401),
            (ErrorKind::PermissionDenied, 403),
            (ErrorKind::TooLarge, 413),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Internal, 500),
        ];
        for (kind, status) in cases {
            assert_eq!(status_of(kind).as_u16(), status, "{kind}");
        }
    }
}
