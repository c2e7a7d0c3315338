//! Giving a literal or a computed scalar the type of the column it goes into.

use super::arrow_io::{cast_to_column, value_at};
use super::lit::Lit;
use crate::error::{CoreError, Result};
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::scalar::ScalarValue;
use kalamdb_commons::{KalamType, Value};
use std::sync::Arc;

fn mismatch(column: &str, t: KalamType, shown: &str) -> CoreError {
    let shown = kalamdb_commons::clip(shown, 64);
    CoreError::exec(format!(
        "invalid value '{shown}' for column '{column}' of type {}",
        t.name()
    ))
}

/// Converts a literal for a column of type `t`.
pub fn coerce_lit(lit: &Lit, t: KalamType, column: &str) -> Result<Value> {
    match lit {
        Lit::Null => Ok(Value::Null),
        Lit::Bool(b) => match t {
            KalamType::Boolean => Ok(Value::Bool(*b)),
            KalamType::Text => Ok(Value::Text(b.to_string())),
            KalamType::Json => Ok(Value::Text(b.to_string())),
            _ => Err(mismatch(column, t, &b.to_string())),
        },
        Lit::Number(n) => coerce_number(n, t, column),
        Lit::Str(s) => coerce_str(s, t, column),
    }
}

fn parse_int(text: &str, t: KalamType, column: &str) -> Result<Value> {
    let v: i64 = text.trim().parse().map_err(|_| mismatch(column, t, text))?;
    let out_of_range = || {
        CoreError::exec(format!(
            "value {v} is out of range for column '{column}' of type {}",
            t.name()
        ))
    };
    Ok(match t {
        KalamType::SmallInt => Value::I16(i16::try_from(v).map_err(|_| out_of_range())?),
        KalamType::Int => Value::I32(i32::try_from(v).map_err(|_| out_of_range())?),
        _ => Value::I64(v),
    })
}

/// Converts numeric text as written in SQL for a column of type `t`.
pub fn coerce_number(n: &str, t: KalamType, column: &str) -> Result<Value> {
    match t {
        KalamType::SmallInt | KalamType::Int | KalamType::BigInt => parse_int(n, t, column),
        KalamType::Float => n
            .parse::<f32>()
            .map(Value::F32)
            .map_err(|_| mismatch(column, t, n)),
        KalamType::Double => n
            .parse::<f64>()
            .map(Value::F64)
            .map_err(|_| mismatch(column, t, n)),
        KalamType::Decimal { .. } => cast_str(n, t, column),
        KalamType::Text | KalamType::Json => Ok(Value::Text(n.to_string())),
        // Integers into TIMESTAMP are microseconds, matching how results show them.
        KalamType::Timestamp => n
            .parse::<i64>()
            .map(Value::Timestamp)
            .map_err(|_| mismatch(column, t, n)),
        KalamType::Boolean => match n {
            "0" => Ok(Value::Bool(false)),
            "1" => Ok(Value::Bool(true)),
            _ => Err(mismatch(column, t, n)),
        },
        KalamType::Date | KalamType::Time | KalamType::Uuid | KalamType::Bytes => {
            Err(mismatch(column, t, n))
        }
    }
}

/// Converts a string literal for a column of type `t`.
pub fn coerce_str(s: &str, t: KalamType, column: &str) -> Result<Value> {
    match t {
        KalamType::Text => Ok(Value::Text(s.to_string())),
        KalamType::Json => {
            serde_json::from_str::<serde_json::Value>(s)
                .map_err(|e| CoreError::exec(format!("invalid JSON for column '{column}': {e}")))?;
            Ok(Value::Text(s.to_string()))
        }
        KalamType::Uuid => uuid::Uuid::parse_str(s.trim())
            .map(|u| Value::Text(u.hyphenated().to_string()))
            .map_err(|_| mismatch(column, t, s)),
        KalamType::Boolean => match s.trim().to_ascii_lowercase().as_str() {
            "t" | "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
            "f" | "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(mismatch(column, t, s)),
        },
        KalamType::SmallInt | KalamType::Int | KalamType::BigInt => parse_int(s, t, column),
        KalamType::Float | KalamType::Double => coerce_number(s.trim(), t, column),
        KalamType::Bytes => Ok(Value::Bytes(match s.strip_prefix("\\x") {
            Some(hex) => decode_hex(hex).ok_or_else(|| mismatch(column, t, s))?,
            None => s.as_bytes().to_vec(),
        })),
        KalamType::Decimal { .. } | KalamType::Timestamp | KalamType::Date | KalamType::Time => {
            cast_str(s, t, column)
        }
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses text with Arrow's cast rules (timestamps, dates, decimals).
fn cast_str(s: &str, t: KalamType, column: &str) -> Result<Value> {
    let array: ArrayRef = Arc::new(StringArray::from(vec![s.trim()]));
    let cast = cast_to_column(&array, t).map_err(|_| mismatch(column, t, s))?;
    let value = value_at(&cast, 0, t)?;
    if value.is_null() {
        return Err(mismatch(column, t, s));
    }
    Ok(value)
}

/// Checks a value already of the column's storage type against the rules
/// Arrow does not know (UUID and JSON text).
pub fn validate_value(value: Value, t: KalamType, column: &str) -> Result<Value> {
    match (&value, t) {
        (Value::Text(s), KalamType::Uuid | KalamType::Json) => coerce_str(s, t, column),
        _ => Ok(value),
    }
}

/// Converts a value computed by DataFusion for a column of type `t`.
pub fn coerce_scalar(scalar: &ScalarValue, t: KalamType, column: &str) -> Result<Value> {
    if scalar.is_null() {
        return Ok(Value::Null);
    }
    match scalar {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::Utf8View(Some(s))
        | ScalarValue::LargeUtf8(Some(s)) => return coerce_str(s, t, column),
        ScalarValue::Boolean(Some(b)) => return coerce_lit(&Lit::Bool(*b), t, column),
        _ => {}
    }
    if matches!(t, KalamType::Uuid | KalamType::Json) {
        return Err(mismatch(column, t, &scalar.to_string()));
    }
    let array = scalar.to_array().map_err(CoreError::from)?;
    let cast = cast_to_column(&array, t).map_err(|_| mismatch(column, t, &scalar.to_string()))?;
    value_at(&cast, 0, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_coerce_like_a_database() {
        let n = |s: &str| Lit::Number(s.into());
        let s = |s: &str| Lit::Str(s.into());
        assert_eq!(
            coerce_lit(&n("7"), KalamType::SmallInt, "c").unwrap(),
            Value::I16(7)
        );
        assert!(coerce_lit(&n("70000"), KalamType::SmallInt, "c").is_err());
        assert!(coerce_lit(&n("1.5"), KalamType::Int, "c").is_err());
        assert_eq!(
            coerce_lit(&s("42"), KalamType::BigInt, "c").unwrap(),
            Value::I64(42)
        );
        assert_eq!(
            coerce_lit(
                &n("12.345"),
                KalamType::Decimal {
                    precision: 10,
                    scale: 3
                },
                "c"
            )
            .unwrap(),
            Value::Decimal(12345)
        );
        assert!(coerce_lit(&s("abc"), KalamType::Int, "c").is_err());
        assert_eq!(
            coerce_lit(&s("t"), KalamType::Boolean, "c").unwrap(),
            Value::Bool(true)
        );
        assert!(coerce_lit(&s("maybe"), KalamType::Boolean, "c").is_err());
        assert_eq!(
            coerce_lit(&s("2024-01-02T03:04:05Z"), KalamType::Timestamp, "c").unwrap(),
            Value::Timestamp(1_704_164_645_000_000)
        );
        assert_eq!(
            coerce_lit(&s("1970-01-03"), KalamType::Date, "c").unwrap(),
            Value::Date(2)
        );
        assert!(coerce_lit(&s("not a date"), KalamType::Date, "c").is_err());
        assert_eq!(
            coerce_lit(&s("13:45:30.25"), KalamType::Time, "c").unwrap(),
            Value::Time(49_530_250_000)
        );
        assert!(coerce_lit(&s("25:00:00"), KalamType::Time, "c").is_err());
        assert_eq!(
            coerce_lit(
                &s("0190A0B0-1111-7222-8333-444455556666"),
                KalamType::Uuid,
                "c"
            )
            .unwrap(),
            Value::Text("0190a0b0-1111-7222-8333-444455556666".into())
        );
        assert!(coerce_lit(&s("nope"), KalamType::Uuid, "c").is_err());
        assert!(coerce_lit(&s("{\"a\":"), KalamType::Json, "c").is_err());
        assert_eq!(
            coerce_lit(&s("\\x00ff"), KalamType::Bytes, "c").unwrap(),
            Value::Bytes(vec![0, 255])
        );
    }

    #[test]
    fn scalars_coerce_with_range_checks() {
        let big = ScalarValue::Int64(Some(1 << 40));
        assert!(coerce_scalar(&big, KalamType::Int, "c").is_err());
        assert_eq!(
            coerce_scalar(&ScalarValue::Int64(Some(5)), KalamType::Int, "c").unwrap(),
            Value::I32(5)
        );
        assert_eq!(
            coerce_scalar(&ScalarValue::Float64(Some(2.5)), KalamType::Double, "c").unwrap(),
            Value::F64(2.5)
        );
    }
}
