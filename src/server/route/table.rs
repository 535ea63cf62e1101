//! The node table: which incarnation of each other node this node talks
//! to, judged by heartbeats on tokio's clock; the incarnations that are
//! over here (judged lost, told so in this node's heartbeats, or replaced
//! by a newer one); and this node's own liveness, from its heartbeats
//! coming back (docs/CLUSTER.md, "Failure rules").
//!
//! - A node is judged lost only while this node hears itself: silence of
//!   the others counts from when its own heartbeats have come back without
//!   a gap (`echo_since`), so a stalled link (NATS frozen, TCP up), or
//!   this process frozen and woken on a stale clock, judges nobody.
//! - A node judged lost hears it in this node's heartbeats (`judged_lost`)
//!   and comes back as a new incarnation, having dropped every tie; until
//!   then nothing of its judged incarnation is taken here.

use super::{NodeTimings, Pending, Route};
use crate::protocol::SessionId;
use crate::server::peers::{owner_weight, Header, Heartbeat, NodeId, PeerMetrics};
use crate::server::session::{lock, SessionRef};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Incarnations kept as over (the oldest forgotten first).
const MAX_OVER: usize = 1024;
/// This node's own past incarnations, whose late heartbeats are its own.
const MAX_PAST: usize = 16;

pub(super) struct PeerNode {
    name: String,
    incarnation: u64,
    last_seen: Instant,
    /// The matcher its last heartbeat named (none heard yet).
    matcher: Option<NodeId>,
}

/// An incarnation of another node that is over here: nothing of it is
/// taken any more.
struct Over {
    tag: NodeId,
    incarnation: u64,
    /// Judged lost: this node's heartbeats tell of it until then (longer
    /// while it is still heard). `None`: a newer one replaced it.
    tell_until: Option<Instant>,
    /// When this node judged it lost (silent): a resume token of it is
    /// taken until that moment plus the grace window.
    judged_at: Option<Instant>,
}

/// The node table, under one lock.
pub(super) struct NodeTable {
    nodes: HashMap<NodeId, PeerNode>,
    over: VecDeque<Over>,
    past: Vec<u64>,
    /// When this node's own heartbeat last came back.
    echo_at: Instant,
    /// Since when they have come back with no gap longer than the echo
    /// gap: the others' silence counts from here.
    echo_since: Instant,
    /// When this node started or last became a new incarnation: for a
    /// heartbeat after, it may not have heard every node yet.
    renewed_at: Instant,
}

impl NodeTable {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        NodeTable {
            nodes: HashMap::new(),
            over: VecDeque::new(),
            past: Vec::new(),
            echo_at: now,
            echo_since: now,
            renewed_at: now,
        }
    }

    fn is_over(&self, tag: NodeId, incarnation: u64) -> bool {
        self.over
            .iter()
            .any(|o| o.tag == tag && o.incarnation == incarnation)
    }

    fn mark_over(&mut self, tag: NodeId, incarnation: u64, tell_until: Option<Instant>) {
        if self.over.len() == MAX_OVER {
            self.over.pop_front();
        }
        self.over.push_back(Over {
            tag,
            incarnation,
            tell_until,
            judged_at: tell_until.map(|_| Instant::now()),
        });
    }
}

/// What a heartbeat, or a control message's header, told this node.
pub(crate) enum Heard {
    /// Nothing new.
    Known,
    /// Of an incarnation that is over here (or for another incarnation of
    /// this node): dropped.
    Stale,
    /// Another node judged this node lost: it drops every tie and comes
    /// back as a new incarnation (then hears the heartbeat again).
    JudgedLost,
    /// A node joined (or came back under a new incarnation, or left):
    /// `lost` names what ended first, and why.
    Changed { lost: Option<Loss>, joined: bool },
}

/// Why the ties to a node end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Not heard for a node timeout while this node heard itself: judged
    /// lost, and told so in this node's heartbeats.
    Silent,
    /// Heard as a new incarnation: the old one is over.
    Restarted,
    /// It said it leaves.
    Left,
    /// This node was judged lost: it drops its ties to every node, judging
    /// none of them, and comes back as a new incarnation.
    Rejoining,
}

impl Loss {
    pub(crate) fn why(self) -> &'static str {
        match self {
            Loss::Silent => "silent",
            Loss::Restarted => "restarted",
            Loss::Left => "left",
            Loss::Rejoining => "this node was judged lost by another",
        }
    }
}

impl Route {
    /// The longest gap between this node's own heartbeats coming back that
    /// still counts as hearing itself. Below `node_timeout - heartbeat`,
    /// so that a link that stalled right after another node's last
    /// heartbeat is noticed before that node's silence reaches the timeout.
    fn echo_gap(&self) -> Duration {
        let NodeTimings {
            heartbeat,
            node_timeout,
            ..
        } = self.timings;
        (heartbeat * 3 / 2).max(node_timeout.saturating_sub(heartbeat) / 2)
    }

    /// How long this node's heartbeats tell of an incarnation it judged
    /// lost, after the judgment or the last time that incarnation was
    /// heard.
    fn tell_for(&self) -> Duration {
        self.timings.node_timeout * 20
    }

    /// This node's incarnation now.
    pub(crate) fn incarnation(&self) -> u64 {
        self.outlet.incarnations.mine()
    }

    /// The other nodes heard from, by name, sorted.
    pub(crate) fn peer_names(&self) -> Vec<String> {
        let table = lock(&self.nodes);
        let mut names: Vec<String> = table.nodes.values().map(|n| n.name.clone()).collect();
        names.sort();
        names
    }

    /// The other nodes heard from.
    pub(crate) fn live_nodes(&self) -> Vec<NodeId> {
        lock(&self.nodes).nodes.keys().copied().collect()
    }

    /// When this node last judged node `tag` lost (silent), if it did and
    /// has not heard it since.
    pub(crate) fn judged_lost_at(&self, tag: NodeId) -> Option<Instant> {
        let table = lock(&self.nodes);
        if table.nodes.contains_key(&tag) {
            return None;
        }
        let judged = table.over.iter().filter(|o| o.tag == tag);
        judged.filter_map(|o| o.judged_at).max()
    }

    /// Whether this node talks to `tag` now.
    pub(crate) fn knows(&self, tag: NodeId) -> bool {
        lock(&self.nodes).nodes.contains_key(&tag)
    }

    /// What logs and the APIs call node `tag`: its name when heard, this
    /// node's own, or the tag in hex.
    pub(crate) fn node_name(&self, tag: NodeId) -> String {
        if tag == self.me {
            return self.peers.name().to_string();
        }
        match lock(&self.nodes).nodes.get(&tag) {
            Some(node) => node.name.clone(),
            None => format!("{tag:08x}"),
        }
    }

    /// The node whose pool holds the cluster's tickets: the live node with
    /// the lowest tag (every node agrees once they hear the same nodes).
    pub(crate) fn matcher(&self) -> NodeId {
        let table = lock(&self.nodes);
        table
            .nodes
            .keys()
            .copied()
            .chain([self.me])
            .min()
            .unwrap_or(self.me)
    }

    /// Notes the matcher a heartbeat of `tag` (as `incarnation`) named.
    pub(crate) fn note_matcher(&self, tag: NodeId, incarnation: u64, matcher: NodeId) {
        let mut table = lock(&self.nodes);
        if let Some(node) = table.nodes.get_mut(&tag) {
            if node.incarnation == incarnation {
                node.matcher = Some(matcher);
            }
        }
    }

    /// Whether this node's pool may match now (docs/CLUSTER.md,
    /// "Matchmaking: one pool, on the matcher"): it is the matcher as it
    /// sees it, it hears itself (its link up, its own heartbeats coming
    /// back), it is not new (it has heard every node by a heartbeat after
    /// it came up or back), and every node it hears named it the matcher
    /// in its last heartbeat. Otherwise its pool holds its tickets without
    /// matching: two nodes that both see themselves as the matcher never
    /// both match, unless they hear neither each other nor any node in
    /// common. Alone, always.
    pub(crate) fn may_match(&self) -> bool {
        if self.alone {
            return true;
        }
        if self.peers.link_up_since().is_none() || self.just_joined() {
            return false;
        }
        let table = lock(&self.nodes);
        let hears_itself = table.echo_at.elapsed() <= self.echo_gap();
        let lowest = table.nodes.keys().all(|tag| *tag > self.me);
        let agreed = (table.nodes.values()).all(|node| node.matcher == Some(self.me));
        hears_itself && lowest && agreed
    }

    /// The owner of `user_id` among the live nodes (this one included):
    /// the one of highest weight for it (rendezvous hashing), so a node
    /// that joins or goes moves only the users it wins or held.
    pub(crate) fn owner_of(&self, user_id: &str) -> NodeId {
        let table = lock(&self.nodes);
        let nodes = table.nodes.keys().copied().chain([self.me]);
        let weighed = nodes.map(|tag| (owner_weight(user_id, tag), tag));
        weighed.max().map_or(self.me, |(_, tag)| tag)
    }

    /// The owner `user_id` had among `nodes` and this one (as `owner_of`,
    /// for another view of the live nodes).
    pub(crate) fn owner_among(&self, user_id: &str, nodes: &[NodeId]) -> NodeId {
        let nodes = nodes.iter().copied().chain([self.me]);
        let weighed = nodes.map(|tag| (owner_weight(user_id, tag), tag));
        weighed.max().map_or(self.me, |(_, tag)| tag)
    }

    /// Whether this node may not have heard every node yet: its link came
    /// up, or it became a new incarnation, within a heartbeat (every node
    /// beats back at once when it hears a new one, so one is plenty).
    pub(crate) fn just_joined(&self) -> bool {
        let renewed_at = lock(&self.nodes).renewed_at;
        let up = self.peers.link_up_since();
        up.is_some_and(|since| since.max(renewed_at).elapsed() < self.timings.heartbeat)
    }

    /// Announces this node (`leaving` when it stops), with the
    /// incarnations it judged lost and still tells of.
    pub(crate) fn beat(&self, leaving: bool) -> Option<bytes::Bytes> {
        let now = Instant::now();
        let matcher = self.matcher();
        let judged_lost = lock(&self.nodes)
            .over
            .iter()
            .filter(|o| o.tell_until.is_some_and(|until| until > now))
            .map(|o| (o.tag, o.incarnation))
            .collect();
        let beat = Heartbeat {
            tag: self.me,
            name: self.peers.name().to_string(),
            incarnation: self.incarnation(),
            build: env!("CARGO_PKG_VERSION").to_string(),
            leaving,
            judged_lost,
            matcher,
        };
        let payload = crate::server::peers::encode(&beat)?;
        if !leaving {
            self.peers.announce(payload.clone());
        }
        Some(payload)
    }

    /// Notes a heartbeat; what changed is for the caller to act on.
    pub(crate) fn heard(&self, beat: &Heartbeat) -> Heard {
        let mine = self.incarnation();
        let now = Instant::now();
        let mut table = lock(&self.nodes);
        if beat.tag == self.me {
            if beat.incarnation == mine {
                if now.duration_since(table.echo_at) > self.echo_gap() {
                    table.echo_since = now;
                }
                table.echo_at = now;
            } else if !table.past.contains(&beat.incarnation) {
                tracing::error!(name = %beat.name, "another node heart-beats with this node's tag: give each node its own --node");
            }
            return Heard::Known;
        }
        if beat.build != env!("CARGO_PKG_VERSION") {
            tracing::warn!(node = %beat.name, build = %beat.build, "ignoring a node of another partyline build");
            return Heard::Stale;
        }
        if table.is_over(beat.tag, beat.incarnation) {
            // Still heard as what this node judged lost: keep telling it.
            let until = now + self.tell_for();
            for over in table.over.iter_mut() {
                if over.tag == beat.tag && over.incarnation == beat.incarnation {
                    over.tell_until = over.tell_until.map(|_| until);
                }
            }
            return Heard::Stale;
        }
        if beat.judged_lost.contains(&(self.me, mine)) {
            return Heard::JudgedLost;
        }
        if let Some(node) = table.nodes.get_mut(&beat.tag) {
            if node.incarnation == beat.incarnation && !beat.leaving {
                node.last_seen = now;
                if node.name != beat.name {
                    node.name.clone_from(&beat.name);
                }
                return Heard::Known;
            }
        }
        self.changed(&table, beat.tag, beat.incarnation, beat.leaving)
    }

    /// Whether a control message with `header` is for now: of the
    /// incarnation of its sender this node talks to, for this node's own.
    /// A message of a node not heard yet (or of its new incarnation) is
    /// taken as a heartbeat would be: it heard this node, so it lives.
    pub(crate) fn admit(&self, header: &Header) -> Heard {
        let current = self.outlet.incarnations.current(header);
        if current {
            return Heard::Known;
        }
        let table = lock(&self.nodes);
        if header.to_incarnation != self.incarnation()
            || header.from == self.me
            || table.is_over(header.from, header.from_incarnation)
        {
            drop(table);
            PeerMetrics::add(&self.peers.metrics().stale, 1);
            return Heard::Stale;
        }
        self.changed(&table, header.from, header.from_incarnation, false)
    }

    /// Incarnation `incarnation` of `tag`, not the one this node talks to,
    /// is heard (`leaving`: as it leaves).
    fn changed(&self, table: &NodeTable, tag: NodeId, incarnation: u64, leaving: bool) -> Heard {
        let lost = match table.nodes.get(&tag) {
            Some(node) if node.incarnation == incarnation => Some(Loss::Left),
            Some(_) => Some(Loss::Restarted),
            None => None,
        };
        if lost.is_none() && leaving {
            return Heard::Known;
        }
        Heard::Changed {
            lost,
            joined: !leaving,
        }
    }

    /// Incarnation `incarnation` of node `tag` (named `name`, if heard in
    /// a heartbeat) joins the table.
    pub(crate) fn add_node(&self, tag: NodeId, incarnation: u64, name: Option<&str>) {
        let mut table = lock(&self.nodes);
        // A newer incarnation: the older ones are no longer told of.
        for over in table.over.iter_mut().filter(|o| o.tag == tag) {
            over.tell_until = None;
        }
        let name = name.map_or_else(|| format!("{tag:08x}"), str::to_string);
        tracing::info!(node = %name, tag = %format_args!("{tag:08x}"), "node joined the cluster");
        table.nodes.insert(
            tag,
            PeerNode {
                name,
                incarnation,
                last_seen: Instant::now(),
                matcher: None,
            },
        );
        self.outlet.talk_to(tag, incarnation);
        drop(table);
        // So the newcomer hears of this node now, not a beat later.
        self.beat_soon.notify_one();
    }

    /// The nodes silent for a whole timeout while this node heard itself:
    /// none while its link is down, while its own heartbeats do not come
    /// back (a stalled link, or this process just woken), nor within a
    /// timeout after they came back (silence then proves nothing).
    pub(crate) fn silent_nodes(&self) -> Vec<NodeId> {
        let Some(link_up) = self.peers.link_up_since() else {
            return Vec::new();
        };
        let table = lock(&self.nodes);
        if table.echo_at.elapsed() > self.echo_gap() {
            return Vec::new();
        }
        let since = link_up.max(table.echo_since);
        let timeout = self.timings.node_timeout;
        table
            .nodes
            .iter()
            .filter(|(_, node)| node.last_seen.max(since).elapsed() >= timeout)
            .map(|(tag, _)| *tag)
            .collect()
    }

    /// Forgets node `tag`: its name, the commands that waited on it, and
    /// the proxies of its sessions (for the caller to end or, with `hold`,
    /// to hold: they stay, for a resume on another node to take). Its
    /// incarnation is over here; judged lost (`Silent`), it is told so.
    pub(crate) fn forget_node(
        &self,
        tag: NodeId,
        loss: Loss,
        hold: bool,
    ) -> (Option<String>, Vec<Pending>, Vec<SessionRef>) {
        let name = {
            let mut table = lock(&self.nodes);
            let node = table.nodes.remove(&tag);
            if let (Some(node), true) = (&node, loss != Loss::Rejoining) {
                let tell_until = (loss == Loss::Silent).then(|| Instant::now() + self.tell_for());
                table.mark_over(tag, node.incarnation, tell_until);
            }
            self.outlet.forget(tag);
            node.map(|node| node.name)
        };
        if loss != Loss::Rejoining {
            PeerMetrics::add(&self.peers.metrics().nodes_lost, 1);
        }
        let failed: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let corrs: Vec<u32> = pending
                .iter()
                .filter(|(_, p)| p.node == tag)
                .map(|(corr, _)| *corr)
                .collect();
            corrs
                .iter()
                .filter_map(|corr| pending.remove(corr))
                .collect()
        };
        let gone = match hold {
            true => self.proxies_on(tag),
            false => self.take_proxies_on(tag),
        };
        for gather in lock(&self.gathers).values_mut() {
            gather.heard_from(tag);
        }
        (name, failed, gone)
    }

    /// The proxies of sessions of node `tag`.
    pub(crate) fn proxies_on(&self, tag: NodeId) -> Vec<SessionRef> {
        let proxies = lock(&self.proxies);
        let on = proxies.values().filter(|proxy| Self::lives_on(proxy, tag));
        on.cloned().collect()
    }

    /// Takes the proxies of sessions of node `tag` out: their seats are
    /// the caller's to end.
    pub(crate) fn take_proxies_on(&self, tag: NodeId) -> Vec<SessionRef> {
        let mut proxies = lock(&self.proxies);
        let ids: Vec<SessionId> = proxies
            .iter()
            .filter(|(_, proxy)| Self::lives_on(proxy, tag))
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| proxies.remove(id)).collect()
    }

    /// Takes out the proxies of sessions of nodes this node does not talk
    /// to (held for a lost node): their seats are the caller's to end.
    pub(crate) fn take_proxies_off_the_table(&self) -> Vec<SessionRef> {
        let live: Vec<NodeId> = self.live_nodes();
        let mut proxies = lock(&self.proxies);
        let ids: Vec<SessionId> = proxies
            .iter()
            .filter(|(_, proxy)| proxy.remote_node().is_some_and(|n| !live.contains(&n)))
            .map(|(id, _)| *id)
            .collect();
        ids.iter().filter_map(|id| proxies.remove(id)).collect()
    }

    /// This node was judged lost and has dropped its ties to every node
    /// (`forget_node` with `Loss::Rejoining`): it becomes a new
    /// incarnation, and announces itself at once. What was meant for its
    /// old one is dropped on arrival from now on.
    pub(crate) fn renew(&self) {
        let mut table = lock(&self.nodes);
        let old = self.incarnation();
        if table.past.len() == MAX_PAST {
            table.past.remove(0);
        }
        table.past.push(old);
        // Its judgments were the old incarnation's: the new one has no tie
        // to any node, so it holds nothing against one either.
        table.over.clear();
        table.nodes.clear();
        table.renewed_at = Instant::now();
        let fresh = self.outlet.renew();
        drop(table);
        PeerMetrics::add(&self.peers.metrics().rejoins, 1);
        tracing::warn!(old = %format_args!("{old:016x}"), new = %format_args!("{fresh:016x}"), "this node was judged lost by the others: its ties to them are dropped, and it joins again as a new incarnation");
        self.beat_soon.notify_one();
    }
}
