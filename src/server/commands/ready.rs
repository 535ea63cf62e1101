//! Ready checks: the leader asks, members answer, the party's home ends
//! it when everyone is ready, when the leader cancels, or when its time
//! runs out (a deadline of the server's timer, `grace::deadline_reached`).

use super::{deliver, Ctx};
use crate::auth::unix_now_ms;
use crate::protocol::{ErrorBody, PartyId, Reply};
use crate::server::session::SessionDeadline;
use std::time::Duration;
use tokio::time::Instant;

pub(super) fn start(ctx: &Ctx, party_id: PartyId, message: String, timeout_ms: u64) {
    let (shared, me) = (ctx.shared, ctx.me());
    let started = shared.table.apply(
        party_id,
        |party| party.start_ready_check(me, message, timeout_ms, unix_now_ms()),
        |check_id, effects| {
            // Set before anyone hears of the check, so that its end is
            // never missed; a check that ends sooner makes it stale.
            shared.deadlines.schedule(
                Instant::now() + Duration::from_millis(timeout_ms),
                SessionDeadline::ReadyCheck {
                    party_id,
                    check_id: *check_id,
                },
            );
            ctx.respond(Ok(Reply::Done));
            deliver(shared, effects);
        },
    );
    if let Err(error) = started {
        ctx.respond(Err(ErrorBody::from(error)));
    }
}

pub(super) fn answer(ctx: &Ctx, party_id: PartyId, check_id: u64, ready: bool) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| {
        party.answer_ready_check(me, check_id, ready)
    });
}

pub(super) fn cancel(ctx: &Ctx, party_id: PartyId) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.cancel_ready_check(me));
}
