//! The background side of a client: reads the control stream and the
//! datagrams of the current connection, keeps the roster, and when the
//! connection is lost, reconnects with backoff and resumes the session.

use crate::connection::{establish, Established};
use crate::event::{Event, PartyData};
use crate::protocol::{
    decode_body, decode_server_datagram, CloseCode, ErrorCode, Event as WireEvent, Resumed,
    ServerFrame,
};
use crate::roster::Applied;
use crate::wire::read_frame;
use crate::{ClientError, DisconnectReason, Inner, Link};
use quinn::{Connection, RecvStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The pause before the second attempt; it doubles after each failure...
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// ...up to this: the longest pause between two attempts (README, "Network
/// loss and resume", derives the worst lag from it).
const LONGEST_RETRY: Duration = Duration::from_secs(2);

pub(crate) async fn supervise(
    inner: Arc<Inner>,
    events: mpsc::Sender<Event>,
    mut connection: Connection,
    mut recv: RecvStream,
) {
    let mut generation = 0;
    loop {
        let datagrams = tokio::spawn(read_datagrams(
            connection.clone(),
            events.clone(),
            inner.clone(),
        ));
        let reading = read_control(&inner, &mut recv, &events).await;
        datagrams.abort();
        if reading.is_err() {
            // The game dropped its events: nobody is listening. End the
            // session rather than leave it open and unread.
            connection.close((CloseCode::Normal as u32).into(), b"events dropped");
            inner
                .link
                .send_replace(Link::Down(DisconnectReason::ClosedLocally));
            inner.fail_pending();
            return;
        }
        if connection.close_reason().is_none() {
            // The stream ended but the connection did not: end it, so the
            // session is not left half open.
            connection.close((CloseCode::Normal as u32).into(), b"control stream ended");
        }
        let reason = DisconnectReason::from(connection.closed().await);
        let reconnect =
            inner.config.auto_reconnect && !*inner.closing.borrow() && may_come_back(&reason);
        // The link state first, so callers whose requests fail next can
        // tell reconnecting from over.
        if !reconnect {
            inner.link.send_replace(Link::Down(reason.clone()));
            inner.fail_pending();
            let _ = events.send(Event::Disconnected { reason }).await;
            return;
        }
        inner.link.send_replace(Link::Reconnecting);
        inner.fail_pending();
        if events.send(Event::Reconnecting { reason }).await.is_err() {
            return;
        }
        let mut closing = inner.closing.subscribe();
        let reconnected = tokio::select! {
            // Dropping the attempt under way abandons its connection.
            _ = closing.wait_for(|closing| *closing) => None,
            reconnected = reconnect_with_backoff(&inner) => Some(reconnected),
        };
        match reconnected {
            Some(Ok((established, told))) => {
                connection = established.connection.clone();
                recv = inner.install(established);
                generation += 1;
                inner.link.send_replace(Link::Up(generation));
                // Installed first, checked second: a close that came
                // meanwhile either sees the new connection or is seen here.
                if *inner.closing.borrow() {
                    connection.close((CloseCode::Normal as u32).into(), b"bye");
                    continue;
                }
                for event in told {
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
            }
            Some(Err(error)) => {
                let reason = DisconnectReason::ReconnectFailed(error.to_string());
                inner.link.send_replace(Link::Down(reason.clone()));
                let _ = events.send(Event::Disconnected { reason }).await;
                return;
            }
            None => {
                let reason = DisconnectReason::ClosedLocally;
                inner.link.send_replace(Link::Down(reason.clone()));
                let _ = events.send(Event::Disconnected { reason }).await;
                return;
            }
        }
    }
}

/// A lost network or a server that cut a slow reader may take the session
/// back; a shutdown, a refusal or a takeover by another connection may not.
fn may_come_back(reason: &DisconnectReason) -> bool {
    match reason {
        DisconnectReason::ConnectionLost(_) => true,
        DisconnectReason::ClosedByServer { code, .. } => *code == CloseCode::SlowConsumer as u64,
        DisconnectReason::ServerShutdown
        | DisconnectReason::ClosedLocally
        | DisconnectReason::ReconnectFailed(_) => false,
    }
}

/// The pauses between reconnection attempts: doubling from
/// [`FIRST_RETRY`], never above [`LONGEST_RETRY`].
fn pauses() -> impl Iterator<Item = Duration> {
    std::iter::successors(Some(FIRST_RETRY), |pause| {
        Some((*pause * 2).min(LONGEST_RETRY))
    })
}

/// Reconnects and resumes, or starts a new session when the old one is
/// gone. Returns the connection and what to tell the game about it. Each
/// attempt's handshake has its own limit (`reconnect_attempt_timeout`), so
/// a network that comes back is tried within one pause of the next attempt.
async fn reconnect_with_backoff(inner: &Inner) -> Result<(Established, Vec<Event>), ClientError> {
    let deadline = Instant::now() + inner.config.reconnect_for;
    let attempt_limit = Some(inner.config.reconnect_attempt_timeout);
    let mut pauses = pauses();
    loop {
        let resume = Some(inner.resume_ticket());
        let error = match establish(&inner.endpoint, &inner.config, resume, attempt_limit).await {
            Ok(established) => {
                let told = resumed(inner, &established.welcome.resumed);
                // Replayed events follow and carry their own numbers; after
                // snapshots, numbering goes on from the Welcome's.
                if !matches!(established.welcome.resumed, Resumed::Replayed { .. }) {
                    inner
                        .last_event_seq
                        .store(established.welcome.last_event_seq, Ordering::Release);
                }
                return Ok((established, told));
            }
            Err(ClientError::Refused(refusal)) if refusal.code == ErrorCode::ResumeRefused => {
                match establish(&inner.endpoint, &inner.config, None, attempt_limit).await {
                    Ok(established) => {
                        let welcome = &established.welcome;
                        inner
                            .last_event_seq
                            .store(welcome.last_event_seq, Ordering::Release);
                        let lost_parties = {
                            let mut roster = inner.roster();
                            roster.set_session(welcome.session_id);
                            roster.clear()
                        };
                        let event = Event::SessionLost {
                            lost_parties,
                            new_session: welcome.session_id,
                        };
                        return Ok((established, vec![event]));
                    }
                    Err(error) => error,
                }
            }
            // The cluster has not settled who holds the session yet (its
            // node does not answer, or was only just judged lost): the
            // same token again after a pause, within `reconnect_for`
            // (longer than the server's grace window, after which the
            // resume is refused and a new session starts).
            Err(error @ ClientError::Refused(_)) if is_unavailable(&error) => error,
            // Identity or version refused: trying again will not help.
            Err(error @ ClientError::Refused(_)) => return Err(error),
            Err(error) => error,
        };
        let pause = pauses.next().unwrap_or(LONGEST_RETRY);
        if Instant::now() + pause > deadline {
            return Err(error);
        }
        tokio::time::sleep(pause).await;
    }
}

/// A refusal that says "not now": `Unavailable` (PROTOCOL.md section 9).
fn is_unavailable(error: &ClientError) -> bool {
    matches!(error, ClientError::Refused(refusal) if refusal.code == ErrorCode::Unavailable)
}

/// The roster after a resume, and the events that say so.
fn resumed(inner: &Inner, how: &Resumed) -> Vec<Event> {
    let mut told = vec![Event::Resumed];
    let Resumed::Snapshots { parties, .. } = how else {
        return told;
    };
    let mut roster = inner.roster();
    let kept: Vec<_> = parties.iter().map(|p| p.snapshot.party_id).collect();
    let gone: Vec<_> = roster
        .parties()
        .map(|party| party.party_id)
        .filter(|id| !kept.contains(id))
        .collect();
    for party_id in gone {
        roster.forget(party_id);
        told.push(Event::PartyLost { party_id });
    }
    for resumed in parties {
        let party_id = resumed.snapshot.party_id;
        roster.resync(resumed.snapshot.clone());
        roster.set_requests(party_id, resumed.requests.clone());
        if let Some(party) = roster.party(party_id) {
            told.push(Event::PartySynced {
                party: party.clone(),
            });
        }
    }
    told
}

/// Reads frames until the stream ends. `Err` means the game dropped its
/// event receiver.
async fn read_control(
    inner: &Inner,
    recv: &mut RecvStream,
    events: &mpsc::Sender<Event>,
) -> Result<(), ()> {
    let mut body = Vec::new();
    while let Ok(true) = read_frame(recv, &mut body).await {
        let event = match decode_body::<ServerFrame>(&body) {
            Ok(ServerFrame::Response { id, result }) => {
                inner.answer(id, result);
                continue;
            }
            Ok(ServerFrame::Event { seq, event }) => {
                inner.last_event_seq.store(seq, Ordering::Release);
                match game_event(inner, event) {
                    Some(event) => event,
                    None => continue,
                }
            }
            Ok(ServerFrame::FrameError(error)) => Event::ProtocolError {
                message: format!("the server could not decode a frame: {}", error.message),
            },
            Ok(ServerFrame::Welcome(_) | ServerFrame::Refused(_)) => continue,
            Err(error) => Event::ProtocolError {
                message: format!("undecodable frame from the server: {error}"),
            },
        };
        // Waiting here is back-pressure: a game that stops polling stops
        // reading, and the server sees a slow consumer.
        events.send(event).await.map_err(drop)?;
    }
    Ok(())
}

/// Applies a wire event to the roster and says it in game terms; `None`
/// for an event a resume's snapshot already showed.
fn game_event(inner: &Inner, event: WireEvent) -> Option<Event> {
    let mut roster = inner.roster();
    if let Applied::Stale = roster.apply(&event) {
        return None;
    }
    if let WireEvent::BlocksChanged { user_ids } = &event {
        roster.set_blocked(user_ids.clone());
    }
    // `apply` installed an accepted party and updated an updated one: the
    // roster holds what to report.
    Some(match event {
        WireEvent::Accepted(snapshot) => Event::PartyJoined {
            party: roster.party(snapshot.party_id).cloned()?,
        },
        WireEvent::MemberJoined {
            party_id, presence, ..
        } => Event::MemberJoined {
            party_id,
            member: presence,
        },
        WireEvent::MemberLeft {
            party_id,
            presence,
            reason,
            ..
        } => Event::MemberLeft {
            party_id,
            member: presence,
            reason,
        },
        WireEvent::LeaderChanged {
            party_id, leader, ..
        } => Event::LeaderChanged { party_id, leader },
        WireEvent::MemberConnection {
            party_id,
            presence,
            connected,
            ..
        } => Event::MemberConnectionChanged {
            party_id,
            member: presence,
            connected,
        },
        WireEvent::JoinRequested {
            party_id, presence, ..
        } => Event::JoinRequested {
            party_id,
            requester: presence,
        },
        WireEvent::JoinRequestGone {
            party_id,
            presence,
            reason,
            ..
        } => Event::JoinRequestGone {
            party_id,
            requester: presence,
            reason,
        },
        WireEvent::JoinRequestList {
            party_id, requests, ..
        } => Event::JoinRequests { party_id, requests },
        WireEvent::JoinRejected {
            party_id, reason, ..
        } => Event::JoinRejected { party_id, reason },
        WireEvent::Kicked { party_id, .. } => Event::Kicked { party_id },
        WireEvent::Closed { party_id, .. } => Event::PartyClosed { party_id },
        WireEvent::Updated { party_id, .. } => Event::PartyUpdated {
            party: roster.party(party_id).cloned()?,
        },
        WireEvent::Data {
            party_id,
            sender,
            op_code,
            data,
        } => Event::Data(PartyData {
            party_id,
            sender: Arc::new(sender),
            op_code,
            data,
            reliable: true,
        }),
        WireEvent::DataRefused {
            party_id,
            op_code,
            error,
        } => Event::DataRefused {
            party_id,
            op_code,
            error,
        },
        WireEvent::StatusOnline(status) => Event::StatusOnline(status),
        WireEvent::StatusChanged(status) => Event::StatusChanged(status),
        WireEvent::StatusOffline { presence } => Event::StatusOffline { presence },
        WireEvent::Invited(invite) => Event::Invited(invite),
        WireEvent::InviteGone { party_id, reason } => Event::InviteGone { party_id, reason },
        WireEvent::InviteDeclined { party_id, presence } => Event::InviteDeclined {
            party_id,
            by: presence,
        },
        WireEvent::PartyStateChanged {
            party_id, state, ..
        } => Event::PartyStateChanged { party_id, state },
        WireEvent::MemberAttributesChanged {
            party_id,
            presence,
            attributes,
            ..
        } => Event::MemberAttributesChanged {
            party_id,
            member: presence,
            attributes,
        },
        WireEvent::JoinCodeChanged { party_id, code, .. } => {
            Event::JoinCodeChanged { party_id, code }
        }
        WireEvent::ListingChanged {
            party_id,
            listed,
            properties,
            ..
        } => Event::ListingChanged {
            party_id,
            listed,
            properties,
        },
        WireEvent::Banned {
            party_id, until_ms, ..
        } => Event::Banned { party_id, until_ms },
        WireEvent::TicketStarted {
            ticket_id,
            party_id,
        } => Event::TicketStarted {
            ticket_id,
            party_id,
        },
        WireEvent::TicketCancelled { ticket_id, reason } => {
            Event::TicketCancelled { ticket_id, reason }
        }
        WireEvent::Matched(found) => Event::Matched(found),
        WireEvent::ReadyCheckStarted {
            party_id, check, ..
        } => Event::ReadyCheckStarted { party_id, check },
        WireEvent::ReadyCheckAnswered {
            party_id,
            check_id,
            presence,
            ready,
            ..
        } => Event::ReadyCheckAnswered {
            party_id,
            check_id,
            member: presence,
            ready,
        },
        WireEvent::ReadyCheckEnded {
            party_id,
            check_id,
            outcome,
            ready,
            not_ready,
            no_answer,
            ..
        } => Event::ReadyCheckEnded {
            party_id,
            check_id,
            outcome,
            ready,
            not_ready,
            no_answer,
        },
        WireEvent::BlocksChanged { user_ids } => Event::BlocksChanged { user_ids },
    })
}

async fn read_datagrams(connection: Connection, events: mpsc::Sender<Event>, inner: Arc<Inner>) {
    while let Ok(datagram) = connection.read_datagram().await {
        let Ok(data) = decode_server_datagram(datagram) else {
            continue;
        };
        let sender = inner.roster().sender(data.sender);
        let event = Event::Data(PartyData {
            party_id: data.party_id,
            sender,
            op_code: data.op_code,
            data: data.payload,
            reliable: false,
        });
        // Unreliable data is worth less than blocking for: drop if full.
        if events.try_send(event).is_err() {
            inner.dropped_datagrams.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_from_the_first_up_to_the_longest_and_stay_there() {
        let seen: Vec<Duration> = pauses().take(8).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(
            seen,
            [100, 200, 400, 800, 1600, 2000, 2000, 2000].map(ms),
            "the pause between attempts"
        );
    }
}
