//! KalamDB's id functions as SQL functions, so `SNOWFLAKE_ID()`,
//! `UUID_V7()` and `ULID()` work anywhere an expression may stand, not only
//! as column defaults. All are volatile: a new value per row.

use crate::ids::SnowflakeGen;
use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Registers `snowflake_id()`, `uuid_v7()` and `ulid()`.
pub fn register(state: &mut SessionState, ids: Arc<SnowflakeGen>) -> Result<()> {
    state.register_udf(Arc::new(ScalarUDF::new_from_impl(IdFn::new(
        IdKind::Snowflake(ids),
    ))))?;
    state.register_udf(Arc::new(ScalarUDF::new_from_impl(IdFn::new(
        IdKind::UuidV7,
    ))))?;
    state.register_udf(Arc::new(ScalarUDF::new_from_impl(IdFn::new(IdKind::Ulid))))?;
    Ok(())
}

#[derive(Debug)]
enum IdKind {
    Snowflake(Arc<SnowflakeGen>),
    UuidV7,
    Ulid,
}

#[derive(Debug)]
struct IdFn {
    kind: IdKind,
    signature: Signature,
}

impl IdFn {
    fn new(kind: IdKind) -> Self {
        Self {
            kind,
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

// One function of each kind exists per engine; the name identifies it.
impl PartialEq for IdFn {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

impl Eq for IdFn {}

impl Hash for IdFn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl ScalarUDFImpl for IdFn {
    fn name(&self) -> &str {
        match self.kind {
            IdKind::Snowflake(_) => "snowflake_id",
            IdKind::UuidV7 => "uuid_v7",
            IdKind::Ulid => "ulid",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            IdKind::Snowflake(_) => DataType::Int64,
            IdKind::UuidV7 | IdKind::Ulid => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        Ok(ColumnarValue::Array(match &self.kind {
            IdKind::Snowflake(ids) => Arc::new(Int64Array::from_iter_values(
                (0..rows).map(|_| ids.next_id()),
            )),
            IdKind::UuidV7 => Arc::new(StringArray::from_iter_values(
                (0..rows).map(|_| crate::ids::uuid_v7()),
            )),
            IdKind::Ulid => Arc::new(StringArray::from_iter_values(
                (0..rows).map(|_| crate::ids::ulid()),
            )),
        }))
    }
}
