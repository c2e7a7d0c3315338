//! A table's schema versions, and how a row written under one reads under
//! another.
//!
//! Every column has an id that never changes and is never reused within
//! its table: a rename keeps it, a column dropped and added again under the
//! same name gets a new one (so the old values never come back). A hot row
//! version records the version that wrote it and holds its cells in that
//! version's column order; a Parquet file records its version and names
//! its columns as that version did. Readers map both through
//! [`ColumnMap`], by id.
//!
//! Ordering: a version is added to a table's [`SchemaHistory`] after its
//! catalog record is durable and before any definition that carries it is
//! handed out, so no row of a version can exist before the history holds
//! it. A reader's definition may be older than a row it meets (a write
//! under a newer version raced its plan); the history still maps it.

use super::model::ColumnDef;
use crate::error::{CoreError, Result};
use kalamdb_commons::{KalamType, Value};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Column maps kept per table.
const MAX_CACHED_MAPS: usize = 4096;

/// One version of a table's columns, as the catalog records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SchemaVersion {
    pub version: u32,
    pub columns: Vec<ColumnDef>,
    pub created_at: i64,
    /// The statement that made it, shown by `DESCRIBE TABLE t HISTORY`.
    pub change: String,
}

/// Every schema version of one table, shared by all definitions of it.
#[derive(Default)]
pub struct SchemaHistory {
    versions: RwLock<BTreeMap<u32, Arc<SchemaVersion>>>,
    /// Maps worked out so far, by (from, to).
    maps: Mutex<HashMap<(u32, u32), Arc<ColumnMap>>>,
    /// Held shared by each row write from its check of the version to its
    /// commit, and exclusively by an ALTER TABLE from its checks of the
    /// existing rows to its commit: so no write under the old version
    /// lands between them.
    pub gate: tokio::sync::RwLock<()>,
    /// Set by DROP TABLE under the gate: a write that takes the gate after
    /// it must not land rows of a table that is gone.
    dropped: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SchemaHistory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaHistory")
            .field("versions", &self.versions.read().len())
            .finish_non_exhaustive()
    }
}

impl SchemaHistory {
    pub fn of(versions: impl IntoIterator<Item = SchemaVersion>) -> Self {
        let history = Self::default();
        for version in versions {
            history.add(version);
        }
        history
    }

    /// Whether the table was dropped (see `dropped`).
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Marks the table dropped; the caller holds the gate exclusively.
    pub fn mark_dropped(&self) {
        self.dropped
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub fn get(&self, version: u32) -> Option<Arc<SchemaVersion>> {
        self.versions.read().get(&version).cloned()
    }

    /// The newest committed version.
    pub fn latest(&self) -> Option<Arc<SchemaVersion>> {
        self.versions.read().values().next_back().cloned()
    }

    pub fn latest_version(&self) -> u32 {
        self.versions
            .read()
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }

    /// Oldest first.
    pub fn all(&self) -> Vec<Arc<SchemaVersion>> {
        self.versions.read().values().cloned().collect()
    }

    pub(super) fn add(&self, version: SchemaVersion) {
        self.versions
            .write()
            .insert(version.version, Arc::new(version));
    }

    /// How a row of version `from` reads as version `to`.
    pub fn map(&self, from: u32, to: u32) -> Result<Arc<ColumnMap>> {
        if let Some(map) = self.maps.lock().get(&(from, to)) {
            return Ok(map.clone());
        }
        let missing = |v: u32| CoreError::Internal(format!("schema version {v} is not recorded"));
        let source = self.get(from).ok_or_else(|| missing(from))?;
        let target = self.get(to).ok_or_else(|| missing(to))?;
        let map = Arc::new(ColumnMap::between(&source, &target));
        let mut maps = self.maps.lock();
        // Pairs are few in practice (old versions to the current one);
        // the cache is cleared rather than grown past a bound.
        if maps.len() >= MAX_CACHED_MAPS {
            maps.clear();
        }
        maps.insert((from, to), map.clone());
        Ok(map)
    }
}

/// Where each column of a target version comes from in a row (or file) of
/// a source version.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnMap {
    pub slots: Vec<Slot>,
    /// Target column types, for widening a cell written under a narrower
    /// type (`MODIFY COLUMN`).
    types: Vec<KalamType>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Slot {
    /// The source's cell `index`, a column the source named `name`.
    Cell { index: usize, name: String },
    /// A column the source does not have: added after it was written (its
    /// fill, NULL by default) or dropped before (NULL).
    Fill(Value),
}

impl ColumnMap {
    fn between(source: &SchemaVersion, target: &SchemaVersion) -> Self {
        let slots = target
            .columns
            .iter()
            .map(
                |column| match source.columns.iter().position(|c| c.id == column.id) {
                    Some(index) => Slot::Cell {
                        index,
                        name: source.columns[index].name.clone(),
                    },
                    None if source.version < target.version => Slot::Fill(
                        column
                            .fill
                            .clone()
                            .map_or(Value::Null, |f| widen(f.0, column.data_type)),
                    ),
                    None => Slot::Fill(Value::Null),
                },
            )
            .collect();
        Self {
            slots,
            types: target.columns.iter().map(|c| c.data_type).collect(),
        }
    }

    /// A row's values (in source order; a row may hold fewer cells than
    /// its version has columns, which read as NULL) in target order.
    pub fn apply(&self, mut values: Vec<Value>) -> Vec<Value> {
        self.slots
            .iter()
            .zip(&self.types)
            .map(|(slot, t)| match slot {
                Slot::Cell { index, .. } => values.get_mut(*index).map_or(Value::Null, |v| {
                    widen(std::mem::replace(v, Value::Null), *t)
                }),
                Slot::Fill(v) => v.clone(),
            })
            .collect()
    }

    /// For each source cell, the target column it goes to.
    pub fn targets(&self, source_cells: usize) -> Vec<Option<usize>> {
        let mut out = vec![None; source_cells];
        for (target, slot) in self.slots.iter().enumerate() {
            if let Slot::Cell { index, .. } = slot {
                if let Some(o) = out.get_mut(*index) {
                    *o = Some(target);
                }
            }
        }
        out
    }
}

/// A value of a narrower type read into a widened column.
pub fn widen(value: Value, t: KalamType) -> Value {
    match (value, t) {
        (Value::I16(v), KalamType::Int) => Value::I32(v.into()),
        (Value::I16(v), KalamType::BigInt) => Value::I64(v.into()),
        (Value::I32(v), KalamType::BigInt) => Value::I64(v.into()),
        (Value::F32(v), KalamType::Double) => Value::F64(v.into()),
        (value, _) => value,
    }
}

/// Whether a column of type `from` may become `to` without rewriting
/// anything: every old value reads exactly in the new type.
pub fn widens(from: KalamType, to: KalamType) -> bool {
    matches!(
        (from, to),
        (KalamType::SmallInt, KalamType::Int | KalamType::BigInt)
            | (KalamType::Int, KalamType::BigInt)
            | (KalamType::Float, KalamType::Double)
    ) || from == to
}

/// A stored value (an added column's fill): one encoded cell, as hex.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredValue(pub Value);

impl Serialize for StoredValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let row = kalamdb_store::RowVersion {
            deleted: false,
            schema_version: 0,
            values: vec![self.0.clone()],
        };
        let hex: String = row.encode().iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for StoredValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let hex = String::deserialize(d)?;
        let bytes = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2).unwrap_or("zz"), 16))
            .collect::<std::result::Result<Vec<u8>, _>>()
            .map_err(D::Error::custom)?;
        let mut row = kalamdb_store::RowVersion::decode(&bytes).map_err(D::Error::custom)?;
        match row.values.pop() {
            Some(value) if row.values.is_empty() => Ok(StoredValue(value)),
            _ => Err(D::Error::custom("a stored value holds one cell")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(id: u32, name: &str, t: KalamType, fill: Option<Value>) -> ColumnDef {
        ColumnDef {
            id,
            name: name.into(),
            data_type: t,
            nullable: true,
            default: None,
            fill: fill.map(StoredValue),
        }
    }

    fn version(version: u32, columns: Vec<ColumnDef>) -> SchemaVersion {
        SchemaVersion {
            version,
            columns,
            created_at: 0,
            change: String::new(),
        }
    }

    #[test]
    fn maps_by_id_through_renames_drops_and_re_adds() {
        let history = SchemaHistory::of([
            version(
                1,
                vec![
                    column(1, "id", KalamType::BigInt, None),
                    column(2, "a", KalamType::Int, None),
                    column(3, "b", KalamType::Text, None),
                ],
            ),
            // a renamed to x and widened, b dropped, b added again with a
            // fill, c added without one.
            version(
                2,
                vec![
                    column(1, "id", KalamType::BigInt, None),
                    column(2, "x", KalamType::BigInt, None),
                    column(4, "b", KalamType::Text, Some(Value::Text("new".into()))),
                    column(5, "c", KalamType::Int, None),
                ],
            ),
        ]);
        let old_row = vec![Value::I64(7), Value::I32(3), Value::Text("old".into())];
        let map = history.map(1, 2).unwrap();
        assert_eq!(
            map.apply(old_row),
            vec![
                Value::I64(7),
                Value::I64(3),
                Value::Text("new".into()),
                Value::Null
            ]
        );
        assert_eq!(map.targets(3), vec![Some(0), Some(1), None]);
        // A newer row read by an older plan: dropped columns read NULL,
        // never the new column's values under the old name.
        let new_row = vec![
            Value::I64(8),
            Value::I64(4),
            Value::Text("b2".into()),
            Value::I32(1),
        ];
        assert_eq!(
            history.map(2, 1).unwrap().apply(new_row),
            vec![Value::I64(8), Value::I64(4), Value::Null]
        );
        // A short row (written before trailing columns existed in its
        // version's list) reads NULL there.
        assert_eq!(
            history.map(1, 2).unwrap().apply(vec![Value::I64(9)]),
            vec![
                Value::I64(9),
                Value::Null,
                Value::Text("new".into()),
                Value::Null
            ]
        );
    }

    #[test]
    fn stored_values_round_trip_through_json() {
        for value in [
            Value::Null,
            Value::I64(-5),
            Value::Text("x\"y".into()),
            Value::Decimal(12345),
            Value::Timestamp(1_700_000_000_000_000),
        ] {
            let json = serde_json::to_string(&StoredValue(value.clone())).unwrap();
            let back: StoredValue = serde_json::from_str(&json).unwrap();
            assert_eq!(back.0, value);
        }
        assert!(serde_json::from_str::<StoredValue>("\"zz\"").is_err());
        assert!(serde_json::from_str::<StoredValue>("\"01\"").is_err());
    }

    #[test]
    fn the_map_cache_stays_bounded() {
        let history = SchemaHistory::of(
            (1..=70).map(|v| version(v, vec![column(1, "id", KalamType::BigInt, None)])),
        );
        for from in 1..=70 {
            for to in 1..=70 {
                history.map(from, to).unwrap();
                assert!(history.maps.lock().len() <= MAX_CACHED_MAPS);
            }
        }
        assert!(history.maps.lock().len() < 70 * 70, "it was cleared");
        assert!(
            history.map(71, 1).is_err(),
            "an unknown version is an error"
        );
    }

    #[test]
    fn only_exact_widenings_are_allowed() {
        assert!(widens(KalamType::Int, KalamType::BigInt));
        assert!(widens(KalamType::Float, KalamType::Double));
        assert!(!widens(KalamType::BigInt, KalamType::Int));
        assert!(!widens(KalamType::Int, KalamType::Text));
        assert!(!widens(KalamType::BigInt, KalamType::Double));
    }
}
