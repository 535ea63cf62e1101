//! Matchmaking tickets: a session's own, or its party's (led by it).

use super::Ctx;
use crate::party::PartyError;
use crate::protocol::{ErrorBody, ErrorCode, Reply, TicketRequest};
use crate::server::route::Target;
use crate::server::session::SessionRef;

/// A solo ticket, or a party's under its shard lock (so its members cannot
/// change between being read and being put in the pool).
pub(super) fn submit(ctx: &Ctx, request: TicketRequest) {
    let (shared, session) = (ctx.shared, ctx.session);
    if let Err(refusal) = crate::server::matchmaking::check_request(&request) {
        ctx.respond(Err(refusal));
        return;
    }
    let me = session.session_id();
    // In a cluster the matcher's pool holds it, and this node (its home:
    // the party's, or the solo player's) keeps its shadow.
    let route = shared.route();
    let pool_at = route.elsewhere(Target::Matcher);
    if pool_at.is_some() && !route.link_is_up() {
        // Its pool could not hear of it: it would wait forever.
        ctx.respond(Err(ErrorBody::new(
            ErrorCode::Unavailable,
            "the matchmaking pool is on another node, and the cluster link is down; try again shortly",
        )));
        return;
    }
    // The reply goes out under the pool's lock, before the ticket's events.
    let answer = |ticket_id| ctx.respond(Ok(Reply::TicketStarted { ticket_id }));
    let already = || {
        ErrorBody::new(
            ErrorCode::AlreadyMatchmaking,
            "this session (or a member of the party) is already in a matchmaking ticket",
        )
    };
    let result = match request.party_id {
        None => shared.matchmaking.submit(
            &request,
            me,
            |_, queued| match queued(me) {
                true => Err(already()),
                false => Ok(vec![session.clone()]),
            },
            answer,
            pool_at,
        ),
        Some(party_id) => shared.matchmaking.submit(
            &request,
            me,
            |ticket, queued| {
                // Not `apply`: its delivery lock is taken before the pool's
                // by a change that ends a ticket, and the pool is held here.
                let seated = shared.table.with_party_mut(party_id, |party| {
                    party.check_leader(me)?;
                    let members: Vec<SessionRef> =
                        party.members().iter().map(|s| s.link.clone()).collect();
                    let refusal = if party.matchmaking().is_some() {
                        Some(ErrorBody::new(
                            ErrorCode::AlreadyMatchmaking,
                            "the party already has a matchmaking ticket",
                        ))
                    } else if members.iter().any(|m| queued(m.session_id())) {
                        Some(already())
                    } else if members.len() > request.max_count as usize {
                        Some(ErrorBody::new(
                            ErrorCode::PartyTooLarge,
                            format!(
                                "the party has {} members, more than max_count {}",
                                members.len(),
                                request.max_count
                            ),
                        ))
                    } else {
                        party.set_matchmaking(Some(ticket));
                        None
                    };
                    Ok(refusal.map_or(Ok(members), Err))
                });
                seated.unwrap_or_else(|error| Err(error.into()))
            },
            answer,
            pool_at,
        ),
    };
    match result {
        Ok((_, Some(to_pool))) => route.outlet.control(to_pool.node, &to_pool.message),
        Ok((_, None)) => {}
        Err(refusal) => ctx.respond(Err(refusal)),
    }
}

/// The submitter cancels its solo ticket; a party's leader its party's.
pub(super) fn cancel(ctx: &Ctx, ticket_id: u64) {
    let (shared, session) = (ctx.shared, ctx.session);
    let me = session.session_id();
    let not_found = || {
        ErrorBody::new(
            ErrorCode::TicketNotFound,
            "no waiting ticket with that id that this session may cancel",
        )
    };
    let allowed = match shared.matchmaking.owner_of(ticket_id) {
        None => Err(not_found()),
        Some((None, submitter)) if submitter == me => Ok(None),
        Some((None, _)) => Err(not_found()),
        // Only the party's members learn that its ticket exists.
        Some((Some(party_id), _)) => {
            match shared.table.read(party_id, |party| party.check_leader(me)) {
                Ok(()) => Ok(Some(party_id)),
                Err(PartyError::NotLeader) => Err(PartyError::NotLeader.into()),
                Err(_) => Err(not_found()),
            }
        }
    };
    let party_id = match allowed {
        Ok(party_id) => party_id,
        Err(refusal) => return ctx.respond(Err(refusal)),
    };
    if let Some(party_id) = party_id {
        crate::server::tickets::clear_party_ticket(shared, party_id, ticket_id);
    }
    // The answer goes out before the ticket's sessions hear it ended.
    shared.matchmaking.cancel_then(
        ticket_id,
        crate::protocol::TicketCancelReason::Cancelled,
        |was_waiting| match was_waiting {
            true => ctx.respond(Ok(Reply::Done)),
            // Matched (or ended) meanwhile.
            false => ctx.respond(Err(not_found())),
        },
    );
}
