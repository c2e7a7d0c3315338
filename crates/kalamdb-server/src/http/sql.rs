//! `POST /v1/api/sql`

use super::auth::authenticate;
use super::cells::{column_cells, type_name};
use super::errors::ApiError;
use super::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use kalamdb_commons::error::codes;
use kalamdb_commons::ErrorKind;
use kalamdb_core::StatementResult;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};
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
    let started = Instant::now();
    let took = || started.elapsed().as_secs_f64() * 1000.0;
    match handle(&state, peer, &headers, body).await {
        Ok(results) => axum::Json(json!({
            "status": "success",
            "took": took(),
            "results": results,
        }))
        .into_response(),
        Err(mut error) => {
            error.took_ms = took();
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
            ErrorKind::TooLarge,
            codes::PAYLOAD_TOO_LARGE,
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
        ApiError::new(
            ErrorKind::InvalidInput,
            codes::INVALID_REQUEST,
            format!("invalid JSON body: {e}; expected {{\"sql\": \"...\", \"params\": [...]?, \"namespace_id\": \"...\"?}}"),
        )
    })
}

async fn handle(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<Json>, ApiError> {
    // The body first (bounded by the size limit): a response sent before the
    // body is read makes the server close the connection, which a client
    // reusing it would see as a failed request.
    let body = read_body(state, headers, body).await;
    let caller = authenticate(state, headers, peer).await?;
    let request = body?;
    if request.sql.trim().is_empty() {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            codes::EMPTY_SQL,
            "no SQL statement given",
        ));
    }
    let params = request.params.unwrap_or_default();
    let db = state.db.clone();
    let run_as = caller.clone();
    let mut task = state.queries.spawn(async move {
        db.execute(
            &request.sql,
            &params,
            request.namespace_id.as_deref(),
            &run_as,
        )
        .await
    });
    let outcome = match tokio::time::timeout(state.request_timeout, &mut task).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "statement task failed");
            return Err(ApiError::new(
                ErrorKind::Internal,
                codes::INTERNAL_ERROR,
                "the statement failed unexpectedly",
            ));
        }
        Err(_) => {
            // Stops at its next await point; each statement commits in one
            // batch, so a stopped one changed nothing.
            task.abort();
            return Err(ApiError::new(
                ErrorKind::InvalidInput,
                codes::STATEMENT_TIMEOUT,
                format!(
                    "the request took longer than {} s and was cancelled",
                    state.request_timeout.as_secs()
                ),
            ));
        }
    };
    let results = outcome.map_err(|failure| {
        let kind = failure.error.kind();
        if kind == ErrorKind::Internal {
            tracing::error!(error = %failure, user = %caller.user_id, "statement failed");
        } else {
            tracing::debug!(error = %failure, user = %caller.user_id, "statement refused");
        }
        let mut error = ApiError::new(kind, failure.error.code(), failure.to_string());
        error.results = failure.completed.iter().map(encode_result).collect();
        error
    })?;
    tracing::debug!(
        user = %caller.user_id,
        statements = results.len(),
        rows = results.iter().map(|r| r.row_count).sum::<usize>(),
        "sql request done"
    );
    Ok(results.iter().map(encode_result).collect())
}

fn encode_result(result: &StatementResult) -> Json {
    let mut out = Map::new();
    if let Some(schema) = &result.schema {
        let fields: Vec<Json> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| json!({"name": f.name(), "data_type": type_name(f), "index": i}))
            .collect();
        let mut rows: Vec<Vec<Json>> = Vec::with_capacity(result.row_count);
        for batch in &result.batches {
            let columns: Vec<Vec<Json>> = batch.columns().iter().map(column_cells).collect();
            for r in 0..batch.num_rows() {
                rows.push(columns.iter().map(|c| c[r].clone()).collect());
            }
        }
        out.insert("schema".into(), Json::Array(fields));
        out.insert("rows".into(), json!(rows));
    }
    out.insert("row_count".into(), json!(result.row_count));
    if let Some(message) = &result.message {
        out.insert("message".into(), json!(message));
    }
    out.insert("as_user".into(), json!(result.as_user));
    Json::Object(out)
}
