//! Functions whose result can be far larger than their arguments
//! (`repeat('x', 1500000000)`, `range(1, 2000000000)`), wrapped so that the
//! size they would build is checked before they build it. DataFusion's
//! memory pool only sees what operators reserve, not what a function
//! allocates, so without this one call could take all the memory.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{resources_datafusion_err, Result, ScalarValue};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use std::sync::Arc;

/// How a function's result size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(s, n)`: n copies of s.
    Repeat,
    /// `lpad/rpad(s, n [, fill])`: n characters.
    Pad,
    /// `array_repeat(x, n)`, `array_resize(a, n)`: n elements.
    Elements,
    /// `range/generate_series([start,] stop [, step])`: (stop-start)/step.
    Series,
    /// `replace(s, from, to)`: every `from` in s becomes `to`.
    Replace,
}

const GUARDED: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("array_repeat", Growth::Elements),
    ("array_resize", Growth::Elements),
    ("range", Growth::Series),
    ("generate_series", Growth::Series),
    ("replace", Growth::Replace),
];

/// Replaces each growing function of `state` with a guarded one.
pub fn guard_functions(state: &mut SessionState, max_value_bytes: usize) -> Result<()> {
    for (name, growth) in GUARDED {
        let Some(inner) = state.scalar_functions().get(*name).cloned() else {
            continue;
        };
        let guarded = ScalarUDF::new_from_impl(Guarded {
            inner,
            growth: *growth,
            limit: max_value_bytes,
        });
        state.register_udf(Arc::new(guarded))?;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Guarded {
    inner: Arc<ScalarUDF>,
    growth: Growth,
    limit: usize,
}

impl Guarded {
    fn imp(&self) -> &Arc<dyn ScalarUDFImpl> {
        self.inner.inner()
    }

    /// Bytes the call would build over all its rows (an upper estimate).
    fn estimate(&self, args: &ScalarFunctionArgs) -> u128 {
        let rows = if args
            .args
            .iter()
            .any(|a| matches!(a, ColumnarValue::Array(_)))
        {
            args.number_rows
        } else {
            1
        };
        let mut total: u128 = 0;
        for row in 0..rows {
            total += self.estimate_row(&args.args, row);
            if total > self.limit as u128 {
                break;
            }
        }
        total
    }

    fn estimate_row(&self, args: &[ColumnarValue], row: usize) -> u128 {
        let int = |i: usize| args.get(i).and_then(|a| int_at(a, row));
        let len = |i: usize| args.get(i).map_or(0, |a| text_len_at(a, row)) as u128;
        let count = |v: Option<i64>| v.unwrap_or(0).max(0) as u128;
        match self.growth {
            Growth::Repeat => len(0) * count(int(1)),
            Growth::Pad => count(int(1)) * 4,
            Growth::Elements => count(int(1)) * len(0).max(8),
            Growth::Series => {
                let (start, stop, step) = match args.len() {
                    1 => (Some(0), int(0), Some(1)),
                    2 => (int(0), int(1), Some(1)),
                    _ => (int(0), int(1), int(2)),
                };
                match (start, stop, step) {
                    (Some(start), Some(stop), Some(step)) if step != 0 => {
                        let span = (stop as i128 - start as i128).unsigned_abs();
                        (span / step.unsigned_abs() as u128 + 1) * 8
                    }
                    _ => 0,
                }
            }
            Growth::Replace => {
                let (s, from, to) = (len(0), len(1), len(2));
                s + (s / from.max(1)) * to + to
            }
        }
    }
}

/// An integer argument at `row`, if it is one.
fn int_at(value: &ColumnarValue, row: usize) -> Option<i64> {
    let scalar = match value {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(a) => ScalarValue::try_from_array(a, row).ok()?,
    };
    match scalar {
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => v,
        ScalarValue::UInt8(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => v.map(|v| v.min(i64::MAX as u64) as i64),
        _ => None,
    }
}

/// The byte length of a text or binary argument at `row` (0 otherwise).
fn text_len_at(value: &ColumnarValue, row: usize) -> usize {
    let scalar = match value {
        ColumnarValue::Scalar(s) => s.clone(),
        ColumnarValue::Array(a) => match ScalarValue::try_from_array(a, row) {
            Ok(s) => s,
            Err(_) => return 0,
        },
    };
    match scalar {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.len(),
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b)) => b.len(),
        _ => 0,
    }
}

impl ScalarUDFImpl for Guarded {
    fn name(&self) -> &str {
        self.imp().name()
    }

    fn aliases(&self) -> &[String] {
        self.imp().aliases()
    }

    fn signature(&self) -> &Signature {
        self.imp().signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.imp().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.imp().return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.imp().coerce_types(arg_types)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        self.imp().simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.imp().short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.imp().documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let estimate = self.estimate(&args);
        if estimate > self.limit as u128 {
            return Err(resources_datafusion_err!(
                "{}() would build more than {} MiB (the largest value a function may \
                 build)",
                self.name(),
                self.limit >> 20
            ));
        }
        self.imp().invoke_with_args(args)
    }
}
