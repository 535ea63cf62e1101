//! One place that turns a command into a party-table call, a reply and
//! deliveries. The reply is queued before any event the command causes, so
//! a caller always hears its answer first.

use super::limits::{RateLimit, Verdict};
use super::session::{lock, Outbound, SessionRef};
use super::Shared;
use crate::auth::unix_now_ms;
use crate::party::{Effects, Party, PartyError, PartySettings, PartyUpdate, Seat};
use crate::protocol::{
    Command, ErrorBody, ErrorCode, Event, LeaveReason, PartyId, PartySearch, Reply, MAX_BANS,
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
    let mut remote = super::cluster::EventBatches::default();
    for delivery in effects.deliveries {
        match &delivery.to.proxy {
            None => delivery.to.push_event(delivery.event),
            Some(proxy) => remote.add(proxy, delivery.to.session_id(), delivery.event),
        }
    }
    remote.send();
    for notice in effects.invites {
        if let Some(cluster) = shared.cluster() {
            cluster.broadcast_invite(&notice);
        }
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

/// Runs a command and queues its answer, or, for a party homed on another
/// node of the cluster, forwards it there and returns the wait for its
/// answer (which the caller awaits before the session's next command).
#[must_use = "a forwarded command must be awaited"]
pub(crate) fn handle(
    shared: &Shared,
    session: &SessionRef,
    id: u32,
    command: Command,
) -> Option<super::cluster::Deferred> {
    let me = session.session_id();
    if matches!(
        command,
        Command::CreateParty { .. } | Command::JoinParty { .. } | Command::JoinByCode { .. }
    ) {
        let limit = shared.config.max_parties_per_session;
        if session.party_ids().len() >= limit {
            let message = format!(
                "this session is already in {limit} parties (seats and requests), the most allowed"
            );
            respond(
                session,
                id,
                Err(ErrorBody::new(ErrorCode::TooManyParties, message)),
            );
            return None;
        }
    }
    if let Some(cluster) = shared.cluster() {
        // A proxy's command came from its own node already: it runs here.
        if session.proxy.is_none() {
            let node = match &command {
                // Solo tickets meet in the matcher's pool.
                Command::SubmitTicket(request) if request.party_id.is_none() => {
                    Some(cluster.matcher())
                }
                command => node_of(command),
            };
            if let Some(home) = node.filter(|home| *home != cluster.tag) {
                // Per-session budgets are the session's own node's.
                let budget = match command {
                    Command::Invite { .. } => Some((
                        &session.invite_limit,
                        shared.config.invites_per_minute,
                        "invites",
                    )),
                    Command::SubmitTicket(_) => Some((
                        &session.ticket_limit,
                        shared.config.tickets_per_minute,
                        "tickets",
                    )),
                    _ => None,
                };
                if let Some((limit, per_minute, what)) = budget {
                    if !allowed(limit, per_minute) {
                        let message = format!("at most {per_minute} {what} a minute");
                        let refusal = ErrorBody::new(ErrorCode::RateLimited, message);
                        respond(session, id, Err(refusal));
                        return None;
                    }
                }
                return cluster.forward(session, id, home, command);
            }
        }
    }
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
            let told = shared.users.set_status(session, status, visible);
            if let (Some(cluster), Some(event)) = (shared.cluster(), told) {
                cluster.broadcast_status(&session.presence.user_id, event);
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
            let asked = shared
                .cluster()
                .filter(|_| session.proxy.is_none())
                .map(|_| user_ids.clone());
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
                (Ok(online), Some(user_ids)) => {
                    return Some(super::cluster::Deferred::Follow { online, user_ids })
                }
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
                Err(_) if shared.cluster().is_some() && session.proxy.is_none() => {
                    return Some(super::cluster::Deferred::FindCode(code))
                }
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
        Command::SearchParties(query)
            if shared.cluster().is_some() && session.proxy.is_none() && query.limit > 0 =>
        {
            // Every node's listing, merged.
            return Some(super::cluster::Deferred::Search(query));
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

/// The node a command runs on in a cluster: its party's home, or for
/// `CancelTicket` the node whose pool has the ticket (its id's high 32
/// bits); `None` for a command of the session's own node.
fn node_of(command: &Command) -> Option<u32> {
    match command {
        Command::CancelTicket { ticket_id } => u32::try_from(ticket_id >> 32).ok(),
        _ => party_of(command).map(super::cluster::home_of),
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
            shared
                .cluster()
                .map(|cluster| (cluster.matcher(), cluster.tag))
                .and_then(|(matcher, me)| (matcher != me).then_some(matcher)),
        ),
    };
    match result {
        Ok((_, Some(to_pool))) => {
            if let Some(cluster) = shared.cluster() {
                cluster.outlet.control(to_pool.node, &to_pool.message);
            }
        }
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
            push_data(recipients, party_id, &sender, op_code, &data);
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

/// Reliable party data to each recipient, from `sender`.
pub(crate) fn push_data(
    recipients: Vec<SessionRef>,
    party_id: PartyId,
    sender: &crate::protocol::Presence,
    op_code: i64,
    data: &bytes::Bytes,
) {
    let mut remote = super::cluster::EventBatches::default();
    for recipient in recipients {
        let event = Event::Data {
            party_id,
            sender: sender.clone(),
            op_code,
            data: data.clone(),
        };
        match &recipient.proxy {
            None => recipient.push_event(event),
            Some(proxy) => remote.add(proxy, recipient.session_id(), event),
        }
    }
    remote.send();
}

/// A session is gone: it leaves every party it sat in and cancels every
/// request it had waiting, exactly as if it had left.
pub(crate) fn end_session(shared: &Shared, session: &SessionRef) {
    let me = session.session_id();
    if let (Some(cluster), None) = (shared.cluster(), &session.proxy) {
        // Before its set is taken: the homes of its remote parties.
        cluster.tell_session_ended(session);
    }
    for party_id in session.take_parties() {
        // The party may have closed meanwhile; then there is nothing to leave.
        let _ = shared.table.apply(
            party_id,
            |party| effects_only(party.leave(me, LeaveReason::SessionEnded)),
            |_, effects| deliver(shared, effects),
        );
    }
}
