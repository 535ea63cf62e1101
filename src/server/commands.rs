//! One place that turns a command into a party-table call, a reply and
//! deliveries. The reply is queued before any event the command causes, so
//! a caller always hears its answer first.

use super::limits::{RateLimit, Verdict};
use super::peers::{Answer, Question};
use super::route::{Forwarding, Target};
use super::session::{lock, Outbound, SessionRef};
use super::Shared;
use crate::auth::unix_now_ms;
use crate::party::{Effects, Party, PartyError, PartySettings, PartyUpdate, Seat};
use crate::protocol::{
    Command, ErrorBody, ErrorCode, LeaveReason, PartyId, PartySearch, Reply, MAX_BANS,
    MAX_NAME_BYTES, MAX_STATUS_BYTES,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Hands each event to its recipient's outbox, and each invite notice to
/// every session of its user. Never blocks.
pub(crate) fn deliver(shared: &Shared, effects: Effects<SessionRef>) {
    if let Some(hooks) = &shared.hooks {
        hooks.tell_effects(&effects);
    }
    let route = shared.route();
    route.send_events(effects.deliveries);
    for notice in effects.invites {
        route.broadcast_invite(&notice);
        shared.users.notice(notice);
    }
    if let Some((ticket, reason)) = effects.ticket_ended {
        shared.matchmaking.cancel(ticket, reason);
    }
}

fn respond(session: &SessionRef, id: u32, result: Result<Reply, ErrorBody>) {
    session.push(Outbound::Response { id, result });
}

/// Runs a party rule and answers: the reply first, then the events.
fn apply<R>(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    party_id: PartyId,
    op: impl FnOnce(&mut Party<SessionRef>) -> Result<(R, Effects<SessionRef>), PartyError>,
    reply: impl FnOnce(&R) -> Reply,
) {
    let applied = shared.table.apply(party_id, op, |result, effects| {
        respond(session, id, Ok(reply(result)));
        deliver(shared, effects);
    });
    if let Err(error) = applied {
        respond(session, id, Err(error.into()));
    }
}

/// `apply` for the commands whose success reply is `Done`.
fn apply_done(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    party_id: PartyId,
    op: impl FnOnce(&mut Party<SessionRef>) -> Result<Effects<SessionRef>, PartyError>,
) {
    apply(
        shared,
        session,
        id,
        party_id,
        |party| effects_only(op(party)),
        |_| Reply::Done,
    );
}

fn effects_only(
    effects: Result<Effects<SessionRef>, PartyError>,
) -> Result<((), Effects<SessionRef>), PartyError> {
    effects.map(|e| ((), e))
}

/// Runs a client's command and queues its answer, or, for a party homed
/// on another node (a ticket in another node's pool), forwards it there and
/// returns the wait for its answer (which the caller awaits before the
/// session's next command).
#[must_use = "a forwarded command must be awaited"]
pub(crate) fn handle(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    command: Command,
) -> Option<Deferred> {
    if let Some(refusal) = party_limit_refusal(shared, session, &command) {
        respond(session, id, Err(refusal));
        return None;
    }
    let route = shared.route();
    if let Some(node) = target_of(&command).and_then(|target| route.elsewhere(target)) {
        // Per-session budgets are the session's own node's.
        if let Some(refusal) = budget_refusal(shared, session, &command) {
            respond(session, id, Err(refusal));
            return None;
        }
        return route
            .forward(session, id, node, command)
            .map(Deferred::Forwarded);
    }
    run(shared, session, id, command, true)
}

/// Runs a command another node forwarded here, for a proxy of its caller:
/// never forwarded again, and never gathered from other nodes.
pub(crate) fn run_forwarded(shared: &Shared, proxy: &SessionRef, corr: u32, command: Command) {
    let deferred = run(shared, proxy, corr, command, false);
    debug_assert!(deferred.is_none(), "a forwarded command never defers");
}

/// The parties limit, checked on the session's own node.
fn party_limit_refusal(
    shared: &Shared,
    session: &SessionRef,
    command: &Command,
) -> Option<ErrorBody> {
    if !matches!(
        command,
        Command::CreateParty { .. } | Command::JoinParty { .. } | Command::JoinByCode { .. }
    ) {
        return None;
    }
    let limit = shared.config.max_parties_per_session;
    (session.party_ids().len() >= limit).then(|| {
        ErrorBody::new(
            ErrorCode::TooManyParties,
            format!(
                "this session is already in {limit} parties (seats and requests), the most allowed"
            ),
        )
    })
}

/// A per-session budget the command would exceed, before it is forwarded.
fn budget_refusal(shared: &Shared, session: &SessionRef, command: &Command) -> Option<ErrorBody> {
    let (limit, per_minute, what) = match command {
        Command::Invite { .. } => (
            &session.invite_limit,
            shared.config.invites_per_minute,
            "invites",
        ),
        Command::SubmitTicket(_) => (
            &session.ticket_limit,
            shared.config.tickets_per_minute,
            "tickets",
        ),
        _ => return None,
    };
    (!allowed(limit, per_minute)).then(|| {
        ErrorBody::new(
            ErrorCode::RateLimited,
            format!("at most {per_minute} {what} a minute"),
        )
    })
}

/// Runs `command` on this node. `gathers`: a client's own command, which
/// may ask the other nodes (a join code, a follow, a search).
fn run(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    command: Command,
    gathers: bool,
) -> Option<Deferred> {
    let me = session.session_id();
    let clustered = gathers && shared.route().clustered();
    match command {
        Command::CreateParty {
            open,
            max_size,
            label,
            invite_policy,
            state,
        } => {
            let seat = Seat::new(session.presence.clone(), session.clone());
            let settings = PartySettings {
                open,
                max_size,
                label,
                invite_policy,
            };
            let result = shared
                .table
                .create(shared.new_party_id(), seat, settings, state)
                .map_err(ErrorBody::from);
            if let (Some(hooks), Ok(snapshot)) = (&shared.hooks, &result) {
                hooks.tell(super::hooks::AfterEvent::PartyCreated {
                    party_id: snapshot.party_id,
                    leader: session.presence.clone(),
                });
            }
            respond(session, id, result.map(Reply::Party));
        }
        Command::JoinParty { party_id } => join(shared, session, id, party_id),
        Command::ListJoinRequests { party_id } => {
            let result = shared.table.read(party_id, |party| {
                Ok(Reply::JoinRequests {
                    party_id,
                    seq: party.seq(),
                    requests: party.join_requests(me)?,
                })
            });
            respond(session, id, result.map_err(ErrorBody::from));
        }
        Command::GetParty { party_id } => {
            let result = shared.table.read(party_id, |party| party.get(me));
            respond(
                session,
                id,
                result.map(Reply::Party).map_err(ErrorBody::from),
            );
        }
        Command::AcceptJoinRequest { party_id, user_id } => {
            apply_done(shared, session, id, party_id, |party| {
                party.accept(me, &user_id)
            })
        }
        Command::Remove { party_id, user_id } => {
            apply_done(shared, session, id, party_id, |party| {
                party.remove(me, &user_id)
            })
        }
        Command::Kick { party_id, user_id } => apply_done(shared, session, id, party_id, |party| {
            party.kick(me, &user_id)
        }),
        Command::Reject { party_id, user_id } => {
            apply_done(shared, session, id, party_id, |party| {
                party.reject(me, &user_id)
            })
        }
        Command::Leave { party_id } => apply_done(shared, session, id, party_id, |party| {
            party.leave(me, LeaveReason::Left)
        }),
        Command::Promote { party_id, user_id } => {
            apply_done(shared, session, id, party_id, |party| {
                party.promote(me, &user_id)
            })
        }
        Command::Close { party_id } => {
            apply_done(shared, session, id, party_id, |party| party.close(me))
        }
        Command::Update {
            party_id,
            open,
            label,
            max_size,
            invite_policy,
        } => apply(
            shared,
            session,
            id,
            party_id,
            |party| {
                party.update(
                    me,
                    PartyUpdate {
                        open,
                        label,
                        max_size,
                        invite_policy,
                    },
                )
            },
            |snapshot| Reply::Party(snapshot.clone()),
        ),
        Command::SendData {
            party_id,
            op_code,
            data,
        } => {
            super::metrics::count(&shared.metrics.reliable_data_in);
            send_reliable(shared, session, id, party_id, op_code, data)
        }
        Command::SetStatus { status, visible } => {
            if status.len() > MAX_STATUS_BYTES || status.chars().any(char::is_control) {
                let message = format!(
                    "status must be at most {MAX_STATUS_BYTES} bytes, without control characters"
                );
                respond(session, id, Err(invalid(message)));
                return None;
            }
            if let Some(event) = shared.users.set_status(session, status, visible) {
                shared
                    .route()
                    .broadcast_status(&session.presence.user_id, event);
            }
            respond(session, id, Ok(Reply::Done));
        }
        Command::Follow { user_ids } => {
            if let Some(bad) = user_ids.iter().find(|u| !valid_user_id(u)) {
                let message = format!(
                    "user ids must be 1 to {MAX_NAME_BYTES} bytes, got {}",
                    bad.len()
                );
                respond(session, id, Err(invalid(message)));
                return None;
            }
            let limit = shared.config.max_follows;
            let asked = clustered.then(|| user_ids.clone());
            let result = shared
                .users
                .follow(session, user_ids, limit)
                .map(|mut online| {
                    // Followed users with very many sessions: the first
                    // that fit; the rest show up in status events.
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
                // In a cluster, their sessions on the other nodes too.
                (Ok(online), Some(user_ids)) => return Some(Deferred::Follow { online, user_ids }),
                (result, _) => {
                    respond(session, id, result.map(|online| Reply::Followed { online }))
                }
            }
        }
        Command::Unfollow { user_ids } => {
            shared.users.unfollow(session, user_ids);
            respond(session, id, Ok(Reply::Done));
        }
        Command::Invite { party_id, user_id } => {
            let per_minute = shared.config.invites_per_minute;
            if !allowed(&session.invite_limit, per_minute) {
                let message = format!("at most {per_minute} invites a minute");
                respond(
                    session,
                    id,
                    Err(ErrorBody::new(ErrorCode::RateLimited, message)),
                );
                return None;
            }
            let (ttl, now_ms) = (shared.config.invite_ttl, unix_now_ms());
            apply_done(shared, session, id, party_id, |party| {
                party.invite(me, &user_id, Instant::now(), ttl, now_ms)
            })
        }
        Command::DeclineInvite { party_id } => {
            let decliner = session.presence.clone();
            let applied = shared.table.apply(
                party_id,
                |party| effects_only(party.decline(&decliner, Instant::now())),
                |_, effects| {
                    respond(session, id, Ok(Reply::Done));
                    deliver(shared, effects);
                },
            );
            match applied {
                Ok(()) => {}
                // The party is gone, and its invites with it.
                Err(PartyError::PartyNotFound) => {
                    respond(session, id, Err(PartyError::InviteNotFound.into()))
                }
                Err(error) => respond(session, id, Err(error.into())),
            }
        }
        Command::RevokeInvite { party_id, user_id } => {
            apply_done(shared, session, id, party_id, |party| {
                party.revoke(me, &user_id, Instant::now())
            })
        }
        Command::ListInvites => {
            let mut invites = shared
                .users
                .invites(&session.presence.user_id, unix_now_ms());
            // The oldest that fit in one reply; the rest stay pending.
            invites.truncate(fitting(&invites));
            respond(session, id, Ok(Reply::Invites(invites)));
        }
        Command::CreateJoinCode { party_id } => {
            let created = shared.table.new_join_code(party_id, me, |code, effects| {
                respond(
                    session,
                    id,
                    Ok(Reply::JoinCode {
                        party_id,
                        code: code.clone(),
                    }),
                );
                deliver(shared, effects);
            });
            if let Err(error) = created {
                respond(session, id, Err(error.into()));
            }
        }
        Command::ClearJoinCode { party_id } => {
            let cleared = shared.table.clear_join_code(party_id, me, |_, effects| {
                respond(session, id, Ok(Reply::Done));
                deliver(shared, effects);
            });
            if let Err(error) = cleared {
                respond(session, id, Err(error.into()));
            }
        }
        Command::JoinByCode { code } => {
            let per_minute = shared.config.join_code_attempts_per_minute;
            if !allowed(&session.code_limit, per_minute) {
                let message = format!("at most {per_minute} join-code attempts a minute");
                respond(
                    session,
                    id,
                    Err(ErrorBody::new(ErrorCode::RateLimited, message)),
                );
                return None;
            }
            match shared.table.party_of_code(&code) {
                Ok(party_id) => join(shared, session, id, party_id),
                // Another node's party, perhaps: ask them.
                Err(_) if clustered => return Some(Deferred::FindCode(code)),
                Err(error) => respond(session, id, Err(error.into())),
            }
        }
        Command::ListParty {
            party_id,
            properties,
        } => apply_done(shared, session, id, party_id, |party| {
            party.set_listing(me, Some(properties))
        }),
        Command::UnlistParty { party_id } => apply_done(shared, session, id, party_id, |party| {
            party.set_listing(me, None)
        }),
        Command::SearchParties(query) if clustered && query.limit > 0 => {
            // Every node's listing, merged.
            return Some(Deferred::Search(query));
        }
        Command::SearchParties(query) => {
            let max = shared.limits.max_search_results;
            let mut result = shared.table.search(&query, max);
            // Long labels and properties: a shorter page, so that it fits
            // one frame and the cursor goes on from its last party.
            if let Ok((parties, _)) = &result {
                let fit = fitting(parties);
                if fit < parties.len() {
                    let shorter = PartySearch {
                        limit: u16::try_from(fit.max(1)).unwrap_or(1),
                        ..query
                    };
                    result = shared.table.search(&shorter, max);
                }
            }
            let result = result
                .map(|(parties, next_cursor)| Reply::Parties {
                    parties,
                    next_cursor,
                })
                .map_err(ErrorBody::from);
            respond(session, id, result);
        }
        Command::SetPartyState {
            party_id,
            set,
            remove,
        } => apply_done(shared, session, id, party_id, |party| {
            party.set_state(me, set, &remove)
        }),
        Command::SetMemberAttributes {
            party_id,
            set,
            remove,
        } => apply_done(shared, session, id, party_id, |party| {
            party.set_attributes(me, set, &remove)
        }),
        Command::Ban {
            party_id,
            user_id,
            duration_ms,
        } => {
            let now = Instant::now();
            let until = match duration_ms {
                0 => None,
                ms => match now.checked_add(Duration::from_millis(ms)) {
                    Some(until) => Some(until),
                    None => {
                        let message = "duration_ms is too long; use 0 for the party's life";
                        respond(session, id, Err(invalid(message.into())));
                        return None;
                    }
                },
            };
            let until_ms = unix_now_ms().saturating_add(duration_ms);
            apply_done(shared, session, id, party_id, |party| {
                party.ban(me, &user_id, until, until_ms, MAX_BANS)
            })
        }
        Command::Unban { party_id, user_id } => {
            apply_done(shared, session, id, party_id, |party| {
                party
                    .unban(me, &user_id, Instant::now())
                    .map(|()| Effects::default())
            })
        }
        Command::SubmitTicket(request) => submit_ticket(shared, session, id, request),
        Command::CancelTicket { ticket_id } => cancel_ticket(shared, session, id, ticket_id),
        Command::ListBans { party_id } => {
            let result = shared
                .table
                .read(party_id, |party| party.list_bans(me, Instant::now()))
                .map(|bans| Reply::Bans { party_id, bans })
                .map_err(ErrorBody::from);
            respond(session, id, result);
        }
    }
    None
}

/// Where a command runs: its party's home, the node whose pool has its
/// ticket, or the matcher; `None` for a command of the session's own node.
fn target_of(command: &Command) -> Option<Target> {
    match command {
        Command::CancelTicket { ticket_id } => Some(Target::Ticket(*ticket_id)),
        // Solo tickets meet in the matcher's pool.
        Command::SubmitTicket(request) if request.party_id.is_none() => Some(Target::Matcher),
        _ => party_of(command).map(Target::Party),
    }
}

/// The party a command acts on, if any: where it runs in a cluster.
fn party_of(command: &Command) -> Option<PartyId> {
    match command {
        Command::JoinParty { party_id }
        | Command::ListJoinRequests { party_id }
        | Command::GetParty { party_id }
        | Command::AcceptJoinRequest { party_id, .. }
        | Command::Remove { party_id, .. }
        | Command::Kick { party_id, .. }
        | Command::Reject { party_id, .. }
        | Command::Leave { party_id }
        | Command::Promote { party_id, .. }
        | Command::Close { party_id }
        | Command::Update { party_id, .. }
        | Command::SendData { party_id, .. }
        | Command::Invite { party_id, .. }
        | Command::DeclineInvite { party_id }
        | Command::RevokeInvite { party_id, .. }
        | Command::CreateJoinCode { party_id }
        | Command::ClearJoinCode { party_id }
        | Command::ListParty { party_id, .. }
        | Command::UnlistParty { party_id }
        | Command::SetPartyState { party_id, .. }
        | Command::SetMemberAttributes { party_id, .. }
        | Command::Ban { party_id, .. }
        | Command::Unban { party_id, .. }
        | Command::ListBans { party_id } => Some(*party_id),
        Command::SubmitTicket(request) => request.party_id,
        Command::CreateParty { .. }
        | Command::SetStatus { .. }
        | Command::Follow { .. }
        | Command::Unfollow { .. }
        | Command::ListInvites
        | Command::JoinByCode { .. }
        | Command::SearchParties(_)
        | Command::CancelTicket { .. } => None,
    }
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

/// A solo ticket, or a party's under its shard lock (so its members cannot
/// change between being read and being put in the pool).
fn submit_ticket(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    request: crate::protocol::TicketRequest,
) {
    let per_minute = shared.config.tickets_per_minute;
    if !allowed(&session.ticket_limit, per_minute) {
        let message = format!("at most {per_minute} tickets a minute");
        respond(
            session,
            id,
            Err(ErrorBody::new(ErrorCode::RateLimited, message)),
        );
        return;
    }
    if let Err(refusal) = super::matchmaking::check_request(&request) {
        respond(session, id, Err(refusal));
        return;
    }
    let me = session.session_id();
    // The reply goes out under the pool's lock, before the ticket's events.
    let answer = |ticket_id| respond(session, id, Ok(Reply::TicketStarted { ticket_id }));
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
            None,
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
            // In a cluster the matcher's pool holds it; this node keeps its
            // shadow, for the party's rules.
            shared.route().elsewhere(Target::Matcher),
        ),
    };
    match result {
        Ok((_, Some(to_pool))) => shared
            .route()
            .outlet
            .control(to_pool.node, &to_pool.message),
        Ok((_, None)) => {}
        Err(refusal) => respond(session, id, Err(refusal)),
    }
}

/// The submitter cancels its solo ticket; a party's leader its party's.
fn cancel_ticket(shared: &Shared, session: &SessionRef, id: u32, ticket_id: u64) {
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
        Err(refusal) => return respond(session, id, Err(refusal)),
    };
    if let Some(party_id) = party_id {
        super::matchmaking::clear_party_ticket(shared, party_id, ticket_id);
    }
    // The answer goes out before the ticket's sessions hear it ended.
    shared.matchmaking.cancel_then(
        ticket_id,
        crate::protocol::TicketCancelReason::Cancelled,
        |was_waiting| match was_waiting {
            true => respond(session, id, Ok(Reply::Done)),
            // Matched (or ended) meanwhile.
            false => respond(session, id, Err(not_found())),
        },
    );
}

fn invalid(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::InvalidArgument, message)
}

fn valid_user_id(user_id: &str) -> bool {
    !user_id.is_empty() && user_id.len() <= MAX_NAME_BYTES
}

/// Takes one from a per-minute budget, made on first use.
fn allowed(limit: &Mutex<Option<RateLimit>>, per_minute: u32) -> bool {
    if per_minute == 0 {
        return true;
    }
    let now = Instant::now();
    let mut limit = lock(limit);
    let bucket = limit.get_or_insert_with(|| RateLimit::per_minute(per_minute, now));
    bucket.check(now) == Verdict::Allow
}

/// Seats the session in `party_id`, or queues its request, answering with
/// the outcome: for `JoinParty` and `JoinByCode` alike.
fn join(shared: &Shared, session: &SessionRef, id: u32, party_id: PartyId) {
    let joined = shared.table.join(
        party_id,
        session.presence.clone(),
        session.clone(),
        Instant::now(),
        shared.config.join_request_ttl,
        |outcome, effects| {
            respond(session, id, Ok(Reply::Join(outcome.clone())));
            deliver(shared, effects);
        },
    );
    if let Err(error) = joined {
        respond(session, id, Err(error.into()));
    }
}

fn send_reliable(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    party_id: PartyId,
    op_code: i64,
    data: bytes::Bytes,
) {
    if let Err(refusal) = check_reliable_size(shared, &data) {
        respond(session, id, Err(refusal));
        return;
    }
    let mut recipients = Vec::new();
    let sender = shared.table.read(party_id, |party| {
        party
            .data_recipients(session.session_id(), &mut recipients)
            .cloned()
    });
    match sender {
        Ok(sender) => {
            respond(session, id, Ok(Reply::Done));
            shared
                .route()
                .send_data(recipients, party_id, &sender, op_code, &data);
        }
        Err(error) => respond(session, id, Err(error.into())),
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

/// A command whose answer needs other nodes: awaited by the session's
/// control loop before its next command (`complete`).
pub(crate) enum Deferred {
    /// Sent to the node that runs it.
    Forwarded(Forwarding),
    /// A join code this node does not know: asked of every other node.
    FindCode(String),
    /// A `Follow`: the followed users' sessions here, and on the others.
    Follow {
        online: Vec<crate::protocol::UserStatus>,
        user_ids: Vec<String>,
    },
    /// A search: every node's page, merged in listing order.
    Search(PartySearch),
}

/// Finishes a deferred command: its answer is queued when this returns.
pub(crate) async fn complete(shared: &Shared, session: &SessionRef, id: u32, deferred: Deferred) {
    let route = shared.route();
    let answer = |result: Result<Reply, ErrorBody>| respond(session, id, result);
    match deferred {
        Deferred::Forwarded(forwarding) => route.finish(forwarding).await,
        Deferred::FindCode(code) => {
            let found = route
                .ask_all(Question::FindCode(code))
                .await
                .into_iter()
                .find_map(|(_, answer)| match answer {
                    Answer::Code(found) => found,
                    _ => None,
                });
            match found {
                Some(party_id) => {
                    let join = Command::JoinParty { party_id };
                    if let Some(Deferred::Forwarded(forwarding)) = handle(shared, session, id, join)
                    {
                        route.finish(forwarding).await;
                    }
                }
                None => answer(Err(PartyError::JoinCodeNotFound.into())),
            }
        }
        Deferred::Follow {
            mut online,
            user_ids,
        } => {
            // (Each node's answer was noted as it came, by the node task:
            // see `super::nodes`.)
            for (_, reply) in route.ask_all(Question::Statuses(user_ids)).await {
                if let Answer::Statuses(statuses) = reply {
                    online.extend(statuses);
                }
            }
            online.truncate(fitting(&online));
            answer(Ok(Reply::Followed { online }));
        }
        Deferred::Search(query) => {
            let max = shared.limits.max_search_results;
            let local = match shared.table.search_placed(&query, max) {
                Ok(local) => local,
                Err(error) => return answer(Err(error.into())),
            };
            let mut pages = vec![(local.0, local.1 != 0)];
            for (_, reply) in route.ask_all(Question::Search(query.clone())).await {
                if let Answer::Search { parties, more } = reply {
                    pages.push((parties, more));
                }
            }
            let limit = usize::from(query.limit.min(max));
            let (parties, next_cursor) = merge_pages(pages, limit);
            answer(Ok(Reply::Parties {
                parties,
                next_cursor,
            }));
        }
    }
}

/// Merges the nodes' pages of a search (each in place order) into the
/// first `limit` parties of the cluster's listing order, and the cursor of
/// the next page: the place of the last one given when any node has more.
fn merge_pages(
    pages: Vec<(Vec<(u64, crate::protocol::ListedParty)>, bool)>,
    limit: usize,
) -> (Vec<crate::protocol::ListedParty>, u64) {
    let mut more = pages.iter().any(|(_, more)| *more);
    let mut merged: Vec<(u64, crate::protocol::ListedParty)> =
        pages.into_iter().flat_map(|(parties, _)| parties).collect();
    merged.sort_by_key(|(place, _)| *place);
    if merged.len() > limit {
        merged.truncate(limit);
        more = true;
    }
    // Long labels and properties: a shorter page, so it fits one frame.
    let parties: Vec<_> = merged.iter().map(|(_, party)| party.clone()).collect();
    let fit = fitting(&parties).max(1).min(parties.len());
    if fit < merged.len() {
        merged.truncate(fit);
        more = true;
    }
    let next = match (more, merged.last()) {
        (true, Some((place, _))) => *place,
        _ => 0,
    };
    (merged.into_iter().map(|(_, party)| party).collect(), next)
}

/// This node's answer to a question about what it holds: another node's,
/// or its own (`Route::ask_home` for a party homed here).
pub(crate) fn answer(shared: &Shared, question: Question) -> Answer {
    match question {
        Question::FindCode(code) => Answer::Code(shared.table.party_of_code(&code).ok()),
        Question::Statuses(user_ids) => Answer::Statuses(shared.users.statuses_of(&user_ids)),
        Question::Snapshots { session, party_ids } => {
            let (parties, waiting) = super::connection::snapshots_of(shared, session, party_ids);
            Answer::Snapshots { parties, waiting }
        }
        Question::Search(query) => {
            let max = shared.limits.max_search_results;
            let (parties, next) = shared.table.search_placed(&query, max).unwrap_or_default();
            Answer::Search {
                parties,
                more: next != 0,
            }
        }
        Question::HookFacts {
            party_id,
            caller,
            target,
        } => {
            let facts = shared.table.read(party_id, |party| {
                let target_seated = target.as_ref().is_some_and(|user_id| {
                    party
                        .members()
                        .iter()
                        .any(|seat| seat.presence.user_id == *user_id)
                });
                Ok(super::peers::HookFacts {
                    would_seat: party.would_seat(&caller, Instant::now()),
                    target_seated,
                })
            });
            Answer::HookFacts(facts.ok())
        }
    }
}
