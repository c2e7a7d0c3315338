//! Table definitions as Arrow schemas.

use crate::catalog::TableDef;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use kalamdb_commons::KalamType;
use std::collections::HashMap;
use std::sync::Arc;

/// Field metadata key carrying the declared KalamDB type, so result schemas
/// can say `Uuid` or `Json` where Arrow only knows strings.
pub const KALAM_TYPE_KEY: &str = "kalam.type";
pub const SEQ_COLUMN: &str = "_seq";
pub const DELETED_COLUMN: &str = "_deleted";

pub fn arrow_type(t: KalamType) -> DataType {
    match t {
        KalamType::Boolean => DataType::Boolean,
        KalamType::SmallInt => DataType::Int16,
        KalamType::Int => DataType::Int32,
        KalamType::BigInt => DataType::Int64,
        KalamType::Float => DataType::Float32,
        KalamType::Double => DataType::Float64,
        KalamType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        KalamType::Text | KalamType::Uuid | KalamType::Json => DataType::Utf8,
        KalamType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        KalamType::Date => DataType::Date32,
        KalamType::Time => DataType::Time64(TimeUnit::Microsecond),
        KalamType::Bytes => DataType::Binary,
    }
}

pub fn field(name: &str, t: KalamType, nullable: bool) -> Field {
    Field::new(name, arrow_type(t), nullable)
        .with_metadata(HashMap::from([(KALAM_TYPE_KEY.to_string(), t.name())]))
}

/// The table's schema: its columns, then `_seq` and `_deleted` when asked for.
pub fn table_schema(table: &TableDef, with_system_columns: bool) -> SchemaRef {
    let mut fields: Vec<Field> = table
        .columns
        .iter()
        .map(|c| field(&c.name, c.data_type, c.nullable))
        .collect();
    if with_system_columns {
        fields.push(field(SEQ_COLUMN, KalamType::BigInt, false));
        fields.push(field(DELETED_COLUMN, KalamType::Boolean, false));
    }
    Arc::new(Schema::new(fields))
}

/// The schema of a cold file: the table's columns and `_seq`, `_deleted`.
/// Every column but the primary key is nullable whatever the table
/// declares, because tombstones written before DELETE kept the deleted
/// row hold only their key, with NULL in every other column. NOT NULL is enforced by writes,
/// not by the file; readers take columns by name and cast them to the
/// table's types, so files written with non-nullable fields still read.
pub fn file_schema(table: &TableDef) -> SchemaRef {
    let pk = table.pk_index();
    let mut fields: Vec<Field> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| field(&c.name, c.data_type, c.nullable || i != pk))
        .collect();
    fields.push(field(SEQ_COLUMN, KalamType::BigInt, false));
    fields.push(field(DELETED_COLUMN, KalamType::Boolean, false));
    Arc::new(Schema::new(fields))
}
