//! The Prometheus endpoint counts what happens, over real HTTP.
mod support;

use partyline_client::{Event, PartyId};
use std::io::{Read, Write};
use support::*;

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let response = get(addr, "/metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

fn value(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{series} missing in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_counts_sessions_parties_commands_and_data() {
    let server = start_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = server.metrics.expect("metrics address");
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    ana.send_data(party, 1, b"hello").unwrap();
    assert!(matches!(next(&mut bob_events).await, Event::Data(_)));
    // A datagram for a party it is not in: dropped, counted as not_member.
    bob.send_data(PartyId::random(), 1, b"x").unwrap();
    next_event(&mut bob_events).await;

    let text = tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .unwrap();
    assert_eq!(value(&text, "partyline_sessions "), 2);
    assert_eq!(value(&text, "partyline_parties "), 1);
    assert_eq!(value(&text, "partyline_parties_listed "), 0);
    assert_eq!(value(&text, "partyline_join_codes "), 0);
    assert_eq!(value(&text, "partyline_sessions_total{kind=\"new\"}"), 2);
    assert!(value(&text, "partyline_commands_total ") >= 2);
    assert_eq!(
        value(
            &text,
            "partyline_data_total{direction=\"in\",path=\"datagram\"}"
        ),
        2
    );
    assert_eq!(
        value(
            &text,
            "partyline_data_total{direction=\"out\",path=\"datagram\"}"
        ),
        1
    );
    assert_eq!(
        value(&text, "partyline_dropped_total{cause=\"not_member\"}"),
        1
    );
    assert!(text.contains("# TYPE partyline_refusals_total counter"));
    // Coalescing is on by default: the one datagram relayed left in one
    // batch (counted before bob could read it), and nothing was dropped.
    assert_eq!(value(&text, "partyline_coalesce_dropped_total "), 0);
    assert_eq!(value(&text, "partyline_coalesce_batches_total "), 1);
    // One datagram relayed, to one recipient.
    assert_eq!(
        value(&text, "partyline_datagram_fan_out_bucket{le=\"1\"}"),
        1
    );
    assert_eq!(value(&text, "partyline_datagram_fan_out_count "), 1);
    // Every command handled was timed.
    assert_eq!(
        value(&text, "partyline_command_seconds_count "),
        value(&text, "partyline_commands_total ")
    );
    assert!(value(&text, "process_resident_memory_bytes ") > 1_000_000);
    assert!(value(&text, "process_open_fds ") > 2);
    assert!(text.contains("# TYPE process_cpu_seconds_total counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_counted_by_cause_and_unknown_paths_are_404() {
    let server = start_with(|c| {
        c.metrics = Some("127.0.0.1:0".parse().unwrap());
        c.auth = partyline::server::AuthMode::Token {
            secret: b"s".to_vec(),
            previous: None,
        };
    })
    .await;
    let addr = server.metrics.expect("metrics address");
    // A dev identity, refused by a token-mode server: unauthenticated.
    assert!(partyline_client::Client::connect(server.config("dev"))
        .await
        .is_err());
    let text = tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .unwrap();
    assert_eq!(
        value(&text, "partyline_refusals_total{cause=\"unauthenticated\"}"),
        1
    );
    assert_eq!(
        value(
            &text,
            "partyline_refusals_total{cause=\"version_mismatch\"}"
        ),
        0
    );
    assert_eq!(
        value(&text, "partyline_refusals_total{cause=\"other_hello\"}"),
        0
    );
    let missing = tokio::task::spawn_blocking(move || get(addr, "/nope"))
        .await
        .unwrap();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_counters_sum_live_connections_and_keep_those_that_ended() {
    let server = start_with(|c| c.metrics = Some("127.0.0.1:0".parse().unwrap())).await;
    let addr = server.metrics.expect("metrics address");
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    for _ in 0..3 {
        ana.send_data(party, 1, b"hello").unwrap();
        assert!(matches!(next(&mut bob_events).await, Event::Data(_)));
    }
    let before = tokio::task::spawn_blocking(move || scrape(addr))
        .await
        .unwrap();
    let frames = value(&before, "partyline_transport_datagram_frames_sent_total ");
    assert_eq!(
        frames,
        value(&before, "partyline_transport_datagrams_handed_total "),
        "every datagram handed to quinn went out as a DATAGRAM frame"
    );
    assert_eq!(frames, 3);
    assert_eq!(value(&before, "partyline_transport_packets_lost_total "), 0);
    assert_eq!(value(&before, "partyline_transport_connections "), 2);
    let sent_before = value(&before, "partyline_transport_packets_sent_total ");
    // Handshakes, replies and three datagrams: well over one packet each way.
    assert!(sent_before >= 6, "{sent_before}");
    assert!(
        value(
            &before,
            "partyline_transport_udp_datagrams_total{direction=\"in\"}"
        ) >= 6
    );

    bob.close().await;
    let after = loop {
        let text = tokio::task::spawn_blocking(move || scrape(addr))
            .await
            .unwrap();
        if value(&text, "partyline_transport_connections ") == 1 {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    // Bob's connection is gone from the live set; its figures stayed.
    assert_eq!(
        value(&after, "partyline_transport_datagram_frames_sent_total "),
        3
    );
    assert!(value(&after, "partyline_transport_packets_sent_total ") >= sent_before);
}
