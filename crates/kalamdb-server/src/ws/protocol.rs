//! The WebSocket messages of docs/API.md ("Live queries"): what clients
//! send, parsed; what the server sends, built as JSON.

use crate::http::cells::{column_cells, type_name};
use kalamdb_core::arrow::record_batch::RecordBatch;
use kalamdb_core::{ChangeKind, InitialPage, LiveChange};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A message from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Authenticate {
        #[serde(default)]
        method: Option<String>,
        #[serde(default)]
        token: Option<String>,
        #[serde(default, alias = "user")]
        username: Option<String>,
        #[serde(default)]
        password: Option<String>,
    },
    Subscribe {
        subscription: SubscriptionRequest,
    },
    /// Its `last_seq_id` is accepted and not needed: pages follow one
    /// snapshot held by the server.
    NextBatch {
        subscription_id: String,
    },
    Unsubscribe {
        subscription_id: String,
    },
    Ping,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionRequest {
    pub id: String,
    pub sql: String,
    #[serde(default)]
    pub options: SubscriptionOptions,
}

#[derive(Debug, Default, Deserialize)]
pub struct SubscriptionOptions {
    #[serde(default, deserialize_with = "flexible_u64")]
    pub batch_size: Option<u64>,
    #[serde(default, deserialize_with = "flexible_u64")]
    pub last_rows: Option<u64>,
    #[serde(default, deserialize_with = "flexible_u64")]
    pub from_seq_id: Option<u64>,
}

/// A count or `_seq` as a JSON number or a string of digits (64-bit
/// values travel as strings, for JavaScript), or null.
fn flexible_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a non-negative integer")),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom("expected a non-negative integer")),
        Some(_) => Err(D::Error::custom("expected a non-negative integer")),
    }
}

/// Parses one text frame. Errors say what was wrong, for the `PROTOCOL`
/// error the client gets.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or("a message is a JSON object with a \"type\"")?
        .to_string();
    serde_json::from_value(value).map_err(|e| {
        if e.to_string().contains("unknown variant") {
            format!(
                "unknown message type '{}'; expected authenticate, subscribe, next_batch, \
                 unsubscribe or ping",
                kalamdb_commons::excerpt(&kind, 40)
            )
        } else {
            format!(
                "invalid '{}' message: {e}",
                kalamdb_commons::excerpt(&kind, 40)
            )
        }
    })
}

/// Rows as objects keyed by column name, cells as in HTTP results.
pub fn rows_json(batch: &RecordBatch) -> Vec<Value> {
    let schema = batch.schema();
    let columns: Vec<Vec<Value>> = batch.columns().iter().map(column_cells).collect();
    (0..batch.num_rows())
        .map(|r| {
            let mut row = Map::with_capacity(columns.len());
            for (field, cells) in schema.fields().iter().zip(&columns) {
                row.insert(field.name().clone(), cells[r].clone());
            }
            Value::Object(row)
        })
        .collect()
}

pub fn schema_json(schema: &kalamdb_core::arrow::datatypes::Schema) -> Value {
    Value::Array(
        schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| json!({"name": f.name(), "data_type": type_name(f), "index": i}))
            .collect(),
    )
}

fn batch_control(
    batch_num: usize,
    has_more: bool,
    status: &str,
    last_seq: u64,
    snapshot_seq: u64,
) -> Value {
    json!({
        "batch_num": batch_num,
        "has_more": has_more,
        "status": status,
        "last_seq_id": last_seq,
        "snapshot_end_seq": snapshot_seq,
    })
}

pub fn auth_success(user: &str, role: &str) -> Value {
    json!({"type": "auth_success", "user_id": user, "user": user, "role": role})
}

pub fn auth_error(message: &str) -> Value {
    json!({"type": "auth_error", "message": message})
}

pub fn error(subscription_id: &str, code: &str, message: &str) -> Value {
    json!({"type": "error", "subscription_id": subscription_id, "code": code, "message": message})
}

pub fn ack(
    id: &str,
    total_rows: usize,
    schema: &kalamdb_core::arrow::datatypes::Schema,
    has_more: bool,
    status: &str,
    snapshot_seq: u64,
) -> Value {
    json!({
        "type": "subscription_ack",
        "subscription_id": id,
        "total_rows": total_rows,
        "batch_control": batch_control(0, has_more, status, snapshot_seq, snapshot_seq),
        "schema": schema_json(schema),
    })
}

pub fn initial_batch(id: &str, page: &InitialPage, snapshot_seq: u64) -> Value {
    let status = if page.has_more {
        if page.batch_num == 0 {
            "loading"
        } else {
            "loading_batch"
        }
    } else {
        "ready"
    };
    json!({
        "type": "initial_data_batch",
        "subscription_id": id,
        "rows": rows_json(&page.rows),
        "batch_control": batch_control(
            page.batch_num,
            page.has_more,
            status,
            page.last_seq.max(if page.has_more { 0 } else { snapshot_seq }),
            snapshot_seq,
        ),
    })
}

/// A change message without its subscription id: what every subscriber
/// of one plan is sent for one write, encoded once (see
/// [`change_message`]).
pub fn change_body(change: &LiveChange) -> String {
    let kind = match change.kind {
        ChangeKind::Insert => "insert",
        ChangeKind::Update => "update",
        ChangeKind::Delete => "delete",
    };
    let mut body = json!({ "change_type": kind });
    // A system table's changes have no `_seq`.
    if change.last_seq > 0 {
        body["seq_id"] = Value::from(change.last_seq);
    }
    if let Some(rows) = &change.rows {
        body["rows"] = Value::Array(rows_json(rows));
    }
    if let Some(old) = &change.old_values {
        body["old_values"] = Value::Array(rows_json(old));
    }
    body.to_string()
}

/// One subscriber's change message: `body` (a JSON object from
/// [`change_body`]) with its type and subscription id in front.
pub fn change_message(id: &str, body: &str) -> String {
    let members = body
        .strip_prefix('{')
        .expect("a change body is a JSON object with members");
    let mut text = String::with_capacity(body.len() + id.len() + 48);
    text.push_str(r#"{"type":"change","subscription_id":"#);
    text.push_str(&Value::from(id).to_string());
    text.push(',');
    text.push_str(members);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_as_the_reference_gives_them() {
        let m = parse(r#"{"type":"subscribe","subscription":{"id":"s1","sql":"SELECT 1","options":{"batch_size":5,"from_seq_id":"42"}}}"#).unwrap();
        let ClientMessage::Subscribe { subscription } = m else {
            panic!("{m:?}")
        };
        assert_eq!(subscription.options.batch_size, Some(5));
        assert_eq!(subscription.options.from_seq_id, Some(42));
        assert!(matches!(
            parse(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        ));
        assert!(matches!(
            parse(
                r#"{"type":"authenticate","method":"jwt","token":"t","protocol":{"serialization":"json"}}"#
            ),
            Ok(ClientMessage::Authenticate { token: Some(_), .. })
        ));
        assert!(parse("{").unwrap_err().starts_with("invalid JSON"));
        assert!(parse(r#"{"type":"dance"}"#)
            .unwrap_err()
            .contains("unknown message type 'dance'"));
        assert!(parse(r#"[1]"#).is_err());
        assert!(parse(r#"{"type":"subscribe"}"#)
            .unwrap_err()
            .contains("invalid 'subscribe'"));
        assert!(parse(
            r#"{"type":"subscribe","subscription":{"id":"s","sql":"x","options":{"last_rows":-1}}}"#
        )
        .is_err());
    }

    #[test]
    fn a_shared_change_body_becomes_each_subscribers_message() {
        use kalamdb_core::arrow::array::{Int64Array, StringArray};
        use kalamdb_core::arrow::datatypes::{DataType, Field, Schema};
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Utf8, true),
        ]));
        let batch = |id: i64, v: &str| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(vec![id])),
                    Arc::new(StringArray::from(vec![v])),
                ],
            )
            .unwrap()
        };
        let change = LiveChange {
            kind: ChangeKind::Update,
            rows: Some(batch(1, "new")),
            old_values: Some(batch(1, "old")),
            last_seq: 42,
        };
        let body = change_body(&change);
        // An id that needs escaping stays one JSON string.
        let text = change_message("s\"1", &body);
        let message: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            message,
            json!({
                "type": "change",
                "subscription_id": "s\"1",
                "change_type": "update",
                "seq_id": 42,
                "rows": [{"id": "1", "v": "new"}],
                "old_values": [{"id": "1", "v": "old"}],
            })
        );
    }
}
