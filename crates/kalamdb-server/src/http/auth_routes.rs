//! `/v1/api/auth/*`: status, first-run set-up, login, refresh, logout, me.

use super::auth::{authenticate, check_password, credentials, token_error, Credentials};
use super::errors::ApiError;
use super::AppState;
use crate::auth::user_json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::Json;
use kalamdb_commons::{ErrorCode, UserId};
use kalamdb_core::CoreError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use tracing::{info, warn};

/// Largest auth request body accepted.
const MAX_AUTH_BODY: usize = 64 * 1024;

fn bad_request(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

fn parse<T: DeserializeOwned>(body: &Bytes, shape: &str) -> Result<T, ApiError> {
    if body.len() > MAX_AUTH_BODY {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            "auth request body too large",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| bad_request(format!("invalid JSON body: {e}; expected {shape}")))
}

fn core_error(e: CoreError) -> ApiError {
    let code = match e {
        CoreError::AlreadyExists(_) => ErrorCode::SetupAlreadyDone,
        _ => e.code(),
    };
    ApiError::new(code, e.to_string())
}

pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let needs_setup = state.db.users().needs_setup();
    Json(json!({
        "needs_setup": needs_setup,
        "message": if needs_setup {
            "root has no password: POST /v1/api/auth/setup from this machine to set it and create an admin user"
        } else {
            "the server is set up"
        },
    }))
}

#[derive(Deserialize)]
struct SetupRequest {
    #[serde(alias = "username")]
    user: String,
    password: String,
    root_password: String,
    #[serde(default)]
    email: Option<String>,
}

pub async fn setup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !peer.ip().is_loopback() {
        return Err(ApiError::new(
            ErrorCode::PermissionDenied,
            "set-up is only accepted from the server's own machine (loopback)",
        ));
    }
    let request: SetupRequest = parse(
        &body,
        r#"{"user": "...", "password": "...", "root_password": "...", "email": "..."?}"#,
    )?;
    let user = UserId::new(&request.user).map_err(bad_request)?;
    let db = state.db.clone();
    let name = request.user.clone();
    tokio::task::spawn_blocking(move || {
        db.users().setup(
            &request.root_password,
            user,
            &request.password,
            request.email,
        )
    })
    .await
    .map_err(|_| ApiError::new(ErrorCode::InternalError, "set-up failed"))?
    .map_err(core_error)?;
    info!(user = %name, "server set up: root password set, dba user created");
    let created = state
        .db
        .users()
        .caller_of(&name)
        .ok_or_else(|| ApiError::new(ErrorCode::InternalError, "the new user is gone"))?;
    Ok(Json(json!({
        "status": "success",
        "user": user_json(&state.db, &created),
        "message": format!("Set-up complete: root has a password and '{name}' is a dba"),
    })))
}

#[derive(Deserialize)]
struct LoginRequest {
    #[serde(alias = "username")]
    user: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    if !state.auth.login_limiter.allow(peer.ip()) {
        warn!(client = %peer.ip(), "login rate limit exceeded");
        return Err(ApiError::new(
            ErrorCode::RateLimitExceeded,
            "too many login attempts from this address; wait a minute",
        ));
    }
    let request: LoginRequest = parse(&body, r#"{"user": "...", "password": "..."}"#)?;
    let checked = check_password(&state, &request.user, &request.password, peer).await;
    // Clipped: anyone can send a login, with any name.
    let name = kalamdb_commons::clip(&request.user, 128);
    state.db.audit(kalamdb_core::AuditEvent {
        actor: name.clone(),
        action: if checked.is_ok() {
            "LOGIN"
        } else {
            "LOGIN FAILED"
        }
        .to_string(),
        target: name,
        error: checked.as_ref().err().map(|e| e.message.clone()),
        ip_address: Some(peer.ip().to_string()),
        subject: None,
    });
    let caller = checked?;
    state
        .auth
        .login(&state.db, &caller)
        .map(Json)
        .map_err(|e| ApiError::new(ErrorCode::InternalError, e))
}

#[derive(Deserialize, Default)]
struct TokenRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The refresh token from the body, else from `Authorization: Bearer`.
fn refresh_token_of(headers: &HeaderMap, body: &Bytes) -> Result<String, ApiError> {
    if !body.is_empty() {
        let request: TokenRequest = parse(body, r#"{"refresh_token": "..."}"#)?;
        if let Some(token) = request.refresh_token {
            return Ok(token);
        }
    }
    match credentials(headers)? {
        Credentials::Bearer(token) => Ok(token),
        Credentials::Basic { .. } => Err(bad_request(
            "send the refresh token as {\"refresh_token\": \"...\"} or Authorization: Bearer"
                .into(),
        )),
    }
}

pub async fn refresh(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let token = refresh_token_of(&headers, &body)?;
    state
        .auth
        .refresh(&state.db, &token, peer.ip().is_loopback())
        .map(Json)
        .map_err(token_error)
}

pub async fn logout(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let token = refresh_token_of(&headers, &body)?;
    state
        .auth
        .logout(&state.db, &token, peer.ip().is_loopback())
        .map_err(token_error)?;
    Ok(Json(
        json!({ "status": "success", "message": "Logged out" }),
    ))
}

pub async fn me(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&state, &headers, peer).await?;
    Ok(Json(user_json(&state.db, &caller)))
}
