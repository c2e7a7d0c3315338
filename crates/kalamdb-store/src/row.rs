//! Row version encoding: the value stored under a version key.
//!
//! Layout: `format (1) · flags (1) · schema_version (u32 LE) · count (u32 LE)`
//! then `count` cells, each a tag byte and a little-endian payload (text and
//! bytes are length-prefixed). Cells are in column order of the schema
//! version that wrote them, so decoding never needs the current schema.

use crate::StoreError;
use kalamdb_commons::Value;

const FORMAT_V1: u8 = 1;
const FLAG_DELETED: u8 = 1;

/// One version of one row. A tombstone (`deleted`) carries the deleted row's
/// cells (older ones only the primary key), which a flush writes to Parquet
/// and `WHERE _deleted = true` reads back.
#[derive(Debug, Clone, PartialEq)]
pub struct RowVersion {
    pub deleted: bool,
    pub schema_version: u32,
    pub values: Vec<Value>,
}

mod tag {
    pub const NULL: u8 = 0;
    pub const FALSE: u8 = 1;
    pub const TRUE: u8 = 2;
    pub const I16: u8 = 3;
    pub const I32: u8 = 4;
    pub const I64: u8 = 5;
    pub const F32: u8 = 6;
    pub const F64: u8 = 7;
    pub const DECIMAL: u8 = 8;
    pub const TEXT: u8 = 9;
    pub const BYTES: u8 = 10;
    pub const TIMESTAMP: u8 = 11;
    pub const DATE: u8 = 12;
    pub const TIME: u8 = 13;
}

impl RowVersion {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.values.len() * 9);
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded row to `out` (a buffer reused across rows).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(FORMAT_V1);
        out.push(if self.deleted { FLAG_DELETED } else { 0 });
        out.extend_from_slice(&self.schema_version.to_le_bytes());
        out.extend_from_slice(&(self.values.len() as u32).to_le_bytes());
        for value in &self.values {
            encode_value(out, value);
        }
    }

    /// Whether an encoded version is a tombstone, without decoding its
    /// cells (counting rows needs no more).
    pub fn is_deleted_encoded(bytes: &[u8]) -> Result<bool, StoreError> {
        match bytes {
            [FORMAT_V1, flags, ..] => Ok(flags & FLAG_DELETED != 0),
            [format, ..] => Err(corrupt(format!("unknown row format {format}"))),
            [] => Err(corrupt("empty row".into())),
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut row = Self::cells(bytes)?;
        let mut values = Vec::with_capacity(row.left);
        while let Some(cell) = row.next_cell()? {
            values.push(cell.to_value());
        }
        Ok(Self {
            deleted: row.deleted,
            schema_version: row.schema_version,
            values,
        })
    }

    /// An encoded version's cells, read one by one without copying: a
    /// flush or scan puts them straight into Arrow columns.
    pub fn cells(bytes: &[u8]) -> Result<EncodedRow<'_>, StoreError> {
        let mut r = Reader { bytes, pos: 0 };
        let format = r.u8()?;
        if format != FORMAT_V1 {
            return Err(corrupt(format!("unknown row format {format}")));
        }
        let flags = r.u8()?;
        let schema_version = u32::from_le_bytes(r.array()?);
        let count = u32::from_le_bytes(r.array()?) as usize;
        // Every cell takes at least one byte, which bounds a corrupt count.
        if count > bytes.len() {
            return Err(corrupt("cell count larger than the row".into()));
        }
        Ok(EncodedRow {
            deleted: flags & FLAG_DELETED != 0,
            schema_version,
            reader: r,
            left: count,
        })
    }
}

/// One cell of an encoded version, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Decimal(i128),
    Text(&'a str),
    Bytes(&'a [u8]),
    Timestamp(i64),
    Date(i32),
    Time(i64),
}

impl<'a> From<&'a Value> for Cell<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Null => Cell::Null,
            Value::Bool(v) => Cell::Bool(*v),
            Value::I16(v) => Cell::I16(*v),
            Value::I32(v) => Cell::I32(*v),
            Value::I64(v) => Cell::I64(*v),
            Value::F32(v) => Cell::F32(*v),
            Value::F64(v) => Cell::F64(*v),
            Value::Decimal(v) => Cell::Decimal(*v),
            Value::Text(v) => Cell::Text(v),
            Value::Bytes(v) => Cell::Bytes(v),
            Value::Timestamp(v) => Cell::Timestamp(*v),
            Value::Date(v) => Cell::Date(*v),
            Value::Time(v) => Cell::Time(*v),
        }
    }
}

impl Cell<'_> {
    pub fn to_value(self) -> Value {
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(v) => Value::Bool(v),
            Cell::I16(v) => Value::I16(v),
            Cell::I32(v) => Value::I32(v),
            Cell::I64(v) => Value::I64(v),
            Cell::F32(v) => Value::F32(v),
            Cell::F64(v) => Value::F64(v),
            Cell::Decimal(v) => Value::Decimal(v),
            Cell::Text(v) => Value::Text(v.to_string()),
            Cell::Bytes(v) => Value::Bytes(v.to_vec()),
            Cell::Timestamp(v) => Value::Timestamp(v),
            Cell::Date(v) => Value::Date(v),
            Cell::Time(v) => Value::Time(v),
        }
    }
}

/// An encoded version being read ([`RowVersion::cells`]).
pub struct EncodedRow<'a> {
    pub deleted: bool,
    pub schema_version: u32,
    reader: Reader<'a>,
    left: usize,
}

impl<'a> EncodedRow<'a> {
    /// The next cell, in column order of the version's schema; `None`
    /// after the last (and an error if bytes follow it).
    pub fn next_cell(&mut self) -> Result<Option<Cell<'a>>, StoreError> {
        if self.left == 0 {
            if self.reader.pos != self.reader.bytes.len() {
                return Err(corrupt("trailing bytes after the row".into()));
            }
            return Ok(None);
        }
        self.left -= 1;
        self.reader.cell().map(Some)
    }
}

fn encode_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(tag::NULL),
        Value::Bool(false) => out.push(tag::FALSE),
        Value::Bool(true) => out.push(tag::TRUE),
        Value::I16(v) => {
            out.push(tag::I16);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::I32(v) => {
            out.push(tag::I32);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::I64(v) => {
            out.push(tag::I64);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::F32(v) => {
            out.push(tag::F32);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::F64(v) => {
            out.push(tag::F64);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Decimal(v) => {
            out.push(tag::DECIMAL);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Text(s) => {
            out.push(tag::TEXT);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(tag::BYTES);
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        Value::Timestamp(v) => {
            out.push(tag::TIMESTAMP);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Date(v) => {
            out.push(tag::DATE);
            out.extend_from_slice(&v.to_le_bytes());
        }
        Value::Time(v) => {
            out.push(tag::TIME);
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn corrupt(msg: String) -> StoreError {
    StoreError::Corrupt(msg)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| corrupt("row ends early".into()))?;
        let bytes: &'a [u8] = self.bytes;
        self.pos = end;
        Ok(&bytes[end - n..end])
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    fn cell(&mut self) -> Result<Cell<'a>, StoreError> {
        Ok(match self.u8()? {
            tag::NULL => Cell::Null,
            tag::FALSE => Cell::Bool(false),
            tag::TRUE => Cell::Bool(true),
            tag::I16 => Cell::I16(i16::from_le_bytes(self.array()?)),
            tag::I32 => Cell::I32(i32::from_le_bytes(self.array()?)),
            tag::I64 => Cell::I64(i64::from_le_bytes(self.array()?)),
            tag::F32 => Cell::F32(f32::from_le_bytes(self.array()?)),
            tag::F64 => Cell::F64(f64::from_le_bytes(self.array()?)),
            tag::DECIMAL => Cell::Decimal(i128::from_le_bytes(self.array()?)),
            tag::TEXT => {
                let len = u32::from_le_bytes(self.array()?) as usize;
                Cell::Text(
                    std::str::from_utf8(self.take(len)?)
                        .map_err(|_| corrupt("text cell is not UTF-8".into()))?,
                )
            }
            tag::BYTES => {
                let len = u32::from_le_bytes(self.array()?) as usize;
                Cell::Bytes(self.take(len)?)
            }
            tag::TIMESTAMP => Cell::Timestamp(i64::from_le_bytes(self.array()?)),
            tag::DATE => Cell::Date(i32::from_le_bytes(self.array()?)),
            tag::TIME => Cell::Time(i64::from_le_bytes(self.array()?)),
            other => return Err(corrupt(format!("unknown cell tag {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_value_kind() {
        let row = RowVersion {
            deleted: false,
            schema_version: 3,
            values: vec![
                Value::Null,
                Value::Bool(true),
                Value::Bool(false),
                Value::I16(-2),
                Value::I32(70_000),
                Value::I64(i64::MIN),
                Value::F32(1.5),
                Value::F64(-0.25),
                Value::Decimal(-123_456_789_012_345),
                Value::Text("héllo\0".into()),
                Value::Bytes(vec![0, 255, 7]),
                Value::Timestamp(1_700_000_000_000_000),
                Value::Date(19_000),
            ],
        };
        assert_eq!(RowVersion::decode(&row.encode()).unwrap(), row);
        let tomb = RowVersion {
            deleted: true,
            schema_version: 1,
            values: vec![Value::I64(5)],
        };
        assert_eq!(RowVersion::decode(&tomb.encode()).unwrap(), tomb);
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        let good = RowVersion {
            deleted: false,
            schema_version: 1,
            values: vec![Value::Text("abc".into()), Value::I64(1)],
        }
        .encode();
        for cut in 0..good.len() {
            assert!(RowVersion::decode(&good[..cut]).is_err());
        }
        let mut huge_count = good.clone();
        huge_count[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(RowVersion::decode(&huge_count).is_err());
        let mut trailing = good;
        trailing.push(0);
        assert!(RowVersion::decode(&trailing).is_err());
    }

    /// The row encoding on disk, frozen like the key layout: a change must
    /// be a new format byte, with the old one still decoded.
    #[test]
    fn the_row_encoding_is_frozen() {
        let row = RowVersion {
            deleted: true,
            schema_version: 2,
            values: vec![
                Value::Null,
                Value::Bool(true),
                Value::I16(-2),
                Value::I32(3),
                Value::I64(4),
                Value::F64(0.5),
                Value::Text("h\u{e9}".into()),
                Value::Bytes(vec![0]),
                Value::Timestamp(1),
                Value::Date(-1),
                Value::Time(86_399_999_999),
            ],
        };
        let want: Vec<u8> = [
            &[1u8, 1][..],
            &2u32.to_le_bytes(),
            &11u32.to_le_bytes(),
            &[0, 2],
            &[3, 0xfe, 0xff],
            &[4, 3, 0, 0, 0],
            &[5, 4, 0, 0, 0, 0, 0, 0, 0],
            &[7],
            &0.5f64.to_le_bytes(),
            &[9, 3, 0, 0, 0, b'h', 0xc3, 0xa9],
            &[10, 1, 0, 0, 0, 0],
            &[11, 1, 0, 0, 0, 0, 0, 0, 0],
            &[12, 0xff, 0xff, 0xff, 0xff],
            &[13],
            &86_399_999_999i64.to_le_bytes(),
        ]
        .concat();
        assert_eq!(row.encode(), want);
        assert_eq!(RowVersion::decode(&want).unwrap(), row);
        assert!(RowVersion::is_deleted_encoded(&want).unwrap());
        let live = RowVersion {
            deleted: false,
            ..row
        };
        assert!(!RowVersion::is_deleted_encoded(&live.encode()).unwrap());
        assert!(RowVersion::is_deleted_encoded(&[]).is_err());
        assert!(RowVersion::is_deleted_encoded(&[9, 0]).is_err());
    }
}
