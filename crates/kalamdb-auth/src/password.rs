//! Passwords: the policy new ones must meet, and Argon2id hashes (PHC
//! strings) of them.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

/// Shortest password accepted by CREATE/ALTER USER and set-up.
pub const MIN_PASSWORD_LEN: usize = 4;
/// Longest password accepted (bounds the KDF's work on hostile input).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Why a new password is refused, if it is.
pub fn check_policy(password: &str) -> Result<(), String> {
    if password.len() < MIN_PASSWORD_LEN {
        return Err(format!(
            "password must be at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        ));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Whether `password` is the one `hash` was made from; a malformed hash
/// (a dropped user's `!`) matches nothing.
pub fn verify(password: &str, hash: &str) -> bool {
    password.len() <= MAX_PASSWORD_LEN
        && PasswordHash::new(hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
}

/// A hash of a random password, checked against for unknown users so that
/// timing does not reveal which names exist.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash(&format!("{:x}", rand::random::<u128>())).unwrap_or_default())
}
