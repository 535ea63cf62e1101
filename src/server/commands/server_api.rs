//! The server-side API's work on what this node holds: its sessions, and
//! the parties homed here. `ServerApi` (above) decides which node does it;
//! this node does it here in the same way whether the API was called on
//! this node or another node asked (`Question::Api`), so a kick, a close
//! or a disconnect has the same effects and events wherever it came from.

use super::{check_reliable_size, deliver};
use crate::party::{Effects, Link, Party, PartyError, PartySettings, Seat};
use crate::protocol::{
    CloseCode, ErrorBody, Event, KeyValues, LeaveReason, PartyId, PartySnapshot, Presence,
    SessionId,
};
use crate::server::grace;
use crate::server::hook_events::AfterEvent;
use crate::server::peers::{ApiAnswer, ApiQuestion, NodeId, Page, Refusal, SessionFacts};
use crate::server::session::SessionRef;
use crate::server::state::Shared;
use bytes::Bytes;
use serde::Serialize;
use std::time::Instant;

/// The most one node's page of a list may take (encoded) when another
/// node asked: well within one NATS message (1 MiB by default); the
/// asker asks again for the rest.
pub(crate) const PAGE_BUDGET: usize = 256 * 1024;

/// Who the server is when it sends into a party: a nil session id and an
/// empty user id, which no client can have (PROTOCOL.md §4, `Data`).
pub fn server_presence() -> Presence {
    Presence {
        user_id: String::new(),
        username: String::new(),
        session_id: SessionId::nil(),
    }
}

/// This node's answer to another node's question for the server-side API.
pub(crate) fn answer(shared: &Shared, question: ApiQuestion) -> ApiAnswer {
    match question {
        ApiQuestion::Sessions {
            user_id,
            after,
            limit,
        } => ApiAnswer::Sessions(sessions_page(
            shared,
            user_id.as_deref(),
            after.as_ref(),
            limit as usize,
            PAGE_BUDGET,
        )),
        ApiQuestion::Find(ids) => ApiAnswer::Found(find(shared, &ids)),
        ApiQuestion::PartiesLedBy(user_id) => ApiAnswer::PartyIds(parties_led_by(shared, &user_id)),
        ApiQuestion::Parties {
            label,
            after,
            limit,
        } => ApiAnswer::Parties(parties_page(
            shared,
            &label,
            after.as_ref(),
            limit as usize,
            PAGE_BUDGET,
        )),
        ApiQuestion::Party(party_id) => ApiAnswer::Party(party(shared, party_id).map(Box::new)),
        ApiQuestion::Kick { party_id, user_id } => done(kick(shared, party_id, &user_id)),
        ApiQuestion::Close(party_id) => done(close(shared, party_id)),
        ApiQuestion::Send {
            party_id,
            op_code,
            data,
        } => done(send(shared, party_id, op_code, &data)),
        ApiQuestion::Disconnect { session, reason } => {
            ApiAnswer::Disconnected(disconnect(shared, session, &reason))
        }
        ApiQuestion::Seat {
            party_id,
            member,
            node,
        } => ApiAnswer::Done(seat(shared, party_id, member, node)),
        ApiQuestion::Leave { party_id, session } => done(leave(shared, party_id, session)),
        ApiQuestion::SetBlocks { user_id, user_ids } => {
            let set = set_blocks(shared, &user_id, &user_ids);
            ApiAnswer::BlocksSet(u32::try_from(set).unwrap_or(u32::MAX))
        }
        ApiQuestion::Create {
            members,
            settings,
            state,
        } => ApiAnswer::Created(create(shared, &members, settings.into(), state).map(Box::new)),
    }
}

/// Gives every live session of `user_id` on this node the block list
/// `user_ids` (checked by the API): each hears `BlocksChanged`. How many.
pub(crate) fn set_blocks(shared: &Shared, user_id: &str, user_ids: &[String]) -> usize {
    let sessions = shared.users.sessions_of(user_id);
    for session in &sessions {
        let list = user_ids.iter().cloned().collect();
        super::quiet::set_blocks(shared, session, list, super::BlocksBy::Server);
    }
    sessions.len()
}

fn done(result: Result<(), ErrorBody>) -> ApiAnswer {
    ApiAnswer::Done(result.map_err(Refusal::Rule))
}

/// A live session of this node, described.
pub(crate) fn facts(shared: &Shared, session: &SessionRef) -> SessionFacts {
    let mut parties = session.party_ids();
    parties.sort();
    SessionFacts {
        presence: session.presence.clone(),
        connected: session.is_connected(),
        remote: session.remote_address(),
        parties,
        node: shared.route().me,
        quality_score: session
            .is_connected()
            .then(|| session.quality.score())
            .flatten(),
    }
}

/// Those of `ids` that are live sessions of this node.
pub(crate) fn find(shared: &Shared, ids: &[SessionId]) -> Vec<SessionFacts> {
    shared
        .find_sessions(ids)
        .iter()
        .map(|session| facts(shared, session))
        .collect()
}

/// The first of `items` (in the list's order) after which `limit` or
/// `budget` encoded bytes are reached; always one at least, when any.
fn page<T: Serialize>(
    items: impl Iterator<Item = T>,
    limit: usize,
    budget: usize,
    matched: usize,
    alive: usize,
) -> Page<T> {
    let (mut taken, mut used, mut more) = (Vec::new(), 0, false);
    for item in items {
        let size = postcard::experimental::serialized_size(&item).unwrap_or(usize::MAX / 2);
        if taken.len() >= limit || (!taken.is_empty() && used + size > budget) {
            more = true;
            break;
        }
        used += size;
        taken.push(item);
    }
    Page {
        items: taken,
        more,
        matched: matched as u64,
        alive: alive as u64,
    }
}

/// The live sessions here (one user's, or everyone's) in (user id,
/// session id) order after `after`: at most `limit`, within `budget`.
pub(crate) fn sessions_page(
    shared: &Shared,
    user_id: Option<&str>,
    after: Option<&(String, SessionId)>,
    limit: usize,
    budget: usize,
) -> Page<SessionFacts> {
    let mut sessions = match user_id {
        Some(user_id) => shared.users.sessions_of(user_id),
        None => shared.all_sessions(),
    };
    let matched = sessions.len();
    fn key(session: &SessionRef) -> (&str, SessionId) {
        (session.presence.user_id.as_str(), session.session_id())
    }
    sessions.sort_by(|a, b| key(a).cmp(&key(b)));
    let first = match after {
        Some((user_id, id)) => sessions.partition_point(|s| key(s) <= (user_id.as_str(), *id)),
        None => 0,
    };
    let items = sessions[first..]
        .iter()
        .map(|session| facts(shared, session));
    page(items, limit, budget, matched, shared.session_count())
}

/// The parties homed here whose label contains `label`, in (label, party
/// id) order after `after`: at most `limit`, within `budget`. Every
/// matching party is looked at (this is an operator's list, not a
/// player's search).
pub(crate) fn parties_page(
    shared: &Shared,
    label: &str,
    after: Option<&(String, PartyId)>,
    limit: usize,
    budget: usize,
) -> Page<PartySnapshot> {
    let mut matched = 0;
    let mut keys: Vec<(String, PartyId)> = shared.table.collect(usize::MAX, |party| {
        let own = &party.settings().label;
        if !own.contains(label) {
            return None;
        }
        matched += 1;
        let later = after.is_none_or(|(label, id)| (own.as_str(), party.id()) > (label, *id));
        later.then(|| (own.clone(), party.id()))
    });
    keys.sort_unstable();
    // A party that closed since it was seen is left out.
    let items = keys.iter().filter_map(|(_, party_id)| {
        shared
            .table
            .read(*party_id, |party| Ok(party.snapshot()))
            .ok()
    });
    page(items, limit, budget, matched, shared.table.len())
}

/// The parties homed here that `user_id` leads through a session of this
/// node or of another (a proxy).
pub(crate) fn parties_led_by(shared: &Shared, user_id: &str) -> Vec<PartyId> {
    let route = shared.route();
    let mut members = shared.users.sessions_of(user_id);
    members.extend(route.proxies_of(user_id));
    let mut led = Vec::new();
    for member in members {
        let me = member.session_id();
        for party_id in member.party_ids() {
            if !route.is_here(party_id) {
                continue;
            }
            let leads = shared.table.read(party_id, |party| {
                Ok(party
                    .leader()
                    .is_some_and(|seat| seat.presence.session_id == me))
            });
            if leads == Ok(true) {
                led.push(party_id);
            }
        }
    }
    led.sort();
    led.dedup();
    led
}

/// A party homed here and its waiting join requests, oldest first.
pub(crate) fn party(
    shared: &Shared,
    party_id: PartyId,
) -> Result<(PartySnapshot, Vec<Presence>), ErrorBody> {
    let read = shared.table.read(party_id, |party| {
        let requests = party.requests().map(|r| r.presence.clone()).collect();
        Ok((party.snapshot(), requests))
    });
    read.map_err(ErrorBody::from)
}

/// The server takes `user_id`'s seat (the leader's too): it hears `Kicked`.
pub(crate) fn kick(shared: &Shared, party_id: PartyId, user_id: &str) -> Result<(), ErrorBody> {
    apply(shared, party_id, |party| party.kick_by_server(user_id))
}

/// The server ends a party: members hear `Closed`, requesters
/// `PartyClosed`.
pub(crate) fn close(shared: &Shared, party_id: PartyId) -> Result<(), ErrorBody> {
    apply(shared, party_id, |party| {
        let leader = party
            .leader()
            .map(|seat| seat.presence.session_id)
            .ok_or(PartyError::PartyNotFound)?;
        party.close(leader)
    })
}

/// Reliable data from the server (`sender`) to every connected member.
pub(crate) fn send(
    shared: &Shared,
    party_id: PartyId,
    op_code: i64,
    data: &Bytes,
) -> Result<(), ErrorBody> {
    check_reliable_size(shared, data)?;
    let recipients: Vec<SessionRef> = shared.table.read(party_id, |party| {
        Ok(party
            .members()
            .iter()
            .filter(|seat| seat.connected)
            .map(|seat| seat.link.clone())
            .collect())
    })?;
    shared
        .route()
        .send_data(recipients, party_id, &server_presence(), op_code, data);
    Ok(())
}

/// Ends a session of this node now: its connection closes with
/// `Disconnected` (close code 9), there is no grace window, and it leaves
/// every party as a session that ended does. False when no session of
/// this node has that id.
pub(crate) fn disconnect(shared: &Shared, id: SessionId, reason: &str) -> bool {
    let Some(session) = shared.find_session(id) else {
        return false;
    };
    tracing::info!(session = %id, reason, "session disconnected by the server");
    // Marked before the close, as a rule-breaker's cut is: the connection's
    // task, woken by the close on another thread, then ends the session
    // outright instead of holding its seats for a resume that must not
    // come.
    session
        .cut_for_violation
        .store(true, std::sync::atomic::Ordering::Release);
    session.close(CloseCode::Disconnected, reason);
    if session.end_now() {
        grace::finish(shared, &session);
    }
    true
}

/// Creates a party homed here for `members` (each with its node): the
/// first, a session of this node, leads; the others are seated in order,
/// whatever `settings.open` says. Each hears `Accepted` with the party as
/// it was when it was seated, then the joins after it. The caller checked
/// the size, the users and each session's room.
pub(crate) fn create(
    shared: &Shared,
    members: &[(Presence, NodeId)],
    settings: PartySettings,
    state: KeyValues,
) -> Result<PartySnapshot, Refusal> {
    let Some((leader, _)) = members.first() else {
        let why = "a party needs at least one session";
        return Err(ErrorBody::new(crate::protocol::ErrorCode::InvalidArgument, why).into());
    };
    let link = shared
        .find_session(leader.session_id)
        .ok_or(Refusal::SessionNotFound(leader.session_id))?;
    let party_id = shared.new_party_id();
    let leader_seat = Seat::new(link.presence.clone(), link.clone());
    let snapshot = shared
        .table
        .create(party_id, leader_seat, settings, state)?;
    link.push_event(Event::Accepted(snapshot));
    if let Some(hooks) = &shared.hooks {
        hooks.tell(AfterEvent::PartyCreated {
            party_id,
            leader: leader.clone(),
        });
    }
    tracing::info!(party = %party_id, leader = %leader.session_id, members = members.len(), "party created by the server");
    for (member, node) in &members[1..] {
        seat(shared, party_id, member.clone(), *node)?;
    }
    Ok(party(shared, party_id)?.0)
}

/// Seats `member`, a session of `node`, in a party homed here, open or
/// closed, without an invite; the size limit, bans and one seat per user
/// still hold. A member of another node is seated as its proxy, which
/// tells its node (as a forwarded join does).
pub(crate) fn seat(
    shared: &Shared,
    party_id: PartyId,
    member: Presence,
    node: NodeId,
) -> Result<(), Refusal> {
    let route = shared.route();
    if node != route.me {
        return route.with_proxy(member, node, |proxy| seat_link(shared, party_id, proxy));
    }
    let session = shared
        .find_session(member.session_id)
        .ok_or(Refusal::SessionNotFound(member.session_id))?;
    seat_link(shared, party_id, &session)
}

fn seat_link(shared: &Shared, party_id: PartyId, link: &SessionRef) -> Result<(), Refusal> {
    let now = Instant::now();
    shared.table.apply(
        party_id,
        |party| {
            let seated = party.seat_by_server(link.presence.clone(), link.clone(), now)?;
            Link::attach(link, party_id);
            Ok(seated)
        },
        |_, effects| deliver(shared, effects),
    )?;
    Ok(())
}

/// Takes a session's seat in a party homed here, as if it had left.
pub(crate) fn leave(
    shared: &Shared,
    party_id: PartyId,
    session: SessionId,
) -> Result<(), ErrorBody> {
    apply(shared, party_id, |party| {
        if !party.is_member(session) {
            return Err(PartyError::NotMember);
        }
        party.leave(session, LeaveReason::Left)
    })
}

fn apply(
    shared: &Shared,
    party_id: PartyId,
    op: impl FnOnce(&mut Party<SessionRef>) -> Result<Effects<SessionRef>, PartyError>,
) -> Result<(), ErrorBody> {
    shared.table.apply(
        party_id,
        |party| op(party).map(|effects| ((), effects)),
        |_, effects| deliver(shared, effects),
    )?;
    Ok(())
}
