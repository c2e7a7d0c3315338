//! `POST /v1/api/sql`

use super::auth::authenticate;
use super::encode;
use super::errors::ApiError;
use super::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kalamdb_commons::ErrorCode;
use kalamdb_core::{Caller, StatementError};
use serde::Deserialize;
use serde_json::Value as Json;
use std::net::SocketAddr;
use std::time::Instant;

#[derive(Debug, Deserialize)]
struct SqlRequest {
    sql: String,
    #[serde(default)]
    params: Option<Vec<Json>>,
    #[serde(default)]
    namespace_id: Option<String>,
}

pub async fn execute_sql(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = kalamdb_commons::clock::monotonic();
    match handle(&state, peer, &headers, body, started).await {
        Ok(body) => (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(mut error) => {
            error.took_ms = started.elapsed().as_secs_f64() * 1000.0;
            error.into_response()
        }
    }
}

async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<SqlRequest, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than {} bytes", state.max_body_bytes),
        )
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > state.max_body_bytes) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, state.max_body_bytes)
        .await
        .map_err(|_| too_large())?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(ErrorCode::InvalidRequest,
            format!("invalid JSON body: {e}; expected {{\"sql\": \"...\", \"params\": [...]?, \"namespace_id\": \"...\"?}}"),
        )
    })
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
    started: Instant,
) -> Result<Body, ApiError> {
    // The body first (bounded by the size limit): a response sent before the
    // body is read makes the server close the connection, which a client
    // reusing it would see as a failed request.
    let body = read_body(state, headers, body).await;
    let caller = authenticate(state, headers, peer).await?;
    let request = body?;
    if request.sql.trim().is_empty() {
        return Err(ApiError::new(ErrorCode::EmptySql, "no SQL statement given"));
    }
    if request.sql.len() > state.max_sql_bytes {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "SQL text too long: {} bytes (at most {}, limits.max_sql_bytes)",
                request.sql.len(),
                state.max_sql_bytes
            ),
        ));
    }
    let query_id = query_id(headers)?;
    let params = request.params.unwrap_or_default();
    let deadline = tokio::time::Instant::from_std(started) + state.request_timeout;
    let timed_out = || {
        ApiError::new(
            ErrorCode::StatementTimeout,
            format!(
                "the request took longer than {} s and was cancelled",
                state.request_timeout.as_secs()
            ),
        )
    };
    // Literal INSERTs (the bulk of writes) hold no expressions to plan and
    // take microseconds: they run right here, which saves the two thread
    // hand-offs of the query runtime.
    if let Some(inserts) = kalamdb_core::literal_inserts(&request.sql) {
        let run = state.db.execute_literal_inserts(
            inserts,
            &params,
            request.namespace_id.as_deref(),
            &caller,
        );
        return match tokio::time::timeout_at(deadline, run).await {
            Ok(Ok(results)) => Ok(super::stream::reply(results, started, deadline)),
            Ok(Err(failure)) => Err(refused(failure, &caller)),
            Err(_) => Err(timed_out()),
        };
    }
    // A statement seen before that a direct read answers (a key lookup, a
    // short LIMIT read) is as cheap: it runs here too.
    let direct = state.db.execute_direct(
        &request.sql,
        &params,
        request.namespace_id.as_deref(),
        &caller,
    );
    match tokio::time::timeout_at(deadline, direct).await {
        Ok(Some(Ok(results))) => return Ok(super::stream::reply(results, started, deadline)),
        Ok(Some(Err(failure))) => return Err(refused(failure, &caller)),
        Ok(None) => {}
        Err(_) => return Err(timed_out()),
    }
    let db = state.db.clone();
    let run_as = caller.clone();
    // What system.running_queries shows: an excerpt, never a copy of a
    // large batch.
    let sql_text = query_id
        .as_ref()
        .map(|_| kalamdb_commons::excerpt(&request.sql, kalamdb_core::RUNNING_SQL_CHARS));
    // Running and encoding both happen on the query runtime, so neither a
    // heavy statement nor a large result holds the request workers.
    let mut task = AbortOnDrop(state.queries.spawn(async move {
        let outcome = db
            .execute_streaming(
                &request.sql,
                &params,
                request.namespace_id.as_deref(),
                &run_as,
            )
            .await;
        outcome
            .map(|results| super::stream::reply(results, started, deadline))
            .map_err(|failure| refused(failure, &run_as))
    }));
    let _running = query_id.as_deref().map(|id| {
        state.db.running().register(
            id,
            caller.user_id.as_str(),
            sql_text.as_deref().unwrap_or_default(),
            state.db.clock().now_micros(),
            task.0.abort_handle(),
        )
    });
    match tokio::time::timeout_at(deadline, &mut task.0).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) if e.is_cancelled() => Err(ApiError::new(
            ErrorCode::QueryCancelled,
            "the statement was cancelled by KILL QUERY; statements before it in the \
             batch were committed, it changed nothing",
        )),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "statement task failed");
            Err(ApiError::new(
                ErrorCode::InternalError,
                "the statement failed unexpectedly",
            ))
        }
        Err(_) => {
            // Stops at its next await point; each statement commits in one
            // batch, so a stopped one changed nothing.
            task.0.abort();
            Err(timed_out())
        }
    }
}

/// The header naming a request's statements for `KILL QUERY`.
pub const QUERY_ID_HEADER: &str = "kalam-query-id";

fn query_id(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(QUERY_ID_HEADER) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(id) if kalamdb_core::valid_query_id(id) => Ok(Some(id.to_string())),
        _ => Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "the {QUERY_ID_HEADER} header must be 1 to {} letters, digits, '-', '_', '.' \
                 or ':'",
                kalamdb_core::MAX_QUERY_ID_LEN
            ),
        )),
    }
}

/// A statement task that stops when its request is dropped: when the
/// client goes away mid-statement (its Ctrl-C, a closed connection), the
/// work it asked for is not carried on for nobody.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The error response for a failed batch: the failure, and the results of
/// the statements before it (they are committed).
fn refused(failure: StatementError, caller: &Caller) -> ApiError {
    let code = failure.error.code();
    if code == ErrorCode::InternalError {
        tracing::error!(error = %failure, user = %caller.user_id, "statement failed");
    } else {
        tracing::debug!(error = %failure, user = %caller.user_id, "statement refused");
    }
    let mut error = ApiError::new(code, failure.to_string());
    error.results = failure.completed.iter().map(encode::result_value).collect();
    error
}
