//! Talking to a KalamDB server over its public HTTP API.

use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// How requests authenticate.
#[derive(Debug, Clone)]
pub enum Auth {
    Basic { user: String, password: String },
    Bearer(String),
}

/// A failure, already worded for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server could not be reached.
    Connection(String),
    /// The server refused the credentials (401).
    Auth { code: String, message: String },
    /// A statement or request failed.
    Server { code: String, message: String },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Connection(m) => write!(f, "connection error: {m}"),
            ClientError::Auth { code, message } => {
                write!(f, "authentication failed ({code}): {message}")
            }
            ClientError::Server { code, message } => write!(f, "ERROR [{code}]: {message}"),
        }
    }
}

/// One statement's result as the server reports it.
#[derive(Debug, Clone, Default)]
pub struct StatementResult {
    pub columns: Vec<String>,
    /// Each column's type as the server names it (`Timestamp`, `Text`, ...).
    pub types: Vec<String>,
    pub rows: Vec<Vec<Value>>,
    pub row_count: u64,
    pub message: Option<String>,
    pub has_rows: bool,
}

#[derive(Clone)]
pub struct Client {
    pub url: String,
    auth: Option<Auth>,
    http: reqwest::blocking::Client,
}

impl Client {
    pub fn new(url: &str, auth: Option<Auth>) -> Self {
        Self {
            url: url.trim_end_matches('/').to_string(),
            auth,
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(300))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .expect("HTTP client builds"),
        }
    }

    fn connection_error(&self, e: &reqwest::Error) -> ClientError {
        if e.is_connect() {
            ClientError::Connection(format!(
                "cannot connect to {}: is the server running? ({})",
                self.url,
                root_cause(e)
            ))
        } else if e.is_timeout() {
            ClientError::Connection(format!("{} did not answer in time", self.url))
        } else {
            ClientError::Connection(format!("request to {} failed: {}", self.url, root_cause(e)))
        }
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Result<Value, ClientError> {
        let request = match &self.auth {
            Some(Auth::Basic { user, password }) => request.basic_auth(user, Some(password)),
            Some(Auth::Bearer(token)) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().map_err(|e| self.connection_error(&e))?;
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or("HTTP_ERROR")
            .to_string();
        let message = body["error"]["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("HTTP {status}"));
        Err(if status == 401 {
            ClientError::Auth { code, message }
        } else {
            ClientError::Server { code, message }
        })
    }

    /// Runs SQL (one or several statements); returns each result and the
    /// round-trip time.
    pub fn sql(
        &self,
        sql: &str,
        namespace: Option<&str>,
    ) -> Result<(Vec<StatementResult>, Duration), ClientError> {
        self.sql_as_query(sql, namespace, None)
    }

    /// [`Client::sql`], with an id the server knows the statements by, for
    /// `KILL QUERY` (the CLI's Ctrl-C).
    pub fn sql_as_query(
        &self,
        sql: &str,
        namespace: Option<&str>,
        query_id: Option<&str>,
    ) -> Result<(Vec<StatementResult>, Duration), ClientError> {
        let mut body = json!({ "sql": sql });
        if let Some(ns) = namespace {
            body["namespace_id"] = Value::from(ns);
        }
        #[expect(
            clippy::disallowed_methods,
            reason = "the round trip shown to the user"
        )]
        let started = Instant::now();
        let mut request = self
            .http
            .post(format!("{}/v1/api/sql", self.url))
            .json(&body);
        if let Some(id) = query_id {
            request = request.header("kalam-query-id", id);
        }
        let response = self.send(request)?;
        let elapsed = started.elapsed();
        let results = response["results"]
            .as_array()
            .map(|results| results.iter().map(parse_result).collect())
            .unwrap_or_default();
        Ok((results, elapsed))
    }

    pub fn health(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/health", self.url)))
    }

    pub fn login(&self, user: &str, password: &str) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/api/auth/login", self.url))
                .json(&json!({ "user": user, "password": password })),
        )
    }

    pub fn refresh(&self, refresh_token: &str) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/api/auth/refresh", self.url))
                .json(&json!({ "refresh_token": refresh_token })),
        )
    }

    pub fn logout(&self, refresh_token: &str) -> Result<Value, ClientError> {
        self.send(
            self.http
                .post(format!("{}/v1/api/auth/logout", self.url))
                .json(&json!({ "refresh_token": refresh_token })),
        )
    }

    pub fn me(&self) -> Result<Value, ClientError> {
        self.send(self.http.get(format!("{}/v1/api/auth/me", self.url)))
    }

    pub fn auth(&self) -> Option<&Auth> {
        self.auth.as_ref()
    }

    pub fn set_auth(&mut self, auth: Auth) {
        self.auth = Some(auth);
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    cause
}

fn parse_result(value: &Value) -> StatementResult {
    let columns: Vec<String> = value["schema"]
        .as_array()
        .map(|schema| {
            schema
                .iter()
                .map(|c| c["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default();
    let types: Vec<String> = value["schema"]
        .as_array()
        .map(|schema| {
            schema
                .iter()
                .map(|c| c["data_type"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Vec<Value>> = value["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    StatementResult {
        has_rows: !columns.is_empty(),
        row_count: value["row_count"].as_u64().unwrap_or(rows.len() as u64),
        message: value["message"].as_str().map(String::from),
        columns,
        types,
        rows,
    }
}
