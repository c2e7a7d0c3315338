//! Moving cell values between the SQL front end, Arrow and the hot tier.
//!
//! - [`Lit`]: a literal or parameter as written, before it meets a column type;
//! - [`coerce`]: turns a `Lit` or a DataFusion scalar into a typed [`Value`]
//!   for a column, with the checks a real database does (range, format, UUID
//!   and JSON validity);
//! - [`ColumnBuilder`] / [`value_at`]: `Value`s to Arrow arrays and back.

mod arrow_io;
mod coerce;
mod lit;

pub use arrow_io::{cast_to_column, value_at, ColumnBuilder};
pub use coerce::{coerce_lit, coerce_number, coerce_scalar, coerce_str, validate_value};
pub use lit::{param_to_lit, param_to_scalar, Lit};
