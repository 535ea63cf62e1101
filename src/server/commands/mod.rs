//! Commands: a dispatcher with one line per command into one file per
//! family, and the table (`table.rs`) that says per command where it runs,
//! which hook it meets and which budget it spends. Every handler answers
//! through [`Ctx`]: the reply is queued before any event the command
//! causes, so a caller always hears its answer first.
//!
//! - `party.rs`: create, get, update, leave, close, promote, kick, bans.
//! - `requests.rs`: joining, join requests and invites.
//! - `social.rs`: status and follows.
//! - `codes.rs`: join codes and the listing.
//! - `tickets.rs`: matchmaking tickets.
//! - `data.rs`: reliable party data, party state, member attributes.
//! - `ready.rs`: ready checks.
//! - `quiet.rs`: mutes, and block lists (the session's own, the game
//!   server's, and what follows a change of one).
//!
//! Beside the commands: `gather.rs` (what needs other nodes, and this
//! node's answers to their questions) and `server_api.rs` (the server-side
//! API's work on what this node holds) and `resume.rs` (a session that
//! resumes on another node, and its seats that follow it).
//!
//! Adding a command: its row in `table.rs`, its line in [`run`], its
//! handler in the family's file.

mod codes;
mod data;
mod gather;
mod party;
mod quiet;
mod ready;
mod requests;
mod resume;
mod server_api;
mod social;
mod table;
mod tickets;

pub(crate) use data::check_reliable_size;
pub(crate) use gather::{answer, complete, hook_point, snapshots_of, Deferred};
pub(crate) use quiet::{blocks_of_proxy, check_blocks, BlocksBy};
pub(crate) use resume::{names_another_node, resume_elsewhere, Resuming};
pub use server_api::server_presence;
pub(crate) use server_api::{
    disconnect, find, parties_led_by, parties_page, sessions_page, set_blocks,
};
pub(crate) use table::{spec_of, Budget};

use super::limits::{RateLimit, Verdict};
use super::player_limits::Budget as PlayerBudget;
use super::route::Target;
use super::session::{lock, Outbound, SessionRef};
pub(crate) use super::state::deliver;
use super::state::Shared;
use crate::party::{Effects, Party, PartyError, PartySettings, PartyUpdate};
use crate::protocol::{Command, ErrorBody, ErrorCode, PartyId, Reply};
use std::sync::Mutex;
use table::RunsAt;

/// A command being run: who asked, under which request id.
pub(crate) struct Ctx<'a> {
    pub(crate) shared: &'a Shared,
    pub(crate) session: &'a SessionRef,
    pub(crate) id: u32,
    /// A client's own command (not one another node forwarded): it may ask
    /// the other nodes (a join code, a follow, a search).
    pub(crate) gathers: bool,
}

impl Ctx<'_> {
    /// The caller's session id.
    fn me(&self) -> crate::protocol::SessionId {
        self.session.session_id()
    }

    fn respond(&self, result: Result<Reply, ErrorBody>) {
        self.session.push(Outbound::Response {
            id: self.id,
            result,
        });
    }

    /// Whether the command may ask the other nodes.
    fn clustered(&self) -> bool {
        self.gathers && self.shared.route().clustered()
    }

    /// Runs a party rule and answers: the reply first, then the events.
    fn apply<R>(
        &self,
        party_id: PartyId,
        op: impl FnOnce(&mut Party<SessionRef>) -> Result<(R, Effects<SessionRef>), PartyError>,
        reply: impl FnOnce(&R) -> Reply,
    ) {
        let applied = self.shared.table.apply(party_id, op, |result, effects| {
            self.respond(Ok(reply(result)));
            deliver(self.shared, effects);
        });
        if let Err(error) = applied {
            self.respond(Err(error.into()));
        }
    }

    /// `apply` for the commands whose success reply is `Done`.
    fn apply_done(
        &self,
        party_id: PartyId,
        op: impl FnOnce(&mut Party<SessionRef>) -> Result<Effects<SessionRef>, PartyError>,
    ) {
        self.apply(party_id, |party| effects_only(op(party)), |_| Reply::Done);
    }
}

fn effects_only(
    effects: Result<Effects<SessionRef>, PartyError>,
) -> Result<((), Effects<SessionRef>), PartyError> {
    effects.map(|e| ((), e))
}

fn invalid(message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(ErrorCode::InvalidArgument, message)
}

/// Runs a client's command and queues its answer, or, when another node
/// runs it (a party homed there, a ticket in its pool), forwards it there
/// and returns the wait for its answer (which the caller awaits before the
/// session's next command).
#[must_use = "a forwarded command must be awaited"]
pub(crate) fn handle(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    command: Command,
) -> Option<Deferred> {
    let ctx = Ctx {
        shared,
        session,
        id,
        gathers: true,
    };
    let spec = spec_of(&command);
    let refusal = refusal_before_running(&ctx, spec).or_else(|| bad_user_id(&command));
    if let Some(refusal) = refusal {
        ctx.respond(Err(refusal));
        return None;
    }
    route_or_run(&ctx, spec, command)
}

/// Runs a command that passed its refusals here, or forwards it to the
/// node that runs it.
fn route_or_run(ctx: &Ctx, spec: table::Spec, command: Command) -> Option<Deferred> {
    let (shared, session, id) = (ctx.shared, ctx.session, ctx.id);
    let target = match spec.runs_at {
        RunsAt::Session => None,
        RunsAt::Home(party_id) => Some(Target::Party(party_id)),
        RunsAt::TicketPool(ticket_id) => Some(Target::Ticket(ticket_id)),
    };
    let route = shared.route();
    if let Some(node) = target.and_then(|target| route.elsewhere(target)) {
        return route
            .forward(session, id, node, command)
            .map(Deferred::Forwarded);
    }
    run(ctx, command)
}

/// `handle` for the join a found code leads to: the code's own attempt
/// already passed the refusals (seat and budgets), so the join spends
/// nothing more.
pub(crate) fn handle_code_join(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    party_id: PartyId,
) -> Option<Deferred> {
    let ctx = Ctx {
        shared,
        session,
        id,
        gathers: true,
    };
    code_found(&ctx);
    let join = Command::JoinParty { party_id };
    route_or_run(&ctx, spec_of(&join), join)
}

/// Runs a command another node forwarded here, for a proxy of its caller:
/// never forwarded again, never gathered from other nodes, and its budgets
/// were spent on the caller's node.
pub(crate) fn run_forwarded(shared: &Shared, proxy: &SessionRef, corr: u32, command: Command) {
    let ctx = Ctx {
        shared,
        session: proxy,
        id: corr,
        gathers: false,
    };
    let deferred = run(&ctx, command);
    debug_assert!(deferred.is_none(), "a forwarded command never defers");
}

/// What the caller's own node refuses before the command goes anywhere:
/// the parties limit, the per-session budgets (invites, tickets, join-code
/// attempts), then the budgets of the caller's user and address.
fn refusal_before_running(ctx: &Ctx, spec: table::Spec) -> Option<ErrorBody> {
    let (shared, session) = (ctx.shared, ctx.session);
    let limit = shared.config.max_parties_per_session;
    if spec.takes_a_seat && session.party_ids().len() >= limit {
        return Some(ErrorBody::new(
            ErrorCode::TooManyParties,
            format!(
                "this session is already in {limit} parties (seats and requests), the most allowed"
            ),
        ));
    }
    let config = &shared.config;
    let (per_session, players): (_, &[PlayerBudget]) = match spec.budget {
        Budget::Invites => (
            Some((&session.invite_limit, config.invites_per_minute, "invites")),
            &[PlayerBudget::Invites],
        ),
        Budget::Tickets => (
            Some((&session.ticket_limit, config.tickets_per_minute, "tickets")),
            &[PlayerBudget::Tickets],
        ),
        Budget::JoinCodes => (
            Some((
                &session.code_limit,
                config.join_code_attempts_per_minute,
                "join-code attempts",
            )),
            &[
                PlayerBudget::JoinCodeAttempts,
                PlayerBudget::JoinCodeFailures,
            ],
        ),
        Budget::Follows => (None, &[PlayerBudget::Follows]),
        Budget::JoinRequests => (None, &[PlayerBudget::JoinRequests]),
        Budget::Searches => (None, &[PlayerBudget::Searches]),
        Budget::Commands | Budget::Data => return None,
    };
    if let Some((bucket, per_minute, what)) = per_session {
        if !allowed(bucket, per_minute) {
            return Some(ErrorBody::new(
                ErrorCode::RateLimited,
                format!("at most {per_minute} {what} a minute"),
            ));
        }
    }
    let refused = shared.players().take(session.player(), players, now());
    refused.err().map(|refusal| {
        shared.metrics.player_limited(refusal.whose, refusal.budget);
        ErrorBody::new(ErrorCode::RateLimited, refusal.to_string())
    })
}

/// The clock the budgets (the session's, its user's and address's) run
/// on: tokio's, so that tests on a paused clock move it.
fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// A join code led to a party: the attempt was no guess, and its user and
/// address get back the wrong code it was charged as.
fn code_found(ctx: &Ctx) {
    let player = ctx.session.player();
    ctx.shared
        .players()
        .give_back(player, PlayerBudget::JoinCodeFailures, now());
}

/// A join code named no live party: counted for the guessing alarm (the
/// budgets were charged when the attempt was made).
fn code_missed(shared: &Shared) {
    super::metrics::count(&shared.metrics.join_code_failures);
}

/// The user ids a command names, held to the rule of Hello's own
/// (`auth::validate_name`: 1 to 128 bytes, no control character): an id
/// no session can have is refused, never looked for. Checked on the
/// caller's node, before the command goes anywhere.
fn bad_user_id(command: &Command) -> Option<ErrorBody> {
    let user_ids: &[String] = match command {
        Command::AcceptJoinRequest { user_id, .. }
        | Command::Remove { user_id, .. }
        | Command::Promote { user_id, .. }
        | Command::Kick { user_id, .. }
        | Command::Reject { user_id, .. }
        | Command::Invite { user_id, .. }
        | Command::RevokeInvite { user_id, .. }
        | Command::Ban { user_id, .. }
        | Command::Unban { user_id, .. }
        | Command::Mute { user_id, .. }
        | Command::Unmute { user_id, .. } => std::slice::from_ref(user_id),
        Command::Follow { user_ids }
        | Command::Unfollow { user_ids }
        | Command::Block { user_ids }
        | Command::Unblock { user_ids } => user_ids,
        _ => return None,
    };
    user_ids
        .iter()
        .find_map(|user_id| crate::auth::validate_name("user id", user_id).err())
        .map(invalid)
}

/// Takes one from a per-minute budget, made on first use.
fn allowed(limit: &Mutex<Option<RateLimit>>, per_minute: u32) -> bool {
    if per_minute == 0 {
        return true;
    }
    let now = now();
    let mut limit = lock(limit);
    let bucket = limit.get_or_insert_with(|| RateLimit::per_minute(per_minute, now));
    bucket.check(now) == Verdict::Allow
}

/// The dispatcher: one line per command (kept so by hand).
#[rustfmt::skip]
fn run(ctx: &Ctx, command: Command) -> Option<Deferred> {
    use Command as C;
    match command {
        C::CreateParty { open, max_size, label, invite_policy, state, leader_policy } => party::create(ctx, PartySettings { open, max_size, label, invite_policy, leader_policy }, state),
        C::GetParty { party_id } => party::get(ctx, party_id),
        C::Update { party_id, open, label, max_size, invite_policy, leader_policy } => party::update(ctx, party_id, PartyUpdate { open, label, max_size, invite_policy, leader_policy }),
        C::Leave { party_id } => party::leave(ctx, party_id),
        C::Close { party_id } => party::close(ctx, party_id),
        C::Promote { party_id, user_id } => party::promote(ctx, party_id, user_id),
        C::Kick { party_id, user_id } => party::kick(ctx, party_id, user_id),
        C::Ban { party_id, user_id, duration_ms } => party::ban(ctx, party_id, user_id, duration_ms),
        C::Unban { party_id, user_id } => party::unban(ctx, party_id, user_id),
        C::ListBans { party_id } => party::list_bans(ctx, party_id),
        C::JoinParty { party_id } => requests::join(ctx, party_id),
        C::ListJoinRequests { party_id } => requests::list(ctx, party_id),
        C::AcceptJoinRequest { party_id, user_id } => requests::accept(ctx, party_id, user_id),
        C::Reject { party_id, user_id } => requests::reject(ctx, party_id, user_id),
        C::Remove { party_id, user_id } => requests::remove(ctx, party_id, user_id),
        C::Invite { party_id, user_id } => requests::invite(ctx, party_id, user_id),
        C::DeclineInvite { party_id } => requests::decline_invite(ctx, party_id),
        C::RevokeInvite { party_id, user_id } => requests::revoke_invite(ctx, party_id, user_id),
        C::ListInvites => return requests::list_invites(ctx),
        C::SetStatus { status, visible } => social::set_status(ctx, status, visible),
        C::Follow { user_ids } => return social::follow(ctx, user_ids),
        C::Unfollow { user_ids } => social::unfollow(ctx, user_ids),
        C::CreateJoinCode { party_id } => codes::create(ctx, party_id),
        C::ClearJoinCode { party_id } => codes::clear(ctx, party_id),
        C::JoinByCode { code } => return codes::join(ctx, code),
        C::ListParty { party_id, properties } => codes::list(ctx, party_id, properties),
        C::UnlistParty { party_id } => codes::unlist(ctx, party_id),
        C::SearchParties(query) => return codes::search(ctx, query),
        C::SubmitTicket(request) => tickets::submit(ctx, request),
        C::CancelTicket { ticket_id } => tickets::cancel(ctx, ticket_id),
        C::SendData { party_id, op_code, data } => data::send(ctx, party_id, op_code, data),
        C::SetPartyState { party_id, set, remove } => data::set_state(ctx, party_id, set, remove),
        C::SetMemberAttributes { party_id, set, remove } => data::set_attributes(ctx, party_id, set, remove),
        C::StartReadyCheck { party_id, message, timeout_ms } => ready::start(ctx, party_id, message, timeout_ms),
        C::AnswerReadyCheck { party_id, check_id, ready } => ready::answer(ctx, party_id, check_id, ready),
        C::CancelReadyCheck { party_id } => ready::cancel(ctx, party_id),
        C::Mute { party_id, user_id, op_codes } => quiet::mute(ctx, party_id, user_id, op_codes),
        C::Unmute { party_id, user_id } => quiet::unmute(ctx, party_id, user_id),
        C::Block { user_ids } => quiet::block(ctx, user_ids),
        C::Unblock { user_ids } => quiet::unblock(ctx, user_ids),
        C::ListBlocks => quiet::list(ctx),
    }
    None
}

/// Room for a list reply's items: a frame, less a margin for the rest of
/// the reply.
const REPLY_ITEMS_BUDGET: usize = crate::protocol::MAX_FRAME_SIZE as usize - 16 * 1024;

/// How many of `items`, from the front, fit in one reply frame.
pub(crate) fn fitting<T: serde::Serialize>(items: &[T]) -> usize {
    let mut used = 0;
    for (count, item) in items.iter().enumerate() {
        used += postcard::experimental::serialized_size(item).unwrap_or(usize::MAX / 2);
        if used > REPLY_ITEMS_BUDGET {
            return count;
        }
    }
    items.len()
}
