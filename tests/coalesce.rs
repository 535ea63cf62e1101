//! Per-recipient send coalescing (`--coalesce-us`): datagrams for one
//! member that fall in one window leave in one packet, and none is lost or
//! reordered on the way. (Coalescing off is the default, which every other
//! data test runs.)
mod support;

use partyline::protocol::{decode_server_datagram, encode_client_datagram, SessionId};
use std::collections::HashMap;
use std::time::Duration;
use support::wire::WireClient;
use support::*;

/// Far above any scheduling hiccup, so that how many datagrams share a
/// window does not depend on the machine's load.
const WINDOW: Duration = Duration::from_millis(20);
const PER_SENDER: u64 = 25;
/// Between two sends (of either sender). Spread like this, without
/// coalescing, every datagram would reach the recipient in a packet of its
/// own: that is what makes the packet count below able to fail.
const SPACING: Duration = Duration::from_millis(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_of_one_window_share_packets_and_all_arrive_in_order() {
    let server = start_with(|config| config.coalesce = WINDOW).await;
    let ana = WireClient::connect(&server, "ana").await;
    let bob = WireClient::connect(&server, "bob").await;
    let cyd = WireClient::connect(&server, "cyd").await;
    let party = ana.create_party(true, 4, "").await.unwrap().party_id;
    bob.join_party(party).await.unwrap();
    // cyd joins last, so no party event is on its way to it from here on:
    // what it receives below is the party data (and the odd keep-alive).
    cyd.join_party(party).await.unwrap();

    let before = cyd.connection.stats().udp_rx.datagrams;
    // Sends on a fixed schedule: a late wake-up bunches the sends that
    // follow (more coalescing), it never spreads them further apart.
    let start = tokio::time::Instant::now();
    for n in 0..PER_SENDER * 2 {
        tokio::time::sleep_until(start + SPACING * n as u32).await;
        let sender = if n % 2 == 0 { &ana } else { &bob };
        let seq = n / 2;
        sender
            .connection
            .send_datagram(encode_client_datagram(party, 1, &seq.to_le_bytes()))
            .unwrap();
    }

    let mut next_seq: HashMap<SessionId, u64> = HashMap::new();
    for _ in 0..PER_SENDER * 2 {
        let datagram = tokio::time::timeout(WAIT, cyd.connection.read_datagram())
            .await
            .expect("every datagram arrives")
            .unwrap();
        let data = decode_server_datagram(datagram).unwrap();
        let seq = u64::from_le_bytes(data.payload[..].try_into().unwrap());
        let expected = next_seq.entry(data.sender).or_default();
        assert_eq!(seq, *expected, "in order per sender");
        *expected += 1;
    }
    assert_eq!(
        next_seq,
        HashMap::from([
            (ana.session_id(), PER_SENDER),
            (bob.session_id(), PER_SENDER)
        ])
    );
    let packets = cyd.connection.stats().udp_rx.datagrams - before;
    let datagrams = PER_SENDER * 2;
    // 50 datagrams over ~50 ms with a 20 ms window: a handful of flushes,
    // each one packet. Half is room for keep-alives and a flush split by
    // the connection's driver running halfway through it.
    assert!(
        packets <= datagrams / 2,
        "{datagrams} datagrams came in {packets} UDP packets"
    );
}
