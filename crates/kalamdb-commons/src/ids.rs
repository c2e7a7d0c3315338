//! Typed identifiers. Names are validated once, when they are made, so code
//! further down can put them in keys and paths without checking again.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest namespace, table or column name.
pub const MAX_IDENTIFIER_LEN: usize = 64;
/// Longest user name.
pub const MAX_USER_NAME_LEN: usize = 128;

/// Checks a namespace, table or column name: a letter or `_`, then letters,
/// digits or `_`, at most 64 characters. These names end up in storage paths,
/// so nothing else (no `/`, `.`, `..`) is ever allowed.
pub fn validate_identifier(kind: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return Err(format!("{kind} name must not be empty"));
    };
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(format!(
            "{kind} name is longer than {MAX_IDENTIFIER_LEN} characters"
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!(
            "invalid {kind} name '{}': must start with a letter or '_'",
            truncate(name)
        ));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "invalid {kind} name '{}': only letters, digits and '_' are allowed",
            truncate(name)
        ));
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    crate::clip(s, 80)
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $validate:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(name: impl Into<String>) -> Result<Self, String> {
                let name = name.into();
                $validate($kind, &name)?;
                Ok(Self(name))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A namespace (a DataFusion schema).
    NamespaceId,
    "namespace",
    validate_identifier
);
name_type!(
    /// A table name inside a namespace.
    TableName,
    "table",
    validate_identifier
);
name_type!(
    /// A user's id. It is also the user name, and it scopes rows of USER
    /// tables, so it appears in keys and storage paths.
    UserId,
    "user",
    validate_user_name
);

/// User names: 1 to 128 of letters, digits, `_`, `-`, `.`, `@`, not starting
/// with `.` (they become path segments of cold-tier files).
pub fn validate_user_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} name must not be empty"));
    }
    if name.len() > MAX_USER_NAME_LEN {
        return Err(format!(
            "{kind} name is longer than {MAX_USER_NAME_LEN} characters"
        ));
    }
    if name.starts_with('.') {
        return Err(format!("invalid {kind} name: must not start with '.'"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    {
        return Err(format!(
            "invalid {kind} name '{}': only letters, digits, '_', '-', '.' and '@' are allowed",
            truncate(name)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_reject_path_tricks() {
        for bad in ["", "1abc", "a/b", "..", "a.b", "a b", "ä", &"x".repeat(65)] {
            assert!(NamespaceId::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "_x", "app_1", "Messages"] {
            assert!(TableName::new(good).is_ok(), "{good:?} rejected");
        }
    }

    #[test]
    fn user_names() {
        for bad in ["", ".hidden", "a/b", "..", "a b", "x\0"] {
            assert!(UserId::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["alice", "bob@example.com", "svc-1.prod", "u_2"] {
            assert!(UserId::new(good).is_ok(), "{good:?} rejected");
        }
    }
}
