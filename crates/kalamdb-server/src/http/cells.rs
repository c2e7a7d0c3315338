//! Arrow results as the JSON cells clients expect: 64-bit integers and
//! decimals as strings (JavaScript precision), smaller numbers as numbers,
//! timestamps as integer microseconds, everything else as text.

use kalamdb_core::arrow::array::{Array, ArrayRef, AsArray};
use kalamdb_core::arrow::datatypes::Field;
use kalamdb_core::arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use kalamdb_core::arrow::util::display::{ArrayFormatter, FormatOptions};
use kalamdb_core::KALAM_TYPE_KEY;
use serde_json::Value as Json;

/// The type name shown in a result schema.
pub fn type_name(field: &Field) -> String {
    if let Some(name) = field.metadata().get(KALAM_TYPE_KEY) {
        return name.clone();
    }
    match field.data_type() {
        DataType::Null => "Null".into(),
        DataType::Boolean => "Boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "SmallInt".into(),
        DataType::Int32 | DataType::UInt16 => "Int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "BigInt".into(),
        DataType::Float16 | DataType::Float32 => "Float".into(),
        DataType::Float64 => "Double".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("Decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "Text".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "Bytes".into(),
        DataType::Timestamp(_, _) => "Timestamp".into(),
        DataType::Date32 | DataType::Date64 => "Date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "Time".into(),
        other => other.to_string(),
    }
}

fn float(v: f64) -> Json {
    serde_json::Number::from_f64(v)
        .map(Json::Number)
        .unwrap_or_else(|| Json::String(v.to_string()))
}

fn hex(bytes: &[u8]) -> Json {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("\\x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    Json::String(s)
}

/// Encodes one column; returns one JSON value per row.
pub fn column_cells(array: &ArrayRef) -> Vec<Json> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    macro_rules! each {
        ($f:expr) => {
            for i in 0..n {
                out.push(if array.is_null(i) { Json::Null } else { $f(i) });
            }
        };
    }
    match array.data_type() {
        DataType::Null => out.resize(n, Json::Null),
        DataType::Boolean => {
            let a = array.as_boolean();
            each!(|i| Json::Bool(a.value(i)))
        }
        DataType::Int8 => {
            let a = array.as_primitive::<Int8Type>();
            each!(|i| Json::from(a.value(i)))
        }
        DataType::Int16 => {
            let a = array.as_primitive::<Int16Type>();
            each!(|i| Json::from(a.value(i)))
        }
        DataType::Int32 => {
            let a = array.as_primitive::<Int32Type>();
            each!(|i| Json::from(a.value(i)))
        }
        DataType::UInt8 => {
            let a = array.as_primitive::<UInt8Type>();
            each!(|i| Json::from(a.value(i)))
        }
        DataType::UInt16 => {
            let a = array.as_primitive::<UInt16Type>();
            each!(|i| Json::from(a.value(i)))
        }
        DataType::UInt32 => {
            let a = array.as_primitive::<UInt32Type>();
            each!(|i| Json::from(a.value(i)))
        }
        DataType::Int64 => {
            let a = array.as_primitive::<Int64Type>();
            each!(|i| Json::String(a.value(i).to_string()))
        }
        DataType::UInt64 => {
            let a = array.as_primitive::<UInt64Type>();
            each!(|i| Json::String(a.value(i).to_string()))
        }
        DataType::Float32 => {
            let a = array.as_primitive::<Float32Type>();
            each!(|i| float(f64::from(a.value(i))))
        }
        DataType::Float64 => {
            let a = array.as_primitive::<Float64Type>();
            each!(|i| float(a.value(i)))
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            each!(|i| Json::String(a.value(i).to_string()))
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            each!(|i| Json::String(a.value(i).to_string()))
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            each!(|i| Json::String(a.value(i).to_string()))
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            each!(|i| hex(a.value(i)))
        }
        DataType::Timestamp(unit, _) => {
            let micros: Box<dyn Fn(usize) -> i64> = match unit {
                TimeUnit::Second => {
                    let a = array.as_primitive::<TimestampSecondType>();
                    Box::new(move |i| a.value(i).saturating_mul(1_000_000))
                }
                TimeUnit::Millisecond => {
                    let a = array.as_primitive::<TimestampMillisecondType>();
                    Box::new(move |i| a.value(i).saturating_mul(1_000))
                }
                TimeUnit::Microsecond => {
                    let a = array.as_primitive::<TimestampMicrosecondType>();
                    Box::new(move |i| a.value(i))
                }
                TimeUnit::Nanosecond => {
                    let a = array.as_primitive::<TimestampNanosecondType>();
                    Box::new(move |i| a.value(i) / 1_000)
                }
            };
            each!(|i| Json::from(micros(i)))
        }
        _ => formatted(array, &mut out),
    }
    out
}

/// Anything else (decimals, dates, intervals, lists): Arrow's text form.
fn formatted(array: &ArrayRef, out: &mut Vec<Json>) {
    let options = FormatOptions::default();
    match ArrayFormatter::try_new(array.as_ref(), &options) {
        Ok(formatter) => {
            for i in 0..array.len() {
                out.push(if array.is_null(i) {
                    Json::Null
                } else {
                    Json::String(formatter.value(i).to_string())
                });
            }
        }
        Err(_) => out.resize(array.len(), Json::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_core::arrow::array::{
        Decimal128Array, Int16Array, Int64Array, StringArray, TimestampNanosecondArray,
    };
    use std::sync::Arc;

    #[test]
    fn cells_follow_the_reference_encoding() {
        let big: ArrayRef = Arc::new(Int64Array::from(vec![Some(9_007_199_254_740_993), None]));
        assert_eq!(
            column_cells(&big),
            vec![Json::from("9007199254740993"), Json::Null]
        );
        let small: ArrayRef = Arc::new(Int16Array::from(vec![-3]));
        assert_eq!(column_cells(&small), vec![Json::from(-3)]);
        let dec: ArrayRef = Arc::new(
            Decimal128Array::from(vec![12345])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        );
        assert_eq!(column_cells(&dec), vec![Json::from("123.45")]);
        let ts: ArrayRef = Arc::new(TimestampNanosecondArray::from(vec![1_500_000]));
        assert_eq!(column_cells(&ts), vec![Json::from(1_500)]);
        let text: ArrayRef = Arc::new(StringArray::from(vec!["a"]));
        assert_eq!(column_cells(&text), vec![Json::from("a")]);
    }
}
