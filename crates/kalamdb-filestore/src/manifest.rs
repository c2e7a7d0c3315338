//! Manifest entries: the committed files of one scope.
//!
//! The authoritative list lives in the hot tier (committed in the same
//! batch that removes the flushed hot rows); a `manifest.json` copy is
//! written beside the files so the cold tier can be read without the server.

use serde::{Deserialize, Serialize};

/// Name of the human- and tool-readable copy of a scope's manifest.
pub const MANIFEST_FILE: &str = "manifest.json";

/// One committed Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path of the file inside its storage.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    pub min_seq: i64,
    pub max_seq: i64,
    pub schema_version: u32,
    /// Smallest and largest encoded primary key in the file (hex), so an
    /// INSERT only opens files that could hold its key.
    pub min_pk: String,
    pub max_pk: String,
    /// Microseconds since the epoch.
    pub committed_at: i64,
    /// Every hot version of the scope with a `_seq` at or below this was
    /// read by the flush that wrote this file, so readers ignore them (the
    /// file, or an older one, holds the key's state as of then). 0 for
    /// entries from before this field, whose flush deleted them at once.
    #[serde(default)]
    pub flushed_through: u64,
}

impl ManifestEntry {
    /// Whether the file may hold the primary key with this encoding (hex).
    pub fn may_contain(&self, pk_hex: &str) -> bool {
        self.min_pk.as_str() <= pk_hex && pk_hex <= self.max_pk.as_str()
    }
}

/// The `manifest.json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDocument {
    pub table: String,
    pub user_id: Option<String>,
    pub files: Vec<ManifestEntry>,
}

/// Lower-case hex, which sorts like the bytes it encodes.
pub fn to_hex(bytes: &[u8]) -> String {
    // Called per key on the write path once a scope has files: no
    // formatting machinery per byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        assert_eq!(to_hex(&[]), "");
    }

    #[test]
    fn hex_sorts_like_bytes() {
        let mut keys = [vec![0x10u8], vec![0x01, 0xff], vec![0x01], vec![0xff, 0x00]];
        let mut hexes: Vec<String> = keys.iter().map(|k| to_hex(k)).collect();
        keys.sort();
        hexes.sort();
        assert_eq!(hexes, keys.iter().map(|k| to_hex(k)).collect::<Vec<_>>());
    }

    #[test]
    fn range_check() {
        let entry = ManifestEntry {
            path: "a".into(),
            rows: 1,
            bytes: 1,
            min_seq: 1,
            max_seq: 2,
            schema_version: 1,
            min_pk: to_hex(&[0x10]),
            max_pk: to_hex(&[0x20]),
            committed_at: 0,
            flushed_through: 2,
        };
        assert!(entry.may_contain(&to_hex(&[0x10])));
        assert!(entry.may_contain(&to_hex(&[0x15, 0x01])));
        assert!(!entry.may_contain(&to_hex(&[0x20, 0x00])));
        assert!(!entry.may_contain(&to_hex(&[0x0f])));
    }
}
