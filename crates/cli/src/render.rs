//! Replies and events as lines for a person. Colour wraps whole lines only,
//! so the words stay searchable (and copyable) either way. Every string that
//! came over the network goes through [`shown`] or [`quoted`] here (and
//! every time through `time_ms`): only this module's own words, ids and
//! numbers reach the terminal as they are.

use crate::commands::{Failure, Reply};
use crate::shown::{quoted, shown, time_ms, time_s, unix_now_ms};
use partyline_client::protocol::ReadyCheckOutcome;
use partyline_client::{
    ClientError, ConnectionQuality, Event, InvitePolicy, JoinOutcome, KeyValues, LeaderPolicy,
    LeaveReason, Party, PartyId, Presence, SessionId,
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
        shown(&presence.user_id).to_string()
    } else {
        format!(
            "{} ({})",
            shown(&presence.username),
            shown(&presence.user_id)
        )
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
        .map(|(key, value)| format!("{}={}", shown(key), shown(value)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn online(presence: &Presence, status: &str) -> String {
    if status.is_empty() {
        format!("{} is online", name(presence))
    } else {
        format!("{} is online: {}", name(presence), shown(status))
    }
}

pub fn party(party: &Party, style: &Style) -> String {
    let policy = match party.invite_policy {
        InvitePolicy::Leader => "leader invites",
        InvitePolicy::AnyMember => "any member invites",
    };
    // Only the rule that is not the default is named.
    let next = match party.leader_policy {
        LeaderPolicy::Tenure => "",
        LeaderPolicy::ConnectionQuality => ", best connection leads next",
    };
    let mut text = format!(
        "party {} ({}, {}/{} seats, {policy}{next}{})",
        party.party_id,
        if party.open { "open" } else { "closed" },
        party.members.len(),
        party.max_size,
        if party.label.is_empty() {
            String::new()
        } else {
            format!(", label {}", quoted(&party.label))
        },
    );
    if !party.join_code.is_empty() {
        text.push_str(&format!("\n  join code {}", shown(&party.join_code)));
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
        // A good (or not yet measured) connection needs no word.
        match member.quality {
            ConnectionQuality::Fair => notes.push("fair connection".to_string()),
            ConnectionQuality::Poor => notes.push("poor connection".to_string()),
            ConnectionQuality::Good | ConnectionQuality::Unknown => {}
        }
        if !member.attributes.is_empty() {
            notes.push(pairs(&member.attributes));
        }
        if let Some(mute) = party.mute_of(&member.presence.user_id) {
            notes.push(muted(mute));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", notes.join(", "))
        };
        text.push_str(&format!("\n  - {}{notes}", name(&member.presence)));
    }
    if let Some(check) = &party.ready_check {
        text.push_str(&format!("\n  {}", ready_check(check)));
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
                    "{} invites you to {} ({}/{}, label {})",
                    name(&invite.inviter),
                    invite.party_id,
                    invite.members,
                    invite.max_size,
                    quoted(&invite.label)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Reply::JoinCode { party_id, code } => format!(
            "join code for {}: {code} (others type: join_by_code {code})",
            short(party_id),
            code = shown(code)
        ),
        Reply::Search(page) => {
            let mut lines: Vec<String> = page
                .parties
                .iter()
                .map(|listed| {
                    format!(
                        "{} {}/{} {} {} {}",
                        listed.party_id,
                        listed.members,
                        listed.max_size,
                        if listed.open { "open" } else { "closed" },
                        quoted(&listed.label),
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
                0 => format!("{} banned for the party's life", shown(&ban.user_id)),
                until => format!(
                    "{} banned until {}",
                    shown(&ban.user_id),
                    time_ms(until, unix_now_ms())
                ),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Reply::Ticket(ticket_id) => format!("ticket {ticket_id} is waiting for a match"),
        Reply::Blocked(user_ids) => format!("you block: {}", blocked(user_ids)),
    }
}

pub fn failure(failure: &Failure, style: &Style) -> String {
    let text = match failure {
        // Said by this client about a line typed here (its own newlines
        // included), not by anyone else.
        Failure::BadInput(message) => message.clone(),
        Failure::Client(ClientError::Refused(body)) => {
            format!("{}: {}", body.code, shown(&body.message))
        }
        Failure::Client(error) => shown(&error.to_string()).to_string(),
    };
    style.error(text)
}

fn data_text(data: &[u8]) -> String {
    match std::str::from_utf8(data) {
        Ok(text) => shown(text).to_string(),
        Err(_) => {
            use base64::Engine as _;
            format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(data)
            )
        }
    }
}

/// A running ready check: its message, and the tally so far.
fn ready_check(check: &partyline_client::protocol::ReadyCheck) -> String {
    format!(
        "ready check {}{}: ready {} / not ready {} / no answer {}",
        check.check_id,
        if check.message.is_empty() {
            String::new()
        } else {
            format!(" {}", quoted(&check.message))
        },
        names_or_none(&check.ready),
        names_or_none(&check.not_ready),
        names_or_none(&check.no_answer),
    )
}

/// How a member is muted: all of it, or its op codes.
fn muted(mute: &partyline_client::Muted) -> String {
    match mute.op_codes {
        None => "muted".into(),
        Some(range) if range.min == range.max => format!("muted op {}", range.min),
        Some(range) => format!("muted ops {}..{}", range.min, range.max),
    }
}

/// A block list as a line: the user ids, quoted where they need it.
pub fn blocked(user_ids: &[String]) -> String {
    if user_ids.is_empty() {
        return "nobody".into();
    }
    let shown: Vec<String> = user_ids.iter().map(|u| shown(u).to_string()).collect();
    shown.join(", ")
}

fn names_or_none(who: &[partyline_client::Presence]) -> String {
    if who.is_empty() {
        "-".into()
    } else {
        names(who)
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
                shown(&requester.user_id),
                short(party_id),
                shown(&requester.user_id)
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
                shown(&error.message)
            ),
        ),
        Event::Reconnecting { reason } => (
            MAGENTA,
            format!(
                "connection lost ({}); reconnecting...",
                shown(&reason.to_string())
            ),
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
        Event::Disconnected { reason } => (
            MAGENTA,
            format!("disconnected: {}", shown(&reason.to_string())),
        ),
        Event::ProtocolError { message } => (RED, format!("protocol error: {}", shown(message))),
        Event::StatusOnline(status) => (CYAN, online(&status.presence, &status.status)),
        Event::StatusChanged(status) => (
            CYAN,
            format!(
                "{} status: {}",
                name(&status.presence),
                shown(&status.status)
            ),
        ),
        Event::StatusOffline { presence } => (CYAN, format!("{} went offline", name(presence))),
        Event::Invited(invite) => (
            YELLOW,
            format!(
                "{} invites you to {} ({}/{}, label {}): join {} / decline {}",
                name(&invite.inviter),
                invite.party_id,
                invite.members,
                invite.max_size,
                quoted(&invite.label),
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
            (CYAN, format!("{} join code: {}", at(party_id), shown(code)))
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
                "match {} for ticket {}: {}\n  token {} (valid until {})",
                uuid::Uuid::from_bytes(found.match_id),
                found.ticket_id,
                found
                    .players
                    .iter()
                    .map(|player| name(&player.presence))
                    .collect::<Vec<_>>()
                    .join(", "),
                shown(&found.token),
                time_s(found.token_expires_at, unix_now_ms())
            ),
        ),
        Event::ReadyCheckStarted { party_id, check } => (
            YELLOW,
            format!(
                "{} {} started a {} s {}: answer with ready {} / ready {} ready=false",
                at(party_id),
                name(&check.started_by),
                check.timeout_ms / 1000,
                ready_check(check),
                short(party_id),
                short(party_id)
            ),
        ),
        Event::ReadyCheckAnswered {
            party_id,
            member,
            ready,
            ..
        } => (
            CYAN,
            format!(
                "{} {} is {}",
                at(party_id),
                name(member),
                if *ready { "ready" } else { "not ready" }
            ),
        ),
        Event::ReadyCheckEnded {
            party_id,
            check_id,
            outcome,
            ready,
            not_ready,
            no_answer,
        } => (
            YELLOW,
            format!(
                "{} ready check {check_id} ended ({}): ready {} / not ready {} / no answer {}",
                at(party_id),
                match outcome {
                    ReadyCheckOutcome::AllReady => "all ready",
                    ReadyCheckOutcome::TimedOut => "timed out",
                    ReadyCheckOutcome::Cancelled => "cancelled",
                },
                names_or_none(ready),
                names_or_none(not_ready),
                names_or_none(no_answer)
            ),
        ),
        Event::Banned { party_id, until_ms } => (
            RED,
            match until_ms {
                0 => format!("{} you are banned for the party's life", at(party_id)),
                until => format!(
                    "{} you are banned until {}",
                    at(party_id),
                    time_ms(*until, unix_now_ms())
                ),
            },
        ),
        Event::BlocksChanged { user_ids } => (
            YELLOW,
            format!("the game set your block list: {}", blocked(user_ids)),
        ),
    };
    style.paint(colour, text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::shown::needs_escape;
    use partyline_client::protocol::{
        ErrorBody, ErrorCode, InviteGoneReason, ListedParty, MatchFound, MatchedPlayer, PartyBan,
        PartyInvite, RejectReason, RequestGoneReason, TicketCancelReason, UserStatus,
    };
    use partyline_client::{DisconnectReason, PartyData, SearchPage};
    use std::sync::Arc;

    /// A line forged to look like another player's message, a title set,
    /// CSI as a C1 control, a bidi override and a line separator.
    const HOSTILE: &str =
        "gg\n[3cc69d5d] ana op 0: forged\r\x1b]0;pwned\x07\u{9b}2J\u{202e}\u{2028}";

    /// Nothing of HOSTILE reaches the screen raw: no control, bidi or
    /// separator character but this module's own line breaks, and the
    /// forged message never starts a line of its own.
    fn assert_escaped(text: &str) {
        assert!(
            !text.chars().any(|c| c != '\n' && needs_escape(c)),
            "{text:?}"
        );
        assert!(
            !text.lines().any(|line| line.starts_with("[3cc69d5d] ana")),
            "{text:?}"
        );
    }

    fn hostile_presence() -> Presence {
        Presence {
            user_id: HOSTILE.into(),
            username: format!("{HOSTILE}!"),
            session_id: SessionId::from_u128(2),
        }
    }

    fn hostile_map() -> KeyValues {
        [(HOSTILE.to_string(), HOSTILE.to_string())].into()
    }

    #[test]
    fn every_event_and_reply_shows_other_players_strings_escaped() {
        let style = Style {
            colour: false,
            me: SessionId::from_u128(1),
        };
        let party_id = PartyId::from_u128(0xabcdef12 << 96);
        let who = hostile_presence;
        let status = || UserStatus {
            presence: who(),
            status: HOSTILE.into(),
        };
        let invite = PartyInvite {
            party_id,
            inviter: who(),
            leader: who(),
            members: 1,
            max_size: 4,
            open: false,
            label: HOSTILE.into(),
            expires_at_ms: 0,
        };
        let refusal = ErrorBody::new(ErrorCode::Unknown(99), HOSTILE);
        let closed = DisconnectReason::ClosedByServer {
            code: 9,
            reason: HOSTILE.into(),
        };
        let events = [
            Event::MemberJoined {
                party_id,
                member: who(),
            },
            Event::MemberLeft {
                party_id,
                member: who(),
                reason: LeaveReason::Kicked,
            },
            Event::LeaderChanged {
                party_id,
                leader: who(),
            },
            Event::MemberConnectionChanged {
                party_id,
                member: who(),
                connected: false,
            },
            Event::JoinRequested {
                party_id,
                requester: who(),
            },
            Event::JoinRequestGone {
                party_id,
                requester: who(),
                reason: RequestGoneReason::Expired,
            },
            Event::JoinRequests {
                party_id,
                requests: vec![who(), who()],
            },
            Event::JoinRejected {
                party_id,
                reason: RejectReason::Rejected,
            },
            Event::Data(PartyData {
                party_id,
                sender: Arc::new(who()),
                op_code: 0,
                data: partyline_client::Bytes::from_static(HOSTILE.as_bytes()),
                reliable: true,
            }),
            Event::DataRefused {
                party_id,
                op_code: 1,
                error: refusal.clone(),
            },
            Event::Reconnecting {
                reason: closed.clone(),
            },
            Event::Disconnected {
                reason: closed.clone(),
            },
            Event::ProtocolError {
                message: HOSTILE.into(),
            },
            Event::StatusOnline(status()),
            Event::StatusChanged(status()),
            Event::StatusOffline { presence: who() },
            Event::Invited(invite.clone()),
            Event::InviteGone {
                party_id,
                reason: InviteGoneReason::Revoked,
            },
            Event::InviteDeclined {
                party_id,
                by: who(),
            },
            Event::PartyStateChanged {
                party_id,
                state: hostile_map(),
            },
            Event::MemberAttributesChanged {
                party_id,
                member: who(),
                attributes: hostile_map(),
            },
            Event::JoinCodeChanged {
                party_id,
                code: HOSTILE.into(),
            },
            Event::ListingChanged {
                party_id,
                listed: true,
                properties: hostile_map(),
            },
            Event::TicketCancelled {
                ticket_id: 3,
                reason: TicketCancelReason::PartyClosed,
            },
            Event::Matched(MatchFound {
                match_id: [7; 16],
                ticket_id: 3,
                players: vec![MatchedPlayer {
                    presence: who(),
                    party_id: Some(party_id),
                    strings: hostile_map(),
                    numbers: Default::default(),
                }],
                token: HOSTILE.into(),
                token_expires_at: u64::MAX,
            }),
            Event::Banned {
                party_id,
                until_ms: u64::MAX,
            },
        ];
        for each in &events {
            assert_escaped(&event(each, &style));
        }

        let replies = [
            Reply::Requests {
                party_id,
                requests: vec![who()],
            },
            Reply::Online(vec![status(), status()]),
            Reply::Invites(vec![invite]),
            Reply::JoinCode {
                party_id,
                code: HOSTILE.into(),
            },
            Reply::Search(SearchPage {
                parties: vec![ListedParty {
                    party_id,
                    members: 1,
                    max_size: 4,
                    open: true,
                    label: HOSTILE.into(),
                    properties: hostile_map(),
                }],
                next_cursor: 0,
            }),
            Reply::Bans {
                party_id,
                bans: vec![
                    PartyBan {
                        user_id: HOSTILE.into(),
                        until_ms: 0,
                    },
                    PartyBan {
                        user_id: HOSTILE.into(),
                        until_ms: 1,
                    },
                ],
            },
        ];
        for each in &replies {
            assert_escaped(&reply(each, &style));
        }
        for error in [
            ClientError::Refused(refusal),
            ClientError::Closed(closed),
            ClientError::Protocol(HOSTILE.into()),
        ] {
            assert_escaped(&failure(&Failure::Client(error), &style));
        }
    }

    #[test]
    fn times_are_shown_as_dates_not_unix_numbers() {
        let style = Style {
            colour: false,
            me: SessionId::from_u128(1),
        };
        let party_id = PartyId::from_u128(0xabcdef12 << 96);
        let banned = event(
            &Event::Banned {
                party_id,
                until_ms: 4_102_444_799_000,
            },
            &style,
        );
        assert!(
            banned.starts_with("[abcdef12] you are banned until 2099-12-31 23:59:59 UTC (in "),
            "{banned}"
        );
        let bans = reply(
            &Reply::Bans {
                party_id,
                bans: vec![PartyBan {
                    user_id: "carl".into(),
                    until_ms: 1_000,
                }],
            },
            &style,
        );
        assert!(
            bans.starts_with("carl banned until 1970-01-01 00:00:01 UTC (")
                && bans.ends_with(" ago)"),
            "{bans}"
        );
    }

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
