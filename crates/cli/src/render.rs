//! Replies and events as lines for a person. Colour wraps whole lines only,
//! so the words stay searchable (and copyable) either way.

use crate::commands::{Failure, Reply};
use partyline_client::{
    ClientError, Event, InvitePolicy, JoinOutcome, KeyValues, LeaveReason, Party, PartyId,
    Presence, SessionId,
};

const RED: &str = "31";
const GREEN: &str = "32";
const YELLOW: &str = "33";
const MAGENTA: &str = "35";
const CYAN: &str = "36";

#[derive(Clone, Copy)]
pub struct Style {
    pub colour: bool,
    /// This session, to say "you" instead of a name.
    pub me: SessionId,
}

impl Style {
    fn paint(&self, colour: &str, text: String) -> String {
        if self.colour {
            // Each line on its own: a wrapped line keeps its colour.
            text.lines()
                .map(|line| format!("\x1b[{colour}m{line}\x1b[0m"))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            text
        }
    }

    pub fn error(&self, text: String) -> String {
        self.paint(RED, text)
    }
}

/// "Ana (ana)", or just "ana" when the two are the same.
fn name(presence: &Presence) -> String {
    if presence.username == presence.user_id || presence.username.is_empty() {
        presence.user_id.clone()
    } else {
        format!("{} ({})", presence.username, presence.user_id)
    }
}

fn names(list: &[Presence]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.iter().map(name).collect::<Vec<_>>().join(", ")
    }
}

/// The first 8 hex digits: typed back, `Known` resolves them.
fn short(party_id: &PartyId) -> String {
    party_id.to_string().chars().take(8).collect()
}

fn pairs(map: &KeyValues) -> String {
    map.iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn online(presence: &Presence, status: &str) -> String {
    if status.is_empty() {
        format!("{} is online", name(presence))
    } else {
        format!("{} is online: {status}", name(presence))
    }
}

pub fn party(party: &Party, style: &Style) -> String {
    let policy = match party.invite_policy {
        InvitePolicy::Leader => "leader invites",
        InvitePolicy::AnyMember => "any member invites",
    };
    let mut text = format!(
        "party {} ({}, {}/{} seats, {policy}{})",
        party.party_id,
        if party.open { "open" } else { "closed" },
        party.members.len(),
        party.max_size,
        if party.label.is_empty() {
            String::new()
        } else {
            format!(", label {:?}", party.label)
        },
    );
    if !party.join_code.is_empty() {
        text.push_str(&format!("\n  join code {}", party.join_code));
    }
    if party.listed {
        text.push_str(&format!("\n  listed: {}", pairs(&party.properties)));
    }
    if !party.state.is_empty() {
        text.push_str(&format!("\n  state: {}", pairs(&party.state)));
    }
    for member in &party.members {
        let mut notes = Vec::new();
        if member.presence.session_id == party.leader.session_id {
            notes.push("leader".to_string());
        }
        if member.presence.session_id == style.me {
            notes.push("you".to_string());
        }
        if !member.connected {
            notes.push("away".to_string());
        }
        if !member.attributes.is_empty() {
            notes.push(pairs(&member.attributes));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        text.push_str(&format!("\n  - {}{notes}", name(&member.presence)));
    }
    if !party.join_requests.is_empty() {
        text.push_str(&format!(
            "\n  waiting to join: {}",
            names(&party.join_requests)
        ));
    }
    text
}

pub fn reply(reply: &Reply, style: &Style) -> String {
    match reply {
        Reply::Done => style.paint(GREEN, "ok".into()),
        Reply::Me(welcome) => format!(
            "you are {}, session {}\nlimits: datagrams {} bytes, reliable data {} bytes, parties up to {} members",
            name(&welcome.presence),
            welcome.session_id,
            welcome.limits.max_datagram_data,
            welcome.limits.max_reliable_data,
            welcome.limits.max_party_size,
        ),
        Reply::Parties(parties) if parties.is_empty() => "you are in no party".into(),
        Reply::Parties(parties) => parties
            .iter()
            .map(|p| party(p, style))
            .collect::<Vec<_>>()
            .join("\n"),
        Reply::Party(p) => party(p, style),
        Reply::Joined(JoinOutcome::Joined(p)) => format!("joined {}", party(p, style)),
        Reply::Joined(JoinOutcome::Queued { party_id }) => {
            format!("asked to join {party_id}: waiting for the leader")
        }
        Reply::Requests { party_id, requests } => {
            format!("waiting to join {}: {}", short(party_id), names(requests))
        }
        Reply::Online(statuses) if statuses.is_empty() => "none of them is online".into(),
        Reply::Online(statuses) => statuses
            .iter()
            .map(|status| online(&status.presence, &status.status))
            .collect::<Vec<_>>()
            .join("\n"),
        Reply::Invites(invites) if invites.is_empty() => "no invites".into(),
        Reply::Invites(invites) => invites
            .iter()
            .map(|invite| {
                format!(
                    "{} invites you to {} ({}/{}, label {:?})",
                    name(&invite.inviter),
                    invite.party_id,
                    invite.members,
                    invite.max_size,
                    invite.label
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Reply::JoinCode { party_id, code } => format!(
            "join code for {}: {code} (others type: join_by_code {code})",
            short(party_id)
        ),
        Reply::Search(page) => {
            let mut lines: Vec<String> = page
                .parties
                .iter()
                .map(|listed| {
                    format!(
                        "{} {}/{} {} {:?} {}",
                        listed.party_id,
                        listed.members,
                        listed.max_size,
                        if listed.open { "open" } else { "closed" },
                        listed.label,
                        pairs(&listed.properties)
                    )
                })
                .collect();
            if lines.is_empty() {
                lines.push("no party found".into());
            }
            if page.next_cursor != 0 {
                lines.push(format!("more: search_parties cursor={}", page.next_cursor));
            }
            lines.join("\n")
        }
        Reply::Bans { party_id, bans } if bans.is_empty() => {
            format!("no bans in {}", short(party_id))
        }
        Reply::Bans { bans, .. } => bans
            .iter()
            .map(|ban| match ban.until_ms {
                0 => format!("{} banned for the party's life", ban.user_id),
                until => format!("{} banned until {until} (Unix ms)", ban.user_id),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Reply::Ticket(ticket_id) => format!("ticket {ticket_id} is waiting for a match"),
    }
}

pub fn failure(failure: &Failure, style: &Style) -> String {
    let text = match failure {
        Failure::BadInput(message) => message.clone(),
        Failure::Client(ClientError::Refused(body)) => format!("{}: {}", body.code, body.message),
        Failure::Client(error) => error.to_string(),
    };
    style.error(text)
}

fn data_text(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => text.to_string(),
        Err(_) => {
            use base64::Engine as _;
            format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(data)
            )
        }
    }
}

/// One event as a line (or a few), coloured by kind: data green, things to
/// act on yellow, the connection's ups and downs magenta, the rest cyan.
pub fn event(event: &Event, style: &Style) -> String {
    let at = |party_id: &PartyId| format!("[{}]", short(party_id));
    let (colour, text) = match event {
        Event::PartyJoined { party: p } => (
            CYAN,
            format!("{} you are in: {}", at(&p.party_id), party(p, style)),
        ),
        Event::MemberJoined { party_id, member } => {
            (CYAN, format!("{} {} joined", at(party_id), name(member)))
        }
        Event::MemberLeft {
            party_id,
            member,
            reason,
        } => {
            let how = match reason {
                LeaveReason::Left => "left",
                LeaveReason::Kicked => "was kicked",
                LeaveReason::SessionEnded => "left (session ended)",
                LeaveReason::Banned => "was banned",
            };
            (CYAN, format!("{} {} {how}", at(party_id), name(member)))
        }
        Event::LeaderChanged { party_id, leader } if leader.session_id == style.me => {
            (CYAN, format!("{} you lead the party now", at(party_id)))
        }
        Event::LeaderChanged { party_id, leader } => (
            CYAN,
            format!("{} {} leads the party now", at(party_id), name(leader)),
        ),
        Event::MemberConnectionChanged {
            party_id,
            member,
            connected,
        } => (
            CYAN,
            if *connected {
                format!("{} {} is back", at(party_id), name(member))
            } else {
                format!(
                    "{} {} lost the connection (seat held)",
                    at(party_id),
                    name(member)
                )
            },
        ),
        Event::JoinRequested {
            party_id,
            requester,
        } => (
            YELLOW,
            format!(
                "{} {} asks to join: accept {} {} / reject {} {}",
                at(party_id),
                name(requester),
                short(party_id),
                requester.user_id,
                short(party_id),
                requester.user_id
            ),
        ),
        Event::JoinRequestGone {
            party_id,
            requester,
            reason,
        } => (
            CYAN,
            format!(
                "{} {}'s join request is gone ({reason:?})",
                at(party_id),
                name(requester)
            ),
        ),
        Event::JoinRequests { party_id, requests } => (
            YELLOW,
            format!("{} waiting to join: {}", at(party_id), names(requests)),
        ),
        Event::JoinRejected { party_id, reason } => (
            CYAN,
            format!("{} your join request ended ({reason:?})", at(party_id)),
        ),
        Event::Kicked { party_id } => (CYAN, format!("{} you were kicked", at(party_id))),
        Event::PartyClosed { party_id } => (CYAN, format!("{} the party was closed", at(party_id))),
        Event::PartyUpdated { party: p } => (
            CYAN,
            format!("{} settings changed: {}", at(&p.party_id), party(p, style)),
        ),
        Event::Data(data) => (
            GREEN,
            format!(
                "{} {}{} op {}: {}",
                at(&data.party_id),
                if data.sender.user_id.is_empty() {
                    format!("session {}", data.sender.session_id)
                } else {
                    name(&data.sender)
                },
                if data.reliable { " (reliable)" } else { "" },
                data.op_code,
                data_text(&data.data)
            ),
        ),
        Event::DataRefused {
            party_id,
            op_code,
            error,
        } => (
            RED,
            format!(
                "{} your data (op {op_code}) was refused: {}: {}",
                at(party_id),
                error.code,
                error.message
            ),
        ),
        Event::Reconnecting { reason } => (
            MAGENTA,
            format!("connection lost ({reason}); reconnecting..."),
        ),
        Event::Resumed => (MAGENTA, "reconnected: same session, same seats".into()),
        Event::PartySynced { party: p } => (
            MAGENTA,
            format!("{} resynced: {}", at(&p.party_id), party(p, style)),
        ),
        Event::PartyLost { party_id } => (
            MAGENTA,
            format!("{} you are no longer in this party", at(party_id)),
        ),
        Event::SessionLost {
            lost_parties,
            new_session,
        } => (
            MAGENTA,
            format!(
                "the old session expired; new session {new_session}; parties lost: {}",
                lost_parties
                    .iter()
                    .map(short)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Event::Disconnected { reason } => (MAGENTA, format!("disconnected: {reason}")),
        Event::ProtocolError { message } => (RED, format!("protocol error: {message}")),
        Event::StatusOnline(status) => (CYAN, online(&status.presence, &status.status)),
        Event::StatusChanged(status) => (
            CYAN,
            format!("{} status: {}", name(&status.presence), status.status),
        ),
        Event::StatusOffline { presence } => (CYAN, format!("{} went offline", name(presence))),
        Event::Invited(invite) => (
            YELLOW,
            format!(
                "{} invites you to {} ({}/{}, label {:?}): join {} / decline {}",
                name(&invite.inviter),
                invite.party_id,
                invite.members,
                invite.max_size,
                invite.label,
                short(&invite.party_id),
                short(&invite.party_id)
            ),
        ),
        Event::InviteGone { party_id, reason } => (
            CYAN,
            format!("{} an invite is gone ({reason:?})", at(party_id)),
        ),
        Event::InviteDeclined { party_id, by } => (
            CYAN,
            format!("{} {} declined the invite", at(party_id), name(by)),
        ),
        Event::PartyStateChanged { party_id, state } => (
            CYAN,
            format!("{} party state: {}", at(party_id), pairs(state)),
        ),
        Event::MemberAttributesChanged {
            party_id,
            member,
            attributes,
        } => (
            CYAN,
            if member.session_id == style.me {
                format!("{} your attributes: {}", at(party_id), pairs(attributes))
            } else {
                format!(
                    "{} {}'s attributes: {}",
                    at(party_id),
                    name(member),
                    pairs(attributes)
                )
            },
        ),
        Event::JoinCodeChanged { party_id, code } if code.is_empty() => {
            (CYAN, format!("{} join code removed", at(party_id)))
        }
        Event::JoinCodeChanged { party_id, code } => {
            (CYAN, format!("{} join code: {code}", at(party_id)))
        }
        Event::ListingChanged {
            party_id,
            listed,
            properties,
        } => (
            CYAN,
            if *listed {
                format!("{} listed: {}", at(party_id), pairs(properties))
            } else {
                format!("{} unlisted", at(party_id))
            },
        ),
        Event::TicketStarted {
            ticket_id,
            party_id,
        } => (
            CYAN,
            format!(
                "ticket {ticket_id} waiting{}",
                party_id
                    .map(|id| format!(" for party {}", short(&id)))
                    .unwrap_or_default()
            ),
        ),
        Event::TicketCancelled { ticket_id, reason } => {
            (CYAN, format!("ticket {ticket_id} cancelled ({reason:?})"))
        }
        Event::Matched(found) => (
            YELLOW,
            format!(
                "match {} for ticket {}: {}\n  token {} (valid until {}, Unix s)",
                uuid::Uuid::from_bytes(found.match_id),
                found.ticket_id,
                found
                    .players
                    .iter()
                    .map(|player| name(&player.presence))
                    .collect::<Vec<_>>()
                    .join(", "),
                found.token,
                found.token_expires_at
            ),
        ),
        Event::Banned { party_id, until_ms } => (
            RED,
            match until_ms {
                0 => format!("{} you are banned for the party's life", at(party_id)),
                until => format!("{} you are banned until {until} (Unix ms)", at(party_id)),
            },
        ),
    };
    style.paint(colour, text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn colour_wraps_whole_lines_and_only_when_asked() {
        let bob = Presence {
            user_id: "bob".into(),
            username: "Bob".into(),
            session_id: SessionId::from_u128(2),
        };
        let party_id = PartyId::from_u128(0xabcdef12 << 96);
        let joined = Event::MemberJoined {
            party_id,
            member: bob,
        };
        let plain = Style {
            colour: false,
            me: SessionId::from_u128(1),
        };
        assert_eq!(event(&joined, &plain), "[abcdef12] Bob (bob) joined");
        let coloured = Style {
            colour: true,
            ..plain
        };
        assert_eq!(
            event(&joined, &coloured),
            "\x1b[36m[abcdef12] Bob (bob) joined\x1b[0m"
        );
    }
}
