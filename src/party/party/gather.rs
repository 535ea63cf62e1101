//! How players find and gather into a party: invites, bans, the party
//! state, member attributes, and the party's own view of its join code and
//! listing (the table keeps the indexes that span parties).

use super::{Effects, Party, PartyError};
use crate::protocol::{
    Event, InviteGoneReason, InvitePolicy, KeyValues, LeaveReason, ListedParty, PartyBan, PartyId,
    PartyInvite, Presence, SessionId, TicketCancelReason, MAX_ATTRIBUTE_BYTES,
    MAX_ATTRIBUTE_ENTRIES, MAX_NAME_BYTES, MAX_PARTY_SIZE, MAX_PROPERTY_BYTES,
    MAX_PROPERTY_ENTRIES, MAX_STATE_BYTES, MAX_STATE_ENTRIES,
};
use std::time::{Duration, Instant};

/// A pending invite of one user to this party.
#[derive(Clone, Debug)]
pub struct Invite {
    pub user_id: String,
    pub inviter: Presence,
    pub expires_at: Instant,
    /// The same moment by the wall clock, for the wire.
    pub expires_at_ms: u64,
}

/// A ban in force. `until: None` lasts as long as the party.
#[derive(Clone, Debug)]
pub struct Ban {
    pub user_id: String,
    pub until: Option<Instant>,
    /// The same moment by the wall clock (0 for the party's life).
    pub until_ms: u64,
}

/// An invite sent or gone, for every session of `user_id`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InviteNotice {
    Sent {
        user_id: String,
        invite: PartyInvite,
    },
    Gone {
        user_id: String,
        party_id: PartyId,
        reason: InviteGoneReason,
        /// The inviter's user id: a session of the invitee that blocks it
        /// was not told of the invite, so is not told it is gone either
        /// (the nodes that tell the invitee keep no copy of the invite).
        inviter: String,
    },
}

impl InviteNotice {
    pub fn user_id(&self) -> &str {
        match self {
            InviteNotice::Sent { user_id, .. } | InviteNotice::Gone { user_id, .. } => user_id,
        }
    }
}

/// Checks a key-value map against its limits: at most `max_entries` keys,
/// non-empty keys of at most `MAX_NAME_BYTES`, and at most `max_bytes` of
/// keys and values together.
pub fn validate_key_values(
    what: &str,
    map: &KeyValues,
    max_entries: usize,
    max_bytes: usize,
) -> Result<(), PartyError> {
    if map.len() > max_entries {
        return Err(PartyError::KeyValuesTooLarge(format!(
            "{what} would have {} keys, the limit is {max_entries}",
            map.len()
        )));
    }
    if let Some(key) = map
        .keys()
        .find(|k| k.is_empty() || k.len() > MAX_NAME_BYTES)
    {
        return Err(PartyError::InvalidArgument(format!(
            "{what}: keys must be 1 to {MAX_NAME_BYTES} bytes, got {} bytes",
            key.len()
        )));
    }
    let bytes: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > max_bytes {
        return Err(PartyError::KeyValuesTooLarge(format!(
            "{what} would hold {bytes} bytes of keys and values, the limit is {max_bytes}"
        )));
    }
    Ok(())
}

/// `map` with `remove` taken out, then `set` put in.
fn changed(map: &KeyValues, set: KeyValues, remove: &[String]) -> KeyValues {
    let mut next = map.clone();
    for key in remove {
        next.remove(key);
    }
    next.extend(set);
    next
}

impl<L: Clone + super::BlockList> Party<L> {
    /// The party's waiting matchmaking ticket.
    pub fn matchmaking(&self) -> Option<u64> {
        self.matchmaking
    }

    /// Records (or with `None` forgets) the party's ticket.
    pub fn set_matchmaking(&mut self, ticket: Option<u64>) {
        self.matchmaking = ticket;
    }

    /// A ticket is for the party as it was: a change of members ends it.
    pub(super) fn members_changed(&mut self, effects: &mut Effects<L>) {
        let reason = if self.members.is_empty() {
            TicketCancelReason::PartyClosed
        } else {
            TicketCancelReason::MembershipChanged
        };
        if let Some(ticket) = self.matchmaking.take() {
            effects.ticket_ended = Some((ticket, reason));
        }
        self.ready_check_after_departures(effects);
    }

    pub fn invite_policy(&self) -> InvitePolicy {
        self.settings.invite_policy
    }

    pub fn join_code(&self) -> Option<&str> {
        self.join_code.as_deref()
    }

    pub fn is_listed(&self) -> bool {
        self.listing.is_some()
    }

    pub fn state(&self) -> &KeyValues {
        &self.state
    }

    pub fn invites(&self) -> impl ExactSizeIterator<Item = &Invite> {
        self.invites.iter()
    }

    pub fn bans(&self) -> &[Ban] {
        &self.bans
    }

    /// The party as a search shows it, while listed.
    pub fn listed_entry(&self) -> Option<ListedParty> {
        let properties = self.listing.as_ref()?;
        Some(ListedParty {
            party_id: self.id,
            members: u16::try_from(self.members.len()).unwrap_or(u16::MAX),
            max_size: self.settings.max_size,
            open: self.settings.open,
            label: self.settings.label.clone(),
            properties: properties.clone(),
        })
    }

    pub(super) fn is_banned(&self, user_id: &str, now: Instant) -> bool {
        self.bans
            .iter()
            .any(|b| b.user_id == user_id && b.until.is_none_or(|until| until > now))
    }

    pub(super) fn invite_of_user(&self, user_id: &str, now: Instant) -> Option<usize> {
        self.invites
            .iter()
            .position(|i| i.user_id == user_id && i.expires_at > now)
    }

    /// Uses up `user_id`'s live invite, if any; the user's sessions hear it
    /// is gone (answered).
    pub(super) fn take_invite(
        &mut self,
        user_id: &str,
        now: Instant,
        effects: &mut Effects<L>,
    ) -> bool {
        let Some(index) = self.invite_of_user(user_id, now) else {
            return false;
        };
        let Some(invite) = self.invites.remove(index) else {
            return false;
        };
        effects.invites.push(InviteNotice::Gone {
            user_id: user_id.to_string(),
            party_id: self.id,
            reason: InviteGoneReason::Answered,
            inviter: invite.inviter.user_id,
        });
        true
    }

    pub(super) fn drop_all_invites(&mut self, effects: &mut Effects<L>, reason: InviteGoneReason) {
        for invite in self.invites.drain(..) {
            effects.invites.push(InviteNotice::Gone {
                user_id: invite.user_id,
                party_id: self.id,
                reason,
                inviter: invite.inviter.user_id,
            });
        }
    }

    pub(super) fn expire_invites_and_bans(&mut self, now: Instant, effects: &mut Effects<L>) {
        while self.invites.front().is_some_and(|i| i.expires_at <= now) {
            if let Some(invite) = self.invites.pop_front() {
                effects.invites.push(InviteNotice::Gone {
                    user_id: invite.user_id,
                    party_id: self.id,
                    reason: InviteGoneReason::Expired,
                    inviter: invite.inviter.user_id,
                });
            }
        }
        self.bans
            .retain(|b| b.until.is_none_or(|until| until > now));
    }

    /// Invites `user_id`: the caller must be the leader, or any member when
    /// the policy says so. Inviting again renews the invite (new inviter,
    /// new expiry) and tells the invitee again.
    pub fn invite(
        &mut self,
        caller: SessionId,
        user_id: &str,
        now: Instant,
        ttl: Duration,
        now_ms: u64,
    ) -> Result<Effects<L>, PartyError> {
        let inviter = match self.settings.invite_policy {
            InvitePolicy::Leader => self.require_leader(caller)?,
            InvitePolicy::AnyMember => self.seat_of_session(caller).ok_or(PartyError::NotMember)?,
        };
        if user_id.is_empty() || user_id.len() > MAX_NAME_BYTES {
            return Err(PartyError::InvalidArgument(format!(
                "user_id must be 1 to {MAX_NAME_BYTES} bytes"
            )));
        }
        if self.seat_of_user(user_id).is_some() {
            return Err(PartyError::AlreadyMember);
        }
        if self.request_of_user(user_id).is_some() {
            return Err(PartyError::AlreadyRequested);
        }
        if self.is_banned(user_id, now) {
            return Err(PartyError::Banned);
        }
        // The inviter's own block: it may know. The leader's: the invite
        // could never seat its user, and the inviter is not told why (it
        // is answered, and nobody hears of the invite).
        if self.members[inviter].link.blocks(user_id) {
            return Err(PartyError::Blocked);
        }
        if self.leader_blocks(user_id) {
            return Ok(Effects::default());
        }
        let renewed = self.invites.iter().position(|i| i.user_id == user_id);
        if let Some(index) = renewed {
            self.invites.remove(index);
        } else if self.invites.len() >= usize::from(MAX_PARTY_SIZE) {
            // A bound that no settings change can leave behind (a size
            // limit would: the leader may shrink the party after inviting).
            return Err(PartyError::TooManyInvites);
        }
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let invite = Invite {
            user_id: user_id.to_string(),
            inviter: self.members[inviter].presence.clone(),
            expires_at: now + ttl,
            expires_at_ms: now_ms.saturating_add(ttl_ms),
        };
        let mut effects = Effects::default();
        effects.invites.push(InviteNotice::Sent {
            user_id: user_id.to_string(),
            invite: self.wire_invite(&invite),
        });
        self.invites.push_back(invite);
        Ok(effects)
    }

    /// The invite as its invitee sees it, with the party as it is now.
    pub fn wire_invite(&self, invite: &Invite) -> PartyInvite {
        let leader = self
            .leader()
            .map(|seat| seat.presence.clone())
            .unwrap_or_else(|| invite.inviter.clone());
        PartyInvite {
            party_id: self.id,
            inviter: invite.inviter.clone(),
            members: u16::try_from(self.members.len()).unwrap_or(u16::MAX),
            max_size: self.settings.max_size,
            open: self.settings.open,
            label: self.settings.label.clone(),
            leader,
            expires_at_ms: invite.expires_at_ms,
        }
    }

    /// The invitee turns the invite down: the inviter, if still seated, is
    /// told who declined; every session of the invitee hears it is gone.
    pub fn decline(&mut self, decliner: &Presence, now: Instant) -> Result<Effects<L>, PartyError> {
        let index = self
            .invite_of_user(&decliner.user_id, now)
            .ok_or(PartyError::InviteNotFound)?;
        let invite = self
            .invites
            .remove(index)
            .ok_or(PartyError::InviteNotFound)?;
        let mut effects = Effects::default();
        if let Some(seat) = self.seat_of_session(invite.inviter.session_id) {
            effects.tell(
                &self.members[seat].link,
                Event::InviteDeclined {
                    party_id: self.id,
                    presence: decliner.clone(),
                },
            );
        }
        effects.invites.push(InviteNotice::Gone {
            user_id: invite.user_id,
            party_id: self.id,
            reason: InviteGoneReason::Answered,
            inviter: invite.inviter.user_id,
        });
        Ok(effects)
    }

    /// Takes back `user_id`'s pending invite: the leader may take back
    /// any, and under `AnyMember` a member may take back its own.
    pub fn revoke(
        &mut self,
        caller: SessionId,
        user_id: &str,
        now: Instant,
    ) -> Result<Effects<L>, PartyError> {
        let as_leader = self.require_leader(caller);
        if let Err(PartyError::NotMember) = as_leader {
            return Err(PartyError::NotMember);
        }
        let index = self
            .invite_of_user(user_id, now)
            .ok_or(PartyError::InviteNotFound)?;
        let own = self.settings.invite_policy == InvitePolicy::AnyMember
            && self.invites[index].inviter.session_id == caller;
        if !own {
            as_leader?;
        }
        let invite = self
            .invites
            .remove(index)
            .ok_or(PartyError::InviteNotFound)?;
        let mut effects = Effects::default();
        effects.invites.push(InviteNotice::Gone {
            user_id: user_id.to_string(),
            party_id: self.id,
            reason: InviteGoneReason::Revoked,
            inviter: invite.inviter.user_id,
        });
        Ok(effects)
    }

    /// Leader only: bans `user_id` until `until` (`None`: the party's
    /// life). A seated user is removed (it hears `Banned`, the others
    /// `MemberLeft` with reason `Banned`); a waiting request ends (the
    /// requester hears `Banned`); a pending invite is gone. Banning again
    /// replaces the end of the ban.
    pub fn ban(
        &mut self,
        caller: SessionId,
        user_id: &str,
        until: Option<Instant>,
        until_ms: u64,
        max_bans: usize,
    ) -> Result<Effects<L>, PartyError> {
        let leader = self.require_leader(caller)?;
        if self.members[leader].presence.user_id == user_id {
            return Err(PartyError::CannotRemoveSelf);
        }
        if user_id.is_empty() || user_id.len() > MAX_NAME_BYTES {
            return Err(PartyError::InvalidArgument(format!(
                "user_id must be 1 to {MAX_NAME_BYTES} bytes"
            )));
        }
        let ban = Ban {
            user_id: user_id.to_string(),
            until,
            until_ms: if until.is_some() { until_ms } else { 0 },
        };
        match self.bans.iter().position(|b| b.user_id == user_id) {
            Some(index) => self.bans[index] = ban,
            None if self.bans.len() >= max_bans => return Err(PartyError::TooManyBans),
            None => self.bans.push(ban),
        }
        let mut effects = Effects::default();
        let until_ms = if until.is_some() { until_ms } else { 0 };
        if let Some(index) = self.seat_of_user(user_id) {
            self.seq += 1;
            let seat = self.remove_seat(index);
            effects.tell(
                &seat.link,
                Event::Banned {
                    party_id: self.id,
                    seq: self.seq,
                    until_ms,
                },
            );
            let left = Event::MemberLeft {
                party_id: self.id,
                seq: self.seq,
                presence: seat.presence,
                reason: LeaveReason::Banned,
            };
            self.tell_members(&mut effects, None, &left);
            effects.released.push(seat.link);
            self.members_changed(&mut effects);
        } else if let Some(index) = self.request_of_user(user_id) {
            if let Some(request) = self.requests.remove(index) {
                self.seq += 1;
                effects.tell(
                    &request.link,
                    Event::Banned {
                        party_id: self.id,
                        seq: self.seq,
                        until_ms,
                    },
                );
                effects.released.push(request.link);
            }
        }
        if let Some(index) = self.invites.iter().position(|i| i.user_id == user_id) {
            if let Some(invite) = self.invites.remove(index) {
                effects.invites.push(InviteNotice::Gone {
                    user_id: user_id.to_string(),
                    party_id: self.id,
                    reason: InviteGoneReason::Banned,
                    inviter: invite.inviter.user_id,
                });
            }
        }
        Ok(effects)
    }

    /// Leader only: lifts `user_id`'s ban.
    pub fn unban(
        &mut self,
        caller: SessionId,
        user_id: &str,
        now: Instant,
    ) -> Result<(), PartyError> {
        self.require_leader(caller)?;
        if !self.is_banned(user_id, now) {
            return Err(PartyError::BanNotFound);
        }
        self.bans.retain(|b| b.user_id != user_id);
        Ok(())
    }

    /// Leader only: the bans in force, oldest first.
    pub fn list_bans(&self, caller: SessionId, now: Instant) -> Result<Vec<PartyBan>, PartyError> {
        self.require_leader(caller)?;
        Ok(self
            .bans
            .iter()
            .filter(|b| b.until.is_none_or(|until| until > now))
            .map(|b| PartyBan {
                user_id: b.user_id.clone(),
                until_ms: b.until_ms,
            })
            .collect())
    }

    /// Leader only: changes the party state; every member hears the whole
    /// new state.
    pub fn set_state(
        &mut self,
        caller: SessionId,
        set: KeyValues,
        remove: &[String],
    ) -> Result<Effects<L>, PartyError> {
        self.require_leader(caller)?;
        let next = changed(&self.state, set, remove);
        validate_key_values("party state", &next, MAX_STATE_ENTRIES, MAX_STATE_BYTES)?;
        self.state = next;
        self.seq += 1;
        let mut effects = Effects::default();
        let event = Event::PartyStateChanged {
            party_id: self.id,
            seq: self.seq,
            state: self.state.clone(),
        };
        self.tell_members(&mut effects, None, &event);
        Ok(effects)
    }

    /// A member changes its own attributes; every member (itself
    /// included) hears that member's whole new attributes.
    pub fn set_attributes(
        &mut self,
        caller: SessionId,
        set: KeyValues,
        remove: &[String],
    ) -> Result<Effects<L>, PartyError> {
        let index = self.seat_of_session(caller).ok_or(PartyError::NotMember)?;
        let next = changed(&self.members[index].attributes, set, remove);
        validate_key_values(
            "member attributes",
            &next,
            MAX_ATTRIBUTE_ENTRIES,
            MAX_ATTRIBUTE_BYTES,
        )?;
        self.members[index].attributes = next;
        self.seq += 1;
        let mut effects = Effects::default();
        let event = Event::MemberAttributesChanged {
            party_id: self.id,
            seq: self.seq,
            presence: self.members[index].presence.clone(),
            attributes: self.members[index].attributes.clone(),
        };
        self.tell_members(&mut effects, None, &event);
        Ok(effects)
    }

    /// Leader only: checks that `caller` may change the join code, before
    /// the table claims a new one in its index.
    pub fn check_leader(&self, caller: SessionId) -> Result<(), PartyError> {
        self.require_leader(caller).map(drop)
    }

    /// Sets (or with `None` removes) the join code the table claimed for
    /// this party; every member hears it. Returns the old code, for the
    /// table to release. Leader only.
    pub fn set_join_code(
        &mut self,
        caller: SessionId,
        code: Option<String>,
    ) -> Result<(Option<String>, Effects<L>), PartyError> {
        self.require_leader(caller)?;
        let old = std::mem::replace(&mut self.join_code, code);
        self.seq += 1;
        let mut effects = Effects::default();
        let event = Event::JoinCodeChanged {
            party_id: self.id,
            seq: self.seq,
            code: self.join_code.clone().unwrap_or_default(),
        };
        self.tell_members(&mut effects, None, &event);
        Ok((old, effects))
    }

    /// Leader only: lists the party with `properties` (`Some`), or unlists
    /// it (`None`); every member hears it.
    pub fn set_listing(
        &mut self,
        caller: SessionId,
        properties: Option<KeyValues>,
    ) -> Result<Effects<L>, PartyError> {
        self.require_leader(caller)?;
        if let Some(properties) = &properties {
            validate_key_values(
                "listing properties",
                properties,
                MAX_PROPERTY_ENTRIES,
                MAX_PROPERTY_BYTES,
            )?;
        }
        self.listing = properties;
        self.seq += 1;
        let mut effects = Effects::default();
        let event = Event::ListingChanged {
            party_id: self.id,
            seq: self.seq,
            listed: self.listing.is_some(),
            properties: self.listing.clone().unwrap_or_default(),
        };
        self.tell_members(&mut effects, None, &event);
        Ok(effects)
    }
}
