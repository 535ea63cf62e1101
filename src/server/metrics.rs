//! Counters for operators, served as Prometheus text on `--metrics ADDR`.
//! Relaxed atomics: a counter costs one uncontended add on the hot path.

use super::state::Shared;
use crate::protocol::ErrorCode;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::TcpListener;

/// A Prometheus histogram with fixed bounds: one scan of a dozen bounds
/// and two relaxed adds per observation.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then +Inf.
    buckets: Box<[AtomicU64]>,
    /// The sum, in millionths of the unit (integers add atomically).
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, value: f64) {
        let index = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(
            out,
            "# HELP partyline_{name} {help}\n# TYPE partyline_{name} histogram"
        );
        let mut cumulative = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            match self.bounds.get(index) {
                Some(bound) => {
                    let _ = writeln!(
                        out,
                        "partyline_{name}_bucket{{le=\"{bound}\"}} {cumulative}"
                    );
                }
                None => {
                    let _ = writeln!(out, "partyline_{name}_bucket{{le=\"+Inf\"}} {cumulative}");
                }
            }
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "partyline_{name}_sum {sum}\npartyline_{name}_count {cumulative}"
        );
    }
}

/// Seconds a command takes to handle, from decoded to answered and its
/// events queued.
const COMMAND_SECONDS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.05,
];
/// Recipients of one party datagram.
const FAN_OUT: &[f64] = &[1.0, 2.0, 3.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Hello refusals by cause: the error code they were refused with.
const HELLO_REFUSALS: &[(ErrorCode, &str)] = &[
    (ErrorCode::Unauthenticated, "unauthenticated"),
    (ErrorCode::VersionMismatch, "version_mismatch"),
    (ErrorCode::ResumeRefused, "resume_refused"),
    (ErrorCode::MalformedFrame, "malformed_hello"),
    (ErrorCode::ProtocolViolation, "no_hello"),
];

#[derive(Debug)]
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
    /// Hello refusals, by `HELLO_REFUSALS` cause; the last is any other.
    refused_hello: [AtomicU64; HELLO_REFUSALS.len() + 1],
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
    pub(crate) command_seconds: Histogram,
    pub(crate) fan_out: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sessions_started: Default::default(),
            sessions_resumed: Default::default(),
            commands: Default::default(),
            datagrams_in: Default::default(),
            datagrams_out: Default::default(),
            reliable_data_in: Default::default(),
            dropped_rate_limited: Default::default(),
            dropped_oversize: Default::default(),
            dropped_not_member: Default::default(),
            slow_consumers: Default::default(),
            refused_hello: Default::default(),
            refused_server_full: Default::default(),
            refused_handshake_cap: Default::default(),
            retries_sent: Default::default(),
            rate_limit_disconnects: Default::default(),
            coalesce_dropped: Default::default(),
            coalesce_batches: Default::default(),
            datagrams_handed: Default::default(),
            transport: Default::default(),
            command_seconds: Histogram::new(COMMAND_SECONDS),
            fan_out: Histogram::new(FAN_OUT),
        }
    }
}

impl Metrics {
    /// Counts a refused Hello under the cause its error code names.
    pub(crate) fn refused_hello(&self, code: ErrorCode) {
        let index = HELLO_REFUSALS
            .iter()
            .position(|(known, _)| *known == code)
            .unwrap_or(HELLO_REFUSALS.len());
        if let Some(counter) = self.refused_hello.get(index) {
            count(counter);
        }
    }
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

    /// The live connections in slice `index` of `count` (a connection's
    /// slice is fixed for its life), cloned into `into`.
    pub(crate) fn slice_into(&self, index: u64, count: u64, into: &mut Vec<quinn::Connection>) {
        let state = self.lock();
        into.extend(
            state
                .live
                .iter()
                .filter(|(id, _)| slice_of(**id, count) == index)
                .map(|(_, connection)| connection.clone()),
        );
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

/// Spreads stable ids (addresses, so multiples of the allocator's
/// alignment) evenly over `count` slices.
fn slice_of(id: usize, count: u64) -> u64 {
    let mixed = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (mixed >> 32) % count.max(1)
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
        "matchmaking_tickets",
        "gauge",
        "Matchmaking tickets waiting.",
        &[("", shared.matchmaking.waiting() as u64)],
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
            u64::from(matches!(shared.config.auth, super::config::AuthMode::Dev)),
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
    if let Some(hooks) = &shared.hooks {
        metric(
            "hook_failures_total",
            "counter",
            "Hook calls that panicked, ran out of time or answered with another kind of command.",
            &[("", get(&hooks.failures))],
        );
        metric(
            "hook_after_events_dropped_total",
            "counter",
            "After-hook events dropped because the after-hook queue was full.",
            &[("", get(&hooks.after_dropped))],
        );
    }
    let route = shared.route();
    if route.clustered() {
        let c = route.peers().metrics();
        let peers = route.peer_names().len() as u64;
        for (name, kind, help, value) in [
            ("cluster_link_up", "gauge", "1 while this node's NATS link is up.", u64::from(route.link_is_up())),
            ("cluster_peers", "gauge", "Other nodes this node hears now.", peers),
            ("cluster_remote_members", "gauge", "Members on other nodes of parties homed here.", route.proxy_count() as u64),
            ("cluster_control_messages_out_total", "counter", "Control messages (commands, replies, event batches, membership) queued for other nodes.", get(&c.control_out)),
            ("cluster_control_messages_in_total", "counter", "Control messages received from other nodes.", get(&c.control_in)),
            ("cluster_datagram_messages_out_total", "counter", "Party data messages queued for other nodes (one per datagram per node).", get(&c.datagram_messages_out)),
            ("cluster_datagram_messages_in_total", "counter", "Party data messages received from other nodes.", get(&c.datagram_messages_in)),
            ("cluster_bytes_out_total", "counter", "Bytes of cluster messages queued for NATS.", get(&c.bytes_out)),
            ("cluster_bytes_in_total", "counter", "Bytes of cluster messages received from NATS.", get(&c.bytes_in)),
            ("cluster_control_dropped_total", "counter", "Control messages dropped because the publish queue was full (NATS down or far behind).", get(&c.dropped_control)),
            ("cluster_datagrams_dropped_total", "counter", "Party data messages dropped because the publish queue was full.", get(&c.dropped_datagrams)),
            ("cluster_commands_forwarded_total", "counter", "Commands forwarded to the party's home node.", get(&c.forwarded)),
            ("cluster_unavailable_total", "counter", "Forwarded commands answered Unavailable (link down, or no answer in time).", get(&c.unavailable)),
            ("cluster_nodes_lost_total", "counter", "Nodes judged lost (silent, restarted, or left).", get(&c.nodes_lost)),
            ("cluster_undecodable_total", "counter", "Cluster messages dropped undecoded (another build?).", get(&c.undecodable)),
        ] {
            metric(name, kind, help, &[("", value)]);
        }
    }
    let mut refusals: Vec<(String, u64)> = HELLO_REFUSALS
        .iter()
        .map(|(_, cause)| *cause)
        .chain(["other_hello"])
        .zip(m.refused_hello.iter())
        .map(|(cause, counter)| (format!("{{cause=\"{cause}\"}}"), get(counter)))
        .collect();
    refusals.extend([
        (
            "{cause=\"server_full\"}".to_string(),
            get(&m.refused_server_full),
        ),
        (
            "{cause=\"handshake_cap\"}".to_string(),
            get(&m.refused_handshake_cap),
        ),
        ("{cause=\"retry\"}".to_string(), get(&m.retries_sent)),
    ]);
    let refusals: Vec<(&str, u64)> = refusals.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "refusals_total",
        "counter",
        "Connections refused or challenged at admission, by cause: a Hello refused (unauthenticated, version_mismatch, resume_refused, malformed_hello, no_hello, other_hello), the server full, too many handshakes, or a Retry asked for.",
        &refusals,
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
    m.command_seconds.render(
        &mut out,
        "command_seconds",
        "Time to handle one control command: decoded to answered, its events queued.",
    );
    m.fan_out.render(
        &mut out,
        "datagram_fan_out",
        "Recipients of one party datagram.",
    );
    render_process(&mut out);
    out
}

/// The usual process_* metrics, read from /proc/self (Linux only).
#[cfg(target_os = "linux")]
fn render_process(out: &mut String) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    let mut gauge = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP process_{name} {help}\n# TYPE process_{name} {kind}\nprocess_{name} {value}"
        );
    };
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second() as f64;
        let cpu = (stat.utime + stat.stime) as f64 / ticks.max(1.0);
        gauge(
            "cpu_seconds_total",
            "counter",
            "User and system CPU time.",
            cpu,
        );
        let rss = stat.rss as f64 * procfs::page_size() as f64;
        gauge("resident_memory_bytes", "gauge", "Resident memory.", rss);
        gauge("threads", "gauge", "OS threads.", stat.num_threads as f64);
        if let Ok(boot) = procfs::boot_time_secs() {
            let start = boot as f64 + stat.starttime as f64 / ticks.max(1.0);
            gauge(
                "start_time_seconds",
                "gauge",
                "Start time, Unix seconds.",
                start,
            );
        }
    }
    if let Ok(fds) = me.fd_count() {
        gauge("open_fds", "gauge", "Open file descriptors.", fds as f64);
    }
}

#[cfg(not(target_os = "linux"))]
fn render_process(_out: &mut String) {}

/// The `/metrics` route alone: served by [`serve`], or on the admin API's
/// listener when both share an address (without the admin token).
pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    use axum::http::header;
    use axum::routing::get;
    axum::Router::new().route(
        "/metrics",
        get(move || {
            let shared = shared.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                    render(&shared),
                )
            }
        }),
    )
}

/// Serves `GET /metrics` until the server stops; any other path is 404.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    use axum::http::StatusCode;
    let app = router(shared).fallback(|| async {
        (
            StatusCode::NOT_FOUND,
            "not found: the metrics are at /metrics\n",
        )
    });
    // axum's accept loop backs off by itself when accepting fails (out of
    // file descriptors, say) instead of spinning.
    if let Err(error) = axum::serve(listener, app).await {
        tracing::error!(%error, "metrics endpoint stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::slice_of;

    /// The batched keep-alives reach every connection: each id falls in
    /// one slice, and ids spaced as allocator addresses fill every slice
    /// about evenly.
    #[test]
    fn connection_ids_spread_over_every_keep_alive_slice() {
        let slices = 20;
        let mut counts = vec![0usize; slices as usize];
        for n in 0..10_000usize {
            let id = 0x5555_0000_0000 + n * 64;
            let slice = slice_of(id, slices);
            assert!(slice < slices);
            counts[slice as usize] += 1;
        }
        let (least, most) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        assert!(least > 350 && most < 650, "uneven slices: {counts:?}");
    }
}
