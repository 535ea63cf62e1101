//! The NATS adapter: nodes on separate machines (docs/CLUSTER.md). Each
//! node subscribes to `pl.<tag>.ctl` (control, in order), `pl.<tag>.dg`
//! (party data) and `pl.nodes` (heartbeats); publishing goes through two
//! bounded queues so that nothing on a session's path waits for NATS.

use super::{Inbound, InboundLanes, LinkState, NodeId, PeerMetrics, Peers, PeersFuture};
use crate::server::config::ClusterConfig;
use async_nats::Subject;
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("--node must be 1 to 64 letters, digits, '-', '_' or '.', got {0:?}")]
    BadNodeName(String),
    #[error("could not reach NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("NATS subscription failed: {0}")]
    Subscribe(String),
    #[error(
        "node name {name:?} (tag {tag:08x}) is already used by a live node ({other}); \
         give each node its own --node"
    )]
    TagTaken {
        name: String,
        tag: u32,
        other: String,
    },
}

fn control_subject(tag: NodeId) -> Subject {
    Subject::from(format!("pl.{tag:08x}.ctl"))
}

fn datagram_subject(tag: NodeId) -> Subject {
    Subject::from(format!("pl.{tag:08x}.dg"))
}

fn ping_subject(tag: NodeId) -> Subject {
    Subject::from(format!("pl.{tag:08x}.ping"))
}

const NODES_SUBJECT: &str = "pl.nodes";
/// How long a stopping node tries to get its goodbye out.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);
/// Control messages received and not yet handled: NATS's own subscriber
/// buffers beyond it.
const INBOUND_CONTROL: usize = 4096;
const INBOUND_DATAGRAMS: usize = 4096;

struct Outgoing {
    subject: Subject,
    payload: Bytes,
}

/// Subscriptions made when the node joins, consumed by `start`.
struct Subscriptions {
    control: async_nats::Subscriber,
    datagrams: async_nats::Subscriber,
    nodes: async_nats::Subscriber,
    ping: async_nats::Subscriber,
    control_out: mpsc::Receiver<Outgoing>,
    datagrams_out: mpsc::Receiver<Outgoing>,
}

/// A node's link to the others over NATS.
pub(crate) struct NatsPeers {
    tag: NodeId,
    name: String,
    client: async_nats::Client,
    control: mpsc::Sender<Outgoing>,
    datagrams: mpsc::Sender<Outgoing>,
    metrics: Arc<PeerMetrics>,
    link: Arc<LinkState>,
    subscriptions: Mutex<Option<Subscriptions>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl NatsPeers {
    /// Connects to NATS, checks that no live node holds this node's tag,
    /// and subscribes; `start` then serves the subscriptions.
    pub(crate) async fn join(config: &ClusterConfig) -> Result<NatsPeers, ClusterError> {
        if !super::valid_node_name(&config.node) {
            return Err(ClusterError::BadNodeName(config.node.clone()));
        }
        let tag = super::node_tag(&config.node);
        let link = Arc::new(LinkState::default());
        let events = link.clone();
        let node_name = config.node.clone();
        let client = async_nats::ConnectOptions::new()
            .name(format!("partyline {}", config.node))
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            // Back quickly after a NATS restart: remote commands fail
            // while the link is down.
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((attempts as u64 * 100).min(2_000))
            })
            .event_callback(move |event| {
                let events = events.clone();
                let node = node_name.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!(%node, "cluster link (NATS) up");
                            events.set(true);
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!(%node, "cluster link (NATS) down: remote parties unavailable until it is back");
                            events.set(false);
                        }
                        other => tracing::info!(%node, event = %other, "cluster link"),
                    }
                }
            })
            .connect(config.url.as_str())
            .await
            .map_err(|e| ClusterError::Connect {
                url: config.url.clone(),
                reason: e.to_string(),
            })?;
        link.set(true);
        let request = client.request(ping_subject(tag), Bytes::new());
        // No responders, or nobody answering in time: the tag is free.
        if let Ok(Ok(answer)) = tokio::time::timeout(Duration::from_millis(500), request).await {
            return Err(ClusterError::TagTaken {
                name: config.node.clone(),
                tag,
                other: String::from_utf8_lossy(&answer.payload).into_owned(),
            });
        }
        let subscribe = |subject: Subject| {
            let client = client.clone();
            async move {
                client
                    .subscribe(subject)
                    .await
                    .map_err(|e| ClusterError::Subscribe(e.to_string()))
            }
        };
        let control = subscribe(control_subject(tag)).await?;
        let datagrams = subscribe(datagram_subject(tag)).await?;
        let nodes = subscribe(Subject::from(NODES_SUBJECT)).await?;
        let ping = subscribe(ping_subject(tag)).await?;
        let (control_tx, control_out) = mpsc::channel(config.control_queue.max(1));
        let (datagrams_tx, datagrams_out) = mpsc::channel(config.datagram_queue.max(1));
        tracing::info!(node = %config.node, tag = %format_args!("{tag:08x}"), url = %config.url, "joined the cluster");
        Ok(NatsPeers {
            tag,
            name: config.node.clone(),
            client,
            control: control_tx,
            datagrams: datagrams_tx,
            metrics: Arc::default(),
            link,
            subscriptions: Mutex::new(Some(Subscriptions {
                control,
                datagrams,
                nodes,
                ping,
                control_out,
                datagrams_out,
            })),
            tasks: Mutex::new(Vec::new()),
        })
    }

    fn queue(&self, lane: &mpsc::Sender<Outgoing>, subject: Subject, payload: Bytes) -> bool {
        lane.try_send(Outgoing { subject, payload }).is_ok()
    }
}

impl Peers for NatsPeers {
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
        let sent = self.queue(&self.control, control_subject(to), message);
        self.metrics.control_queued(sent, len);
    }

    fn send_datagram(&self, to: NodeId, message: Bytes) {
        let len = message.len();
        let sent = self.queue(&self.datagrams, datagram_subject(to), message);
        self.metrics.datagram_queued(sent, len);
    }

    fn announce(&self, message: Bytes) {
        // Heartbeats go straight out: they are few, and a full control
        // queue must not silence a node into being judged lost.
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.publish(NODES_SUBJECT, message).await;
        });
    }

    fn start(&self) -> Option<InboundLanes> {
        let Subscriptions {
            mut control,
            mut datagrams,
            mut nodes,
            mut ping,
            control_out,
            datagrams_out,
        } = self
            .subscriptions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        let mut tasks = Vec::new();
        for mut queue in [control_out, datagrams_out] {
            let client = self.client.clone();
            tasks.push(tokio::spawn(async move {
                while let Some(out) = queue.recv().await {
                    if let Err(error) = client.publish(out.subject, out.payload).await {
                        tracing::debug!(%error, "cluster publish failed");
                    }
                }
            }));
        }
        let (control_tx, control_rx) = mpsc::channel(INBOUND_CONTROL);
        let (datagrams_tx, datagrams_rx) = mpsc::channel(INBOUND_DATAGRAMS);
        // Control and heartbeats share one lane, each in NATS's order.
        let (metrics, to_control) = (self.metrics.clone(), control_tx.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(message) = control.next().await {
                metrics.received(false, message.payload.len());
                if to_control
                    .send(Inbound::Control(message.payload))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }));
        tasks.push(tokio::spawn(async move {
            while let Some(message) = nodes.next().await {
                if control_tx
                    .send(Inbound::Announce(message.payload))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }));
        let metrics = self.metrics.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(message) = datagrams.next().await {
                metrics.received(true, message.payload.len());
                if datagrams_tx.send(message.payload).await.is_err() {
                    break;
                }
            }
        }));
        let (client, name) = (self.client.clone(), self.name.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(message) = ping.next().await {
                if let Some(reply) = message.reply {
                    let _ = client.publish(reply, Bytes::from(name.clone())).await;
                }
            }
        }));
        *self.tasks.lock().unwrap_or_else(|e| e.into_inner()) = tasks;
        Some(InboundLanes {
            control: control_rx,
            datagrams: datagrams_rx,
        })
    }

    fn farewell(&self, message: Bytes) -> PeersFuture<'_> {
        Box::pin(async move {
            // With NATS down the goodbye cannot go out (a flush would wait
            // for the link forever): the others judge this node lost by
            // its silence instead.
            let goodbye = async {
                let _ = self.client.publish(NODES_SUBJECT, message).await;
                let _ = self.client.flush().await;
            };
            if tokio::time::timeout(FLUSH_TIMEOUT, goodbye).await.is_err() {
                tracing::warn!("could not tell the cluster this node leaves (NATS unreachable); the other nodes will notice its silence");
            }
        })
    }

    fn stop(&self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }

    fn metrics(&self) -> &Arc<PeerMetrics> {
        &self.metrics
    }
}
