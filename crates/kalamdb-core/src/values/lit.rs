//! Literals and request parameters before they meet a column type.

use crate::error::{CoreError, Result};
use datafusion::scalar::ScalarValue;

/// A literal value as written in SQL or sent as a `$n` parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Null,
    Bool(bool),
    /// A numeric literal, kept as text so DECIMAL columns lose nothing.
    Number(String),
    Str(String),
}

/// Turns one JSON request parameter into a literal.
pub fn param_to_lit(index: usize, value: &serde_json::Value) -> Result<Lit> {
    Ok(match value {
        serde_json::Value::Null => Lit::Null,
        serde_json::Value::Bool(b) => Lit::Bool(*b),
        serde_json::Value::Number(n) => Lit::Number(n.to_string()),
        serde_json::Value::String(s) => Lit::Str(s.clone()),
        // A parameter is one scalar; silently binding an object as its text
        // would hide a client's mistake. JSON columns take the JSON as a
        // string parameter.
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
            return Err(CoreError::InvalidParameter(format!(
                "parameter ${} is a JSON {}; parameters must be strings, numbers, \
                 booleans or null (send JSON for a JSON column as a string)",
                index + 1,
                if value.is_array() { "array" } else { "object" }
            )))
        }
    })
}

/// Turns one JSON request parameter into a DataFusion scalar for queries.
pub fn param_to_scalar(index: usize, value: &serde_json::Value) -> Result<ScalarValue> {
    Ok(match param_to_lit(index, value)? {
        Lit::Null => ScalarValue::Null,
        Lit::Bool(b) => ScalarValue::Boolean(Some(b)),
        Lit::Str(s) => ScalarValue::Utf8(Some(s)),
        Lit::Number(n) => match n.parse::<i64>() {
            Ok(i) => ScalarValue::Int64(Some(i)),
            Err(_) => n
                .parse::<f64>()
                .map(|f| ScalarValue::Float64(Some(f)))
                .map_err(|_| {
                    CoreError::InvalidParameter(format!(
                        "parameter ${}: invalid number {n}",
                        index + 1
                    ))
                })?,
        },
    })
}
