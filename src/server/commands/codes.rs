//! Join codes and the listing (finding parties by what they show).

use super::{fitting, Ctx, Deferred};
use crate::protocol::{KeyValues, PartyId, PartySearch, Reply};

pub(super) fn create(ctx: &Ctx, party_id: PartyId) {
    let shared = ctx.shared;
    let created = shared
        .table
        .new_join_code(party_id, ctx.me(), |code, effects| {
            ctx.respond(Ok(Reply::JoinCode {
                party_id,
                code: code.clone(),
            }));
            super::deliver(shared, effects);
        });
    if let Err(error) = created {
        ctx.respond(Err(error.into()));
    }
}

pub(super) fn clear(ctx: &Ctx, party_id: PartyId) {
    let shared = ctx.shared;
    let cleared = shared
        .table
        .clear_join_code(party_id, ctx.me(), |_, effects| {
            ctx.respond(Ok(Reply::Done));
            super::deliver(shared, effects);
        });
    if let Err(error) = cleared {
        ctx.respond(Err(error.into()));
    }
}

/// Joins the party a code names: here, or (asked of every other node) on
/// the node that knows it.
pub(super) fn join(ctx: &Ctx, code: String) -> Option<Deferred> {
    match ctx.shared.table.party_of_code(&code) {
        Ok(party_id) => {
            super::code_found(ctx);
            super::requests::join(ctx, party_id)
        }
        // Another node's party, perhaps: ask them.
        Err(_) if ctx.clustered() => return Some(Deferred::FindCode(code)),
        Err(error) => {
            super::code_missed(ctx.shared);
            ctx.respond(Err(error.into()))
        }
    }
    None
}

pub(super) fn list(ctx: &Ctx, party_id: PartyId, properties: KeyValues) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.set_listing(me, Some(properties)));
}

pub(super) fn unlist(ctx: &Ctx, party_id: PartyId) {
    let me = ctx.me();
    ctx.apply_done(party_id, |party| party.set_listing(me, None));
}

/// A page of listed parties; in a cluster, every node's page merged
/// (deferred: gathered before the answer).
pub(super) fn search(ctx: &Ctx, query: PartySearch) -> Option<Deferred> {
    // Refused here, before any other node is asked.
    if let Err(error) = crate::party::directory::check_search(&query) {
        ctx.respond(Err(error.into()));
        return None;
    }
    if ctx.clustered() {
        return Some(Deferred::Search(query));
    }
    let table = &ctx.shared.table;
    let max = ctx.shared.limits.max_search_results;
    let mut result = table.search(&query, max);
    // Long labels and properties: a shorter page, so that it fits one
    // frame and the cursor goes on from its last party.
    if let Ok((parties, _)) = &result {
        let fit = fitting(parties);
        if fit < parties.len() {
            let shorter = PartySearch {
                limit: u16::try_from(fit.max(1)).unwrap_or(1),
                ..query
            };
            result = table.search(&shorter, max);
        }
    }
    let result = result
        .map(|(parties, next_cursor)| Reply::Parties {
            parties,
            next_cursor,
        })
        .map_err(Into::into);
    ctx.respond(result);
    None
}
