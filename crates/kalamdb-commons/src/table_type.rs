//! The kinds of tables.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TableType {
    /// Every row belongs to one user, who alone can see it.
    User,
    /// One set of rows for everyone.
    Shared,
    /// Short-lived rows with a TTL, hot tier only.
    Stream,
    /// Built-in read-only tables (`system.*`, `information_schema.*`).
    System,
}

impl TableType {
    pub fn parse(text: &str) -> Option<TableType> {
        match text.to_ascii_uppercase().as_str() {
            "USER" => Some(TableType::User),
            "SHARED" => Some(TableType::Shared),
            "STREAM" => Some(TableType::Stream),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            TableType::User => "USER",
            TableType::Shared => "SHARED",
            TableType::Stream => "STREAM",
            TableType::System => "SYSTEM",
        }
    }
}

impl fmt::Display for TableType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
