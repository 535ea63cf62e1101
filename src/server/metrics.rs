//! What operators watch, served on `--metrics ADDR` in the Prometheus text
//! format (0.0.4) by prometheus-client, the Prometheus project's Rust client.
//! The hot-path counters are its typed `Counter`s, held as handles with
//! their label values resolved at start: one relaxed atomic add each, no
//! label lookup.

use super::Shared;
use crate::protocol::ErrorCode;
use prometheus_client::encoding::{prometheus_text, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::TcpListener;

/// A Prometheus histogram with fixed bounds: one scan of a dozen bounds
/// and two relaxed adds per observation. Not prometheus-client's own, which
/// takes a mutex per observation: too dear once per datagram.
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

    /// Its figures now, for the encoder.
    fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(index, bucket)| {
                let bound = self.bounds.get(index).copied().unwrap_or(f64::INFINITY);
                (bound, bucket.load(Ordering::Relaxed))
            })
            .collect();
        HistogramSnapshot {
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            // The count is the buckets' sum, so it always equals +Inf's.
            count: buckets.iter().map(|(_, count)| count).sum(),
            buckets,
        }
    }
}

/// A [`Histogram`] read at one scrape, in the shape the encoder takes:
/// each bucket's own count (it makes them cumulative), +Inf last.
#[derive(Debug)]
struct HistogramSnapshot {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for HistogramSnapshot {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Seconds a command takes to handle, from decoded to answered and its
/// events queued.
const COMMAND_SECONDS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.01, 0.05,
];
/// Recipients of one party datagram.
const FAN_OUT: &[f64] = &[1.0, 2.0, 3.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Hello refusals by cause: the error code they were refused with. Any
/// other code counts as [`OTHER_HELLO`].
const HELLO_REFUSALS: [(ErrorCode, &str); 5] = [
    (ErrorCode::Unauthenticated, "unauthenticated"),
    (ErrorCode::VersionMismatch, "version_mismatch"),
    (ErrorCode::ResumeRefused, "resume_refused"),
    (ErrorCode::MalformedFrame, "malformed_hello"),
    (ErrorCode::ProtocolViolation, "no_hello"),
];
const OTHER_HELLO: &str = "other_hello";

/// Counters told apart by the values of `N` labels (`cause="..."`).
type Labeled<const N: usize> = Family<[(&'static str, &'static str); N], Counter>;

/// The counter of `family` for `labels`, created now: the handle the hot
/// path adds to, with no lookup.
fn child<const N: usize>(
    family: &Labeled<N>,
    labels: [(&'static str, &'static str); N],
) -> Counter {
    family.get_or_create_owned(&labels)
}

/// The server's own counters and histograms. The families are what the
/// exposition lists; the fields beside them are their children.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// `partyline_sessions_total{kind}`.
    sessions: Labeled<1>,
    pub(crate) sessions_started: Counter,
    pub(crate) sessions_resumed: Counter,
    pub(crate) commands: Counter,
    /// `partyline_data_total{direction,path}`.
    data: Labeled<2>,
    pub(crate) datagrams_in: Counter,
    pub(crate) datagrams_out: Counter,
    pub(crate) reliable_data_in: Counter,
    /// `partyline_dropped_total{cause}`.
    dropped: Labeled<1>,
    /// Commands refused and datagrams dropped by the rate limits.
    pub(crate) dropped_rate_limited: Counter,
    pub(crate) dropped_oversize: Counter,
    pub(crate) dropped_not_member: Counter,
    /// `partyline_disconnects_total{cause}`.
    disconnects: Labeled<1>,
    pub(crate) slow_consumers: Counter,
    pub(crate) rate_limit_disconnects: Counter,
    /// `partyline_refusals_total{cause}`.
    refusals: Labeled<1>,
    /// Hello refusals, by `HELLO_REFUSALS` cause; the last is any other.
    refused_hello: [Counter; HELLO_REFUSALS.len() + 1],
    pub(crate) refused_server_full: Counter,
    pub(crate) refused_handshake_cap: Counter,
    pub(crate) retries_sent: Counter,
    /// Outgoing datagrams dropped, oldest first, from a recipient's full
    /// coalescing buffer.
    pub(crate) coalesce_dropped: Counter,
    /// Per-recipient batches the coalescing flusher handed to quinn.
    pub(crate) coalesce_batches: Counter,
    /// Party datagrams quinn accepted for sending (after coalescing, if on).
    pub(crate) datagrams_handed: Counter,
    /// QUIC's own counters, summed over every admitted connection.
    pub(crate) transport: Arc<TransportRegistry>,
    pub(crate) command_seconds: Histogram,
    pub(crate) fan_out: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let sessions = Labeled::default();
        let data = Labeled::default();
        let dropped = Labeled::default();
        let disconnects = Labeled::default();
        let refusals = Labeled::default();
        let in_datagram = [("direction", "in"), ("path", "datagram")];
        let out_datagram = [("direction", "out"), ("path", "datagram")];
        let in_reliable = [("direction", "in"), ("path", "reliable")];
        Metrics {
            sessions_started: child(&sessions, [("kind", "new")]),
            sessions_resumed: child(&sessions, [("kind", "resumed")]),
            commands: Counter::default(),
            datagrams_in: child(&data, in_datagram),
            datagrams_out: child(&data, out_datagram),
            reliable_data_in: child(&data, in_reliable),
            dropped_rate_limited: child(&dropped, [("cause", "rate_limit")]),
            dropped_oversize: child(&dropped, [("cause", "oversize")]),
            dropped_not_member: child(&dropped, [("cause", "not_member")]),
            slow_consumers: child(&disconnects, [("cause", "slow_consumer")]),
            rate_limit_disconnects: child(&disconnects, [("cause", "rate_limit")]),
            refused_hello: std::array::from_fn(|index| {
                let cause = HELLO_REFUSALS
                    .get(index)
                    .map_or(OTHER_HELLO, |(_, cause)| cause);
                child(&refusals, [("cause", cause)])
            }),
            refused_server_full: child(&refusals, [("cause", "server_full")]),
            refused_handshake_cap: child(&refusals, [("cause", "handshake_cap")]),
            retries_sent: child(&refusals, [("cause", "retry")]),
            coalesce_dropped: Counter::default(),
            coalesce_batches: Counter::default(),
            datagrams_handed: Counter::default(),
            transport: Default::default(),
            command_seconds: Histogram::new(COMMAND_SECONDS),
            fan_out: Histogram::new(FAN_OUT),
            sessions,
            data,
            dropped,
            disconnects,
            refusals,
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

/// Counts one event.
pub(crate) fn count(counter: &Counter) {
    counter.inc();
}

/// One registry's `register`, with the help text written whole: the
/// registry adds the closing full stop itself.
fn add(registry: &mut Registry, name: &str, help: &str, metric: impl Metric) {
    registry.register(name, help.strip_suffix('.').unwrap_or(help), metric);
}

/// A counter whose value is read at the scrape. `name` lacks `_total`: the
/// encoder adds it.
fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    add(registry, name, help, ConstCounter::new(value));
}

/// A gauge read at the scrape.
fn gauge(registry: &mut Registry, name: &str, help: &str, value: impl TryInto<i64>) {
    let value = value.try_into().unwrap_or(i64::MAX);
    add(registry, name, help, ConstGauge::new(value));
}

/// Every metric, read now. Built per scrape, because most figures are read
/// from state at this instant (the gauges, quinn's stats, the cluster's and
/// the hooks' counters, /proc); the hot-path counters join by handle, a
/// clone sharing their atomic.
fn registry(shared: &Shared) -> Registry {
    let m = &shared.metrics;
    let mut root = Registry::default();
    let partyline = root.sub_registry_with_prefix("partyline");
    gauge(
        partyline,
        "sessions",
        "Sessions alive, connected or in their grace window.",
        shared.session_count(),
    );
    gauge(partyline, "parties", "Parties alive.", shared.table.len());
    gauge(
        partyline,
        "parties_listed",
        "Parties listed for search.",
        shared.table.listed(),
    );
    gauge(
        partyline,
        "matchmaking_tickets",
        "Matchmaking tickets waiting.",
        shared.matchmaking.waiting(),
    );
    gauge(
        partyline,
        "join_codes",
        "Live join codes.",
        shared.table.join_codes(),
    );
    gauge(
        partyline,
        "handshakes_in_progress",
        "QUIC handshakes in progress.",
        shared.handshakes.load(Ordering::Relaxed),
    );
    gauge(
        partyline,
        "dev_identities_allowed",
        "1 when clients may name themselves (dev identities, no token secret): nothing proves who they are.",
        i64::from(matches!(shared.config.auth, super::AuthMode::Dev)),
    );
    add(
        partyline,
        "sessions",
        "Sessions started, and taken back by resume.",
        m.sessions.clone(),
    );
    add(
        partyline,
        "commands",
        "Control commands received.",
        m.commands.clone(),
    );
    add(
        partyline,
        "data",
        "Party data messages in and out.",
        m.data.clone(),
    );
    add(
        partyline,
        "dropped",
        "Messages not forwarded or refused, by cause.",
        m.dropped.clone(),
    );
    add(
        partyline,
        "coalesce_dropped",
        "Outgoing datagrams dropped, oldest first, from a recipient's full coalescing buffer (--coalesce-us).",
        m.coalesce_dropped.clone(),
    );
    add(
        partyline,
        "coalesce_batches",
        "Per-recipient datagram batches sent by the coalescing flusher; datagrams out per batch is the coalescing achieved.",
        m.coalesce_batches.clone(),
    );
    add(
        partyline,
        "disconnects",
        "Sessions cut off by the server, by cause.",
        m.disconnects.clone(),
    );
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    if let Some(hooks) = &shared.hooks {
        counter(
            partyline,
            "hook_failures",
            "Hook calls that panicked, ran out of time or answered with another kind of command.",
            get(&hooks.failures),
        );
        counter(
            partyline,
            "hook_after_events_dropped",
            "After-hook events dropped because the after-hook queue was full.",
            get(&hooks.after_dropped),
        );
    }
    if let Some(cluster) = shared.cluster() {
        gauge(
            partyline,
            "cluster_link_up",
            "1 while this node's NATS link is up.",
            i64::from(cluster.link_is_up()),
        );
        gauge(
            partyline,
            "cluster_peers",
            "Other nodes this node hears now.",
            cluster.peers().len(),
        );
        gauge(
            partyline,
            "cluster_remote_members",
            "Members on other nodes of parties homed here.",
            cluster.proxy_count(),
        );
        let c = &cluster.metrics;
        for (name, help, value) in [
            ("cluster_control_messages_out", "Control messages (commands, replies, event batches, membership) queued for other nodes.", &c.control_out),
            ("cluster_control_messages_in", "Control messages received from other nodes.", &c.control_in),
            ("cluster_datagram_messages_out", "Party data messages queued for other nodes (one per datagram per node).", &c.datagram_messages_out),
            ("cluster_datagram_messages_in", "Party data messages received from other nodes.", &c.datagram_messages_in),
            ("cluster_bytes_out", "Bytes of cluster messages queued for NATS.", &c.bytes_out),
            ("cluster_bytes_in", "Bytes of cluster messages received from NATS.", &c.bytes_in),
            ("cluster_control_dropped", "Control messages dropped because the publish queue was full (NATS down or far behind).", &c.dropped_control),
            ("cluster_datagrams_dropped", "Party data messages dropped because the publish queue was full.", &c.dropped_datagrams),
            ("cluster_commands_forwarded", "Commands forwarded to the party's home node.", &c.forwarded),
            ("cluster_unavailable", "Forwarded commands answered Unavailable (link down, or no answer in time).", &c.unavailable),
            ("cluster_nodes_lost", "Nodes judged lost (silent, restarted, or left).", &c.nodes_lost),
            ("cluster_undecodable", "Cluster messages dropped undecoded (another build?).", &c.undecodable),
        ] {
            counter(partyline, name, help, get(value));
        }
    }
    add(
        partyline,
        "refusals",
        "Connections refused or challenged at admission, by cause: a Hello refused (unauthenticated, version_mismatch, resume_refused, malformed_hello, no_hello, other_hello), the server full, too many handshakes, or a Retry asked for.",
        m.refusals.clone(),
    );
    add_transport(partyline, m);
    add(
        partyline,
        "command_seconds",
        "Time to handle one control command: decoded to answered, its events queued.",
        m.command_seconds.snapshot(),
    );
    add(
        partyline,
        "datagram_fan_out",
        "Recipients of one party datagram.",
        m.fan_out.snapshot(),
    );
    add_process(root.sub_registry_with_prefix("process"));
    root
}

/// quinn's counters, summed over the admitted connections.
fn add_transport(partyline: &mut Registry, m: &Metrics) {
    let t = m.transport.totals();
    gauge(
        partyline,
        "transport_connections",
        "QUIC connections carrying an admitted session (sessions in their grace window have none).",
        m.transport.live(),
    );
    let udp = Labeled::<1>::default();
    child(&udp, [("direction", "out")]).inc_by(t.udp_datagrams_sent);
    child(&udp, [("direction", "in")]).inc_by(t.udp_datagrams_received);
    add(
        partyline,
        "transport_udp_datagrams",
        "UDP datagrams of admitted QUIC connections, by direction.",
        udp,
    );
    counter(
        partyline,
        "transport_packets_sent",
        "QUIC packets sent to admitted connections.",
        t.packets_sent,
    );
    counter(
        partyline,
        "transport_packets_lost",
        "QUIC packets sent to admitted connections and declared lost.",
        t.packets_lost,
    );
    counter(
        partyline,
        "transport_bytes_lost",
        "Bytes of QUIC packets declared lost.",
        t.bytes_lost,
    );
    counter(
        partyline,
        "transport_congestion_events",
        "Congestion events (the window cut) on admitted connections.",
        t.congestion_events,
    );
    add(
        partyline,
        "transport_datagrams_handed",
        "Party datagrams handed to quinn to send (after coalescing).",
        m.datagrams_handed.clone(),
    );
    counter(
        partyline,
        "transport_datagram_frames_sent",
        "DATAGRAM frames sent. Below transport_datagrams_handed_total by what waits in quinn's queue, and by what it dropped when that queue overflowed.",
        t.datagram_frames_sent,
    );
}

/// The usual process_* metrics, read from /proc/self (Linux only).
#[cfg(target_os = "linux")]
fn add_process(process: &mut Registry) {
    let Ok(me) = procfs::process::Process::myself() else {
        return;
    };
    if let Ok(stat) = me.stat() {
        let ticks = (procfs::ticks_per_second() as f64).max(1.0);
        let cpu = (stat.utime + stat.stime) as f64 / ticks;
        add(
            process,
            "cpu_seconds",
            "User and system CPU time.",
            ConstCounter::new(cpu),
        );
        let rss = stat.rss.saturating_mul(procfs::page_size());
        gauge(process, "resident_memory_bytes", "Resident memory.", rss);
        gauge(process, "threads", "OS threads.", stat.num_threads);
        if let Ok(boot) = procfs::boot_time_secs() {
            let start = boot as f64 + stat.starttime as f64 / ticks;
            add(
                process,
                "start_time_seconds",
                "Start time, Unix seconds.",
                ConstGauge::new(start),
            );
        }
    }
    if let Ok(fds) = me.fd_count() {
        gauge(process, "open_fds", "Open file descriptors.", fds);
    }
}

#[cfg(not(target_os = "linux"))]
fn add_process(_process: &mut Registry) {}

/// The Prometheus text exposition (format 0.0.4) of every metric.
pub(crate) fn render(shared: &Shared) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry(shared))?;
    Ok(out)
}

/// The `/metrics` route alone: served by [`serve`], or on the admin API's
/// listener when both share an address (without the admin token).
///
/// The Prometheus text format 0.0.4, whatever the request's Accept header:
/// every Prometheus reads it, and OpenMetrics could not carry today's
/// names (its counter `partyline_sessions_total` is the family
/// `partyline_sessions`, which the gauge of that name already is).
pub(crate) fn router(shared: Arc<Shared>) -> axum::Router {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    axum::Router::new().route(
        "/metrics",
        get(move || {
            let shared = shared.clone();
            async move {
                match render(&shared) {
                    Ok(text) => (
                        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
                        text,
                    )
                        .into_response(),
                    Err(error) => {
                        tracing::error!(%error, "the metrics could not be encoded");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "the metrics could not be encoded\n",
                        )
                            .into_response()
                    }
                }
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
