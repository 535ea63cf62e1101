//! Property test of the pure party rules, driven through the sharded table
//! with random operation sequences. After every step, for every party:
//! exactly one leader and it is a member, size within max, members in join
//! order, no duplicates, empty means gone, and each session's record of its
//! parties matches the table.

use partyline::party::{BlockList, Link, PartySettings, PartyTable, PartyUpdate, Seat};
use partyline::protocol::{JoinOutcome, LeaveReason, PartyId, Presence, SessionId};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PLAYERS: usize = 6;

#[derive(Clone, Debug)]
struct TestLink {
    session: SessionId,
    parties: Arc<Mutex<HashSet<PartyId>>>,
}

/// These players block nobody (blocks have their own property test).
impl BlockList for TestLink {
    fn blocks(&self, _: &str) -> bool {
        false
    }
}

impl Link for TestLink {
    fn session_id(&self) -> SessionId {
        self.session
    }
    fn attach(&self, party: PartyId) {
        self.parties.lock().unwrap().insert(party);
    }
    fn detach(&self, party: PartyId) {
        self.parties.lock().unwrap().remove(&party);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Create {
        open: bool,
        max_size: u16,
    },
    Join(usize),
    Leave(usize),
    EndSession(usize),
    Accept(usize, usize),
    Remove(usize, usize),
    Promote(usize, usize),
    Close(usize),
    Update {
        party: usize,
        open: Option<bool>,
        max_size: Option<u16>,
    },
    Expire,
    /// The actor's connection is lost (leader grace zero) or comes back,
    /// in all its parties at once, as on the server.
    Connection(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 0u16..6).prop_map(|(open, max_size)| Op::Create { open, max_size }),
        (0usize..4).prop_map(Op::Join),
        (0usize..4).prop_map(Op::Join),
        (0usize..4).prop_map(Op::Leave),
        (0usize..4).prop_map(Op::EndSession),
        (0usize..4, 0..PLAYERS).prop_map(|(p, t)| Op::Accept(p, t)),
        (0usize..4, 0..PLAYERS).prop_map(|(p, t)| Op::Remove(p, t)),
        (0usize..4, 0..PLAYERS).prop_map(|(p, t)| Op::Promote(p, t)),
        (0usize..4).prop_map(Op::Close),
        (
            0usize..4,
            proptest::option::of(any::<bool>()),
            proptest::option::of(0u16..7)
        )
            .prop_map(|(party, open, max_size)| Op::Update {
                party,
                open,
                max_size
            }),
        Just(Op::Expire),
        any::<bool>().prop_map(Op::Connection),
    ]
}

struct World {
    table: PartyTable<TestLink>,
    links: Vec<TestLink>,
    presences: Vec<Presence>,
    parties: Vec<PartyId>,
    /// When each (party, user) was seated, to check seat order is join order.
    seated_at: HashMap<(PartyId, String), u64>,
    clock: u64,
    now: Instant,
    connected: Vec<bool>,
}

impl World {
    fn new() -> Self {
        let links = (0..PLAYERS)
            .map(|i| TestLink {
                session: SessionId::from_u128(i as u128 + 1),
                parties: Arc::default(),
            })
            .collect::<Vec<_>>();
        let presences = (0..PLAYERS)
            .map(|i| Presence {
                user_id: format!("u{i}"),
                username: format!("n{i}"),
                session_id: links[i].session,
            })
            .collect();
        World {
            table: PartyTable::new(4),
            links,
            presences,
            parties: Vec::new(),
            seated_at: HashMap::new(),
            clock: 0,
            now: Instant::now(),
            connected: vec![true; PLAYERS],
        }
    }

    fn party(&self, index: usize) -> Option<PartyId> {
        if self.parties.is_empty() {
            None
        } else {
            Some(self.parties[index % self.parties.len()])
        }
    }

    fn seat(&mut self, party: PartyId, player: usize) {
        self.clock += 1;
        self.seated_at
            .insert((party, self.presences[player].user_id.clone()), self.clock);
    }

    fn apply(&mut self, actor: usize, op: Op) {
        let me = self.presences[actor].session_id;
        // A session without a connection sends nothing.
        if !self.connected[actor] && !matches!(op, Op::Connection(_)) {
            return;
        }
        let deliver = |_: &_, _| {};
        match op {
            Op::Create { open, max_size } => {
                let id = PartyId::from_u128(self.parties.len() as u128 + 1000);
                let seat = Seat::new(self.presences[actor].clone(), self.links[actor].clone());
                let settings = PartySettings {
                    open,
                    max_size,
                    label: String::new(),
                    invite_policy: Default::default(),
                    leader_policy: Default::default(),
                };
                let created = self.table.create(id, seat, settings, Default::default());
                assert_eq!(created.is_ok(), (1..=256).contains(&max_size));
                if created.is_ok() {
                    self.parties.push(id);
                    self.seat(id, actor);
                }
            }
            Op::Join(p) => {
                let Some(id) = self.party(p) else { return };
                let joined = self.table.join(
                    id,
                    self.presences[actor].clone(),
                    self.links[actor].clone(),
                    self.now,
                    Duration::from_secs(10),
                    |_, _| {},
                );
                if let Ok(JoinOutcome::Joined(_)) = joined {
                    self.seat(id, actor);
                }
            }
            Op::Leave(p) | Op::EndSession(p) => {
                let Some(id) = self.party(p) else { return };
                let reason = if matches!(op, Op::Leave(_)) {
                    LeaveReason::Left
                } else {
                    LeaveReason::SessionEnded
                };
                let _ = self.table.apply(
                    id,
                    |party| party.leave(me, reason).map(|e| ((), e)),
                    deliver,
                );
            }
            Op::Accept(p, target) => {
                let Some(id) = self.party(p) else { return };
                let user = self.presences[target].user_id.clone();
                if self
                    .table
                    .apply(
                        id,
                        |party| party.accept(me, &user).map(|e| ((), e)),
                        deliver,
                    )
                    .is_ok()
                {
                    self.seat(id, target);
                }
            }
            Op::Remove(p, target) => {
                let Some(id) = self.party(p) else { return };
                let user = self.presences[target].user_id.clone();
                let _ = self.table.apply(
                    id,
                    |party| party.remove(me, &user).map(|e| ((), e)),
                    deliver,
                );
            }
            Op::Promote(p, target) => {
                let Some(id) = self.party(p) else { return };
                let user = self.presences[target].user_id.clone();
                let promoted = self.table.apply(
                    id,
                    |party| party.promote(me, &user).map(|e| ((), e)),
                    deliver,
                );
                if promoted.is_ok() {
                    let leader = self.table.read(id, |party| {
                        Ok(party.leader().map(|s| s.presence.user_id.clone()))
                    });
                    assert_eq!(leader, Ok(Some(user)));
                }
            }
            Op::Close(p) => {
                let Some(id) = self.party(p) else { return };
                if self
                    .table
                    .apply(id, |party| party.close(me).map(|e| ((), e)), deliver)
                    .is_ok()
                {
                    assert!(
                        self.table.read(id, |_| Ok(())).is_err(),
                        "a closed party is gone"
                    );
                }
            }
            Op::Update {
                party: p,
                open,
                max_size,
            } => {
                let Some(id) = self.party(p) else { return };
                let update = PartyUpdate {
                    open,
                    label: None,
                    max_size,
                    invite_policy: None,
                    leader_policy: None,
                };
                let _ = self
                    .table
                    .apply(id, |party| party.update(me, update), |_, _| {});
            }
            Op::Connection(connected) => {
                self.connected[actor] = connected;
                for id in self.parties.clone() {
                    let _ = self.table.apply(
                        id,
                        |party| party.set_connected(me, connected, true).map(|e| ((), e)),
                        |_, _| {},
                    );
                }
            }
            Op::Expire => {
                self.now += Duration::from_secs(6);
                self.table.expire(self.now, |_| {});
            }
        }
    }

    fn check(&self) {
        let mut expected: Vec<HashSet<PartyId>> = vec![HashSet::new(); PLAYERS];
        for &id in &self.parties {
            let state = self.table.read(id, |party| {
                let members: Vec<Presence> =
                    party.members().iter().map(|s| s.presence.clone()).collect();
                let requests: Vec<Presence> =
                    party.requests().map(|r| r.presence.clone()).collect();
                let leader = party.leader().map(|s| s.presence.clone());
                let any_connected = party.members().iter().any(|s| s.connected);
                let leader_connected = party.leader().is_some_and(|s| s.connected);
                assert!(
                    leader_connected || !any_connected,
                    "a leader is connected whenever anyone is"
                );
                Ok((members, requests, leader, party.settings().max_size))
            });
            let Ok((members, requests, leader, max_size)) = state else {
                continue;
            };
            assert!(!members.is_empty(), "a party in the table is never empty");
            let leader = leader.expect("exactly one leader");
            assert!(members.contains(&leader), "the leader is a member");
            assert!(members.len() <= usize::from(max_size), "size within max");
            let users: HashSet<_> = members.iter().map(|m| &m.user_id).collect();
            assert_eq!(users.len(), members.len(), "no duplicate members");
            let requesters: HashSet<_> = requests.iter().map(|r| &r.user_id).collect();
            assert_eq!(requesters.len(), requests.len(), "no duplicate requests");
            assert!(
                users.is_disjoint(&requesters),
                "no one both seated and waiting"
            );
            let stamps: Vec<u64> = members
                .iter()
                .map(|m| self.seated_at[&(id, m.user_id.clone())])
                .collect();
            assert!(
                stamps.windows(2).all(|w| w[0] < w[1]),
                "members in join order: {stamps:?}"
            );
            for presence in members.iter().chain(requests.iter()) {
                let index = self
                    .presences
                    .iter()
                    .position(|p| p == presence)
                    .expect("known player");
                expected[index].insert(id);
            }
        }
        for (index, link) in self.links.iter().enumerate() {
            assert_eq!(
                *link.parties.lock().unwrap(),
                expected[index],
                "player {index}'s party record"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn party_invariants_hold_over_random_operations(steps in proptest::collection::vec((0..PLAYERS, op()), 1..80)) {
        let mut world = World::new();
        for (actor, op) in steps {
            world.apply(actor, op);
            world.check();
        }
    }
}

proptest! {
    /// Arbitrary bytes through both decoders: a value or an error, never a panic.
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = partyline::protocol::decode_body::<partyline::protocol::ClientFrame>(&bytes);
        let _ = partyline::protocol::decode_body::<partyline::protocol::ServerFrame>(&bytes);
        let _ = partyline::protocol::decode_client_datagram(bytes::Bytes::from(bytes.clone()));
        let _ = partyline::protocol::decode_server_datagram(bytes::Bytes::from(bytes));
    }
}
