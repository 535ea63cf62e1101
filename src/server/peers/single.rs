//! A server alone: no other node, so nothing is ever sent and every party
//! is homed here. The default.

use super::{InboundLanes, NodeId, PeerMetrics, Peers, PeersFuture};
use bytes::Bytes;
use std::sync::Arc;

/// The peers of a server with none.
#[derive(Default)]
pub(crate) struct Alone {
    metrics: Arc<PeerMetrics>,
}

impl Peers for Alone {
    fn node(&self) -> NodeId {
        0
    }

    fn name(&self) -> &str {
        "alone"
    }

    fn is_alone(&self) -> bool {
        true
    }

    fn link_up_since(&self) -> Option<tokio::time::Instant> {
        None
    }

    fn send(&self, _to: NodeId, _message: Bytes) {}

    fn send_datagram(&self, _to: NodeId, _message: Bytes) {}

    fn announce(&self, _message: Bytes) {}

    fn start(&self) -> Option<InboundLanes> {
        None
    }

    fn farewell(&self, _message: Bytes) -> PeersFuture<'_> {
        Box::pin(async {})
    }

    fn metrics(&self) -> &Arc<PeerMetrics> {
        &self.metrics
    }
}
