//! Identity: validation of dev identities and signed tokens.
//!
//! A token is text a game backend mints and hands to its client:
//!
//! ```text
//! v1.<hex(user_id)>.<hex(username)>.<expires_unix_seconds>.<hex(tag)>
//! ```
//!
//! `tag` is HMAC-SHA256, keyed with the server's secret, over everything
//! before the last `.` (the ASCII text `v1.<..>.<..>.<expires>`). Hex is
//! lowercase. Any backend language can mint one with its standard HMAC.

use crate::protocol::MAX_NAME_BYTES;
use ring::hmac;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const TOKEN_VERSION: &str = "v1";

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub user_id: String,
    pub username: String,
    pub expires_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed: {0}")]
    Malformed(&'static str),
    #[error("token signature does not match (wrong secret or tampered token)")]
    BadSignature,
    #[error("token expired at {expired_at} (unix seconds), it is now {now}")]
    Expired { expired_at: u64, now: u64 },
    #[error("{0}")]
    InvalidIdentity(String),
}

/// Seconds since the Unix epoch, 0 if the clock is before it.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, 0 if the clock is before it.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Checks a user id or username: 1 to 128 bytes, no control characters.
pub fn validate_name(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_NAME_BYTES {
        return Err(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes, got {}",
            value.len()
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{what} must not contain control characters"));
    }
    Ok(())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Mints a token valid until `expires_at` (unix seconds).
pub fn mint_token(secret: &[u8], user_id: &str, username: &str, expires_at: u64) -> String {
    let body = format!(
        "{TOKEN_VERSION}.{}.{}.{expires_at}",
        hex(user_id.as_bytes()),
        hex(username.as_bytes())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body.as_bytes());
    format!("{body}.{}", hex(tag.as_ref()))
}

/// Mints a token valid for `ttl` from now: what a game backend calls.
pub fn mint_token_for(secret: &[u8], user_id: &str, username: &str, ttl: Duration) -> String {
    mint_token(
        secret,
        user_id,
        username,
        unix_now().saturating_add(ttl.as_secs()),
    )
}

/// Verifies signature first (constant time), then expiry and the names.
pub fn verify_token(secret: &[u8], token: &str, now: u64) -> Result<Claims, TokenError> {
    let (body, tag_hex) = token
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("no signature"))?;
    let tag = unhex(tag_hex).ok_or(TokenError::Malformed("signature is not lowercase hex"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body.as_bytes(), &tag).map_err(|_| TokenError::BadSignature)?;

    let mut parts = body.split('.');
    let (Some(version), Some(user_hex), Some(name_hex), Some(expiry), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(TokenError::Malformed("expected 5 dot-separated fields"));
    };
    if version != TOKEN_VERSION {
        return Err(TokenError::Malformed("unknown token version"));
    }
    let text = |hex_text: &str| {
        unhex(hex_text)
            .and_then(|raw| String::from_utf8(raw).ok())
            .ok_or(TokenError::Malformed("name is not hex of UTF-8"))
    };
    let user_id = text(user_hex)?;
    let username = text(name_hex)?;
    let expires_at: u64 = expiry
        .parse()
        .map_err(|_| TokenError::Malformed("expiry is not a number"))?;
    if expires_at <= now {
        return Err(TokenError::Expired {
            expired_at: expires_at,
            now,
        });
    }
    validate_name("user_id", &user_id).map_err(TokenError::InvalidIdentity)?;
    validate_name("username", &username).map_err(TokenError::InvalidIdentity)?;
    Ok(Claims {
        user_id,
        username,
        expires_at,
    })
}

/// Verifies with the current secret, then, during a rotation, with the
/// previous one: tokens minted before the rotation stay valid until they
/// expire. Only a signature mismatch falls through to the previous secret.
pub fn verify_token_rotating(
    current: &[u8],
    previous: Option<&[u8]>,
    token: &str,
    now: u64,
) -> Result<Claims, TokenError> {
    match (verify_token(current, token, now), previous) {
        (Err(TokenError::BadSignature), Some(previous)) => verify_token(previous, token, now),
        (result, _) => result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies() {
        let token = mint_token(b"secret", "u-1", "Ana", 2_000);
        let claims = verify_token(b"secret", &token, 1_000).expect("valid");
        assert_eq!(claims.user_id, "u-1");
        assert_eq!(claims.username, "Ana");
        assert_eq!(claims.expires_at, 2_000);
    }

    #[test]
    fn expired_wrong_secret_and_tampered_tokens_are_refused() {
        let token = mint_token(b"secret", "u-1", "Ana", 2_000);
        assert!(matches!(
            verify_token(b"secret", &token, 2_000),
            Err(TokenError::Expired { .. })
        ));
        assert_eq!(
            verify_token(b"other", &token, 1_000),
            Err(TokenError::BadSignature)
        );
        let forged = token.replacen(&hex(b"u-1"), &hex(b"u-2"), 1);
        assert_eq!(
            verify_token(b"secret", &forged, 1_000),
            Err(TokenError::BadSignature)
        );
        assert!(matches!(
            verify_token(b"secret", "garbage", 1_000),
            Err(TokenError::Malformed(_))
        ));
    }

    #[test]
    fn during_a_rotation_the_previous_secret_still_verifies() {
        let old = mint_token(b"old", "u-1", "Ana", 2_000);
        let new = mint_token(b"new", "u-1", "Ana", 2_000);
        let unknown = mint_token(b"unknown", "u-1", "Ana", 2_000);
        for token in [&old, &new] {
            let claims = verify_token_rotating(b"new", Some(b"old"), token, 1_000).unwrap();
            assert_eq!(claims.user_id, "u-1");
        }
        assert_eq!(
            verify_token_rotating(b"new", Some(b"old"), &unknown, 1_000),
            Err(TokenError::BadSignature)
        );
        // Without a previous secret the rotation is over: old tokens fail.
        assert_eq!(
            verify_token_rotating(b"new", None, &old, 1_000),
            Err(TokenError::BadSignature)
        );
        // An old token past its expiry stays expired.
        assert!(matches!(
            verify_token_rotating(b"new", Some(b"old"), &old, 2_000),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            unhex(&hex(&[0, 1, 0xab, 0xff])),
            Some(vec![0, 1, 0xab, 0xff])
        );
        assert_eq!(unhex("zz"), None);
    }
}
