//! What a command's arguments must be, as PROTOCOL.md states it, spoken on
//! the wire (the SDK may check some of it first; the server must not rely
//! on that): user ids follow Hello's rule in every command that names
//! one, search filters stay within what a listing may hold, and a ticket
//! whose counts no match could suit is refused instead of waiting forever.
mod support;

use partyline::protocol::{
    Command, ErrorBody, ErrorCode, KeyValues, PartyId, PartySearch, Reply, TicketRequest,
    MAX_NAME_BYTES, MAX_PROPERTY_BYTES, MAX_PROPERTY_ENTRIES,
};
use support::wire::WireClient;
use support::*;

fn refused(result: Result<Reply, ErrorBody>) -> ErrorBody {
    match result {
        Err(body) => body,
        Ok(reply) => panic!("expected a refusal, got {reply:?}"),
    }
}

/// Every command that names a user id, naming `user_id` in `party_id`.
fn naming(party_id: PartyId, user_id: &str) -> Vec<Command> {
    let user_id = user_id.to_string();
    vec![
        Command::AcceptJoinRequest {
            party_id,
            user_id: user_id.clone(),
        },
        Command::Remove {
            party_id,
            user_id: user_id.clone(),
        },
        Command::Promote {
            party_id,
            user_id: user_id.clone(),
        },
        Command::Kick {
            party_id,
            user_id: user_id.clone(),
        },
        Command::Reject {
            party_id,
            user_id: user_id.clone(),
        },
        Command::Invite {
            party_id,
            user_id: user_id.clone(),
        },
        Command::RevokeInvite {
            party_id,
            user_id: user_id.clone(),
        },
        Command::Ban {
            party_id,
            user_id: user_id.clone(),
            duration_ms: 0,
        },
        Command::Unban {
            party_id,
            user_id: user_id.clone(),
        },
        Command::Follow {
            user_ids: vec!["fine".into(), user_id.clone()],
        },
        Command::Unfollow {
            user_ids: vec![user_id],
        },
    ]
}

#[tokio::test]
async fn every_command_naming_a_user_id_holds_it_to_the_rule_of_hello() {
    let server = start().await;
    let ana = WireClient::connect(&server, "ana").await;
    let party = ana.create_party(false, 4, "").await.unwrap().party_id;

    let too_long = "x".repeat(MAX_NAME_BYTES + 1);
    // Empty, too long, and control characters (general category Cc): NUL,
    // LF, TAB, DEL, and the C1 control U+0085 (NEXT LINE).
    let bad = [
        "", &too_long, "a\0b", "gg\nana", "a\tb", "a\u{7f}", "a\u{85}b",
    ];
    for user_id in bad {
        for command in naming(party, user_id) {
            let what = format!("{command:?}");
            let refusal = refused(ana.request(command).await);
            assert_eq!(refusal.code, ErrorCode::InvalidArgument, "{what}");
            assert!(refusal.message.contains("user id"), "{what}: {refusal:?}");
        }
    }
    // Nothing happened: no ban was recorded.
    match ana.request(Command::ListBans { party_id: party }).await {
        Ok(Reply::Bans { bans, .. }) => assert!(bans.is_empty(), "{bans:?}"),
        other => panic!("expected the bans, got {other:?}"),
    }

    // What is not a control character passes, as it does in a Hello: a
    // line separator, a bidi override (a client escapes them when it
    // prints them, PROTOCOL.md section 4).
    for user_id in ["a\u{2028}b", "\u{202e}ana", "ünïcødé 名前"] {
        let invite = Command::Invite {
            party_id: party,
            user_id: user_id.into(),
        };
        assert!(
            matches!(ana.request(invite).await, Ok(Reply::Done)),
            "{user_id:?}"
        );
        let dev = WireClient::connect(&server, user_id).await;
        assert_eq!(dev.presence().user_id, user_id);
    }
}

fn search(properties: KeyValues) -> Command {
    Command::SearchParties(PartySearch {
        properties,
        limit: 10,
        ..PartySearch::default()
    })
}

#[tokio::test]
async fn search_filters_beyond_what_a_listing_holds_are_refused() {
    let server = start().await;
    let ana = WireClient::connect(&server, "ana").await;
    let party = ana.create_party(true, 4, "").await.unwrap().party_id;
    // A listing at its limits: 16 properties, 1024 bytes of keys and
    // values together.
    let value_bytes = MAX_PROPERTY_BYTES / MAX_PROPERTY_ENTRIES - 3;
    let full: KeyValues = (0..MAX_PROPERTY_ENTRIES)
        .map(|i| (format!("k{i:02}"), "v".repeat(value_bytes)))
        .collect();
    let bytes: usize = full.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(bytes, MAX_PROPERTY_BYTES);
    let listed = Command::ListParty {
        party_id: party,
        properties: full.clone(),
    };
    assert!(matches!(ana.request(listed).await, Ok(Reply::Done)));
    // The same filters, at the same limits, find it.
    match ana.request(search(full.clone())).await {
        Ok(Reply::Parties { parties, .. }) => assert_eq!(parties.len(), 1),
        other => panic!("expected the party, got {other:?}"),
    }

    let many: KeyValues = (0..20_000).map(|i| (format!("k{i}"), "v".into())).collect();
    let mut seventeen = full.clone();
    seventeen.insert("k99".into(), String::new());
    let mut over_bytes = full;
    over_bytes.insert("k00".into(), "v".repeat(value_bytes + 1));
    let huge_value = KeyValues::from([("k".to_string(), "v".repeat(250_000))]);
    let long_key = KeyValues::from([("k".repeat(MAX_NAME_BYTES + 1), String::new())]);
    let empty_key = KeyValues::from([(String::new(), "v".to_string())]);
    let cases = [
        ("20,000 filters", many, "at most 16 properties"),
        ("17 filters", seventeen, "at most 16 properties"),
        ("1025 bytes", over_bytes, "bytes of keys and values"),
        ("a 250 KB value", huge_value, "bytes of keys and values"),
        ("a 129-byte key", long_key, "keys must be 1 to 128 bytes"),
        ("an empty key", empty_key, "keys must be 1 to 128 bytes"),
    ];
    for (what, filters, says) in cases {
        let refusal = refused(ana.request(search(filters)).await);
        assert_eq!(refusal.code, ErrorCode::InvalidArgument, "{what}");
        assert!(refusal.message.contains(says), "{what}: {refusal:?}");
    }
}

fn ticket(min_count: u32, max_count: u32, count_multiple: u32, relaxed: u32) -> TicketRequest {
    TicketRequest {
        min_count,
        max_count,
        count_multiple,
        relaxed_min_count: relaxed,
        ..TicketRequest::default()
    }
}

#[tokio::test]
async fn a_ticket_whose_counts_no_match_could_suit_is_refused() {
    let server = start().await;
    let ana = WireClient::connect(&server, "ana").await;
    for (what, request) in [
        ("count_multiple above max_count", ticket(1, 4, 5, 0)),
        ("no multiple of 4 from 5 to 7", ticket(5, 7, 4, 0)),
        (
            "relaxed to 5, still no multiple of 4 up to 7",
            ticket(6, 7, 4, 5),
        ),
    ] {
        let refusal = refused(ana.request(Command::SubmitTicket(request)).await);
        assert_eq!(refusal.code, ErrorCode::InvalidTicket, "{what}");
    }
    // A party of three cannot be an even count of at most 3.
    let party = ana.create_party(true, 4, "").await.unwrap().party_id;
    let bob = WireClient::connect(&server, "bob").await;
    let cy = WireClient::connect(&server, "cy").await;
    for member in [&bob, &cy] {
        member.join_party(party).await.unwrap();
    }
    let even_of_three = TicketRequest {
        party_id: Some(party),
        ..ticket(2, 3, 2, 0)
    };
    let refusal = refused(ana.request(Command::SubmitTicket(even_of_three)).await);
    assert_eq!(refusal.code, ErrorCode::InvalidTicket);
    assert!(refusal.message.contains("never"), "{refusal:?}");

    // Relaxed to 4, 5 to 7 can be 4: it waits.
    assert!(matches!(
        ana.request(Command::SubmitTicket(ticket(5, 7, 4, 4))).await,
        Ok(Reply::TicketStarted { .. })
    ));
}
