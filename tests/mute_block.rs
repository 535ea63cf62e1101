//! Mutes and blocks over real QUIC, through the SDK (PROTOCOL.md, "Mutes
//! and blocks"): a mute keeps one member's party data (datagrams and
//! reliable, all op codes or a range) from the muter only, unmute gives it
//! back, the muted member is not told, and the mute lasts through a resume
//! and the muted member's leaving; a block keeps the blocked user out of
//! the blocker's party as if it did not exist, stops invites and hides
//! status both ways, and mutes two members who share it both ways; limits
//! give typed errors; the game's server sets block lists through its API
//! and its hook. (The rules' own property test is
//! `tests/mute_block_rules.rs`; a block across nodes is in
//! `src/server/hub_tests.rs`; a version 2 member in `tests/compat.rs`.)

mod support;

use partyline::server::{BeforeCall, Decision, HookFuture, HookPoint, Hooks};
use partyline_client::{
    Client, ClientConfig, ErrorCode, Event, Events, JoinOutcome, NumberRange, PartyId, MAX_BLOCKS,
    MAX_MUTES,
};
use support::relay::Relay;
use support::*;

const VOICE: NumberRange = NumberRange { min: 100, max: 199 };

/// A party led by the first client, every other seated; each member's
/// `MemberJoined` events are read.
async fn party_of(members: &mut [(&Client, &mut Events)]) -> PartyId {
    let party = members[0]
        .0
        .create_party(settings(true, 8, ""))
        .await
        .unwrap()
        .party_id;
    for joiner in 1..members.len() {
        members[joiner].0.join_party(party).await.unwrap();
        for (_, events) in members[..joiner].iter_mut() {
            assert!(matches!(
                next_event(events).await,
                Event::MemberJoined { .. }
            ));
        }
    }
    party
}

/// The op codes of the party data that reaches `events` until data with
/// each of `awaited` has arrived, sorted. Datagrams and reliable data have
/// no order between them: a test waits for both kinds it expects.
async fn data_until(events: &mut Events, awaited: &[i64]) -> Vec<i64> {
    let mut seen = Vec::new();
    while !awaited.iter().all(|op| seen.contains(op)) {
        seen.push(next_data(events).await.op_code);
    }
    seen.sort_unstable();
    seen
}

/// Everything `voice_and_game` sends, and the game's part alone.
const ALL: [i64; 4] = [1, 2, 150, 151];
const GAME: [i64; 2] = [1, 2];

/// Sends, as `sender`, a voice datagram (150), a game datagram (1), voice
/// reliably (151), then game reliably (2): a member that hears all of it
/// has `data_until(events, &ALL)`, one that hears the game's alone
/// `data_until(events, &GAME)` (the voice datagram, sent before the game's,
/// would come first).
async fn voice_and_game(sender: &Client, party: PartyId) {
    sender.send_data(party, 150, b"voice").unwrap();
    sender.send_data(party, 1, b"game").unwrap();
    sender
        .send_data_reliable(party, 151, b"voice")
        .await
        .unwrap();
    sender.send_data_reliable(party, 2, b"game").await.unwrap();
}

#[tokio::test]
async fn a_mute_by_op_codes_keeps_that_data_from_the_muter_only_and_unmute_gives_it_back() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    let party = party_of(&mut [
        (&ana, &mut ana_events),
        (&bob, &mut bob_events),
        (&cy, &mut cy_events),
    ])
    .await;

    ana.mute(party, "bob", Some(VOICE)).await.unwrap();
    let muted = ana.party(party).unwrap().muted;
    assert_eq!(muted.len(), 1, "the roster shows the mute");
    assert_eq!(
        (muted[0].user_id.as_str(), muted[0].op_codes),
        ("bob", Some(VOICE))
    );
    assert_eq!(
        ana.get_party(party).await.unwrap().mute_of("bob"),
        muted.first(),
        "the server's snapshot shows it to the muter"
    );
    assert!(
        bob.get_party(party).await.unwrap().muted.is_empty(),
        "nobody else's snapshot shows it"
    );

    voice_and_game(&bob, party).await;
    // Cy hears all four; Ana, the muter, only the game's.
    assert_eq!(data_until(&mut cy_events, &ALL).await, ALL);
    let heard = data_until(&mut ana_events, &GAME).await;
    assert_eq!(heard, GAME, "no voice reaches the muter");
    // Ana's own data still reaches Bob: a mute is one way.
    voice_and_game(&ana, party).await;
    assert_eq!(data_until(&mut bob_events, &ALL).await, ALL);
    assert_eq!(data_until(&mut cy_events, &ALL).await, ALL);
    // Bob was told nothing of the mute.
    bob.get_party(party).await.unwrap();
    assert_no_pending(&mut bob_events);

    // Muting again replaces the range: all of Bob now.
    ana.mute(party, "bob", None).await.unwrap();
    assert_eq!(ana.party(party).unwrap().muted[0].op_codes, None);
    voice_and_game(&bob, party).await;
    assert_eq!(data_until(&mut cy_events, &ALL).await, ALL);
    // Cy's data still reaches Ana, a round trip after Bob's.
    cy.send_data_reliable(party, 9, b"mark").await.unwrap();
    assert_eq!(
        data_until(&mut ana_events, &[9]).await,
        [9],
        "none of Bob's"
    );

    ana.unmute(party, "bob").await.unwrap();
    assert!(ana.party(party).unwrap().muted.is_empty());
    voice_and_game(&bob, party).await;
    assert_eq!(data_until(&mut ana_events, &ALL).await, ALL);
    ana.get_party(party).await.unwrap();
    assert_no_pending(&mut ana_events);
}

#[tokio::test]
async fn a_mute_outlasts_the_muted_members_return_and_a_resume_but_not_the_muters_leave() {
    // A replay log of one event, so that a resume can be served snapshots.
    let server = start_with(|config| {
        fast_loss_detection(config);
        config.replay_events = 1;
    })
    .await;
    let relay = Relay::start(server.addr).await;
    let (ana, mut ana_events) = via_relay(&server, &relay, "ana", false).await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    // Cy leads: Ana's loss is then only a connection lost.
    let party = party_of(&mut [
        (&cy, &mut cy_events),
        (&ana, &mut ana_events),
        (&bob, &mut bob_events),
    ])
    .await;
    ana.mute(party, "bob", None).await.unwrap();

    // Bob leaves and comes back: still muted (a mute names the user).
    bob.leave_party(party).await.unwrap();
    bob.join_party(party).await.unwrap();
    for events in [&mut ana_events, &mut cy_events] {
        assert!(matches!(next_event(events).await, Event::MemberLeft { .. }));
        assert!(matches!(
            next_event(events).await,
            Event::MemberJoined { .. }
        ));
    }
    voice_and_game(&bob, party).await;
    assert_eq!(data_until(&mut cy_events, &ALL).await, ALL);
    cy.send_data_reliable(party, 9, b"mark").await.unwrap();
    assert_eq!(data_until(&mut ana_events, &[9]).await, [9]);

    // Ana's connection is lost; she resumes her session: still muted.
    relay.blackhole(true);
    expect_lost(&mut ana_events, false).await;
    relay.blackhole(false);
    assert!(matches!(
        next_event(&mut cy_events).await,
        Event::MemberConnectionChanged {
            connected: false,
            ..
        }
    ));
    let mut config: ClientConfig = server.config("ana");
    // As a client that lost track: the log holds too little, so the
    // resume is served snapshots.
    let mut ticket = ana.resume_ticket();
    ticket.last_event_seq = 0;
    config.resume = Some(ticket);
    let (ana, mut ana_events) = Client::connect(config).await.unwrap();
    assert!(matches!(
        ana.welcome().resumed,
        partyline_client::protocol::Resumed::Snapshots { .. }
    ));
    // The resume's snapshot shows her mute: the roster has it at once.
    let resumed = ana.party(party).expect("the party, from the resume");
    assert_eq!(resumed.mute_of("bob").map(|m| m.op_codes), Some(None));
    assert!(matches!(
        next_event(&mut cy_events).await,
        Event::MemberConnectionChanged {
            connected: true,
            ..
        }
    ));
    let again = ana.get_party(party).await.unwrap();
    assert_eq!(again.mute_of("bob").map(|m| m.op_codes), Some(None));
    voice_and_game(&bob, party).await;
    assert_eq!(data_until(&mut cy_events, &ALL).await, ALL);
    cy.send_data_reliable(party, 9, b"mark").await.unwrap();
    // What came before the resume's replay may come first: Cy's mark
    // comes, and nothing of Bob's.
    loop {
        match next(&mut ana_events).await {
            Event::Data(data) if data.op_code == 9 => break,
            Event::Data(data) => panic!("muted data reached Ana: {}", data.op_code),
            _ => {}
        }
    }

    // Ana leaves and comes back: a new seat, with no mutes.
    ana.leave_party(party).await.unwrap();
    ana.join_party(party).await.unwrap();
    assert!(ana.party(party).unwrap().muted.is_empty());
    for _ in 0..2 {
        next_event(&mut cy_events).await;
    }
    voice_and_game(&bob, party).await;
    assert_eq!(data_until(&mut ana_events, &ALL).await, ALL);
}

#[tokio::test]
async fn mutes_are_refused_with_typed_errors() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (eve, _eve_events) = server.client("eve").await;
    let party = party_of(&mut [(&ana, &mut ana_events), (&bob, &mut bob_events)]).await;

    assert_eq!(
        code(eve.mute(party, "bob", None).await),
        ErrorCode::NotMember
    );
    assert_eq!(
        code(ana.mute(party, "eve", None).await),
        ErrorCode::MemberNotFound
    );
    assert_eq!(
        code(ana.mute(party, "ana", None).await),
        ErrorCode::InvalidArgument
    );
    let backwards = NumberRange { min: 5, max: 4 };
    assert_eq!(
        code(ana.mute(party, "bob", Some(backwards)).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(ana.mute(party, "bad\nid", None).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(ana.mute(PartyId::random(), "bob", None).await),
        ErrorCode::PartyNotFound
    );
    // Unmuting one not muted changes nothing.
    ana.unmute(party, "bob").await.unwrap();
    assert!(ana.party(party).unwrap().muted.is_empty());

    // As many mutes as allowed, of members who came and went (a mute
    // outlives the seat), then one more is refused; a new range for one
    // already muted is not one more.
    for i in 0..MAX_MUTES {
        let user = format!("passer-{i}");
        let (passer, _events) = server.client(&user).await;
        passer.join_party(party).await.unwrap();
        ana.mute(party, &user, None).await.unwrap();
        passer.close().await;
    }
    assert_eq!(
        code(ana.mute(party, "bob", None).await),
        ErrorCode::TooManyMutes
    );
    ana.mute(party, "passer-0", Some(VOICE)).await.unwrap();
    assert_eq!(ana.party(party).unwrap().muted.len(), MAX_MUTES);
    ana.unmute(party, "passer-0").await.unwrap();
    ana.mute(party, "bob", None).await.unwrap();
}

#[tokio::test]
async fn a_leaders_block_keeps_the_blocked_user_out_as_if_the_party_did_not_exist() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, _bob_events) = server.client("bob").await;
    let (cy, _cy_events) = server.client("cy").await;
    let open = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let code = ana.create_join_code(open).await.unwrap();
    assert_eq!(ana.block(&["bob"]).await.unwrap(), ["bob"]);
    let closed = ana
        .create_party(settings(false, 4, ""))
        .await
        .unwrap()
        .party_id;

    // Bob's join, request and code join are answered exactly as a join
    // of a party that does not exist.
    let missing = match bob.join_party(PartyId::random()).await {
        Err(error) => error.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    };
    for refusal in [
        bob.join_party(open).await,
        bob.join_party(closed).await,
        bob.join_by_code(&code).await,
    ] {
        let refusal = refusal.unwrap_err();
        assert_eq!(refusal.code(), Some(ErrorCode::PartyNotFound));
        assert_eq!(refusal.to_string(), missing, "the same words too");
    }
    // Anyone else gets in.
    assert!(matches!(
        cy.join_party(open).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    // Once unblocked, Bob too.
    assert!(ana.unblock(&["bob"]).await.unwrap().is_empty());
    assert!(matches!(
        bob.join_party(open).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
}

#[tokio::test]
async fn a_block_stops_invites_and_hides_status_both_ways() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    ana.block(&["bob"]).await.unwrap();

    // Neither sees the other online; Cy sees both.
    assert!(bob.follow(&["ana"]).await.unwrap().is_empty());
    assert!(ana.follow(&["bob"]).await.unwrap().is_empty());
    assert_eq!(cy.follow(&["ana", "bob"]).await.unwrap().len(), 2);
    ana.set_status("in a match", true).await.unwrap();
    bob.set_status("lobby", true).await.unwrap();
    for _ in 0..2 {
        assert!(matches!(
            next_event(&mut cy_events).await,
            Event::StatusChanged(_)
        ));
    }

    // Bob's invite never reaches Ana, nor her list; he is told nothing.
    let bobs = bob
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.invite(bobs, "ana").await.unwrap();
    bob.invite(bobs, "cy").await.unwrap();
    assert!(matches!(
        next_event(&mut cy_events).await,
        Event::Invited(_)
    ));
    assert!(ana.list_invites().await.unwrap().is_empty());
    // Nor its end: Bob takes it back, and Ana hears nothing of it.
    bob.revoke_invite(bobs, "ana").await.unwrap();
    // Ana may not invite the user she blocked.
    let anas = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    assert_eq!(code(ana.invite(anas, "bob").await), ErrorCode::Blocked);
    ana.get_party(anas).await.unwrap();
    bob.get_party(bobs).await.unwrap();
    assert_no_pending(&mut ana_events);
    assert_no_pending(&mut bob_events);

    // Unblocked: each sees the other now (the status as it is), and
    // invites reach Ana again.
    ana.unblock(&["bob"]).await.unwrap();
    match next_event(&mut ana_events).await {
        Event::StatusOnline(status) => assert_eq!(status.presence.user_id, "bob"),
        other => panic!("expected Bob online, got {other:?}"),
    }
    match next_event(&mut bob_events).await {
        Event::StatusOnline(status) => {
            assert_eq!(
                (status.presence.user_id.as_str(), status.status.as_str()),
                ("ana", "in a match")
            )
        }
        other => panic!("expected Ana online, got {other:?}"),
    }
    bob.invite(bobs, "ana").await.unwrap();
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::Invited(_)
    ));

    // Blocked again while each follows the other: each sees the other go.
    ana.block(&["bob"]).await.unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        assert!(matches!(
            next_event(events).await,
            Event::StatusOffline { .. }
        ));
    }
    // Ana's status changes reach Cy, not Bob.
    ana.set_status("afk", true).await.unwrap();
    assert!(matches!(
        next_event(&mut cy_events).await,
        Event::StatusChanged(_)
    ));
    bob.get_party(bobs).await.unwrap();
    assert_no_pending(&mut bob_events);
}

#[tokio::test]
async fn members_who_share_a_block_hear_no_party_data_of_each_other() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cy, mut cy_events) = server.client("cy").await;
    let party = party_of(&mut [
        (&ana, &mut ana_events),
        (&bob, &mut bob_events),
        (&cy, &mut cy_events),
    ])
    .await;

    // Cy blocks Bob, both seated already: nothing passes between them,
    // either way; Ana hears both.
    cy.block(&["bob"]).await.unwrap();
    voice_and_game(&bob, party).await;
    assert_eq!(data_until(&mut ana_events, &ALL).await, ALL);
    voice_and_game(&cy, party).await;
    assert_eq!(data_until(&mut ana_events, &ALL).await, ALL);
    ana.send_data_reliable(party, 9, b"mark").await.unwrap();
    assert_eq!(data_until(&mut bob_events, &[9]).await, [9], "none of Cy's");
    assert_eq!(data_until(&mut cy_events, &[9]).await, [9], "none of Bob's");
    // They still see each other as members: a block hides data, not seats.
    assert!(bob.party(party).unwrap().member("cy").is_some());

    // Unblocked: data flows again.
    cy.unblock(&["bob"]).await.unwrap();
    voice_and_game(&bob, party).await;
    assert_eq!(data_until(&mut cy_events, &ALL).await, ALL);
}

#[tokio::test]
async fn block_lists_are_bounded_typed_sorted_and_listed() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    assert_eq!(
        ana.block(&["zed", "bob", "bob", "cy"]).await.unwrap(),
        ["bob", "cy", "zed"]
    );
    assert_eq!(ana.list_blocks().await.unwrap(), ["bob", "cy", "zed"]);
    assert_eq!(ana.blocked(), ["bob", "cy", "zed"], "the client keeps it");
    assert_eq!(code(ana.block(&["ana"]).await), ErrorCode::InvalidArgument);
    assert_eq!(code(ana.block(&[""]).await), ErrorCode::InvalidArgument);
    assert_eq!(
        code(ana.block(&["tab\there"]).await),
        ErrorCode::InvalidArgument
    );
    let many: Vec<String> = (0..MAX_BLOCKS).map(|i| format!("user-{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    // Three are listed already: all of these would pass the bound.
    assert_eq!(code(ana.block(&many).await), ErrorCode::TooManyBlocks);
    assert_eq!(ana.list_blocks().await.unwrap().len(), 3, "nothing changed");
    ana.unblock(&["bob", "cy", "zed", "never"]).await.unwrap();
    assert_eq!(ana.block(&many).await.unwrap().len(), MAX_BLOCKS);
    assert_eq!(
        code(ana.block(&["one-more"]).await),
        ErrorCode::TooManyBlocks
    );
}

/// The game's rules: `plat-` users start with the platform's block of
/// `troll`, and nobody may unblock `troll`.
struct PlatformBlocks;

impl Hooks for PlatformBlocks {
    fn block_list<'a>(&'a self, user_id: &'a str) -> HookFuture<'a, Vec<String>> {
        let list = match user_id.starts_with("plat-") {
            // The user's own id and a bad id are left out by the server.
            true => vec!["troll".into(), user_id.into(), "bad\nid".into()],
            false => Vec::new(),
        };
        Box::pin(async move { list })
    }

    fn before<'a>(&'a self, call: &'a BeforeCall) -> HookFuture<'a, Decision> {
        let decision = match (&call.point, &call.command) {
            (HookPoint::Block, partyline::protocol::Command::Unblock { user_ids })
                if user_ids.iter().any(|u| u == "troll") =>
            {
                Decision::deny("a platform block")
            }
            _ => Decision::Allow,
        };
        Box::pin(async move { decision })
    }
}

#[tokio::test]
async fn the_game_sets_block_lists_through_its_hook_and_its_api() {
    let server = start_with_hooks(PlatformBlocks, |_| {}).await;
    let (ana, mut ana_events) = server.client("plat-ana").await;
    // The hook's list, before anything else.
    match next_event(&mut ana_events).await {
        Event::BlocksChanged { user_ids } => assert_eq!(user_ids, ["troll"]),
        other => panic!("expected the platform's list, got {other:?}"),
    }
    assert_eq!(ana.blocked(), ["troll"]);
    assert_eq!(ana.list_blocks().await.unwrap(), ["troll"]);
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    let (troll, _troll_events) = server.client("troll").await;
    assert_eq!(
        code(troll.join_party(party).await),
        ErrorCode::PartyNotFound
    );
    assert_eq!(code(ana.unblock(&["troll"]).await), ErrorCode::Denied);

    // The backend sets the list of every session of the user.
    let (ana2, mut ana2_events) = server.client("plat-ana").await;
    next_event(&mut ana2_events).await;
    let api = server.handle.api();
    let set = api
        .set_blocks("plat-ana", &["mallory".into(), "troll".into()])
        .await
        .unwrap();
    assert_eq!(set, 2);
    for (client, events) in [(&ana, &mut ana_events), (&ana2, &mut ana2_events)] {
        match next_event(events).await {
            Event::BlocksChanged { user_ids } => assert_eq!(user_ids, ["mallory", "troll"]),
            other => panic!("expected the backend's list, got {other:?}"),
        }
        assert_eq!(client.blocked(), ["mallory", "troll"]);
    }
    let (mallory, _mallory_events) = server.client("mallory").await;
    assert_eq!(
        code(mallory.join_party(party).await),
        ErrorCode::PartyNotFound
    );
    // Checked as a session's own list is.
    let refused = api.set_blocks("plat-ana", &["plat-ana".into()]).await;
    assert!(refused.is_err());
    let many: Vec<String> = (0..=MAX_BLOCKS).map(|i| format!("user-{i}")).collect();
    assert!(api.set_blocks("plat-ana", &many).await.is_err());
    // A user with no session: nothing to set.
    assert_eq!(api.set_blocks("nobody", &[]).await.unwrap(), 0);
}
