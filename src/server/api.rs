//! The server-side API: what an embedding backend (or an operator, through
//! the admin HTTP API) may do to live parties and sessions, with the
//! server's authority rather than a member's. Every change goes through the
//! same party rules, seq numbers and deliveries as a command.
//!
//! In a cluster it sees and acts on every node: lists gather every node's
//! part (a node that does not answer within the request timeout is left
//! out), a party is asked of its home, a session of every node (its id
//! names no node). The work itself is done by the node that holds what is
//! named (`commands::server_api`), so its effects and events are the same
//! as on one node. Alone, nothing is asked and nothing awaits.

use super::commands;
use super::peers::{Answer, ApiAnswer, ApiQuestion, NodeId, Page, Question, Refusal, SessionFacts};
use super::route::Unanswered;
use super::state::Shared;
use crate::party::{PartyError, PartySettings};
use crate::protocol::{
    ErrorBody, ErrorCode, KeyValues, PartyId, PartySnapshot, Presence, SessionId,
};
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

pub use super::commands::server_presence;

/// A handle on a running (or bound) server's state; cheap to clone.
#[derive(Clone)]
pub struct ServerApi {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ServerApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerApi").finish_non_exhaustive()
    }
}

/// What the API refuses with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No live session (connected or in its grace window) has that id, on
    /// any node that answered.
    #[error("no live session {0}")]
    SessionNotFound(SessionId),
    /// A party rule refused, as it would refuse a client: the same code
    /// and message.
    #[error("{}: {}", .0.code, .0.message)]
    Refused(ErrorBody),
    /// In a cluster: the nodes named (the party's home, or the nodes that
    /// might hold the session) did not answer within the request timeout,
    /// or the link to the other nodes is down. An action may or may not
    /// have happened there.
    #[error("node(s) {} did not answer within the request timeout; the action may or may not have happened there", .nodes.join(", "))]
    Unavailable {
        /// The nodes that did not answer, by name.
        nodes: Vec<String>,
    },
}

impl From<PartyError> for ApiError {
    fn from(error: PartyError) -> Self {
        ApiError::Refused(error.into())
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Rule(body) => ApiError::Refused(body),
            Refusal::SessionNotFound(id) => ApiError::SessionNotFound(id),
        }
    }
}

/// A live session, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    /// The session.
    pub session_id: SessionId,
    /// Its user.
    pub user_id: String,
    /// Its user's display name.
    pub username: String,
    /// False while it waits in its grace window.
    pub connected: bool,
    /// Where its connection comes from, while connected.
    pub remote: Option<SocketAddr>,
    /// Parties where it has a seat or a join request, sorted.
    pub parties: Vec<PartyId>,
    /// The node it is connected to (`alone` for a server alone).
    pub node: String,
    /// Its connection's score (lower is better: PROTOCOL.md, "Leader by
    /// connection quality") as its node measures it now; `None` before
    /// its first sample, and while it waits in its grace window.
    pub quality_score: Option<u32>,
}

/// A party, as the API shows it: its snapshot and who is waiting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartyInfo {
    /// Members, leader, settings, seq, who is disconnected, state.
    pub snapshot: PartySnapshot,
    /// Join requests waiting for the leader, oldest first.
    pub requests: Vec<Presence>,
}

/// A list gathered from every node, in the list's order.
pub(crate) struct Listing<T> {
    pub(crate) items: Vec<T>,
    /// How many matched on the nodes that answered (more than `items`
    /// when the limit cut the list).
    pub(crate) matched: u64,
    /// Sessions or parties alive on the nodes that answered.
    pub(crate) alive: u64,
    /// The nodes left out: they did not answer in time.
    pub(crate) silent: Vec<String>,
}

/// One node's part of a list being gathered.
struct Part<T> {
    node: NodeId,
    items: Vec<T>,
    more: bool,
}

impl ServerApi {
    fn info(&self, facts: SessionFacts) -> SessionInfo {
        SessionInfo {
            session_id: facts.presence.session_id,
            user_id: facts.presence.user_id,
            username: facts.presence.username,
            connected: facts.connected,
            remote: facts.remote,
            parties: facts.parties,
            node: self.shared.route().node_name(facts.node),
            quality_score: facts.quality_score,
        }
    }

    fn unavailable(&self, nodes: &[NodeId]) -> ApiError {
        let route = self.shared.route();
        let mut nodes: Vec<String> = nodes.iter().map(|&node| route.node_name(node)).collect();
        nodes.sort();
        ApiError::Unavailable { nodes }
    }

    /// `question`'s answer from `party_id`'s home (this node, or the one
    /// its id names).
    async fn at_home(
        &self,
        party_id: PartyId,
        question: ApiQuestion,
    ) -> Result<ApiAnswer, ApiError> {
        let shared = &*self.shared;
        let asked = shared
            .route()
            .ask_home(party_id, Question::Api(question), |question| {
                commands::answer(shared, question)
            })
            .await;
        match asked {
            Ok(Answer::Api(answer)) => Ok(answer),
            Ok(_) => Err(mismatched()),
            Err(Unanswered::NoSuchNode) => Err(PartyError::PartyNotFound.into()),
            Err(Unanswered::Silent(node)) => Err(self.unavailable(&[node])),
        }
    }

    /// An action at `party_id`'s home: done, or why not.
    async fn act_at_home(&self, party_id: PartyId, question: ApiQuestion) -> Result<(), ApiError> {
        match self.at_home(party_id, question).await? {
            ApiAnswer::Done(done) => Ok(done?),
            _ => Err(mismatched()),
        }
    }

    /// Gathers a list from every node: `here` is this node's first page,
    /// `ask` the question for a page after a key, `key` the list's order
    /// (each node's part comes in it).
    /// A node whose page was cut short (by its message budget) is asked
    /// again after its last item, until the first `limit` of the whole
    /// list are known.
    async fn gather<T, K: Ord>(
        &self,
        here: Page<T>,
        ask: impl Fn(Option<K>) -> ApiQuestion,
        page_of: impl Fn(ApiAnswer) -> Option<Page<T>>,
        key: impl Fn(&T) -> K,
        limit: usize,
    ) -> Listing<T> {
        let route = self.shared.route();
        let (mut matched, mut alive) = (here.matched, here.alive);
        let mut parts = vec![Part {
            node: route.me,
            items: here.items,
            more: here.more,
        }];
        let mut silent = Vec::new();
        if route.clustered() && limit > 0 {
            let gathered = route.ask_every(Question::Api(ask(None))).await;
            silent = gathered.silent;
            for (node, answer) in gathered.answers {
                if let Some(page) = api_answer(answer).and_then(&page_of) {
                    matched += page.matched;
                    alive += page.alive;
                    parts.push(Part {
                        node,
                        items: page.items,
                        more: page.more,
                    });
                }
            }
        }
        loop {
            // The list is known up to the lowest last item of a part
            // with more after it.
            let Some((index, bound)) = lowest_cut(&parts, &key) else {
                break;
            };
            let known: usize = parts
                .iter()
                .map(|part| part.items.partition_point(|item| key(item) <= bound))
                .sum();
            let part = &mut parts[index];
            // This node's page (the first part) holds `limit` items when
            // it has more.
            if known >= limit || index == 0 {
                break;
            }
            let more = route
                .ask_node(part.node, Question::Api(ask(Some(bound))))
                .await;
            match more.and_then(api_answer).and_then(&page_of) {
                Some(page) => {
                    part.items.extend(page.items);
                    part.more = page.more;
                }
                None => {
                    part.more = false;
                    silent.push(part.node);
                }
            }
        }
        // At least `limit` items are known to come first (or every item
        // is known): the first `limit` of all that came are the list's.
        let mut items: Vec<T> = parts.into_iter().flat_map(|part| part.items).collect();
        items.sort_by_cached_key(&key);
        items.truncate(limit);
        let mut silent: Vec<String> = silent.iter().map(|&node| route.node_name(node)).collect();
        silent.sort();
        Listing {
            items,
            matched,
            alive,
            silent,
        }
    }

    /// Live sessions (one user's, or everyone's) on every node that
    /// answered, in (user id, session id) order: the first `limit`.
    pub(crate) async fn list_sessions(
        &self,
        user_id: Option<&str>,
        limit: usize,
    ) -> Listing<SessionInfo> {
        let shared = &*self.shared;
        let here = commands::sessions_page(shared, user_id, None, limit, usize::MAX);
        let ask = |after| ApiQuestion::Sessions {
            user_id: user_id.map(str::to_string),
            after,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        let page_of = |answer| match answer {
            ApiAnswer::Sessions(page) => Some(page),
            _ => None,
        };
        let key =
            |facts: &SessionFacts| (facts.presence.user_id.clone(), facts.presence.session_id);
        let listing = self.gather(here, ask, page_of, key, limit).await;
        Listing {
            items: listing.items.into_iter().map(|f| self.info(f)).collect(),
            matched: listing.matched,
            alive: listing.alive,
            silent: listing.silent,
        }
    }

    /// Parties on every node that answered whose label contains `label`,
    /// in (label, party id) order: the first `limit`.
    pub(crate) async fn list_parties(&self, label: &str, limit: usize) -> Listing<PartySnapshot> {
        let here = commands::parties_page(&self.shared, label, None, limit, usize::MAX);
        let ask = |after| ApiQuestion::Parties {
            label: label.to_string(),
            after,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        };
        let page_of = |answer| match answer {
            ApiAnswer::Parties(page) => Some(page),
            _ => None,
        };
        let key = |party: &PartySnapshot| (party.label.clone(), party.party_id);
        self.gather(here, ask, page_of, key, limit).await
    }

    /// Every live session, connected or in its grace window, on every node
    /// (a node that does not answer within the request timeout is left
    /// out), sorted by user id, then session id.
    pub async fn sessions(&self) -> Vec<SessionInfo> {
        self.list_sessions(None, usize::MAX).await.items
    }

    /// The live sessions of one user (a user may play on several devices,
    /// connected to several nodes), sorted by session id.
    pub async fn sessions_of(&self, user_id: &str) -> Vec<SessionInfo> {
        self.list_sessions(Some(user_id), usize::MAX).await.items
    }

    /// The parties a user leads now, through any of its sessions, on any
    /// node; sorted.
    pub async fn parties_led_by(&self, user_id: &str) -> Vec<PartyId> {
        let shared = &*self.shared;
        let mut led = commands::parties_led_by(shared, user_id);
        if shared.route().clustered() {
            let question = Question::Api(ApiQuestion::PartiesLedBy(user_id.to_string()));
            for (_, answer) in shared.route().ask_all(question).await {
                if let Some(ApiAnswer::PartyIds(ids)) = api_answer(answer) {
                    led.extend(ids);
                }
            }
            led.sort();
            led.dedup();
        }
        led
    }

    /// Where the sessions `ids` live: each one's facts, in the order of
    /// `ids`. Alone, or when all are here, nothing is asked.
    async fn locate(&self, ids: &[SessionId]) -> Result<Vec<SessionFacts>, ApiError> {
        let shared = &*self.shared;
        let mut found = commands::find(shared, ids);
        let missing: Vec<SessionId> = ids
            .iter()
            .copied()
            .filter(|id| !found.iter().any(|f| f.presence.session_id == *id))
            .collect();
        let mut silent = Vec::new();
        if !missing.is_empty() && shared.route().clustered() {
            let question = Question::Api(ApiQuestion::Find(missing));
            let gathered = shared.route().ask_every(question).await;
            silent = gathered.silent;
            for (_, answer) in gathered.answers {
                if let Some(ApiAnswer::Found(facts)) = api_answer(answer) {
                    found.extend(facts);
                }
            }
        }
        let mut located = Vec::with_capacity(ids.len());
        for &id in ids {
            match found.iter().find(|f| f.presence.session_id == id) {
                Some(facts) => located.push(facts.clone()),
                None if !silent.is_empty() => return Err(self.unavailable(&silent)),
                None => return Err(ApiError::SessionNotFound(id)),
            }
        }
        Ok(located)
    }

    /// One live session, on whichever node it is connected to.
    pub async fn session_info(&self, id: SessionId) -> Result<SessionInfo, ApiError> {
        let mut located = self.locate(&[id]).await?;
        match located.pop() {
            Some(facts) => Ok(self.info(facts)),
            None => Err(ApiError::SessionNotFound(id)),
        }
    }

    /// Ends a session now, on whichever node it is connected to: its
    /// connection closes with `Disconnected` (close code 9), there is no
    /// grace window, and it leaves every party as a session that ended
    /// does.
    pub async fn disconnect(&self, id: SessionId, reason: &str) -> Result<(), ApiError> {
        let shared = &*self.shared;
        if commands::disconnect(shared, id, reason) {
            return Ok(());
        }
        let route = shared.route();
        if !route.clustered() {
            return Err(ApiError::SessionNotFound(id));
        }
        let question = ApiQuestion::Disconnect {
            session: id,
            reason: reason.to_string(),
        };
        let gathered = route.ask_every(Question::Api(question)).await;
        let ended = gathered
            .answers
            .into_iter()
            .any(|(_, answer)| matches!(api_answer(answer), Some(ApiAnswer::Disconnected(true))));
        match (ended, gathered.silent.is_empty()) {
            (true, _) => Ok(()),
            (false, true) => Err(ApiError::SessionNotFound(id)),
            (false, false) => Err(self.unavailable(&gathered.silent)),
        }
    }

    /// Parties alive now whose label contains `label` (every party for an
    /// empty one), on every node that answers within the request timeout:
    /// the first `limit` in order of label, then party id.
    pub async fn parties(&self, label: &str, limit: usize) -> Vec<PartySnapshot> {
        self.list_parties(label, limit).await.items
    }

    /// One party, with its waiting join requests, asked of its home.
    pub async fn party(&self, party_id: PartyId) -> Result<PartyInfo, ApiError> {
        match self.at_home(party_id, ApiQuestion::Party(party_id)).await? {
            ApiAnswer::Party(found) => {
                let (snapshot, requests) = *found.map_err(ApiError::Refused)?;
                Ok(PartyInfo { snapshot, requests })
            }
            _ => Err(mismatched()),
        }
    }

    /// Creates a party for `sessions`: the first leads, the rest are
    /// seated in order, whatever `settings.open` says. Each session hears
    /// `Accepted` with the party as it was when it was seated, then the
    /// joins after it, as members of any party do. In a cluster the party
    /// is homed on the leader's node (as if the leader had created it),
    /// and the others may be connected to any node.
    pub async fn create_party(
        &self,
        sessions: &[SessionId],
        settings: PartySettings,
        state: KeyValues,
    ) -> Result<PartySnapshot, ApiError> {
        if sessions.is_empty() {
            return Err(invalid("a party needs at least one session"));
        }
        if sessions.len() > usize::from(settings.max_size) {
            return Err(ApiError::Refused(PartyError::PartyFull.into()));
        }
        let located = self.locate(sessions).await?;
        let mut users = HashSet::new();
        for member in &located {
            if !users.insert(member.presence.user_id.as_str()) {
                return Err(invalid(format!(
                    "user {} is named twice: one seat per user",
                    member.presence.user_id
                )));
            }
            self.check_room(member)?;
        }
        let members: Vec<(Presence, NodeId)> = located
            .into_iter()
            .map(|facts| (facts.presence, facts.node))
            .collect();
        let shared = &*self.shared;
        let leader_node = members[0].1;
        let question = ApiQuestion::Create {
            members,
            settings: settings.into(),
            state,
        };
        // At the leader's node: answered here when that is this one.
        match shared
            .route()
            .ask_at(leader_node, Question::Api(question), |question| {
                commands::answer(shared, question)
            })
            .await
        {
            None => Err(self.unavailable(&[leader_node])),
            Some(answer) => match api_answer(answer) {
                Some(ApiAnswer::Created(created)) => Ok(*created?),
                _ => Err(mismatched()),
            },
        }
    }

    /// Seats a session in a party, open or closed, without an invite; the
    /// size limit, bans and one seat per user still hold. The session and
    /// the party may be on any nodes.
    pub async fn add_member(&self, party_id: PartyId, session: SessionId) -> Result<(), ApiError> {
        let member = self.locate(&[session]).await?.remove(0);
        self.check_room(&member)?;
        self.seat(party_id, member).await
    }

    /// Moves a session's seat from one party to another: seated in `to`
    /// first (so a refusal there changes nothing), then gone from `from`
    /// as if it had left.
    pub async fn move_member(
        &self,
        session: SessionId,
        from: PartyId,
        to: PartyId,
    ) -> Result<(), ApiError> {
        let member = self.locate(&[session]).await?.remove(0);
        let seated = self.party(from).await?.snapshot.members;
        if !seated.iter().any(|seat| seat.session_id == session) {
            return Err(ApiError::Refused(PartyError::NotMember.into()));
        }
        self.seat(to, member).await?;
        self.act_at_home(
            from,
            ApiQuestion::Leave {
                party_id: from,
                session,
            },
        )
        .await
    }

    /// Takes a member's seat away, the leader's too; it hears `Kicked`.
    /// Done at the party's home, wherever the member is connected.
    pub async fn kick(&self, party_id: PartyId, user_id: &str) -> Result<(), ApiError> {
        let user_id = user_id.to_string();
        self.act_at_home(party_id, ApiQuestion::Kick { party_id, user_id })
            .await
    }

    /// Ends a party, at its home: members hear `Closed`, requesters
    /// `PartyClosed`, on every node.
    pub async fn close_party(&self, party_id: PartyId) -> Result<(), ApiError> {
        self.act_at_home(party_id, ApiQuestion::Close(party_id))
            .await
    }

    /// Sends reliable data into a party from the server: every connected
    /// member (on any node) gets a `Data` event whose sender is
    /// [`server_presence`].
    pub async fn send_to_party(
        &self,
        party_id: PartyId,
        op_code: i64,
        data: Bytes,
    ) -> Result<(), ApiError> {
        commands::check_reliable_size(&self.shared, &data).map_err(ApiError::Refused)?;
        let question = ApiQuestion::Send {
            party_id,
            op_code,
            data,
        };
        self.act_at_home(party_id, question).await
    }

    /// Sets the block list of every live session of `user_id`, on every
    /// node (a platform's block list, or the game's own): each session
    /// hears `BlocksChanged`, and what the list changes follows at once
    /// (the parties it is in, its status presence). Ids follow the user id
    /// rule, the user's own is refused, at most `MAX_BLOCKS`
    /// (`TooManyBlocks`). Returns how many sessions got it. A session that
    /// starts later begins with what the game's block-list hook says
    /// (`Hooks::block_list`), not with this.
    pub async fn set_blocks(&self, user_id: &str, user_ids: &[String]) -> Result<usize, ApiError> {
        let shared = &*self.shared;
        let list = commands::check_blocks(user_id, user_ids).map_err(ApiError::Refused)?;
        let user_ids: Vec<String> = list.into_iter().collect();
        let mut set = commands::set_blocks(shared, user_id, &user_ids);
        let route = shared.route();
        if !route.clustered() {
            return Ok(set);
        }
        let question = ApiQuestion::SetBlocks {
            user_id: user_id.to_string(),
            user_ids,
        };
        let gathered = route.ask_every(Question::Api(question)).await;
        for (_, answer) in gathered.answers {
            if let Some(ApiAnswer::BlocksSet(count)) = api_answer(answer) {
                set += count as usize;
            }
        }
        match gathered.silent.is_empty() {
            true => Ok(set),
            false => Err(self.unavailable(&gathered.silent)),
        }
    }

    /// Refuses a session already at the per-session party limit.
    fn check_room(&self, session: &SessionFacts) -> Result<(), ApiError> {
        let limit = self.shared.config.max_parties_per_session;
        if session.parties.len() >= limit {
            return Err(ApiError::Refused(ErrorBody::new(
                ErrorCode::TooManyParties,
                format!(
                    "session {} is already in {limit} parties, the most allowed",
                    session.presence.session_id
                ),
            )));
        }
        Ok(())
    }

    /// Seats `member` in `party_id`, at the party's home.
    async fn seat(&self, party_id: PartyId, member: SessionFacts) -> Result<(), ApiError> {
        let question = ApiQuestion::Seat {
            party_id,
            member: member.presence,
            node: member.node,
        };
        self.act_at_home(party_id, question).await
    }
}

/// The part with more after it whose last item is lowest, and that item's
/// key: up to it, every node's part of the list is known.
fn lowest_cut<T, K: Ord>(parts: &[Part<T>], key: &impl Fn(&T) -> K) -> Option<(usize, K)> {
    parts
        .iter()
        .enumerate()
        .filter(|(_, part)| part.more)
        .filter_map(|(index, part)| part.items.last().map(|last| (index, key(last))))
        .min_by(|a, b| a.1.cmp(&b.1))
}

fn api_answer(answer: Answer) -> Option<ApiAnswer> {
    match answer {
        Answer::Api(answer) => Some(answer),
        _ => None,
    }
}

/// A node answered another question than the one asked: nodes of one
/// cluster run one build, so only a bug does this.
fn mismatched() -> ApiError {
    ApiError::Refused(ErrorBody::new(
        ErrorCode::Internal,
        "another node answered a different question",
    ))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Refused(ErrorBody::new(ErrorCode::InvalidArgument, message))
}
