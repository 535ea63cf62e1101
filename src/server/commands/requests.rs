//! Joining: seats and join requests, and invites.

use super::{effects_only, Ctx, Deferred};
use crate::auth::unix_now_ms;
use crate::party::PartyError;
use crate::protocol::{PartyId, Reply};
use std::time::Instant;

/// Seats the caller in `party_id`, or queues its request, answering with
/// the outcome: for `JoinParty` and `JoinByCode` alike.
pub(super) fn join(ctx: &Ctx, party_id: PartyId) {
    let (shared, session) = (ctx.shared, ctx.session);
    let joined = shared.table.join(
        party_id,
        session.presence.clone(),
        session.clone(),
        Instant::now(),
        shared.config.join_request_ttl,
        |outcome, effects| {
            ctx.respond(Ok(Reply::Join(outcome.clone())));
            super::deliver(shared, effects);
        },
    );
    if let Err(error) = joined {
        if error == PartyError::BlockedByLeader {
            crate::server::metrics::count(&shared.metrics.joins_blocked);
        }
        ctx.respond(Err(error.into()));
    }
}

pub(super) fn list(ctx: &Ctx, party_id: PartyId) {
    let me = ctx.me();
    let result = ctx.shared.table.read(party_id, |party| {
        Ok(Reply::JoinRequests {
            party_id,
            seq: party.seq(),
            requests: party.join_requests(me)?,
        })
    });
    ctx.respond(result.map_err(Into::into));
}

pub(super) fn accept(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.accept(me, &user_id));
}

pub(super) fn reject(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.reject(me, &user_id));
}

/// A member's seat or a requester's request, whichever `user_id` holds.
pub(super) fn remove(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.remove(me, &user_id));
}

pub(super) fn invite(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    let (ttl, now_ms) = (ctx.shared.config.invite_ttl, unix_now_ms());
    ctx.apply_done(party_id, |party| {
        party.invite(me, &user_id, Instant::now(), ttl, now_ms)
    });
}

pub(super) fn decline_invite(ctx: &Ctx, party_id: PartyId) {
    let decliner = ctx.session.presence.clone();
    let applied = ctx.shared.table.apply(
        party_id,
        |party| effects_only(party.decline(&decliner, Instant::now())),
        |_, effects| {
            ctx.respond(Ok(Reply::Done));
            super::deliver(ctx.shared, effects);
        },
    );
    match applied {
        Ok(()) => {}
        // The party is gone, and its invites with it.
        Err(PartyError::PartyNotFound) => ctx.respond(Err(PartyError::InviteNotFound.into())),
        Err(error) => ctx.respond(Err(error.into())),
    }
}

pub(super) fn revoke_invite(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.revoke(me, &user_id, Instant::now()));
}

/// The user's pending invites, kept by its owner (deferred: in a cluster
/// the owner may be another node).
pub(super) fn list_invites(_ctx: &Ctx) -> Option<Deferred> {
    Some(Deferred::ListInvites)
}
