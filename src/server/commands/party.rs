//! A party's life: create, read, change, leave, close, lead, remove, ban.

use super::{effects_only, invalid, Ctx};
use crate::auth::unix_now_ms;
use crate::party::{Effects, PartySettings, PartyUpdate, Seat};
use crate::protocol::{ErrorBody, KeyValues, LeaveReason, PartyId, Reply, MAX_BANS};
use std::time::{Duration, Instant};

pub(super) fn create(ctx: &Ctx, settings: PartySettings, state: KeyValues) {
    let (shared, session) = (ctx.shared, ctx.session);
    let seat = Seat::new(session.presence.clone(), session.clone());
    let result = shared
        .table
        .create(shared.new_party_id(), seat, settings, state)
        .map_err(ErrorBody::from);
    if let (Some(hooks), Ok(snapshot)) = (&shared.hooks, &result) {
        hooks.tell(crate::server::hook_events::AfterEvent::PartyCreated {
            party_id: snapshot.party_id,
            leader: session.presence.clone(),
        });
    }
    ctx.respond(result.map(Reply::Party));
}

pub(super) fn get(ctx: &Ctx, party_id: PartyId) {
    let me = ctx.me();
    let result = ctx.shared.table.read(party_id, |party| party.get(me));
    ctx.respond(result.map(Reply::Party).map_err(ErrorBody::from));
}

pub(super) fn update(ctx: &Ctx, party_id: PartyId, update: PartyUpdate) {
    let me = ctx.me();
    ctx.apply(
        party_id,
        |party| party.update(me, update),
        |snapshot| Reply::Party(snapshot.clone()),
    );
}

pub(super) fn leave(ctx: &Ctx, party_id: PartyId) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.leave(me, LeaveReason::Left));
}

pub(super) fn close(ctx: &Ctx, party_id: PartyId) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.close(me));
}

pub(super) fn promote(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.promote(me, &user_id));
}

pub(super) fn kick(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.kick(me, &user_id));
}

pub(super) fn ban(ctx: &Ctx, party_id: PartyId, user_id: String, duration_ms: u64) {
    let me = ctx.me();
    let now = Instant::now();
    let until = match duration_ms {
        0 => None,
        ms => match now.checked_add(Duration::from_millis(ms)) {
            Some(until) => Some(until),
            None => {
                let message = "duration_ms is too long; use 0 for the party's life";
                return ctx.respond(Err(invalid(message)));
            }
        },
    };
    let until_ms = unix_now_ms().saturating_add(duration_ms);
    ctx.apply_done(party_id, |party| {
        party.ban(me, &user_id, until, until_ms, MAX_BANS)
    });
}

pub(super) fn unban(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let me = ctx.me();
    ctx.apply(
        party_id,
        |party| {
            effects_only(
                party
                    .unban(me, &user_id, Instant::now())
                    .map(|()| Effects::default()),
            )
        },
        |_| Reply::Done,
    );
}

pub(super) fn list_bans(ctx: &Ctx, party_id: PartyId) {
    let me = ctx.me();
    let result = ctx
        .shared
        .table
        .read(party_id, |party| party.list_bans(me, Instant::now()))
        .map(|bans| Reply::Bans { party_id, bans })
        .map_err(ErrorBody::from);
    ctx.respond(result);
}
