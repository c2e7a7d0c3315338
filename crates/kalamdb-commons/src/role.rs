//! User roles, ordered by power: `user` < `service` < `dba` < `system`.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Service,
    Dba,
    System,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_lowercase().as_str() {
            "user" => Some(Role::User),
            "service" => Some(Role::Service),
            "dba" => Some(Role::Dba),
            "system" => Some(Role::System),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Service => "service",
            Role::Dba => "dba",
            Role::System => "system",
        }
    }

    /// DDL (namespaces, tables, users) needs dba or above.
    pub fn can_run_ddl(&self) -> bool {
        *self >= Role::Dba
    }

    /// Writing SHARED tables and managing jobs needs service or above.
    pub fn can_write_shared(&self) -> bool {
        *self >= Role::Service
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(
            Role::User < Role::Service && Role::Service < Role::Dba && Role::Dba < Role::System
        );
        assert!(!Role::Service.can_run_ddl() && Role::Dba.can_run_ddl());
        assert_eq!(Role::parse("DBA"), Some(Role::Dba));
        assert_eq!(Role::parse("root"), None);
    }
}
