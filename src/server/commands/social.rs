//! Status shown to followers, and follows.

use super::{fitting, invalid, Ctx, Deferred};
use crate::protocol::{ErrorBody, ErrorCode, Reply, MAX_STATUS_BYTES};

pub(super) fn set_status(ctx: &Ctx, status: String, visible: bool) {
    if status.len() > MAX_STATUS_BYTES || status.chars().any(char::is_control) {
        let message =
            format!("status must be at most {MAX_STATUS_BYTES} bytes, without control characters");
        return ctx.respond(Err(invalid(message)));
    }
    let session = ctx.session;
    if let Some(event) = ctx.shared.users.set_status(session, status, visible) {
        ctx.shared
            .route()
            .broadcast_status(&session.presence.user_id, event);
    }
    ctx.respond(Ok(Reply::Done));
}

/// Follows `user_ids`: their sessions here now, and in a cluster those on
/// the other nodes too (deferred: gathered before the answer).
/// (Its ids were checked before it came here: `super::bad_user_id`.)
pub(super) fn follow(ctx: &Ctx, user_ids: Vec<String>) -> Option<Deferred> {
    let limit = ctx.shared.config.max_follows;
    let asked = ctx.clustered().then(|| user_ids.clone());
    let result = ctx
        .shared
        .users
        .follow(ctx.session, user_ids, limit)
        .map(|mut online| {
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
    match (result, asked) {
        (Ok(_), Some(user_ids)) => Some(Deferred::Follow { user_ids }),
        (result, _) => {
            ctx.respond(result.map(|online| Reply::Followed { online }));
            None
        }
    }
}

pub(super) fn unfollow(ctx: &Ctx, user_ids: Vec<String>) {
    ctx.shared.users.unfollow(ctx.session, user_ids);
    ctx.respond(Ok(Reply::Done));
}
