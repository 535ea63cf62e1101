//! Property test of the rules that interact when players gather: invites
//! with bans, closed parties, the size limit and leader changes. Random
//! operation sequences on one party (the pure rules, no server), checked
//! after every step against a small model of who is invited and banned:
//!
//! - a banned user is never seated, waiting or invited;
//! - a seated user never holds an invite;
//! - a join by an invited user seats it even in a closed party (when there
//!   is room), and uses the invite up; without an invite a closed party
//!   queues; a full party refuses either way and keeps the invite;
//! - the party stays within its size, led by one of its members.

use partyline::party::{
    Effects, InviteNotice, Party, PartyError, PartySettings, PartyUpdate, Seat,
};
use partyline::protocol::{
    InviteGoneReason, InvitePolicy, JoinOutcome, KeyValues, LeaveReason, PartyId, Presence,
    SessionId,
};
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const USERS: usize = 6;
const TTL: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
enum Op {
    Join(usize),
    Leave(usize),
    Invite {
        by: usize,
        user: usize,
    },
    Decline(usize),
    Revoke(usize),
    Ban {
        user: usize,
        for_secs: u64,
    },
    Unban(usize),
    Kick(usize),
    Accept(usize),
    Promote(usize),
    Update {
        open: Option<bool>,
        max_size: Option<u16>,
        any_member: Option<bool>,
    },
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        3 => user.clone().prop_map(Op::Join),
        1 => user.clone().prop_map(Op::Leave),
        3 => (0..USERS, 0..USERS).prop_map(|(by, user)| Op::Invite { by, user }),
        1 => user.clone().prop_map(Op::Decline),
        1 => user.clone().prop_map(Op::Revoke),
        2 => (0..USERS, 0u64..3).prop_map(|(user, for_secs)| Op::Ban { user, for_secs }),
        1 => user.clone().prop_map(Op::Unban),
        1 => user.clone().prop_map(Op::Kick),
        1 => user.clone().prop_map(Op::Accept),
        1 => user.clone().prop_map(Op::Promote),
        1 => (
            proptest::option::of(any::<bool>()),
            proptest::option::of(1u16..5),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(open, max_size, any_member)| Op::Update { open, max_size, any_member }),
        1 => (0u64..12).prop_map(Op::Advance),
    ]
}

fn presence(user: usize) -> Presence {
    Presence {
        user_id: format!("u{user}"),
        username: format!("n{user}"),
        session_id: SessionId::from_u128(user as u128 + 1),
    }
}

fn session(user: usize) -> SessionId {
    presence(user).session_id
}

struct World {
    party: Party<usize>,
    now: Instant,
    /// The model: live invites (user -> expiry) and bans (user -> end).
    invites: HashMap<usize, Instant>,
    bans: HashMap<usize, Option<Instant>>,
}

impl World {
    fn new(open: bool, max_size: u16) -> World {
        let settings = PartySettings {
            open,
            max_size,
            label: String::new(),
            invite_policy: InvitePolicy::Leader,
            leader_policy: Default::default(),
        };
        let party = Party::create(
            PartyId::from_u128(7),
            Seat::new(presence(0), 0),
            settings,
            KeyValues::new(),
        )
        .expect("valid settings");
        World {
            party,
            now: Instant::now(),
            invites: HashMap::new(),
            bans: HashMap::new(),
        }
    }

    fn banned(&self, user: usize) -> bool {
        self.bans
            .get(&user)
            .is_some_and(|until| until.is_none_or(|t| t > self.now))
    }

    fn invited(&self, user: usize) -> bool {
        self.invites.get(&user).is_some_and(|at| *at > self.now)
    }

    fn seated(&self, user: usize) -> bool {
        self.party.members().iter().any(|s| s.link == user)
    }

    fn waiting(&self, user: usize) -> bool {
        self.party.requests().any(|r| r.link == user)
    }

    fn leader(&self) -> Option<usize> {
        self.party.leader().map(|s| s.link)
    }

    /// Keeps the model's invites in step with the notices the rules gave.
    fn note(&mut self, effects: &Effects<usize>) {
        for notice in &effects.invites {
            let user: usize = notice.user_id()[1..].parse().expect("u<n>");
            match notice {
                InviteNotice::Sent { .. } => {
                    self.invites.insert(user, self.now + TTL);
                }
                InviteNotice::Gone { reason, .. } => {
                    assert!(
                        self.invites.remove(&user).is_some()
                            || *reason == InviteGoneReason::Expired,
                        "a notice that an invite {user} never had is gone"
                    );
                }
            }
        }
    }

    fn step(&mut self, op: Op) {
        let full = self.party.members().len() >= usize::from(self.party.settings().max_size);
        match op {
            Op::Join(user) => {
                let (was_banned, was_invited) = (self.banned(user), self.invited(user));
                let before = (self.seated(user), self.waiting(user));
                let result = self.party.join(presence(user), user, self.now, TTL);
                match result {
                    Ok((outcome, effects)) => {
                        assert!(!was_banned, "banned u{user} got in: {outcome:?}");
                        let seated = matches!(outcome, JoinOutcome::Joined(_));
                        assert_eq!(
                            seated,
                            self.party.settings().open || was_invited,
                            "an invite (and only an invite) seats in a closed party"
                        );
                        self.note(&effects);
                        if was_invited {
                            assert!(!self.invited(user), "the invite was used up");
                        }
                    }
                    Err(PartyError::Banned) => assert!(was_banned),
                    Err(PartyError::PartyFull) => {
                        assert!(full);
                        assert_eq!(self.invited(user), was_invited, "kept when full");
                    }
                    Err(PartyError::AlreadyMember) => assert!(before.0),
                    Err(PartyError::AlreadyRequested) => assert!(before.1),
                    Err(PartyError::TooManyRequests) => {}
                    Err(other) => panic!("join: {other:?}"),
                }
            }
            Op::Leave(user) => {
                if let Ok(effects) = self.party.leave(session(user), LeaveReason::Left) {
                    self.note(&effects);
                }
            }
            Op::Invite { by, user } => {
                let may = match self.party.invite_policy() {
                    InvitePolicy::Leader => self.leader() == Some(by),
                    InvitePolicy::AnyMember => self.seated(by),
                };
                let result =
                    self.party
                        .invite(session(by), &presence(user).user_id, self.now, TTL, 0);
                match result {
                    Ok(effects) => {
                        assert!(may, "u{by} may not invite");
                        assert!(!self.banned(user) && !self.seated(user) && !self.waiting(user));
                        self.note(&effects);
                    }
                    Err(PartyError::NotLeader | PartyError::NotMember) => assert!(!may),
                    Err(PartyError::Banned) => assert!(self.banned(user)),
                    Err(PartyError::AlreadyMember) => assert!(self.seated(user)),
                    Err(PartyError::AlreadyRequested) => assert!(self.waiting(user)),
                    Err(PartyError::TooManyInvites) => {}
                    Err(other) => panic!("invite: {other:?}"),
                }
            }
            Op::Decline(user) => match self.party.decline(&presence(user), self.now) {
                Ok(effects) => {
                    assert!(self.invited(user));
                    self.note(&effects);
                }
                Err(PartyError::InviteNotFound) => assert!(!self.invited(user)),
                Err(other) => panic!("decline: {other:?}"),
            },
            Op::Revoke(user) => {
                let leader = self.leader().unwrap_or(0);
                if let Ok(effects) =
                    self.party
                        .revoke(session(leader), &presence(user).user_id, self.now)
                {
                    self.note(&effects);
                }
            }
            Op::Ban { user, for_secs } => {
                let leader = self.leader().unwrap_or(0);
                let until = (for_secs > 0).then(|| self.now + Duration::from_secs(for_secs));
                match self
                    .party
                    .ban(session(leader), &presence(user).user_id, until, 1, 8)
                {
                    Ok(effects) => {
                        self.bans.insert(user, until);
                        self.note(&effects);
                    }
                    Err(PartyError::CannotRemoveSelf) => assert_eq!(user, leader),
                    Err(
                        PartyError::TooManyBans | PartyError::NotLeader | PartyError::NotMember,
                    ) => {}
                    Err(other) => panic!("ban: {other:?}"),
                }
            }
            Op::Unban(user) => {
                let leader = self.leader().unwrap_or(0);
                match self
                    .party
                    .unban(session(leader), &presence(user).user_id, self.now)
                {
                    Ok(()) => {
                        self.bans.remove(&user);
                    }
                    Err(PartyError::BanNotFound) => assert!(!self.banned(user)),
                    Err(PartyError::NotLeader | PartyError::NotMember) => {}
                    Err(other) => panic!("unban: {other:?}"),
                }
            }
            Op::Kick(user) => {
                let leader = self.leader().unwrap_or(0);
                if let Ok(effects) = self.party.kick(session(leader), &presence(user).user_id) {
                    self.note(&effects);
                }
            }
            Op::Accept(user) => {
                let leader = self.leader().unwrap_or(0);
                if let Ok(effects) = self.party.accept(session(leader), &presence(user).user_id) {
                    self.note(&effects);
                }
            }
            Op::Promote(user) => {
                let leader = self.leader().unwrap_or(0);
                let _ = self.party.promote(session(leader), &presence(user).user_id);
            }
            Op::Update {
                open,
                max_size,
                any_member,
            } => {
                let leader = self.leader().unwrap_or(0);
                let update = PartyUpdate {
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
                    leader_policy: None,
                };
                if let Ok((_, effects)) = self.party.update(session(leader), update) {
                    self.note(&effects);
                }
            }
            Op::Advance(secs) => {
                self.now += Duration::from_secs(secs);
                let effects = self.party.expire(self.now);
                self.note(&effects);
                self.invites.retain(|_, at| *at > self.now);
            }
        }
    }

    fn check(&self) {
        let party = &self.party;
        if party.is_empty() {
            return;
        }
        let seats = party.members().len();
        assert!(seats <= usize::from(party.settings().max_size));
        assert!(party
            .leader()
            .is_some_and(|l| party.members().iter().any(|s| s.link == l.link)));
        let pending: Vec<&str> = party
            .invites()
            .filter(|i| i.expires_at > self.now)
            .map(|i| i.user_id.as_str())
            .collect();
        assert!(pending.len() <= usize::from(partyline::protocol::MAX_PARTY_SIZE));
        for user in 0..USERS {
            let id = presence(user).user_id;
            let invited = pending.contains(&id.as_str());
            assert_eq!(
                invited,
                self.invited(user),
                "model and party disagree on u{user}'s invite"
            );
            if self.banned(user) {
                assert!(!self.seated(user), "banned u{user} is seated");
                assert!(!self.waiting(user), "banned u{user} is waiting");
                assert!(!invited, "banned u{user} is invited");
            }
            if self.seated(user) {
                assert!(!invited, "seated u{user} still holds an invite");
                assert!(!self.waiting(user));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    #[test]
    fn invites_bans_closed_parties_size_and_leaders_agree(
        open in any::<bool>(),
        max_size in 1u16..5,
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let mut world = World::new(open, max_size);
        for op in ops {
            world.step(op);
            world.check();
            if world.party.is_empty() {
                break;
            }
        }
    }
}
