//! What other nodes send this one, served: commands forwarded to parties
//! homed here (run for a proxy of their caller), replies and events for
//! sessions here, party data, questions, presence and invites (`super::presence`), heartbeats, and a
//! node's loss. The counterpart of a connection's control loop, for nodes
//! instead of clients: it sits on top, beside `connection`.

use super::peers::{
    ControlMessage, DatagramMessage, Header, Heartbeat, Inbound, InboundLanes, NodeId, Question,
};
use super::route::{Heard, Loss, Route};
use super::session::{lock, Outbound, SessionAbroad, SessionRef};
use super::{commands, grace, presence, state::Shared, tickets};
use crate::party::Link;
use crate::protocol::{Event, JoinOutcome, RejectReason, Reply, TicketCancelReason};
use std::sync::Arc;

/// Serves what arrives from other nodes, and heart-beats, until aborted.
/// Alone, returns at once.
pub(crate) async fn run(shared: Arc<Shared>) {
    let route = shared.route();
    let Some(InboundLanes {
        mut control,
        mut datagrams,
    }) = route.peers().start()
    else {
        return;
    };
    let datagram_task = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut recipients = Vec::new();
            while let Some(payload) = datagrams.recv().await {
                match postcard::from_bytes::<DatagramMessage>(&payload) {
                    Ok(message) => on_datagram(&shared, message, &mut recipients),
                    Err(_) => undecodable(route_metrics(&shared)),
                }
            }
        })
    };
    let heartbeat_task = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let route = shared.route();
            let mut every = tokio::time::interval(route.timings.heartbeat);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = route.beat_soon.notified() => {}
                }
                route.beat(false);
            }
        })
    };
    let _helpers = AbortOnDrop(vec![datagram_task, heartbeat_task]);
    // Proxies are made and dropped only on this task, so a proxy about to
    // take a seat is never dropped between; and nodes are judged lost here,
    // in order with what they said.
    let mut tidy = tokio::time::interval(route.timings.heartbeat);
    tidy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            inbound = control.recv() => match inbound {
                None => break,
                Some(inbound) => on_inbound(&shared, inbound),
            },
            _ = tidy.tick() => {
                for tag in route.silent_nodes() {
                    let before = Before::now(route, None);
                    node_lost(&shared, tag, Loss::Silent);
                    nodes_changed(&shared, before);
                }
                route.drop_idle_proxies();
                presence::tidy(&shared.users, route, crate::auth::unix_now_ms());
            }
        }
    }
}

/// One control message or heartbeat from another node (or this node's own
/// heartbeat, echoed), handled as it arrives.
pub(crate) fn on_inbound(shared: &Shared, inbound: Inbound) {
    match inbound {
        Inbound::Control(payload) => on_payload(shared, &payload),
        Inbound::Announce(payload) => {
            // A heartbeat of another build may not decode: such a node is
            // ignored either way (`Route::heard`).
            if let Ok(beat) = postcard::from_bytes::<Heartbeat>(&payload) {
                heard(shared, beat);
            }
        }
    }
}

fn route_metrics(shared: &Shared) -> &super::peers::PeerMetrics {
    shared.route().peers().metrics()
}

fn undecodable(metrics: &super::peers::PeerMetrics) {
    // Only another build of partyline (or something else entirely) sends
    // what this one cannot read.
    super::peers::PeerMetrics::add(&metrics.undecodable, 1);
    tracing::warn!("undecodable cluster message dropped (a node of another build?)");
}

/// Aborts its tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn heard(shared: &Shared, beat: Heartbeat) {
    let route = shared.route();
    let mut heard = route.heard(&beat);
    if let Heard::JudgedLost = heard {
        tracing::warn!(by = %beat.name, "this node was judged lost");
        rejoin(shared);
        heard = route.heard(&beat);
    }
    if take(shared, beat.tag, beat.incarnation, Some(&beat.name), heard) {
        route.note_matcher(beat.tag, beat.incarnation, beat.matcher);
    }
}

/// A control message: taken when it is of the incarnations this node
/// talks to now (a node not heard yet joins by it), dropped when stale.
fn on_payload(shared: &Shared, payload: &[u8]) {
    let Ok((header, message)) = postcard::take_from_bytes::<Header>(payload) else {
        return undecodable(route_metrics(shared));
    };
    let heard = shared.route().admit(&header);
    if !take(shared, header.from, header.from_incarnation, None, heard) {
        return;
    }
    match postcard::from_bytes::<ControlMessage>(message) {
        Ok(message) => on_control(shared, header.from, message),
        Err(_) => undecodable(route_metrics(shared)),
    }
}

/// Acts on what a heartbeat or a message's header told of incarnation
/// `incarnation` of node `tag`: the ties to an incarnation that is over
/// end, a new one joins, and the matcher may change. False when what came
/// is stale.
fn take(shared: &Shared, tag: NodeId, incarnation: u64, name: Option<&str>, heard: Heard) -> bool {
    let route = shared.route();
    match heard {
        Heard::Known => true,
        Heard::Stale | Heard::JudgedLost => false,
        Heard::Changed { lost, joined } => {
            // A node heard as a new incarnation: the old one's books are
            // gone, so its users' owner changed, though not its tag.
            let restarted = (lost.is_some() && joined).then_some(tag);
            let before = Before::now(route, restarted);
            if let Some(loss) = lost {
                // A node that restarted lost everything it homed; one that
                // leaves takes it with it.
                node_lost(shared, tag, loss);
            }
            if joined {
                // Before it is talked to: what ending them says goes nowhere.
                end_held_seats(shared, tag);
                route.add_node(tag, incarnation, name);
            }
            nodes_changed(shared, before);
            joined
        }
    }
}

/// The node table before a change: the matcher, and the other nodes whose
/// books this node relied on (not one heard again as a new incarnation,
/// whose old incarnation's books are gone).
struct Before {
    matcher: NodeId,
    nodes: Vec<NodeId>,
}

impl Before {
    fn now(route: &Route, restarted: Option<NodeId>) -> Before {
        let mut nodes = route.live_nodes();
        nodes.retain(|node| Some(*node) != restarted);
        Before {
            matcher: route.matcher(),
            nodes,
        }
    }
}

/// The live nodes changed: the pool moves if the matcher did, and the new
/// owners of users hear what this node holds of them.
fn nodes_changed(shared: &Shared, before: Before) {
    let route = shared.route();
    tickets::after_matcher_change(shared, before.matcher);
    presence::reregister(&shared.users, route);
    let pending = || pending_invites(shared);
    presence::invites_moved(&shared.users, route, &before.nodes, pending);
}

/// The pending invites of the parties homed here, with their invitees.
fn pending_invites(shared: &Shared) -> Vec<(String, crate::protocol::PartyInvite)> {
    let each_party = shared.table.collect(usize::MAX, |party| {
        let invites = party
            .invites()
            .map(|i| (i.user_id.clone(), party.wire_invite(i)));
        Some(invites.collect::<Vec<_>>())
    });
    each_party.into_iter().flatten().collect()
}

/// Another node judged this node lost: the others have dropped what tied
/// them to it, so it drops what ties it to them, every session here told
/// as for a lost node, and comes back as a new incarnation.
fn rejoin(shared: &Shared) {
    let route = shared.route();
    for tag in route.live_nodes() {
        node_lost(shared, tag, Loss::Rejoining);
    }
    // The seats held for sessions of nodes lost before: ties too.
    for proxy in route.take_proxies_off_the_table() {
        proxy.end_now();
        grace::end_session(shared, &proxy);
    }
    route.renew();
}

/// Node `tag` is heard again, as a new incarnation that knows nothing of
/// its old sessions: the seats held here for them end at once (loss
/// stays mutual; a resume elsewhere took those it could).
fn end_held_seats(shared: &Shared, tag: NodeId) {
    let route = shared.route();
    for proxy in route.take_proxies_on(tag) {
        tracing::info!(session = %proxy.session_id(), "its node is back as a new incarnation: the seats held for it end");
        // Its grace timers find it ended.
        proxy.end_now();
        grace::end_session(shared, &proxy);
    }
}

/// Everything that tied this node to `tag` ends: its commands in flight
/// fail, the parties it homed end for the sessions here, and its sessions
/// leave the parties homed here; or, when it was judged lost (silent) in
/// a cluster that shares a resume key, their seats are held for the grace
/// window, for a resume on another node (docs/CLUSTER.md, "Resume after
/// the old node died").
pub(crate) fn node_lost(shared: &Shared, tag: NodeId, loss: Loss) {
    let route = shared.route();
    // Without the shared key no node could verify its tokens: holding
    // would only keep seats nobody can take back.
    let hold = loss == Loss::Silent && shared.resume_key.cluster_wide;
    let (name, failed, gone) = route.forget_node(tag, loss, hold);
    tracing::warn!(node = ?name, tag = %format_args!("{tag:08x}"), why = loss.why(), held = hold, "node lost: its parties end, its members leave (or are held)");
    for pending in failed {
        pending.session.push(Outbound::Response {
            id: pending.id,
            result: Err(crate::protocol::ErrorBody::new(
                crate::protocol::ErrorCode::Unavailable,
                "the party's node left the cluster before answering",
            )),
        });
        let _ = pending.done.send(());
    }
    for proxy in gone {
        match hold {
            true => grace::hold_for_lost_node(shared, &proxy),
            false => grace::end_session(shared, &proxy),
        }
    }
    presence::node_lost(&shared.users, tag);
    for (party_id, ticket_id) in shared.matchmaking.node_lost(tag) {
        tickets::clear_party_ticket(shared, party_id, ticket_id);
    }
    for session in shared.all_sessions() {
        lose_remote_seats(route, &session, tag);
    }
}

/// A session here loses its tickets and seats on node `tag`: it hears
/// them end, with the party `seq` after the last event it saw.
fn lose_remote_seats(route: &Route, session: &SessionRef, tag: NodeId) {
    let lost: Vec<u64> = lock(&session.abroad)
        .as_mut()
        .map(|state| {
            let lost: Vec<u64> = state
                .tickets
                .iter()
                .copied()
                .filter(|id| route.node_of_ticket(*id) == tag)
                .collect();
            state.tickets.retain(|id| route.node_of_ticket(*id) != tag);
            lost
        })
        .unwrap_or_default();
    for ticket_id in lost {
        session.push_event(Event::TicketCancelled {
            ticket_id,
            reason: TicketCancelReason::NodeLost,
        });
    }
    for party_id in session.party_ids() {
        if route.home_of(party_id) != tag {
            continue;
        }
        Link::detach(session, party_id);
        let seat = lock(&session.abroad)
            .as_mut()
            .and_then(|state| state.remote.remove(&party_id));
        let seq = seat.map_or(0, |s| s.seq) + 1;
        session.push_event(match seat {
            Some(super::session::RemoteSeat { seated: false, .. }) => Event::JoinRejected {
                party_id,
                seq,
                reason: RejectReason::PartyClosed,
            },
            _ => Event::Closed { party_id, seq },
        });
    }
}

fn on_control(shared: &Shared, from: NodeId, message: ControlMessage) {
    let route = shared.route();
    match message {
        ControlMessage::Command {
            corr,
            from,
            caller,
            command,
        } => {
            let proxy = route.proxy(caller, from);
            // Runs as a command of the proxy: its reply and events go back
            // to `from` through the proxy.
            commands::run_forwarded(shared, &proxy, corr, command);
        }
        ControlMessage::Reply { corr, result } => on_reply(route, corr, result),
        ControlMessage::Events(events) => {
            for super::peers::RelayedEvent { to, event } in events {
                relay_event(shared, &to, event);
            }
        }
        ControlMessage::Membership {
            session,
            party_id,
            held,
        } => membership(shared, from, session, party_id, held),
        ControlMessage::Connection {
            session,
            connected,
            hand_over_now,
        } => {
            if let Some(proxy) = proxy_on(route, session, from) {
                grace::set_connected(shared, &proxy, connected, hand_over_now);
            }
        }
        ControlMessage::Quality { session, score } => {
            if let Some(proxy) = proxy_on(route, session, from) {
                grace::connection_measured(shared, &proxy, score);
            }
        }
        ControlMessage::LeaderGraceOver { session } => {
            if let Some(proxy) = proxy_on(route, session, from) {
                grace::leader_grace_over(shared, &proxy);
            }
        }
        ControlMessage::Blocks { session, user_ids } => {
            if let Some(proxy) = proxy_on(route, session, from) {
                commands::blocks_of_proxy(shared, &proxy, user_ids);
            }
        }
        ControlMessage::SessionEnded { session } => {
            if proxy_on(route, session, from).is_some() {
                if let Some(proxy) = route.take_proxy(session) {
                    grace::end_session(shared, &proxy);
                }
            }
            // Its solo ticket, if it waits in this node's pool.
            shared.matchmaking.session_ended(session);
        }
        ControlMessage::PoolTicket {
            ticket_id,
            request,
            submitter,
            members,
            waited_ms,
        } => {
            let waited = std::time::Duration::from_millis(waited_ms);
            tickets::pool_ticket(shared, ticket_id, request, submitter, members, waited)
        }
        ControlMessage::Pooled { ticket_id } => pooled(shared, from, ticket_id),
        ControlMessage::Unpool { ticket_id } => shared.matchmaking.unpool(ticket_id),
        ControlMessage::PoolMatched { ticket_id } => {
            if let Some(party_id) = shared.matchmaking.shadow_matched(ticket_id) {
                tickets::clear_party_ticket(shared, party_id, ticket_id);
            }
        }
        ControlMessage::PoolRefused { ticket_id } => pool_refused(shared, ticket_id),
        ControlMessage::PoolRepoint {
            ticket_id,
            session,
            from,
            to,
        } => tickets::pool_repoint(shared, ticket_id, session, (from, to)),
        ControlMessage::Ask {
            corr,
            from,
            question,
        } => {
            let answer = match question {
                // The owner notes the asker as a follower node.
                Question::Follow(user_ids) => presence::followed_by(&shared.users, from, &user_ids),
                question => commands::answer(shared, question),
            };
            let reply = ControlMessage::Answer {
                corr,
                from: route.me,
                answer,
            };
            route.outlet.control(from, &reply);
        }
        ControlMessage::Directory(message) => {
            presence::on_message(&shared.users, route, from, message)
        }
        ControlMessage::Answer { corr, from, answer } => {
            // Here, in order with what that owner passes on, not later in
            // the waiting command's task.
            presence::note_answer(&shared.users, &answer);
            route.gathered(corr, from, answer);
        }
    }
}

/// A party homed on `from` seated (or queued) a session of this node, or
/// no longer holds it.
fn membership(
    shared: &Shared,
    from: NodeId,
    session: crate::protocol::SessionId,
    party_id: crate::protocol::PartyId,
    held: bool,
) {
    let route = shared.route();
    match shared.find_session(session) {
        Some(session) if held => {
            session.attach(party_id);
            // The home learns the list of a member it seated (or queued),
            // for the blocks it shares there.
            if !session.blocks_nobody() {
                let blocks = ControlMessage::Blocks {
                    session: session.session_id(),
                    user_ids: session.block_list(),
                };
                route.outlet.control(from, &blocks);
            }
        }
        Some(session) => {
            session.detach(party_id);
            Route::note_seat(&session, party_id, 0, None);
        }
        // A seat for a session that ended here (the server-side API seated
        // it as it ended): the home hears it ended, so the seat goes too.
        None if held => {
            let ended = ControlMessage::SessionEnded { session };
            route.outlet.control(route.home_of(party_id), &ended);
        }
        None => {}
    }
}

/// The proxy of `session` when it lives on `from`: what a node says of a
/// session that has since resumed on another node is not about the seat
/// now.
fn proxy_on(
    route: &Route,
    session: crate::protocol::SessionId,
    from: NodeId,
) -> Option<SessionRef> {
    route
        .find_proxy(session)
        .filter(|proxy| Route::lives_on(proxy, from))
}

/// A forwarded command's answer: to its caller, noting what it says of the
/// caller's seat there (for a lost home).
fn on_reply(route: &Route, corr: u32, result: Result<Reply, crate::protocol::ErrorBody>) {
    let Some(pending) = route.answered(corr) else {
        // Answered late: the caller already heard `Unavailable`.
        return;
    };
    match &result {
        Ok(Reply::Join(JoinOutcome::Joined(snapshot))) => Route::note_seat(
            &pending.session,
            snapshot.party_id,
            snapshot.seq,
            Some(true),
        ),
        Ok(Reply::Join(JoinOutcome::Queued { party_id, seq })) => {
            Route::note_seat(&pending.session, *party_id, *seq, Some(false))
        }
        _ => {}
    }
    pending.session.push(Outbound::Response {
        id: pending.id,
        result,
    });
    let _ = pending.done.send(());
}

/// Node `from` pooled a ticket of this node.
fn pooled(shared: &Shared, from: NodeId, ticket_id: u64) {
    if !shared.matchmaking.pooled_at(ticket_id, from) {
        // Ended here while it moved: out of that pool too.
        let unpool = ControlMessage::Unpool { ticket_id };
        shared.route().outlet.control(from, &unpool);
    }
}

/// The matcher could not pool a party's ticket of this node: it ends.
fn pool_refused(shared: &Shared, ticket_id: u64) {
    // Its members heard TicketStarted from here: they hear it end.
    if let Some((Some(party_id), _)) = shared.matchmaking.owner_of(ticket_id) {
        tickets::clear_party_ticket(shared, party_id, ticket_id);
    }
    shared
        .matchmaking
        .cancel(ticket_id, TicketCancelReason::Cancelled);
}

/// An event from a party's home for sessions here: noted (their remote
/// seats and tickets, for a lost home), then queued.
fn relay_event(shared: &Shared, to: &[crate::protocol::SessionId], event: Event) {
    let seat = match (&event, event.party_id(), event.party_seq()) {
        (
            Event::JoinRejected { .. }
            | Event::Kicked { .. }
            | Event::Closed { .. }
            | Event::Banned { .. },
            Some(party),
            Some(seq),
        ) => Some((party, seq, None)),
        (_, Some(party), Some(seq)) => Some((party, seq, Some(true))),
        _ => None,
    };
    let ticket = match &event {
        Event::TicketStarted { ticket_id, .. } => Some((*ticket_id, true)),
        Event::TicketCancelled { ticket_id, .. } => Some((*ticket_id, false)),
        Event::Matched(found) => Some((found.ticket_id, false)),
        _ => None,
    };
    for session in shared.find_sessions(to) {
        if let Some((party, seq, seated)) = seat {
            Route::note_seat(&session, party, seq, seated);
        }
        if let Some((ticket_id, waiting)) = ticket {
            let mut state = lock(&session.abroad);
            let tickets = &mut state
                .get_or_insert_with(Box::<SessionAbroad>::default)
                .tickets;
            match waiting {
                true => tickets.insert(ticket_id),
                false => tickets.remove(&ticket_id),
            };
        }
        session.push_event(event.clone());
    }
}

fn on_datagram(shared: &Shared, message: DatagramMessage, recipients: &mut Vec<SessionRef>) {
    match message {
        DatagramMessage::ToHome {
            party_id,
            sender,
            op_code,
            payload,
        } => {
            let checked = shared.table.read(party_id, |party| {
                let sender = party.data_recipients(sender, op_code, recipients)?;
                Ok(sender.withheld)
            });
            match checked {
                Ok(0) => {}
                Ok(withheld) => {
                    shared.metrics.data_withheld.inc_by(withheld as u64);
                }
                Err(_) => {
                    // Its sender's node checked the seat; it ended meanwhile.
                    super::metrics::count(&shared.metrics.dropped_not_member);
                    recipients.clear();
                    return;
                }
            }
            let outgoing =
                crate::protocol::encode_server_datagram(party_id, sender, op_code, &payload);
            shared.route().fan_out(recipients, outgoing);
        }
        DatagramMessage::ToMembers { to, datagram } => {
            let sessions = shared.find_sessions(&to);
            shared.route().datagram_for(sessions, datagram);
        }
    }
}
