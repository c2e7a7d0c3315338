//! Authentication for KalamDB: checking a user name and password, the rule
//! that root without a password may connect only from the machine itself,
//! the cache that makes a request pay the KDF only the first time a
//! (user, password) pair is seen, and login sessions.
//!
//! The engine stores accounts ([`kalamdb_core::Users`]) and runs statements
//! as a [`Caller`]; it asks this crate, through [`kalamdb_core::Credentials`],
//! to hash new passwords and tells it when an account's password changed or
//! the account was dropped (its cached credentials and sessions end).

pub mod password;
mod sessions;

pub use sessions::{Session, SessionError, Sessions};

use kalamdb_commons::Clock;
use kalamdb_core::{Caller, Credentials, Users};
use kalamdb_store::HotStore;
use parking_lot::RwLock;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use tracing::warn;

/// Why a user name and password were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// Unknown user, wrong password, dropped user.
    InvalidCredentials,
    /// root without a password, from a non-loopback address.
    RootRemoteWithoutPassword,
}

pub struct Authenticator {
    /// user id → (password hash it was checked against, fingerprint of the
    /// password). A changed hash invalidates the entry by itself.
    verified: RwLock<HashMap<String, (String, [u8; 32])>>,
    /// Per-process key for fingerprints, so the cache never holds anything
    /// that would help offline guessing.
    fingerprint_key: [u8; 32],
    /// Login sessions, kept in the engine's store once it is open.
    sessions: OnceLock<Sessions>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").finish_non_exhaustive()
    }
}

impl Default for Authenticator {
    fn default() -> Self {
        Self {
            verified: RwLock::new(HashMap::new()),
            fingerprint_key: rand::random(),
            sessions: OnceLock::new(),
        }
    }
}

impl Authenticator {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Keeps login sessions in `store` (the engine's, opened with this
    /// authenticator). Until then there are none to end.
    pub fn attach_store(&self, store: Arc<HotStore>, clock: Arc<dyn Clock>) {
        let _ = self.sessions.set(Sessions::new(store, clock));
    }

    /// The login sessions; an error before [`Self::attach_store`].
    pub fn sessions(&self) -> Result<&Sessions, SessionError> {
        self.sessions
            .get()
            .ok_or_else(|| SessionError("the engine is not open yet".into()))
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
        users: &Users,
        name: &str,
        password: &str,
        loopback: bool,
    ) -> Option<Result<Caller, AuthFailure>> {
        let record = users.active(name)?;
        let caller = Caller {
            user_id: record.id.clone(),
            role: record.role,
        };
        if record.password_hash.is_empty() {
            return Some(if !loopback {
                Err(AuthFailure::RootRemoteWithoutPassword)
            } else if password.is_empty() {
                Ok(caller)
            } else {
                Err(AuthFailure::InvalidCredentials)
            });
        }
        let verified = self.verified.read();
        let (hash, fp) = verified.get(name)?;
        (*hash == record.password_hash && *fp == self.fingerprint(password)).then_some(Ok(caller))
    }

    /// Checks a user name and password. `loopback` says whether the client
    /// connected from this machine (root without a password needs it).
    /// May run the KDF: call it on a blocking thread.
    pub fn authenticate(
        &self,
        users: &Users,
        name: &str,
        password: &str,
        loopback: bool,
    ) -> Result<Caller, AuthFailure> {
        if let Some(answer) = self.authenticate_without_kdf(users, name, password, loopback) {
            return answer;
        }
        let Some(record) = users.active(name) else {
            // Spend comparable time on unknown users so that timing does not
            // reveal which names exist.
            let _ = password::verify(password, password::dummy_hash());
            return Err(AuthFailure::InvalidCredentials);
        };
        if !password::verify(password, &record.password_hash) {
            return Err(AuthFailure::InvalidCredentials);
        }
        self.verified.write().insert(
            name.to_string(),
            (record.password_hash.clone(), self.fingerprint(password)),
        );
        Ok(Caller {
            user_id: record.id.clone(),
            role: record.role,
        })
    }
}

impl Credentials for Authenticator {
    fn hash(&self, password: &str) -> Result<String, String> {
        password::check_policy(password)?;
        password::hash(password)
    }

    fn matches(&self, password: &str, hash: &str) -> bool {
        password::verify(password, hash)
    }

    fn revoked(&self, user: &str) {
        self.verified.write().remove(user);
        if let Some(sessions) = self.sessions.get() {
            match sessions.revoke_user(user) {
                Ok(ended) => tracing::info!(user, sessions_ended = ended, "sessions ended"),
                Err(e) => warn!(user, error = %e, "cannot end the user's sessions"),
            }
        }
    }
}

#[cfg(test)]
mod tests;
