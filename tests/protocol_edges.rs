//! Edges of the protocol that PROTOCOL.md states and a client author relies
//! on: the handshake's time limits, datagrams sent before `Welcome`, an
//! empty `Update`, join requests across an opening, who hears a reject,
//! `MemberNotFound` for requesters, what a resume that takes over a live
//! connection sends, and the token key read from a secret file. Pinned
//! here so the document cannot drift.
mod support;

use partyline::protocol::{
    decode_body, encode_client_datagram, ClientFrame, CloseCode, Command, ErrorCode, Event, Hello,
    Identity, JoinOutcome, PartyId, RejectReason, Reply, Resume, Resumed, ServerFrame,
    PROTOCOL_VERSION,
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
            leader_policy: Default::default(),
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

#[tokio::test]
async fn an_update_with_no_fields_is_one_change_told_to_every_member() {
    let server = start().await;
    let mut ana = WireClient::connect(&server, "ana").await;
    let mut ben = WireClient::connect(&server, "ben").await;
    let party = ana.create_party(true, 4, "eu").await.unwrap();
    ben.join_party(party.party_id).await.unwrap();
    assert!(matches!(
        ana.next_party_event().await,
        Event::MemberJoined { seq: 1, .. }
    ));
    let snapshot = ana
        .update_party(party.party_id, None, None, None)
        .await
        .unwrap();
    assert_eq!(snapshot.seq, 2, "the party seq steps");
    assert_eq!((snapshot.open, snapshot.max_size), (true, 4));
    assert_eq!(snapshot.label, "eu");
    for member in [&mut ana, &mut ben] {
        match member.next_party_event().await {
            Event::Updated {
                seq: 2,
                open: true,
                max_size: 4,
                label,
                ..
            } => assert_eq!(label, "eu"),
            other => panic!("expected Updated at seq 2, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn opening_a_closed_party_keeps_its_requests_waiting_for_the_leader() {
    let server = start().await;
    let mut ana = WireClient::connect(&server, "ana").await;
    let mut ben = WireClient::connect(&server, "ben").await;
    let cyd = WireClient::connect(&server, "cyd").await;
    let party = ana.create_party(false, 4, "").await.unwrap().party_id;
    assert!(matches!(
        ben.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    assert!(matches!(
        ana.next_party_event().await,
        Event::JoinRequested { .. }
    ));
    ana.update_party(party, Some(true), None, None)
        .await
        .unwrap();
    assert!(matches!(
        ana.next_party_event().await,
        Event::Updated { open: true, .. }
    ));
    // The request still waits; joining again does not seat its user.
    let again = ben.join_party(party).await.unwrap_err();
    assert_eq!(again.code, ErrorCode::AlreadyRequested);
    assert_eq!(
        ana.list_join_requests(party).await.unwrap(),
        vec![ben.presence()]
    );
    // A newcomer is seated at once; the leader still accepts the request.
    assert!(matches!(
        cyd.join_party(party).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    assert!(matches!(
        ana.next_party_event().await,
        Event::MemberJoined { .. }
    ));
    ana.accept(party, "ben").await.unwrap();
    match ben.next_party_event().await {
        Event::Accepted(snapshot) => assert_eq!(snapshot.members.len(), 3),
        other => panic!("expected Accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn a_reject_is_told_to_the_requester_only() {
    let server = start().await;
    let mut ana = WireClient::connect(&server, "ana").await;
    let mut ben = WireClient::connect(&server, "ben").await;
    let mut cyd = WireClient::connect(&server, "cyd").await;
    let party = ana.create_party(false, 4, "").await.unwrap().party_id;
    ben.join_party(party).await.unwrap();
    ana.next_party_event().await;
    ana.accept(party, "ben").await.unwrap();
    ana.next_party_event().await;
    ben.next_party_event().await;
    cyd.join_party(party).await.unwrap();
    assert!(matches!(
        ana.next_party_event().await,
        Event::JoinRequested { seq: 3, .. }
    ));
    ana.reject(party, "cyd").await.unwrap();
    match cyd.next_party_event().await {
        Event::JoinRejected {
            seq: 4,
            reason: RejectReason::Rejected,
            ..
        } => {}
        other => panic!("expected JoinRejected at seq 4, got {other:?}"),
    }
    // A later answer shows nothing came before it: the leader and the
    // members hear nothing of a reject.
    for member in [&mut ana, &mut ben] {
        assert_eq!(member.get_party(party).await.unwrap().seq, 4);
        member.assert_no_pending();
    }
}

#[tokio::test]
async fn promote_and_kick_of_a_requester_answer_member_not_found() {
    let server = start().await;
    let ana = WireClient::connect(&server, "ana").await;
    let ben = WireClient::connect(&server, "ben").await;
    let party = ana.create_party(false, 4, "").await.unwrap().party_id;
    ben.join_party(party).await.unwrap();
    let promoted = ana.promote(party, "ben").await.unwrap_err();
    assert_eq!(promoted.code, ErrorCode::MemberNotFound);
    let kicked = ana.kick(party, "ben").await.unwrap_err();
    assert_eq!(kicked.code, ErrorCode::MemberNotFound);
    let removed = ana
        .request(Command::Remove {
            party_id: party,
            user_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(removed.code, ErrorCode::MemberNotFound);
    // The request is untouched.
    assert_eq!(
        ana.list_join_requests(party).await.unwrap(),
        vec![ben.presence()]
    );
}

#[tokio::test]
async fn a_resume_that_takes_over_a_live_connection_tells_the_others_nothing() {
    let server = start().await;
    let mut ana = WireClient::connect(&server, "ana").await;
    let ben = WireClient::connect(&server, "ben").await;
    let party = ana.create_party(true, 4, "").await.unwrap().party_id;
    ben.join_party(party).await.unwrap();
    ana.next_party_event().await;
    let ben2 = WireClient::resume(&server, "ben", ben.resume_ticket())
        .await
        .unwrap();
    assert!(matches!(
        ben2.welcome().resumed,
        Resumed::Replayed { count: 0 }
    ));
    closed_with(&ben.connection, CloseCode::Superseded).await;
    // No MemberConnection, and no party seq step: the seat never showed
    // disconnected.
    ben2.request(Command::SendData {
        party_id: party,
        op_code: 1,
        data: bytes::Bytes::from_static(b"hi"),
    })
    .await
    .unwrap();
    match ana.next_party_event().await {
        Event::Data { sender, .. } => assert_eq!(sender, ben2.presence()),
        other => panic!("expected ben's data and nothing before it, got {other:?}"),
    }
    assert_eq!(ana.get_party(party).await.unwrap().seq, 1);
}

#[tokio::test]
async fn after_a_snapshot_resume_events_are_numbered_on_from_last_event_seq() {
    let server = start_with(|c| c.replay_events = 2).await;
    let ana = WireClient::connect(&server, "ana").await;
    let ben = WireClient::connect(&server, "ben").await;
    let party = ana.create_party(true, 4, "").await.unwrap().party_id;
    ben.join_party(party).await.unwrap();
    // Four events for ben (1 to 4), more than its log of 2 keeps.
    for label in ["a", "b", "c", "d"] {
        ana.update_party(party, None, Some(label.into()), None)
            .await
            .unwrap();
    }
    // Resume as if nothing had been received.
    let ticket = Resume {
        token: ben.welcome().resume_token.clone(),
        last_event_seq: 0,
    };
    let mut ben2 = WireClient::resume(&server, "ben", ticket).await.unwrap();
    let snapshot_seq = match &ben2.welcome().resumed {
        Resumed::Snapshots { parties, .. } => parties[0].snapshot.seq,
        other => panic!("expected snapshots, got {other:?}"),
    };
    assert_eq!(ben2.welcome().last_event_seq, 4);
    ana.update_party(party, None, Some("e".into()), None)
        .await
        .unwrap();
    match ben2.next_event().await {
        (5, Event::Updated { seq, .. }) => assert_eq!(seq, snapshot_seq + 1),
        other => panic!("expected event 5, Updated, got {other:?}"),
    }
}

/// The HMAC key from `--token-secret-file`: the file's bytes without the
/// line ends at their end, every one of them, and nothing else.
#[cfg(unix)]
#[test]
fn a_secret_file_loses_its_trailing_line_ends_and_nothing_else() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("partyline-edges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    for (contents, key) in [
        (&b"s3cret"[..], &b"s3cret"[..]),
        (b"s3cret\n", b"s3cret"),
        (b"s3cret\r\n\n\r", b"s3cret"),
        (b" s3 cret\t\n", b" s3 cret\t"),
        (b"\ns3cret", b"\ns3cret"),
    ] {
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let read = partyline::security::read_secret_file(&path).unwrap();
        assert_eq!(read, key, "{contents:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
