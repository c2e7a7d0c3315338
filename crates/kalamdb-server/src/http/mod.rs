//! The HTTP API (docs/API.md): `POST /v1/api/sql`, auth and health checks,
//! and the route of the WebSocket endpoint (`crate::ws`).

pub(crate) mod auth;
mod auth_routes;
pub(crate) mod cells;
mod encode;
mod errors;
mod sql;
mod stream;

use crate::auth::AuthService;
use crate::config::ServerConfig;
use axum::routing::{get, post};
use axum::{Json, Router};
use kalamdb_core::KalamDb;
use std::sync::Arc;

pub use errors::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub db: Arc<KalamDb>,
    pub auth: Arc<AuthService>,
    pub max_body_bytes: usize,
    /// `limits.max_sql_bytes`.
    pub max_sql_bytes: usize,
    /// `server.cors_allowed_origins`.
    pub cors_allowed_origins: Arc<Vec<String>>,
    /// Where statements are planned and run: a runtime of its own, so a
    /// statement that plans for seconds never holds up the workers that
    /// accept connections and answer `/health`.
    pub queries: tokio::runtime::Handle,
    /// Time a whole `/v1/api/sql` request may take.
    pub request_timeout: std::time::Duration,
    pub websocket: Arc<crate::ws::WebSocketSection>,
    pub websockets: Arc<crate::ws::Connections>,
}

impl AppState {
    pub fn new(
        db: Arc<KalamDb>,
        authenticator: Arc<kalamdb_auth::Authenticator>,
        config: &ServerConfig,
        queries: tokio::runtime::Handle,
    ) -> Result<Self, String> {
        Ok(Self {
            queries,
            request_timeout: std::time::Duration::from_secs(
                config.limits.request_timeout_secs.max(1),
            ),
            db,
            auth: Arc::new(AuthService::new(
                authenticator,
                &config.auth,
                &config.storage.data_dir,
                config.limits.max_concurrent_password_hashes,
            )?),
            max_body_bytes: config.server.max_request_body_bytes,
            max_sql_bytes: config.limits.max_sql_bytes,
            cors_allowed_origins: Arc::new(config.server.cors_allowed_origins.clone()),
            websocket: Arc::new(config.websocket.clone()),
            websockets: Arc::new(crate::ws::Connections::default()),
        })
    }
}

pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.cors_allowed_origins);
    let router = Router::new()
        .route("/v1/api/sql", post(sql::execute_sql))
        .route("/v1/api/auth/status", get(auth_routes::status))
        .route("/v1/api/auth/setup", post(auth_routes::setup))
        .route("/v1/api/auth/login", post(auth_routes::login))
        .route("/v1/api/auth/refresh", post(auth_routes::refresh))
        .route("/v1/api/auth/logout", post(auth_routes::logout))
        .route("/v1/api/auth/me", get(auth_routes::me))
        .route("/v1/ws", get(crate::ws::upgrade))
        .route("/health", get(health))
        .route("/v1/api/healthcheck", get(health))
        .fallback(errors::not_found)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            errors::panic_response,
        ))
        .with_state(state);
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// CORS for browsers (KalamDB's TypeScript client calls the server from a
/// web page): preflights answered, and the allowed origin echoed, for the
/// configured origins only. The API authenticates with the Authorization
/// header, not cookies, so credentials mode is not needed.
fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        AllowOrigin::list(values)
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(std::time::Duration::from_secs(3600)),
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "healthy",
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": "v1",
    }))
}
