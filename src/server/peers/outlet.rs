//! The sending half of the seam, as proxies and the routing layer hold
//! it: every control message leaves behind its [`Header`], stamped with
//! the incarnations this node talks to now ([`Incarnations`]).
//!
//! A message for a node this incarnation has not heard yet (a new
//! matcher pooling a ticket whose home it has not heard, a node just back)
//! waits, a short while, until that node is heard, and then leaves first;
//! one for a node whose incarnation is over here (judged lost, restarted,
//! left) is dropped and counted stale: it was meant for what ended.

use super::wire::{encode, ControlMessage, DatagramMessage, Header};
use super::{NodeId, PeerMetrics, Peers};
use bytes::Bytes;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// Messages that wait for one node not heard yet, at most.
const WAITING_PER_NODE: usize = 4096;

#[derive(Default)]
struct Talk {
    /// The incarnation of each node this one talks to.
    known: HashMap<NodeId, u64>,
    /// Nodes whose incarnation is over here and not heard again since.
    gone: HashSet<NodeId>,
    /// Messages (encoded, without their header) for nodes not heard yet.
    waiting: HashMap<NodeId, VecDeque<(Instant, Bytes)>>,
}

/// Which incarnation of itself this node is, and which of each other node
/// it talks to: what stamps every control message sent, and what every one
/// that arrives must match. The routing layer keeps it in step with its
/// node table.
pub(crate) struct Incarnations {
    me: NodeId,
    mine: AtomicU64,
    talk: Mutex<Talk>,
}

impl Incarnations {
    fn new(me: NodeId) -> Self {
        Incarnations {
            me,
            mine: AtomicU64::new(Self::fresh()),
            talk: Mutex::default(),
        }
    }

    /// A new random incarnation (never 0, which no node is).
    fn fresh() -> u64 {
        uuid::Uuid::new_v4().as_u64_pair().0.max(1)
    }

    fn talk(&self) -> MutexGuard<'_, Talk> {
        self.talk.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn mine(&self) -> u64 {
        self.mine.load(Ordering::Acquire)
    }

    pub(crate) fn of(&self, node: NodeId) -> Option<u64> {
        self.talk().known.get(&node).copied()
    }

    /// Whether a message with `header` is of the incarnations this node
    /// talks to now.
    pub(crate) fn current(&self, header: &Header) -> bool {
        header.to_incarnation == self.mine()
            && self.of(header.from) == Some(header.from_incarnation)
    }
}

/// What proxies hold to reach their member's node: the sending half of
/// the seam, with the messages encoded here once.
pub(crate) struct Outlet {
    peers: Arc<dyn Peers>,
    pub(crate) incarnations: Incarnations,
    /// How long a message waits for a node not heard yet.
    wait_for: Duration,
}

impl Outlet {
    pub(crate) fn new(peers: Arc<dyn Peers>, wait_for: Duration) -> Self {
        let incarnations = Incarnations::new(peers.node());
        Outlet {
            peers,
            incarnations,
            wait_for,
        }
    }

    /// Queues a control message for `node`; never blocks.
    pub(crate) fn control(&self, node: NodeId, message: &ControlMessage) {
        if let Some(payload) = encode(message) {
            self.control_encoded(node, payload);
        }
    }

    /// Queues an already encoded control message for `node`, behind its
    /// header: at once to a node this one talks to, later to one not
    /// heard yet, never to one whose incarnation is over.
    pub(crate) fn control_encoded(&self, node: NodeId, payload: Bytes) {
        let mut talk = self.incarnations.talk();
        if let Some(&incarnation) = talk.known.get(&node) {
            // Sent under the lock: what waited for `node` left first.
            return self.stamp_and_send(node, incarnation, &payload);
        }
        if talk.gone.contains(&node) || node == self.incarnations.me {
            drop(talk);
            return PeerMetrics::add(&self.peers.metrics().stale, 1);
        }
        let now = Instant::now();
        let waiting = talk.waiting.entry(node).or_default();
        while waiting
            .front()
            .is_some_and(|(since, _)| now.duration_since(*since) > self.wait_for)
            || waiting.len() >= WAITING_PER_NODE
        {
            waiting.pop_front();
            PeerMetrics::add(&self.peers.metrics().stale, 1);
        }
        waiting.push_back((now, payload));
    }

    fn stamp_and_send(&self, node: NodeId, to_incarnation: u64, payload: &[u8]) {
        let header = Header {
            from: self.incarnations.me,
            from_incarnation: self.incarnations.mine(),
            to_incarnation,
        };
        let Ok(mut stamped) = postcard::to_allocvec(&header) else {
            return;
        };
        stamped.extend_from_slice(payload);
        self.peers.send(node, Bytes::from(stamped));
    }

    /// This node talks to incarnation `incarnation` of `node` from now on:
    /// what waited for it leaves first, if it did not wait too long.
    pub(crate) fn talk_to(&self, node: NodeId, incarnation: u64) {
        let mut talk = self.incarnations.talk();
        talk.known.insert(node, incarnation);
        talk.gone.remove(&node);
        let now = Instant::now();
        for (since, payload) in talk.waiting.remove(&node).unwrap_or_default() {
            if now.duration_since(since) <= self.wait_for {
                self.stamp_and_send(node, incarnation, &payload);
            }
        }
    }

    /// The incarnation of `node` this node talked to is over: nothing more
    /// goes to `node` until it is heard again.
    pub(crate) fn forget(&self, node: NodeId) {
        let mut talk = self.incarnations.talk();
        talk.known.remove(&node);
        talk.waiting.remove(&node);
        talk.gone.insert(node);
    }

    /// This node becomes a new incarnation, talking to nobody yet (and
    /// holding nothing against any node: its ties were the old one's).
    /// What was meant for the old one is dropped on arrival from now on.
    pub(crate) fn renew(&self) -> u64 {
        let mut talk = self.incarnations.talk();
        let fresh = Incarnations::fresh();
        self.incarnations.mine.store(fresh, Ordering::Release);
        *talk = Talk::default();
        fresh
    }

    /// Drops what waited too long for a node never heard.
    pub(crate) fn tidy(&self) {
        let now = Instant::now();
        let mut dropped = 0;
        self.incarnations.talk().waiting.retain(|_, waiting| {
            let before = waiting.len();
            waiting.retain(|(since, _)| now.duration_since(*since) <= self.wait_for);
            dropped += before - waiting.len();
            !waiting.is_empty()
        });
        PeerMetrics::add(&self.peers.metrics().stale, dropped as u64);
    }

    /// Queues party data for `node`, or drops it (counted).
    pub(crate) fn datagram(&self, node: NodeId, message: &DatagramMessage) {
        if let Some(payload) = encode(message) {
            self.peers.send_datagram(node, payload);
        }
    }
}
