//! An in-memory hub: several servers of one process linked by channels,
//! with the faults of a real network on demand. Messages to one node keep
//! their order, as over NATS; each lane is bounded and drops (counted)
//! when full, as over NATS.
//!
//! Faults, per node: **stalled** (what it sends and what is sent to it is
//! held, and arrives late, in order, when it heals: a node that froze, or
//! a path that returns late; every node stalled is a stalled NATS), **cut**
//! (both ways dropped, and the node knows its link is down), and **cut one
//! way** (what it sends is dropped; it still hears the others).
//! Announcements reach their sender too, as NATS echoes them, under the
//! same faults.

use super::{Inbound, InboundLanes, LinkState, NodeId, PeerMetrics, Peers, PeersFuture};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// Messages each node's lanes hold before dropping.
const LANE_CAPACITY: usize = 16 * 1024;

/// Several servers of one process, linked (`ServerBuilder::hub`).
#[derive(Clone, Default)]
pub struct MemoryHub {
    inner: Arc<Mutex<HubState>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Fault {
    #[default]
    None,
    Stalled,
    Cut,
    CutOutbound,
}

#[derive(Default)]
struct HubState {
    nodes: HashMap<NodeId, HubNode>,
}

struct HubNode {
    control: mpsc::Sender<Inbound>,
    /// The node's own counters: what it receives is counted on arrival.
    metrics: Arc<PeerMetrics>,
    datagrams: mpsc::Sender<Bytes>,
    fault: Fault,
    link: Arc<LinkState>,
    /// What waits while this node or its sender is stalled: (to, lane).
    held: Vec<(NodeId, Held)>,
}

enum Held {
    Control(Inbound),
    Datagram(Bytes),
}

/// Why a node could not join the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("node name {0:?} is already taken in this hub")]
    NameTaken(String),
    #[error("--node must be 1 to 64 letters, digits, '-', '_' or '.', got {0:?}")]
    BadNodeName(String),
}

impl MemoryHub {
    /// An empty hub.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, HubState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A node named `name` joins.
    pub(crate) fn join(&self, name: &str) -> Result<HubPeers, HubError> {
        if !super::valid_node_name(name) {
            return Err(HubError::BadNodeName(name.to_string()));
        }
        let tag = super::node_tag(name);
        let mut state = self.state();
        if state.nodes.contains_key(&tag) {
            return Err(HubError::NameTaken(name.to_string()));
        }
        let (control_tx, control) = mpsc::channel(LANE_CAPACITY);
        let (datagrams_tx, datagrams) = mpsc::channel(LANE_CAPACITY);
        let link = Arc::new(LinkState::default());
        link.set(true);
        let metrics = Arc::<PeerMetrics>::default();
        state.nodes.insert(
            tag,
            HubNode {
                metrics: metrics.clone(),
                control: control_tx,
                datagrams: datagrams_tx,
                fault: Fault::None,
                link: link.clone(),
                held: Vec::new(),
            },
        );
        Ok(HubPeers {
            hub: self.clone(),
            tag,
            name: name.to_string(),
            link,
            lanes: Mutex::new(Some(InboundLanes { control, datagrams })),
            metrics,
        })
    }

    fn set_fault(&self, name: &str, fault: Fault) {
        let tag = super::node_tag(name);
        let mut state = self.state();
        let Some(node) = state.nodes.get_mut(&tag) else {
            return;
        };
        // Only a cut is noticed: a stalled node, or one cut one way, still
        // believes its link has been up all along (a reset would make it
        // discount the silence of the others for a node timeout).
        let was_cut = std::mem::replace(&mut node.fault, fault) == Fault::Cut;
        if was_cut != (fault == Fault::Cut) {
            node.link.set(fault != Fault::Cut);
        }
        if fault == Fault::None {
            let held = std::mem::take(&mut node.held);
            for (to, message) in held {
                // A receiver still stalled keeps it, after what it holds.
                match state.nodes.get(&to).map(|n| n.fault) {
                    Some(Fault::Stalled) => state.hold(to, to, message),
                    _ => state.deliver_now(to, message),
                };
            }
        }
    }

    /// Node `name` freezes: nothing it sends or is sent arrives until it
    /// heals (then all of it, late, in order). It does not notice.
    pub fn stall(&self, name: &str) {
        self.set_fault(name, Fault::Stalled);
    }

    /// Node `name` loses its link both ways, and knows it.
    pub fn cut(&self, name: &str) {
        self.set_fault(name, Fault::Cut);
    }

    /// What node `name` sends is lost; it still hears the others, and
    /// believes its link is up.
    pub fn cut_outbound(&self, name: &str) {
        self.set_fault(name, Fault::CutOutbound);
    }

    /// Node `name` is whole again; what was held arrives now.
    pub fn heal(&self, name: &str) {
        self.set_fault(name, Fault::None);
    }

    /// Node `name` leaves the hub for good (a process that died).
    pub fn remove(&self, name: &str) {
        self.state().nodes.remove(&super::node_tag(name));
    }
}

impl HubState {
    /// Queues `message` from `from` to `to` as the faults allow; false when
    /// it was dropped.
    fn route(&mut self, from: NodeId, to: NodeId, message: Held) -> bool {
        let sender = self.nodes.get(&from).map_or(Fault::None, |n| n.fault);
        let receiver = self.nodes.get(&to).map(|n| n.fault);
        match (sender, receiver) {
            (_, None) => false,
            (Fault::Cut | Fault::CutOutbound, _) | (_, Some(Fault::Cut)) => false,
            (Fault::Stalled, _) => self.hold(from, to, message),
            (_, Some(Fault::Stalled)) => self.hold(to, to, message),
            _ => self.deliver_now(to, message),
        }
    }

    fn hold(&mut self, at: NodeId, to: NodeId, message: Held) -> bool {
        match self.nodes.get_mut(&at) {
            Some(node) if node.held.len() < LANE_CAPACITY => {
                node.held.push((to, message));
                true
            }
            _ => false,
        }
    }

    fn deliver_now(&mut self, to: NodeId, message: Held) -> bool {
        let Some(node) = self.nodes.get(&to) else {
            return false;
        };
        match message {
            Held::Control(inbound) => {
                let len = match &inbound {
                    Inbound::Control(bytes) => Some(bytes.len()),
                    Inbound::Announce(_) => None,
                };
                let sent = node.control.try_send(inbound).is_ok();
                if let (true, Some(len)) = (sent, len) {
                    node.metrics.received(false, len);
                }
                sent
            }
            Held::Datagram(bytes) => {
                let len = bytes.len();
                let sent = node.datagrams.try_send(bytes).is_ok();
                if sent {
                    node.metrics.received(true, len);
                }
                sent
            }
        }
    }

    fn others(&self, me: NodeId) -> Vec<NodeId> {
        self.nodes.keys().copied().filter(|n| *n != me).collect()
    }
}

/// One node's end of a [`MemoryHub`].
pub(crate) struct HubPeers {
    hub: MemoryHub,
    tag: NodeId,
    name: String,
    link: Arc<LinkState>,
    lanes: Mutex<Option<InboundLanes>>,
    metrics: Arc<PeerMetrics>,
}

impl Peers for HubPeers {
    fn node(&self) -> NodeId {
        self.tag
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn link_up_since(&self) -> Option<tokio::time::Instant> {
        self.link.since()
    }

    fn send(&self, to: NodeId, message: Bytes) {
        let len = message.len();
        let sent = self
            .hub
            .state()
            .route(self.tag, to, Held::Control(Inbound::Control(message)));
        self.metrics.control_queued(sent, len);
    }

    fn send_datagram(&self, to: NodeId, message: Bytes) {
        let len = message.len();
        let sent = self
            .hub
            .state()
            .route(self.tag, to, Held::Datagram(message));
        self.metrics.datagram_queued(sent, len);
    }

    fn announce(&self, message: Bytes) {
        let mut state = self.hub.state();
        // To itself too, as NATS echoes a subscriber's own publications:
        // a node that stops hearing itself knows its link is not carrying.
        for to in state.others(self.tag).into_iter().chain([self.tag]) {
            let announce = Held::Control(Inbound::Announce(message.clone()));
            state.route(self.tag, to, announce);
        }
    }

    fn start(&self) -> Option<InboundLanes> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn farewell(&self, message: Bytes) -> PeersFuture<'_> {
        self.announce(message);
        Box::pin(async {})
    }

    fn stop(&self) {
        self.hub.state().nodes.remove(&self.tag);
    }

    fn metrics(&self) -> &Arc<PeerMetrics> {
        &self.metrics
    }
}
