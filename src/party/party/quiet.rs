//! Mutes and blocks inside a party: whose party data does not reach whom.
//!
//! A **mute** is one member's, for itself: the party data of another
//! member (every op code, or one range of them) is not forwarded to it.
//! It is kept on the muter's seat by the muted member's user id, so the
//! muted member leaving and coming back does not undo it; it ends with
//! the muter's seat. The muted member is not told, and nothing else
//! changes: no `seq` step, no event.
//!
//! A **block** is a session's own list of user ids, kept by the server
//! with the session; the rules ask a member's link ([`BlockList`]). Two
//! members *share a block* when either's session blocks the other's user:
//! no party data passes between them, either way. A leader's block also
//! keeps the blocked user out: its join is answered as a join of a party
//! that does not exist ([`PartyError::BlockedByLeader`]).
//!
//! The data path pays for neither while no seat has a mute or a shared
//! block (`quiet_seats` is 0): one comparison per datagram.

use super::{Effects, Party, PartyError, Seat};
use crate::protocol::{Muted, NumberRange, Presence, SessionId, MAX_MUTES};

/// Whom a member's session blocks, as the rules ask the member's link
/// (the server: the session's block list).
pub trait BlockList {
    /// Whether this member's session blocks `user_id`.
    fn blocks(&self, user_id: &str) -> bool;
}

/// Plain numbers, as links of the rules' own tests and benchmarks, block
/// nobody.
macro_rules! blocks_nobody {
    ($($number:ty),*) => {$(
        impl BlockList for $number {
            fn blocks(&self, _: &str) -> bool {
                false
            }
        }
    )*};
}

blocks_nobody!(u32, u64, u128, usize);

/// Who sent party data, and how many members it was withheld from (they
/// muted the sender, or share a block with it).
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    pub presence: &'a Presence,
    pub withheld: usize,
}

/// Whether `seat` hears party data with `op_code` from user `from`.
pub(super) fn hears<L>(seat: &Seat<L>, from: &str, op_code: i64) -> bool {
    !seat.blocked_with.iter().any(|user| user == from)
        && !seat
            .muted
            .iter()
            .any(|mute| mute.user_id == from && mute.covers(op_code))
}

/// Whether two seats share a block: either's session blocks the other's user.
fn share_a_block<L: BlockList>(a: &Seat<L>, b: &Seat<L>) -> bool {
    a.link.blocks(&b.presence.user_id) || b.link.blocks(&a.presence.user_id)
}

impl<L: Clone + BlockList> Party<L> {
    /// The caller stops hearing `user_id`'s party data with an op code in
    /// `op_codes` (all of them when `None`). Muting a member muted already
    /// replaces its range (even one who has left since). Nobody is told.
    pub fn mute(
        &mut self,
        caller: SessionId,
        user_id: &str,
        op_codes: Option<NumberRange>,
    ) -> Result<Effects<L>, PartyError> {
        let index = self.seat_of_session(caller).ok_or(PartyError::NotMember)?;
        if self.members[index].presence.user_id == user_id {
            return Err(PartyError::InvalidArgument(
                "you cannot mute yourself".into(),
            ));
        }
        if let Some(range) = op_codes.filter(|range| range.min > range.max) {
            return Err(PartyError::InvalidArgument(format!(
                "an op code range's min ({}) is above its max ({})",
                range.min, range.max
            )));
        }
        let seated = self.seat_of_user(user_id).is_some();
        let muted = &mut self.members[index].muted;
        match muted.iter().position(|mute| mute.user_id == user_id) {
            Some(known) => muted[known].op_codes = op_codes,
            None if !seated => return Err(PartyError::MemberNotFound),
            None if muted.len() >= MAX_MUTES => return Err(PartyError::TooManyMutes),
            None => muted.push(Muted {
                user_id: user_id.to_string(),
                op_codes,
            }),
        }
        self.recount_quiet();
        Ok(Effects::default())
    }

    /// The caller hears `user_id` again; nothing changes if it did not
    /// mute it.
    pub fn unmute(&mut self, caller: SessionId, user_id: &str) -> Result<Effects<L>, PartyError> {
        let index = self.seat_of_session(caller).ok_or(PartyError::NotMember)?;
        self.members[index]
            .muted
            .retain(|mute| mute.user_id != user_id);
        self.recount_quiet();
        Ok(Effects::default())
    }

    /// `session`'s block list changed: the blocks it shares with the other
    /// members follow. Nobody is told.
    pub fn blocks_changed(&mut self, session: SessionId) -> Result<Effects<L>, PartyError> {
        let index = self.seat_of_session(session).ok_or(PartyError::NotMember)?;
        self.refresh_blocks_of(index);
        Ok(Effects::default())
    }

    /// Whether the leader's session blocks `user_id`.
    pub(super) fn leader_blocks(&self, user_id: &str) -> bool {
        self.leader()
            .is_some_and(|leader| leader.link.blocks(user_id))
    }

    /// Seats a member (every seat is added here), noting the blocks it
    /// shares with the others.
    pub(super) fn push_seat(&mut self, seat: Seat<L>) {
        self.members.push(seat);
        self.refresh_blocks_of(self.members.len() - 1);
    }

    /// A seat is gone: the blocks the others shared with it go too. Their
    /// mutes of it stay (it may come back).
    pub(super) fn unseated(&mut self, seat: &Seat<L>) {
        let user = &seat.presence.user_id;
        for other in &mut self.members {
            other.blocked_with.retain(|blocked| blocked != user);
        }
        self.recount_quiet();
    }

    /// Works out again which members share a block with seat `index`.
    pub(super) fn refresh_blocks_of(&mut self, index: usize) {
        let user = self.members[index].presence.user_id.clone();
        let mut shared = Vec::new();
        for other in 0..self.members.len() {
            if other == index {
                continue;
            }
            let blocked = share_a_block(&self.members[index], &self.members[other]);
            let theirs = &mut self.members[other].blocked_with;
            theirs.retain(|blocked| *blocked != user);
            if blocked {
                theirs.push(user.clone());
                shared.push(self.members[other].presence.user_id.clone());
            }
        }
        self.members[index].blocked_with = shared;
        self.recount_quiet();
    }

    fn recount_quiet(&mut self) {
        self.quiet_seats = self
            .members
            .iter()
            .filter(|seat| !seat.muted.is_empty() || !seat.blocked_with.is_empty())
            .count();
    }
}
