//! Bad input costs only its sender: typed errors or a close of that one
//! connection, and everyone else keeps being served.
mod support;

use partyline::protocol::{
    decode_body, encode_client_datagram, ClientFrame, CloseCode, Command, ErrorCode, Event, Hello,
    Identity, PartyId, Reply, ServerFrame, PROTOCOL_VERSION,
};
use partyline::wire::read_frame;
use partyline_client::{DisconnectReason, Event as SdkEvent};
use support::*;

/// A raw session that has said Hello and read Welcome.
async fn raw_session(
    server: &TestServer,
) -> (
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
) {
    let (endpoint, connection) = server.raw().await;
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    let hello = ClientFrame::Hello(Hello {
        resume: None,
        version: PROTOCOL_VERSION,
        identity: Identity::Dev {
            user_id: "raw".into(),
            username: "raw".into(),
        },
    });
    send.write_all(&frame(&hello)).await.unwrap();
    let frame = read_server_frame(&mut recv).await;
    assert!(matches!(frame, ServerFrame::Welcome(_)), "{frame:?}");
    (endpoint, connection, send, recv)
}

async fn read_server_frame(recv: &mut quinn::RecvStream) -> ServerFrame {
    let mut body = Vec::new();
    let read = tokio::time::timeout(WAIT, read_frame(recv, &mut body))
        .await
        .unwrap();
    assert!(read.unwrap(), "stream ended");
    decode_body(&body).unwrap()
}

#[tokio::test]
async fn garbage_and_unknown_messages_get_frame_errors_and_the_session_goes_on() {
    let server = start().await;
    let (_e, _c, mut send, mut recv) = raw_session(&server).await;

    // A well-framed body that is not postcard of anything we know.
    let mut garbage = 5u32.to_le_bytes().to_vec();
    garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff]);
    send.write_all(&garbage).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::FrameError(error) => assert_eq!(error.code, ErrorCode::MalformedFrame),
        other => panic!("unexpected {other:?}"),
    }

    // An unknown message tag (ClientFrame has two variants: 0 and 1).
    send.write_all(&[1, 0, 0, 0, 9]).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::FrameError(error) => assert_eq!(error.code, ErrorCode::MalformedFrame),
        other => panic!("unexpected {other:?}"),
    }

    // An unknown command tag inside a Request: the id read, so the request
    // is answered under it.
    send.write_all(&[3, 0, 0, 0, 1, 7, 99]).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::Response {
            id: 7,
            result: Err(error),
        } => assert_eq!(error.code, ErrorCode::MalformedFrame),
        other => panic!("unexpected {other:?}"),
    }

    // Trailing bytes after a valid message.
    let mut request = frame(&ClientFrame::Request {
        id: 5,
        command: Command::CreateParty {
            open: true,
            max_size: 2,
            label: String::new(),
            invite_policy: Default::default(),
            state: Default::default(),
            leader_policy: Default::default(),
        },
    });
    request.push(0);
    let len = (request.len() - 4) as u32;
    request[..4].copy_from_slice(&len.to_le_bytes());
    send.write_all(&request).await.unwrap();
    assert!(matches!(
        read_server_frame(&mut recv).await,
        ServerFrame::Response {
            id: 5,
            result: Err(_)
        }
    ));

    // A second Hello.
    let hello = ClientFrame::Hello(Hello {
        resume: None,
        version: PROTOCOL_VERSION,
        identity: Identity::Dev {
            user_id: "x".into(),
            username: "x".into(),
        },
    });
    send.write_all(&frame(&hello)).await.unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::FrameError(error) => assert_eq!(error.code, ErrorCode::ProtocolViolation),
        other => panic!("unexpected {other:?}"),
    }

    // And the session still works.
    let create = ClientFrame::Request {
        id: 6,
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
            id: 6,
            result: Ok(Reply::Party(_)),
        } => {}
        other => panic!("unexpected {other:?}"),
    }
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn a_gigantic_length_prefix_closes_only_that_connection() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;

    let (_e, connection, mut send, _recv) = raw_session(&server).await;
    let join = ClientFrame::Request {
        id: 1,
        command: Command::JoinParty { party_id: party },
    };
    send.write_all(&frame(&join)).await.unwrap();
    assert!(matches!(
        next_event(&mut ana_events).await,
        SdkEvent::MemberJoined { .. }
    ));

    send.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    match tokio::time::timeout(WAIT, connection.closed())
        .await
        .unwrap()
    {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code.into_inner(),
                CloseCode::FrameTooLarge as u64
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    // The hostile member's seat went with its session; the party lives on.
    match next_event(&mut ana_events).await {
        SdkEvent::MemberLeft { member, .. } => assert_eq!(member.user_id, "raw"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(ana.get_party(party).await.unwrap().members.len(), 1);
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn bad_datagrams_are_refused_without_harm() {
    let server = start().await;
    let (_e, connection, mut send, mut recv) = raw_session(&server).await;
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
    let party = match read_server_frame(&mut recv).await {
        ServerFrame::Response {
            result: Ok(Reply::Party(s)),
            ..
        } => s.party_id,
        other => panic!("unexpected {other:?}"),
    };

    // An empty datagram is a keep-alive: ignored, so the first refusal is
    // the next datagram's, an unknown kind long enough to name a party and
    // op code (the refusal names them).
    connection.send_datagram(bytes::Bytes::new()).unwrap();
    let mut unknown_kind = encode_client_datagram(party, 42, b"x").to_vec();
    unknown_kind[0] = 9;
    connection.send_datagram(unknown_kind.into()).unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::Event {
            event:
                Event::DataRefused {
                    error,
                    party_id,
                    op_code,
                },
            ..
        } => {
            assert_eq!(error.code, ErrorCode::MalformedFrame);
            assert_eq!((party_id, op_code), (party, 42));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Too short to hold anything: refused, naming nothing.
    connection
        .send_datagram(bytes::Bytes::from_static(&[1]))
        .unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::Event {
            event:
                Event::DataRefused {
                    error,
                    party_id,
                    op_code,
                },
            ..
        } => {
            assert_eq!(error.code, ErrorCode::MalformedFrame);
            assert_eq!((party_id, op_code), (PartyId::nil(), 0));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Above the announced limit but within what QUIC carries: refused, not cut.
    let oversize = encode_client_datagram(party, 4, &[1; 1101]);
    connection.send_datagram(oversize).unwrap();
    match read_server_frame(&mut recv).await {
        ServerFrame::Event {
            event: Event::DataRefused { error, op_code, .. },
            ..
        } => {
            assert_eq!((error.code, op_code), (ErrorCode::PayloadTooLarge, 4))
        }
        other => panic!("unexpected {other:?}"),
    }
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn shutdown_tells_clients_the_server_is_going_away() {
    let server = start().await;
    let (_ana, mut events) = server.client("ana").await;
    server.handle.shutdown().await;
    match next(&mut events).await {
        SdkEvent::Disconnected { reason } => {
            assert_eq!(reason, DisconnectReason::ServerShutdown)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn extra_streams_cannot_be_opened_and_the_session_goes_on() {
    // Without WebTransport: one bidirectional stream, no unidirectional
    // one; a second open waits for credit that never comes.
    let server = start_with(|config| config.webtransport = None).await;
    let (_e, connection, send, recv) = raw_session(&server).await;
    let uni =
        tokio::time::timeout(std::time::Duration::from_millis(300), connection.open_uni()).await;
    assert!(uni.is_err(), "a unidirectional stream was granted");
    no_second_bidirectional_stream(&server, &connection, send, recv).await;

    // With WebTransport (the default), the 3 unidirectional streams
    // HTTP/3 needs are granted to every connection before its ALPN is
    // known: a native client's are stopped at once (what it wrote is not
    // held), none is granted after them, and its session goes on.
    let server = start().await;
    let (_e, connection, send, recv) = raw_session(&server).await;
    for _ in 0..3 {
        let mut uni = connection.open_uni().await.expect("granted");
        uni.write_all(&[0xff; 1024]).await.unwrap();
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(5), uni.stopped())
            .await
            .expect("the server stops a native client's unidirectional stream");
        assert_eq!(
            stopped.unwrap(),
            Some(quinn::VarInt::from_u32(CloseCode::ProtocolViolation as u32))
        );
    }
    let fourth =
        tokio::time::timeout(std::time::Duration::from_millis(300), connection.open_uni()).await;
    assert!(
        fourth.is_err(),
        "a fourth unidirectional stream was granted"
    );
    no_second_bidirectional_stream(&server, &connection, send, recv).await;
}

async fn no_second_bidirectional_stream(
    server: &support::TestServer,
    connection: &quinn::Connection,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) {
    let bi =
        tokio::time::timeout(std::time::Duration::from_millis(300), connection.open_bi()).await;
    assert!(bi.is_err(), "a second bidirectional stream was granted");
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
    assert!(matches!(
        read_server_frame(&mut recv).await,
        ServerFrame::Response {
            id: 1,
            result: Ok(_)
        }
    ));
    bystanders_still_served(server).await;
}

#[tokio::test]
async fn a_frame_cut_off_mid_body_closes_only_that_connection() {
    let server = start().await;
    let (_e, connection, mut send, _recv) = raw_session(&server).await;
    // Ten bytes announced, five sent, then the stream ends.
    send.write_all(&[10, 0, 0, 0, 1, 2, 3, 4, 5]).await.unwrap();
    send.finish().unwrap();
    match tokio::time::timeout(WAIT, connection.closed())
        .await
        .unwrap()
    {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code.into_inner(),
                CloseCode::ProtocolViolation as u64
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn the_server_stamps_the_sender_so_it_cannot_be_forged() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let (_e, connection, mut send, mut recv) = raw_session(&server).await;
    let join = ClientFrame::Request {
        id: 1,
        command: Command::JoinParty { party_id: party },
    };
    send.write_all(&frame(&join)).await.unwrap();
    let _ = read_server_frame(&mut recv).await;
    next_event(&mut ana_events).await;
    // A payload dressed up as if it came from ana: the layout has no sender
    // field, so it is just bytes; the server stamps the real sender.
    let mut forged = ana.session_id().as_bytes().to_vec();
    forged.extend_from_slice(b"i am ana");
    connection
        .send_datagram(encode_client_datagram(party, 1, &forged))
        .unwrap();
    match next(&mut ana_events).await {
        SdkEvent::Data(data) => {
            assert_ne!(data.sender.session_id, ana.session_id());
            assert_eq!(data.sender.user_id, "raw");
            assert_eq!(&data.data[..], &forged[..]);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// A raw session seated in `ana`'s party; returns the party's other member's
/// events so the test can see how the raw session leaves.
async fn raw_member_of_a_party(
    server: &TestServer,
) -> (
    (
        quinn::Endpoint,
        quinn::Connection,
        quinn::SendStream,
        quinn::RecvStream,
    ),
    partyline_client::Client,
    partyline_client::Events,
) {
    let (ana, mut ana_events) = server.client("ana").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let (endpoint, connection, mut send, mut recv) = raw_session(server).await;
    let join = ClientFrame::Request {
        id: 1,
        command: Command::JoinParty { party_id: party },
    };
    send.write_all(&frame(&join)).await.unwrap();
    let answer = read_server_frame(&mut recv).await;
    assert!(
        matches!(
            answer,
            ServerFrame::Response {
                id: 1,
                result: Ok(_)
            }
        ),
        "{answer:?}"
    );
    assert!(matches!(
        next_event(&mut ana_events).await,
        SdkEvent::MemberJoined { .. }
    ));
    ((endpoint, connection, send, recv), ana, ana_events)
}

/// The raw session's connection is closed by the server as a protocol
/// violation, and its seat goes at once (no grace window).
async fn ends_as_a_violation(
    connection: &quinn::Connection,
    ana_events: &mut partyline_client::Events,
) {
    let closed = tokio::time::timeout(WAIT, connection.closed())
        .await
        .unwrap();
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(
                close.error_code,
                (CloseCode::ProtocolViolation as u32).into()
            )
        }
        other => panic!("expected a close by the server, got {other:?}"),
    }
    match next_event(ana_events).await {
        SdkEvent::MemberLeft { member, reason, .. } => {
            assert_eq!(member.user_id, "raw");
            assert_eq!(reason, partyline_client::LeaveReason::SessionEnded);
        }
        other => panic!("expected the raw member to leave at once, got {other:?}"),
    }
}

#[tokio::test]
async fn a_client_that_stops_its_control_stream_is_closed_not_kept_as_a_zombie() {
    let server = start().await;
    let ((_e, connection, _send, mut recv), _ana, mut ana_events) =
        raw_member_of_a_party(&server).await;
    // STOP_SENDING: the client will not read the server's answers any more.
    recv.stop(7u32.into()).unwrap();
    ends_as_a_violation(&connection, &mut ana_events).await;
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn a_client_that_resets_its_control_stream_is_closed_as_a_violation() {
    let server = start().await;
    let ((_e, connection, mut send, _recv), _ana, mut ana_events) =
        raw_member_of_a_party(&server).await;
    // RESET_STREAM: the client abandons what it was sending.
    send.reset(7u32.into()).unwrap();
    ends_as_a_violation(&connection, &mut ana_events).await;
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn a_gigantic_length_prefix_before_hello_closes_with_frame_too_large() {
    let server = start().await;
    let (_endpoint, connection) = server.raw().await;
    let (mut send, _recv) = connection.open_bi().await.unwrap();
    send.write_all(&u32::MAX.to_le_bytes()).await.unwrap();
    let closed = tokio::time::timeout(WAIT, connection.closed())
        .await
        .unwrap();
    match closed {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code, (CloseCode::FrameTooLarge as u32).into())
        }
        other => panic!("expected a close with code 5, got {other:?}"),
    }
    bystanders_still_served(&server).await;
}

/// A frame over the limit, sent whole (a 300 KiB label, say): the server
/// refuses it at once, with FrameTooLarge, while the rest of the frame is
/// still arriving; never after the idle timeout.
#[tokio::test]
async fn an_oversize_frame_sent_whole_is_refused_at_once() {
    let server = start().await;
    for round in 0..5 {
        let (_e, connection, mut send, _recv) = raw_session(&server).await;
        let size: u32 = 300 * 1024;
        let mut oversize = size.to_le_bytes().to_vec();
        oversize.resize(4 + size as usize, b'x');
        let writing = tokio::spawn(async move {
            let _ = send.write_all(&oversize).await;
            send
        });
        let closed = tokio::time::timeout(std::time::Duration::from_secs(1), connection.closed())
            .await
            .unwrap_or_else(|_| panic!("round {round}: no close within 1 s"));
        match closed {
            quinn::ConnectionError::ApplicationClosed(close) => assert_eq!(
                close.error_code.into_inner(),
                CloseCode::FrameTooLarge as u64,
                "round {round}"
            ),
            other => panic!("round {round}: unexpected {other:?}"),
        }
        drop(writing.await);
    }
}

/// A player who quits while connecting (Hello sent, connection closed
/// before the Welcome arrives) leaves no session behind for the grace
/// window: the server takes the close for a goodbye.
#[tokio::test]
async fn a_player_who_quits_mid_connect_leaves_no_session_behind() {
    let server = start_with(|config| config.grace = std::time::Duration::from_secs(60)).await;
    for round in 0..20 {
        let (_endpoint, connection) = server.raw().await;
        let (mut send, _recv) = connection.open_bi().await.unwrap();
        let hello = ClientFrame::Hello(Hello {
            resume: None,
            version: PROTOCOL_VERSION,
            identity: Identity::Dev {
                user_id: format!("quitter-{round}"),
                username: "quitter".into(),
            },
        });
        send.write_all(&frame(&hello)).await.unwrap();
        connection.close(0u32.into(), b"quit");
        // Whatever the server had done by then, nothing waits out the
        // grace window.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        while server.handle.session_count() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: a session of a player who quit stayed"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
