//! SQL type names to KalamDB column types.

use crate::error::err;
use crate::ParseError;
use kalamdb_commons::KalamType;
use sqlparser::ast::{DataType, ExactNumberInfo, TimezoneInfo};

/// Largest DECIMAL precision (Arrow's Decimal128).
const MAX_DECIMAL_PRECISION: u64 = 38;

/// Maps a declared SQL type to a column type. `SERIAL`/`BIGSERIAL` map to
/// integers; the caller turns them into `DEFAULT SNOWFLAKE_ID()`.
pub fn kalam_type_of(data_type: &DataType) -> Result<KalamType, ParseError> {
    use DataType as D;
    let t = match data_type {
        D::Bool | D::Boolean => KalamType::Boolean,
        D::SmallInt(_) | D::Int2(_) | D::Int16 => KalamType::SmallInt,
        D::Int(_) | D::Integer(_) | D::Int4(_) | D::Int32 => KalamType::Int,
        D::BigInt(_) | D::Int8(_) | D::Int64 => KalamType::BigInt,
        D::Real | D::Float4 => KalamType::Float,
        D::Float(info) => match info {
            // FLOAT(p) with p > 24 is double precision, as in PostgreSQL.
            ExactNumberInfo::Precision(p) if *p > 24 => KalamType::Double,
            _ => KalamType::Float,
        },
        D::Double(_) | D::DoublePrecision | D::Float8 => KalamType::Double,
        D::Decimal(info) | D::Numeric(info) => decimal(info)?,
        D::Text | D::Varchar(_) | D::CharacterVarying(_) | D::String(_) | D::Char(_) => {
            KalamType::Text
        }
        D::Timestamp(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone)
        | D::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz)
        | D::Datetime(_) => KalamType::Timestamp,
        D::Date => KalamType::Date,
        D::Time(_, TimezoneInfo::None | TimezoneInfo::WithoutTimeZone) => KalamType::Time,
        D::Uuid => KalamType::Uuid,
        D::Bytea | D::Blob(_) | D::Binary(_) | D::Varbinary(_) | D::Bytes(_) => KalamType::Bytes,
        D::JSON | D::JSONB => KalamType::Json,
        D::Custom(name, args) if args.is_empty() => {
            match name.to_string().to_ascii_uppercase().as_str() {
                "SERIAL" => KalamType::Int,
                "BIGSERIAL" => KalamType::BigInt,
                "SMALLSERIAL" => KalamType::SmallInt,
                "TIMESTAMPTZ" => KalamType::Timestamp,
                "BYTES" => KalamType::Bytes,
                "JSON" => KalamType::Json,
                _ => return err(format!("unsupported column type {data_type}")),
            }
        }
        other => return err(format!("unsupported column type {other}")),
    };
    Ok(t)
}

/// Whether the declared type is one of the SERIAL family.
pub fn is_serial(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Custom(name, _)
        if matches!(name.to_string().to_ascii_uppercase().as_str(), "SERIAL" | "BIGSERIAL" | "SMALLSERIAL"))
}

fn decimal(info: &ExactNumberInfo) -> Result<KalamType, ParseError> {
    let (precision, scale) = match info {
        ExactNumberInfo::None => (MAX_DECIMAL_PRECISION, 0),
        ExactNumberInfo::Precision(p) => (*p, 0),
        ExactNumberInfo::PrecisionAndScale(p, s) => (*p, *s),
    };
    if precision == 0 || precision > MAX_DECIMAL_PRECISION {
        return err(format!(
            "DECIMAL precision must be between 1 and {MAX_DECIMAL_PRECISION}"
        ));
    }
    if scale < 0 || scale as u64 > precision {
        return err("DECIMAL scale must be between 0 and the precision");
    }
    Ok(KalamType::Decimal {
        precision: precision as u8,
        scale: scale as i8,
    })
}
