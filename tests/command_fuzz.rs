//! A structure-aware fuzz of whole command sequences against a real server
//! over QUIC: three sessions send random commands of every kind (with ids
//! of parties that exist and that do not, users that exist and that do
//! not, empty and over-long names, maps past their limits), in random
//! order. Every request must be answered, nothing may close a session,
//! and afterwards the server must serve everyone as before. proptest
//! shrinks any failure to a short sequence.

mod support;

use partyline::protocol::{
    Command, InvitePolicy, JoinOutcome, KeyValues, LeaderPolicy, NumberRange, PartyId, PartySearch,
    Reply, TicketQuery, TicketRequest,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use support::wire::WireClient;
use support::*;

const CLIENTS: usize = 3;

#[derive(Clone, Debug)]
enum Party {
    /// One the sessions created (by index, wrapping).
    Known(usize),
    /// One that never existed.
    Unknown,
}

fn party() -> impl Strategy<Value = Party> {
    prop_oneof![4 => (0usize..4).prop_map(Party::Known), 1 => Just(Party::Unknown)]
}

fn user() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0..CLIENTS).prop_map(|i| format!("fuzz{i}")),
        1 => Just("stranger".to_string()),
        1 => Just(String::new()),
        1 => Just("x".repeat(200)),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z]{1,8}", Just("y".repeat(3000))]
}

fn map() -> impl Strategy<Value = KeyValues> {
    proptest::collection::btree_map("[a-c]{0,2}", text(), 0..4)
}

fn numbers() -> impl Strategy<Value = BTreeMap<String, i64>> {
    proptest::collection::btree_map("[a-c]{1,2}", any::<i64>(), 0..3)
}

/// A command with `Party` placeholders, resolved at run time.
#[derive(Clone, Debug)]
enum Step {
    Create {
        open: bool,
        max_size: u16,
        state: KeyValues,
    },
    Join(Party),
    Leave(Party),
    Accept(Party, String),
    Reject(Party, String),
    Kick(Party, String),
    Promote(Party, String),
    Close(Party),
    Update(Party, Option<bool>, Option<u16>, Option<bool>),
    Get(Party),
    Data(Party, Vec<u8>),
    Status(String, bool),
    Follow(Vec<String>),
    Invite(Party, String),
    Decline(Party),
    Revoke(Party, String),
    ListInvites,
    Code(Party),
    ClearCode(Party),
    JoinByCode(String),
    List(Party, KeyValues),
    Unlist(Party),
    Search(bool, u16, KeyValues, u16, u64),
    State(Party, KeyValues, Vec<String>),
    Attributes(Party, KeyValues, Vec<String>),
    Ban(Party, String, u64),
    Unban(Party, String),
    Bans(Party),
    Ticket(
        Option<Party>,
        u32,
        u32,
        u32,
        BTreeMap<String, i64>,
        i64,
        i64,
    ),
    CancelTicket(u64),
    Mute(Party, String, Option<(i64, i64)>),
    Unmute(Party, String),
    Block(Vec<String>),
    Unblock(Vec<String>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<bool>(), 0u16..300, map()).prop_map(|(open, max_size, state)| Step::Create {
            open,
            max_size,
            state
        }),
        party().prop_map(Step::Join),
        party().prop_map(Step::Leave),
        (party(), user()).prop_map(|(p, u)| Step::Accept(p, u)),
        (party(), user()).prop_map(|(p, u)| Step::Reject(p, u)),
        (party(), user()).prop_map(|(p, u)| Step::Kick(p, u)),
        (party(), user()).prop_map(|(p, u)| Step::Promote(p, u)),
        party().prop_map(Step::Close),
        (
            party(),
            proptest::option::of(any::<bool>()),
            proptest::option::of(0u16..300),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(p, o, m, a)| Step::Update(p, o, m, a)),
        party().prop_map(Step::Get),
        (party(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(p, d)| Step::Data(p, d)),
        (text(), any::<bool>()).prop_map(|(s, v)| Step::Status(s, v)),
        proptest::collection::vec(user(), 0..4).prop_map(Step::Follow),
        (party(), user()).prop_map(|(p, u)| Step::Invite(p, u)),
        party().prop_map(Step::Decline),
        (party(), user()).prop_map(|(p, u)| Step::Revoke(p, u)),
        Just(Step::ListInvites),
        party().prop_map(Step::Code),
        party().prop_map(Step::ClearCode),
        prop_oneof![Just("ABCDEF".to_string()), "[a-z0-9 -]{0,10}"].prop_map(Step::JoinByCode),
        (party(), map()).prop_map(|(p, m)| Step::List(p, m)),
        party().prop_map(Step::Unlist),
        (any::<bool>(), 0u16..5, map(), 0u16..300, any::<u64>())
            .prop_map(|(o, f, p, l, c)| Step::Search(o, f, p, l, c)),
        (
            party(),
            map(),
            proptest::collection::vec("[a-c]{0,2}", 0..3)
        )
            .prop_map(|(p, m, r)| Step::State(p, m, r)),
        (
            party(),
            map(),
            proptest::collection::vec("[a-c]{0,2}", 0..3)
        )
            .prop_map(|(p, m, r)| Step::Attributes(p, m, r)),
        (
            party(),
            user(),
            prop_oneof![Just(0u64), Just(50), Just(u64::MAX)]
        )
            .prop_map(|(p, u, d)| Step::Ban(p, u, d)),
        (party(), user()).prop_map(|(p, u)| Step::Unban(p, u)),
        party().prop_map(Step::Bans),
        (
            proptest::option::of(party()),
            0u32..12,
            0u32..12,
            0u32..3,
            numbers(),
            any::<i64>(),
            any::<i64>()
        )
            .prop_map(|(p, min, max, mul, n, lo, hi)| Step::Ticket(p, min, max, mul, n, lo, hi)),
        (0u64..6).prop_map(Step::CancelTicket),
        (
            party(),
            user(),
            proptest::option::of((any::<i64>(), any::<i64>()))
        )
            .prop_map(|(p, u, r)| Step::Mute(p, u, r)),
        (party(), user()).prop_map(|(p, u)| Step::Unmute(p, u)),
        proptest::collection::vec(user(), 0..4).prop_map(Step::Block),
        proptest::collection::vec(user(), 0..4).prop_map(Step::Unblock),
    ]
}

fn resolve(known: &[PartyId], party: &Party) -> PartyId {
    match party {
        Party::Known(i) if !known.is_empty() => known[i % known.len()],
        _ => PartyId::from_u128(0xdead),
    }
}

fn command(known: &[PartyId], step: Step) -> Command {
    let p = |party: &Party| resolve(known, party);
    match step {
        Step::Create {
            open,
            max_size,
            state,
        } => Command::CreateParty {
            open,
            max_size,
            label: String::new(),
            invite_policy: InvitePolicy::Leader,
            state,
            // The quality rule on every fuzzed party: its handovers run.
            leader_policy: LeaderPolicy::ConnectionQuality,
        },
        Step::Join(party) => Command::JoinParty {
            party_id: p(&party),
        },
        Step::Leave(party) => Command::Leave {
            party_id: p(&party),
        },
        Step::Accept(party, user_id) => Command::AcceptJoinRequest {
            party_id: p(&party),
            user_id,
        },
        Step::Reject(party, user_id) => Command::Reject {
            party_id: p(&party),
            user_id,
        },
        Step::Kick(party, user_id) => Command::Kick {
            party_id: p(&party),
            user_id,
        },
        Step::Promote(party, user_id) => Command::Promote {
            party_id: p(&party),
            user_id,
        },
        Step::Close(party) => Command::Close {
            party_id: p(&party),
        },
        Step::Update(party, open, max_size, any_member) => Command::Update {
            party_id: p(&party),
            open,
            label: None,
            max_size,
            invite_policy: any_member.map(|any| {
                if any {
                    InvitePolicy::AnyMember
                } else {
                    InvitePolicy::Leader
                }
            }),
            leader_policy: any_member.map(|any| match any {
                true => LeaderPolicy::Tenure,
                false => LeaderPolicy::ConnectionQuality,
            }),
        },
        Step::Get(party) => Command::GetParty {
            party_id: p(&party),
        },
        Step::Data(party, data) => Command::SendData {
            party_id: p(&party),
            op_code: 1,
            data: data.into(),
        },
        Step::Status(status, visible) => Command::SetStatus { status, visible },
        Step::Follow(user_ids) => Command::Follow { user_ids },
        Step::Invite(party, user_id) => Command::Invite {
            party_id: p(&party),
            user_id,
        },
        Step::Decline(party) => Command::DeclineInvite {
            party_id: p(&party),
        },
        Step::Revoke(party, user_id) => Command::RevokeInvite {
            party_id: p(&party),
            user_id,
        },
        Step::ListInvites => Command::ListInvites,
        Step::Code(party) => Command::CreateJoinCode {
            party_id: p(&party),
        },
        Step::ClearCode(party) => Command::ClearJoinCode {
            party_id: p(&party),
        },
        Step::JoinByCode(code) => Command::JoinByCode { code },
        Step::List(party, properties) => Command::ListParty {
            party_id: p(&party),
            properties,
        },
        Step::Unlist(party) => Command::UnlistParty {
            party_id: p(&party),
        },
        Step::Search(open_only, min_free_seats, properties, limit, cursor) => {
            Command::SearchParties(PartySearch {
                open_only,
                min_free_seats,
                properties,
                limit,
                cursor,
            })
        }
        Step::State(party, set, remove) => Command::SetPartyState {
            party_id: p(&party),
            set,
            remove,
        },
        Step::Attributes(party, set, remove) => Command::SetMemberAttributes {
            party_id: p(&party),
            set,
            remove,
        },
        Step::Ban(party, user_id, duration_ms) => Command::Ban {
            party_id: p(&party),
            user_id,
            duration_ms,
        },
        Step::Unban(party, user_id) => Command::Unban {
            party_id: p(&party),
            user_id,
        },
        Step::Bans(party) => Command::ListBans {
            party_id: p(&party),
        },
        Step::Ticket(party, min_count, max_count, count_multiple, numbers, lo, hi) => {
            let mut query = TicketQuery::default();
            query
                .ranges
                .insert("a".into(), NumberRange { min: lo, max: hi });
            Command::SubmitTicket(TicketRequest {
                party_id: party.map(|party| p(&party)),
                min_count,
                max_count,
                count_multiple,
                relaxed_min_count: 0,
                strings: KeyValues::new(),
                numbers,
                query,
                members: Vec::new(),
            })
        }
        Step::CancelTicket(ticket_id) => Command::CancelTicket { ticket_id },
        Step::Mute(party, user_id, range) => Command::Mute {
            party_id: p(&party),
            user_id,
            op_codes: range.map(|(min, max)| NumberRange { min, max }),
        },
        Step::Unmute(party, user_id) => Command::Unmute {
            party_id: p(&party),
            user_id,
        },
        Step::Block(user_ids) => Command::Block { user_ids },
        Step::Unblock(user_ids) => Command::Unblock { user_ids },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_command_sequences_are_all_answered_and_harm_no_one(
        steps in proptest::collection::vec((0..CLIENTS, step()), 1..60)
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = start_with(|c| {
                // Rate limits would cut a fuzzer off: that is tested elsewhere.
                c.command_rate = 0.0;
                c.invites_per_minute = 0;
                c.join_code_attempts_per_minute = 0;
                c.tickets_per_minute = 0;
                c.per_user = partyline::server::PlayerBudgets::UNLIMITED;
                c.per_address = partyline::server::PlayerBudgets::UNLIMITED;
            })
            .await;
            let mut clients = Vec::new();
            for i in 0..CLIENTS {
                clients.push(WireClient::connect(&server, &format!("fuzz{i}")).await);
            }
            let mut known: Vec<PartyId> = Vec::new();
            for (who, step) in steps {
                // `request` panics when no answer comes: every command
                // must be answered, refused or not.
                let reply = clients[who].request(command(&known, step)).await;
                if let Ok(Reply::Party(snapshot) | Reply::Join(JoinOutcome::Joined(snapshot))) = reply
                {
                    if !known.contains(&snapshot.party_id) {
                        known.push(snapshot.party_id);
                    }
                }
            }
            // Every session is still there and answering.
            for client in &clients {
                let refused = client
                    .request(Command::GetParty { party_id: PartyId::from_u128(0xdead) })
                    .await;
                assert!(refused.is_err());
            }
            bystanders_still_served(&server).await;
        });
    }
}
