//! The party and user ids this session has seen, so that a person can type
//! `.` or a short prefix instead of a 36-character id, and Tab can complete
//! them.

use crate::commands::Reply;
use crate::shown::needs_escape;
use partyline_client::{Event, JoinOutcome, Party, PartyId, Presence};
use std::collections::BTreeSet;

/// Enough for any session a person drives by hand; the oldest go first.
const MAX_PARTIES: usize = 256;
const MAX_USERS: usize = 1024;

#[derive(Debug, Default)]
pub struct Known {
    /// Oldest first.
    parties: Vec<PartyId>,
    users: BTreeSet<String>,
    /// The party last created, joined or accepted into: what `.` means.
    current: Option<PartyId>,
}

impl Known {
    pub fn saw_party(&mut self, party_id: PartyId) {
        self.parties.retain(|known| *known != party_id);
        self.parties.push(party_id);
        if self.parties.len() > MAX_PARTIES {
            self.parties.remove(0);
        }
    }

    /// This session took a seat (or leads a new party): `.` names it now.
    pub fn entered(&mut self, party: &Party) {
        self.saw_party(party.party_id);
        self.current = Some(party.party_id);
        for member in &party.members {
            self.saw_user(&member.presence);
        }
    }

    pub fn saw_user(&mut self, presence: &Presence) {
        self.saw_user_id(&presence.user_id);
    }

    pub fn saw_user_id(&mut self, user_id: &str) {
        // Tab prints the candidates and puts one in the line being edited:
        // an id with a control or bidi character (that the server should
        // have refused) is never offered.
        if user_id.chars().any(needs_escape) {
            return;
        }
        if self.users.len() < MAX_USERS {
            self.users.insert(user_id.to_string());
        }
    }

    /// Party ids, newest first (what Tab offers).
    pub fn party_ids(&self) -> impl Iterator<Item = PartyId> + '_ {
        self.parties.iter().rev().copied()
    }

    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(String::as_str)
    }

    /// A party as a person typed it: a full id, `.` for the current party,
    /// or a unique prefix of an id this session has seen.
    pub fn resolve_party(&self, text: &str) -> Result<PartyId, String> {
        let text = text.trim();
        if text == "." {
            return self.current.ok_or_else(|| {
                "`.` means the party you last created or joined, and there is none yet".to_string()
            });
        }
        if let Ok(party_id) = text.parse::<PartyId>() {
            return Ok(party_id);
        }
        let prefix = text.to_ascii_lowercase();
        let mut matches = self
            .party_ids()
            .filter(|id| !prefix.is_empty() && id.to_string().starts_with(&prefix));
        match (matches.next(), matches.next()) {
            (Some(party_id), None) => Ok(party_id),
            (Some(_), Some(_)) => Err(format!(
                "{text:?} starts more than one party id this session knows: type more of it"
            )),
            (None, _) => Err(format!(
                "{text:?} is not a party id this session knows (a full id is 8-4-4-4-12 hex digits; Tab completes known ones)"
            )),
        }
    }

    pub fn learn_from_reply(&mut self, reply: &Reply, entering: bool) {
        match reply {
            Reply::Party(party) if entering => self.entered(party),
            Reply::Party(party) => {
                self.saw_party(party.party_id);
                party
                    .members
                    .iter()
                    .for_each(|m| self.saw_user(&m.presence));
            }
            Reply::Joined(JoinOutcome::Joined(party)) => self.entered(party),
            Reply::Joined(JoinOutcome::Queued { party_id }) => self.saw_party(*party_id),
            Reply::Parties(parties) => {
                for party in parties {
                    self.saw_party(party.party_id);
                }
            }
            Reply::Requests { party_id, requests } => {
                self.saw_party(*party_id);
                requests.iter().for_each(|p| self.saw_user(p));
            }
            Reply::Online(statuses) => statuses.iter().for_each(|s| self.saw_user(&s.presence)),
            Reply::Invites(invites) => {
                for invite in invites {
                    self.saw_party(invite.party_id);
                    self.saw_user(&invite.inviter);
                }
            }
            Reply::JoinCode { party_id, .. } | Reply::Bans { party_id, .. } => {
                self.saw_party(*party_id)
            }
            Reply::Search(page) => page.parties.iter().for_each(|p| self.saw_party(p.party_id)),
            Reply::Blocked(user_ids) => user_ids.iter().for_each(|u| self.saw_user_id(u)),
            Reply::Done | Reply::Me(_) | Reply::Ticket(_) => {}
        }
    }

    pub fn learn_from_event(&mut self, event: &Event) {
        match event {
            Event::PartyJoined { party } => self.entered(party),
            Event::PartyUpdated { party } | Event::PartySynced { party } => {
                self.saw_party(party.party_id);
                party
                    .members
                    .iter()
                    .for_each(|m| self.saw_user(&m.presence));
            }
            Event::MemberJoined { party_id, member }
            | Event::MemberLeft {
                party_id, member, ..
            }
            | Event::LeaderChanged {
                party_id,
                leader: member,
            }
            | Event::MemberConnectionChanged {
                party_id, member, ..
            }
            | Event::JoinRequested {
                party_id,
                requester: member,
            }
            | Event::JoinRequestGone {
                party_id,
                requester: member,
                ..
            }
            | Event::InviteDeclined {
                party_id,
                by: member,
            }
            | Event::MemberAttributesChanged {
                party_id, member, ..
            } => {
                self.saw_party(*party_id);
                self.saw_user(member);
            }
            Event::JoinRequests { party_id, requests } => {
                self.saw_party(*party_id);
                requests.iter().for_each(|p| self.saw_user(p));
            }
            Event::BlocksChanged { user_ids } => user_ids.iter().for_each(|u| self.saw_user_id(u)),
            Event::ReadyCheckStarted { party_id, .. }
            | Event::ReadyCheckAnswered { party_id, .. }
            | Event::ReadyCheckEnded { party_id, .. } => self.saw_party(*party_id),
            Event::Invited(invite) => {
                self.saw_party(invite.party_id);
                self.saw_user(&invite.inviter);
            }
            Event::Data(data) => {
                self.saw_party(data.party_id);
                if !data.sender.user_id.is_empty() {
                    self.saw_user(&data.sender);
                }
            }
            Event::StatusOnline(status) | Event::StatusChanged(status) => {
                self.saw_user(&status.presence)
            }
            Event::StatusOffline { presence } => self.saw_user(presence),
            Event::Matched(found) => {
                for player in &found.players {
                    self.saw_user(&player.presence);
                    if let Some(party_id) = player.party_id {
                        self.saw_party(party_id);
                    }
                }
            }
            Event::TicketStarted {
                party_id: Some(party_id),
                ..
            } => self.saw_party(*party_id),
            Event::JoinRejected { party_id, .. }
            | Event::Kicked { party_id }
            | Event::PartyClosed { party_id }
            | Event::DataRefused { party_id, .. }
            | Event::PartyLost { party_id }
            | Event::InviteGone { party_id, .. }
            | Event::PartyStateChanged { party_id, .. }
            | Event::JoinCodeChanged { party_id, .. }
            | Event::ListingChanged { party_id, .. }
            | Event::Banned { party_id, .. } => self.saw_party(*party_id),
            Event::TicketStarted { party_id: None, .. }
            | Event::TicketCancelled { .. }
            | Event::Reconnecting { .. }
            | Event::Resumed
            | Event::SessionLost { .. }
            | Event::Disconnected { .. }
            | Event::ProtocolError { .. } => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_party_is_named_in_full_by_dot_or_by_a_unique_prefix() {
        let mut known = Known::default();
        assert!(known.resolve_party(".").unwrap_err().contains("none yet"));
        let a = PartyId::from_u128(0xaaaa_0000_0000_0000_0000_0000_0000_0001);
        let b = PartyId::from_u128(0xaaab_0000_0000_0000_0000_0000_0000_0002);
        known.saw_party(a);
        known.saw_party(b);
        known.current = Some(a);
        assert_eq!(known.resolve_party(".").unwrap(), a);
        assert_eq!(known.resolve_party(&b.to_string()).unwrap(), b);
        assert_eq!(known.resolve_party("AAAB").unwrap(), b);
        assert!(known
            .resolve_party("aaa")
            .unwrap_err()
            .contains("more than one"));
        assert!(known
            .resolve_party("ff")
            .unwrap_err()
            .contains("not a party id"));
        assert!(known.resolve_party("").is_err());
        // A full id this session never saw is still an id.
        let unseen = PartyId::from_u128(7);
        assert_eq!(known.resolve_party(&unseen.to_string()).unwrap(), unseen);
        assert_eq!(known.party_ids().collect::<Vec<_>>(), vec![b, a]);
    }

    #[test]
    fn user_ids_tab_would_print_raw_are_not_offered() {
        let mut known = Known::default();
        for user_id in ["ana", "Zoë", "mal\u{202e}lory", "x\u{1b}[2J", "y\u{9b}"] {
            known.saw_user_id(user_id);
        }
        assert_eq!(known.user_ids().collect::<Vec<_>>(), ["Zoë", "ana"]);
    }
}
