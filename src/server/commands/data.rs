//! Reliable party data, the party's state, and members' attributes.

use super::Ctx;
use crate::protocol::{ErrorBody, ErrorCode, KeyValues, PartyId, Reply};
use crate::server::state::Shared;

pub(super) fn send(ctx: &Ctx, party_id: PartyId, op_code: i64, data: bytes::Bytes) {
    let shared = ctx.shared;
    crate::server::metrics::count(&shared.metrics.reliable_data_in);
    if let Err(refusal) = check_reliable_size(shared, &data) {
        return ctx.respond(Err(refusal));
    }
    let mut recipients = Vec::new();
    let me = ctx.me();
    let sender = shared.table.read(party_id, |party| {
        let sender = party.data_recipients(me, op_code, &mut recipients)?;
        Ok((sender.presence.clone(), sender.withheld))
    });
    match sender {
        Ok((sender, withheld)) => {
            if withheld > 0 {
                shared.metrics.data_withheld.inc_by(withheld as u64);
            }
            ctx.respond(Ok(Reply::Done));
            shared
                .route()
                .send_data(recipients, party_id, &sender, op_code, &data);
        }
        Err(error) => ctx.respond(Err(error.into())),
    }
}

/// Refuses reliable data above the announced limit.
pub(crate) fn check_reliable_size(shared: &Shared, data: &[u8]) -> Result<(), ErrorBody> {
    let limit = shared.limits.max_reliable_data as usize;
    if data.len() > limit {
        let message = format!(
            "reliable data of {} bytes exceeds the limit of {limit}",
            data.len()
        );
        return Err(ErrorBody::new(ErrorCode::PayloadTooLarge, message));
    }
    Ok(())
}

pub(super) fn set_state(ctx: &Ctx, party_id: PartyId, set: KeyValues, remove: Vec<String>) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.set_state(me, set, &remove));
}

pub(super) fn set_attributes(ctx: &Ctx, party_id: PartyId, set: KeyValues, remove: Vec<String>) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.set_attributes(me, set, &remove));
}
