//! Matchmaking in the server: tickets (a session's, or a party's with
//! every member), the pool the rules of `crate::matchmaker` run on, and
//! telling players: started, cancelled with a reason, matched (with a
//! signed token for the game server).
//!
//! Locks: a party's submit holds the pool's lock and, inside it, the
//! party's shard lock (`PartyTable::with_party_mut`, which takes no
//! delivery lock), so no member change slips in between reading the
//! members and queuing them. A change that ends a ticket takes the pool's
//! lock in its delivery, after its shard lock is gone. A round holds only
//! the pool's lock, and what it must change in parties it changes after
//! letting go.

use super::session::{lock, SessionRef};
use crate::matchmaker::{Pool, Query, Ticket, TicketId};
use crate::protocol::{
    ErrorBody, ErrorCode, Event, MemberProperties, PartyId, SessionId, TicketCancelReason,
    TicketRequest,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Property limits of a ticket: keys per map, members listed.
pub(crate) const MAX_TICKET_PROPERTIES: usize = 16;
/// Bytes of keys and values: a ticket's own properties, and each member's.
/// With at most `MAX_MATCH_PLAYERS` players, a `Matched` event (every
/// player with its ticket's and its own properties) stays well inside one
/// 256 KiB frame.
pub(crate) const MAX_TICKET_PROPERTY_BYTES: usize = 512;
pub(crate) const MAX_MEMBER_PROPERTY_BYTES: usize = 256;
/// Most players one match may have (a ticket's `max_count`).
pub(crate) const MAX_MATCH_PLAYERS: u32 = 100;
/// Candidates one seed looks at per round (bounds a round's cost).
const SCAN_LIMIT: usize = 1000;

/// Who is in a ticket and what to tell the match about them.
#[derive(Clone)]
pub(crate) struct TicketMeta {
    pub(crate) party_id: Option<PartyId>,
    submitter: SessionId,
    pub(crate) members: Vec<(SessionRef, MemberProperties)>,
    pub(crate) strings: BTreeMap<String, String>,
    pub(crate) numbers: BTreeMap<String, i64>,
    /// On the cluster's matcher, a ticket from another node: that node
    /// (its home: the party's, or the solo player's), told when the ticket
    /// matches.
    pub(crate) home: Option<u32>,
    /// The request as submitted: what a ticket that moves to another pool
    /// takes with it.
    request: TicketRequest,
}

/// On a ticket's home in a cluster (the party's home, or the solo
/// player's node), the ticket while it waits in the matcher's pool (node
/// `pooled_at`, or the one that said `Pooled` last): enough to answer
/// `CancelTicket`, to cancel it when the members change, and to tell the
/// members.
struct Shadow {
    meta: TicketMeta,
    pooled_at: u32,
    /// When it was submitted: a ticket that comes back to this node's own
    /// pool keeps its wait.
    since: Instant,
}

struct State {
    pool: Pool<TicketMeta>,
    /// Party tickets of this node waiting in another node's pool.
    shadows: HashMap<TicketId, Shadow>,
    /// Every session in a waiting ticket, solo or party.
    by_session: HashMap<SessionId, TicketId>,
    next_id: u64,
    /// This node's tag, in a cluster.
    node: Option<u32>,
}

pub(crate) struct Matchmaking {
    state: Mutex<State>,
    /// In a cluster: how to tell the matcher a shadow ended.
    outlet: std::sync::OnceLock<std::sync::Arc<super::peers::Outlet>>,
}

/// A party ticket to be put in the matcher's pool (`PoolTicket`).
pub(crate) struct ToPool {
    pub(crate) node: u32,
    pub(crate) message: super::peers::ControlMessage,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
    ErrorBody::new(code, message)
}

/// Checks what the rules cannot: sizes of what a client sent.
pub(crate) fn check_request(request: &TicketRequest) -> Result<(), ErrorBody> {
    let invalid = |message: String| Err(refuse(ErrorCode::InvalidTicket, message));
    let too_many = request.strings.len() > MAX_TICKET_PROPERTIES
        || request.numbers.len() > MAX_TICKET_PROPERTIES
        || request.query.strings.len() > MAX_TICKET_PROPERTIES
        || request.query.ranges.len() > MAX_TICKET_PROPERTIES
        || request.members.len() > usize::from(crate::protocol::MAX_PARTY_SIZE)
        || request.members.iter().any(|m| {
            m.strings.len() > MAX_TICKET_PROPERTIES || m.numbers.len() > MAX_TICKET_PROPERTIES
        });
    if too_many {
        return invalid(format!(
            "at most {MAX_TICKET_PROPERTIES} keys in each property map and query"
        ));
    }
    let long = |text: &String| text.is_empty() || text.len() > crate::protocol::MAX_NAME_BYTES;
    let bad_keys = request.strings.keys().any(long)
        || request.numbers.keys().any(long)
        || request.query.strings.keys().any(long)
        || request.query.ranges.keys().any(long)
        || request
            .members
            .iter()
            .any(|m| m.strings.keys().any(long) || m.numbers.keys().any(long));
    if bad_keys {
        return invalid("property keys must be 1 to 128 bytes".into());
    }
    let bytes = |strings: &BTreeMap<String, String>, numbers: &BTreeMap<String, i64>| {
        strings
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + numbers.keys().map(|k| k.len() + 8).sum::<usize>()
    };
    let query_bytes: usize = request
        .query
        .strings
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if bytes(&request.strings, &request.numbers) > MAX_TICKET_PROPERTY_BYTES
        || query_bytes > MAX_TICKET_PROPERTY_BYTES
    {
        return invalid(format!(
            "a ticket's properties (and its query's) hold at most {MAX_TICKET_PROPERTY_BYTES} bytes of keys and values"
        ));
    }
    if request
        .members
        .iter()
        .any(|m| bytes(&m.strings, &m.numbers) > MAX_MEMBER_PROPERTY_BYTES)
    {
        return invalid(format!(
            "a member's properties hold at most {MAX_MEMBER_PROPERTY_BYTES} bytes of keys and values"
        ));
    }
    if request.max_count > MAX_MATCH_PLAYERS {
        return invalid(format!("max_count is at most {MAX_MATCH_PLAYERS}"));
    }
    if request.query.ranges.values().any(|r| r.min > r.max) {
        return invalid("a query range has min above max".into());
    }
    // Counts no match could ever suit (the party's own size is checked
    // once its members are known: `Ticket::validate`).
    let relaxed = (request.relaxed_min_count > 0).then_some(request.relaxed_min_count);
    let lowest = crate::matchmaker::lowest_minimum(request.min_count, relaxed);
    let counts_work = request.min_count > 0 && request.min_count <= request.max_count;
    if counts_work
        && request.count_multiple > 0
        && !crate::matchmaker::count_possible(lowest, request.max_count, request.count_multiple)
    {
        return invalid(format!(
            "no player count from {lowest} to max_count {} is a multiple of count_multiple {}: the ticket could never be matched",
            request.max_count, request.count_multiple
        ));
    }
    Ok(())
}

impl Matchmaking {
    pub(crate) fn new(relax_after: Option<std::time::Duration>) -> Self {
        Matchmaking {
            state: Mutex::new(State {
                pool: Pool::new(SCAN_LIMIT, relax_after),
                shadows: HashMap::new(),
                by_session: HashMap::new(),
                next_id: 0,
                node: None,
            }),
            outlet: std::sync::OnceLock::new(),
        }
    }

    /// In a cluster, how to reach the matcher and the parties' homes.
    pub(crate) fn outlet(&self) -> Option<&std::sync::Arc<super::peers::Outlet>> {
        self.outlet.get()
    }

    /// In a cluster: the outlet that tells the matcher a shadow ended.
    pub(crate) fn use_outlet(&self, outlet: std::sync::Arc<super::peers::Outlet>) {
        let _ = self.outlet.set(outlet);
    }

    /// Waiting tickets now.
    /// In a cluster: ticket ids from now on carry this node's tag in their
    /// high 32 bits, so a `CancelTicket` finds the node whose pool has it.
    pub(crate) fn use_node_tag(&self, tag: u32) {
        let mut state = lock(&self.state);
        state.next_id = state.next_id.max(u64::from(tag) << 32);
        state.node = Some(tag);
    }

    pub(crate) fn waiting(&self) -> usize {
        lock(&self.state).pool.len()
    }

    /// Puts a ticket in the pool for `members` (one session for a solo
    /// ticket), refused if any of them is in a ticket already. `started`
    /// is called with the ticket's id under the pool's lock, before any
    /// round can see the ticket: the caller answers the request there, and
    /// then every member hears `TicketStarted`, all before a `Matched`.
    ///
    /// `seat` names the ticket's sessions, with the pool locked (a party's
    /// are read, and the party marked as queued, under its shard lock:
    /// pool first, then shard, never the other way, so a long round holds
    /// up submits but never a shard). It gets the ticket's id and a test of
    /// whether a session is in a ticket already.
    pub(crate) fn submit(
        &self,
        request: &TicketRequest,
        submitter: SessionId,
        seat: impl FnOnce(u64, &dyn Fn(SessionId) -> bool) -> Result<Vec<SessionRef>, ErrorBody>,
        started: impl FnOnce(u64),
        pool_at: Option<u32>,
    ) -> Result<(u64, Option<ToPool>), ErrorBody> {
        let counts_work = request.min_count > 0
            && request.min_count <= request.max_count
            && request.count_multiple > 0;
        if !counts_work {
            return Err(refuse(
                ErrorCode::InvalidTicket,
                format!(
                    "min_count {} and max_count {} with count_multiple {}: need 1 <= min <= max and a multiple of at least 1",
                    request.min_count, request.max_count, request.count_multiple
                ),
            ));
        }
        let mut state = lock(&self.state);
        let id = TicketId(state.next_id + 1);
        let members = {
            let queued = |session: SessionId| state.by_session.contains_key(&session);
            seat(id.0, &queued)?
        };
        state.next_id = id.0;
        let ticket = build_ticket(id, request, submitter, &members, None);
        ticket.validate().map_err(|error| {
            let code = match error {
                crate::matchmaker::TicketError::TooMany { .. } => ErrorCode::PartyTooLarge,
                _ => ErrorCode::InvalidTicket,
            };
            refuse(code, error.to_string())
        })?;
        for member in &members {
            state.by_session.insert(member.session_id(), id);
        }
        let to_pool = match pool_at {
            None => {
                state.pool.insert(ticket);
                None
            }
            Some(node) => {
                let message = pool_message(id, &ticket.meta, None, Duration::ZERO);
                state.shadows.insert(
                    id,
                    Shadow {
                        meta: ticket.meta,
                        pooled_at: node,
                        since: ticket.since,
                    },
                );
                Some(ToPool { node, message })
            }
        };
        started(id.0);
        for member in &members {
            member.push_event(Event::TicketStarted {
                ticket_id: id.0,
                party_id: request.party_id,
            });
        }
        Ok((id.0, to_pool))
    }

    /// On the matcher: a ticket from its home `home`, whose members heard
    /// `TicketStarted` from there, waiting for `waited` already. Refused
    /// (typed) when a member is already in another ticket here.
    pub(crate) fn insert_pooled(
        &self,
        id: u64,
        request: &TicketRequest,
        submitter: SessionId,
        members: Vec<SessionRef>,
        (home, waited): (u32, Duration),
    ) -> Result<(), ErrorBody> {
        let mut state = lock(&self.state);
        if state.pool.get(TicketId(id)).is_some() {
            return Ok(());
        }
        if members
            .iter()
            .any(|m| state.by_session.contains_key(&m.session_id()))
        {
            return Err(refuse(
                ErrorCode::AlreadyMatchmaking,
                "a member of the party is already in a ticket",
            ));
        }
        let mut ticket = build_ticket(TicketId(id), request, submitter, &members, Some(home));
        ticket.since = Instant::now().checked_sub(waited).unwrap_or(ticket.since);
        ticket
            .validate()
            .map_err(|error| refuse(ErrorCode::InvalidTicket, error.to_string()))?;
        for member in &members {
            state.by_session.insert(member.session_id(), TicketId(id));
        }
        state.pool.insert(ticket);
        Ok(())
    }

    /// On the matcher: a pooled party ticket ended at its home (its
    /// members were told there).
    pub(crate) fn unpool(&self, id: u64) {
        let mut state = lock(&self.state);
        if let Some(ticket) = state.pool.remove(TicketId(id)) {
            for (member, _) in &ticket.meta.members {
                state.by_session.remove(&member.session_id());
            }
        }
    }

    /// On a party's home: its ticket matched in the matcher's pool (the
    /// members were told there). Returns the party, to clear its ticket.
    pub(crate) fn shadow_matched(&self, id: u64) -> Option<PartyId> {
        let mut state = lock(&self.state);
        let shadow = state.shadows.remove(&TicketId(id))?;
        for (member, _) in &shadow.meta.members {
            state.by_session.remove(&member.session_id());
        }
        shadow.meta.party_id
    }

    /// This node is no longer the matcher (`matcher` is): every ticket of
    /// its pool moves there. Its own become shadows pooled there; those of
    /// other homes are passed on (that pool answers their homes `Pooled`).
    /// The messages to send `matcher`, in the tickets' order.
    pub(crate) fn hand_over(&self, matcher: u32) -> Vec<super::peers::ControlMessage> {
        let mut state = lock(&self.state);
        let here = state.node;
        let waiting: std::collections::BTreeSet<TicketId> =
            state.by_session.values().copied().collect();
        let mut messages = Vec::new();
        for id in waiting {
            let Some(ticket) = state.pool.remove(id) else {
                continue;
            };
            let waited = ticket.since.elapsed();
            match ticket.meta.home {
                None => {
                    messages.push(pool_message(id, &ticket.meta, None, waited));
                    let shadow = Shadow {
                        meta: ticket.meta,
                        pooled_at: matcher,
                        since: ticket.since,
                    };
                    state.shadows.insert(id, shadow);
                }
                Some(_) => {
                    messages.push(pool_message(id, &ticket.meta, here, waited));
                    for (member, _) in &ticket.meta.members {
                        state.by_session.remove(&member.session_id());
                    }
                }
            }
        }
        messages
    }

    /// On a ticket's home that is the matcher now: its shadow came back
    /// from the pool that held it, and waits here, as long as it waited
    /// there. Nothing when it ended meanwhile.
    pub(crate) fn shadow_to_pool(&self, id: u64) {
        let mut state = lock(&self.state);
        let Some(shadow) = state.shadows.remove(&TicketId(id)) else {
            return;
        };
        let members: Vec<SessionRef> = shadow.meta.members.iter().map(|(m, _)| m.clone()).collect();
        let (request, submitter) = (shadow.meta.request.clone(), shadow.meta.submitter);
        let mut ticket = build_ticket(TicketId(id), &request, submitter, &members, None);
        ticket.meta = shadow.meta;
        ticket.since = shadow.since;
        state.pool.insert(ticket);
    }

    /// The ticket `session` waits in here (in the pool, or as a shadow),
    /// solo or its party's.
    pub(crate) fn ticket_of(&self, session: SessionId) -> Option<u64> {
        lock(&self.state).by_session.get(&session).map(|id| id.0)
    }

    /// Who member `session` of ticket `id` is, when the ticket waits here.
    pub(crate) fn member(&self, id: u64, session: SessionId) -> Option<crate::protocol::Presence> {
        let state = lock(&self.state);
        let meta = match state.pool.get(TicketId(id)) {
            Some(ticket) => &ticket.meta,
            None => &state.shadows.get(&TicketId(id))?.meta,
        };
        let mut members = meta.members.iter().map(|(member, _)| member);
        let member = members.find(|member| member.session_id() == session)?;
        Some(member.presence.clone())
    }

    /// A session moved to another node (it resumed there): in the ticket
    /// it waits in here, its member, when it lives on `from` (`None`: this
    /// node), becomes `to`, so the ticket's events reach it there. The
    /// ticket id, and the node that pools it when that is another (a
    /// shadow's pool, to be told); `None` when nothing here names it.
    pub(crate) fn repoint(
        &self,
        session: SessionId,
        from: Option<u32>,
        to: &SessionRef,
    ) -> Option<(u64, Option<u32>)> {
        let mut state = lock(&self.state);
        let id = *state.by_session.get(&session)?;
        let repoint = |meta: &mut TicketMeta| {
            for (member, _) in meta.members.iter_mut() {
                if member.session_id() == session && member.remote_node() == from {
                    *member = to.clone();
                }
            }
        };
        if let Some(mut ticket) = state.pool.remove(id) {
            repoint(&mut ticket.meta);
            state.pool.insert(ticket);
            return Some((id.0, None));
        }
        let shadow = state.shadows.get_mut(&id)?;
        repoint(&mut shadow.meta);
        Some((id.0, Some(shadow.pooled_at)))
    }

    /// On a ticket's home: node `node` pooled it. False when the ticket
    /// no longer waits here (its `Unpool` must follow it there).
    pub(crate) fn pooled_at(&self, id: u64, node: u32) -> bool {
        match lock(&self.state).shadows.get_mut(&TicketId(id)) {
            Some(shadow) => {
                shadow.pooled_at = node;
                true
            }
            None => false,
        }
    }

    /// Node `node` is lost: the shadows pooled there end (`NodeLost`; their
    /// parties are returned, to clear their tickets), the party tickets it
    /// pooled here end with their parties, and so do the solo tickets of
    /// its sessions.
    pub(crate) fn node_lost(&self, node: u32) -> Vec<(PartyId, u64)> {
        let (shadows, homed, solo) = {
            let state = lock(&self.state);
            let shadows: Vec<(Option<PartyId>, u64)> = state
                .shadows
                .iter()
                .filter(|(_, shadow)| shadow.pooled_at == node)
                .map(|(id, shadow)| (shadow.meta.party_id, id.0))
                .collect();
            let of_node = |session: &SessionRef| session.remote_node() == Some(node);
            let waiting: std::collections::BTreeSet<TicketId> =
                state.by_session.values().copied().collect();
            let mut homed = Vec::new();
            let mut solo = Vec::new();
            for id in waiting {
                let Some(ticket) = state.pool.get(id) else {
                    continue;
                };
                let solo_ticket = ticket.meta.party_id.is_none();
                if ticket.meta.home == Some(node) && !solo_ticket {
                    homed.push(id.0);
                } else if solo_ticket && ticket.meta.members.iter().any(|(m, _)| of_node(m)) {
                    solo.push(id.0);
                }
            }
            (shadows, homed, solo)
        };
        for id in homed {
            self.cancel(id, TicketCancelReason::PartyClosed);
        }
        for id in solo {
            self.cancel(id, TicketCancelReason::SessionEnded);
        }
        shadows
            .into_iter()
            .filter(|(_, id)| self.cancel(*id, TicketCancelReason::NodeLost))
            .filter_map(|(party, id)| Some((party?, id)))
            .collect()
    }

    pub(crate) fn owner_of(&self, id: u64) -> Option<(Option<PartyId>, SessionId)> {
        let state = lock(&self.state);
        let meta = match state.pool.get(TicketId(id)) {
            Some(ticket) => &ticket.meta,
            None => &state.shadows.get(&TicketId(id))?.meta,
        };
        Some((meta.party_id, meta.submitter))
    }

    /// Takes a waiting ticket out and tells its sessions why. False when it
    /// was not waiting (matched or cancelled already).
    pub(crate) fn cancel(&self, id: u64, reason: TicketCancelReason) -> bool {
        self.cancel_then(id, reason, |_| {})
    }

    /// [`Matchmaking::cancel`], calling `removed` (with whether it was
    /// waiting) before the sessions are told: a cancel command answers
    /// there, so its reply comes before `TicketCancelled`.
    pub(crate) fn cancel_then(
        &self,
        id: u64,
        reason: TicketCancelReason,
        removed: impl FnOnce(bool),
    ) -> bool {
        let mut state = lock(&self.state);
        let (meta, pooled_at) = match state.pool.remove(TicketId(id)) {
            Some(ticket) => (ticket.meta, None),
            None => match state.shadows.remove(&TicketId(id)) {
                Some(shadow) => (shadow.meta, Some(shadow.pooled_at)),
                None => {
                    drop(state);
                    removed(false);
                    return false;
                }
            },
        };
        removed(true);
        for (member, _) in &meta.members {
            state.by_session.remove(&member.session_id());
        }
        drop(state);
        if let (Some(node), Some(outlet)) = (pooled_at, self.outlet.get()) {
            outlet.control(
                node,
                &super::peers::ControlMessage::Unpool { ticket_id: id },
            );
        }
        for (member, _) in &meta.members {
            member.push_event(Event::TicketCancelled {
                ticket_id: id,
                reason,
            });
        }
        true
    }

    /// The solo ticket of a session that ended goes with it.
    pub(crate) fn session_ended(&self, session: SessionId) {
        let solo = {
            let state = lock(&self.state);
            state.by_session.get(&session).and_then(|id| {
                let meta = match state.pool.get(*id) {
                    Some(ticket) => &ticket.meta,
                    None => &state.shadows.get(id)?.meta,
                };
                meta.party_id.is_none().then_some(id.0)
            })
        };
        if let Some(id) = solo {
            self.cancel(id, TicketCancelReason::SessionEnded);
        }
    }

    /// One round: matches made, their tickets out of the pool.
    pub(crate) fn round(&self, now: Instant) -> Vec<crate::matchmaker::Match<TicketMeta>> {
        let mut state = lock(&self.state);
        let matches = state.pool.run_round(now);
        for ticket in matches.iter().flat_map(|m| &m.tickets) {
            for (member, _) in &ticket.meta.members {
                state.by_session.remove(&member.session_id());
            }
        }
        matches
    }
}

/// A pool ticket for `members`, submitted by `submitter`.
fn build_ticket(
    id: TicketId,
    request: &TicketRequest,
    submitter: SessionId,
    members: &[SessionRef],
    home: Option<u32>,
) -> Ticket<TicketMeta> {
    let players = u32::try_from(members.len()).unwrap_or(u32::MAX);
    let to_f64 = |map: &BTreeMap<String, i64>| -> BTreeMap<String, f64> {
        map.iter().map(|(k, v)| (k.clone(), *v as f64)).collect()
    };
    let properties_of = |session: &SessionRef| {
        request
            .members
            .iter()
            .find(|m| m.user_id == session.presence.user_id)
            .cloned()
            .unwrap_or_else(|| MemberProperties {
                user_id: session.presence.user_id.clone(),
                ..MemberProperties::default()
            })
    };
    Ticket {
        id,
        players,
        min_count: request.min_count,
        max_count: request.max_count,
        count_multiple: request.count_multiple,
        relaxed_min_count: (request.relaxed_min_count > 0).then_some(request.relaxed_min_count),
        strings: request.strings.clone(),
        numbers: to_f64(&request.numbers),
        query: Query {
            strings: request.query.strings.clone(),
            ranges: request
                .query
                .ranges
                .iter()
                .map(|(k, r)| (k.clone(), (r.min as f64, r.max as f64)))
                .collect(),
        },
        since: Instant::now(),
        meta: TicketMeta {
            party_id: request.party_id,
            submitter,
            members: members
                .iter()
                .map(|m| (m.clone(), properties_of(m)))
                .collect(),
            strings: request.strings.clone(),
            numbers: request.numbers.clone(),
            home,
            request: request.clone(),
        },
    }
}

/// The message that puts a ticket in the matcher's pool. From its home
/// (`here` is `None`), members with no node are the home's sessions; passed
/// on from the pool of node `here`, each member names its node.
fn pool_message(
    id: TicketId,
    meta: &TicketMeta,
    here: Option<u32>,
    waited: Duration,
) -> super::peers::ControlMessage {
    let node_of = |member: &SessionRef| match here {
        None => member.remote_node(),
        Some(here) => Some(member.remote_node().unwrap_or(here)),
    };
    super::peers::ControlMessage::PoolTicket {
        ticket_id: id.0,
        request: meta.request.clone(),
        submitter: meta.submitter,
        members: meta
            .members
            .iter()
            .map(|(member, _)| (member.presence.clone(), node_of(member)))
            .collect(),
        waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
    }
}
