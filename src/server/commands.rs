//! One place that turns a command into a party-table call, a reply and
//! deliveries. The reply is queued before any event the command causes, so
//! a caller always hears its answer first.

use super::session::{Outbound, SessionRef};
use super::Shared;
use crate::party::{Delivery, Effects, Party, PartyError, PartySettings, PartyUpdate, Seat};
use crate::protocol::{Command, ErrorBody, ErrorCode, Event, LeaveReason, PartyId, Reply};
use std::time::Instant;

/// Hands each event to its recipient's outbox. Never blocks.
pub(crate) fn deliver(deliveries: Vec<Delivery<SessionRef>>) {
    for delivery in deliveries {
        delivery.to.push_event(delivery.event);
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
    let applied = shared.table.apply(party_id, op, |result, deliveries| {
        respond(session, id, Ok(reply(result)));
        deliver(deliveries);
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

pub(crate) fn handle(shared: &Shared, session: &SessionRef, id: u32, command: Command) {
    let me = session.session_id();
    if matches!(
        command,
        Command::CreateParty { .. } | Command::JoinParty { .. }
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
            return;
        }
    }
    match command {
        Command::CreateParty {
            open,
            max_size,
            label,
        } => {
            let seat = Seat::new(session.presence.clone(), session.clone());
            let settings = PartySettings {
                open,
                max_size,
                label,
            };
            let result = shared
                .table
                .create(PartyId::random(), seat, settings)
                .map(Reply::Party)
                .map_err(ErrorBody::from);
            respond(session, id, result);
        }
        Command::JoinParty { party_id } => {
            let joined = shared.table.join(
                party_id,
                session.presence.clone(),
                session.clone(),
                Instant::now(),
                shared.config.join_request_ttl,
                |outcome, deliveries| {
                    respond(session, id, Ok(Reply::Join(outcome.clone())));
                    deliver(deliveries);
                },
            );
            if let Err(error) = joined {
                respond(session, id, Err(error.into()));
            }
        }
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
    let limit = shared.limits.max_reliable_data as usize;
    if data.len() > limit {
        let message = format!(
            "reliable data of {} bytes exceeds the limit of {limit}",
            data.len()
        );
        respond(
            session,
            id,
            Err(ErrorBody::new(ErrorCode::PayloadTooLarge, message)),
        );
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
            for recipient in recipients {
                recipient.push_event(Event::Data {
                    party_id,
                    sender: sender.clone(),
                    op_code,
                    data: data.clone(),
                });
            }
        }
        Err(error) => respond(session, id, Err(error.into())),
    }
}

/// A session is gone: it leaves every party it sat in and cancels every
/// request it had waiting, exactly as if it had left.
pub(crate) fn end_session(shared: &Shared, session: &SessionRef) {
    let me = session.session_id();
    for party_id in session.take_parties() {
        // The party may have closed meanwhile; then there is nothing to leave.
        let _ = shared.table.apply(
            party_id,
            |party| effects_only(party.leave(me, LeaveReason::SessionEnded)),
            |_, deliveries| deliver(deliveries),
        );
    }
}
