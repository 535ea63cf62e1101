//! Edges of the protocol that PROTOCOL.md states and a client author relies
//! on: the handshake's time limits, a second Hello, and datagrams sent
//! before `Welcome`. Pinned here so the document cannot drift.
mod support;

use partyline::protocol::{
    decode_body, encode_client_datagram, ClientFrame, CloseCode, Command, ErrorCode, Event, Hello,
    Identity, PartyId, Reply, Resume, ServerFrame, PROTOCOL_VERSION,
};
use partyline::wire::read_frame;
use std::time::Duration;
use support::wire::WireClient;
use support::*;

fn hello(user: &str) -> ClientFrame {
    ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        identity: Identity::Dev {
            user_id: user.into(),
            username: user.into(),
        },
        resume: None,
    })
}

async fn read_server_frame(recv: &mut quinn::RecvStream) -> ServerFrame {
    let mut body = Vec::new();
    let read = tokio::time::timeout(WAIT, read_frame(recv, &mut body))
        .await
        .expect("a frame within the limit");
    assert!(read.expect("a whole frame"), "the stream ended");
    decode_body(&body).expect("a frame the tests can decode")
}

/// The server closes `connection` with `code`.
async fn closed_with(connection: &quinn::Connection, code: CloseCode) -> String {
    let closed = tokio::time::timeout(WAIT, connection.closed())
        .await
        .expect("closed within the limit");
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, (code as u32).into(), "{close:?}");
            String::from_utf8_lossy(&close.reason).into_owned()
        }
        other => panic!("expected a close with code {}, got {other:?}", code as u32),
    }
}

const HELLO_TIME: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_hello_not_complete_in_time_is_refused_with_code_3() {
    let server = start_with(|c| c.hello_timeout = HELLO_TIME).await;
    let (_endpoint, connection) = server.raw().await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    // The length prefix and a little of the body, then nothing.
    let hello = frame(&hello("ana"));
    send.write_all(&hello[..6]).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::Refused(error) => {
            assert_eq!(error.code, ErrorCode::ProtocolViolation);
            assert!(error.message.contains("time limit"), "{error}");
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    closed_with(&connection, CloseCode::HandshakeRefused).await;
}

#[tokio::test]
async fn no_control_stream_in_time_closes_with_code_1_and_no_frame() {
    let server = start_with(|c| c.hello_timeout = HELLO_TIME).await;
    let (_endpoint, connection) = server.raw().await;
    // Opened but never written: the server never sees it.
    let (_send, _recv) = connection.open_bi().await.unwrap();
    let reason = closed_with(&connection, CloseCode::ProtocolViolation).await;
    assert_eq!(reason, "no control stream opened");
}

#[tokio::test]
async fn a_stream_finished_before_its_first_byte_is_closed_without_a_frame() {
    let server = start().await;
    let (_endpoint, connection) = server.raw().await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.finish().unwrap();
    closed_with(&connection, CloseCode::Normal).await;
    let mut body = Vec::new();
    assert!(
        !matches!(read_frame(&mut recv, &mut body).await, Ok(true)),
        "no frame"
    );
}

#[tokio::test]
async fn a_second_hello_changes_nothing_and_the_session_goes_on() {
    let server = start().await;
    let (_endpoint, connection) = server.raw().await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(&frame(&hello("ana"))).await.unwrap();
    let welcome = match read_server_frame(&mut recv).await {
        ServerFrame::Welcome(welcome) => welcome,
        other => panic!("expected Welcome, got {other:?}"),
    };
    // Another user's Hello, resuming this very session.
    let second = ClientFrame::Hello(Hello {
        version: PROTOCOL_VERSION,
        identity: Identity::Dev {
            user_id: "someone-else".into(),
            username: "someone-else".into(),
        },
        resume: Some(Resume {
            token: welcome.resume_token.clone(),
            last_event_seq: 0,
        }),
    });
    send.write_all(&frame(&second)).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::FrameError(error) => assert_eq!(error.code, ErrorCode::ProtocolViolation),
        other => panic!("expected a FrameError, got {other:?}"),
    }
    // Still ana's session, on this connection.
    let create = ClientFrame::Request {
        id: 1,
        command: Command::CreateParty {
            open: true,
            max_size: 2,
            label: String::new(),
            invite_policy: Default::default(),
            state: Default::default(),
        },
    };
    send.write_all(&frame(&create)).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::Response {
            id: 1,
            result: Ok(Reply::Party(snapshot)),
        } => assert_eq!(snapshot.leader, welcome.presence),
        other => panic!("expected the party, got {other:?}"),
    }
    // And the token of the first Welcome still takes it back.
    let ticket = Resume {
        token: welcome.resume_token,
        last_event_seq: 0,
    };
    let resumed = WireClient::resume(&server, "ana", ticket)
        .await
        .expect("the first Welcome's token still works");
    assert_eq!(resumed.session_id(), welcome.session_id);
}

#[tokio::test]
async fn datagrams_sent_before_hello_are_handled_after_welcome() {
    let server = start().await;
    let (_endpoint, connection) = server.raw().await;
    let party = PartyId::from_bytes([0x11; 16]);
    connection
        .send_datagram(encode_client_datagram(party, 3, b"early"))
        .unwrap();
    // Let it arrive well before the Hello.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    send.write_all(&frame(&hello("ana"))).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::Welcome(welcome) => assert_eq!(welcome.last_event_seq, 0),
        other => panic!("expected Welcome, got {other:?}"),
    }
    // Then the datagram is handled: the session's first event.
    match read_server_frame(&mut recv).await {
        ServerFrame::Event {
            seq: 1,
            event:
                Event::DataRefused {
                    party_id,
                    op_code: 3,
                    error,
                },
        } => {
            assert_eq!(party_id, party);
            assert_eq!(error.code, ErrorCode::PartyNotFound);
        }
        other => panic!("expected DataRefused as event 1, got {other:?}"),
    }
}
