//! Statement results as the JSON of `/v1/api/sql`, written straight to
//! bytes a batch at a time: a result is never held as a JSON tree, and a
//! large one can be sent while it is still being read.
//!
//! A body is `{"status":"success","results":[<result>,...],"took":<ms>}`
//! and a result is `{"schema":[...],"rows":[[...],...],"row_count":N,
//! "message":"...","as_user":"..."}` (schema and rows only for statements
//! that return rows, message only where there is one).

use super::cells::{column_cells, type_name};
use kalamdb_core::arrow::record_batch::RecordBatch;
use kalamdb_core::StatementResult;
use serde_json::{json, Value as Json};

/// The start of a success body, up to its first result.
pub fn body_head(out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"status":"success","results":["#);
}

/// The end of a success body, after its last result.
pub fn body_tail(out: &mut Vec<u8>, took_ms: f64) {
    out.extend_from_slice(b"],\"took\":");
    write_json(out, &json!(took_ms));
    out.push(b'}');
}

/// One result's fields before its rows: `{"schema":[...],"rows":[`, or `{`
/// for a statement without rows.
pub fn result_head(out: &mut Vec<u8>, result: &StatementResult) {
    out.push(b'{');
    if let Some(schema) = &result.schema {
        let fields: Vec<Json> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| json!({"name": f.name(), "data_type": type_name(f), "index": i}))
            .collect();
        out.extend_from_slice(b"\"schema\":");
        write_json(out, &Json::Array(fields));
        out.extend_from_slice(b",\"rows\":[");
    }
    // With no schema the fields that follow start without a comma.
}

/// The rows of one batch, each as an array of cells; `first` says whether
/// a row was written before (for the separating comma).
pub fn rows(out: &mut Vec<u8>, batch: &RecordBatch, first: &mut bool) {
    let columns: Vec<Vec<Json>> = batch.columns().iter().map(column_cells).collect();
    for r in 0..batch.num_rows() {
        if !std::mem::take(first) {
            out.push(b',');
        }
        out.push(b'[');
        for (c, column) in columns.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            write_json(out, &column[r]);
        }
        out.push(b']');
    }
}

/// One result's fields after its rows, given how many rows it had in all.
pub fn result_tail(out: &mut Vec<u8>, result: &StatementResult, row_count: usize) {
    if result.schema.is_some() {
        out.extend_from_slice(b"],");
    }
    out.extend_from_slice(b"\"row_count\":");
    write_json(out, &json!(row_count));
    if let Some(message) = &result.message {
        out.extend_from_slice(b",\"message\":");
        write_json(out, &json!(message));
    }
    out.extend_from_slice(b",\"as_user\":");
    write_json(out, &json!(result.as_user));
    out.push(b'}');
}

/// A whole result whose rows are all in `batches`.
pub fn result(out: &mut Vec<u8>, result: &StatementResult) {
    result_head(out, result);
    let mut first = true;
    for batch in &result.batches {
        rows(out, batch, &mut first);
    }
    result_tail(out, result, result.row_count);
}

/// A whole result as a JSON value (for error responses, whose completed
/// results are collected and small).
pub fn result_value(item: &StatementResult) -> Json {
    let mut out = Vec::new();
    result(&mut out, item);
    serde_json::from_slice(&out).expect("the encoder writes valid JSON")
}

fn write_json(out: &mut Vec<u8>, value: &Json) {
    serde_json::to_writer(out, value).expect("writing JSON to memory cannot fail");
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_core::arrow::array::{ArrayRef, Int32Array, StringArray};
    use kalamdb_core::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn query_result(batches: Vec<RecordBatch>) -> StatementResult {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        StatementResult {
            schema: Some(schema),
            row_count: batches.iter().map(|b| b.num_rows()).sum(),
            batches,
            rest: None,
            message: None,
            as_user: "u\"1".into(),
        }
    }

    fn batch(ids: Vec<i32>, texts: Vec<Option<&str>>) -> RecordBatch {
        let result = query_result(Vec::new());
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(ids)),
            Arc::new(StringArray::from(texts)),
        ];
        RecordBatch::try_new(result.schema.unwrap(), columns).unwrap()
    }

    #[test]
    fn a_body_is_valid_json_with_rows_across_batches() {
        let rows_result = query_result(vec![
            batch(vec![1, 2], vec![Some("a,\"]"), None]),
            batch(vec![], vec![]),
            batch(vec![3], vec![Some("ü\n")]),
        ]);
        let message = StatementResult {
            schema: None,
            batches: Vec::new(),
            rest: None,
            row_count: 2,
            message: Some("Inserted 2 row(s)".into()),
            as_user: "root".into(),
        };
        let mut out = Vec::new();
        body_head(&mut out);
        result(&mut out, &message);
        out.push(b',');
        result(&mut out, &rows_result);
        body_tail(&mut out, 1.5);
        let body: Json = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            body,
            json!({
                "status": "success",
                "took": 1.5,
                "results": [
                    {"row_count": 2, "message": "Inserted 2 row(s)", "as_user": "root"},
                    {
                        "schema": [
                            {"name": "id", "data_type": "Int", "index": 0},
                            {"name": "s", "data_type": "Text", "index": 1},
                        ],
                        "rows": [[1, "a,\"]"], [2, null], [3, "ü\n"]],
                        "row_count": 3,
                        "as_user": "u\"1",
                    },
                ],
            })
        );
    }

    #[test]
    fn an_empty_result_has_empty_rows() {
        let value = result_value(&query_result(Vec::new()));
        assert_eq!(value["rows"], json!([]));
        assert_eq!(value["row_count"], json!(0));
    }
}
