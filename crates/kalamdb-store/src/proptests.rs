//! Property tests of the key and row encodings: every value round-trips,
//! byte order follows value order, versions of a key sort newest first, one
//! user's range never holds another's keys, and no input makes decoding
//! panic. Failing cases are kept by proptest and added below as examples.

use crate::keys::{scope_of, split_version_key, take_escaped, ScopeKey};
use crate::row::RowVersion;
use kalamdb_commons::Value;
use proptest::prelude::*;

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i16>().prop_map(Value::I16),
        any::<i32>().prop_map(Value::I32),
        any::<i64>().prop_map(Value::I64),
        any::<f32>().prop_map(Value::F32),
        any::<f64>().prop_map(Value::F64),
        any::<i128>().prop_map(Value::Decimal),
        ".{0,40}".prop_map(Value::Text),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bytes),
        any::<i64>().prop_map(Value::Timestamp),
        any::<i32>().prop_map(Value::Date),
        (0i64..86_400_000_000).prop_map(Value::Time),
    ]
}

/// Two key values of one type (a table's PK has one type).
fn key_pair() -> impl Strategy<Value = (Value, Value)> {
    prop_oneof![
        (any::<i64>(), any::<i64>()).prop_map(|(a, b)| (Value::I64(a), Value::I64(b))),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| (Value::I32(a), Value::I32(b))),
        (any::<i128>(), any::<i128>()).prop_map(|(a, b)| (Value::Decimal(a), Value::Decimal(b))),
        ("[a\\x00-\\x02]{0,8}", "[a\\x00-\\x02]{0,8}")
            .prop_map(|(a, b)| (Value::Text(a), Value::Text(b))),
        (
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..8)
        )
            .prop_map(|(a, b)| (Value::Bytes(a), Value::Bytes(b))),
    ]
}

fn ordering(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::I64(a), Value::I64(b)) => a.cmp(b),
        (Value::I32(a), Value::I32(b)) => a.cmp(b),
        (Value::Decimal(a), Value::Decimal(b)) => a.cmp(b),
        (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
        (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
        _ => unreachable!("pairs are of one type"),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        // NaN != NaN; compare floats by bits.
        (Value::F32(a), Value::F32(b)) => a.to_bits() == b.to_bits(),
        (Value::F64(a), Value::F64(b)) => a.to_bits() == b.to_bits(),
        _ => a == b,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn rows_round_trip(deleted in any::<bool>(), schema_version in any::<u32>(),
                       values in proptest::collection::vec(value(), 0..12)) {
        let row = RowVersion { deleted, schema_version, values };
        let back = RowVersion::decode(&row.encode()).unwrap();
        prop_assert_eq!(back.deleted, row.deleted);
        prop_assert_eq!(back.schema_version, row.schema_version);
        prop_assert_eq!(back.values.len(), row.values.len());
        for (a, b) in back.values.iter().zip(&row.values) {
            prop_assert!(same(a, b), "{:?} != {:?}", a, b);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = RowVersion::decode(&bytes);
        let _ = split_version_key(&bytes);
        let _ = take_escaped(&bytes);
        let _ = scope_of(&bytes, true);
        let _ = scope_of(&bytes, false);
    }

    #[test]
    fn key_order_follows_value_order((a, b) in key_pair(), seq_a in any::<u64>(), seq_b in any::<u64>(),
                                     user in "[a-z\\x00]{0,6}") {
        let scope = ScopeKey::new(9, Some(&user));
        let (ka, kb) = (scope.pk_prefix(&a).unwrap(), scope.pk_prefix(&b).unwrap());
        prop_assert_eq!(ka.cmp(&kb), ordering(&a, &b));
        // Version keys: by key, then newest (highest _seq) first.
        let (va, vb) = (scope.version_key(&a, seq_a).unwrap(), scope.version_key(&b, seq_b).unwrap());
        let expected = ordering(&a, &b).then(seq_b.cmp(&seq_a));
        prop_assert_eq!(va.cmp(&vb), expected);
        // A version key splits back into its key and _seq.
        let (prefix, seq) = split_version_key(&va).unwrap();
        prop_assert_eq!(prefix, ka.as_slice());
        prop_assert_eq!(seq, seq_a);
        let (len, owner) = scope_of(prefix, true).unwrap();
        prop_assert_eq!(&prefix[..len], scope.as_bytes());
        prop_assert_eq!(owner.as_deref(), Some(user.as_str()));
    }

    #[test]
    fn one_users_range_never_holds_anothers_keys(a in "[ab\\x00]{0,5}", b in "[ab\\x00]{0,5}",
                                                  pk in any::<i64>()) {
        prop_assume!(a != b);
        let (sa, sb) = (ScopeKey::new(3, Some(&a)), ScopeKey::new(3, Some(&b)));
        let key = sb.version_key(&Value::I64(pk), 1).unwrap();
        prop_assert!(!key.starts_with(sa.as_bytes()));
    }
}
