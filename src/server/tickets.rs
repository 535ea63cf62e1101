//! Tickets where they meet parties and sessions: a matchmaking round and
//! what it tells the players, a party's ticket cleared when it ends, a
//! ticket pooled on the matcher from its home, and a pool that moves when
//! the matcher changes. Above the state:
//! `super::matchmaking` keeps the pool itself.

use super::matchmaking::TicketMeta;
use super::peers::{ControlMessage, NodeId};
use super::session::{lock, SessionRef};
use super::state::Shared;
use crate::auth::unix_now;
use crate::matchmaker::{mint_match_token, MatchClaims, MatchPlayer};
use crate::protocol::{
    ErrorBody, ErrorCode, Event, MatchFound, MatchedPlayer, MemberProperties, PartyId, Presence,
    SessionId, TicketRequest,
};
use std::time::{Duration, Instant};

/// The party may queue again: its ticket `ticket_id` ended (matched, or
/// cancelled outside the party's own rules). A newer ticket stays.
pub(crate) fn clear_party_ticket(shared: &Shared, party_id: PartyId, ticket_id: u64) {
    let _ = shared.table.apply(
        party_id,
        |party| {
            if party.matchmaking() == Some(ticket_id) {
                party.set_matchmaking(None);
            }
            Ok(((), crate::party::Effects::default()))
        },
        |_, _| {},
    );
}

fn player_of(
    ticket_meta: &TicketMeta,
    member: &SessionRef,
    own: &MemberProperties,
) -> MatchedPlayer {
    let mut strings = ticket_meta.strings.clone();
    strings.extend(own.strings.clone());
    let mut numbers = ticket_meta.numbers.clone();
    numbers.extend(own.numbers.clone());
    MatchedPlayer {
        presence: Presence::clone(&member.presence),
        party_id: ticket_meta.party_id,
        strings,
        numbers,
    }
}

/// A ticket for this node's pool, from its home or passed on by a node
/// that held it, with its members as (presence, node; none for the home's
/// own sessions). Not the matcher (any more): on to the one this node
/// knows (a lower tag each time, so it ends). The matcher pools it and
/// answers its home `Pooled`, or `PoolRefused` when a member is gone or
/// already in a ticket here; a ticket of this node's own waits here again.
pub(crate) fn pool_ticket(
    shared: &Shared,
    ticket_id: u64,
    request: TicketRequest,
    submitter: SessionId,
    members: Vec<(Presence, Option<u32>)>,
    waited: Duration,
) {
    let route = shared.route();
    let home = route.node_of_ticket(ticket_id);
    let matcher = route.matcher();
    if matcher != route.me {
        let waited_ms = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
        let message = ControlMessage::PoolTicket {
            ticket_id,
            request,
            submitter,
            members,
            waited_ms,
        };
        return route.outlet.control(matcher, &message);
    }
    if home == route.me {
        return shared.matchmaking.shadow_to_pool(ticket_id);
    }
    let members: Option<Vec<SessionRef>> = members
        .into_iter()
        .map(|(presence, node)| {
            route.member_at(presence, node.unwrap_or(home), |id| shared.find_session(id))
        })
        .collect();
    let pooled = match members {
        Some(members) => shared.matchmaking.insert_pooled(
            ticket_id,
            &request,
            submitter,
            members,
            (home, waited),
        ),
        // A member of this node left meanwhile: the home cancels.
        None => Err(ErrorBody::new(
            ErrorCode::MemberNotFound,
            "a member's session is gone",
        )),
    };
    let answer = match pooled {
        Ok(()) => ControlMessage::Pooled { ticket_id },
        Err(refusal) => {
            tracing::info!(ticket_id, %refusal, "a ticket could not join the pool");
            ControlMessage::PoolRefused { ticket_id }
        }
    };
    route.outlet.control(home, &answer);
}

/// Session `session` moved to another node (it resumed there; `new` is
/// how this node reaches it now): the ticket it waits in here follows it,
/// and so does the pool that holds that ticket when it is another node's
/// (`PoolRepoint`). `from`: the node it lived on (`None`: this one). The
/// node it moved to re-points its own pool itself, once the session is
/// there. The ticket's id, if it waits in one here.
pub(crate) fn member_moved(
    shared: &Shared,
    session: SessionId,
    from: Option<NodeId>,
    new: &SessionRef,
) -> Option<u64> {
    let route = shared.route();
    let (ticket_id, pooled_at) = shared.matchmaking.repoint(session, from, new)?;
    let to = new.remote_node().unwrap_or(route.me);
    if let Some(pool) = pooled_at.filter(|pool| *pool != to) {
        let repoint = ControlMessage::PoolRepoint {
            ticket_id,
            session,
            from: from.unwrap_or(route.me),
            to,
        };
        route.outlet.control(pool, &repoint);
    }
    Some(ticket_id)
}

/// On the node a session is handed over from: the tickets it waits in
/// (the one here follows it through `new`, its proxy on the new node; the
/// others it noted, homed elsewhere), for the new node to note.
pub(crate) fn moved_away(shared: &Shared, session: &SessionRef, new: &SessionRef) -> Vec<u64> {
    let here = member_moved(shared, session.session_id(), None, new);
    let abroad = lock(&session.abroad);
    let elsewhere = abroad
        .iter()
        .flat_map(|state| state.tickets.iter().copied());
    here.into_iter().chain(elsewhere).collect()
}

/// On the node a session resumed on, once it is there: the tickets it
/// waits in (`tickets`, as its old node `old_node` knew them) are noted
/// (`NodeLost` if their node is lost; its end reaches their homes), a
/// ticket this node pools or keeps reaches it here, and so does one kept
/// by a third node (a ticket that moved with the session before:
/// `PoolRepoint` to its home, which passes it on to its pool; the old
/// node re-pointed its own, a party's home does in `Repoint`).
pub(crate) fn moved_here(shared: &Shared, session: &SessionRef, old_node: NodeId, tickets: &[u64]) {
    let route = shared.route();
    let id = session.session_id();
    for ticket_id in tickets {
        let home = route.node_of_ticket(*ticket_id);
        if home == route.me {
            continue;
        }
        {
            let mut abroad = lock(&session.abroad);
            let state = abroad.get_or_insert_with(Default::default);
            state.tickets.insert(*ticket_id);
            state.homes.insert(home);
        }
        if home != old_node {
            let repoint = ControlMessage::PoolRepoint {
                ticket_id: *ticket_id,
                session: id,
                from: old_node,
                to: route.me,
            };
            route.outlet.control(home, &repoint);
        }
    }
    member_moved(shared, id, Some(old_node), session);
}

/// `PoolRepoint` at a pool (or at the home of a ticket that moved with its
/// session before): the member now lives on `to`; a home passes it on to
/// the pool of its shadow. Passed on to the matcher when the ticket is not
/// here (it moved on with the pool).
pub(crate) fn pool_repoint(
    shared: &Shared,
    ticket_id: u64,
    session: SessionId,
    (from, to): (NodeId, NodeId),
) {
    let route = shared.route();
    let held = shared.matchmaking.ticket_of(session) == Some(ticket_id);
    if !held {
        let matcher = route.matcher();
        if matcher != route.me {
            let repoint = ControlMessage::PoolRepoint {
                ticket_id,
                session,
                from,
                to,
            };
            route.outlet.control(matcher, &repoint);
        }
        return;
    }
    let Some(presence) = shared.matchmaking.member(ticket_id, session) else {
        return;
    };
    let new = match to == route.me {
        true => shared.find_session(session),
        false => Some(route.ticket_member(presence, to)),
    };
    if let Some(new) = new {
        member_moved(shared, session, Some(from), &new);
    }
}

/// The node table changed: when this node was the matcher (`before`) and
/// another is now, every ticket of its pool moves to the new one, so two
/// pools do not hold tickets that could match each other.
pub(crate) fn after_matcher_change(shared: &Shared, before: NodeId) {
    let route = shared.route();
    let matcher = route.matcher();
    if matcher != before {
        // The others learn this node's view now: the new matcher matches
        // once every node names it (`Route::may_match`).
        route.beat_soon.notify_one();
    }
    if before != route.me || matcher == route.me {
        return;
    }
    let moving = shared.matchmaking.hand_over(matcher);
    if !moving.is_empty() {
        tracing::info!(tickets = moving.len(), matcher = %route.node_name(matcher), "the matcher changed: this node's pool moves there");
    }
    for message in moving {
        route.outlet.control(matcher, &message);
    }
}

/// Runs a round and tells every player of every match. The round itself
/// runs off the async threads: at 100,000 waiting tickets it takes a few
/// hundred milliseconds.
pub(crate) async fn run_round(shared: std::sync::Arc<Shared>) {
    if !shared.route().may_match() {
        // Not the matcher every node agrees on (yet): its pool, if it has
        // one, holds its tickets for the one they agree on.
        return;
    }
    let now = Instant::now();
    let for_round = shared.clone();
    let Ok(matches) = tokio::task::spawn_blocking(move || for_round.matchmaking.round(now)).await
    else {
        return;
    };
    // Never the token secret: derived from it unless the operator gave one.
    let match_key = shared.config.match_key();
    let expires_at = unix_now().saturating_add(shared.config.match_token_ttl.as_secs());
    for found in matches {
        let match_id = uuid::Uuid::new_v4();
        let players: Vec<MatchedPlayer> = found
            .tickets
            .iter()
            .flat_map(|t| {
                t.meta
                    .members
                    .iter()
                    .map(|(m, own)| player_of(&t.meta, m, own))
            })
            .collect();
        let claims = MatchClaims {
            match_id,
            expires_at,
            players: players
                .iter()
                .map(|p| MatchPlayer {
                    user_id: p.presence.user_id.clone(),
                    party_id: p.party_id,
                })
                .collect(),
        };
        let token = mint_match_token(&match_key, &claims);
        for ticket in &found.tickets {
            // The party's ticket is done: the party may queue again.
            if let (Some(home), Some(outlet)) = (ticket.meta.home, shared.matchmaking.outlet()) {
                // A party of another node: its home clears its ticket.
                let matched = ControlMessage::PoolMatched {
                    ticket_id: ticket.id.0,
                };
                outlet.control(home, &matched);
            } else if let Some(party_id) = ticket.meta.party_id {
                clear_party_ticket(&shared, party_id, ticket.id.0);
            }
            for (member, _) in &ticket.meta.members {
                member.push_event(Event::Matched(MatchFound {
                    match_id: *match_id.as_bytes(),
                    ticket_id: ticket.id.0,
                    players: players.clone(),
                    token: token.clone(),
                    token_expires_at: expires_at,
                }));
            }
        }
        tracing::info!(%match_id, players = players.len(), tickets = found.tickets.len(), "match made");
    }
}
