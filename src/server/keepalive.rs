//! Keep-alives sent in batches.
//!
//! An idle QUIC connection's liveness costs a packet each way per period.
//! Left to quinn, each connection's keep-alive wakes the server on its own
//! timer, and an ACK comes back on its own: on a quiet server that is two
//! cold wake-ups per session per period, measured at ~40-50 µs of CPU per
//! round trip (BENCHMARKS.md, "Idle keep-alives"). Here one task wakes a
//! few times a second and pokes a slice of the sessions together, so the
//! sends, and the ACKs that come back together, share their wake-ups.
//!
//! The poke is an empty QUIC datagram: ack-eliciting, so the client's ACK
//! resets the server's idle timer, and it resets the client's. PROTOCOL.md
//! §5 says a zero-length datagram is a keep-alive, ignored by both sides.
//!
//! The same visit samples the connection's quality (its RTT and packet
//! counts, read from quinn): one look per session per period, with no
//! timer of its own. With keep-alives off the task still runs, at the
//! default period, to sample without poking.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::metrics::TransportRegistry;
use crate::protocol::SessionId;

/// How often the task wakes. Each wake pokes `TICK / period` of the
/// sessions, so a session hears from the server once per period.
const TICK: Duration = Duration::from_millis(250);

/// Visits every live connection once per `period`, a slice per tick: pokes
/// it (with `poke`), and samples its quality (`super::quality`), handing
/// each score due to be told to `report`, with its session.
pub(crate) async fn run(
    registry: Arc<TransportRegistry>,
    period: Duration,
    poke: bool,
    report: impl Fn(SessionId, u32),
) {
    let slices = slices_for(period);
    let mut every = tokio::time::interval(TICK.min(period));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut slice = 0;
    let mut due = Vec::new();
    loop {
        every.tick().await;
        registry.slice_into(slice, slices, &mut due);
        let now = Instant::now().into_std();
        for (connection, meter) in due.drain(..) {
            // A closed connection measures nothing any more (its
            // successor, after a resume, is measured on its own).
            if connection.quic().close_reason().is_some() {
                continue;
            }
            if poke {
                // Best effort: a full send buffer means the connection is
                // busy, and busy connections need no keep-alive.
                let _ = connection.send_keep_alive();
            }
            let path = connection.stats().path;
            let sent = path.sent_packets.saturating_sub(path.sent_plpmtud_probes);
            let sampled = meter.sample(
                connection.stable_id(),
                now,
                connection.quic().rtt(),
                sent,
                path.lost_packets,
            );
            if let Some(score) = sampled {
                report(meter.session, score);
            }
        }
        slice = (slice + 1) % slices;
    }
}

/// Ticks in one period (at least one).
fn slices_for(period: Duration) -> u64 {
    (period.as_nanos() / TICK.as_nanos()).clamp(1, u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_is_cut_into_ticks() {
        assert_eq!(slices_for(Duration::from_secs(4)), 16);
        assert_eq!(slices_for(Duration::from_millis(100)), 1);
        assert_eq!(slices_for(Duration::from_millis(260)), 1);
    }
}
