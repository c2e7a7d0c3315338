//! Token authentication: login sessions, JWT access and refresh tokens, and
//! the brute-force guards. The HTTP routes are in `http::auth_routes`.
//!
//! A login creates a session (`kalamdb_auth::Sessions`, kept in the
//! engine's store) and two HS256 tokens
//! naming it: a short-lived access token and a long-lived refresh token.
//! Every use of a token checks that its session still exists, so logout
//! (which deletes the session) ends both at once. The token's role is
//! informational: the user's current role applies.

pub mod guard;
pub mod hashing;
pub mod jwt;

use crate::config::AuthSection;
use guard::{Lockout, RateLimiter};
use jwt::{Claims, TokenError, ISSUER};
use kalamdb_auth::{Authenticator, Sessions};
use kalamdb_commons::Role;
use kalamdb_core::{Caller, KalamDb};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// File in the data directory that keeps a generated secret across restarts.
const SECRET_FILE: &str = "jwt_secret";

pub struct AuthService {
    secret: Vec<u8>,
    access_ttl_secs: i64,
    refresh_ttl_secs: i64,
    pub lockout: Lockout,
    pub login_limiter: RateLimiter,
    pub hashing: std::sync::Arc<hashing::HashGate>,
    /// Passwords, the credential cache and login sessions.
    pub authenticator: std::sync::Arc<Authenticator>,
    /// `auth.allow_basic`.
    pub allow_basic: bool,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    Expired,
    Invalid(String),
}

fn now_secs() -> i64 {
    kalamdb_commons::clock::unix_secs()
}

/// RFC 3339 (UTC) for a time in seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl AuthService {
    /// The secret comes from config (`KALAMDB_JWT_SECRET`), else from
    /// `<data>/jwt_secret`, generated at first start.
    pub fn new(
        authenticator: std::sync::Arc<Authenticator>,
        settings: &AuthSection,
        data_dir: &Path,
        concurrent_hashes: usize,
    ) -> Result<Self, String> {
        let secret = match &settings.jwt_secret {
            Some(secret) if secret.len() >= 16 => secret.as_bytes().to_vec(),
            Some(_) => return Err("the JWT secret must be at least 16 characters".into()),
            None => load_or_create_secret(&data_dir.join(SECRET_FILE))?,
        };
        Ok(Self {
            secret,
            access_ttl_secs: settings.access_token_ttl_secs as i64,
            refresh_ttl_secs: settings.refresh_token_ttl_secs as i64,
            lockout: Lockout::new(
                settings.max_failed_logins,
                Duration::from_secs(settings.lockout_secs),
            ),
            login_limiter: RateLimiter::new(settings.login_attempts_per_minute),
            hashing: hashing::HashGate::new(concurrent_hashes),
            authenticator,
            allow_basic: settings.allow_basic,
        })
    }

    /// Whether a login session still exists (not logged out, not ended by
    /// a password change). A store error counts as alive: the next check
    /// decides.
    pub fn session_alive(&self, sid: &str) -> bool {
        match self.sessions().map(|s| s.get(sid)) {
            Ok(Ok(found)) => found.is_some(),
            _ => true,
        }
    }

    fn sessions(&self) -> Result<&Sessions, String> {
        self.authenticator.sessions().map_err(|e| e.to_string())
    }

    fn token(&self, caller: &Caller, sid: &str, typ: &str, ttl: i64) -> (String, i64) {
        let now = now_secs();
        let exp = now + ttl;
        let claims = Claims {
            sub: caller.user_id.to_string(),
            iss: ISSUER.to_string(),
            exp,
            iat: now,
            role: caller.role.as_str().to_string(),
            sid: sid.to_string(),
            typ: typ.to_string(),
        };
        (jwt::encode(&claims, &self.secret), exp)
    }

    /// Starts a session for `caller`: the login response body.
    pub fn login(&self, db: &KalamDb, caller: &Caller) -> Result<Value, String> {
        // Root without a password is accepted from loopback only, and so
        // are the tokens it gets.
        let loopback_only = db
            .users()
            .active(caller.user_id.as_str())
            .is_some_and(|r| r.password_hash.is_empty());
        let session = self
            .sessions()?
            .create(
                caller.user_id.as_str(),
                self.refresh_ttl_secs * 1_000_000,
                loopback_only,
            )
            .map_err(|e| e.to_string())?;
        let (refresh, refresh_exp) =
            self.token(caller, &session.id, "refresh", self.refresh_ttl_secs);
        Ok(self.token_body(db, caller, &session.id, Some((refresh, refresh_exp))))
    }

    fn token_body(
        &self,
        db: &KalamDb,
        caller: &Caller,
        sid: &str,
        refresh: Option<(String, i64)>,
    ) -> Value {
        let (access, access_exp) = self.token(caller, sid, "access", self.access_ttl_secs);
        let mut body = json!({
            "user": user_json(db, caller),
            // KalamDB's client library refuses a login answer without it.
            "admin_ui_access": caller.role >= Role::Dba,
            "access_token": access,
            "token_type": "Bearer",
            "expires_at": rfc3339(access_exp),
            "expires_in": self.access_ttl_secs,
        });
        if let Some((refresh, exp)) = refresh {
            body["refresh_token"] = Value::from(refresh);
            body["refresh_expires_at"] = Value::from(rfc3339(exp));
        }
        body
    }

    /// Checks a token of type `typ` and its session; returns the caller
    /// (with the user's current role) and the session id.
    pub fn verify(
        &self,
        db: &KalamDb,
        token: &str,
        typ: &str,
        from_loopback: bool,
    ) -> Result<(Caller, String), TokenRefusal> {
        let claims = jwt::decode(token, &self.secret, now_secs()).map_err(|e| match e {
            TokenError::Expired => TokenRefusal::Expired,
            other => TokenRefusal::Invalid(other.to_string()),
        })?;
        if claims.typ != typ {
            return Err(TokenRefusal::Invalid(format!(
                "a {} token cannot be used here; use the {typ} token",
                claims.typ
            )));
        }
        let session = self
            .sessions()
            .map_err(TokenRefusal::Invalid)?
            .get(&claims.sid)
            .map_err(|e| TokenRefusal::Invalid(e.to_string()))?
            .filter(|s| s.user_id == claims.sub)
            .ok_or_else(|| {
                TokenRefusal::Invalid(
                    "the session has ended (logged out, or the password changed)".into(),
                )
            })?;
        if session.loopback_only && !from_loopback {
            return Err(TokenRefusal::Invalid(
                "this token was issued to root without a password and works only from \
                 the server's own machine"
                    .into(),
            ));
        }
        let caller = db
            .users()
            .caller_of(&claims.sub)
            .ok_or_else(|| TokenRefusal::Invalid("the user no longer exists".into()))?;
        Ok((caller, session.id))
    }

    /// A new access token for a valid refresh token.
    pub fn refresh(
        &self,
        db: &KalamDb,
        refresh_token: &str,
        from_loopback: bool,
    ) -> Result<Value, TokenRefusal> {
        let (caller, sid) = self.verify(db, refresh_token, "refresh", from_loopback)?;
        // The answer has the login's fields (clients decode both alike):
        // the refresh token stays the one given, until it expires.
        let claims = jwt::decode(refresh_token, &self.secret, now_secs())
            .map_err(|e| TokenRefusal::Invalid(e.to_string()))?;
        let refresh = Some((refresh_token.to_string(), claims.exp));
        Ok(self.token_body(db, &caller, &sid, refresh))
    }

    /// Ends the session a (refresh or access) token belongs to.
    pub fn logout(
        &self,
        db: &KalamDb,
        token: &str,
        from_loopback: bool,
    ) -> Result<(), TokenRefusal> {
        let sid = self
            .verify(db, token, "access", from_loopback)
            .or_else(|_| self.verify(db, token, "refresh", from_loopback))?
            .1;
        self.sessions()
            .map_err(TokenRefusal::Invalid)?
            .revoke(&sid)
            .map_err(|e| TokenRefusal::Invalid(e.to_string()))?;
        Ok(())
    }
}

/// The `user` object of auth responses.
pub fn user_json(db: &KalamDb, caller: &Caller) -> Value {
    match db.users().active(caller.user_id.as_str()) {
        Some(record) => json!({
            "id": record.id.as_str(),
            "username": record.id.as_str(),
            "role": record.role.as_str(),
            "email": record.email,
            "created_at": rfc3339(record.created_at / 1_000_000),
            "updated_at": rfc3339(record.updated_at / 1_000_000),
        }),
        None => json!({ "id": caller.user_id.as_str(), "role": caller.role.as_str() }),
    }
}

fn load_or_create_secret(path: &Path) -> Result<Vec<u8>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(text.trim().as_bytes().to_vec()),
        Ok(_) => {
            return Err(format!(
                "{} is too short; delete it to make a new one",
                path.display()
            ))
        }
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!("cannot read {}: {e}", path.display()))
        }
        Err(_) => {}
    }
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &secret).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "generated a JWT secret");
    Ok(secret.into_bytes())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_651_199), "2026-11-25T23:59:59Z");
    }
}
