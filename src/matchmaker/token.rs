//! The match token: what a matched player hands the game server, so the
//! game server can check, with a secret it shares with partyline and
//! nothing else, who is in the match and with which party.
//!
//! ```text
//! m1.<match id>.<expires>.<players>.<tag>
//! ```
//!
//! - `match id`: the match's UUID, 32 lowercase hex digits;
//! - `expires`: Unix seconds, decimal;
//! - `players`: comma-separated `<user id as lowercase hex of its UTF-8>:
//!   <party id as 32 hex digits, or empty for a solo player>`;
//! - `tag`: lowercase hex of HMAC-SHA256(match key, everything before the
//!   last dot). PROTOCOL.md has a worked example.
//!
//! The match key is never the token secret itself: a game server that
//! holds it to check matches must not be able to mint identity tokens.
//! Unless the operator gives a match secret of its own, the key is derived
//! one way from the token secret ([`derive_match_key`]).

use crate::auth::{hex, unhex};
use crate::protocol::PartyId;
use ring::hmac;
use uuid::Uuid;

const VERSION: &str = "m1";

/// HKDF's `info` for the match key: names what the key is for, so that no
/// other key derived from the token secret can equal it.
pub const MATCH_KEY_INFO: &[u8] = b"partyline match token v1";

/// The length of a derived match key: SHA-256's output.
pub const MATCH_KEY_BYTES: usize = 32;

/// The key match tokens are signed with when the operator gave no match
/// secret: HKDF-SHA256 (RFC 5869) of the token secret, with a salt of 32
/// zero bytes and [`MATCH_KEY_INFO`], 32 bytes long. One way: the key does
/// not give back the token secret, so a game server holding it cannot mint
/// identity tokens. PROTOCOL.md, "Match token", has a worked example.
pub fn derive_match_key(token_secret: &[u8]) -> [u8; MATCH_KEY_BYTES] {
    // RFC 5869 with HMAC-SHA256 and a length of one hash: extract, then
    // the first (only) block of expand, T(1) = HMAC(PRK, info || 0x01).
    // Written with HMAC so that it cannot fail; the tests check it against
    // ring's HKDF.
    let salt = hmac::Key::new(hmac::HMAC_SHA256, &[0u8; MATCH_KEY_BYTES]);
    let pseudo_random = hmac::sign(&salt, token_secret);
    let expand = hmac::Key::new(hmac::HMAC_SHA256, pseudo_random.as_ref());
    let mut context = hmac::Context::with_key(&expand);
    context.update(MATCH_KEY_INFO);
    context.update(&[1]);
    let mut key = [0u8; MATCH_KEY_BYTES];
    key.copy_from_slice(context.sign().as_ref());
    key
}

/// One player of a match, as the token lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchPlayer {
    pub user_id: String,
    /// The party it came with; `None` for a solo ticket.
    pub party_id: Option<PartyId>,
}

/// What a valid match token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchClaims {
    pub match_id: Uuid,
    /// Unix seconds.
    pub expires_at: u64,
    pub players: Vec<MatchPlayer>,
}

impl MatchClaims {
    /// The parties in the match, each once, in player order.
    pub fn parties(&self) -> Vec<PartyId> {
        let mut parties: Vec<PartyId> = Vec::new();
        for party in self.players.iter().filter_map(|p| p.party_id) {
            if !parties.contains(&party) {
                parties.push(party);
            }
        }
        parties
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchTokenError {
    #[error("match token is malformed: {0}")]
    Malformed(&'static str),
    #[error("match token signature does not match (wrong secret or tampered token)")]
    BadSignature,
    #[error("match token expired at {expired_at} (now {now})")]
    Expired { expired_at: u64, now: u64 },
}

fn body_of(claims: &MatchClaims) -> String {
    let players: Vec<String> = claims
        .players
        .iter()
        .map(|p| {
            let party = p.party_id.map(|id| hex(id.as_bytes())).unwrap_or_default();
            format!("{}:{party}", hex(p.user_id.as_bytes()))
        })
        .collect();
    format!(
        "{VERSION}.{}.{}.{}",
        hex(claims.match_id.as_bytes()),
        claims.expires_at,
        players.join(",")
    )
}

/// Signs the claims with the match key `secret` (a server's is
/// `ServerConfig::match_key`).
pub fn mint_match_token(secret: &[u8], claims: &MatchClaims) -> String {
    let body = body_of(claims);
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body.as_bytes());
    format!("{body}.{}", hex(tag.as_ref()))
}

/// Checks the signature first (in constant time), then the form and the
/// expiry (`now` in Unix seconds): what a game server calls, with the match
/// key (`partyline match-key` prints the one derived from a token secret),
/// not the token secret.
pub fn verify_match_token(
    secret: &[u8],
    token: &str,
    now: u64,
) -> Result<MatchClaims, MatchTokenError> {
    let (body, tag_hex) = token
        .rsplit_once('.')
        .ok_or(MatchTokenError::Malformed("no signature"))?;
    let tag = unhex(tag_hex).ok_or(MatchTokenError::Malformed("signature is not lowercase hex"))?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body.as_bytes(), &tag).map_err(|_| MatchTokenError::BadSignature)?;
    let mut fields = body.split('.');
    let (Some(version), Some(match_hex), Some(expiry), Some(players), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(MatchTokenError::Malformed(
            "expected 5 dot-separated fields",
        ));
    };
    if version != VERSION {
        return Err(MatchTokenError::Malformed("unknown match token version"));
    }
    let id = |text: &str| -> Option<[u8; 16]> { unhex(text)?.try_into().ok() };
    let match_id = id(match_hex)
        .map(Uuid::from_bytes)
        .ok_or(MatchTokenError::Malformed("match id is not 32 hex digits"))?;
    let expires_at: u64 = expiry
        .parse()
        .map_err(|_| MatchTokenError::Malformed("expiry is not a number"))?;
    let players = players
        .split(',')
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (user_hex, party_hex) = entry
                .split_once(':')
                .ok_or(MatchTokenError::Malformed("a player is not user:party"))?;
            let user_id = unhex(user_hex)
                .and_then(|raw| String::from_utf8(raw).ok())
                .ok_or(MatchTokenError::Malformed("a user id is not hex of UTF-8"))?;
            let party_id = match party_hex {
                "" => None,
                text => Some(PartyId::from_bytes(id(text).ok_or(
                    MatchTokenError::Malformed("a party id is not 32 hex digits"),
                )?)),
            };
            Ok(MatchPlayer { user_id, party_id })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if expires_at <= now {
        return Err(MatchTokenError::Expired {
            expired_at: expires_at,
            now,
        });
    }
    Ok(MatchClaims {
        match_id,
        expires_at,
        players,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> MatchClaims {
        MatchClaims {
            match_id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            expires_at: 1_800_000_000,
            players: vec![
                MatchPlayer {
                    user_id: "ana".into(),
                    party_id: Some(PartyId::from_u128(7)),
                },
                MatchPlayer {
                    user_id: "bob".into(),
                    party_id: Some(PartyId::from_u128(7)),
                },
                MatchPlayer {
                    user_id: "solo".into(),
                    party_id: None,
                },
            ],
        }
    }

    #[test]
    fn a_token_verifies_and_says_who_is_in_the_match_with_which_party() {
        let token = mint_match_token(b"game-secret", &claims());
        let verified = verify_match_token(b"game-secret", &token, 1_700_000_000).unwrap();
        assert_eq!(verified, claims());
        assert_eq!(verified.parties(), vec![PartyId::from_u128(7)]);
        // The exact text, as PROTOCOL.md shows it (pins the format).
        assert!(token.starts_with(
            "m1.0123456789abcdef0123456789abcdef.1800000000.616e61:00000000000000000000000000000007,626f62:00000000000000000000000000000007,736f6c6f:."
        ), "{token}");
    }

    #[test]
    fn forged_tampered_and_expired_tokens_are_refused() {
        let token = mint_match_token(b"game-secret", &claims());
        assert_eq!(
            verify_match_token(b"other-secret", &token, 0),
            Err(MatchTokenError::BadSignature)
        );
        // Another player written in: the signature no longer matches.
        let tampered = token.replacen("736f6c6f", "6576650a", 1);
        assert_eq!(
            verify_match_token(b"game-secret", &tampered, 0),
            Err(MatchTokenError::BadSignature)
        );
        assert_eq!(
            verify_match_token(b"game-secret", &token, 1_800_000_000),
            Err(MatchTokenError::Expired {
                expired_at: 1_800_000_000,
                now: 1_800_000_000
            })
        );
        assert!(matches!(
            verify_match_token(b"game-secret", "m1.nonsense", 0),
            Err(MatchTokenError::Malformed(_) | MatchTokenError::BadSignature)
        ));
        assert!(matches!(
            verify_match_token(b"game-secret", "no-dots-at-all", 0),
            Err(MatchTokenError::Malformed(_))
        ));
    }

    /// PROTOCOL.md's worked example of the derivation, computed apart
    /// from this code (Python's hmac and hashlib, RFC 5869 by hand).
    const EXAMPLE_SECRET: &[u8] = b"example-token-secret-of-32-bytes";
    const EXAMPLE_KEY: &str = "3609d6ea32760b6991128ea68e84db63414a4882c684fec0b6bee01206a48b05";

    #[test]
    fn the_match_key_is_hkdf_sha256_of_the_token_secret_with_its_own_label() {
        assert_eq!(hex(&derive_match_key(EXAMPLE_SECRET)), EXAMPLE_KEY);
        assert_eq!(
            hex(&derive_match_key(b"partyline-dev-match-secret")),
            "af9705305106dc63f0b205a0a1a646e5b5b30252e41a62fdcacfb68b3cddf539"
        );
        // The same as ring's HKDF (an empty salt is 32 zero bytes to HMAC).
        struct Length;
        impl ring::hkdf::KeyType for Length {
            fn len(&self) -> usize {
                MATCH_KEY_BYTES
            }
        }
        for secret in [
            EXAMPLE_SECRET,
            b"another secret of thirty-two b!!",
            &[0xff; 100],
        ] {
            for salt in [&[][..], &[0u8; 32][..]] {
                let mut expected = [0u8; MATCH_KEY_BYTES];
                ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, salt)
                    .extract(secret)
                    .expand(&[MATCH_KEY_INFO], Length)
                    .unwrap()
                    .fill(&mut expected)
                    .unwrap();
                assert_eq!(derive_match_key(secret), expected);
            }
        }
        assert_ne!(&derive_match_key(EXAMPLE_SECRET)[..], EXAMPLE_SECRET);
    }

    #[test]
    fn a_token_signed_with_the_derived_key_does_not_verify_with_the_token_secret() {
        let key = derive_match_key(EXAMPLE_SECRET);
        let token = mint_match_token(&key, &claims());
        assert_eq!(verify_match_token(&key, &token, 0), Ok(claims()));
        assert_eq!(
            verify_match_token(EXAMPLE_SECRET, &token, 0),
            Err(MatchTokenError::BadSignature)
        );
    }
}
