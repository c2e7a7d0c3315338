//! `Value`s into Arrow arrays, and Arrow arrays back into `Value`s.

use crate::error::{CoreError, Result};
use crate::schema::arrow_type;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimestampMicrosecondType,
};
use datafusion::arrow::util::display::FormatOptions;
use kalamdb_commons::{KalamType, Value};
use kalamdb_store::Cell;
use std::sync::Arc;

/// Builds one Arrow column from `Value`s of one column type.
pub enum ColumnBuilder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder),
    Text(StringBuilder),
    Bytes(BinaryBuilder),
    Timestamp(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
}

impl ColumnBuilder {
    pub fn new(t: KalamType, capacity: usize) -> Self {
        match t {
            KalamType::Boolean => Self::Bool(BooleanBuilder::with_capacity(capacity)),
            KalamType::SmallInt => Self::I16(Int16Builder::with_capacity(capacity)),
            KalamType::Int => Self::I32(Int32Builder::with_capacity(capacity)),
            KalamType::BigInt => Self::I64(Int64Builder::with_capacity(capacity)),
            KalamType::Float => Self::F32(Float32Builder::with_capacity(capacity)),
            KalamType::Double => Self::F64(Float64Builder::with_capacity(capacity)),
            KalamType::Decimal { .. } => Self::Decimal(
                Decimal128Builder::with_capacity(capacity).with_data_type(arrow_type(t)),
            ),
            KalamType::Text | KalamType::Uuid | KalamType::Json => {
                Self::Text(StringBuilder::with_capacity(capacity, capacity * 16))
            }
            KalamType::Bytes => Self::Bytes(BinaryBuilder::with_capacity(capacity, capacity * 16)),
            KalamType::Timestamp => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            KalamType::Date => Self::Date(Date32Builder::with_capacity(capacity)),
            KalamType::Time => Self::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
        }
    }

    pub fn append(&mut self, value: &Value) -> Result<()> {
        self.append_cell(Cell::from(value))
    }

    /// Appends a cell: a value's, or one read in place from a stored
    /// version.
    pub fn append_cell(&mut self, cell: Cell<'_>) -> Result<()> {
        match (self, cell) {
            (Self::Bool(b), Cell::Null) => b.append_null(),
            (Self::I16(b), Cell::Null) => b.append_null(),
            (Self::I32(b), Cell::Null) => b.append_null(),
            (Self::I64(b), Cell::Null) => b.append_null(),
            (Self::F32(b), Cell::Null) => b.append_null(),
            (Self::F64(b), Cell::Null) => b.append_null(),
            (Self::Decimal(b), Cell::Null) => b.append_null(),
            (Self::Text(b), Cell::Null) => b.append_null(),
            (Self::Bytes(b), Cell::Null) => b.append_null(),
            (Self::Timestamp(b), Cell::Null) => b.append_null(),
            (Self::Date(b), Cell::Null) => b.append_null(),
            (Self::Time(b), Cell::Null) => b.append_null(),
            (Self::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Self::I16(b), Cell::I16(v)) => b.append_value(v),
            (Self::I32(b), Cell::I32(v)) => b.append_value(v),
            (Self::I64(b), Cell::I64(v)) => b.append_value(v),
            (Self::F32(b), Cell::F32(v)) => b.append_value(v),
            (Self::F64(b), Cell::F64(v)) => b.append_value(v),
            (Self::Decimal(b), Cell::Decimal(v)) => b.append_value(v),
            (Self::Text(b), Cell::Text(v)) => b.append_value(v),
            (Self::Bytes(b), Cell::Bytes(v)) => b.append_value(v),
            (Self::Timestamp(b), Cell::Timestamp(v)) => b.append_value(v),
            (Self::Date(b), Cell::Date(v)) => b.append_value(v),
            (Self::Time(b), Cell::Time(v)) => b.append_value(v),
            (_, other) => {
                return Err(CoreError::Internal(format!(
                    "stored cell {other:?} does not match its column type"
                )))
            }
        }
        Ok(())
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::I16(b) => Arc::new(b.finish()),
            Self::I32(b) => Arc::new(b.finish()),
            Self::I64(b) => Arc::new(b.finish()),
            Self::F32(b) => Arc::new(b.finish()),
            Self::F64(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
            Self::Text(b) => Arc::new(b.finish()),
            Self::Bytes(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Time(b) => Arc::new(b.finish()),
        }
    }
}

/// Casts an array to the storage type of a column, failing (not nulling) on
/// values that do not fit.
pub fn cast_to_column(array: &ArrayRef, t: KalamType) -> Result<ArrayRef> {
    let target = arrow_type(t);
    if array.data_type() == &target {
        return Ok(array.clone());
    }
    let options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    cast_with_options(array, &target, &options).map_err(|e| {
        // An integer too large for a narrower integer column.
        let range = array.data_type().is_integer() && target.is_integer();
        CoreError::exec(format!(
            "{}cannot convert {} to {}: {e}",
            if range { "integer out of range: " } else { "" },
            array.data_type(),
            t.name()
        ))
    })
}

/// Reads row `row` of an array already cast with [`cast_to_column`].
pub fn value_at(array: &ArrayRef, row: usize, t: KalamType) -> Result<Value> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let v = match t {
        KalamType::Boolean => Value::Bool(array.as_boolean().value(row)),
        KalamType::SmallInt => Value::I16(array.as_primitive::<Int16Type>().value(row)),
        KalamType::Int => Value::I32(array.as_primitive::<Int32Type>().value(row)),
        KalamType::BigInt => Value::I64(array.as_primitive::<Int64Type>().value(row)),
        KalamType::Float => Value::F32(array.as_primitive::<Float32Type>().value(row)),
        KalamType::Double => Value::F64(array.as_primitive::<Float64Type>().value(row)),
        KalamType::Decimal { .. } => {
            Value::Decimal(array.as_primitive::<Decimal128Type>().value(row))
        }
        KalamType::Text | KalamType::Uuid | KalamType::Json => {
            Value::Text(array.as_string::<i32>().value(row).to_string())
        }
        KalamType::Bytes => Value::Bytes(array.as_binary::<i32>().value(row).to_vec()),
        KalamType::Timestamp => {
            Value::Timestamp(array.as_primitive::<TimestampMicrosecondType>().value(row))
        }
        KalamType::Date => Value::Date(array.as_primitive::<Date32Type>().value(row)),
        KalamType::Time => Value::Time(array.as_primitive::<Time64MicrosecondType>().value(row)),
    };
    Ok(v)
}
