//! The server's state, shared by every task: the party table, the
//! sessions, the domains beside parties (users, matchmaking), the route to
//! other nodes, and `deliver`, which turns a party change into what its
//! members hear. Everything above takes `&Shared`; nothing below does.

use super::coalesce::Coalescer;
use super::config::ServerConfig;
use super::deadlines::Deadlines;
use super::hook_events::HookState;
use super::metrics::Metrics;
use super::player_limits::{PlayerLimits, SessionLimit};
use super::route::{NodeTimings, Route};
use super::session::{ResumeClaims, ResumeKey, SessionDeadline, SessionRef};
use super::{matchmaking, peers, users};
use crate::party::{Effects, PartyTable};
use crate::protocol::{Limits, SessionId};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, PoisonError};

/// State every connection task shares.
pub(crate) struct Shared {
    pub(crate) table: PartyTable<SessionRef>,
    pub(crate) config: ServerConfig,
    pub(crate) limits: Limits,
    /// Live sessions, connected or in their grace window, for resume.
    sessions: Mutex<HashMap<SessionId, SessionRef>>,
    /// QUIC handshakes in progress, for admission.
    pub(crate) handshakes: AtomicUsize,
    /// Sessions and budgets per user and per address (`player_limits`).
    pub(crate) players: Mutex<PlayerLimits>,
    pub(crate) metrics: Arc<Metrics>,
    /// `Some` when `config.coalesce` is above zero.
    pub(crate) coalescer: Option<Arc<Coalescer>>,
    /// Status presence, follows and pending invites, by user.
    pub(crate) users: users::Users,
    /// Matchmaking tickets and their pool.
    pub(crate) matchmaking: matchmaking::Matchmaking,
    /// Grace and leader-grace deadlines of lost sessions.
    pub(crate) deadlines: Deadlines<SessionDeadline>,
    /// Set when the server stops: connections that end now end their
    /// sessions outright instead of starting a grace window.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    /// The embedding game's hooks, when it gave any.
    pub(crate) hooks: Option<Arc<HookState>>,
    /// Signs resume tokens (cluster-wide with a reset key file).
    pub(crate) resume_key: ResumeKey,
    /// Sessions of lost nodes that nodes took over, for the users this
    /// node owns: a dead node's token works once.
    pub(crate) resume_claims: Mutex<ResumeClaims>,
    /// Where sessions and parties are, and the way to the other nodes:
    /// set once, when the server joins its cluster.
    route: std::sync::OnceLock<Route>,
    /// The route of a server that joined no cluster (yet).
    alone: Route,
}

impl Shared {
    /// The state of a server with `config`, alone until it joins a
    /// cluster.
    pub(crate) fn new(config: ServerConfig, limits: Limits, hooks: Option<Arc<HookState>>) -> Self {
        let metrics = Arc::<Metrics>::default();
        let coalescer = (!config.coalesce.is_zero())
            .then(|| Arc::new(Coalescer::new(config.coalesce, metrics.clone())));
        let relax_after = config.matchmaker_relax_after;
        let players = Mutex::new(PlayerLimits::new(&config));
        let alone = Route::new(
            Arc::new(peers::single::Alone::default()),
            NodeTimings::default(),
            metrics.clone(),
            coalescer.clone(),
        );
        let resume_key = ResumeKey::new(config.reset_key.as_ref().map(|key| key.bytes()));
        Shared {
            resume_key,
            resume_claims: Mutex::default(),
            table: PartyTable::new(config.shards),
            config,
            limits,
            sessions: Mutex::new(HashMap::new()),
            handshakes: AtomicUsize::new(0),
            players,
            metrics,
            coalescer,
            users: users::Users::default(),
            deadlines: Deadlines::default(),
            matchmaking: matchmaking::Matchmaking::new(Some(relax_after)),
            stopping: std::sync::atomic::AtomicBool::new(false),
            hooks,
            route: std::sync::OnceLock::new(),
            alone,
        }
    }

    /// Whether the server joined a cluster.
    pub(crate) fn joined(&self) -> bool {
        self.route.get().is_some()
    }

    /// The routing layer; a server that joined no cluster is alone.
    pub(crate) fn route(&self) -> &Route {
        self.route.get().unwrap_or(&self.alone)
    }

    fn make_route(&self, peers: Arc<dyn peers::Peers>, timings: NodeTimings) -> Route {
        Route::new(peers, timings, self.metrics.clone(), self.coalescer.clone())
    }

    /// Joins the other nodes through `peers`: ticket ids and listing
    /// places name this node from now on. Fails once the route is set.
    pub(crate) fn join(
        &self,
        peers: Arc<dyn peers::Peers>,
        timings: NodeTimings,
    ) -> Result<(), AlreadyJoined> {
        let tag = peers.node();
        let route = self.make_route(peers, timings);
        let outlet = route.outlet.clone();
        self.route.set(route).map_err(|_| AlreadyJoined)?;
        // Listing places sort together across the nodes.
        self.table.use_clock_places(tag as u8);
        self.matchmaking.use_node_tag(tag);
        self.matchmaking.use_outlet(outlet);
        Ok(())
    }

    /// A fresh party id; in a cluster, one that names this node its home.
    pub(crate) fn new_party_id(&self) -> crate::protocol::PartyId {
        self.route().new_party_id()
    }

    /// Registers a new session, unless its user or its address has the
    /// most sessions allowed (`--max-sessions-per-user`, `-per-address`).
    pub(crate) fn register_session(&self, session: SessionRef) -> Result<(), SessionLimit> {
        self.players().admit(session.player())?;
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(session.session_id(), session);
        Ok(())
    }

    /// The limits per user and per address, locked.
    pub(crate) fn players(&self) -> std::sync::MutexGuard<'_, PlayerLimits> {
        self.players.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn find_session(&self, id: SessionId) -> Option<SessionRef> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// The live sessions among `ids`, under one lock (a relayed batch).
    pub(crate) fn find_sessions(&self, ids: &[SessionId]) -> Vec<SessionRef> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        ids.iter()
            .filter_map(|id| sessions.get(id).cloned())
            .collect()
    }

    pub(crate) fn forget_session(&self, id: SessionId) {
        let forgotten = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        // Once only: the session is counted as long as it is registered.
        if let Some(session) = forgotten {
            self.players().release(session.player());
        }
    }

    /// Every live session, for the server-side API.
    pub(crate) fn all_sessions(&self) -> Vec<SessionRef> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    pub(crate) fn session_count(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The server is in a cluster already.
#[derive(Debug)]
pub(crate) struct AlreadyJoined;

/// Hands each event to its recipient (here or on its node), each invite
/// notice to every session of its user, and the hooks what happened.
/// Never blocks.
pub(crate) fn deliver(shared: &Shared, effects: Effects<SessionRef>) {
    if let Some(hooks) = &shared.hooks {
        hooks.tell_effects(&effects);
    }
    let route = shared.route();
    route.send_events(effects.deliveries);
    for notice in effects.invites {
        super::presence::invite(&shared.users, route, notice);
    }
    if let Some((ticket, reason)) = effects.ticket_ended {
        shared.matchmaking.cancel(ticket, reason);
    }
}
