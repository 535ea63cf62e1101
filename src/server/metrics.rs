//! Counters for operators, served as Prometheus text on `--metrics ADDR`.
//! Relaxed atomics: a counter costs one uncontended add on the hot path.

use super::Shared;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub(crate) sessions_started: AtomicU64,
    pub(crate) sessions_resumed: AtomicU64,
    pub(crate) commands: AtomicU64,
    pub(crate) datagrams_in: AtomicU64,
    pub(crate) datagrams_out: AtomicU64,
    pub(crate) reliable_data_in: AtomicU64,
    /// Commands refused and datagrams dropped by the rate limits.
    pub(crate) dropped_rate_limited: AtomicU64,
    pub(crate) dropped_oversize: AtomicU64,
    pub(crate) dropped_not_member: AtomicU64,
    pub(crate) slow_consumers: AtomicU64,
    pub(crate) refused_hello: AtomicU64,
    pub(crate) refused_server_full: AtomicU64,
    pub(crate) refused_handshake_cap: AtomicU64,
    pub(crate) retries_sent: AtomicU64,
    pub(crate) rate_limit_disconnects: AtomicU64,
    /// Outgoing datagrams dropped, oldest first, from a recipient's full
    /// coalescing buffer.
    pub(crate) coalesce_dropped: AtomicU64,
    /// Per-recipient batches the coalescing flusher handed to quinn.
    pub(crate) coalesce_batches: AtomicU64,
    /// Party datagrams quinn accepted for sending (after coalescing, if on).
    pub(crate) datagrams_handed: AtomicU64,
    /// QUIC's own counters, summed over every admitted connection.
    pub(crate) transport: Arc<TransportRegistry>,
}

/// QUIC counters of one connection or of many, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TransportTotals {
    pub(crate) udp_datagrams_sent: u64,
    pub(crate) udp_datagrams_received: u64,
    pub(crate) packets_sent: u64,
    pub(crate) packets_lost: u64,
    pub(crate) bytes_lost: u64,
    pub(crate) congestion_events: u64,
    /// DATAGRAM frames quinn put on the wire: fewer than the datagrams
    /// handed to it when its send buffer overflowed and it dropped some.
    pub(crate) datagram_frames_sent: u64,
}

impl TransportTotals {
    fn add(&mut self, stats: &quinn::ConnectionStats) {
        self.udp_datagrams_sent += stats.udp_tx.datagrams;
        self.udp_datagrams_received += stats.udp_rx.datagrams;
        self.packets_sent += stats.path.sent_packets;
        self.packets_lost += stats.path.lost_packets;
        self.bytes_lost += stats.path.lost_bytes;
        self.congestion_events += stats.path.congestion_events;
        self.datagram_frames_sent += stats.frame_tx.datagram;
    }
}

/// Every admitted connection while it lives, and the sum of those that
/// ended, so the transport counters only ever grow. A connection's stats
/// are read only on a scrape, never on the data path.
#[derive(Debug, Default)]
pub(crate) struct TransportRegistry {
    inner: Mutex<TransportState>,
}

#[derive(Debug, Default)]
struct TransportState {
    live: HashMap<usize, quinn::Connection>,
    ended: TransportTotals,
}

impl TransportRegistry {
    /// Counts `connection` until the returned guard drops, then folds its
    /// final figures into the ended sum.
    pub(crate) fn track(self: &Arc<Self>, connection: &quinn::Connection) -> TrackedConnection {
        let id = connection.stable_id();
        self.lock().live.insert(id, connection.clone());
        TrackedConnection {
            registry: self.clone(),
            id,
        }
    }

    /// Connections carrying an admitted session right now.
    pub(crate) fn live(&self) -> usize {
        self.lock().live.len()
    }

    pub(crate) fn totals(&self) -> TransportTotals {
        let state = self.lock();
        let mut totals = state.ended;
        for connection in state.live.values() {
            totals.add(&connection.stats());
        }
        totals
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TransportState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct TrackedConnection {
    registry: Arc<TransportRegistry>,
    id: usize,
}

impl Drop for TrackedConnection {
    fn drop(&mut self) {
        let mut state = self.registry.lock();
        if let Some(connection) = state.live.remove(&self.id) {
            state.ended.add(&connection.stats());
        }
    }
}

pub(crate) fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The Prometheus text exposition of every counter and gauge.
pub(crate) fn render(shared: &Shared) -> String {
    let m = &shared.metrics;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, labels: &[(&str, u64)]| {
        let _ = writeln!(
            out,
            "# HELP partyline_{name} {help}\n# TYPE partyline_{name} {kind}"
        );
        for (label, value) in labels {
            let _ = writeln!(out, "partyline_{name}{label} {value}");
        }
    };
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    metric(
        "sessions",
        "gauge",
        "Sessions alive, connected or in their grace window.",
        &[("", shared.session_count() as u64)],
    );
    metric(
        "parties",
        "gauge",
        "Parties alive.",
        &[("", shared.table.len() as u64)],
    );
    metric(
        "parties_listed",
        "gauge",
        "Parties listed for search.",
        &[("", shared.table.listed() as u64)],
    );
    metric(
        "join_codes",
        "gauge",
        "Live join codes.",
        &[("", shared.table.join_codes() as u64)],
    );
    metric(
        "handshakes_in_progress",
        "gauge",
        "QUIC handshakes in progress.",
        &[("", shared.handshakes.load(Ordering::Relaxed) as u64)],
    );
    metric(
        "dev_identities_allowed",
        "gauge",
        "1 when clients may name themselves (dev identities, no token secret): nothing proves who they are.",
        &[(
            "",
            u64::from(matches!(shared.config.auth, super::AuthMode::Dev)),
        )],
    );
    metric(
        "sessions_total",
        "counter",
        "Sessions started, and taken back by resume.",
        &[
            ("{kind=\"new\"}", get(&m.sessions_started)),
            ("{kind=\"resumed\"}", get(&m.sessions_resumed)),
        ],
    );
    metric(
        "commands_total",
        "counter",
        "Control commands received.",
        &[("", get(&m.commands))],
    );
    metric(
        "data_total",
        "counter",
        "Party data messages in and out.",
        &[
            ("{direction=\"in\",path=\"datagram\"}", get(&m.datagrams_in)),
            (
                "{direction=\"out\",path=\"datagram\"}",
                get(&m.datagrams_out),
            ),
            (
                "{direction=\"in\",path=\"reliable\"}",
                get(&m.reliable_data_in),
            ),
        ],
    );
    metric(
        "dropped_total",
        "counter",
        "Messages not forwarded or refused, by cause.",
        &[
            ("{cause=\"rate_limit\"}", get(&m.dropped_rate_limited)),
            ("{cause=\"oversize\"}", get(&m.dropped_oversize)),
            ("{cause=\"not_member\"}", get(&m.dropped_not_member)),
        ],
    );
    metric(
        "coalesce_dropped_total",
        "counter",
        "Outgoing datagrams dropped, oldest first, from a recipient's full coalescing buffer (--coalesce-us).",
        &[("", get(&m.coalesce_dropped))],
    );
    metric(
        "coalesce_batches_total",
        "counter",
        "Per-recipient datagram batches sent by the coalescing flusher; datagrams out per batch is the coalescing achieved.",
        &[("", get(&m.coalesce_batches))],
    );
    metric(
        "disconnects_total",
        "counter",
        "Sessions cut off by the server, by cause.",
        &[
            ("{cause=\"slow_consumer\"}", get(&m.slow_consumers)),
            ("{cause=\"rate_limit\"}", get(&m.rate_limit_disconnects)),
        ],
    );
    metric(
        "refusals_total",
        "counter",
        "Connections refused or challenged at admission, by cause.",
        &[
            ("{cause=\"hello\"}", get(&m.refused_hello)),
            ("{cause=\"server_full\"}", get(&m.refused_server_full)),
            ("{cause=\"handshake_cap\"}", get(&m.refused_handshake_cap)),
            ("{cause=\"retry\"}", get(&m.retries_sent)),
        ],
    );
    let t = m.transport.totals();
    metric(
        "transport_connections",
        "gauge",
        "QUIC connections carrying an admitted session (sessions in their grace window have none).",
        &[("", m.transport.live() as u64)],
    );
    metric(
        "transport_udp_datagrams_total",
        "counter",
        "UDP datagrams of admitted QUIC connections, by direction.",
        &[
            ("{direction=\"out\"}", t.udp_datagrams_sent),
            ("{direction=\"in\"}", t.udp_datagrams_received),
        ],
    );
    metric(
        "transport_packets_sent_total",
        "counter",
        "QUIC packets sent to admitted connections.",
        &[("", t.packets_sent)],
    );
    metric(
        "transport_packets_lost_total",
        "counter",
        "QUIC packets sent to admitted connections and declared lost.",
        &[("", t.packets_lost)],
    );
    metric(
        "transport_bytes_lost_total",
        "counter",
        "Bytes of QUIC packets declared lost.",
        &[("", t.bytes_lost)],
    );
    metric(
        "transport_congestion_events_total",
        "counter",
        "Congestion events (the window cut) on admitted connections.",
        &[("", t.congestion_events)],
    );
    metric(
        "transport_datagrams_handed_total",
        "counter",
        "Party datagrams handed to quinn to send (after coalescing).",
        &[("", get(&m.datagrams_handed))],
    );
    metric(
        "transport_datagram_frames_sent_total",
        "counter",
        "DATAGRAM frames sent. Below transport_datagrams_handed_total by what waits in quinn's queue, and by what it dropped when that queue overflowed.",
        &[("", t.datagram_frames_sent)],
    );
    out
}

/// Serves `GET /metrics` (any path, in fact) until the server stops.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            // Read the request head (bounded); its content does not matter.
            let mut head = [0u8; 4096];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut head))
                .await;
            let body = render(&shared);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}
