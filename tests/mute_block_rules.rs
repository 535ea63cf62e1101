//! Property test of the mute and block rules (`Party`'s pure rules, no
//! server): random joins, leaves, kicks, promotions, lost and regained
//! connections, mutes (all op codes or a range), unmutes, blocks and
//! unblocks, checked after every step against a model:
//!
//! - party data from each member, for each op code probed, reaches
//!   exactly the connected members the model says: not the sender, not a
//!   member that muted it for that op code, not a member that shares a
//!   block with it (either's session blocks the other's user);
//! - a mute lasts while the muter is seated (its leaving ends it, the
//!   muted member's does not), and only the muter's snapshot shows it;
//! - a join is refused as a missing party exactly when the leader's
//!   session blocks the joiner;
//! - mutes and blocks step no `seq` and tell nobody.

use partyline::party::{BlockList, Effects, Party, PartyError, PartySettings, Seat};
use partyline::protocol::{
    InvitePolicy, KeyValues, LeaveReason, Muted, NumberRange, PartyId, Presence, SessionId,
};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

const PLAYERS: u128 = 6;
/// The op codes data is probed with: below, inside and above the ranges
/// the steps mute.
const PROBES: [i64; 4] = [-5, 0, 10, 99];

fn user(n: u128) -> String {
    format!("u{n}")
}

fn presence(n: u128) -> Presence {
    Presence {
        user_id: user(n),
        username: format!("n{n}"),
        session_id: SessionId::from_u128(n),
    }
}

/// A member's link: its number, and its session's block list (shared
/// with the world, which changes it).
#[derive(Clone, Debug)]
struct Player {
    n: u128,
    blocks: Rc<RefCell<BTreeSet<String>>>,
}

impl BlockList for Player {
    fn blocks(&self, user_id: &str) -> bool {
        self.blocks.borrow().contains(user_id)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Join,
    Leave,
    Kick(u128),
    Promote(u128),
    Connected(bool),
    Mute(u128, Option<(i64, i64)>),
    Unmute(u128),
    Block(u128),
    Unblock(u128),
}

fn op() -> impl Strategy<Value = Op> {
    let range = prop_oneof![
        Just(None),
        Just(Some((0, 10))),
        Just(Some((-5, -5))),
        Just(Some((11, 3))),
    ];
    prop_oneof![
        Just(Op::Join),
        Just(Op::Leave),
        (1..=PLAYERS).prop_map(Op::Kick),
        (1..=PLAYERS).prop_map(Op::Promote),
        any::<bool>().prop_map(Op::Connected),
        (1..=PLAYERS, range.clone()).prop_map(|(n, r)| Op::Mute(n, r)),
        (1..=PLAYERS, range).prop_map(|(n, r)| Op::Mute(n, r)),
        (1..=PLAYERS).prop_map(Op::Unmute),
        (1..=PLAYERS).prop_map(Op::Block),
        (1..=PLAYERS).prop_map(Op::Block),
        (1..=PLAYERS).prop_map(Op::Unblock),
    ]
}

struct World {
    party: Party<Player>,
    /// Every player's session block list (seated or not).
    blocks: BTreeMap<u128, Rc<RefCell<BTreeSet<String>>>>,
    /// The model's mutes: muter -> (muted user number -> op codes).
    mutes: BTreeMap<u128, BTreeMap<u128, Option<(i64, i64)>>>,
    /// The model's connected flags of seated members.
    connected: BTreeMap<u128, bool>,
}

impl World {
    fn new() -> World {
        let blocks: BTreeMap<u128, Rc<RefCell<BTreeSet<String>>>> =
            (1..=PLAYERS).map(|n| (n, Rc::default())).collect();
        let settings = PartySettings {
            open: true,
            max_size: PLAYERS as u16,
            label: String::new(),
            invite_policy: InvitePolicy::Leader,
            leader_policy: Default::default(),
        };
        let leader = Seat::new(presence(1), World::link(&blocks, 1));
        let party = Party::create(PartyId::from_u128(9), leader, settings, KeyValues::new())
            .expect("a party");
        World {
            party,
            blocks,
            mutes: BTreeMap::new(),
            connected: BTreeMap::from([(1, true)]),
        }
    }

    fn link(blocks: &BTreeMap<u128, Rc<RefCell<BTreeSet<String>>>>, n: u128) -> Player {
        Player {
            n,
            blocks: blocks[&n].clone(),
        }
    }

    fn seated(&self, n: u128) -> bool {
        self.party.is_member(SessionId::from_u128(n))
    }

    fn leader(&self) -> u128 {
        self.party.leader().map_or(0, |seat| seat.link.n)
    }

    fn blocks(&self, who: u128, whom: u128) -> bool {
        self.blocks[&who].borrow().contains(&user(whom))
    }

    /// The model's own departure of `n`: its mutes end with its seat.
    fn departed(&mut self, n: u128) {
        self.mutes.remove(&n);
        self.connected.remove(&n);
    }

    fn step(&mut self, actor: u128, op: Op) {
        let seq = self.party.seq();
        let me = SessionId::from_u128(actor);
        let quiet = matches!(
            op,
            Op::Mute(..) | Op::Unmute(_) | Op::Block(_) | Op::Unblock(_)
        );
        let effects: Result<Effects<Player>, PartyError> = match op {
            Op::Join => {
                let link = World::link(&self.blocks, actor);
                let blocked = self.blocks(self.leader(), actor);
                let result = self.party.join(
                    presence(actor),
                    link,
                    Instant::now(),
                    Duration::from_secs(60),
                );
                match &result {
                    Ok(_) => {
                        assert!(!blocked, "a blocked user was seated");
                        self.connected.insert(actor, true);
                    }
                    Err(PartyError::BlockedByLeader) => assert!(blocked),
                    Err(PartyError::AlreadyMember) => assert!(!blocked && self.seated(actor)),
                    Err(other) => panic!("join: unexpected {other:?}"),
                }
                result.map(|(_, effects)| effects)
            }
            Op::Leave => {
                let result = self.party.leave(me, LeaveReason::Left);
                if result.is_ok() {
                    self.departed(actor);
                }
                result
            }
            Op::Kick(n) => {
                let result = self.party.kick(me, &user(n));
                if result.is_ok() {
                    self.departed(n);
                }
                result
            }
            Op::Promote(n) => self.party.promote(me, &user(n)),
            Op::Connected(connected) => {
                let result = self.party.set_connected(me, connected, true);
                if result.is_ok() {
                    self.connected.insert(actor, connected);
                }
                result
            }
            Op::Mute(n, range) => self.mute(actor, n, range),
            Op::Unmute(n) => {
                let result = self.party.unmute(me, &user(n));
                match &result {
                    Ok(_) => {
                        self.mutes.entry(actor).or_default().remove(&n);
                    }
                    Err(PartyError::NotMember) => assert!(!self.seated(actor)),
                    Err(other) => panic!("unmute: unexpected {other:?}"),
                }
                result
            }
            // The server refuses a block of one's own user.
            Op::Block(n) if n == actor => return,
            Op::Block(n) | Op::Unblock(n) => {
                let add = matches!(op, Op::Block(_));
                let mut list = self.blocks[&actor].borrow_mut();
                match add {
                    true => list.insert(user(n)),
                    false => list.remove(&user(n)),
                };
                drop(list);
                // The server tells every party of the session's.
                match self.party.blocks_changed(me) {
                    Err(PartyError::NotMember) => {
                        assert!(!self.seated(actor));
                        Ok(Effects::default())
                    }
                    result => result,
                }
            }
        };
        if let Ok(effects) = effects {
            if quiet {
                assert!(effects.deliveries.is_empty(), "nobody is told");
                assert_eq!(self.party.seq(), seq, "no seq step");
            }
        }
        self.check();
    }

    fn mute(
        &mut self,
        actor: u128,
        n: u128,
        range: Option<(i64, i64)>,
    ) -> Result<Effects<Player>, PartyError> {
        let op_codes = range.map(|(min, max)| NumberRange { min, max });
        let result = self
            .party
            .mute(SessionId::from_u128(actor), &user(n), op_codes);
        let known = self.mutes.get(&actor).is_some_and(|m| m.contains_key(&n));
        match &result {
            Ok(_) => {
                assert!(self.seated(actor) && actor != n);
                assert!(
                    known || self.seated(n),
                    "only a seated member is muted anew"
                );
                self.mutes.entry(actor).or_default().insert(n, range);
            }
            Err(PartyError::NotMember) => assert!(!self.seated(actor)),
            Err(PartyError::InvalidArgument(_)) => {
                assert!(actor == n || range.is_some_and(|(min, max)| min > max))
            }
            Err(PartyError::MemberNotFound) => assert!(!known && !self.seated(n)),
            Err(other) => panic!("mute: unexpected {other:?}"),
        }
        result
    }

    /// Whether `to` hears `from`'s data with `op_code`, by the model.
    fn hears(&self, from: u128, to: u128, op_code: i64) -> bool {
        let muted = self
            .mutes
            .get(&to)
            .and_then(|mutes| mutes.get(&from))
            .is_some_and(|range| range.is_none_or(|(min, max)| min <= op_code && op_code <= max));
        to != from
            && self.connected.get(&to) == Some(&true)
            && !muted
            && !self.blocks(from, to)
            && !self.blocks(to, from)
    }

    fn check(&self) {
        let seated: Vec<u128> = self.party.members().iter().map(|s| s.link.n).collect();
        for &from in &seated {
            for op_code in PROBES {
                let mut recipients = Vec::new();
                let sender = self
                    .party
                    .data_recipients(SessionId::from_u128(from), op_code, &mut recipients)
                    .expect("a seated sender");
                let got: Vec<u128> = recipients.iter().map(|p| p.n).collect();
                let expected: Vec<u128> = seated
                    .iter()
                    .copied()
                    .filter(|&to| self.hears(from, to, op_code))
                    .collect();
                assert_eq!(got, expected, "data from u{from}, op code {op_code}");
                let connected_others = seated
                    .iter()
                    .filter(|&&to| to != from && self.connected.get(&to) == Some(&true))
                    .count();
                assert_eq!(sender.withheld, connected_others - got.len());
            }
            // Only the muter's snapshot shows its mutes.
            let shown: BTreeMap<String, Option<NumberRange>> = self
                .party
                .snapshot_for(SessionId::from_u128(from))
                .muted
                .into_iter()
                .map(|Muted { user_id, op_codes }| (user_id, op_codes))
                .collect();
            let model: BTreeMap<String, Option<NumberRange>> = self
                .mutes
                .get(&from)
                .into_iter()
                .flatten()
                .map(|(n, range)| (user(*n), range.map(|(min, max)| NumberRange { min, max })))
                .collect();
            assert_eq!(shown, model, "u{from}'s mutes");
        }
        assert!(
            self.party.snapshot().muted.is_empty(),
            "a shared snapshot has none"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn mutes_and_blocks_follow_their_rules(steps in proptest::collection::vec((1..=PLAYERS, op()), 1..80)) {
        let mut world = World::new();
        for (actor, op) in steps {
            if world.party.is_empty() {
                break;
            }
            world.step(actor, op);
        }
    }
}

#[test]
fn a_party_with_nobody_quiet_takes_the_plain_path_and_a_block_both_ways() {
    let mut world = World::new();
    for n in 2..=3 {
        world.step(n, Op::Join);
    }
    // u3 blocks u2 while both are seated: neither hears the other.
    world.step(3, Op::Block(2));
    let mut recipients = Vec::new();
    world
        .party
        .data_recipients(SessionId::from_u128(2), 0, &mut recipients)
        .unwrap();
    assert_eq!(recipients.iter().map(|p| p.n).collect::<Vec<_>>(), [1]);
    // u1 blocks u2 and leads: u2, once gone, cannot come back.
    world.step(1, Op::Block(2));
    world.step(2, Op::Leave);
    assert!(matches!(
        world.party.join(
            presence(2),
            World::link(&world.blocks, 2),
            Instant::now(),
            Duration::from_secs(60)
        ),
        Err(PartyError::BlockedByLeader)
    ));
    assert_eq!(
        PartyError::BlockedByLeader.to_string(),
        PartyError::PartyNotFound.to_string(),
        "told as a missing party is"
    );
    assert_eq!(
        PartyError::BlockedByLeader.code(),
        PartyError::PartyNotFound.code()
    );
}
