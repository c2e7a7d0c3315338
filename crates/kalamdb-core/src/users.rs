//! Users: accounts (name, role, e-mail, stored password hash) as records
//! in the `meta` column family, and the caller a statement runs as.
//!
//! Core knows callers and roles, not passwords: how a password becomes a
//! stored hash, and what a changed or dropped account means for verified
//! credentials and login sessions, is the injected [`Credentials`]'
//! business (the `kalamdb-auth` crate).

use crate::error::{CoreError, Result};
use kalamdb_commons::{Clock, Role, UserId};
use kalamdb_store::{meta_keys, HotStore};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// The bootstrap superuser.
pub const ROOT_USER: &str = "root";

/// What the engine needs from authentication.
pub trait Credentials: Send + Sync + std::fmt::Debug {
    /// Checks a new password against the password policy and returns the
    /// hash to store; the error says what the policy wants.
    fn hash(&self, password: &str) -> std::result::Result<String, String>;
    /// Whether `password` is the one `hash` was made from.
    fn matches(&self, password: &str, hash: &str) -> bool;
    /// `user`'s password changed or the account was dropped: credentials
    /// verified before, and the user's login sessions, no longer hold.
    fn revoked(&self, user: &str);
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: UserId,
    pub role: Role,
    pub email: Option<String>,
    /// PHC string; empty means "no password set" (root before set-up).
    pub password_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Dropped users keep their record so the name (which scopes their rows)
    /// is never handed to someone else.
    pub deleted_at: Option<i64>,
}

impl UserRecord {
    pub fn is_active(&self) -> bool {
        self.deleted_at.is_none()
    }
}

/// The authenticated caller of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
}

pub struct Users {
    store: Arc<HotStore>,
    clock: Arc<dyn Clock>,
    credentials: Arc<dyn Credentials>,
    records: RwLock<HashMap<String, Arc<UserRecord>>>,
    /// Held by set-up and user creation, so that "check, then write" is
    /// atomic: concurrent set-ups create one admin, not one each.
    changes: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

impl Users {
    pub fn load(
        store: Arc<HotStore>,
        clock: Arc<dyn Clock>,
        credentials: Arc<dyn Credentials>,
    ) -> Result<Self> {
        let mut records = HashMap::new();
        for (_, raw) in store.meta_scan(meta_keys::USERS)? {
            let record: UserRecord = serde_json::from_slice(&raw)?;
            records.insert(record.id.to_string(), Arc::new(record));
        }
        Ok(Self {
            store,
            clock,
            credentials,
            records: RwLock::new(records),
            changes: parking_lot::Mutex::new(()),
        })
    }

    /// Creates `root` on first start; with `root_password` given, makes sure
    /// root's password is that one.
    pub fn bootstrap_root(&self, root_password: Option<&str>) -> Result<()> {
        let existing = self.get(ROOT_USER);
        let needs_hash = match (&existing, root_password) {
            (None, _) => true,
            (Some(r), Some(pw)) => !self.credentials.matches(pw, &r.password_hash),
            (Some(_), None) => false,
        };
        if !needs_hash {
            return Ok(());
        }
        let now = self.clock.now_micros();
        let password_hash = match root_password {
            Some(pw) => self.hash(pw)?,
            None => String::new(),
        };
        let record = match existing {
            Some(r) => UserRecord {
                password_hash,
                updated_at: now,
                ..(*r).clone()
            },
            None => UserRecord {
                id: UserId::new(ROOT_USER).expect("valid"),
                role: Role::System,
                email: None,
                password_hash,
                created_at: now,
                updated_at: now,
                deleted_at: None,
            },
        };
        self.put(record)
    }

    fn put(&self, record: UserRecord) -> Result<()> {
        let mut batch = self.store.batch();
        batch.put_meta(
            &meta_keys::user(record.id.as_str()),
            &serde_json::to_vec(&record)?,
        );
        self.store.write(batch)?;
        let id = record.id.to_string();
        self.records.write().insert(id, Arc::new(record));
        Ok(())
    }

    /// A new password's stored hash, or why the policy refuses it.
    pub fn hash(&self, password: &str) -> Result<String> {
        self.credentials.hash(password).map_err(CoreError::exec)
    }

    pub fn get(&self, id: &str) -> Option<Arc<UserRecord>> {
        self.records.read().get(id).cloned()
    }

    pub fn active(&self, id: &str) -> Option<Arc<UserRecord>> {
        self.get(id).filter(|r| r.is_active())
    }

    pub fn all(&self) -> Vec<Arc<UserRecord>> {
        let mut all: Vec<_> = self.records.read().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Whether the server still needs `/auth/setup`: root has no password.
    pub fn needs_setup(&self) -> bool {
        self.get(ROOT_USER)
            .is_none_or(|root| root.password_hash.is_empty())
    }

    /// First-run set-up: gives root a password and creates a dba user, in
    /// that order; refused once root has a password.
    pub fn setup(
        &self,
        root_password: &str,
        user: UserId,
        password: &str,
        email: Option<String>,
    ) -> Result<()> {
        let _changing = self.changes.lock();
        if !self.needs_setup() {
            return Err(CoreError::AlreadyExists(
                "the server is already set up (root has a password)".into(),
            ));
        }
        let root_hash = self.hash(root_password)?;
        if user.as_str() == ROOT_USER {
            return Err(CoreError::exec("choose a user other than root"));
        }
        if self.get(user.as_str()).is_some() {
            return Err(CoreError::AlreadyExists(format!(
                "user '{user}' already exists"
            )));
        }
        let root = self.get(ROOT_USER).expect("bootstrapped at start");
        let user_hash = self.hash(password)?;
        self.put(UserRecord {
            password_hash: root_hash,
            updated_at: self.clock.now_micros(),
            ..(*root).clone()
        })?;
        self.create_locked(user, user_hash, Role::Dba, email)?;
        // Sessions opened by root without a password end with it.
        self.credentials.revoked(ROOT_USER);
        Ok(())
    }

    /// The caller a valid token names: the user must still be active, and
    /// its current role applies (not the one in the token).
    pub fn caller_of(&self, name: &str) -> Option<Caller> {
        self.active(name).map(|r| Caller {
            user_id: r.id.clone(),
            role: r.role,
        })
    }

    pub fn create(
        &self,
        id: UserId,
        password: &str,
        role: Role,
        email: Option<String>,
    ) -> Result<()> {
        let hash = self.hash(password)?;
        let _changing = self.changes.lock();
        self.create_locked(id, hash, role, email)
    }

    fn create_locked(
        &self,
        id: UserId,
        password_hash: String,
        role: Role,
        email: Option<String>,
    ) -> Result<()> {
        if let Some(existing) = self.get(id.as_str()) {
            return Err(CoreError::AlreadyExists(if existing.is_active() {
                format!("user '{id}' already exists")
            } else {
                format!("user '{id}' was dropped; user names are not reused")
            }));
        }
        let now = self.clock.now_micros();
        self.put(UserRecord {
            id,
            role,
            email,
            password_hash,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
    }

    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut UserRecord) -> Result<()>,
    ) -> Result<()> {
        let Some(existing) = self.active(id) else {
            return Err(CoreError::UserNotFound(id.to_string()));
        };
        let mut record = (*existing).clone();
        change(&mut record)?;
        record.updated_at = self.clock.now_micros();
        self.put(record)
    }

    /// Marks a user dropped. Returns false if there was no such active user.
    pub fn drop_user(&self, id: &str) -> Result<bool> {
        if self.active(id).is_none() {
            return Ok(false);
        }
        let now = self.clock.now_micros();
        self.update(id, |r| {
            r.deleted_at = Some(now);
            r.password_hash = String::from("!");
            Ok(())
        })?;
        self.credentials.revoked(id);
        Ok(true)
    }

    /// Sets a user's password; credentials and sessions under the old one
    /// end.
    pub fn set_password(&self, id: &str, password: &str) -> Result<()> {
        let hash = self.hash(password)?;
        self.update(id, |record| {
            record.password_hash = hash;
            Ok(())
        })?;
        self.credentials.revoked(id);
        Ok(())
    }
}
