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
use super::Shared;
use crate::auth::unix_now;
use crate::matchmaker::{
    mint_match_token, MatchClaims, MatchPlayer, Pool, Query, Ticket, TicketId,
};
use crate::protocol::{
    ErrorBody, ErrorCode, Event, MatchFound, MatchedPlayer, MemberProperties, PartyId, Presence,
    SessionId, TicketCancelReason, TicketRequest,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

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
    party_id: Option<PartyId>,
    submitter: SessionId,
    members: Vec<(SessionRef, MemberProperties)>,
    strings: BTreeMap<String, String>,
    numbers: BTreeMap<String, i64>,
    /// On the cluster's matcher, a party ticket from another node: that
    /// node (the party's home), told when the ticket matches.
    home: Option<u32>,
}

/// On a party's home in a cluster, its ticket while it waits in the
/// matcher's pool (node `pooled_at`): enough to answer `CancelTicket`, to
/// cancel it when the members change, and to tell the members.
struct Shadow {
    meta: TicketMeta,
    pooled_at: u32,
}

struct State {
    pool: Pool<TicketMeta>,
    /// Party tickets of this node waiting in another node's pool.
    shadows: HashMap<TicketId, Shadow>,
    /// Every session in a waiting ticket, solo or party.
    by_session: HashMap<SessionId, TicketId>,
    next_id: u64,
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
            }),
            outlet: std::sync::OnceLock::new(),
        }
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
                let message = pool_message(id, request, &ticket.meta);
                state.shadows.insert(
                    id,
                    Shadow {
                        meta: ticket.meta,
                        pooled_at: node,
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

    /// On the matcher: a party ticket from its home `home`, whose members
    /// heard `TicketStarted` from there. Refused (typed) when a member is
    /// already in a ticket here.
    pub(crate) fn insert_pooled(
        &self,
        id: u64,
        request: &TicketRequest,
        submitter: SessionId,
        members: Vec<SessionRef>,
        home: u32,
    ) -> Result<(), ErrorBody> {
        let mut state = lock(&self.state);
        if members
            .iter()
            .any(|m| state.by_session.contains_key(&m.session_id()))
        {
            return Err(refuse(
                ErrorCode::AlreadyMatchmaking,
                "a member of the party is already in a ticket",
            ));
        }
        let ticket = build_ticket(TicketId(id), request, submitter, &members, Some(home));
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
                if ticket.meta.home == Some(node) {
                    homed.push(id.0);
                } else if ticket.meta.party_id.is_none()
                    && ticket.meta.members.iter().any(|(m, _)| of_node(m))
                {
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
                let ticket = state.pool.get(*id)?;
                ticket.meta.party_id.is_none().then_some(id.0)
            })
        };
        if let Some(id) = solo {
            self.cancel(id, TicketCancelReason::SessionEnded);
        }
    }

    /// One round: matches made, their tickets out of the pool.
    fn round(&self, now: Instant) -> Vec<crate::matchmaker::Match<TicketMeta>> {
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
        },
    }
}

/// The message that puts a party ticket in the matcher's pool.
fn pool_message(
    id: TicketId,
    request: &TicketRequest,
    meta: &TicketMeta,
) -> super::peers::ControlMessage {
    super::peers::ControlMessage::PoolTicket {
        ticket_id: id.0,
        request: request.clone(),
        submitter: meta.submitter,
        members: meta
            .members
            .iter()
            .map(|(member, _)| (member.presence.clone(), member.remote_node()))
            .collect(),
    }
}

/// The party may queue again: its ticket `ticket_id` ended (matched, or
/// cancelled outside the party's own rules). A newer ticket stays.
pub(crate) fn clear_party_ticket(shared: &Shared, party_id: PartyId, ticket_id: u64) {
    let _ = shared.table.apply(
        party_id,
        |party| {
            if party.matchmaking() == Some(ticket_id) {
                party.set_matchmaking(None);
            }
            Ok(((), crate::party::Effects::default()))
        },
        |_, _| {},
    );
}

fn player_of(
    ticket_meta: &TicketMeta,
    member: &SessionRef,
    own: &MemberProperties,
) -> MatchedPlayer {
    let mut strings = ticket_meta.strings.clone();
    strings.extend(own.strings.clone());
    let mut numbers = ticket_meta.numbers.clone();
    numbers.extend(own.numbers.clone());
    MatchedPlayer {
        presence: Presence::clone(&member.presence),
        party_id: ticket_meta.party_id,
        strings,
        numbers,
    }
}

/// Runs a round and tells every player of every match. The round itself
/// runs off the async threads: at 100,000 waiting tickets it takes a few
/// hundred milliseconds.
pub(crate) async fn run_round(shared: std::sync::Arc<Shared>) {
    let now = Instant::now();
    let for_round = shared.clone();
    let Ok(matches) = tokio::task::spawn_blocking(move || for_round.matchmaking.round(now)).await
    else {
        return;
    };
    let secret = shared.config.match_secret();
    // Said once, when it first matters (a server that never matchmakes
    // need not hear it).
    static SHARED_SECRET_WARNED: std::sync::Once = std::sync::Once::new();
    let shares_token_secret = shared.config.match_secret.is_none()
        && matches!(shared.config.auth, super::AuthMode::Token { .. });
    if shares_token_secret && !matches.is_empty() {
        SHARED_SECRET_WARNED.call_once(|| {
            tracing::warn!(
                "match tokens are signed with the token secret: a game server that can check them can also mint player tokens; give --match-secret-file a secret of its own"
            );
        });
    }
    let expires_at = unix_now().saturating_add(shared.config.match_token_ttl.as_secs());
    for found in matches {
        let match_id = uuid::Uuid::new_v4();
        let players: Vec<MatchedPlayer> = found
            .tickets
            .iter()
            .flat_map(|t| {
                t.meta
                    .members
                    .iter()
                    .map(|(m, own)| player_of(&t.meta, m, own))
            })
            .collect();
        let claims = MatchClaims {
            match_id,
            expires_at,
            players: players
                .iter()
                .map(|p| MatchPlayer {
                    user_id: p.presence.user_id.clone(),
                    party_id: p.party_id,
                })
                .collect(),
        };
        let token = mint_match_token(&secret, &claims);
        for ticket in &found.tickets {
            // The party's ticket is done: the party may queue again.
            if let (Some(home), Some(outlet)) = (ticket.meta.home, shared.matchmaking.outlet.get())
            {
                // A party of another node: its home clears its ticket.
                let matched = super::peers::ControlMessage::PoolMatched {
                    ticket_id: ticket.id.0,
                };
                outlet.control(home, &matched);
            } else if let Some(party_id) = ticket.meta.party_id {
                clear_party_ticket(&shared, party_id, ticket.id.0);
            }
            for (member, _) in &ticket.meta.members {
                member.push_event(Event::Matched(MatchFound {
                    match_id: *match_id.as_bytes(),
                    ticket_id: ticket.id.0,
                    players: players.clone(),
                    token: token.clone(),
                    token_expires_at: expires_at,
                }));
            }
        }
        tracing::info!(%match_id, players = players.len(), tickets = found.tickets.len(), "match made");
    }
}

/// On the matcher: a party ticket from its home, with its members as
/// (presence, node); refused back to the home when a member is gone or
/// already in a ticket here.
pub(crate) fn pool_from_home(
    shared: &Shared,
    ticket_id: u64,
    request: TicketRequest,
    submitter: SessionId,
    members: Vec<(Presence, Option<u32>)>,
) {
    let route = shared.route();
    let home = route.node_of_ticket(ticket_id);
    let members: Option<Vec<SessionRef>> = members
        .into_iter()
        .map(|(presence, node)| {
            route.member_at(presence, node.unwrap_or(home), |id| shared.find_session(id))
        })
        .collect();
    let pooled = match members {
        Some(members) => shared
            .matchmaking
            .insert_pooled(ticket_id, &request, submitter, members, home),
        // A member of this node left meanwhile: the home cancels.
        None => Err(ErrorBody::new(
            ErrorCode::MemberNotFound,
            "a member's session is gone",
        )),
    };
    if let Err(refusal) = pooled {
        tracing::info!(ticket_id, %refusal, "a party's ticket could not join the pool");
        route.outlet.control(
            home,
            &super::peers::ControlMessage::PoolRefused { ticket_id },
        );
    }
}
