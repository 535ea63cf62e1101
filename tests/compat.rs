//! Compatibility (PROTOCOL.md, "Compatibility"): a game that shipped
//! against protocol version 2 keeps working against this server, in the
//! same parties as version 3 players using ready checks. The version 2
//! player here is a wire-level client that decodes every frame with the
//! frozen, strict version 2 types (`support/v2.rs`): a frame it could not
//! read fails the test, and so does a gap in its event numbers (an event
//! numbered for it but left out).

mod support;
#[path = "support/v2.rs"]
#[allow(dead_code, clippy::large_enum_variant)]
mod v2;
#[path = "support/wire_v2.rs"]
mod wire_v2;

use bytes::Bytes;
use partyline::protocol::{self as v3, ErrorCode, PROTOCOL_VERSION};
use partyline_client::protocol::ReadyCheckOutcome;
use partyline_client::{Event, JoinOutcome};
use std::time::Duration;
use support::wire::WireClient;
use support::{next, next_event, settings};
use wire_v2::V2Client;

fn v2_party(id: v3::PartyId) -> v2::PartyId {
    v2::PartyId(id.0)
}

fn names(who: &[partyline_client::Presence]) -> Vec<&str> {
    who.iter().map(|p| p.user_id.as_str()).collect()
}

#[tokio::test]
async fn a_version_2_client_plays_a_whole_party_beside_version_3_ready_checks() {
    // A short replay log, so that a resume can also be served snapshots.
    let server = support::start_with(|config| config.replay_events = 2).await;
    let (ana, mut ana_events) = server.client("ana").await;
    let mut ben = V2Client::connect(&server, "ben").await;
    let (cid, mut cid_events) = server.client("cid").await;
    let party = ana.create_party(settings(true, 4, "mixed")).await.unwrap();
    let party_id = party.party_id;

    // Ben (version 2) joins: his snapshot comes in version 2's layout.
    let joined = ben
        .request(v2::Command::JoinParty {
            party_id: v2_party(party_id),
        })
        .await
        .unwrap();
    let v2::Reply::Join(v2::JoinOutcome::Joined(snapshot)) = joined else {
        panic!("expected a seat, got {joined:?}");
    };
    assert_eq!(snapshot.members.len(), 2);
    assert!(
        matches!(next_event(&mut ana_events).await, Event::MemberJoined { member, .. } if member.user_id == "ben")
    );
    assert!(matches!(
        cid.join_party(party_id).await.unwrap(),
        JoinOutcome::Joined(_)
    ));
    assert!(
        matches!(ben.next_event().await, v2::Event::MemberJoined { presence, .. } if presence.user_id == "cid")
    );
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
    let before_the_check = ben.resume_ticket();

    // Ana starts a ready check: Ben (version 2) is asked, but never told.
    ana.start_ready_check(party_id, "go?", Duration::from_secs(60))
        .await
        .unwrap();
    let check = match next_event(&mut ana_events).await {
        Event::ReadyCheckStarted { check, .. } => check,
        other => panic!("expected the check, got {other:?}"),
    };
    assert_eq!(names(&check.ready), ["ana"]);
    assert_eq!(names(&check.no_answer), ["ben", "cid"]);
    assert!(matches!(
        next_event(&mut cid_events).await,
        Event::ReadyCheckStarted { .. }
    ));
    assert!(
        ana.party(party_id).unwrap().ready_check.is_some(),
        "the roster shows it"
    );

    // While it runs, Ben's snapshot still reads as version 2's.
    let got = ben
        .request(v2::Command::GetParty {
            party_id: v2_party(party_id),
        })
        .await
        .unwrap();
    assert!(matches!(got, v2::Reply::Party(snapshot) if snapshot.seq == check.check_id));

    // A version 3 command from Ben is answered as version 2 answered a
    // command it did not know.
    let answer = v3::ClientFrame::Request {
        id: 99,
        command: v3::Command::AnswerReadyCheck {
            party_id,
            check_id: check.check_id,
            ready: true,
        },
    };
    let refused = ben.request_bytes(99, &support::frame(&answer)).await;
    assert_eq!(refused.unwrap_err().code, v2::ErrorCode::MalformedFrame);

    cid.answer_ready_check(party_id, check.check_id, true)
        .await
        .unwrap();
    assert!(
        matches!(next_event(&mut ana_events).await, Event::ReadyCheckAnswered { member, ready: true, .. } if member.user_id == "cid")
    );

    // Ben goes on with version 2's features.
    let mut set = v2::KeyValues::new();
    set.insert("hero".into(), "mage".into());
    ben.request(v2::Command::SetMemberAttributes {
        party_id: v2_party(party_id),
        set,
        remove: Vec::new(),
    })
    .await
    .unwrap();
    assert!(matches!(
        ben.next_event().await,
        v2::Event::MemberAttributesChanged { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberAttributesChanged { .. }
    ));

    // Data from the server itself (added within version 2) is not
    // Ben's to read; Ana's client knows it.
    server
        .handle
        .api()
        .send_to_party(party_id, 7, Bytes::from_static(b"srv"))
        .await
        .unwrap();
    assert!(
        matches!(next(&mut ana_events).await, Event::Data(data) if data.sender.user_id.is_empty())
    );

    ana.cancel_ready_check(party_id).await.unwrap();
    match next_event(&mut ana_events).await {
        Event::ReadyCheckEnded {
            outcome,
            ready,
            not_ready,
            no_answer,
            ..
        } => {
            assert_eq!(outcome, ReadyCheckOutcome::Cancelled);
            assert_eq!(names(&ready), ["ana", "cid"]);
            assert!(not_ready.is_empty());
            assert_eq!(
                names(&no_answer),
                ["ben"],
                "a version 2 member cannot answer"
            );
        }
        other => panic!("expected the end, got {other:?}"),
    }
    assert!(ana.party(party_id).unwrap().ready_check.is_none());

    // The next thing Ben hears is Ana's data: nothing of the check, nor
    // the server's data, came between (the event numbers have no gap).
    ana.send_data_reliable(party_id, 1, b"hi").await.unwrap();
    assert!(
        matches!(ben.next_event().await, v2::Event::Data { sender, .. } if sender.user_id == "ana")
    );

    // A resume replays what Ben missed, as version 2.
    let mut ben = V2Client::resume(&server, "ben", before_the_check)
        .await
        .unwrap();
    assert!(matches!(
        ben.welcome.resumed,
        v2::Resumed::Replayed { count: 2 }
    ));
    assert!(matches!(
        ben.next_event().await,
        v2::Event::MemberAttributesChanged { .. }
    ));
    assert!(matches!(ben.next_event().await, v2::Event::Data { .. }));

    // A second check, and a resume older than the replay log: snapshots,
    // in version 2's layout, while the check runs.
    ana.start_ready_check(party_id, "", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::ReadyCheckStarted { .. }
    ));
    let too_old = v2::Resume {
        token: ben.welcome.resume_token.clone(),
        last_event_seq: 0,
    };
    let mut ben = V2Client::resume(&server, "ben", too_old).await.unwrap();
    match &ben.welcome.resumed {
        v2::Resumed::Snapshots { parties, .. } => {
            assert_eq!(parties.len(), 1);
            assert_eq!(parties[0].snapshot.members.len(), 3);
        }
        other => panic!("expected snapshots, got {other:?}"),
    }
    // Resuming a version 2 session as version 3 is refused: its log was
    // made for version 2.
    let as_v3 = v3::Resume {
        token: ben.welcome.resume_token.clone(),
        last_event_seq: ben.last_event_seq,
    };
    let refused = WireClient::resume(&server, "ben", as_v3)
        .await
        .err()
        .unwrap();
    assert_eq!(refused.code, ErrorCode::ResumeRefused);

    // Ben leads, kicks Cid and closes the party: all as version 2.
    ana.promote(party_id, "ben").await.unwrap();
    assert!(
        matches!(ben.next_event().await, v2::Event::LeaderChanged { leader, .. } if leader.user_id == "ben")
    );
    assert!(matches!(
        ben.next_event().await,
        v2::Event::JoinRequestList { .. }
    ));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::LeaderChanged { .. }
    ));
    ben.request(v2::Command::Kick {
        party_id: v2_party(party_id),
        user_id: "cid".into(),
    })
    .await
    .unwrap();
    assert!(
        matches!(ben.next_event().await, v2::Event::MemberLeft { presence, .. } if presence.user_id == "cid")
    );
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberLeft { .. }
    ));
    // Cid counts as not ready now: Ana hears it, Ben does not.
    assert!(
        matches!(next_event(&mut ana_events).await, Event::ReadyCheckAnswered { ready: false, member, .. } if member.user_id == "cid")
    );
    ben.request(v2::Command::Close {
        party_id: v2_party(party_id),
    })
    .await
    .unwrap();
    assert!(matches!(ben.next_event().await, v2::Event::Closed { .. }));
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::PartyClosed { .. }
    ));
    let gone = ben
        .request(v2::Command::GetParty {
            party_id: v2_party(party_id),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code, v2::ErrorCode::PartyNotFound);
    ben.assert_no_pending();
    assert_eq!(PROTOCOL_VERSION, 3);
}

#[tokio::test]
async fn version_1_is_refused_and_version_4_too() {
    let server = support::start().await;
    for version in [1, 4] {
        let (_endpoint, connection) = server.raw().await;
        let (mut send, mut recv) = connection.open_bi().await.unwrap();
        let hello = v3::ClientFrame::Hello(v3::Hello {
            version,
            identity: v3::Identity::Dev {
                user_id: "old".into(),
                username: "Old".into(),
            },
            resume: None,
        });
        send.write_all(&support::frame(&hello)).await.unwrap();
        let mut body = Vec::new();
        partyline::wire::read_frame(&mut recv, &mut body)
            .await
            .unwrap();
        match v3::decode_body::<v3::ServerFrame>(&body).unwrap() {
            v3::ServerFrame::Refused(refusal) => {
                assert_eq!(refusal.code, ErrorCode::VersionMismatch);
                assert!(refusal.message.contains("versions 2 to 3"), "{refusal}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

/// Denies every `Update`: what a version 2 client hears of a hook's
/// refusal (code 33, which version 2 does not have).
struct DenyUpdates;

impl partyline::server::Hooks for DenyUpdates {
    fn before<'a>(
        &'a self,
        call: &'a partyline::server::BeforeCall,
    ) -> partyline::server::HookFuture<'a, partyline::server::Decision> {
        let decision = match call.point {
            partyline::server::HookPoint::Update => {
                partyline::server::Decision::Deny(v3::ErrorBody::new(ErrorCode::Denied, "not now"))
            }
            _ => partyline::server::Decision::Allow,
        };
        Box::pin(async move { decision })
    }
}

#[tokio::test]
async fn a_version_2_client_hears_newer_codes_as_its_nearest_and_its_close_as_normal() {
    let server = support::start_with_hooks(DenyUpdates, |_| {}).await;
    let (ana, _ana_events) = server.client("ana").await;
    let ben = V2Client::connect(&server, "ben").await;
    let party = ana.create_party(settings(true, 4, "")).await.unwrap();
    ben.request(v2::Command::JoinParty {
        party_id: v2_party(party.party_id),
    })
    .await
    .unwrap();
    // Ana (version 3) hears Denied; Ben (version 2), the same refusal as
    // InvalidArgument, with the game's message.
    let denied = ana
        .update_party(party.party_id, Default::default())
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Some(ErrorCode::Denied));
    let ben_leads = ana.promote(party.party_id, "ben").await;
    assert!(ben_leads.is_ok());
    let refused = ben
        .request(v2::Command::Update {
            party_id: v2_party(party.party_id),
            open: None,
            label: None,
            max_size: None,
            invite_policy: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, v2::ErrorCode::InvalidArgument);
    assert_eq!(refused.message, "not now");

    // The server ends Ben's session: version 3 says close code 9, which
    // version 2 does not have; Ben is told 0 (Normal), with the reason.
    let session = v3::SessionId(ben.welcome.session_id.0);
    server
        .handle
        .api()
        .disconnect(session, "bye")
        .await
        .unwrap();
    match tokio::time::timeout(support::WAIT, ben.connection.closed()).await {
        Ok(quinn::ConnectionError::ApplicationClosed(close)) => {
            assert_eq!(close.error_code, quinn::VarInt::from_u32(0));
            assert_eq!(&close.reason[..], b"bye");
        }
        other => panic!("expected an application close, got {other:?}"),
    }
}

/// A version 2 member of a party whose version 3 members mute and block,
/// and whose own block list the game's server sets: it decodes every
/// frame it is sent (its event numbers keep no gap), its data is held
/// back by the others' mutes and blocks like anyone's, and a block of its
/// own holds.
#[tokio::test]
async fn a_version_2_client_in_a_party_with_mutes_and_blocks_decodes_everything() {
    let server = support::start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let mut ben = V2Client::connect(&server, "ben").await;
    let (cid, mut cid_events) = server.client("cid").await;
    let mut anyone_invites = settings(true, 4, "mixed");
    anyone_invites.invite_policy = partyline_client::InvitePolicy::AnyMember;
    let party_id = ana.create_party(anyone_invites).await.unwrap().party_id;
    ben.request(v2::Command::JoinParty {
        party_id: v2_party(party_id),
    })
    .await
    .unwrap();
    cid.join_party(party_id).await.unwrap();
    assert!(matches!(
        ben.next_event().await,
        v2::Event::MemberJoined { .. }
    ));
    for _ in 0..2 {
        next_event(&mut ana_events).await;
    }

    // Ana mutes Ben altogether, Cid only his voice (100 to 199).
    ana.mute(party_id, "ben", None).await.unwrap();
    let voice = partyline_client::NumberRange { min: 100, max: 199 };
    cid.mute(party_id, "ben", Some(voice)).await.unwrap();
    let say = |op_code| v2::Command::SendData {
        party_id: v2_party(party_id),
        op_code,
        data: Bytes::from_static(b"hi"),
    };
    ben.request(say(150)).await.unwrap();
    ben.request(say(1)).await.unwrap();
    cid.send_data_reliable(party_id, 9, b"mark").await.unwrap();
    let ops = |events: &mut partyline_client::Events| {
        let mut ops = Vec::new();
        while let Some(event) = events.try_next() {
            if let Event::Data(data) = event {
                ops.push((data.sender.user_id.clone(), data.op_code));
            }
        }
        ops
    };
    // Cid hears only the game's; Ana, nothing of Ben's (Cid's mark shows
    // the rest would have come).
    assert!(matches!(next(&mut cid_events).await, Event::Data(data) if data.op_code == 1));
    assert!(matches!(next(&mut ana_events).await, Event::Data(data) if data.op_code == 9));
    assert!(ops(&mut ana_events).is_empty());
    assert!(matches!(
        ben.next_event().await,
        v2::Event::Data { op_code: 9, .. }
    ));
    // Ben's snapshot, with mutes about him, still reads as version 2's.
    let got = ben
        .request(v2::Command::GetParty {
            party_id: v2_party(party_id),
        })
        .await
        .unwrap();
    assert!(matches!(got, v2::Reply::Party(snapshot) if snapshot.members.len() == 3));

    // The game's server sets Ben's block list: he is not told (version 2
    // has no word for it), yet it holds: no data between him and Cid.
    let api = server.handle.api();
    assert_eq!(api.set_blocks("ben", &["cid".into()]).await.unwrap(), 1);
    cid.send_data_reliable(party_id, 2, b"to all")
        .await
        .unwrap();
    ana.send_data_reliable(party_id, 3, b"to all")
        .await
        .unwrap();
    assert!(
        matches!(ben.next_event().await, v2::Event::Data { op_code: 3, .. }),
        "Ana's, not Cid's: and no event he cannot read came between"
    );
    // Ben may not invite the user he blocked: version 2's nearest code.
    let refused = ben
        .request(v2::Command::Invite {
            party_id: v2_party(party_id),
            user_id: "cid".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, v2::ErrorCode::AlreadyMember);
    // (Cid is seated: that refusal comes first.) A user not seated:
    let refused = ben
        .request(v2::Command::Invite {
            party_id: v2_party(party_id),
            user_id: "zed".into(),
        })
        .await;
    assert!(refused.is_ok(), "nobody blocks zed: {refused:?}");
    api.set_blocks("ben", &["cid".into(), "zed".into()])
        .await
        .unwrap();
    let refused = ben
        .request(v2::Command::Invite {
            party_id: v2_party(party_id),
            user_id: "zed".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code,
        v2::ErrorCode::InvalidArgument,
        "Blocked (41), as version 2 knows it"
    );

    // Ana blocks Ben: a party she leads is closed to another version 2
    // session of his, answered in version 2's words for a missing party.
    ana.block(&["ben"]).await.unwrap();
    let ana_party = ana.create_party(settings(true, 4, "")).await.unwrap();
    let other = V2Client::connect(&server, "ben").await;
    let refused = other
        .request(v2::Command::JoinParty {
            party_id: v2_party(ana_party.party_id),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code, v2::ErrorCode::PartyNotFound);

    // Ben still plays on: Ana's data does not reach him now (they share a
    // block), Cid's neither; the server's round trip shows nothing came.
    ana.send_data_reliable(party_id, 4, b"gone").await.unwrap();
    ben.request(v2::Command::GetParty {
        party_id: v2_party(party_id),
    })
    .await
    .unwrap();
    ben.assert_no_pending();
    ben.request(v2::Command::Leave {
        party_id: v2_party(party_id),
    })
    .await
    .unwrap();
    loop {
        match next(&mut ana_events).await {
            Event::MemberLeft { member, .. } => break assert_eq!(member.user_id, "ben"),
            Event::Data(data) => assert_ne!(data.sender.user_id, "ben", "Ben is muted"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_version_2_client_creates_updates_and_is_chosen_beside_the_leader_policy() {
    let server = support::start().await;
    let (ana, mut ana_events) = server.client("ana").await;
    let mut ben = V2Client::connect(&server, "ben").await;

    // Ben (version 2) creates a party with version 2's CreateParty, one
    // field short of version 3's: it has the old rule, Tenure.
    let created = ben
        .request(v2::Command::CreateParty {
            open: true,
            max_size: 4,
            label: "old".into(),
            invite_policy: v2::InvitePolicy::Leader,
            state: v2::KeyValues::new(),
        })
        .await
        .unwrap();
    let v2::Reply::Party(snapshot) = created else {
        panic!("expected a party, got {created:?}");
    };
    let party_id = v3::PartyId(snapshot.party_id.0);
    let JoinOutcome::Joined(party) = ana.join_party(party_id).await.unwrap() else {
        panic!("expected a seat");
    };
    assert_eq!(party.leader_policy, v3::LeaderPolicy::Tenure);
    assert_eq!(party.members.len(), 2);
    assert!(matches!(
        ben.next_event().await,
        v2::Event::MemberJoined { .. }
    ));
    // Its version 2 Update (no leader_policy) leaves the policy alone.
    ben.request(v2::Command::Update {
        party_id: v2_party(party_id),
        open: None,
        label: Some("still old".into()),
        max_size: None,
        invite_policy: None,
    })
    .await
    .unwrap();
    assert!(
        matches!(ben.next_event().await, v2::Event::Updated { label, .. } if label == "still old")
    );
    match next_event(&mut ana_events).await {
        Event::PartyUpdated { party } => {
            assert_eq!(party.label, "still old");
            assert_eq!(party.leader_policy, v3::LeaderPolicy::Tenure);
        }
        other => panic!("expected the update, got {other:?}"),
    }

    // Ana's party chooses by connection quality; Ben joins it and hears
    // its updates in version 2's layout (without leader_policy).
    let quality = partyline_client::PartySettings {
        leader_policy: v3::LeaderPolicy::ConnectionQuality,
        ..settings(true, 4, "new")
    };
    let ours = ana.create_party(quality).await.unwrap();
    assert_eq!(ours.leader_policy, v3::LeaderPolicy::ConnectionQuality);
    ben.request(v2::Command::JoinParty {
        party_id: v2_party(ours.party_id),
    })
    .await
    .unwrap();
    assert!(matches!(
        next_event(&mut ana_events).await,
        Event::MemberJoined { .. }
    ));
    ana.update_party(
        ours.party_id,
        partyline_client::PartyUpdate {
            label: Some("newer".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(ben.next_event().await, v2::Event::Updated { label, .. } if label == "newer"));
    // When Ana leaves, the party's rule picks among the connected: Ben,
    // a version 2 member, may lead like any other.
    ana.leave_party(ours.party_id).await.unwrap();
    assert!(
        matches!(ben.next_event().await, v2::Event::LeaderChanged { leader, .. } if leader.user_id == "ben")
    );
    assert!(matches!(
        ben.next_event().await,
        v2::Event::MemberLeft { .. }
    ));
    assert!(matches!(
        ben.next_event().await,
        v2::Event::JoinRequestList { .. }
    ));
    ben.assert_no_pending();
}
