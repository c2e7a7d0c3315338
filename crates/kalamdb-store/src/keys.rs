//! Order-preserving key encoding.
//!
//! A row version key is
//! `table_uid (u64 BE) · [user id, escaped] · primary key (encoded) · !seq (u64 BE)`.
//! Variable-length components are escaped (`0x00` → `0x00 0xFF`) and end with
//! `0x00 0x01`, so no component is a prefix of a longer one and byte order
//! equals value order. The inverted `_seq` makes the newest version of a key
//! sort first.

use crate::StoreError;
use kalamdb_commons::{KalamType, Value};

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// Appends `bytes` escaped and terminated.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == ESCAPE {
            out.extend_from_slice(&[ESCAPE, ESCAPED_ZERO]);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Reads one escaped component from the front of `input`; returns it and the rest.
pub fn take_escaped(input: &[u8]) -> Result<(Vec<u8>, &[u8]), StoreError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        if input[i] == ESCAPE {
            match input.get(i + 1) {
                Some(&ESCAPED_ZERO) => out.push(0),
                Some(&TERMINATOR) => return Ok((out, &input[i + 2..])),
                _ => return Err(StoreError::Corrupt("bad escape in key".into())),
            }
            i += 2;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Err(StoreError::Corrupt("unterminated key component".into()))
}

/// The part of a key that names one scope: one user of a USER table, or a
/// whole SHARED table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ScopeKey(Vec<u8>);

impl ScopeKey {
    pub fn new(table_uid: u64, user: Option<&str>) -> Self {
        let mut key = table_uid.to_be_bytes().to_vec();
        if let Some(user) = user {
            push_escaped(&mut key, user.as_bytes());
        }
        Self(key)
    }

    /// Every key of a table, whatever the user.
    pub fn table_prefix(table_uid: u64) -> Vec<u8> {
        table_uid.to_be_bytes().to_vec()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The prefix shared by every version of `pk` in this scope.
    pub fn pk_prefix(&self, pk: &Value) -> Result<Vec<u8>, StoreError> {
        let mut key = Vec::with_capacity(self.0.len() + 9);
        self.append_pk_prefix(&mut key, pk)?;
        Ok(key)
    }

    /// Appends what [`Self::pk_prefix`] returns to `out`.
    pub fn append_pk_prefix(&self, out: &mut Vec<u8>, pk: &Value) -> Result<(), StoreError> {
        out.extend_from_slice(&self.0);
        encode_pk(out, pk)
    }

    /// The full key of one version of `pk`.
    pub fn version_key(&self, pk: &Value, seq: u64) -> Result<Vec<u8>, StoreError> {
        let mut key = self.pk_prefix(pk)?;
        push_seq(&mut key, seq);
        Ok(key)
    }
}

/// Appends a version's `_seq`, inverted so the newest version sorts first.
pub fn push_seq(key: &mut Vec<u8>, seq: u64) {
    key.extend_from_slice(&(!seq).to_be_bytes());
}

/// The length of the scope part at the front of a key (or PK prefix), and
/// the scope's user for USER tables (`user_scoped`).
pub fn scope_of(key: &[u8], user_scoped: bool) -> Result<(usize, Option<String>), StoreError> {
    if key.len() < 8 {
        return Err(StoreError::Corrupt("key shorter than a table id".into()));
    }
    if !user_scoped {
        return Ok((8, None));
    }
    let (user, rest) = take_escaped(&key[8..])?;
    let user =
        String::from_utf8(user).map_err(|_| StoreError::Corrupt("user id is not UTF-8".into()))?;
    Ok((key.len() - rest.len(), Some(user)))
}

impl ScopeKey {
    /// The scope part of a key read from storage.
    pub fn from_key_prefix(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

/// Splits a version key into its PK prefix and its `_seq`.
pub fn split_version_key(key: &[u8]) -> Result<(&[u8], u64), StoreError> {
    if key.len() < 16 {
        return Err(StoreError::Corrupt("row key too short".into()));
    }
    let (prefix, seq) = key.split_at(key.len() - 8);
    let inverted = u64::from_be_bytes(seq.try_into().expect("8 bytes"));
    Ok((prefix, !inverted))
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when the prefix is all `0xFF` (then the range is open-ended).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn order_i64(v: i64) -> [u8; 8] {
    ((v as u64) ^ (1 << 63)).to_be_bytes()
}

/// Encodes a primary key value so that byte order follows value order for
/// values of the same type. A table's PK has one type, so types never mix.
pub fn encode_pk(out: &mut Vec<u8>, pk: &Value) -> Result<(), StoreError> {
    match pk {
        Value::Null => return Err(StoreError::InvalidKey("NULL".into())),
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::I16(v) => out.extend_from_slice(&order_i64(i64::from(*v))),
        Value::I32(v) => out.extend_from_slice(&order_i64(i64::from(*v))),
        Value::I64(v) | Value::Timestamp(v) | Value::Time(v) => {
            out.extend_from_slice(&order_i64(*v))
        }
        Value::Date(v) => out.extend_from_slice(&order_i64(i64::from(*v))),
        Value::Decimal(v) => out.extend_from_slice(&((*v as u128) ^ (1 << 127)).to_be_bytes()),
        Value::Text(s) => push_escaped(out, s.as_bytes()),
        Value::Bytes(b) => push_escaped(out, b),
        Value::F32(_) | Value::F64(_) => {
            return Err(StoreError::InvalidKey("floating point".into()))
        }
    }
    Ok(())
}

/// The value [`encode_pk`] encoded as `bytes` (exactly one key, nothing
/// after it), for a key column of type `ty`.
pub fn decode_pk(bytes: &[u8], ty: &KalamType) -> Result<Value, StoreError> {
    let int = || -> Result<i64, StoreError> {
        let raw: [u8; 8] = bytes
            .try_into()
            .map_err(|_| StoreError::Corrupt("integer key of the wrong length".into()))?;
        Ok((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
    };
    let narrow = |v: i64| StoreError::Corrupt(format!("key {v} out of its column's range"));
    let escaped = || -> Result<Vec<u8>, StoreError> {
        match take_escaped(bytes)? {
            (value, []) => Ok(value),
            _ => Err(StoreError::Corrupt("bytes after a key".into())),
        }
    };
    Ok(match ty {
        KalamType::Boolean => match bytes {
            [b] => Value::Bool(*b != 0),
            _ => {
                return Err(StoreError::Corrupt(
                    "boolean key of the wrong length".into(),
                ))
            }
        },
        KalamType::SmallInt => {
            let v = int()?;
            Value::I16(i16::try_from(v).map_err(|_| narrow(v))?)
        }
        KalamType::Int => {
            let v = int()?;
            Value::I32(i32::try_from(v).map_err(|_| narrow(v))?)
        }
        KalamType::Date => {
            let v = int()?;
            Value::Date(i32::try_from(v).map_err(|_| narrow(v))?)
        }
        KalamType::BigInt => Value::I64(int()?),
        KalamType::Timestamp => Value::Timestamp(int()?),
        KalamType::Time => Value::Time(int()?),
        KalamType::Decimal { .. } => {
            let raw: [u8; 16] = bytes
                .try_into()
                .map_err(|_| StoreError::Corrupt("decimal key of the wrong length".into()))?;
            Value::Decimal((u128::from_be_bytes(raw) ^ (1 << 127)) as i128)
        }
        KalamType::Text | KalamType::Uuid | KalamType::Json => Value::Text(
            String::from_utf8(escaped()?)
                .map_err(|_| StoreError::Corrupt("text key is not UTF-8".into()))?,
        ),
        KalamType::Bytes => Value::Bytes(escaped()?),
        KalamType::Float | KalamType::Double => {
            return Err(StoreError::InvalidKey("floating point".into()))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_decodes_to_what_was_encoded() {
        let cases = [
            (Value::Bool(true), KalamType::Boolean),
            (Value::I16(-7), KalamType::SmallInt),
            (Value::I32(i32::MIN), KalamType::Int),
            (Value::I64(i64::MAX), KalamType::BigInt),
            (Value::Timestamp(-1), KalamType::Timestamp),
            (Value::Time(86_399_999_999), KalamType::Time),
            (Value::Date(19_000), KalamType::Date),
            (
                Value::Decimal(-12_345),
                KalamType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
            (Value::Text("a\0b\u{e9}".into()), KalamType::Text),
            (Value::Bytes(vec![0, 255, 0, 1]), KalamType::Bytes),
        ];
        for (value, ty) in cases {
            assert_eq!(decode_pk(&pk_bytes(&value), &ty).unwrap(), value);
        }
        assert!(decode_pk(&pk_bytes(&Value::I64(1 << 40)), &KalamType::Int).is_err());
        let mut trailing = pk_bytes(&Value::Text("a".into()));
        trailing.push(1);
        assert!(decode_pk(&trailing, &KalamType::Text).is_err());
    }

    fn pk_bytes(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        encode_pk(&mut out, v).unwrap();
        out
    }

    #[test]
    fn integer_order_is_preserved() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, 1 << 40, i64::MAX];
        let keys: Vec<_> = values.iter().map(|v| pk_bytes(&Value::I64(*v))).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn text_order_is_preserved_with_zero_bytes_and_prefixes() {
        let values = ["", "\0", "\0\0", "a", "a\0", "a\0b", "ab", "b"];
        let keys: Vec<_> = values
            .iter()
            .map(|v| pk_bytes(&Value::Text(v.to_string())))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
    }

    #[test]
    fn escaped_round_trip() {
        for raw in [&b""[..], b"\0", b"abc\0\xff\0", b"\xff\xff"] {
            let mut out = Vec::new();
            push_escaped(&mut out, raw);
            out.extend_from_slice(b"rest");
            let (decoded, rest) = take_escaped(&out).unwrap();
            assert_eq!(decoded, raw);
            assert_eq!(rest, b"rest");
        }
        assert!(take_escaped(b"abc").is_err());
        assert!(take_escaped(b"a\0\x05").is_err());
    }

    #[test]
    fn newest_version_sorts_first_and_users_do_not_overlap() {
        let alice = ScopeKey::new(7, Some("alice"));
        let pk = Value::I64(1);
        let old = alice.version_key(&pk, 10).unwrap();
        let new = alice.version_key(&pk, 11).unwrap();
        assert!(new < old);
        assert_eq!(split_version_key(&new).unwrap().1, 11);

        // "al" must not be a prefix range containing "alice".
        let al = ScopeKey::new(7, Some("al"));
        assert!(!old.starts_with(al.as_bytes()));
        let other_table = ScopeKey::new(8, Some("alice"));
        assert!(!old.starts_with(other_table.as_bytes()));
    }

    #[test]
    fn scope_is_recovered_from_keys() {
        let scope = ScopeKey::new(5, Some("a\0b"));
        let key = scope.version_key(&Value::I64(3), 9).unwrap();
        let (len, user) = scope_of(&key, true).unwrap();
        assert_eq!(&key[..len], scope.as_bytes());
        assert_eq!(user.as_deref(), Some("a\0b"));
        let shared = ScopeKey::new(5, None)
            .version_key(&Value::I64(3), 9)
            .unwrap();
        assert_eq!(scope_of(&shared, false).unwrap(), (8, None));
    }

    #[test]
    fn prefix_end_bounds_the_range() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }

    #[test]
    fn floats_and_nulls_are_not_keys() {
        assert!(encode_pk(&mut Vec::new(), &Value::Null).is_err());
        assert!(encode_pk(&mut Vec::new(), &Value::F64(1.0)).is_err());
    }

    /// The row-key layout on disk. A change here makes existing data
    /// directories unreadable: it must be deliberate and come with a
    /// migration.
    #[test]
    fn the_key_layout_is_frozen() {
        let user = ScopeKey::new(0x0102, Some("u\0"));
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (
                user.version_key(&Value::I64(-1), 5).unwrap(),
                [
                    &[0, 0, 0, 0, 0, 0, 1, 2][..],
                    b"u\0\xff\0\x01",
                    &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                    &(!5u64).to_be_bytes(),
                ]
                .concat(),
            ),
            (
                ScopeKey::new(3, None)
                    .version_key(&Value::Text("a\0".into()), 0)
                    .unwrap(),
                [&[0, 0, 0, 0, 0, 0, 0, 3][..], b"a\0\xff\0\x01", &[0xff; 8]].concat(),
            ),
            (pk_bytes(&Value::I32(1)), vec![0x80, 0, 0, 0, 0, 0, 0, 1]),
            (pk_bytes(&Value::Bool(true)), vec![1]),
            (
                pk_bytes(&Value::Bytes(vec![0xff, 0])),
                vec![0xff, 0, 0xff, 0, 1],
            ),
            (
                pk_bytes(&Value::Decimal(-1)),
                [&[0x7f][..], &[0xff; 15]].concat(),
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let key = user.version_key(&Value::I64(-1), 5).unwrap();
        let (pk_prefix, seq) = split_version_key(&key).unwrap();
        assert_eq!(seq, 5);
        assert_eq!(pk_prefix, user.pk_prefix(&Value::I64(-1)).unwrap());
    }
}
