//! Manifest entries: the committed files of one scope.
//!
//! The authoritative list lives in the hot tier, where a flush commits an
//! entry in one small batch; the entry's `flushed_through` hides the hot
//! versions the file replaced, which are deleted later. A `manifest.json`
//! copy is written beside the files so the cold tier can be read without
//! the server.

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
    /// Smallest and largest encoded primary key in the file (the store's
    /// key encoding from the primary key on), so an INSERT or a point read
    /// only opens files that could hold its key. Hex strings in JSON.
    #[serde(with = "hex_bytes")]
    pub min_pk: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub max_pk: Vec<u8>,
    /// Microseconds since the epoch.
    pub committed_at: i64,
    /// Every hot version of the scope with a `_seq` at or below this was
    /// read by the flush that wrote this file, so readers ignore them (the
    /// file, or an older one, holds the key's state as of then). 0 for
    /// entries from before this field, whose flush deleted them at once.
    #[serde(default)]
    pub flushed_through: u64,
    /// Rows of the file that are tombstones (deleted keys kept so that an
    /// older file's version stays hidden), until a compaction can drop
    /// them; `None` for entries written before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tombstones: Option<u64>,
}

impl ManifestEntry {
    /// Whether the file may hold the primary key with this encoding.
    pub fn may_contain(&self, pk: &[u8]) -> bool {
        self.min_pk.as_slice() <= pk && pk <= self.max_pk.as_slice()
    }

    /// The file's name: the last part of its path, and its key in the
    /// scope's manifest.
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The tombstones the file is known to hold (0 when not counted).
    pub fn held_tombstones(&self) -> u64 {
        self.tombstones.unwrap_or(0)
    }
}

/// The `manifest.json` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDocument {
    pub table: String,
    pub user_id: Option<String>,
    pub files: Vec<ManifestEntry>,
}

/// Key bounds as lower-case hex in JSON (as every manifest so far has
/// them), bytes in memory.
mod hex_bytes {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        from_hex(&text).ok_or_else(|| D::Error::custom(format!("not a hex key: {text:?}")))
    }

    pub(super) fn to_hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(bytes.len() * 2);
        for &b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }

    pub(super) fn from_hex(text: &str) -> Option<Vec<u8>> {
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let bytes = text.as_bytes();
        if !bytes.len().is_multiple_of(2) {
            return None;
        }
        bytes
            .chunks_exact(2)
            .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::hex_bytes::{from_hex, to_hex};
    use super::*;

    #[test]
    fn hex_is_two_lower_case_digits_per_byte() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xa0, 0xff, 0x5c]), "000fa0ff5c");
        assert_eq!(to_hex(&[]), "");
        assert_eq!(
            from_hex("000fA0ff5c"),
            Some(vec![0x00, 0x0f, 0xa0, 0xff, 0x5c])
        );
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
    }

    fn entry() -> ManifestEntry {
        ManifestEntry {
            path: "a".into(),
            rows: 1,
            bytes: 1,
            min_seq: 1,
            max_seq: 2,
            schema_version: 1,
            min_pk: vec![0x10],
            max_pk: vec![0x20],
            committed_at: 0,
            flushed_through: 2,
            tombstones: None,
        }
    }

    #[test]
    fn range_check() {
        let entry = entry();
        assert!(entry.may_contain(&[0x10]));
        assert!(entry.may_contain(&[0x15, 0x01]));
        assert!(!entry.may_contain(&[0x20, 0x00]));
        assert!(!entry.may_contain(&[0x0f]));
    }

    /// The JSON of an entry as every version so far wrote it: bounds in hex.
    #[test]
    fn the_json_form_is_frozen() {
        let json = r#"{"path":"a","rows":1,"bytes":1,"min_seq":1,"max_seq":2,"schema_version":1,"min_pk":"10","max_pk":"20","committed_at":0,"flushed_through":2}"#;
        assert_eq!(serde_json::to_string(&entry()).unwrap(), json);
        let read: ManifestEntry = serde_json::from_str(json).unwrap();
        assert_eq!(read, entry());
        // Entries from before `flushed_through` still read.
        let old = r#"{"path":"a","rows":1,"bytes":1,"min_seq":1,"max_seq":2,"schema_version":1,"min_pk":"10","max_pk":"20","committed_at":0}"#;
        let read: ManifestEntry = serde_json::from_str(old).unwrap();
        assert_eq!(read.flushed_through, 0);
        assert!(serde_json::from_str::<ManifestEntry>(&old.replace("\"10\"", "\"1g\"")).is_err());
        // Tombstones are written only where a file has them.
        let with_tombstones = ManifestEntry {
            tombstones: Some(3),
            ..entry()
        };
        let text = serde_json::to_string(&with_tombstones).unwrap();
        assert!(
            text.ends_with(r#""flushed_through":2,"tombstones":3}"#),
            "{text}"
        );
        assert_eq!(
            serde_json::from_str::<ManifestEntry>(&text).unwrap(),
            with_tombstones
        );
    }
}
