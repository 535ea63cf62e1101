//! Browsers over WebTransport on the native clients' port: a session like
//! any other. web-transport-quinn's client stands in for the browser (the
//! real one is tests/browser.rs): the same Hello, commands and events on
//! one bidirectional stream, party data as WebTransport datagrams, with a
//! native SDK client in the same party; path and origin checks; the close
//! capsule a page reads its code from; goodbye and resume.

mod support;
// Not in support/mod.rs: the load generator's tests share that, without
// web-transport-quinn.
#[path = "support/web.rs"]
mod web;

use partyline::protocol::{
    decode_server_datagram, encode_client_datagram, CloseCode, Command, ErrorCode, Event,
    LeaveReason, Reply, Resumed,
};
use partyline_client::Event as SdkEvent;
use std::time::Duration;
use support::relay::Relay;
use support::{next, next_data, start, start_with, WAIT};
use web::{WebClient, WebTarget};
use web_transport_quinn::proto::ConnectError;
use web_transport_quinn::{ClientError, SessionError, WebTransportError};

async fn create_open_party(web: &mut WebClient) -> partyline::protocol::PartyId {
    let reply = web
        .request(Command::CreateParty {
            open: true,
            max_size: 4,
            label: "web".into(),
            invite_policy: Default::default(),
            state: Default::default(),
            leader_policy: Default::default(),
        })
        .await
        .expect("party created");
    match reply {
        Reply::Party(snapshot) => snapshot.party_id,
        other => panic!("expected a party, got {other:?}"),
    }
}

#[tokio::test]
async fn a_browser_and_a_native_client_play_in_one_party() {
    let server = start().await;
    let target = WebTarget::new(server.addr, &server.certs);
    let mut web = WebClient::connect(&target, "ana", None).await.unwrap();
    assert_eq!(web.welcome.presence.user_id, "ana");
    let party_id = create_open_party(&mut web).await;

    let (bob, mut bob_events) = server.client("bob").await;
    bob.join_party(party_id).await.expect("bob joins");
    match web.next_event().await {
        Event::MemberJoined { presence, .. } => assert_eq!(presence.user_id, "bob"),
        other => panic!("expected bob's arrival, got {other:?}"),
    }

    // Browser to native: a WebTransport datagram in the client layout.
    let datagram = encode_client_datagram(party_id, 7, b"from the browser");
    web.session.send_datagram(datagram).unwrap();
    let data = next_data(&mut bob_events).await;
    assert_eq!(
        (data.op_code, &data.data[..], data.reliable),
        (7, &b"from the browser"[..], false)
    );
    assert_eq!(data.sender.user_id, "ana");

    // Native to browser: the server layout, behind the session id.
    bob.send_data(party_id, 8, b"from native").unwrap();
    let received = decode_server_datagram(web.read_datagram().await).unwrap();
    assert_eq!(received.party_id, party_id);
    assert_eq!(received.op_code, 8);
    assert_eq!(&received.payload[..], b"from native");
    assert_eq!(received.sender, bob.session_id());

    // Reliable data both ways, on the control stream.
    web.request(Command::SendData {
        party_id,
        op_code: 9,
        data: "reliable from the browser".into(),
    })
    .await
    .expect("sent");
    let data = next_data(&mut bob_events).await;
    assert_eq!(
        (&data.data[..], data.reliable),
        (&b"reliable from the browser"[..], true)
    );
    bob.send_data_reliable(party_id, 10, b"reliable from native")
        .await
        .unwrap();
    match web.next_event().await {
        Event::Data { data, sender, .. } => {
            assert_eq!(&data[..], b"reliable from native");
            assert_eq!(sender.user_id, "bob");
        }
        other => panic!("expected data, got {other:?}"),
    }
}

#[tokio::test]
async fn other_paths_and_origins_are_refused() {
    let server = start_with(|config| {
        config.webtransport.as_mut().unwrap().allowed_origins =
            vec!["https://game.example".to_string()];
    })
    .await;
    let status = |result: Result<_, ClientError>| match result {
        Err(ClientError::HttpError(web_transport_quinn::ConnectError::ProtoError(
            ConnectError::WrongStatus(Some(status)),
        ))) => status.as_u16(),
        Err(other) => panic!("expected an HTTP status, got {other:?}"),
        Ok(_) => 200,
    };
    let mut target = WebTarget::new(server.addr, &server.certs);
    target.path = "/other";
    assert_eq!(status(target.session().await), 404);
    target.path = "/partyline";
    target.origin = Some("https://evil.example");
    assert_eq!(status(target.session().await), 403);
    // Dev mode: a page on this machine.
    target.origin = Some("http://127.0.0.1:5173");
    assert_eq!(status(target.session().await), 200);
    target.origin = Some("https://game.example");
    assert_eq!(status(target.session().await), 200);

    // Signed tokens: localhost pages are no longer trusted by default.
    let secret = b"0123456789abcdef0123456789abcdef".to_vec();
    let strict = start_with(|config| {
        config.auth = partyline::server::AuthMode::Token {
            secret,
            previous: None,
        };
    })
    .await;
    let mut target = WebTarget::new(strict.addr, &strict.certs);
    target.origin = Some("http://localhost:8080");
    assert_eq!(status(target.session().await), 403);
    let metrics_seen = server.handle.session_count();
    assert_eq!(metrics_seen, 0, "no session was opened by a refused page");
}

#[tokio::test]
async fn webtransport_off_offers_no_h3() {
    let server = start_with(|config| config.webtransport = None).await;
    let target = WebTarget::new(server.addr, &server.certs);
    let result = tokio::time::timeout(WAIT, target.session())
        .await
        .expect("an answer");
    assert!(result.is_err(), "no h3 session without WebTransport");
    // Native clients are served as ever.
    let (_ana, _events) = server.client("ana").await;
}

#[tokio::test]
async fn a_browser_goodbye_ends_its_session_without_a_grace_window() {
    // A grace window far longer than the test: only a goodbye ends it.
    let server = start_with(|config| config.grace = Duration::from_secs(600)).await;
    let target = WebTarget::new(server.addr, &server.certs);
    let mut web = WebClient::connect(&target, "ana", None).await.unwrap();
    let party_id = create_open_party(&mut web).await;
    let (bob, mut bob_events) = server.client("bob").await;
    bob.join_party(party_id).await.unwrap();
    web.close();
    loop {
        match next(&mut bob_events).await {
            SdkEvent::MemberLeft { member, reason, .. } => {
                assert_eq!(member.user_id, "ana");
                assert_eq!(reason, LeaveReason::SessionEnded);
                break;
            }
            SdkEvent::LeaderChanged { .. } => {}
            other => panic!("expected ana's goodbye, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_browser_resumes_and_the_page_it_replaced_hears_superseded() {
    let server = start().await;
    let target = WebTarget::new(server.addr, &server.certs);
    let mut first = WebClient::connect(&target, "ana", None).await.unwrap();
    let party_id = create_open_party(&mut first).await;
    let (bob, _bob_events) = server.client("bob").await;
    bob.join_party(party_id).await.unwrap();
    assert!(matches!(
        first.next_event().await,
        Event::MemberJoined { .. }
    ));
    let ticket = first.resume_ticket();
    // A native resume of a browser's session works the same way: the
    // session does not know its transport. Here, a second page takes it.
    let mut second = WebClient::connect(&target, "ana", Some(ticket))
        .await
        .expect("resumed");
    assert_eq!(second.welcome.resumed, Resumed::Replayed { count: 0 });
    // The replaced page resets its streams, as Chrome does once it hears
    // the close: that was the old connection's end, not the session's.
    first.reset_control();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The replaced page reads the close code from WebTransport.closed.
    let closed = tokio::time::timeout(WAIT, first.session.closed())
        .await
        .expect("the first session closes");
    match closed {
        SessionError::WebTransportError(WebTransportError::Closed(code, _)) => {
            assert_eq!(code, CloseCode::Superseded as u32)
        }
        other => panic!("expected a close capsule, got {other:?}"),
    }
    // Still a member, and served on the new session.
    bob.send_data_reliable(party_id, 1, b"still there?")
        .await
        .unwrap();
    match second.next_event().await {
        Event::Data { data, .. } => assert_eq!(&data[..], b"still there?"),
        other => panic!("expected data, got {other:?}"),
    }
    let refused = second
        .request(Command::JoinParty {
            party_id: partyline::protocol::PartyId(uuid::Uuid::nil()),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::PartyNotFound);
}

/// The server's keep-alive: to a native client a zero-length datagram, to
/// a browser one byte 0x00 (a browser delivers no empty datagram to its
/// page, which would hear nothing on a quiet connection).
#[tokio::test]
async fn a_browser_s_keep_alive_is_one_zero_byte_and_a_native_one_s_is_empty() {
    let server = start_with(|config| config.keep_alive = Duration::from_millis(200)).await;
    let target = WebTarget::new(server.addr, &server.certs);
    let web = WebClient::connect(&target, "ana", None).await.unwrap();
    let native = support::wire::WireClient::connect(&server, "bob").await;
    let heard = tokio::time::timeout(WAIT, web.session.read_datagram())
        .await
        .expect("a keep-alive within the limit")
        .expect("the session is open");
    assert_eq!(&heard[..], &[0u8][..]);
    let heard = tokio::time::timeout(WAIT, native.connection.read_datagram())
        .await
        .expect("a keep-alive within the limit")
        .expect("the connection is open");
    assert!(heard.is_empty(), "a native keep-alive is empty: {heard:?}");
}

/// What the page a resume replaced does to its control stream once the
/// server closed its transport (Chrome resets and stops the streams of a
/// closed transport).
#[derive(Clone, Copy, Debug)]
enum Replaced {
    Resets,
    Stops,
}

/// The replaced page's path from the server is cut, so it never hears the
/// close and its reset or stop reaches the server while that close is
/// still under way (the server waits for the page's answer to its close
/// capsule): that is the old connection's end, and the resumed session,
/// on its new connection, goes on.
async fn replaced_page(does: Replaced) {
    let server = start().await;
    let relay = Relay::start(server.addr).await;
    let through_relay = WebTarget::new(relay.addr, &server.certs);
    let mut first = WebClient::connect(&through_relay, "ana", None)
        .await
        .unwrap();
    let party_id = create_open_party(&mut first).await;
    let (bob, mut bob_events) = server.client("bob").await;
    bob.join_party(party_id).await.unwrap();
    assert!(matches!(
        first.next_event().await,
        Event::MemberJoined { .. }
    ));
    relay.hold_to_clients(true);
    let target = WebTarget::new(server.addr, &server.certs);
    let mut second = WebClient::connect(&target, "ana", Some(first.resume_ticket()))
        .await
        .expect("resumed");
    match does {
        Replaced::Resets => first.reset_control(),
        Replaced::Stops => first.stop_control(),
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Still a member, with no connection change seen, and served.
    bob.send_data_reliable(party_id, 1, b"still there?")
        .await
        .unwrap();
    match second.next_event().await {
        Event::Data { data, .. } => assert_eq!(&data[..], b"still there?"),
        other => panic!("{does:?}: expected data, got {other:?}"),
    }
    let refused = second
        .request(Command::JoinParty {
            party_id: partyline::protocol::PartyId(uuid::Uuid::nil()),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::PartyNotFound);
    second
        .request(Command::SendData {
            party_id,
            op_code: 2,
            data: bytes::Bytes::from_static(b"yes"),
        })
        .await
        .expect("ana still sends");
    loop {
        match next(&mut bob_events).await {
            SdkEvent::Data(data) => {
                assert_eq!(&data.data[..], b"yes");
                break;
            }
            SdkEvent::MemberConnectionChanged { .. } | SdkEvent::MemberLeft { .. } => {
                panic!("{does:?}: ana's seat showed the replaced connection's end")
            }
            _ => {}
        }
    }
}

#[tokio::test]
async fn a_replaced_page_that_resets_its_control_stream_ends_nothing() {
    replaced_page(Replaced::Resets).await;
}

#[tokio::test]
async fn a_replaced_page_that_stops_its_control_stream_ends_nothing() {
    replaced_page(Replaced::Stops).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_server_shows_browsers_a_certificate_they_accept_by_hash() {
    use partyline::certs::BrowserCertificates;
    use partyline::server::Server;
    let certificates = BrowserCertificates::new(
        partyline::certs::dev_cert_names(&[]),
        std::time::SystemTime::now(),
    )
    .unwrap();
    let certificates = std::sync::Arc::new(certificates);
    let mut dev_http = None;
    let server = support::start_built(
        |config| {
            let web = config.webtransport.as_mut().unwrap();
            web.browser_certificates = Some(certificates.clone());
            web.dev_http = Some("127.0.0.1:0".parse().unwrap());
        },
        |config| {
            let server = Server::bind(config)?;
            dev_http = server.dev_http_addr();
            Ok(server)
        },
    )
    .await;
    // What a dev page fetches first.
    let dev_http = dev_http.expect("dev HTTP bound");
    let body =
        tokio::task::spawn_blocking(move || support::http_get(dev_http, "/certificate-hashes"))
            .await
            .unwrap();
    let json = &body[body.find('{').expect("a JSON body")..];
    let answer: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        answer["url"],
        format!("https://{}/partyline", server.addr).as_str()
    );
    let hashes: Vec<Vec<u8>> = answer["sha256"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hex| from_hex(hex.as_str().unwrap()))
        .collect();
    assert_eq!(hashes.len(), 2, "the presented certificate's and the next");

    // A browser trusts nothing but the hashes: the session opens.
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(hashes.clone())
        .unwrap();
    let url: url::Url = format!("https://localhost:{}/partyline", server.addr.port())
        .parse()
        .unwrap();
    let session = client.connect(url.clone()).await.expect("accepted by hash");
    session.close(0, b"");
    // Only the presented one's hash: still accepted.
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(vec![hashes[0].clone()])
        .unwrap();
    client
        .connect(url.clone())
        .await
        .expect("the presented one");
    // Only the next one's: not yet.
    let client = web_transport_quinn::ClientBuilder::new()
        .with_server_certificate_hashes(vec![hashes[1].clone()])
        .unwrap();
    let refused = tokio::time::timeout(WAIT, client.connect(url)).await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "refused at once: {refused:?}"
    );
    // Native clients still get (and trust) the server's own certificate.
    let (ana, _events) = server.client("ana").await;
    assert_eq!(ana.presence().user_id, "ana");
}

fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test]
async fn a_browser_session_has_the_same_rate_budget() {
    let server = start_with(|config| config.command_rate = 5.0).await;
    let target = WebTarget::new(server.addr, &server.certs);
    let mut web = WebClient::connect(&target, "ana", None).await.unwrap();
    let party_id = create_open_party(&mut web).await;
    // A burst of twice the rate passes, then commands are refused.
    let mut refused = 0;
    for _ in 0..20 {
        if let Err(error) = web.request(Command::GetParty { party_id }).await {
            assert_eq!(error.code, ErrorCode::RateLimited);
            refused += 1;
        }
    }
    assert!(refused >= 5, "only {refused} of 20 refused at 5 a second");
}
