//! `system.datatypes`: each column type KalamDB accepts, with the Arrow
//! type its values are read as, so a client can show `TEXT` where a result
//! schema says `Utf8`.

use super::build;
use crate::provider::RequestScope;
use crate::schema::{arrow_type, field};
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::KalamType;
use std::sync::Arc;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("arrow_type", KalamType::Text, false),
        field("kalam_type", KalamType::Text, false),
        field("sql_name", KalamType::Text, false),
        field("description", KalamType::Text, false),
    ]))
}

/// Every type, its SQL name as `CREATE TABLE` takes it, and what it holds.
const TYPES: &[(KalamType, &str, &str)] = &[
    (KalamType::Boolean, "BOOLEAN", "true or false"),
    (KalamType::SmallInt, "SMALLINT", "16-bit signed integer"),
    (KalamType::Int, "INT", "32-bit signed integer"),
    (KalamType::BigInt, "BIGINT", "64-bit signed integer"),
    (KalamType::Float, "FLOAT", "32-bit floating point"),
    (KalamType::Double, "DOUBLE", "64-bit floating point"),
    (
        KalamType::Decimal {
            precision: 38,
            scale: 10,
        },
        "DECIMAL(p,s)",
        "exact decimal of up to 38 digits (shown here as DECIMAL(38,10))",
    ),
    (KalamType::Text, "TEXT", "UTF-8 string"),
    (
        KalamType::Timestamp,
        "TIMESTAMP",
        "date and time, microsecond precision, UTC",
    ),
    (KalamType::Date, "DATE", "calendar date"),
    (
        KalamType::Time,
        "TIME",
        "time of day, microsecond precision",
    ),
    (
        KalamType::Uuid,
        "UUID",
        "128-bit identifier, stored as its canonical text",
    ),
    (KalamType::Bytes, "BYTES", "binary data"),
    (KalamType::Json, "JSON", "JSON document, stored as text"),
];

pub fn rows(_services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(TYPES.iter().map(|(t, _, _)| arrow_type(*t).to_string())),
            build::text(TYPES.iter().map(|(t, _, _)| t.base_name())),
            build::text(TYPES.iter().map(|(_, sql, _)| *sql)),
            build::text(TYPES.iter().map(|(_, _, what)| *what)),
        ],
    )?)
}
