//! The column types a KalamDB table can declare.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A declared column type. Names follow the ones existing clients see in
/// result schemas (`BigInt`, `Text`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum KalamType {
    Boolean,
    SmallInt,
    Int,
    BigInt,
    Float,
    Double,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Text,
    Timestamp,
    Date,
    /// Time of day, microsecond precision.
    Time,
    Uuid,
    Bytes,
    Json,
}

impl KalamType {
    /// The name used in result schemas and `DESCRIBE TABLE`.
    pub fn name(&self) -> String {
        match self {
            KalamType::Decimal { precision, scale } => format!("Decimal({precision},{scale})"),
            other => other.base_name().to_string(),
        }
    }

    /// The name without parameters, e.g. `Decimal`.
    pub fn base_name(&self) -> &'static str {
        match self {
            KalamType::Boolean => "Boolean",
            KalamType::SmallInt => "SmallInt",
            KalamType::Int => "Int",
            KalamType::BigInt => "BigInt",
            KalamType::Float => "Float",
            KalamType::Double => "Double",
            KalamType::Decimal { .. } => "Decimal",
            KalamType::Text => "Text",
            KalamType::Timestamp => "Timestamp",
            KalamType::Date => "Date",
            KalamType::Time => "Time",
            KalamType::Uuid => "Uuid",
            KalamType::Bytes => "Bytes",
            KalamType::Json => "Json",
        }
    }

    /// The SQL spelling, used when KalamDB writes SQL for DataFusion (casts).
    pub fn sql_name(&self) -> String {
        match self {
            KalamType::Boolean => "BOOLEAN".into(),
            KalamType::SmallInt => "SMALLINT".into(),
            KalamType::Int => "INT".into(),
            KalamType::BigInt => "BIGINT".into(),
            KalamType::Float => "REAL".into(),
            KalamType::Double => "DOUBLE".into(),
            KalamType::Decimal { precision, scale } => format!("DECIMAL({precision},{scale})"),
            KalamType::Text | KalamType::Uuid | KalamType::Json => "VARCHAR".into(),
            KalamType::Timestamp => "TIMESTAMP".into(),
            KalamType::Date => "DATE".into(),
            KalamType::Time => "TIME".into(),
            KalamType::Bytes => "BYTEA".into(),
        }
    }

    /// Parses a type name as written in KalamDB metadata (`KalamType::name`).
    pub fn from_name(name: &str) -> Option<KalamType> {
        let t = match name {
            "Boolean" => KalamType::Boolean,
            "SmallInt" => KalamType::SmallInt,
            "Int" => KalamType::Int,
            "BigInt" => KalamType::BigInt,
            "Float" => KalamType::Float,
            "Double" => KalamType::Double,
            "Text" => KalamType::Text,
            "Timestamp" => KalamType::Timestamp,
            "Date" => KalamType::Date,
            "Time" => KalamType::Time,
            "Uuid" => KalamType::Uuid,
            "Bytes" => KalamType::Bytes,
            "Json" => KalamType::Json,
            other => {
                let inner = other.strip_prefix("Decimal(")?.strip_suffix(')')?;
                let (p, s) = inner.split_once(',')?;
                KalamType::Decimal {
                    precision: p.trim().parse().ok()?,
                    scale: s.trim().parse().ok()?,
                }
            }
        };
        Some(t)
    }

    /// Whether values of this type can be a primary key.
    pub fn can_be_primary_key(&self) -> bool {
        !matches!(
            self,
            KalamType::Float | KalamType::Double | KalamType::Json | KalamType::Bytes
        )
    }
}

impl fmt::Display for KalamType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let all = [
            KalamType::Boolean,
            KalamType::SmallInt,
            KalamType::Int,
            KalamType::BigInt,
            KalamType::Float,
            KalamType::Double,
            KalamType::Decimal {
                precision: 12,
                scale: 3,
            },
            KalamType::Text,
            KalamType::Timestamp,
            KalamType::Date,
            KalamType::Time,
            KalamType::Uuid,
            KalamType::Bytes,
            KalamType::Json,
        ];
        for t in all {
            assert_eq!(KalamType::from_name(&t.name()), Some(t));
        }
        assert_eq!(KalamType::from_name("Nope"), None);
    }
}
