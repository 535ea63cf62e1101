//! A session that resumes on another node than the one that issued its
//! resume token (its flow moved, behind a load balancer): the node the
//! client reached takes the session over, and every party that holds a
//! seat or a request of it re-points that seat to the new node
//! (docs/CLUSTER.md, "Resume on any node"). The client gets snapshots.
//!
//! When the token's node was judged lost, the homes of the session's
//! parties hold its seats for the grace window: the node the client
//! reached checks the token's MAC with the cluster's key, claims the
//! session from its user's owner (the first claim wins, so the token works
//! once), and asks every node to re-point the seats (docs/CLUSTER.md,
//! "Resume after the old node died").

use super::snapshots_of;
use crate::protocol::{
    CloseCode, ErrorBody, ErrorCode, PartyId, Presence, Resumed, ResumedParty, SessionId, Welcome,
    PROTOCOL_VERSION,
};
use crate::server::peers::{Answer, Claimed, ControlMessage, HandOverFacts, NodeId, Question};
use crate::server::route::Route;
use crate::server::session::{lock, OutboxSender, ResumeToken, SessionLink, SessionRef};
use crate::server::state::{deliver, Shared};
use crate::server::transport::ClientConnection;
use std::collections::HashSet;
use std::sync::Arc;

/// Who resumes: the identity the Hello proved, and where from.
pub(crate) struct Resuming {
    pub(crate) user_id: String,
    pub(crate) username: String,
    pub(crate) token: ResumeToken,
    /// The protocol version of the resuming Hello: the session speaks it
    /// here (it resumes from snapshots, so no logged event was made for
    /// another version).
    pub(crate) version: u16,
    pub(crate) address: Option<crate::server::player_limits::AddressKey>,
}

fn refused(message: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::ResumeRefused, message)
}

/// A refusal the client may try again shortly with the same token (the
/// cluster has not settled who holds the session yet): `Unavailable`;
/// for a version 2 client, which does not know it, `ResumeRefused` as
/// before (it starts a new session).
fn try_again(version: u16, message: &str) -> ErrorBody {
    let code = match version >= PROTOCOL_VERSION {
        true => ErrorCode::Unavailable,
        false => ErrorCode::ResumeRefused,
    };
    ErrorBody::new(code, message)
}

/// Where a resumed session comes from.
enum Source {
    /// The node that held it handed it over (it lives).
    HandedOver(Box<HandOverFacts>),
    /// Its node was judged lost: its parties' homes hold its seats, and
    /// this node claimed it. What that node knew of it (its status and
    /// follows, its event numbers) is gone with it.
    LostNode,
}

/// Whether a resume token names another node of this cluster (then
/// `resume_elsewhere` serves it).
pub(crate) fn names_another_node(shared: &Shared, token: &ResumeToken) -> bool {
    let route = shared.route();
    route.clustered() && token.node != route.me
}

/// The client's session lives on the node its token names: that node hands
/// it over (checking the secret), or it was judged lost and this node
/// claims it; the session is made here with the same id, and the homes of
/// its parties re-point its seats here. Answers the Welcome (always from
/// snapshots), the session and its attachment.
pub(crate) async fn resume_elsewhere(
    shared: &Shared,
    resuming: Resuming,
    connection: Option<ClientConnection>,
    outbox: OutboxSender,
) -> Result<(Welcome, SessionRef, u64), ErrorBody> {
    let route = shared.route();
    let token = &resuming.token;
    let old_node = token.node;
    if shared.find_session(token.session).is_some() {
        return Err(refused("resume token already used; start a new session"));
    }
    // With the cluster's key, a token this cluster did not issue to this
    // user is refused here; without it, only its node can tell (its secret).
    if shared.resume_key.cluster_wide && !shared.resume_key.verifies(token, &resuming.user_id) {
        return Err(refused(
            "resume token not issued by this cluster for this user",
        ));
    }
    let source = find_source(shared, &resuming).await?;
    let presence = Presence {
        user_id: resuming.user_id,
        username: resuming.username,
        session_id: token.session,
    };
    let next_event_seq = match &source {
        Source::HandedOver(facts) => facts.next_event_seq,
        Source::LostNode => 1,
    };
    let session = Arc::new(
        SessionLink::new(
            presence,
            crate::server::replay::ReplayLog::new(
                shared.config.replay_events,
                shared.config.replay_bytes,
            ),
            shared.metrics.clone(),
        )
        .numbered_from(next_event_seq)
        .opened_from(resuming.address)
        .speaking(resuming.version),
    );
    if let Source::HandedOver(facts) = &source {
        let mut social = lock(&session.social);
        social.status = facts.status.clone();
        social.visible = facts.visible;
        // Before its followers here see it (presence hides it by its list).
        session.replace_blocks(facts.blocks.iter().cloned().collect());
    }
    // Counted as a session of its user here; the old node let it go.
    shared
        .register_session(session.clone())
        .map_err(|_| refused("this user has the most sessions allowed here"))?;
    crate::server::metrics::count(&shared.metrics.sessions_resumed);
    crate::server::presence::session_started(&shared.users, route, &session);
    // A handed-over session's follows and tickets follow it here (a lost
    // node's went with it).
    if let Source::HandedOver(facts) = &source {
        crate::server::presence::follows_moved(&shared.users, route, &session, &facts.follows)
            .await;
        crate::server::tickets::moved_here(shared, &session, old_node, &facts.tickets);
    }
    let attached = session
        .attach(connection, outbox, None)
        .map_err(|_| refused("the session ended while it resumed"))?;
    let (parties, waiting, kept) = take_seats(shared, &session, old_node, source).await;
    // A lost node's session: its block list as its parties' homes kept it,
    // given back (the session hears `BlocksChanged`).
    if !kept.is_empty() {
        let kept = kept.into_iter().collect();
        super::quiet::set_blocks(shared, &session, kept, super::BlocksBy::Server);
    }
    tracing::info!(from = %format_args!("{old_node:08x}"), parties = parties.len(), "session resumed from another node");
    let welcome = Welcome {
        session_id: session.session_id(),
        presence: session.presence.clone(),
        resume_token: shared.resume_key.issue(
            session.session_id(),
            &session.presence.user_id,
            route.me,
            attached.resume_secret,
        ),
        limits: shared.limits.clone(),
        last_event_seq: attached.last_event_seq,
        resumed: Resumed::Snapshots { parties, waiting },
    };
    Ok((welcome, session, attached.generation))
}

/// Where the session is taken from: the token's node, asked to hand it
/// over while it lives; or, once it is judged lost (also while it was
/// asked), the seats its parties' homes hold, claimed.
async fn find_source(shared: &Shared, resuming: &Resuming) -> Result<Source, ErrorBody> {
    let route = shared.route();
    let token = &resuming.token;
    let old_node = token.node;
    if route.knows(old_node) {
        let question = Question::HandOver {
            session: token.session,
            user_id: resuming.user_id.clone(),
            secret: token.secret,
            to: route.me,
        };
        match route.ask_node(old_node, question).await {
            Some(Answer::HandedOver(Some(facts))) => return Ok(Source::HandedOver(facts)),
            Some(_) => {
                return Err(refused(
                    "resume token unknown, already used, another user's, or its grace window is over; start a new session",
                ))
            }
            // Judged lost while it was asked: its seats are held.
            None if !route.knows(old_node) => {}
            None => {
                return Err(try_again(
                    resuming.version,
                    "the node that held this session did not answer; try again shortly",
                ))
            }
        }
    } else if route.just_joined() {
        return Err(try_again(
            resuming.version,
            "this node just joined the cluster and may not have heard the node that held this session yet; try again shortly",
        ));
    }
    claim_from_lost_node(shared, resuming).await?;
    Ok(Source::LostNode)
}

/// The token's node was judged lost: this node may take its session if
/// the cluster's key vouches for the token (checked by the caller), the
/// loss is within the grace window, and the user's owner grants this node
/// the first claim.
async fn claim_from_lost_node(shared: &Shared, resuming: &Resuming) -> Result<(), ErrorBody> {
    let route = shared.route();
    let token = &resuming.token;
    if !shared.resume_key.cluster_wide {
        return Err(refused(
            "the node that held this session is gone, and without a shared --reset-key-file no other node can check its token; start a new session",
        ));
    }
    if !route.link_is_up() {
        // The user's owner and the homes could not be asked.
        return Err(try_again(
            resuming.version,
            "the cluster link is down; try again shortly",
        ));
    }
    let Some(judged_at) = route.judged_lost_at(token.node) else {
        return Err(refused(
            "the node that held this session is not in the cluster; start a new session",
        ));
    };
    if judged_at.elapsed() > shared.config.grace {
        return Err(refused(
            "the node that held this session was lost longer ago than the grace window; start a new session",
        ));
    }
    let (session, from, to) = (token.session, token.node, route.me);
    let question = Question::Claim { session, from, to };
    let owner = route.owner_of(&resuming.user_id);
    let answer = route
        .ask_at(owner, question, |_| claim(shared, session, from, to))
        .await;
    match answer {
        Some(Answer::Claimed(Claimed::Granted)) => Ok(()),
        Some(Answer::Claimed(Claimed::Taken)) => Err(refused(
            "resume token already used; start a new session",
        )),
        // Its owner still hears the lost node, or did not answer.
        _ => Err(try_again(
            resuming.version,
            "the cluster has not settled that the node that held this session is lost; try again shortly",
        )),
    }
}

/// On the owner of a session's user: node `to` claims session `session`,
/// whose node `from` it judged lost. The first claim wins; while this node
/// still hears `from`, nobody's does.
pub(crate) fn claim(shared: &Shared, session: SessionId, from: NodeId, to: NodeId) -> Answer {
    let route = shared.route();
    if from == route.me || route.knows(from) {
        return Answer::Claimed(Claimed::NotLost);
    }
    // Past the last moment any node takes the token (each within its own
    // grace window after its own judgment, which come about a node
    // timeout apart), with room to spare.
    let keep_for = shared.config.grace * 2 + route.timings.node_timeout * 4;
    let granted = lock(&shared.resume_claims).claim(session, keep_for);
    tracing::info!(%session, by = %format_args!("{to:08x}"), granted, "a lost node's session claimed");
    Answer::Claimed(match granted {
        true => Claimed::Granted,
        false => Claimed::Taken,
    })
}

/// The session's seats and requests follow it here: those the old node
/// homes came re-pointed with its facts, those homed here are re-pointed
/// here, the others by their homes (the homes of its parties elsewhere,
/// as its old node named them; every node, when that node was lost).
/// Their snapshots, the requests that wait, and, for a session whose node
/// was lost, its block list as a home held it (else none).
async fn take_seats(
    shared: &Shared,
    session: &SessionRef,
    old_node: NodeId,
    source: Source,
) -> (Vec<ResumedParty>, Vec<PartyId>, Vec<String>) {
    let lost = matches!(source, Source::LostNode);
    let mut kept = Vec::new();
    let route = shared.route();
    let (mut parties, mut waiting, homes) = match source {
        Source::HandedOver(facts) => {
            let homes: HashSet<NodeId> = (facts.elsewhere.iter())
                .map(|party_id| route.home_of(*party_id))
                .filter(|home| *home != route.me && *home != old_node)
                .collect();
            (facts.parties, facts.waiting, homes)
        }
        Source::LostNode => {
            let homes = route.live_nodes().into_iter().collect();
            (Vec::new(), Vec::new(), homes)
        }
    };
    // Parties homed here: the proxy of the old node gives way to the session.
    if let Some(proxy) = route.take_proxy(session.session_id()) {
        if Route::lives_on(&proxy, old_node) {
            if lost {
                kept = proxy.block_list();
            }
            let (here, queued) = relink_here(shared, &proxy, session);
            parties.extend(here);
            waiting.extend(queued);
            // Held for a lost node, its grace timers find it ended.
            proxy.end_now();
        }
    }
    // Noted before asking the others, so a home lost meanwhile ends them.
    note_remote(session, &parties, &waiting, route);
    let question = Question::Repoint {
        session: session.session_id(),
        user_id: session.presence.user_id.clone(),
        from: old_node,
        to: route.me,
    };
    let gathered = route.ask_each(homes, |_| question.clone()).await;
    for (_, answer) in gathered.answers {
        if let Answer::Snapshots {
            parties: found,
            waiting: queued,
            blocks,
        } = answer
        {
            if lost && kept.is_empty() {
                kept = blocks;
            }
            note_remote(session, &found, &queued, route);
            parties.extend(found);
            waiting.extend(queued);
        }
    }
    // A home that did not answer in time may re-point the seats late: the
    // client is not told of them, so they end there (after the re-point,
    // on the same ordered lane).
    let ended = ControlMessage::SessionEnded {
        session: session.session_id(),
    };
    for home in gathered.silent {
        route.send_to(home, &ended);
    }
    (parties, waiting, kept)
}

/// What the session now holds on other homes: its set of parties, and
/// their last `seq` (for `Closed` when a home is lost).
fn note_remote(session: &SessionRef, parties: &[ResumedParty], waiting: &[PartyId], route: &Route) {
    for party in parties {
        let party_id = party.snapshot.party_id;
        if !route.is_here(party_id) {
            session.note_party(party_id, true);
            Route::note_seat(session, party_id, party.snapshot.seq, Some(true));
        }
    }
    for party_id in waiting {
        if !route.is_here(*party_id) {
            session.note_party(*party_id, true);
            Route::note_seat(session, *party_id, 0, Some(false));
        }
    }
}

/// Gives `new` the seats and requests `old` holds in parties homed here
/// (a seat held disconnected comes back: its members hear
/// `MemberConnection`); their snapshots and the requests that wait.
pub(crate) fn relink_here(
    shared: &Shared,
    old: &SessionRef,
    new: &SessionRef,
) -> (Vec<ResumedParty>, Vec<PartyId>) {
    let me = new.session_id();
    let mut moved = Vec::new();
    for party_id in old.party_ids() {
        let relinked = shared.table.relink(party_id, me, new.clone(), |old, new| {
            old.note_party(party_id, false);
            new.note_party(party_id, true);
        });
        if relinked.is_some() {
            let _ = shared.table.apply(
                party_id,
                |party| party.set_connected(me, true, false).map(|e| ((), e)),
                |_, effects| deliver(shared, effects),
            );
            moved.push(party_id);
        }
    }
    snapshots_of(shared, me, moved)
}

/// On the node a token names: hands session `session` over to node `to`
/// if `secret` is its current one. Its connection is closed
/// (`Superseded`), it leaves this node without leaving its parties, and
/// the parties homed here re-point its seats to `to`.
pub(crate) fn hand_over(
    shared: &Shared,
    session_id: SessionId,
    user_id: &str,
    secret: uuid::Uuid,
    to: NodeId,
) -> Answer {
    let route = shared.route();
    let Some(session) = shared.find_session(session_id) else {
        return Answer::HandedOver(None);
    };
    if session.presence.user_id != user_id || session.remote.is_some() {
        return Answer::HandedOver(None);
    }
    let Some(handed) = session.hand_over(secret) else {
        return Answer::HandedOver(None);
    };
    if let Some(connection) = handed.connection {
        connection.close(
            CloseCode::Superseded as u32,
            b"session resumed on another node",
        );
    }
    shared.forget_session(session_id);
    let (status, visible, follows) = {
        let social = lock(&session.social);
        let follows = social.follows.iter().cloned().collect();
        (social.status.clone(), social.visible, follows)
    };
    // Out of the users here without an offline for its followers: it is
    // still online, on the other node.
    lock(&session.social).visible = false;
    crate::server::presence::session_ended(&shared.users, route, &session);
    let elsewhere = session
        .party_ids()
        .into_iter()
        .filter(|party_id| !route.is_here(*party_id))
        .collect();
    let proxy = route.proxy(session.presence.clone(), to);
    // The same session through the proxy: the same list, before the
    // parties here look at it again.
    let blocks = session.block_list();
    proxy.replace_blocks(blocks.iter().cloned().collect());
    // The tickets it waits in wait on, for it on `to`.
    let tickets = crate::server::tickets::moved_away(shared, &session, &proxy);
    let (parties, waiting) = relink_here(shared, &session, &proxy);
    tracing::info!(session = %session_id, to = %format_args!("{to:08x}"), "session handed over to another node");
    Answer::HandedOver(Some(Box::new(HandOverFacts {
        next_event_seq: handed.next_event_seq,
        status,
        visible,
        follows,
        blocks,
        parties,
        waiting,
        elsewhere,
        tickets,
    })))
}

/// On a party's home: the seats and requests of session `session_id`,
/// which sat here through node `from`, now go through node `to`.
pub(crate) fn repoint(
    shared: &Shared,
    session_id: SessionId,
    user_id: &str,
    from: NodeId,
    to: NodeId,
) -> Answer {
    let route = shared.route();
    let empty = Answer::Snapshots {
        parties: Vec::new(),
        waiting: Vec::new(),
        blocks: Vec::new(),
    };
    let Some(old) = route.find_proxy(session_id) else {
        return empty;
    };
    if !Route::lives_on(&old, from) || old.presence.user_id != user_id {
        return empty;
    }
    let _ = route.take_proxy(session_id);
    let new = route.proxy(old.presence.clone(), to);
    let blocks = old.block_list();
    new.replace_blocks(blocks.iter().cloned().collect());
    let (parties, waiting) = relink_here(shared, &old, &new);
    // Its party's ticket, if it waits here, reaches it there too.
    crate::server::tickets::member_moved(shared, session_id, Some(from), &new);
    // The old proxy holds nothing now; a timer of it finds it ended.
    old.end_now();
    Answer::Snapshots {
        parties,
        waiting,
        blocks,
    }
}
