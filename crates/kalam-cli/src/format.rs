//! Printing results: aligned tables, JSON or CSV.

use crate::client::StatementResult;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// A cell as text: strings bare, NULL as `NULL`, the rest as JSON.
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// An aligned table in the style of psql, with a row count.
pub fn table(result: &StatementResult) -> String {
    let header: Vec<String> = result.columns.clone();
    let cells: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(cell_text)
                .map(|c| c.replace('\n', "\\n"))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in &cells {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(width(cell));
            }
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| {
            !result.rows.is_empty()
                && result.rows.iter().all(|r| match r.get(i) {
                    Some(Value::Number(_)) | Some(Value::Null) => true,
                    Some(Value::String(s)) => s.parse::<f64>().is_ok(),
                    _ => false,
                })
        })
        .collect();
    let pad = |text: &str, i: usize| {
        let fill = " ".repeat(widths[i].saturating_sub(width(text)));
        if numeric[i] {
            format!("{fill}{text}")
        } else {
            format!("{text}{fill}")
        }
    };
    let mut out = String::new();
    let line = |cells: Vec<String>| format!(" {} \n", cells.join(" | "));
    out.push_str(&line(
        header
            .iter()
            .enumerate()
            .map(|(i, h)| format!("{h:^w$}", w = widths[i]))
            .collect(),
    ));
    out.push_str(&format!(
        "{}\n",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    ));
    for row in &cells {
        out.push_str(&line(
            (0..widths.len())
                .map(|i| pad(row.get(i).map(String::as_str).unwrap_or(""), i))
                .collect(),
        ));
    }
    let n = result.rows.len();
    out.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
    out
}

fn csv_field(text: &str, delimiter: char) -> String {
    if text.contains([delimiter, '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub fn csv(result: &StatementResult) -> String {
    csv_with(result, b',', true)
}

/// CSV with this delimiter, with or without the header line; NULL is an
/// empty field.
pub fn csv_with(result: &StatementResult, delimiter: u8, header: bool) -> String {
    let d = char::from(delimiter);
    let mut out = String::new();
    if header {
        let names: Vec<String> = result.columns.iter().map(|c| csv_field(c, d)).collect();
        out.push_str(&names.join(&d.to_string()));
        out.push('\n');
    }
    for row in &result.rows {
        let fields: Vec<String> = row
            .iter()
            .map(|v| match v {
                Value::Null => String::new(),
                other => csv_field(&cell_text(other), d),
            })
            .collect();
        out.push_str(&fields.join(&d.to_string()));
        out.push('\n');
    }
    out
}

/// psql's expanded display (`\x`): one block per row, a line per column.
pub fn expanded(result: &StatementResult) -> String {
    if result.rows.is_empty() {
        return "(0 rows)\n".into();
    }
    let name_width = result.columns.iter().map(|c| width(c)).max().unwrap_or(0);
    let value_width = result
        .rows
        .iter()
        .flatten()
        .map(|v| width(&cell_text(v).replace('\n', "\\n")))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (n, row) in result.rows.iter().enumerate() {
        let label = format!("-[ RECORD {} ]", n + 1);
        let rule = (name_width + value_width + 3)
            .saturating_sub(width(&label))
            .max(1);
        out.push_str(&format!("{label}{}\n", "-".repeat(rule)));
        for (name, value) in result.columns.iter().zip(row) {
            let fill = " ".repeat(name_width - width(name));
            out.push_str(&format!(
                "{name}{fill} | {}\n",
                cell_text(value).replace('\n', "\\n")
            ));
        }
    }
    out
}

/// Rows as an array of objects keyed by column name.
pub fn json(result: &StatementResult) -> Value {
    if !result.has_rows {
        return serde_json::json!({
            "message": result.message,
            "row_count": result.row_count,
        });
    }
    Value::Array(
        result
            .rows
            .iter()
            .map(|row| {
                Value::Object(
                    result
                        .columns
                        .iter()
                        .cloned()
                        .zip(row.iter().cloned())
                        .collect(),
                )
            })
            .collect(),
    )
}

/// The result with TIMESTAMP cells (integer microseconds in the API) as
/// RFC 3339 dates in UTC, for the formats people read; JSON keeps the API's
/// integers.
pub fn readable(result: &StatementResult) -> StatementResult {
    let mut out = result.clone();
    for (i, t) in result.types.iter().enumerate() {
        if t != "Timestamp" {
            continue;
        }
        for row in &mut out.rows {
            let micros = match row.get(i) {
                Some(Value::Number(n)) => n.as_i64(),
                Some(Value::String(s)) => s.parse::<i64>().ok(),
                _ => None,
            };
            if let Some(micros) = micros {
                row[i] = Value::String(kalamdb_commons::timestamp_utc(micros));
            }
        }
    }
    out
}

/// One result as text in `format`.
pub fn render(result: &StatementResult, format: Format) -> String {
    render_with(result, format, false)
}

/// [`render`], with rows shown expanded (`\x`) in the table format.
pub fn render_with(result: &StatementResult, format: Format, expand: bool) -> String {
    let shown;
    let result = if format == Format::Json {
        result
    } else {
        shown = readable(result);
        &shown
    };
    match (format, result.has_rows) {
        (Format::Json, _) => {
            let mut text = serde_json::to_string_pretty(&json(result)).unwrap_or_default();
            text.push('\n');
            text
        }
        (Format::Table, true) if expand => expanded(result),
        (Format::Table, true) => table(result),
        (Format::Csv, true) => csv(result),
        (_, false) => format!(
            "{}\n",
            result
                .message
                .clone()
                .unwrap_or_else(|| format!("OK, {} row(s)", result.row_count))
        ),
    }
}

pub fn timing(elapsed: Duration) -> String {
    format!("Time: {:.3} ms\n", elapsed.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result() -> StatementResult {
        StatementResult {
            columns: vec!["id".into(), "name".into()],
            rows: vec![
                vec![json!("1"), json!("alice")],
                vec![json!("22"), json!(null)],
            ],
            row_count: 2,
            message: None,
            has_rows: true,
            ..Default::default()
        }
    }

    #[test]
    fn timestamps_read_as_dates_except_in_json() {
        let r = StatementResult {
            columns: vec!["at".into()],
            types: vec!["Timestamp".into()],
            rows: vec![vec![json!(1_704_164_645_000_000i64)], vec![json!(null)]],
            row_count: 2,
            message: None,
            has_rows: true,
        };
        assert_eq!(csv(&readable(&r)), "at\n2024-01-02T03:04:05Z\n\n");
        assert!(render(&r, Format::Table).contains("2024-01-02T03:04:05Z"));
        assert_eq!(json(&r)[0]["at"], 1_704_164_645_000_000i64);
    }

    #[test]
    fn aligned_table() {
        assert_eq!(
            table(&result()),
            " id | name  \n----+-------\n  1 | alice \n 22 | NULL  \n(2 rows)\n"
        );
    }

    #[test]
    fn expanded_rows() {
        assert_eq!(
            expanded(&result()),
            "-[ RECORD 1 ]-\nid   | 1\nname | alice\n-[ RECORD 2 ]-\nid   | 22\nname | NULL\n"
        );
        assert_eq!(csv_with(&result(), b';', false), "1;alice\n22;\n");
    }

    #[test]
    fn csv_and_json() {
        let mut r = result();
        r.rows[0][1] = json!("a,\"b\"");
        assert_eq!(csv(&r), "id,name\n1,\"a,\"\"b\"\"\"\n22,\n");
        assert_eq!(json(&result())[0]["name"], "alice");
    }
}
