//! Mutes and block lists (PROTOCOL.md, "Mutes and blocks").
//!
//! A mute is a party rule, run on the party's home like any other
//! (`Party::mute`). A block list is the session's own, changed on the
//! session's node: by its commands here, by the game's server (the
//! server-side API) or by the game's hook as the session starts. What
//! follows a change is [`set_blocks`]'s: the session's parties here work
//! out again who shares a block with whom, the homes of its parties on
//! other nodes are sent its list, and status presence shows or hides its
//! sessions (`presence::set_blocks`).

use super::{deliver, effects_only, invalid, Ctx};
use crate::protocol::{
    ErrorBody, ErrorCode, Event, NumberRange, PartyId, Reply, SessionId, MAX_BLOCKS,
};
use crate::server::metrics::count;
use crate::server::peers::ControlMessage;
use crate::server::presence;
use crate::server::session::{BlockSet, SessionRef};
use crate::server::state::Shared;
use std::collections::HashSet;

/// Who changed a session's block list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlocksBy {
    /// The session itself (`Block`, `Unblock`): its reply says the list.
    Session,
    /// The game's server (its API, or its hook at the session's start):
    /// the session hears `BlocksChanged`.
    Server,
}

pub(super) fn mute(ctx: &Ctx, party_id: PartyId, user_id: String, op_codes: Option<NumberRange>) {
    let (shared, me) = (ctx.shared, ctx.me());
    let muted = shared.table.apply(
        party_id,
        |party| effects_only(party.mute(me, &user_id, op_codes)),
        |_, effects| {
            ctx.respond(Ok(Reply::Done));
            deliver(shared, effects);
        },
    );
    match muted {
        Ok(()) => count(&shared.metrics.mutes_set),
        Err(error) => ctx.respond(Err(error.into())),
    }
}

pub(super) fn unmute(ctx: &Ctx, party_id: PartyId, user_id: String) {
    let (shared, me) = (ctx.shared, ctx.me());
    let unmuted = shared.table.apply(
        party_id,
        |party| effects_only(party.unmute(me, &user_id)),
        |_, effects| {
            ctx.respond(Ok(Reply::Done));
            deliver(shared, effects);
        },
    );
    match unmuted {
        Ok(()) => count(&shared.metrics.mutes_lifted),
        Err(error) => ctx.respond(Err(error.into())),
    }
}

/// Adds users to the session's list. (Its ids were checked before it came
/// here: `super::bad_user_id`.)
pub(super) fn block(ctx: &Ctx, user_ids: Vec<String>) {
    let mine = &ctx.session.presence.user_id;
    if user_ids.iter().any(|user_id| user_id == mine) {
        return ctx.respond(Err(invalid("you cannot block yourself")));
    }
    let mut list: BlockSet = ctx.session.block_list().into_iter().collect();
    list.extend(user_ids);
    if let Err(refusal) = check_size(&list) {
        return ctx.respond(Err(refusal));
    }
    answer_and_set(ctx, list);
}

pub(super) fn unblock(ctx: &Ctx, user_ids: Vec<String>) {
    let mut list: BlockSet = ctx.session.block_list().into_iter().collect();
    for user_id in &user_ids {
        list.remove(user_id);
    }
    answer_and_set(ctx, list);
}

pub(super) fn list(ctx: &Ctx) {
    let user_ids = ctx.session.block_list();
    ctx.respond(Ok(Reply::Blocks { user_ids }));
}

/// The reply first (the list now), then what the change implies: the
/// status events it causes come after it.
fn answer_and_set(ctx: &Ctx, list: BlockSet) {
    let user_ids = list.iter().cloned().collect();
    ctx.respond(Ok(Reply::Blocks { user_ids }));
    set_blocks(ctx.shared, ctx.session, list, BlocksBy::Session);
}

/// A block list the game's server gives for a user's sessions, as a
/// session's own would be checked: ids that keep the user id rule, not
/// the user's own, at most `MAX_BLOCKS` of them.
pub(crate) fn check_blocks(user_id: &str, user_ids: &[String]) -> Result<BlockSet, ErrorBody> {
    for blocked in user_ids {
        crate::auth::validate_name("user id", blocked).map_err(invalid)?;
        if blocked == user_id {
            return Err(invalid("a user cannot block itself"));
        }
    }
    let list: BlockSet = user_ids.iter().cloned().collect();
    check_size(&list)?;
    Ok(list)
}

/// Refuses a list longer than `MAX_BLOCKS`.
fn check_size(list: &BlockSet) -> Result<(), ErrorBody> {
    if list.len() > MAX_BLOCKS {
        return Err(ErrorBody::new(
            ErrorCode::TooManyBlocks,
            format!(
                "a block list holds at most {MAX_BLOCKS} users, this one would hold {}",
                list.len()
            ),
        ));
    }
    Ok(())
}

/// Gives a session of this node the block list `list` (checked: the
/// user id rule, not its own user, at most `MAX_BLOCKS`), and does what
/// follows: status presence (its followers and what it follows, here and
/// through its user's owner), its parties here, and the homes of its
/// parties elsewhere.
pub(crate) fn set_blocks(shared: &Shared, session: &SessionRef, list: BlockSet, by: BlocksBy) {
    match by {
        BlocksBy::Session => count(&shared.metrics.block_lists_by_session),
        BlocksBy::Server => {
            count(&shared.metrics.block_lists_by_server);
            let user_ids = list.iter().cloned().collect();
            session.push_event(Event::BlocksChanged { user_ids });
        }
    }
    let route = shared.route();
    presence::set_blocks(&shared.users, route, session, list);
    let me = session.session_id();
    let mut homes = HashSet::new();
    for party_id in session.party_ids() {
        match route.is_here(party_id) {
            true => refresh(shared, party_id, me),
            false => {
                homes.insert(route.home_of(party_id));
            }
        }
    }
    if !homes.is_empty() {
        let message = ControlMessage::Blocks {
            session: me,
            user_ids: session.block_list(),
        };
        for home in homes {
            route.send_to(home, &message);
        }
    }
}

/// On a party's home: the list of a member on another node (a proxy of
/// it here), as its node sent it.
pub(crate) fn blocks_of_proxy(shared: &Shared, proxy: &SessionRef, user_ids: Vec<String>) {
    proxy.replace_blocks(user_ids.into_iter().collect());
    for party_id in proxy.party_ids() {
        refresh(shared, party_id, proxy.session_id());
    }
}

/// Party `party_id` works out again who shares a block with `session`
/// (nothing when it only has a join request there).
fn refresh(shared: &Shared, party_id: PartyId, session: SessionId) {
    let _ = shared.table.apply(
        party_id,
        |party| effects_only(party.blocks_changed(session)),
        |_, effects| deliver(shared, effects),
    );
}
