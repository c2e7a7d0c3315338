//! Users: records in the `meta` column family, password hashing with
//! Argon2id, and a cache of verified credentials so that a request pays the
//! KDF only the first time a (user, password) pair is seen.

use crate::error::{CoreError, Result};
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use kalamdb_commons::{Clock, Role, UserId};
use kalamdb_store::{meta_keys, HotStore};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// The bootstrap superuser.
pub const ROOT_USER: &str = "root";
/// Shortest password accepted by CREATE/ALTER USER.
pub const MIN_PASSWORD_LEN: usize = 4;
/// Longest password accepted (bounds the KDF's work on hostile input).
pub const MAX_PASSWORD_LEN: usize = 1024;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Unknown user, wrong password, dropped user.
    InvalidCredentials,
    /// root without a password, from a non-loopback address.
    RootRemoteWithoutPassword,
}

pub struct Users {
    store: Arc<HotStore>,
    clock: Arc<dyn Clock>,
    records: RwLock<HashMap<String, Arc<UserRecord>>>,
    /// user id → (password hash it was checked against, fingerprint of the
    /// password). A changed hash invalidates the entry by itself.
    verified: RwLock<HashMap<String, (String, [u8; 32])>>,
    /// Per-process key for fingerprints, so the cache never holds anything
    /// that would help offline guessing.
    fingerprint_key: [u8; 32],
    /// Held by set-up and user creation, so that "check, then write" is
    /// atomic: concurrent set-ups create one admin, not one each.
    changes: parking_lot::Mutex<()>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
}

fn verify_hash(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

pub fn validate_password(password: &str) -> Result<()> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(CoreError::exec(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(CoreError::exec(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    Ok(())
}

impl Users {
    pub fn load(store: Arc<HotStore>, clock: Arc<dyn Clock>) -> Result<Self> {
        let mut records = HashMap::new();
        for (_, raw) in store.meta_scan(meta_keys::USERS)? {
            let record: UserRecord = serde_json::from_slice(&raw)?;
            records.insert(record.id.to_string(), Arc::new(record));
        }
        Ok(Self {
            store,
            clock,
            records: RwLock::new(records),
            verified: RwLock::new(HashMap::new()),
            fingerprint_key: rand::random(),
            changes: parking_lot::Mutex::new(()),
        })
    }

    /// Creates `root` on first start; with `root_password` given, makes sure
    /// root's password is that one.
    pub fn bootstrap_root(&self, root_password: Option<&str>) -> Result<()> {
        let existing = self.get(ROOT_USER);
        let needs_hash = match (&existing, root_password) {
            (None, _) => true,
            (Some(r), Some(pw)) => !verify_hash(pw, &r.password_hash),
            (Some(_), None) => false,
        };
        if !needs_hash {
            return Ok(());
        }
        let now = self.clock.now_micros();
        let password_hash = match root_password {
            Some(pw) => hash_password(pw)?,
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
        self.verified.write().remove(&id);
        self.records.write().insert(id, Arc::new(record));
        Ok(())
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

    fn fingerprint(&self, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.fingerprint_key);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// The answer to [`Self::authenticate`] when it needs no KDF: a pair
    /// verified before, or a user without a password (root before set-up).
    /// `None` means the password hash must be checked.
    pub fn authenticate_without_kdf(
        &self,
        name: &str,
        password: &str,
        loopback: bool,
    ) -> Option<std::result::Result<Caller, AuthFailure>> {
        let record = self.active(name)?;
        if record.password_hash.is_empty() {
            let caller = Caller {
                user_id: record.id.clone(),
                role: record.role,
            };
            return Some(if !loopback {
                Err(AuthFailure::RootRemoteWithoutPassword)
            } else if password.is_empty() {
                Ok(caller)
            } else {
                Err(AuthFailure::InvalidCredentials)
            });
        }
        self.cached(name, password).map(Ok)
    }

    /// The caller, if this exact (user, password) pair was verified before
    /// and the password has not changed since. Never runs the KDF.
    fn cached(&self, name: &str, password: &str) -> Option<Caller> {
        let record = self.active(name)?;
        let verified = self.verified.read();
        let (hash, fp) = verified.get(name)?;
        if *hash == record.password_hash && *fp == self.fingerprint(password) {
            Some(Caller {
                user_id: record.id.clone(),
                role: record.role,
            })
        } else {
            None
        }
    }

    /// Checks a user name and password. `loopback` says whether the client
    /// connected from this machine (root without a password needs it).
    pub fn authenticate(
        &self,
        name: &str,
        password: &str,
        loopback: bool,
    ) -> std::result::Result<Caller, AuthFailure> {
        if let Some(answer) = self.authenticate_without_kdf(name, password, loopback) {
            return answer;
        }
        let Some(record) = self.active(name) else {
            // Spend comparable time on unknown users so that timing does not
            // reveal which names exist.
            let _ = verify_hash(password, dummy_hash());
            return Err(AuthFailure::InvalidCredentials);
        };
        let caller = Caller {
            user_id: record.id.clone(),
            role: record.role,
        };
        let fingerprint = self.fingerprint(password);
        if password.len() > MAX_PASSWORD_LEN || !verify_hash(password, &record.password_hash) {
            return Err(AuthFailure::InvalidCredentials);
        }
        self.verified.write().insert(
            name.to_string(),
            (record.password_hash.clone(), fingerprint),
        );
        Ok(caller)
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
        validate_password(root_password)?;
        validate_password(password)?;
        if user.as_str() == ROOT_USER {
            return Err(CoreError::exec("choose a user other than root"));
        }
        if self.get(user.as_str()).is_some() {
            return Err(CoreError::AlreadyExists(format!(
                "user '{user}' already exists"
            )));
        }
        let root = self.get(ROOT_USER).expect("bootstrapped at start");
        self.put(UserRecord {
            password_hash: hash_password(root_password)?,
            updated_at: self.clock.now_micros(),
            ..(*root).clone()
        })?;
        self.create_locked(user, password, Role::Dba, email)?;
        // Sessions opened by root without a password end with it.
        crate::sessions::Sessions::new(self.store.clone(), self.clock.clone())
            .revoke_user(ROOT_USER)?;
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
        let _changing = self.changes.lock();
        self.create_locked(id, password, role, email)
    }

    fn create_locked(
        &self,
        id: UserId,
        password: &str,
        role: Role,
        email: Option<String>,
    ) -> Result<()> {
        validate_password(password)?;
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
            password_hash: hash_password(password)?,
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
        Ok(true)
    }
}

/// A hash of a random password, used to equalize timing for unknown users.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&format!("{:x}", rand::random::<u128>())).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_commons::SystemClock;
    use kalamdb_store::StoreOptions;

    fn users() -> (tempfile::TempDir, Users) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(HotStore::open(dir.path(), StoreOptions::default()).unwrap());
        let users = Users::load(store, Arc::new(SystemClock)).unwrap();
        (dir, users)
    }

    #[test]
    fn root_without_password_only_from_loopback() {
        let (_d, users) = users();
        users.bootstrap_root(None).unwrap();
        assert!(users.authenticate("root", "", true).is_ok());
        assert_eq!(
            users.authenticate("root", "", false),
            Err(AuthFailure::RootRemoteWithoutPassword)
        );
        users.bootstrap_root(Some("s3cret")).unwrap();
        assert!(users.authenticate("root", "s3cret", false).is_ok());
        assert!(users.authenticate("root", "", true).is_err());
    }

    #[test]
    fn wrong_passwords_fail_and_cache_follows_password_changes() {
        let (_d, users) = users();
        users
            .create(UserId::new("alice").unwrap(), "pw-one", Role::User, None)
            .unwrap();
        assert!(users.authenticate("alice", "pw-one", false).is_ok());
        assert!(users.authenticate("alice", "pw-one", false).is_ok());
        assert!(users.authenticate("alice", "pw-two", false).is_err());
        users
            .update("alice", |r| {
                r.password_hash = hash_password("pw-two")?;
                Ok(())
            })
            .unwrap();
        assert!(users.authenticate("alice", "pw-one", false).is_err());
        assert!(users.authenticate("alice", "pw-two", false).is_ok());
        assert!(users.drop_user("alice").unwrap());
        assert!(users.authenticate("alice", "pw-two", false).is_err());
        assert!(users
            .create(UserId::new("alice").unwrap(), "pw-three", Role::User, None)
            .is_err());
        assert!(users.authenticate("nobody", "x", false).is_err());
    }
}
