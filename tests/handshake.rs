//! Hello -> Welcome, and every way a Hello is refused.
mod support;

use partyline::auth::{mint_token, mint_token_for, unix_now};
use partyline::protocol::{
    decode_body, ClientFrame, ErrorCode, Hello, Identity, ServerFrame, DEFAULT_MAX_DATAGRAM_DATA,
    MAX_PARTY_SIZE, PROTOCOL_VERSION,
};
use partyline::server::AuthMode;
use partyline::wire::read_frame;
use partyline_client::{Client, ClientConfig, ClientError, PartyId};
use std::time::Duration;
use support::*;

/// At least 32 bytes: a server refuses a shorter token secret.
const SECRET: &[u8] = b"test-secret-of-at-least-32-bytes";

async fn token_server() -> TestServer {
    start_with(|c| {
        c.auth = AuthMode::Token {
            secret: SECRET.to_vec(),
            previous: None,
        }
    })
    .await
}

#[tokio::test]
async fn welcome_carries_session_presence_token_and_limits() {
    let server = start().await;
    let (client, _events) = server.client("ana").await;
    let welcome = client.welcome();
    assert_eq!(welcome.presence.user_id, "ana");
    assert_eq!(welcome.presence.username, "ana-name");
    assert_eq!(welcome.presence.session_id, welcome.session_id);
    assert_ne!(welcome.session_id, partyline_client::SessionId::nil());
    assert!(!welcome.resume_token.is_empty());
    assert_eq!(welcome.limits.max_party_size, MAX_PARTY_SIZE);
    assert_eq!(welcome.limits.max_datagram_data, DEFAULT_MAX_DATAGRAM_DATA);
    let (other, _) = server.client("bob").await;
    assert_ne!(other.session_id(), client.session_id());
}

#[tokio::test]
async fn a_wrong_protocol_version_is_refused_naming_both_versions() {
    let server = start().await;
    let (_endpoint, connection) = server.raw().await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let hello = ClientFrame::Hello(Hello {
        resume: None,
        version: 99,
        identity: Identity::Dev {
            user_id: "u".into(),
            username: "n".into(),
        },
    });
    send.write_all(&frame(&hello)).await.unwrap();
    let mut body = Vec::new();
    assert!(read_frame(&mut recv, &mut body).await.unwrap());
    match decode_body::<ServerFrame>(&body).unwrap() {
        ServerFrame::Refused(error) => {
            assert_eq!(error.code, ErrorCode::VersionMismatch);
            assert!(
                error.message.contains(&PROTOCOL_VERSION.to_string()),
                "{}",
                error.message
            );
            assert!(error.message.contains("99"), "{}", error.message);
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    // Then the server closes the connection.
    let reason = tokio::time::timeout(WAIT, connection.closed())
        .await
        .unwrap();
    assert!(
        matches!(reason, quinn::ConnectionError::ApplicationClosed(_)),
        "{reason:?}"
    );
}

#[tokio::test]
async fn a_command_before_hello_is_a_protocol_violation() {
    let server = start().await;
    let (_endpoint, connection) = server.raw().await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let request = ClientFrame::Request {
        id: 1,
        command: partyline::protocol::Command::GetParty {
            party_id: PartyId::random(),
        },
    };
    send.write_all(&frame(&request)).await.unwrap();
    let mut body = Vec::new();
    assert!(read_frame(&mut recv, &mut body).await.unwrap());
    match decode_body::<ServerFrame>(&body).unwrap() {
        ServerFrame::Refused(error) => assert_eq!(error.code, ErrorCode::ProtocolViolation),
        other => panic!("expected Refused, got {other:?}"),
    }
}

#[tokio::test]
async fn dev_identities_must_be_sane() {
    let server = start().await;
    let empty = ClientConfig::dev(server.addr, server.certs.clone(), "", "name");
    let error = Client::connect(empty).await.err().expect("refused");
    assert_eq!(error.code(), Some(ErrorCode::Unauthenticated), "{error}");
    let long = "x".repeat(129);
    let too_long = ClientConfig::dev(server.addr, server.certs.clone(), "u", &long);
    let error = Client::connect(too_long).await.err().expect("refused");
    assert_eq!(error.code(), Some(ErrorCode::Unauthenticated), "{error}");
}

#[tokio::test]
async fn a_valid_token_gives_the_identity_it_names() {
    let server = token_server().await;
    let token = mint_token_for(SECRET, "player-7", "Seven", Duration::from_secs(60));
    let config = ClientConfig::with_token(server.addr, server.certs.clone(), &token);
    let (client, _events) = Client::connect(config).await.expect("admitted");
    assert_eq!(client.presence().user_id, "player-7");
    assert_eq!(client.presence().username, "Seven");
}

async fn refused_with(config: ClientConfig) -> ClientError {
    Client::connect(config).await.err().expect("refused")
}

#[tokio::test]
async fn bad_expired_and_tampered_tokens_are_refused_clearly() {
    let server = token_server().await;
    let cases = [
        ("garbage", "malformed".to_string()),
        (
            &*mint_token(b"wrong-secret", "u", "n", unix_now() + 60),
            "signature".to_string(),
        ),
        (
            &*mint_token(SECRET, "u", "n", unix_now() - 1),
            "expired".to_string(),
        ),
    ]
    .map(|(token, needle)| (token.to_string(), needle));
    for (token, needle) in cases {
        let config = ClientConfig::with_token(server.addr, server.certs.clone(), &token);
        let error = refused_with(config).await;
        match error {
            ClientError::Refused(body) => {
                assert_eq!(body.code, ErrorCode::Unauthenticated);
                assert!(
                    body.message.contains(&needle),
                    "{} should mention {needle}",
                    body.message
                );
            }
            other => panic!("expected a refusal, got {other}"),
        }
    }
    // Tampering: the same token with another user id spliced in.
    let token = mint_token(SECRET, "alice", "Alice", unix_now() + 60);
    let forged = token.replacen(&hex_of("alice"), &hex_of("mallo"), 1);
    assert_ne!(forged, token);
    let config = ClientConfig::with_token(server.addr, server.certs.clone(), &forged);
    let error = refused_with(config).await;
    assert_eq!(error.code(), Some(ErrorCode::Unauthenticated));
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn identity_modes_do_not_mix() {
    let tokens = token_server().await;
    let error = refused_with(tokens.config("dev-user")).await;
    assert_eq!(error.code(), Some(ErrorCode::Unauthenticated));

    let dev = start().await;
    let token = mint_token_for(SECRET, "u", "n", Duration::from_secs(60));
    let config = ClientConfig::with_token(dev.addr, dev.certs.clone(), &token);
    let error = refused_with(config).await;
    assert_eq!(error.code(), Some(ErrorCode::Unauthenticated));
}

/// A program that embeds the server is held to what `partyline serve` is:
/// no secret under 32 bytes, no match secret that is a token secret.
#[tokio::test]
async fn a_server_is_not_built_with_a_guessable_secret_or_a_match_secret_that_mints() {
    use partyline::server::{Server, ServerConfig};
    let config_with = |auth: AuthMode, match_secret: Option<&[u8]>| {
        let (tls, _, _) = partyline::certs::generate_dev_identity().unwrap();
        let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), tls);
        config.auth = auth;
        config.match_secret = match_secret.map(<[u8]>::to_vec);
        config
    };
    let token = |secret: &[u8], previous: Option<&[u8]>| AuthMode::Token {
        secret: secret.to_vec(),
        previous: previous.map(<[u8]>::to_vec),
    };
    let short = &[7u8; 31][..];
    let other = &[8u8; 32][..];
    for (config, expected) in [
        (
            config_with(token(short, None), None),
            "refusing the token secret: it is 31 bytes",
        ),
        (
            config_with(token(SECRET, Some(short)), None),
            "refusing the previous token secret: it is 31 bytes",
        ),
        (
            config_with(token(SECRET, None), Some(short)),
            "refusing the match secret: it is 31 bytes",
        ),
        (
            config_with(AuthMode::Dev, Some(short)),
            "refusing the match secret: it is 31 bytes",
        ),
        (
            config_with(token(SECRET, Some(other)), Some(other)),
            "refusing the match secret: it is the previous token secret",
        ),
        (
            config_with(token(SECRET, None), Some(SECRET)),
            "refusing the match secret: it is the token secret",
        ),
    ] {
        match Server::bind(config) {
            Err(error) => assert!(error.to_string().contains(expected), "{error}"),
            Ok(_) => panic!("built with a refused secret: {expected}"),
        }
    }
    // 32 bytes each, all different: built.
    assert!(Server::bind(config_with(token(SECRET, Some(other)), Some(&[9u8; 32]))).is_ok());
}
