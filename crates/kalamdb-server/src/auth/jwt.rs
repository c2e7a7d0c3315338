//! JSON Web Tokens, HS256 only (RFC 7519 with an RFC 7515 compact JWS):
//! `base64url(header) . base64url(claims) . base64url(HMAC-SHA256)`.
//! Verification accepts exactly the header this server writes, checks the
//! signature in constant time, then the issuer and expiry.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub const ISSUER: &str = "kalamdb";
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    /// Seconds since the epoch.
    pub exp: i64,
    pub iat: i64,
    pub role: String,
    /// The login session the token belongs to.
    pub sid: String,
    /// `access` or `refresh`.
    pub typ: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Malformed,
    BadSignature,
    WrongIssuer,
    Expired,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenError::Malformed => "malformed token",
            TokenError::BadSignature => "invalid token signature",
            TokenError::WrongIssuer => "token was not issued by this server",
            TokenError::Expired => "token has expired",
        })
    }
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

pub fn encode(claims: &Claims, secret: &[u8]) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let mut mac = mac(secret);
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// Checks a token and returns its claims; `now` is in seconds.
pub fn decode(token: &str, secret: &[u8], now: i64) -> Result<Claims, TokenError> {
    if token.len() > 8 * 1024 {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| TokenError::Malformed)?;
    let mut mac = mac(secret);
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| TokenError::BadSignature)?;
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(TokenError::Malformed);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(TokenError::WrongIssuer);
    }
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: "alice".into(),
            iss: ISSUER.into(),
            exp,
            iat: 0,
            role: "user".into(),
            sid: "s1".into(),
            typ: "access".into(),
        }
    }

    #[test]
    fn round_trip_and_rejections() {
        let token = encode(&claims(100), b"secret");
        assert_eq!(decode(&token, b"secret", 50).unwrap(), claims(100));
        assert_eq!(decode(&token, b"other", 50), Err(TokenError::BadSignature));
        assert_eq!(decode(&token, b"secret", 100), Err(TokenError::Expired));
        // A changed claim breaks the signature.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let mut forged = claims(100);
        forged.role = "system".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            decode(&parts.join("."), b"secret", 50),
            Err(TokenError::BadSignature)
        );
        // "alg": "none" tokens and junk are malformed or unsigned.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        assert!(decode(&none, b"secret", 50).is_err());
        for junk in ["", "a.b", "a.b.c.d", "!!!.@@@.###"] {
            assert!(decode(junk, b"secret", 50).is_err(), "{junk}");
        }
        let mut other_issuer = claims(100);
        other_issuer.iss = "evil".into();
        assert_eq!(
            decode(&encode(&other_issuer, b"secret"), b"secret", 50),
            Err(TokenError::WrongIssuer)
        );
    }
}
