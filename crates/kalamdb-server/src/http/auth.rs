//! Who is calling: the `Authorization` header.

use super::errors::ApiError;
use super::AppState;
use axum::http::HeaderMap;
use base64::Engine;
use kalamdb_commons::error::codes;
use kalamdb_commons::ErrorKind;
use kalamdb_core::{AuthFailure, Caller};
use std::net::SocketAddr;

fn unauthenticated(code: &'static str, message: &str) -> ApiError {
    ApiError::new(ErrorKind::Unauthenticated, code, message)
}

/// Authenticates the request. Basic credentials are checked against the
/// user's Argon2 hash once; later requests hit the verified-credentials cache.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Caller, ApiError> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(unauthenticated(
            codes::MISSING_AUTHORIZATION,
            "missing Authorization header (Basic or Bearer)",
        ));
    };
    let header = header.to_str().map_err(|_| {
        unauthenticated(codes::INVALID_CREDENTIALS, "malformed Authorization header")
    })?;
    let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Err(unauthenticated(
            codes::INVALID_CREDENTIALS,
            "token authentication is not enabled on this server; use Basic",
        ));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthenticated(
            codes::INVALID_CREDENTIALS,
            "unsupported Authorization scheme; use Basic or Bearer",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            unauthenticated(codes::INVALID_CREDENTIALS, "malformed Basic credentials")
        })?;
    let (user, password) = decoded.split_once(':').ok_or_else(|| {
        unauthenticated(codes::INVALID_CREDENTIALS, "malformed Basic credentials")
    })?;
    let loopback = peer.ip().is_loopback();
    let users = state.db.users();
    let result = match users.cached(user, password) {
        Some(caller) => Ok(caller),
        None => {
            // A cache miss pays the KDF: keep it off the async workers.
            let (db, user, password) = (state.db.clone(), user.to_string(), password.to_string());
            tokio::task::spawn_blocking(move || db.users().authenticate(&user, &password, loopback))
                .await
                .map_err(|_| {
                    ApiError::new(
                        ErrorKind::Internal,
                        codes::INTERNAL_ERROR,
                        "authentication failed",
                    )
                })?
        }
    };
    result.map_err(|failure| match failure {
        AuthFailure::InvalidCredentials => {
            unauthenticated(codes::INVALID_CREDENTIALS, "invalid username or password")
        }
        AuthFailure::RootRemoteWithoutPassword => unauthenticated(
            codes::INVALID_CREDENTIALS,
            "root has no password yet and may only connect from localhost; set KALAMDB_ROOT_PASSWORD",
        ),
    })
}
