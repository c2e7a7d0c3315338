//! Who is calling: the `Authorization` header (Bearer token or Basic).

use super::errors::ApiError;
use super::AppState;
use crate::auth::TokenRefusal;
use axum::http::HeaderMap;
use base64::Engine;
use kalamdb_auth::AuthFailure;
use kalamdb_commons::ErrorCode;
use kalamdb_core::Caller;
use std::net::SocketAddr;

pub fn unauthenticated(code: ErrorCode, message: &str) -> ApiError {
    ApiError::new(code, message)
}

/// The credentials a request carries.
pub enum Credentials {
    Bearer(String),
    Basic { user: String, password: String },
}

pub fn credentials(headers: &HeaderMap) -> Result<Credentials, ApiError> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(unauthenticated(
            ErrorCode::MissingAuthorization,
            "missing Authorization header (Basic or Bearer)",
        ));
    };
    let header = header.to_str().map_err(|_| {
        unauthenticated(
            ErrorCode::InvalidCredentials,
            "malformed Authorization header",
        )
    })?;
    let (scheme, value) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Credentials::Bearer(value.trim().to_string()));
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthenticated(
            ErrorCode::InvalidCredentials,
            "unsupported Authorization scheme; use Basic or Bearer",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| {
            unauthenticated(ErrorCode::InvalidCredentials, "malformed Basic credentials")
        })?;
    let (user, password) = decoded.split_once(':').ok_or_else(|| {
        unauthenticated(ErrorCode::InvalidCredentials, "malformed Basic credentials")
    })?;
    Ok(Credentials::Basic {
        user: user.to_string(),
        password: password.to_string(),
    })
}

/// Authenticates the request with a Bearer access token or Basic
/// credentials.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Caller, ApiError> {
    match credentials(headers)? {
        Credentials::Bearer(token) => state
            .auth
            .verify(&state.db, &token, "access", peer.ip().is_loopback())
            .map(|(caller, _)| caller)
            .map_err(token_error),
        Credentials::Basic { user, password } => {
            refuse_basic_if_off(state)?;
            check_password(state, &user, &password, peer).await
        }
    }
}

/// `auth.allow_basic = false`: Basic credentials are refused before any
/// password is checked (so they count towards no lockout).
pub fn refuse_basic_if_off(state: &AppState) -> Result<(), ApiError> {
    if state.auth.allow_basic {
        return Ok(());
    }
    Err(unauthenticated(
        ErrorCode::InvalidCredentials,
        "Basic authentication is switched off on this server (auth.allow_basic); \
         log in at /v1/api/auth/login and send Authorization: Bearer <access_token>",
    ))
}

pub fn token_error(refusal: TokenRefusal) -> ApiError {
    match refusal {
        TokenRefusal::Expired => unauthenticated(
            ErrorCode::TokenExpired,
            "the token has expired; refresh it or log in again",
        ),
        TokenRefusal::Invalid(why) => unauthenticated(
            ErrorCode::InvalidCredentials,
            &format!("invalid token: {why}"),
        ),
    }
}

/// Checks a user's password, honouring the lockout: a locked user is
/// refused without checking, a failure counts towards the lock. Verified
/// credentials are cached, so only a cache miss pays the KDF, on a blocking
/// thread, in one of a few hash slots. Attempts for one user that need the
/// KDF take turns, and each looks at the lock again when its turn comes,
/// so concurrent guesses cannot get past the lock.
pub async fn check_password(
    state: &AppState,
    user: &str,
    password: &str,
    peer: SocketAddr,
) -> Result<Caller, ApiError> {
    refuse_if_locked(state, user)?;
    let loopback = peer.ip().is_loopback();
    let (users, authenticator) = (state.db.users(), &state.auth.authenticator);
    let result = match authenticator.authenticate_without_kdf(users, user, password, loopback) {
        Some(answer) => answer,
        None => {
            let _turn = state.auth.hashing.user_turn(user).await;
            refuse_if_locked(state, user)?;
            match authenticator.authenticate_without_kdf(users, user, password, loopback) {
                // An earlier turn verified these credentials.
                Some(answer) => answer,
                None => {
                    let _slot = state.auth.hashing.hash_slot().await.ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::Unavailable,
                            "too many logins in progress; retry shortly",
                        )
                    })?;
                    let (db, authenticator) = (state.db.clone(), authenticator.clone());
                    let (name, pw) = (user.to_string(), password.to_string());
                    let checked = tokio::task::spawn_blocking(move || {
                        authenticator.authenticate(db.users(), &name, &pw, loopback)
                    })
                    .await
                    .map_err(|_| {
                        ApiError::new(ErrorCode::InternalError, "authentication failed")
                    })?;
                    // Counted while the turn is held, before the next runs.
                    return finish_check(state, user, checked);
                }
            }
        }
    };
    finish_check(state, user, result)
}

fn refuse_if_locked(state: &AppState, user: &str) -> Result<(), ApiError> {
    match state.auth.lockout.locked_for(user) {
        Some(left) => Err(unauthenticated(
            ErrorCode::AccountLocked,
            &format!(
                "too many failed logins: '{user}' is locked for {} more second(s)",
                left.as_secs().max(1)
            ),
        )),
        None => Ok(()),
    }
}

fn finish_check(
    state: &AppState,
    user: &str,
    result: Result<Caller, AuthFailure>,
) -> Result<Caller, ApiError> {
    match result {
        Ok(caller) => {
            state.auth.lockout.succeeded(user);
            Ok(caller)
        }
        Err(AuthFailure::InvalidCredentials) => {
            state.auth.lockout.failed(user);
            Err(unauthenticated(
                ErrorCode::InvalidCredentials,
                "invalid username or password",
            ))
        }
        Err(AuthFailure::RootRemoteWithoutPassword) => Err(unauthenticated(
            ErrorCode::InvalidCredentials,
            "root has no password yet and may only connect from localhost; \
             run /v1/api/auth/setup or set KALAMDB_ROOT_PASSWORD",
        )),
    }
}
