//! `SUBSCRIBE TO ...` and `\watch`: a live query printed as it changes.
//!
//! The statement goes to the server over HTTP first (it checks the query
//! and names the subscription), then the CLI opens `/v1/ws`, prints the
//! initial rows as a table and one line per change until Ctrl-C.

use crate::client::{Auth, Client, StatementResult};
use crate::format::{self, Format};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

/// Whether `sql` is a `SUBSCRIBE TO` statement.
pub fn is_subscribe(sql: &str) -> bool {
    let mut words = sql.split_whitespace();
    matches!(
        (words.next(), words.next()),
        (Some(a), Some(b)) if a.eq_ignore_ascii_case("SUBSCRIBE") && b.eq_ignore_ascii_case("TO")
    )
}

type Socket = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;

/// Runs a `SUBSCRIBE TO` statement until Ctrl-C (or `limit` changes, for
/// scripts and tests); false if it failed.
pub fn subscribe(
    client: &Client,
    sql: &str,
    namespace: Option<&str>,
    format: Format,
    limit: Option<usize>,
    out: &mut dyn Write,
) -> bool {
    match run(client, sql, namespace, format, limit, out) {
        Ok(()) => true,
        Err(e) => {
            eprintln!("{e}");
            false
        }
    }
}

fn run(
    client: &Client,
    sql: &str,
    namespace: Option<&str>,
    format: Format,
    limit: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), String> {
    let (results, _) = client
        .sql(sql.trim().trim_end_matches(';'), namespace)
        .map_err(|e| e.to_string())?;
    let row = results
        .first()
        .and_then(|r| r.rows.first())
        .ok_or("the server did not describe the subscription")?;
    let subscription: Value = row
        .get(2)
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or("the server's subscription is not JSON")?;
    // Ctrl-C from here on ends the live query (the handshake included).
    crate::interrupt::catching(|| {
        let mut ws = connect(client)?;
        let outcome = watch(&mut ws, &subscription, format, limit, out);
        let _ = ws.close(None);
        let _ = ws.flush();
        outcome
    })
}

/// Opens `/v1/ws` on the server the client talks to and authenticates as
/// the client does.
fn connect(client: &Client) -> Result<Socket, String> {
    let url = format!("{}/v1/ws", client.url.replacen("http", "ws", 1));
    let request = url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let (mut ws, _) =
        tungstenite::connect(request).map_err(|e| format!("cannot open {url}: {e}"))?;
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        // Short reads, so Ctrl-C is noticed promptly.
        let _ = tcp.set_read_timeout(Some(Duration::from_millis(200)));
    }
    let hello = match client.auth() {
        Some(Auth::Bearer(token)) => {
            json!({"type": "authenticate", "method": "jwt", "token": token})
        }
        Some(Auth::Basic { user, password }) => json!({
            "type": "authenticate", "method": "basic", "username": user, "password": password
        }),
        None => return Err("a live query needs credentials (--user or --token)".into()),
    };
    send(&mut ws, &hello)?;
    let answer = next(&mut ws)?.ok_or("the server closed the connection")?;
    if answer["type"] != "auth_success" {
        return Err(format!(
            "authentication failed: {}",
            answer["message"].as_str().unwrap_or("refused")
        ));
    }
    Ok(ws)
}

fn send(ws: &mut Socket, message: &Value) -> Result<(), String> {
    ws.send(Message::text(message.to_string()))
        .map_err(|e| format!("the connection failed: {e}"))
}

/// The next message; `Ok(None)` when the connection closed. Waits until
/// one comes or Ctrl-C (then `Err("")`).
fn next(ws: &mut Socket) -> Result<Option<Value>, String> {
    loop {
        if crate::interrupt::interrupted() {
            return Err(String::new());
        }
        let text = match ws.read() {
            Ok(Message::Text(text)) => text.as_str().to_string(),
            Ok(Message::Binary(bytes)) => {
                let mut text = String::new();
                flate2::read::GzDecoder::new(&bytes[..])
                    .read_to_string(&mut text)
                    .map_err(|e| format!("a compressed message is broken: {e}"))?;
                text
            }
            Ok(Message::Close(_)) => return Ok(None),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                // Ctrl-C interrupts the read itself (EINTR).
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(None)
            }
            Err(e) => return Err(format!("the connection failed: {e}")),
        };
        return serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("the server sent something that is not JSON: {e}"));
    }
}

fn watch(
    ws: &mut Socket,
    subscription: &Value,
    format: Format,
    limit: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), String> {
    let id = subscription["id"].as_str().unwrap_or("sub").to_string();
    send(
        ws,
        &json!({"type": "subscribe", "subscription": subscription}),
    )?;
    let mut columns: Vec<String> = Vec::new();
    let mut initial: Vec<Vec<Value>> = Vec::new();
    let mut changes = 0;
    loop {
        let message = match next(ws) {
            Ok(Some(message)) => message,
            Ok(None) => return Err("the server closed the connection".into()),
            // Ctrl-C.
            Err(e) if e.is_empty() => {
                let _ = writeln!(out, "Live query stopped ({changes} change(s) seen).");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        match message["type"].as_str().unwrap_or("") {
            "subscription_ack" => {
                columns = message["schema"]
                    .as_array()
                    .map(|fields| {
                        fields
                            .iter()
                            .map(|f| f["name"].as_str().unwrap_or("?").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                if message["batch_control"]["status"] == "ready" {
                    let _ = writeln!(out, "Resumed; waiting for changes (Ctrl-C to stop)");
                }
            }
            "initial_data_batch" => {
                for row in message["rows"].as_array().into_iter().flatten() {
                    initial.push(columns.iter().map(|c| row[c].clone()).collect());
                }
                if message["batch_control"]["has_more"] == true {
                    send(ws, &json!({"type": "next_batch", "subscription_id": id}))?;
                } else {
                    let result = StatementResult {
                        columns: columns.clone(),
                        row_count: initial.len() as u64,
                        rows: std::mem::take(&mut initial),
                        message: None,
                        has_rows: true,
                        // The live protocol's rows carry no column types.
                        types: Vec::new(),
                    };
                    let _ = out.write_all(format::render(&result, format).as_bytes());
                    let _ = writeln!(out, "Watching for changes (Ctrl-C to stop)");
                }
            }
            "change" => {
                let _ = out.write_all(change_lines(&message, &columns).as_bytes());
                let _ = out.flush();
                changes += 1;
                if limit.is_some_and(|n| changes >= n) {
                    return Ok(());
                }
            }
            "error" => {
                return Err(format!(
                    "ERROR [{}]: {}",
                    message["code"].as_str().unwrap_or("?"),
                    message["message"].as_str().unwrap_or("")
                ))
            }
            _ => {}
        }
    }
}

/// `+ INSERT`, `~ UPDATE` (with what it was) and `- DELETE`, one line per row.
fn change_lines(message: &Value, columns: &[String]) -> String {
    let row_text = |row: &Value| -> String {
        columns
            .iter()
            .map(|c| format!("{c}={}", format::cell_text(&row[c])))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows = message["rows"].as_array().cloned().unwrap_or_default();
    let old = message["old_values"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut text = String::new();
    match message["change_type"].as_str().unwrap_or("") {
        "insert" => rows
            .iter()
            .for_each(|r| text.push_str(&format!("+ INSERT {}\n", row_text(r)))),
        "update" => rows.iter().enumerate().for_each(|(i, r)| {
            let was = old.get(i).map(row_text).unwrap_or_default();
            text.push_str(&format!("~ UPDATE {}  (was {})\n", row_text(r), was));
        }),
        "delete" => old
            .iter()
            .for_each(|r| text.push_str(&format!("- DELETE {}\n", row_text(r)))),
        other => text.push_str(&format!("? {other}\n")),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_statements_are_recognised() {
        assert!(is_subscribe("SUBSCRIBE TO app.t"));
        assert!(is_subscribe("  subscribe   to app.t WHERE x = 1;"));
        assert!(!is_subscribe("SELECT 'SUBSCRIBE TO'"));
        assert!(!is_subscribe("SUBSCRIBE"));
    }

    #[test]
    fn one_line_per_changed_row() {
        let columns = vec!["id".to_string(), "v".to_string()];
        let update = json!({"change_type": "update",
            "rows": [{"id": "1", "v": "b"}], "old_values": [{"id": "1", "v": "a"}]});
        assert_eq!(
            change_lines(&update, &columns),
            "~ UPDATE id=1, v=b  (was id=1, v=a)\n"
        );
        let insert = json!({"change_type": "insert", "rows": [{"id": "1", "v": null}, {"id": "2", "v": "x"}]});
        assert_eq!(
            change_lines(&insert, &columns),
            "+ INSERT id=1, v=NULL\n+ INSERT id=2, v=x\n"
        );
        let delete = json!({"change_type": "delete", "old_values": [{"id": "3", "v": "z"}]});
        assert_eq!(change_lines(&delete, &columns), "- DELETE id=3, v=z\n");
    }
}
