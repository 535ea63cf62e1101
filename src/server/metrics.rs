//! What operators watch, served on `--metrics ADDR` in the Prometheus text
//! format (0.0.4) by prometheus-client, the Prometheus project's Rust client.
//! The hot-path counters are its typed `Counter`s, held as handles with
//! their label values resolved at start: one relaxed atomic add each, no
//! label lookup.

use super::player_limits::{Budget, Whose};
use super::quality::QualityMeter;
use super::transport::ClientConnection;
use crate::protocol::ErrorCode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::MetricType;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

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
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
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
pub(crate) struct HistogramSnapshot {
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
pub(crate) type Labeled<const N: usize> = Family<[(&'static str, &'static str); N], Counter>;

/// The counter of `family` for `labels`, created now: the handle the hot
/// path adds to, with no lookup.
pub(crate) fn child<const N: usize>(
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
    pub(crate) sessions: Labeled<1>,
    pub(crate) sessions_started: Counter,
    pub(crate) sessions_resumed: Counter,
    pub(crate) commands: Counter,
    /// `partyline_data_total{direction,path}`.
    pub(crate) data: Labeled<2>,
    pub(crate) datagrams_in: Counter,
    pub(crate) datagrams_out: Counter,
    pub(crate) reliable_data_in: Counter,
    /// `partyline_dropped_total{cause}`.
    pub(crate) dropped: Labeled<1>,
    /// Commands refused and datagrams dropped by the rate limits.
    pub(crate) dropped_rate_limited: Counter,
    pub(crate) dropped_oversize: Counter,
    pub(crate) dropped_not_member: Counter,
    /// `partyline_disconnects_total{cause}`.
    pub(crate) disconnects: Labeled<1>,
    pub(crate) slow_consumers: Counter,
    pub(crate) rate_limit_disconnects: Counter,
    /// `partyline_refusals_total{cause}`.
    pub(crate) refusals: Labeled<1>,
    /// Hello refusals, by `HELLO_REFUSALS` cause; the last is any other.
    refused_hello: [Counter; HELLO_REFUSALS.len() + 1],
    pub(crate) refused_server_full: Counter,
    /// Hellos refused because the user, or the address, had the most
    /// sessions allowed.
    pub(crate) refused_sessions_per_user: Counter,
    pub(crate) refused_sessions_per_address: Counter,
    /// `partyline_join_code_failures_total`: join-code attempts that named
    /// no live party.
    pub(crate) join_code_failures: Counter,
    /// `partyline_player_limited_total{key,budget}`: commands refused by a
    /// budget of their user or of their address.
    pub(crate) player_limited: Labeled<2>,
    /// Its children, by `Whose` then `Budget`.
    player_limited_by: [[Counter; Budget::ALL.len()]; Whose::ALL.len()],
    pub(crate) refused_handshake_cap: Counter,
    /// Browser sessions refused before Hello: a path or origin not
    /// allowed, or a WebTransport handshake that failed.
    pub(crate) refused_webtransport: Counter,
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
    /// `partyline_quality_reports_total`: connection scores told to the
    /// parties of their sessions.
    pub(crate) quality_reports: Counter,
    pub(crate) command_seconds: Histogram,
    pub(crate) fan_out: Histogram,
    /// `partyline_data_withheld_total`: party data not forwarded to a
    /// member that muted its sender or shares a block with it, one per
    /// member left out.
    pub(crate) data_withheld: Counter,
    /// `partyline_mutes_total{action}`.
    pub(crate) mutes: Labeled<1>,
    pub(crate) mutes_set: Counter,
    pub(crate) mutes_lifted: Counter,
    /// `partyline_block_lists_set_total{by}`: block lists changed, by the
    /// session itself or by the game's server (its API or hook).
    pub(crate) block_lists: Labeled<1>,
    pub(crate) block_lists_by_session: Counter,
    pub(crate) block_lists_by_server: Counter,
    /// `partyline_joins_blocked_total`: joins answered as a party that
    /// does not exist because its leader blocks the joiner.
    pub(crate) joins_blocked: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let sessions = Labeled::default();
        let data = Labeled::default();
        let dropped = Labeled::default();
        let disconnects = Labeled::default();
        let refusals = Labeled::default();
        let player_limited = Labeled::default();
        let mutes = Labeled::default();
        let block_lists = Labeled::default();
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
            refused_sessions_per_user: child(&refusals, [("cause", "sessions_per_user")]),
            refused_sessions_per_address: child(&refusals, [("cause", "sessions_per_address")]),
            join_code_failures: Counter::default(),
            player_limited_by: Whose::ALL.map(|whose| {
                Budget::ALL.map(|budget| {
                    child(
                        &player_limited,
                        [("key", whose.label()), ("budget", budget.label())],
                    )
                })
            }),
            player_limited,
            refused_handshake_cap: child(&refusals, [("cause", "handshake_cap")]),
            refused_webtransport: child(&refusals, [("cause", "webtransport")]),
            retries_sent: child(&refusals, [("cause", "retry")]),
            coalesce_dropped: Counter::default(),
            coalesce_batches: Counter::default(),
            datagrams_handed: Counter::default(),
            transport: Default::default(),
            quality_reports: Counter::default(),
            command_seconds: Histogram::new(COMMAND_SECONDS),
            fan_out: Histogram::new(FAN_OUT),
            data_withheld: Counter::default(),
            mutes_set: child(&mutes, [("action", "mute")]),
            mutes_lifted: child(&mutes, [("action", "unmute")]),
            block_lists_by_session: child(&block_lists, [("by", "session")]),
            block_lists_by_server: child(&block_lists, [("by", "server")]),
            joins_blocked: Counter::default(),
            mutes,
            block_lists,
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
    /// `RateLimited` is a session limit's, counted where it refused
    /// (by user or by address).
    pub(crate) fn refused_hello(&self, code: ErrorCode) {
        if code == ErrorCode::RateLimited {
            return;
        }
        let index = HELLO_REFUSALS
            .iter()
            .position(|(known, _)| *known == code)
            .unwrap_or(HELLO_REFUSALS.len());
        if let Some(counter) = self.refused_hello.get(index) {
            count(counter);
        }
    }
}

impl Metrics {
    /// Counts a command refused by a budget of its user or address.
    pub(crate) fn player_limited(&self, whose: Whose, budget: Budget) {
        let by_whose = Whose::ALL.iter().position(|w| *w == whose);
        let by_budget = Budget::ALL.iter().position(|b| *b == budget);
        if let (Some(w), Some(b)) = (by_whose, by_budget) {
            count(&self.player_limited_by[w][b]);
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

/// A live connection, and the meter of its session's quality (the
/// keep-alive task samples it).
pub(crate) type LiveConnection = (ClientConnection, Arc<QualityMeter>);

#[derive(Debug, Default)]
struct TransportState {
    live: HashMap<usize, LiveConnection>,
    ended: TransportTotals,
}

impl TransportRegistry {
    /// Counts `connection` until the returned guard drops, then folds its
    /// final figures into the ended sum; meanwhile its session's `meter`
    /// is sampled with it.
    pub(crate) fn track(
        self: &Arc<Self>,
        connection: &ClientConnection,
        meter: Arc<QualityMeter>,
    ) -> TrackedConnection {
        let id = connection.stable_id();
        self.lock().live.insert(id, (connection.clone(), meter));
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
    pub(crate) fn slice_into(&self, index: u64, count: u64, into: &mut Vec<LiveConnection>) {
        let state = self.lock();
        into.extend(
            state
                .live
                .iter()
                .filter(|(id, _)| slice_of(**id, count) == index)
                .map(|(_, live)| live.clone()),
        );
    }

    pub(crate) fn totals(&self) -> TransportTotals {
        let state = self.lock();
        let mut totals = state.ended;
        for (connection, _) in state.live.values() {
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
        if let Some((connection, _)) = state.live.remove(&self.id) {
            state.ended.add(&connection.stats());
        }
    }
}

/// Counts one event.
pub(crate) fn count(counter: &Counter) {
    counter.inc();
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
