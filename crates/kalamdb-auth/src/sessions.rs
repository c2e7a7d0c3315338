//! Login sessions: one per `/auth/login`, persisted so that tokens survive
//! a restart and so that logging out (deleting the session) stops its
//! refresh token, and the access tokens issued with it, at once.

use kalamdb_commons::Clock;
use kalamdb_store::{meta_keys, HotStore, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A session record that cannot be stored or read.
#[derive(Debug)]
pub struct SessionError(pub String);

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "session store: {}", self.0)
    }
}

impl From<StoreError> for SessionError {
    fn from(e: StoreError) -> Self {
        Self(e.to_string())
    }
}

impl From<serde_json::Error> for SessionError {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

type Result<T> = std::result::Result<T, SessionError>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    /// Microseconds; the refresh token's expiry.
    pub expires_at: i64,
    /// Opened by root without a password, which is accepted only from
    /// loopback: so are the session's tokens.
    #[serde(default)]
    pub loopback_only: bool,
}

pub struct Sessions {
    store: Arc<HotStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(store: Arc<HotStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Starts a session for `user_id` lasting `ttl_micros`.
    pub fn create(&self, user_id: &str, ttl_micros: i64, loopback_only: bool) -> Result<Session> {
        let now = self.clock.now_micros();
        let id: [u8; 16] = rand::random();
        let session = Session {
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
            user_id: user_id.to_string(),
            created_at: now,
            expires_at: now.saturating_add(ttl_micros),
            loopback_only,
        };
        let mut batch = self.store.batch();
        batch.put_meta(
            &meta_keys::session(&session.id),
            &serde_json::to_vec(&session)?,
        );
        self.store.write(batch)?;
        self.prune_expired(now)?;
        Ok(session)
    }

    /// The session, if it exists and has not expired.
    pub fn get(&self, id: &str) -> Result<Option<Session>> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        let Some(raw) = self.store.meta_get(&meta_keys::session(id))? else {
            return Ok(None);
        };
        let session: Session = serde_json::from_slice(&raw)?;
        Ok((session.expires_at > self.clock.now_micros()).then_some(session))
    }

    /// Ends a session; false if there was none.
    pub fn revoke(&self, id: &str) -> Result<bool> {
        if id.is_empty() || id.len() > 64 || self.store.meta_get(&meta_keys::session(id))?.is_none()
        {
            return Ok(false);
        }
        let mut batch = self.store.batch();
        batch.delete_meta(&meta_keys::session(id));
        self.store.write(batch)?;
        Ok(true)
    }

    /// Ends every session of `user_id` (its password changed, or it was
    /// dropped); returns how many there were.
    pub fn revoke_user(&self, user_id: &str) -> Result<usize> {
        let mut batch = self.store.batch();
        let mut ended = 0;
        for (key, raw) in self.store.meta_scan(meta_keys::SESSIONS)? {
            let owner = serde_json::from_slice::<Session>(&raw).map(|s| s.user_id);
            if owner.as_deref().is_ok_and(|u| u == user_id) {
                batch.delete_meta(&key);
                ended += 1;
            }
        }
        if ended > 0 {
            self.store.write(batch)?;
        }
        Ok(ended)
    }

    /// Removes sessions that expired (called on each login, so the table
    /// never grows past the live sessions plus one login's worth).
    fn prune_expired(&self, now: i64) -> Result<()> {
        let mut batch = self.store.batch();
        let mut any = false;
        for (key, raw) in self.store.meta_scan(meta_keys::SESSIONS)? {
            let expired = serde_json::from_slice::<Session>(&raw)
                .map(|s| s.expires_at <= now)
                .unwrap_or(true);
            if expired {
                batch.delete_meta(&key);
                any = true;
            }
        }
        if any {
            self.store.write(batch)?;
        }
        Ok(())
    }
}
