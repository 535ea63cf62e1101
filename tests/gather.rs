//! Finding and gathering players, over real QUIC: status and follows,
//! invites, join codes, listing and search, party state, member
//! attributes and bans, each rule and limit, and what survives a resume.
mod support;

use partyline::protocol::{JOIN_CODE_ALPHABET, JOIN_CODE_LEN};
use partyline_client::{
    ErrorCode, Event, Events, InviteGoneReason, InvitePolicy, JoinOutcome, KeyValues, LeaveReason,
    PartySearch, PartySettings,
};
use std::time::Duration;
use support::relay::Relay;
use support::*;

fn kv(pairs: &[(&str, &str)]) -> KeyValues {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn closed(max_size: u16) -> PartySettings {
    settings(false, max_size, "")
}

/// The next event, whatever it is, must satisfy `check` (which says what
/// it expected when it does not).
async fn expect<T>(events: &mut Events, what: &str, check: impl FnOnce(Event) -> Option<T>) -> T {
    let event = next(events).await;
    let shown = format!("{event:?}");
    check(event).unwrap_or_else(|| panic!("expected {what}, got {shown}"))
}

// ---- status and follows -------------------------------------------------

#[tokio::test]
async fn followers_see_each_session_come_online_change_status_hide_and_go() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let (fan, mut fan_events) = server.client("fan").await;

    // The snapshot on follow: ana's one session, visible, no status.
    let online = fan.follow(&["ana", "nobody"]).await.unwrap();
    assert_eq!(online.len(), 1);
    assert_eq!(online[0].presence.user_id, "ana");
    assert_eq!(online[0].status, "");

    ana.set_status("in menus", true).await.unwrap();
    let changed = expect(&mut fan_events, "StatusChanged", |e| match e {
        Event::StatusChanged(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(
        (changed.presence.session_id, changed.status.as_str()),
        (ana.session_id(), "in menus")
    );

    // A second session of ana is its own presence.
    let (ana2, _ana2_events) = server.client("ana").await;
    let second = expect(&mut fan_events, "StatusOnline", |e| match e {
        Event::StatusOnline(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(second.presence.session_id, ana2.session_id());

    // Appearing offline is going offline, to followers; and back.
    ana.set_status("in menus", false).await.unwrap();
    let hidden = expect(&mut fan_events, "StatusOffline", |e| match e {
        Event::StatusOffline { presence } => Some(presence),
        _ => None,
    })
    .await;
    assert_eq!(hidden.session_id, ana.session_id());
    assert_eq!(fan.follow(&["ana"]).await.unwrap().len(), 1, "one visible");
    ana.set_status("queueing", true).await.unwrap();
    let back = expect(&mut fan_events, "StatusOnline", |e| match e {
        Event::StatusOnline(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(back.status, "queueing");

    let ana2_session = ana2.session_id();
    ana2.close().await;
    let gone = expect(&mut fan_events, "StatusOffline", |e| match e {
        Event::StatusOffline { presence } => Some(presence),
        _ => None,
    })
    .await;
    assert_eq!(gone.session_id, ana2_session);

    // After unfollowing, nothing more arrives: the status change below is
    // followed by a change fan does see, from a user it still follows.
    let (bea, _bea_events) = server.client("bea").await;
    fan.follow(&["bea"]).await.unwrap();
    fan.unfollow(&["ana"]).await.unwrap();
    ana.set_status("ignored", true).await.unwrap();
    bea.set_status("seen", true).await.unwrap();
    let seen = expect(&mut fan_events, "bea's StatusChanged", |e| match e {
        Event::StatusChanged(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(seen.presence.user_id, "bea");
}

#[tokio::test]
async fn follows_and_status_are_bounded() {
    let server = start_with(|c| c.max_follows = 2).await;
    let (fan, _events) = server.client("fan").await;
    fan.follow(&["a", "b"]).await.unwrap();
    // Following one already followed again costs nothing.
    fan.follow(&["a"]).await.unwrap();
    assert_eq!(code(fan.follow(&["c"]).await), ErrorCode::TooManyFollows);
    fan.unfollow(&["a"]).await.unwrap();
    fan.follow(&["c"]).await.unwrap();
    assert_eq!(code(fan.follow(&[""]).await), ErrorCode::InvalidArgument);
    let long = "x".repeat(fan.limits().max_status_bytes as usize + 1);
    assert_eq!(
        code(fan.set_status(&long, true).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(fan.set_status("a\nb", true).await),
        ErrorCode::InvalidArgument
    );
    bystanders_still_served(&server).await;
}

// ---- invites ------------------------------------------------------------

#[tokio::test]
async fn an_invite_reaches_every_session_and_seats_its_user_once_in_a_closed_party() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (bob2, mut bob2_events) = server.client("bob").await;
    let party = ana
        .create_party(PartySettings {
            label: "duo".into(),
            ..closed(4)
        })
        .await
        .unwrap()
        .party_id;
    ana.invite(party, "bob").await.unwrap();
    for events in [&mut bob_events, &mut bob2_events] {
        let invite = expect(events, "Invited", |e| match e {
            Event::Invited(i) => Some(i),
            _ => None,
        })
        .await;
        assert_eq!(invite.party_id, party);
        assert_eq!(invite.inviter.user_id, "ana");
        assert_eq!(invite.leader.user_id, "ana");
        assert_eq!(
            (invite.members, invite.max_size, invite.open),
            (1, 4, false)
        );
        assert_eq!(invite.label, "duo");
        assert!(invite.expires_at_ms > 0);
    }
    assert_eq!(bob2.list_invites().await.unwrap().len(), 1);

    // The invite admits to the closed party without a request.
    let joined = bob.join_party(party).await.unwrap();
    assert!(matches!(joined, JoinOutcome::Joined(_)), "{joined:?}");
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
    // Every session of bob hears it was used.
    for events in [&mut bob_events, &mut bob2_events] {
        let gone = expect(events, "InviteGone", |e| match e {
            Event::InviteGone { reason, .. } => Some(reason),
            _ => None,
        })
        .await;
        assert_eq!(gone, InviteGoneReason::Answered);
    }
    assert!(bob2.list_invites().await.unwrap().is_empty());

    // One use: after leaving, the closed party queues bob again.
    bob.leave_party(party).await.unwrap();
    let again = bob.join_party(party).await.unwrap();
    assert!(matches!(again, JoinOutcome::Queued { .. }), "{again:?}");
}

#[tokio::test]
async fn who_may_invite_follows_the_party_policy() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (_cat, mut cat_events) = server.client("cat").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    assert_eq!(code(bob.invite(party, "cat").await), ErrorCode::NotLeader);
    let updated = ana
        .update_party(
            party,
            partyline_client::PartyUpdate {
                invite_policy: Some(InvitePolicy::AnyMember),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.invite_policy, InvitePolicy::AnyMember);
    let seen = expect(&mut bob_events, "PartyUpdated", |e| match e {
        Event::PartyUpdated { party } => Some(party),
        _ => None,
    })
    .await;
    assert_eq!(seen.invite_policy, InvitePolicy::AnyMember);
    bob.invite(party, "cat").await.unwrap();
    let invite = expect(&mut cat_events, "Invited", |e| match e {
        Event::Invited(i) => Some(i),
        _ => None,
    })
    .await;
    assert_eq!(invite.inviter.user_id, "bob");
    // Bob may take back his own invite, not the leader's.
    ana.invite(party, "dan").await.unwrap();
    assert_eq!(
        code(bob.revoke_invite(party, "dan").await),
        ErrorCode::NotLeader
    );
    bob.revoke_invite(party, "cat").await.unwrap();
    let gone = expect(&mut cat_events, "InviteGone", |e| match e {
        Event::InviteGone { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(gone, InviteGoneReason::Revoked);
    // Members cannot be invited; outsiders cannot invite.
    assert_eq!(
        code(ana.invite(party, "bob").await),
        ErrorCode::AlreadyMember
    );
    let (dan, _dan_events) = server.client("dan").await;
    assert_eq!(code(dan.invite(party, "eve").await), ErrorCode::NotMember);
    assert_eq!(
        code(ana.invite(party, "").await),
        ErrorCode::InvalidArgument
    );
}

#[tokio::test]
async fn declining_tells_the_inviter_and_revoking_tells_the_invitee() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana.create_party(closed(4)).await.unwrap().party_id;

    ana.invite(party, "bob").await.unwrap();
    next(&mut bob_events).await;
    bob.decline_invite(party).await.unwrap();
    let by = expect(&mut ana_events, "InviteDeclined", |e| match e {
        Event::InviteDeclined { party_id, by } if party_id == party => Some(by),
        _ => None,
    })
    .await;
    assert_eq!(by.session_id, bob.session_id());
    let gone = expect(&mut bob_events, "InviteGone", |e| match e {
        Event::InviteGone { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(gone, InviteGoneReason::Answered);
    assert_eq!(
        code(bob.decline_invite(party).await),
        ErrorCode::InviteNotFound
    );

    ana.invite(party, "bob").await.unwrap();
    next(&mut bob_events).await;
    ana.revoke_invite(party, "bob").await.unwrap();
    let gone = expect(&mut bob_events, "InviteGone", |e| match e {
        Event::InviteGone { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(gone, InviteGoneReason::Revoked);
    assert_eq!(
        code(ana.revoke_invite(party, "bob").await),
        ErrorCode::InviteNotFound
    );
    // Revoked: the closed party queues bob.
    assert!(matches!(
        bob.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    // A decline for a party that is gone is a missing invite too.
    assert_eq!(
        code(
            bob.decline_invite(partyline_client::PartyId::random())
                .await
        ),
        ErrorCode::InviteNotFound
    );
}

#[tokio::test]
async fn an_invite_waits_for_a_user_who_comes_online_and_vanishes_with_its_party() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let party = ana.create_party(closed(4)).await.unwrap().party_id;
    ana.invite(party, "bob").await.unwrap();

    let (bob, mut bob_events) = server.client("bob").await;
    let invites = bob.list_invites().await.unwrap();
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0].party_id, party);

    ana.close_party(party).await.unwrap();
    let gone = expect(&mut bob_events, "InviteGone", |e| match e {
        Event::InviteGone { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(gone, InviteGoneReason::PartyClosed);
    assert!(bob.list_invites().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_invite_expires() {
    let server = start_with(|c| {
        c.invite_ttl = Duration::from_millis(300);
        c.join_request_ttl = Duration::from_millis(300);
    })
    .await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana.create_party(closed(4)).await.unwrap().party_id;
    ana.invite(party, "bob").await.unwrap();
    next(&mut bob_events).await;
    // The server's sweep removes it and says so: no fixed sleep here.
    let gone = expect(&mut bob_events, "InviteGone", |e| match e {
        Event::InviteGone { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(gone, InviteGoneReason::Expired);
    assert!(matches!(
        bob.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
}

#[tokio::test]
async fn invites_are_rate_limited_per_session() {
    let server = start_with(|c| c.invites_per_minute = 3).await;
    let (ana, _ana_events) = server.client("ana").await;
    let party = ana.create_party(closed(2)).await.unwrap().party_id;
    for user in ["u1", "u2", "u3"] {
        ana.invite(party, user).await.unwrap();
    }
    assert_eq!(code(ana.invite(party, "u4").await), ErrorCode::RateLimited);
    bystanders_still_served(&server).await;
}

#[tokio::test]
async fn a_party_keeps_at_most_256_pending_invites_whatever_its_size() {
    let server = start_with(|c| {
        c.invites_per_minute = 0;
        c.per_user.invites = 0;
        c.command_rate = 0.0;
    })
    .await;
    let (ana, _ana_events) = server.client("ana").await;
    // More invites than seats is fine: first come, first seated.
    let party = ana.create_party(closed(2)).await.unwrap().party_id;
    let most = usize::from(partyline::protocol::MAX_PARTY_SIZE);
    for i in 0..most {
        ana.invite(party, &format!("u{i}")).await.unwrap();
    }
    assert_eq!(
        code(ana.invite(party, "one-too-many").await),
        ErrorCode::TooManyInvites
    );
    // Renewing one already pending is not a new one.
    ana.invite(party, "u0").await.unwrap();
}

// ---- join codes ---------------------------------------------------------

#[tokio::test]
async fn a_join_code_admits_by_the_party_rule_and_rotates_and_clears() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cat, _cat_events) = server.client("cat").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    assert_eq!(
        code(bob.create_join_code(party).await),
        ErrorCode::NotLeader
    );

    let first = ana.create_join_code(party).await.unwrap();
    assert_eq!(first.len(), JOIN_CODE_LEN);
    assert!(first.bytes().all(|b| JOIN_CODE_ALPHABET.contains(&b)));
    let told = expect(&mut bob_events, "JoinCodeChanged", |e| match e {
        Event::JoinCodeChanged { code, .. } => Some(code),
        _ => None,
    })
    .await;
    assert_eq!(told, first);
    assert_eq!(ana.get_party(party).await.unwrap().join_code, first);

    // Case, spaces and dashes do not matter.
    let typed = format!(" {}-{} ", &first[..3].to_lowercase(), &first[3..]);
    let joined = cat.join_by_code(&typed).await.unwrap();
    assert!(matches!(joined, JoinOutcome::Joined(_)), "{joined:?}");
    cat.leave_party(party).await.unwrap();

    let second = ana.create_join_code(party).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        code(cat.join_by_code(&first).await),
        ErrorCode::JoinCodeNotFound
    );
    // A closed party queues whoever comes by code.
    ana.update_party(
        party,
        partyline_client::PartyUpdate {
            open: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        cat.join_by_code(&second).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
    ana.clear_join_code(party).await.unwrap();
    assert_eq!(
        code(cat.join_by_code(&second).await),
        ErrorCode::JoinCodeNotFound
    );
    assert_eq!(ana.get_party(party).await.unwrap().join_code, "");

    // A code dies with its party.
    let third = ana.create_join_code(party).await.unwrap();
    ana.close_party(party).await.unwrap();
    assert_eq!(
        code(cat.join_by_code(&third).await),
        ErrorCode::JoinCodeNotFound
    );
}

#[tokio::test]
async fn guessing_join_codes_is_rate_limited() {
    let server = start_with(|c| c.join_code_attempts_per_minute = 3).await;
    let (guesser, _events) = server.client("guesser").await;
    for guess in ["AAAAAA", "BBBBBB", "not a code"] {
        assert_eq!(
            code(guesser.join_by_code(guess).await),
            ErrorCode::JoinCodeNotFound
        );
    }
    assert_eq!(
        code(guesser.join_by_code("CCCCCC").await),
        ErrorCode::RateLimited
    );
    bystanders_still_served(&server).await;
}

// ---- listing and search -------------------------------------------------

fn search(
    open_only: bool,
    min_free_seats: u16,
    properties: &[(&str, &str)],
    limit: u16,
) -> PartySearch {
    PartySearch {
        open_only,
        min_free_seats,
        properties: kv(properties),
        limit,
        cursor: 0,
    }
}

#[tokio::test]
async fn listed_parties_are_found_by_filters_and_paged_with_a_cursor() {
    let server = start().await;
    let (a, _a) = server.client("a").await;
    let (b, _b) = server.client("b").await;
    let (c, _c) = server.client("c").await;
    let (d, _d) = server.client("d").await;
    let (seeker, _s) = server.client("seeker").await;

    let ranked_eu = a
        .create_party(settings(true, 4, "A"))
        .await
        .unwrap()
        .party_id;
    let ranked_us = b
        .create_party(settings(true, 2, "B"))
        .await
        .unwrap()
        .party_id;
    let casual_eu = c
        .create_party(settings(false, 4, "C"))
        .await
        .unwrap()
        .party_id;
    let unlisted = d
        .create_party(settings(true, 4, "D"))
        .await
        .unwrap()
        .party_id;
    a.list_party(ranked_eu, kv(&[("mode", "ranked"), ("region", "eu")]))
        .await
        .unwrap();
    b.list_party(ranked_us, kv(&[("mode", "ranked"), ("region", "us")]))
        .await
        .unwrap();
    c.list_party(casual_eu, kv(&[("mode", "casual"), ("region", "eu")]))
        .await
        .unwrap();

    let ids = |page: &partyline_client::SearchPage| {
        page.parties.iter().map(|p| p.party_id).collect::<Vec<_>>()
    };
    let all = seeker
        .search_parties(search(false, 0, &[], 10))
        .await
        .unwrap();
    assert_eq!(
        ids(&all),
        vec![ranked_eu, ranked_us, casual_eu],
        "listing order"
    );
    assert_eq!(all.next_cursor, 0);
    assert!(!ids(&all).contains(&unlisted));
    let first = &all.parties[0];
    assert_eq!((first.members, first.max_size, first.open), (1, 4, true));
    assert_eq!(first.label, "A");
    assert_eq!(
        first.properties,
        kv(&[("mode", "ranked"), ("region", "eu")])
    );

    let open = seeker
        .search_parties(search(true, 0, &[], 10))
        .await
        .unwrap();
    assert_eq!(ids(&open), vec![ranked_eu, ranked_us]);
    let eu = seeker
        .search_parties(search(false, 0, &[("region", "eu")], 10))
        .await
        .unwrap();
    assert_eq!(ids(&eu), vec![ranked_eu, casual_eu]);
    let ranked_eu_only = seeker
        .search_parties(search(
            false,
            0,
            &[("region", "eu"), ("mode", "ranked")],
            10,
        ))
        .await
        .unwrap();
    assert_eq!(ids(&ranked_eu_only), vec![ranked_eu]);

    // Free seats follow membership: once the party of 2 is full, it drops out.
    let roomy = seeker
        .search_parties(search(false, 1, &[], 10))
        .await
        .unwrap();
    assert_eq!(ids(&roomy), vec![ranked_eu, ranked_us, casual_eu]);
    seeker.join_party(ranked_us).await.unwrap();
    let roomy = seeker
        .search_parties(search(false, 1, &[], 10))
        .await
        .unwrap();
    assert_eq!(ids(&roomy), vec![ranked_eu, casual_eu]);
    let two_free = seeker
        .search_parties(search(false, 3, &[], 10))
        .await
        .unwrap();
    assert_eq!(ids(&two_free), vec![ranked_eu, casual_eu]);

    // Paging: one at a time, each party once, in order.
    let mut cursor = 0;
    let mut paged = Vec::new();
    loop {
        let page = seeker
            .search_parties(PartySearch {
                cursor,
                ..search(false, 0, &[], 1)
            })
            .await
            .unwrap();
        paged.extend(ids(&page));
        if page.next_cursor == 0 {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(paged, vec![ranked_eu, ranked_us, casual_eu]);

    // Unlisting and closing take parties out.
    c.unlist_party(casual_eu).await.unwrap();
    a.close_party(ranked_eu).await.unwrap();
    let left = seeker
        .search_parties(search(false, 0, &[], 10))
        .await
        .unwrap();
    assert_eq!(ids(&left), vec![ranked_us]);

    assert_eq!(
        code(seeker.search_parties(search(false, 0, &[], 0)).await),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        code(seeker.list_party(ranked_us, KeyValues::new()).await),
        ErrorCode::NotLeader
    );
    let too_many: KeyValues = (0..=seeker.limits().max_property_entries)
        .map(|i| (format!("k{i}"), "v".to_string()))
        .collect();
    assert_eq!(
        code(b.list_party(ranked_us, too_many).await),
        ErrorCode::KeyValuesTooLarge
    );
}

#[tokio::test]
async fn members_see_listing_changes_and_search_clamps_its_limit() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    ana.list_party(party, kv(&[("mode", "duo")])).await.unwrap();
    let (listed, properties) = expect(&mut bob_events, "ListingChanged", |e| match e {
        Event::ListingChanged {
            listed, properties, ..
        } => Some((listed, properties)),
        _ => None,
    })
    .await;
    assert!(listed);
    assert_eq!(properties, kv(&[("mode", "duo")]));
    assert!(bob.party(party).unwrap().listed);
    ana.unlist_party(party).await.unwrap();
    let listed = expect(&mut bob_events, "ListingChanged", |e| match e {
        Event::ListingChanged { listed, .. } => Some(listed),
        _ => None,
    })
    .await;
    assert!(!listed);

    // More parties than the most one search returns: it returns the most.
    let max = ana.limits().max_search_results;
    let mut leaders = Vec::new();
    for i in 0..=max {
        let (leader, events) = server.client(&format!("l{i}")).await;
        let id = leader
            .create_party(settings(true, 4, ""))
            .await
            .unwrap()
            .party_id;
        leader.list_party(id, KeyValues::new()).await.unwrap();
        leaders.push((leader, events));
    }
    let page = bob
        .search_parties(search(false, 0, &[], u16::MAX))
        .await
        .unwrap();
    assert_eq!(page.parties.len(), usize::from(max));
    assert_ne!(page.next_cursor, 0);
}

// ---- party state and member attributes ----------------------------------

#[tokio::test]
async fn the_leader_owns_the_party_state_and_every_member_sees_it() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let created = ana
        .create_party(PartySettings {
            state: kv(&[("map", "docks")]),
            ..settings(true, 4, "")
        })
        .await
        .unwrap();
    assert_eq!(created.state, kv(&[("map", "docks")]));
    let party = created.party_id;
    let JoinOutcome::Joined(seen) = bob.join_party(party).await.unwrap() else {
        panic!("open party");
    };
    assert_eq!(seen.state, kv(&[("map", "docks")]));
    next_event(&mut ana_events).await;

    ana.set_party_state(party, kv(&[("mode", "ctf")]), &["map"])
        .await
        .unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        let state = expect(events, "PartyStateChanged", |e| match e {
            Event::PartyStateChanged { state, .. } => Some(state),
            _ => None,
        })
        .await;
        assert_eq!(state, kv(&[("mode", "ctf")]));
    }
    assert_eq!(bob.party(party).unwrap().state, kv(&[("mode", "ctf")]));
    assert_eq!(
        bob.get_party(party).await.unwrap().state,
        kv(&[("mode", "ctf")])
    );
    assert_eq!(
        code(bob.set_party_state(party, kv(&[("x", "y")]), &[]).await),
        ErrorCode::NotLeader
    );
    let limits = ana.limits();
    let big = kv(&[("blob", &"x".repeat(limits.max_state_bytes as usize))]);
    assert_eq!(
        code(ana.set_party_state(party, big, &[]).await),
        ErrorCode::KeyValuesTooLarge
    );
    assert_eq!(
        code(
            ana.set_party_state(party, kv(&[("", "empty key")]), &[])
                .await
        ),
        ErrorCode::InvalidArgument
    );
    // Refused changes change nothing.
    assert_eq!(
        ana.get_party(party).await.unwrap().state,
        kv(&[("mode", "ctf")])
    );
    let created_big = ana
        .create_party(PartySettings {
            state: (0..=limits.max_state_entries)
                .map(|i| (format!("k{i}"), String::new()))
                .collect(),
            ..settings(true, 4, "")
        })
        .await;
    assert_eq!(code(created_big), ErrorCode::KeyValuesTooLarge);
}

#[tokio::test]
async fn each_member_sets_its_own_attributes_and_every_member_sees_them() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;

    bob.set_member_attributes(party, kv(&[("hero", "mage"), ("ready", "1")]), &[])
        .await
        .unwrap();
    for events in [&mut ana_events, &mut bob_events] {
        let (member, attributes) = expect(events, "MemberAttributesChanged", |e| match e {
            Event::MemberAttributesChanged {
                member, attributes, ..
            } => Some((member, attributes)),
            _ => None,
        })
        .await;
        assert_eq!(member.user_id, "bob");
        assert_eq!(attributes, kv(&[("hero", "mage"), ("ready", "1")]));
    }
    bob.set_member_attributes(party, KeyValues::new(), &["ready"])
        .await
        .unwrap();
    next(&mut bob_events).await;
    let snapshot = ana.get_party(party).await.unwrap();
    let bob_seat = snapshot.member("bob").unwrap();
    assert_eq!(bob_seat.attributes, kv(&[("hero", "mage")]));
    assert_eq!(
        ana.party(party).unwrap().member("bob").unwrap().attributes,
        kv(&[("hero", "mage")])
    );
    assert!(snapshot.member("ana").unwrap().attributes.is_empty());

    let limits = ana.limits();
    let big = kv(&[("loadout", &"x".repeat(limits.max_attribute_bytes as usize))]);
    assert_eq!(
        code(bob.set_member_attributes(party, big, &[]).await),
        ErrorCode::KeyValuesTooLarge
    );
    let (eve, _eve_events) = server.client("eve").await;
    assert_eq!(
        code(
            eve.set_member_attributes(party, kv(&[("a", "b")]), &[])
                .await
        ),
        ErrorCode::NotMember
    );
}

// ---- bans ---------------------------------------------------------------

#[tokio::test]
async fn a_ban_removes_the_member_and_refuses_every_way_back_until_lifted() {
    let server = start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (cat, mut cat_events) = server.client("cat").await;
    let party = ana
        .create_party(settings(true, 4, ""))
        .await
        .unwrap()
        .party_id;
    bob.join_party(party).await.unwrap();
    cat.join_party(party).await.unwrap();
    next_event(&mut ana_events).await;
    next_event(&mut ana_events).await;
    next_event(&mut bob_events).await;

    ana.ban(party, "bob", None).await.unwrap();
    let until = expect(&mut bob_events, "Banned", |e| match e {
        Event::Banned { party_id, until_ms } if party_id == party => Some(until_ms),
        _ => None,
    })
    .await;
    assert_eq!(until, 0, "for the party's life");
    assert!(bob.party(party).is_none());
    for events in [&mut ana_events, &mut cat_events] {
        let (member, reason) = expect(events, "MemberLeft", |e| match e {
            Event::MemberLeft { member, reason, .. } => Some((member, reason)),
            _ => None,
        })
        .await;
        assert_eq!(
            (member.user_id.as_str(), reason),
            ("bob", LeaveReason::Banned)
        );
    }

    // Every way back is refused: join, request, code, invite.
    let join_code = ana.create_join_code(party).await.unwrap();
    assert_eq!(code(bob.join_party(party).await), ErrorCode::Banned);
    assert_eq!(code(bob.join_by_code(&join_code).await), ErrorCode::Banned);
    assert_eq!(code(ana.invite(party, "bob").await), ErrorCode::Banned);
    ana.update_party(
        party,
        partyline_client::PartyUpdate {
            open: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(code(bob.join_party(party).await), ErrorCode::Banned);
    // A second session of the same user is the same user.
    let (bob2, _bob2_events) = server.client("bob").await;
    assert_eq!(code(bob2.join_party(party).await), ErrorCode::Banned);

    let bans = ana.list_bans(party).await.unwrap();
    assert_eq!(bans.len(), 1);
    assert_eq!((bans[0].user_id.as_str(), bans[0].until_ms), ("bob", 0));
    assert_eq!(code(cat.list_bans(party).await), ErrorCode::NotLeader);
    assert_eq!(
        code(cat.ban(party, "ana", None).await),
        ErrorCode::NotLeader
    );
    assert_eq!(
        code(ana.ban(party, "ana", None).await),
        ErrorCode::CannotRemoveSelf
    );

    ana.unban(party, "bob").await.unwrap();
    assert!(ana.list_bans(party).await.unwrap().is_empty());
    assert_eq!(code(ana.unban(party, "bob").await), ErrorCode::BanNotFound);
    assert!(matches!(
        bob.join_party(party).await.unwrap(),
        JoinOutcome::Queued { .. }
    ));
}

#[tokio::test]
async fn a_ban_ends_a_waiting_request_and_an_invite_and_runs_out() {
    let server = start().await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = server.client("bob").await;
    let (_cat, mut cat_events) = server.client("cat").await;
    let party = ana.create_party(closed(4)).await.unwrap().party_id;

    bob.join_party(party).await.unwrap();
    ana.ban(party, "bob", Some(Duration::from_millis(400)))
        .await
        .unwrap();
    let until = expect(&mut bob_events, "Banned", |e| match e {
        Event::Banned { until_ms, .. } => Some(until_ms),
        _ => None,
    })
    .await;
    assert!(until > 0);
    assert!(ana.list_join_requests(party).await.unwrap().is_empty());

    ana.invite(party, "cat").await.unwrap();
    next(&mut cat_events).await;
    ana.ban(party, "cat", None).await.unwrap();
    let gone = expect(&mut cat_events, "InviteGone", |e| match e {
        Event::InviteGone { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert_eq!(gone, InviteGoneReason::Banned);

    // bob's ban runs out by itself.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match bob.join_party(party).await {
            Ok(JoinOutcome::Queued { .. }) => break,
            Err(e) if e.code() == Some(ErrorCode::Banned) => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ban never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ana.list_bans(party).await.unwrap().len(), 1, "cat's stays");
}

// ---- across a connection loss -------------------------------------------

#[tokio::test]
async fn follows_status_events_and_invites_survive_the_grace_window() {
    let server = start_with(fast_loss_detection).await;
    let relay = Relay::start(server.addr).await;
    let (ana, _ana_events) = server.client("ana").await;
    let (bob, mut bob_events) = via_relay(&server, &relay, "bob", true).await;
    bob.follow(&["ana"]).await.unwrap();
    let party = ana.create_party(closed(4)).await.unwrap().party_id;

    relay.blackhole(true);
    expect_lost(&mut bob_events, true).await;
    // While bob is away: a status change and an invite.
    ana.set_status("waiting for bob", true).await.unwrap();
    ana.invite(party, "bob").await.unwrap();
    relay.blackhole(false);
    assert!(matches!(next(&mut bob_events).await, Event::Resumed));
    let status = expect(&mut bob_events, "replayed StatusChanged", |e| match e {
        Event::StatusChanged(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(status.status, "waiting for bob");
    let invite = expect(&mut bob_events, "replayed Invited", |e| match e {
        Event::Invited(i) => Some(i),
        _ => None,
    })
    .await;
    assert_eq!(invite.party_id, party);
    // The follow itself survived: a new change still reaches bob.
    ana.set_status("here", true).await.unwrap();
    let status = expect(&mut bob_events, "StatusChanged", |e| match e {
        Event::StatusChanged(s) => Some(s),
        _ => None,
    })
    .await;
    assert_eq!(status.status, "here");
    assert!(matches!(
        bob.join_party(party).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
}

#[tokio::test]
async fn a_search_page_too_large_for_one_frame_comes_shorter_and_paging_goes_on() {
    let server = start().await;
    let max = usize::from(partyline::protocol::MAX_SEARCH_RESULTS);
    let label = "L".repeat(partyline::protocol::MAX_LABEL_BYTES);
    // Properties at their byte limit: 1 KiB each party.
    let properties = kv(&[(
        "blob",
        &"p".repeat(partyline::protocol::MAX_PROPERTY_BYTES - 4),
    )]);
    let mut leaders = Vec::new();
    let mut listed = Vec::new();
    for leader_index in 0..max.div_ceil(15) {
        let (leader, events) = server.client(&format!("leader{leader_index}")).await;
        for _ in 0..15 {
            if listed.len() == max {
                break;
            }
            let party = leader
                .create_party(settings(true, 4, &label))
                .await
                .unwrap()
                .party_id;
            leader.list_party(party, properties.clone()).await.unwrap();
            listed.push(party);
        }
        leaders.push((leader, events));
    }
    let (seeker, _events) = server.client("seeker").await;
    let first = seeker
        .search_parties(search(false, 0, &[], max as u16))
        .await
        .unwrap();
    // ~3 KiB a party: a whole page of 100 would not fit in 256 KiB.
    assert!(first.parties.len() < max, "{} parties", first.parties.len());
    assert!(!first.parties.is_empty());
    assert_ne!(first.next_cursor, 0);
    let mut found: Vec<_> = first.parties.iter().map(|p| p.party_id).collect();
    let mut cursor = first.next_cursor;
    while cursor != 0 {
        let page = seeker
            .search_parties(PartySearch {
                cursor,
                ..search(false, 0, &[], max as u16)
            })
            .await
            .unwrap();
        found.extend(page.parties.iter().map(|p| p.party_id));
        cursor = page.next_cursor;
    }
    assert_eq!(found, listed, "every party once, in listing order");
}
