//! Sessions through network loss, over real QUIC through a fault-injecting
//! relay: loss detection, the grace window, exact replay, snapshots, leader
//! handover, packet loss, NAT rebinding and single-use resume tokens.
//!
//! The replayed events' session `seq`s are wire-level numbers the SDK hides
//! by design: the test that checks them resumes through
//! `support::wire::WireClient`.
mod support;

use partyline::protocol::{Event as WireEvent, PartyId, Resume, Resumed};
use partyline_client::{
    Client, ClientConfig, ClientError, ErrorCode, Event, Events, LeaveReason, PartyUpdate,
};
use std::time::{Duration, Instant};
use support::relay::Relay;
use support::wire::WireClient;
use support::*;

/// These tests drive the resume by hand, as an application may.
const BY_HAND: bool = false;

async fn resume(
    server: &TestServer,
    user: &str,
    ticket: Resume,
) -> Result<(Client, Events), ClientError> {
    let mut config: ClientConfig = server.config(user);
    config.resume = Some(ticket);
    Client::connect(config).await
}

async fn expect_connection(events: &mut Events, user: &str, connected: bool) {
    match next_event(events).await {
        Event::MemberConnectionChanged {
            member,
            connected: c,
            ..
        } => {
            assert_eq!((member.user_id.as_str(), c), (user, connected))
        }
        other => panic!("expected {user} connected={connected}, got {other:?}"),
    }
}

fn label(text: &str) -> PartyUpdate {
    PartyUpdate {
        label: Some(text.to_string()),
        ..PartyUpdate::default()
    }
}

#[tokio::test]
async fn a_lost_member_keeps_its_seat_and_gets_exactly_the_missed_events() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", BY_HAND).await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    ana.send_data_reliable(party, 1, b"before").await.unwrap();
    assert!(matches!(next(&mut bob_events).await, Event::Data(_)));

    relay.blackhole(true);
    let lost_at = Instant::now();
    expect_connection(&mut ana_events, "bob", false).await;
    let noticed = lost_at.elapsed();
    assert!(
        noticed < FAST_IDLE + Duration::from_secs(3),
        "loss noticed after {noticed:?}"
    );
    expect_lost(&mut bob_events, BY_HAND).await;
    // The seat is held: membership and order are unchanged.
    let held = ana.get_party(party).await.unwrap();
    let users: Vec<_> = held
        .members
        .iter()
        .map(|m| m.presence.user_id.as_str())
        .collect();
    assert_eq!(users, ["ana", "bob"]);
    let away: Vec<_> = held
        .members
        .iter()
        .filter(|m| !m.connected)
        .map(|m| m.presence.session_id)
        .collect();
    assert_eq!(away, vec![bob.session_id()]);

    // Things happen while bob is away: data, a join, an update.
    ana.send_data_reliable(party, 2, b"while away")
        .await
        .unwrap();
    let (cyd, _cyd_events) = server.client("cyd").await;
    cyd.join_party(party).await.unwrap();
    ana.update_party(party, label("late")).await.unwrap();
    // No datagrams are sent to a disconnected member (nothing to assert on
    // the wire; the server skips it, and the send succeeds for the others).
    ana.send_data(party, 3, b"dropped for bob").unwrap();

    // Bob takes his session back on the wire, to see the replayed seqs.
    let ticket = bob.resume_ticket();
    let mut bob2 = WireClient::resume(&server, "bob", ticket.clone())
        .await
        .expect("resumed");
    assert_eq!(bob2.session_id(), bob.session_id());
    // Party data is not sent to a disconnected member, reliable or not, so
    // the missed events are the join and the update.
    assert_eq!(bob2.welcome().resumed, Resumed::Replayed { count: 2 });
    assert_eq!(bob2.welcome().last_event_seq, ticket.last_event_seq + 2);
    let mut seqs = Vec::new();
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let (seq, event) = bob2.next_event().await;
        seqs.push(seq);
        kinds.push(match event {
            WireEvent::Data { data, .. } => format!("data {}", String::from_utf8_lossy(&data)),
            WireEvent::MemberJoined { presence, .. } => format!("joined {}", presence.user_id),
            WireEvent::Updated { label, .. } => format!("updated {label}"),
            other => format!("{other:?}"),
        });
    }
    assert_eq!(kinds, ["joined cyd", "updated late"]);
    assert_eq!(seqs, [ticket.last_event_seq + 1, ticket.last_event_seq + 2]);
    assert_eq!(
        bob2.resume_ticket().last_event_seq,
        ticket.last_event_seq + 2
    );

    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::PartyUpdated { .. }
    ));
    expect_connection(&mut ana_events, "bob", true).await;
    let back = bob2.get_party(party).await.unwrap();
    let users: Vec<_> = back.members.iter().map(|m| m.user_id.as_str()).collect();
    assert_eq!(users, ["ana", "bob", "cyd"]);
    assert!(back.disconnected.is_empty());
    // Nothing more: no duplicate of what was replayed.
    bob2.assert_no_pending();

    // The token was single use.
    let error = resume(&server, "bob", ticket)
        .await
        .err()
        .expect("second use refused");
    assert_eq!(error.code(), Some(ErrorCode::ResumeRefused));
}

#[tokio::test]
async fn a_gap_older_than_the_replay_log_gets_snapshots() {
    // Four updates, two events kept.
    let labels = ["a", "b", "c", "d"].map(String::from);
    lost_past_the_log_gets_snapshots(|c| c.replay_events = 2, &labels).await;
}

#[tokio::test]
async fn a_gap_past_the_replay_log_s_byte_budget_gets_snapshots() {
    // Eight updates of about 230 bytes each: far fewer events than the
    // log counts, more bytes than it keeps.
    let labels: Vec<String> = (0..8).map(long_label).collect();
    lost_past_the_log_gets_snapshots(|c| c.replay_bytes = 1024, &labels).await;
}

/// A label of 200 bytes that names `i`.
fn long_label(i: usize) -> String {
    format!("{i:0>200}")
}

/// Bob loses his connection, ana updates the party once per label, bob
/// comes back: the log no longer holds the gap, so he gets a snapshot.
async fn lost_past_the_log_gets_snapshots(
    bound: impl FnOnce(&mut partyline::server::ServerConfig),
    labels: &[String],
) {
    let server = start_with(|c| {
        fast_loss_detection(c);
        bound(c);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", BY_HAND).await;
    let party = ana
        .create_party(settings(false, 8, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    ana.accept(party, "bob").await.unwrap();
    next_event(&mut bob_events).await;
    next_event(&mut ana_events).await;

    relay.blackhole(true);
    expect_connection(&mut ana_events, "bob", false).await;
    expect_lost(&mut bob_events, BY_HAND).await;
    for text in labels {
        ana.update_party(party, label(text)).await.unwrap();
    }
    let last = labels.last().unwrap().as_str();
    let (bob2, _events) = resume(&server, "bob", bob.resume_ticket()).await.unwrap();
    // The SDK rebuilt its roster from the snapshot.
    let synced = bob2.party(party).expect("the SDK knows the party");
    assert_eq!((synced.label.as_str(), synced.members.len()), (last, 2));
    assert!(!synced.is_leader() && synced.join_requests.is_empty());
    match &bob2.welcome().resumed {
        Resumed::Snapshots { parties, waiting } => {
            assert!(waiting.is_empty());
            assert_eq!(parties.len(), 1);
            assert_eq!(parties[0].snapshot.label, last);
            assert_eq!(parties[0].snapshot.members.len(), 2);
            assert!(parties[0].requests.is_empty(), "bob does not lead");
        }
        other => panic!("expected snapshots, got {other:?}"),
    }
}

/// Ana leads an open party; bob, on the wire, is seated in it.
async fn bob_seated_on_the_wire(server: &TestServer) -> (Client, Events, WireClient, PartyId) {
    let (ana, ana_events) = server.client("ana").await;
    let bob = WireClient::connect(server, "bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    (ana, ana_events, bob, party)
}

/// The next event's session `seq` and label, for a party update.
async fn next_label(bob: &mut WireClient) -> (u64, String) {
    match bob.next_event().await {
        (seq, WireEvent::Updated { label, .. }) => (seq, label),
        other => panic!("expected an update, got {other:?}"),
    }
}

/// After the replay (or the snapshots), the next event is numbered one
/// above the Welcome's last: nothing in between, nothing twice.
async fn the_next_event_follows_on(ana: &Client, bob: &mut WireClient, party: PartyId) {
    ana.update_party(party, label("after")).await.unwrap();
    let expected = bob.welcome().last_event_seq + 1;
    assert_eq!(next_label(bob).await, (expected, "after".to_string()));
    bob.get_party(party).await.unwrap();
    bob.assert_no_pending();
}

// The three tests below resume by taking over a live connection whose
// client has not read the latest events: a resume like any other (the same
// log decides), with the client's `last_event_seq` exactly known.

#[tokio::test]
async fn a_gap_within_the_byte_budget_is_replayed_exactly() {
    let server = start_with(|c| c.replay_bytes = 1024).await;
    let (ana, _ana_events, bob, party) = bob_seated_on_the_wire(&server).await;
    let ticket = bob.resume_ticket();
    // Three updates of about 230 bytes: within 1,024 bytes.
    for i in 0..3 {
        ana.update_party(party, label(&long_label(i)))
            .await
            .unwrap();
    }
    let mut bob2 = WireClient::resume(&server, "bob", ticket.clone())
        .await
        .expect("resumed");
    assert_eq!(bob2.welcome().resumed, Resumed::Replayed { count: 3 });
    assert_eq!(bob2.welcome().last_event_seq, ticket.last_event_seq + 3);
    for i in 0..3 {
        let seq = ticket.last_event_seq + 1 + i as u64;
        assert_eq!(next_label(&mut bob2).await, (seq, long_label(i)));
    }
    the_next_event_follows_on(&ana, &mut bob2, party).await;
}

#[tokio::test]
async fn a_gap_past_the_byte_budget_gets_snapshots_and_nothing_is_lost_or_repeated() {
    let server = start_with(|c| c.replay_bytes = 1024).await;
    let (ana, _ana_events, bob, party) = bob_seated_on_the_wire(&server).await;
    let ticket = bob.resume_ticket();
    // Fifteen updates of about 230 bytes: far under the 1,024 events the
    // log counts, over the bytes it keeps.
    for i in 0..15 {
        ana.update_party(party, label(&long_label(i)))
            .await
            .unwrap();
    }
    let mut bob2 = WireClient::resume(&server, "bob", ticket.clone())
        .await
        .expect("resumed");
    assert_eq!(bob2.welcome().last_event_seq, ticket.last_event_seq + 15);
    match &bob2.welcome().resumed {
        Resumed::Snapshots { parties, .. } => {
            assert_eq!(parties.len(), 1);
            assert_eq!(parties[0].snapshot.label, long_label(14));
        }
        other => panic!("expected snapshots, got {other:?}"),
    }
    // No replayed event comes: the next is the first after the Welcome.
    the_next_event_follows_on(&ana, &mut bob2, party).await;
}

#[tokio::test]
async fn an_event_larger_than_the_byte_budget_is_not_replayed_but_what_follows_it_is() {
    let server = start_with(|c| c.replay_bytes = 512).await;
    let (ana, _ana_events, mut bob, party) = bob_seated_on_the_wire(&server).await;
    let big = "b".repeat(600);
    ana.update_party(party, label(&big)).await.unwrap();
    ana.update_party(party, label("small")).await.unwrap();
    // Bob read the large one: the small one, logged after it, is replayed.
    let (big_seq, read) = next_label(&mut bob).await;
    assert_eq!(read, big);
    let mut bob2 = WireClient::resume(&server, "bob", bob.resume_ticket())
        .await
        .expect("resumed");
    assert_eq!(bob2.welcome().resumed, Resumed::Replayed { count: 1 });
    assert_eq!(next_label(&mut bob2).await, (big_seq + 1, "small".into()));

    // Now bob misses a large one: the log cannot hold it, so a resume from
    // before it gets snapshots, though the small one after it was logged.
    let ticket = bob2.resume_ticket();
    ana.update_party(party, label(&big)).await.unwrap();
    ana.update_party(party, label("small again")).await.unwrap();
    let mut bob3 = WireClient::resume(&server, "bob", ticket.clone())
        .await
        .expect("resumed");
    assert_eq!(bob3.welcome().last_event_seq, ticket.last_event_seq + 2);
    match &bob3.welcome().resumed {
        Resumed::Snapshots { parties, .. } => {
            assert_eq!(parties[0].snapshot.label, "small again")
        }
        other => panic!("expected snapshots, got {other:?}"),
    }
    the_next_event_follows_on(&ana, &mut bob3, party).await;
}

#[tokio::test]
async fn a_lost_leader_is_replaced_at_once_and_the_window_end_removes_it() {
    let server = start_with(|c| {
        fast_loss_detection(c);
        c.grace = Duration::from_millis(1500);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", BY_HAND).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let party = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    ana.join_party(party).await.unwrap();
    next_event(&mut bob_events).await;

    relay.blackhole(true);
    match next_event(&mut ana_events).await {
        Event::LeaderChanged { leader, .. } => assert_eq!(leader.user_id, "ana"),
        other => panic!("a connected member leads at once, got {other:?}"),
    }
    expect_connection(&mut ana_events, "bob", false).await;
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::JoinRequests { .. }
    ));

    // Bob never comes back: when the window ends he is gone, as if he left.
    match next_event(&mut ana_events).await {
        Event::MemberLeft { member, reason, .. } => {
            assert_eq!(
                (member.user_id.as_str(), reason),
                ("bob", LeaveReason::SessionEnded)
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    let error = resume(&server, "bob", bob.resume_ticket())
        .await
        .err()
        .expect("window over");
    assert_eq!(error.code(), Some(ErrorCode::ResumeRefused));
    assert_eq!(ana.get_party(party).await.unwrap().members.len(), 1);
}

#[tokio::test]
async fn when_everyone_is_lost_the_party_waits_until_the_last_window_ends() {
    let server = start_with(|c| {
        fast_loss_detection(c);
        c.grace = Duration::from_millis(1500);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = via_relay(&server, &relay, "ana", BY_HAND).await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", BY_HAND).await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    relay.blackhole(true);
    expect_lost(&mut ana_events, BY_HAND).await;
    expect_lost(&mut bob_events, BY_HAND).await;
    // Both seats are held while the windows are open: the party waits.
    assert_eq!(server.handle.party_count(), 1);
    assert_eq!(server.handle.session_count(), 2);
    let deadline = Instant::now() + WAIT;
    while server.handle.party_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        server.handle.party_count(),
        0,
        "gone once the last window ended"
    );
    assert_eq!(server.handle.session_count(), 0);
    let error = resume(&server, "ana", ana.resume_ticket())
        .await
        .err()
        .expect("too late");
    assert_eq!(error.code(), Some(ErrorCode::ResumeRefused));
}

#[tokio::test]
async fn resume_tokens_are_refused_for_another_user_or_garbage() {
    let server = start_with(fast_loss_detection).await;
    let (ana, _ana_events) = server.client("ana").await;
    let error = resume(&server, "mallory", ana.resume_ticket())
        .await
        .err()
        .expect("refused");
    assert_eq!(error.code(), Some(ErrorCode::ResumeRefused));
    let garbage = Resume {
        token: "not-a-token".into(),
        last_event_seq: 0,
    };
    let error = resume(&server, "ana", garbage)
        .await
        .err()
        .expect("refused");
    assert_eq!(error.code(), Some(ErrorCode::ResumeRefused));
}

#[tokio::test]
async fn control_commands_all_complete_at_ten_percent_loss() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let mut config = server.config("bob");
    config.server_addr = relay.addr;
    let (bob, _events) = Client::connect(config).await.unwrap();
    relay.loss(0.10);
    let party = bob
        .create_party(settings(true, 8, ""))
        .await
        .unwrap()
        .party_id;
    for i in 0..30u16 {
        bob.update_party(party, label(&format!("round {i}")))
            .await
            .unwrap();
        bob.get_party(party).await.unwrap();
    }
    assert_eq!(bob.get_party(party).await.unwrap().label, "round 29");
    assert!(relay.dropped() > 0, "the relay did drop packets");
}

#[tokio::test]
async fn a_rebinding_client_keeps_its_session_without_a_resume() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", BY_HAND).await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    relay.rebind().await;
    // Bob's next packets come from a new port; QUIC migrates the path.
    bob.send_data_reliable(party, 1, b"from a new port")
        .await
        .unwrap();
    match next(&mut ana_events).await {
        Event::Data(data) => {
            assert_eq!(&data.data[..], b"from a new port");
            assert_eq!(data.sender.session_id, bob.session_id());
        }
        other => panic!("no disconnect expected, got {other:?}"),
    }
    ana.send_data_reliable(party, 1, b"reply").await.unwrap();
    assert!(matches!(next(&mut bob_events).await, Event::Data(_)));
    assert_no_pending(&mut ana_events);
}

#[tokio::test]
async fn a_leader_grace_holds_leadership_for_a_while_then_hands_it_over() {
    let server = start_with(|c| {
        fast_loss_detection(c);
        c.leader_grace = Duration::from_millis(800);
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", BY_HAND).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let party = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    ana.join_party(party).await.unwrap();
    next_event(&mut bob_events).await;

    relay.blackhole(true);
    // First only the presence change: bob is still leader, held for him.
    expect_connection(&mut ana_events, "bob", false).await;
    assert_eq!(ana.get_party(party).await.unwrap().leader.user_id, "bob");
    // Then, the leader grace over, a connected member takes over.
    match next_event(&mut ana_events).await {
        Event::LeaderChanged { leader, .. } => assert_eq!(leader.user_id, "ana"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::JoinRequests { .. }
    ));
    // Bob comes back as a member, not as leader.
    let (bob2, _events) = resume(&server, "bob", bob.resume_ticket()).await.unwrap();
    let snapshot = bob2.get_party(party).await.unwrap();
    assert_eq!(snapshot.leader.user_id, "ana");
    assert_eq!(snapshot.members.len(), 2);
}

#[tokio::test]
async fn a_snapshot_resume_larger_than_a_frame_arrives_whole_in_one_welcome() {
    // 24 parties of 24 members with the longest names and full attributes:
    // their snapshots (~310 KB) are more than one frame (256 KiB) holds.
    const PARTIES: usize = 24;
    let server = start_with(|c| {
        fast_loss_detection(c);
        c.replay_events = 1;
        c.max_parties_per_session = PARTIES;
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let long = |i: usize| format!("{i:0>128}");
    let config = |i: usize| {
        let mut config = ClientConfig::dev(server.addr, server.certs.clone(), &long(i), &long(i));
        config.idle_timeout = FAST_IDLE;
        config.auto_reconnect = false;
        config
    };
    let mut victim_config = config(0);
    victim_config.server_addr = relay.addr;
    let (victim, mut victim_events) = Client::connect(victim_config).await.unwrap();
    let mut others = Vec::new();
    for i in 1..PARTIES {
        others.push(Client::connect(config(i)).await.unwrap());
    }
    let mut members: Vec<&Client> = vec![&victim];
    members.extend(others.iter().map(|(client, _)| client));
    let attributes: partyline_client::KeyValues = [("loadout".to_string(), "x".repeat(240))]
        .into_iter()
        .collect();
    let mut parties = Vec::new();
    for leader in &members {
        parties.push(
            leader
                .create_party(settings(true, 32, ""))
                .await
                .unwrap()
                .party_id,
        );
    }
    for (i, member) in members.iter().enumerate() {
        for (p, party) in parties.iter().enumerate() {
            if p != i {
                member.join_party(*party).await.unwrap();
            }
            member
                .set_member_attributes(*party, attributes.clone(), &[])
                .await
                .unwrap();
        }
    }

    relay.blackhole(true);
    // Past the party events of the set-up, to the loss.
    loop {
        match next(&mut victim_events).await {
            Event::Disconnected { .. } => break,
            Event::MemberJoined { .. } | Event::MemberAttributesChanged { .. } => {}
            other => panic!("expected the set-up's events, then the loss; got {other:?}"),
        }
    }
    // More missed events than the replay log keeps.
    for party in &parties[1..4] {
        others[0]
            .0
            .set_member_attributes(*party, attributes.clone(), &[])
            .await
            .unwrap();
    }
    let mut again = config(0);
    again.resume = Some(victim.resume_ticket());
    let (back, _events) = Client::connect(again)
        .await
        .expect("the large Welcome arrives");
    match &back.welcome().resumed {
        Resumed::Snapshots {
            parties: synced, ..
        } => assert_eq!(synced.len(), PARTIES),
        other => panic!("expected snapshots, got {other:?}"),
    }
    assert_eq!(back.parties().len(), PARTIES);
    assert!(back.parties().iter().all(|p| p.members.len() == PARTIES));
}
