//! The seam between this node and the other nodes of a cluster.
//!
//! Everything above this module addresses a party member as (node,
//! session) and reaches other nodes only through [`Peers`]: an ordered,
//! bounded lane of control messages to one node, a lossy lane of party
//! data to one node, and an announcement to every node (heartbeats). What
//! the messages mean (forwards, proxies, gathers, node loss) is the
//! routing layer's (the route module); how they travel is an adapter's:
//!
//! - [`single::Alone`]: no other node (the default; nothing is sent).
//! - [`hub::MemoryHub`]: several servers of one process, linked by
//!   channels, with faults on demand (tests, and workers of one process).
//! - [`nats::NatsPeers`]: nodes on separate machines, over NATS.

pub(crate) mod hub;
pub(crate) mod nats;
mod outlet;
pub(crate) mod single;
mod wire;

pub(crate) use outlet::Outlet;
pub(crate) use wire::{
    encode, Answer, ApiAnswer, ApiQuestion, Claimed, ControlMessage, DatagramMessage,
    DirectoryMessage, HandOverFacts, Header, Heartbeat, HookFacts, NodePresence, Page, Question,
    Refusal, RelayedEvent, SessionFacts, Shown,
};

use crate::protocol::PartyId;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A node of the cluster, by its tag: the first 4 bytes of SHA-256 of its
/// name. Every party id carries its home's tag in bytes 0-3.
pub(crate) type NodeId = u32;

/// The weight of node `tag` for user `user_id`: the user's owner is the
/// live node of highest weight (rendezvous hashing). FNV-1a over the id,
/// then mixed with the tag (splitmix64's finalizer): the same on every
/// node of one build, and cheap, as it is computed once per live node
/// for each operation on a user.
pub(crate) fn owner_weight(user_id: &str, tag: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in user_id.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut mixed = hash ^ (u64::from(tag).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

/// A node's tag: the first 4 bytes of SHA-256 of its name.
pub fn node_tag(name: &str) -> u32 {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let mut tag = [0u8; 4];
    tag.copy_from_slice(&digest.as_ref()[..4]);
    u32::from_be_bytes(tag)
}

/// The tag of the node that homes `party_id`.
pub fn home_of(party_id: PartyId) -> u32 {
    let bytes = party_id.0.as_bytes();
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// A fresh party id homed on the node with `tag`: random, with the tag in
/// bytes 0-3 (the UUID's version and variant bits are untouched).
pub fn party_id_on(tag: u32) -> PartyId {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[..4].copy_from_slice(&tag.to_be_bytes());
    PartyId(uuid::Uuid::from_bytes(bytes))
}

/// Node names: what a tag is made from, and what logs and metrics show.
pub(crate) fn valid_node_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// What arrives from other nodes, in the order each lane delivers it.
#[derive(Debug)]
pub(crate) enum Inbound {
    /// A control message (`ControlMessage`, encoded).
    Control(Bytes),
    /// A node's announcement (`Heartbeat`, encoded).
    Announce(Bytes),
}

/// The lanes an adapter hands to the routing layer once it runs.
pub(crate) struct InboundLanes {
    /// Control messages and announcements, in one order: a node's answers
    /// and what it passes on keep the order they were sent in.
    pub(crate) control: mpsc::Receiver<Inbound>,
    /// Party data, a lane of its own so a burst never delays an answer.
    pub(crate) datagrams: mpsc::Receiver<Bytes>,
}

/// A boxed future, so that [`Peers`] stays object-safe.
pub(crate) type PeersFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// How this node reaches the others. Implementations never block: a full
/// queue drops the message and counts it in [`PeerMetrics`].
pub(crate) trait Peers: Send + Sync + 'static {
    /// This node.
    fn node(&self) -> NodeId;
    /// This node's name (logs, heartbeats).
    fn name(&self) -> &str;
    /// True when no other node can exist (single-node): the routing layer
    /// then treats every party as local and starts no heartbeat.
    fn is_alone(&self) -> bool {
        false
    }
    /// Since when the link to the other nodes is up; `None` while down.
    fn link_up_since(&self) -> Option<Instant>;
    /// Queues a control message for `to`. Messages to one node arrive in
    /// the order they were queued, or not at all (queue full, link down).
    fn send(&self, to: NodeId, message: Bytes);
    /// Queues party data for `to`: dropped, never retried, when full.
    fn send_datagram(&self, to: NodeId, message: Bytes);
    /// Tells every node (heartbeats, a goodbye).
    fn announce(&self, message: Bytes);
    /// Starts the adapter's own tasks and hands over what arrives; `None`
    /// after the first call.
    fn start(&self) -> Option<InboundLanes>;
    /// Announces `message` (a stopping node's goodbye) and waits, bounded,
    /// until it has left.
    fn farewell(&self, message: Bytes) -> PeersFuture<'_>;
    /// Stops the adapter's tasks.
    fn stop(&self) {}
    /// What crossed, for `/metrics`.
    fn metrics(&self) -> &Arc<PeerMetrics>;
}

/// Counters of what crossed between nodes, for `/metrics`.
#[derive(Default)]
pub(crate) struct PeerMetrics {
    pub(crate) control_out: AtomicU64,
    pub(crate) control_in: AtomicU64,
    pub(crate) datagram_messages_out: AtomicU64,
    pub(crate) datagram_messages_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) dropped_control: AtomicU64,
    pub(crate) dropped_datagrams: AtomicU64,
    pub(crate) forwarded: AtomicU64,
    pub(crate) unavailable: AtomicU64,
    pub(crate) nodes_lost: AtomicU64,
    pub(crate) undecodable: AtomicU64,
    /// Control messages of (or for) an incarnation no longer current,
    /// dropped: late ones from a node judged lost, or to one.
    pub(crate) stale: AtomicU64,
    /// Times this node learned that the others judged it lost, and came
    /// back as a new incarnation.
    pub(crate) rejoins: AtomicU64,
}

impl PeerMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// A message queued (`sent`) or dropped on the control lane.
    pub(crate) fn control_queued(&self, sent: bool, len: usize) {
        if sent {
            Self::add(&self.control_out, 1);
            Self::add(&self.bytes_out, len as u64);
        } else {
            Self::add(&self.dropped_control, 1);
        }
    }

    /// A message queued (`sent`) or dropped on the data lane.
    pub(crate) fn datagram_queued(&self, sent: bool, len: usize) {
        if sent {
            Self::add(&self.datagram_messages_out, 1);
            Self::add(&self.bytes_out, len as u64);
        } else {
            Self::add(&self.dropped_datagrams, 1);
        }
    }

    /// A message received on the control or data lane.
    pub(crate) fn received(&self, datagram: bool, len: usize) {
        let counter = match datagram {
            true => &self.datagram_messages_in,
            false => &self.control_in,
        };
        Self::add(counter, 1);
        Self::add(&self.bytes_in, len as u64);
    }
}

/// Since when a link is up; `None` while it is down.
#[derive(Default)]
pub(crate) struct LinkState {
    since: Mutex<Option<Instant>>,
}

impl LinkState {
    pub(crate) fn set(&self, up: bool) {
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = up.then(Instant::now);
    }

    pub(crate) fn since(&self) -> Option<Instant> {
        *self.since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where a member lives, when that is not this node: its node, and the
/// way there. A session link without one is a session of this node.
#[derive(Clone)]
pub(crate) struct RemoteAt {
    pub(crate) node: NodeId,
    pub(crate) outlet: Arc<Outlet>,
}

impl std::fmt::Debug for RemoteAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteAt({:08x})", self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_party_id_names_its_home_and_stays_a_v4_uuid() {
        let tag = node_tag("node-a");
        for _ in 0..100 {
            let id = party_id_on(tag);
            assert_eq!(home_of(id), tag);
            assert_eq!(id.0.get_version_num(), 4);
            assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122);
        }
        assert_ne!(node_tag("node-a"), node_tag("node-b"));
    }

    #[test]
    fn node_names_are_checked() {
        assert!(valid_node_name("eu-west-1.node_7"));
        assert!(!valid_node_name(""));
        assert!(!valid_node_name("a b"));
        assert!(!valid_node_name("pl.>"));
        assert!(!valid_node_name(&"x".repeat(65)));
    }
}
