//! The control plane between nodes, driven by hand, for the criterion
//! benchmark `benches/control.rs` (hidden from the docs: not an API).
//!
//! Three nodes of one process on the in-memory hub, a, b and c, with no
//! task running: a step makes a control message as the server does
//! (encoded, behind its header, on the receiver's lane), and the node it
//! reaches handles it as its node task would (`nodes::on_inbound`: the
//! header decoded and checked, the message decoded and acted on), until no
//! lane holds anything. What is measured is the nodes' own work per
//! message; the transport (NATS, its clients' syscalls) is not in it.

use super::config::ServerConfig;
use super::peers::hub::MemoryHub;
use super::peers::{node_tag, owner_weight, Inbound, NodeId, Question};
use super::replay::ReplayLog;
use super::route::NodeTimings;
use super::session::{outbox, OutboxReceiver, SessionLink, SessionRef};
use super::state::Shared;
use super::{nodes, presence};
use crate::protocol::{Presence, SessionId};
use std::sync::Arc;
use tokio::sync::mpsc;

const NAMES: [&str; 3] = ["a", "b", "c"];

/// The three nodes and the players of the benchmark: `player` (a session
/// on a) and `quiet` (another on a, followed by no one), both of users
/// owned by b; `follower`, on c, follows `player`'s user.
pub struct ControlPath {
    nodes: Vec<Arc<Shared>>,
    lanes: Vec<mpsc::Receiver<Inbound>>,
    player: SessionRef,
    quiet: SessionRef,
    follower_outbox: OutboxReceiver,
    turn: u64,
}

/// A user id that node `owner` owns among `NAMES`.
fn user_owned_by(owner: &str, prefix: &str) -> String {
    let tags = NAMES.map(node_tag);
    let owner_of = |user: &str| {
        tags.iter()
            .max_by_key(|tag| owner_weight(user, **tag))
            .copied()
    };
    (0..)
        .map(|n| format!("{prefix}{n}"))
        .find(|user| owner_of(user) == Some(node_tag(owner)))
        .unwrap_or_default()
}

fn session_on(node: &Shared, user: &str) -> SessionRef {
    let presence = Presence {
        user_id: user.to_string(),
        username: user.to_string(),
        session_id: SessionId::random(),
    };
    let log = ReplayLog::new(node.config.replay_events, node.config.replay_bytes);
    let session = Arc::new(SessionLink::new(presence, log, node.metrics.clone()));
    let _ = node.register_session(session.clone());
    presence::session_started(&node.users, node.route(), &session);
    session
}

/// Every node handles what waits on its lane, until none waits: the
/// messages handled.
fn pump(servers: &[Arc<Shared>], lanes: &mut [mpsc::Receiver<Inbound>]) -> usize {
    let mut handled = 0;
    loop {
        let mut any = false;
        for (node, lane) in servers.iter().zip(lanes.iter_mut()) {
            while let Ok(inbound) = lane.try_recv() {
                nodes::on_inbound(node, inbound);
                handled += 1;
                any = true;
            }
        }
        if !any {
            return handled;
        }
    }
}

impl ControlPath {
    /// The three nodes, each having heard the others, and the players.
    /// `None` if a node could not be made (no TLS identity).
    pub fn new() -> Option<ControlPath> {
        let hub = MemoryHub::new();
        let (mut nodes, mut lanes) = (Vec::new(), Vec::new());
        for name in NAMES {
            let (tls, _, _) = crate::certs::generate_dev_identity().ok()?;
            let config = ServerConfig::new(([127, 0, 0, 1], 0).into(), tls);
            let limits = config.limits();
            let shared = Arc::new(Shared::new(config, limits, None));
            let peers = hub.join(name).ok()?;
            shared.join(Arc::new(peers), NodeTimings::default()).ok()?;
            lanes.push(shared.route().peers().start()?.control);
            nodes.push(shared);
        }
        for node in &nodes {
            node.route().beat(false);
        }
        pump(&nodes, &mut lanes);
        let (a, c) = (nodes[0].clone(), nodes[2].clone());
        let user = user_owned_by("b", "player");
        let player = session_on(&a, &user);
        let quiet = session_on(&a, &user_owned_by("b", "quiet"));
        let follower = session_on(&c, "follower");
        let (sender, follower_outbox) = outbox(c.config.outbox_capacity);
        follower.attach(None, sender, None).ok()?;
        let (_, first) = c.users.follow(&follower, vec![user], usize::MAX).ok()?;
        Self::ask_follow(&c, first);
        let mut path = ControlPath {
            nodes,
            lanes,
            player,
            quiet,
            follower_outbox,
            turn: 0,
        };
        path.pump();
        path.drain_follower();
        Some(path)
    }

    /// Node c asks the owner of `user_ids` (b) to note it as a follower
    /// node, as a `Follow` of users not followed there yet does.
    fn ask_follow(node: &Shared, user_ids: Vec<String>) {
        let route = node.route();
        let owner: NodeId = route.owner_of(&user_ids[0]);
        node.users.told_follows(&user_ids, owner);
        route.ask_no_wait(owner, Question::Follow(user_ids));
    }

    fn pump(&mut self) -> usize {
        pump(&self.nodes, &mut self.lanes)
    }

    /// Bytes of control messages the nodes sent so far (headers
    /// included), to tell a step's size.
    pub fn bytes_sent(&self) -> u64 {
        let sent = self
            .nodes
            .iter()
            .map(|node| &node.route().peers().metrics().bytes_out);
        sent.map(|bytes| bytes.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    }

    fn drain_follower(&mut self) -> usize {
        let mut events = 0;
        while self.follower_outbox.try_recv().is_some() {
            events += 1;
        }
        events
    }

    fn next_status(&mut self) -> String {
        self.turn += 1;
        // A status text of the usual length, new each time.
        format!("in the lobby, turn {:08}", self.turn % 100_000_000)
    }

    /// A status change of a user no one follows: its node tells the
    /// user's owner (one message: `Presence`). The messages handled.
    pub fn status_change_unfollowed(&mut self) -> usize {
        let status = self.next_status();
        let a = &self.nodes[0];
        presence::set_status(&a.users, a.route(), &self.quiet, status, true);
        self.pump()
    }

    /// A status change of a followed user: its node tells the owner, which
    /// passes it on to the follower's node, whose follower hears
    /// `StatusChanged` (two messages: `Presence`, `Told`). The messages
    /// handled.
    pub fn status_change_followed(&mut self) -> usize {
        let status = self.next_status();
        let a = &self.nodes[0];
        presence::set_status(&a.users, a.route(), &self.player, status, true);
        let handled = self.pump();
        self.drain_follower();
        handled
    }

    /// A follow asked of the user's owner and answered (two messages:
    /// `Ask Follow`, `Answer`), the answer noted on the follower's node.
    /// The messages handled.
    pub fn follow_asked_and_answered(&mut self) -> usize {
        let c = &self.nodes[2];
        Self::ask_follow(c, vec![self.player.presence.user_id.clone()]);
        self.pump()
    }
}

#[cfg(test)]
mod tests {
    use super::ControlPath;

    /// Each step is the messages it says, and the follower hears the
    /// change (outside any runtime, as criterion runs it).
    #[test]
    fn each_step_handles_the_messages_it_names() {
        let mut path = ControlPath::new().expect("three nodes");
        for _ in 0..3 {
            assert_eq!(path.status_change_unfollowed(), 1);
            assert_eq!(path.status_change_followed(), 2);
            assert_eq!(path.follow_asked_and_answered(), 2);
        }
        assert_eq!(path.status_change_followed(), 2);
        // `drain_follower` ran in the step; one more change, one event.
        let status = path.next_status();
        let a = &path.nodes[0];
        super::presence::set_status(&a.users, a.route(), &path.player, status, true);
        path.pump();
        assert_eq!(path.drain_follower(), 1, "the follower heard it");
    }
}
