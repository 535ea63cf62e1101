//! Status shown to followers, and follows.

use super::{fitting, invalid, Ctx, Deferred};
use crate::protocol::{ErrorBody, ErrorCode, Reply, MAX_STATUS_BYTES};
use crate::server::presence;

pub(super) fn set_status(ctx: &Ctx, status: String, visible: bool) {
    if status.len() > MAX_STATUS_BYTES || status.chars().any(char::is_control) {
        let message =
            format!("status must be at most {MAX_STATUS_BYTES} bytes, without control characters");
        return ctx.respond(Err(invalid(message)));
    }
    let (users, route) = (&ctx.shared.users, ctx.shared.route());
    presence::set_status(users, route, ctx.session, status, visible);
    ctx.respond(Ok(Reply::Done));
}

/// Follows `user_ids`: their sessions here now, and in a cluster those on
/// the other nodes too (deferred when a user is not followed here yet:
/// its owner is asked first).
/// (Its ids were checked before it came here: `super::bad_user_id`.)
pub(super) fn follow(ctx: &Ctx, user_ids: Vec<String>) -> Option<Deferred> {
    let limit = ctx.shared.config.max_follows;
    let all = user_ids.clone();
    let mut new = Vec::new();
    let result = ctx
        .shared
        .users
        .follow(ctx.session, user_ids, limit)
        .map(|(mut online, first)| {
            new = first;
            // Followed users with very many sessions: the first that fit;
            // the rest show up in status events.
            online.truncate(fitting(&online));
            online
        })
        .map_err(|_| {
            ErrorBody::new(
                ErrorCode::TooManyFollows,
                format!("a session may follow at most {limit} users"),
            )
        });
    match result {
        Ok(_) if ctx.clustered() => Some(Deferred::Follow {
            user_ids: all,
            ask: new,
        }),
        result => {
            ctx.respond(result.map(|online| Reply::Followed { online }));
            None
        }
    }
}

pub(super) fn unfollow(ctx: &Ctx, user_ids: Vec<String>) {
    let unfollowed = ctx.shared.users.unfollow(ctx.session, user_ids);
    presence::unfollow(&ctx.shared.users, ctx.shared.route(), unfollowed);
    ctx.respond(Ok(Reply::Done));
}
