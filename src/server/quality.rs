//! Each session's connection quality, measured where its connection is:
//! QUIC's smoothed round-trip time and the share of packets lost, over a
//! window of the last minute of samples (PROTOCOL.md, "Leader by
//! connection quality"). The batched keep-alive task takes the samples,
//! one per session per period, so measuring costs no timer of its own.
//!
//! A score is *reported* (to every party of the session, here and on
//! other nodes) only when it is worth telling: the first sample of a
//! connection, a sample after the session took a new seat or request, or
//! a score that moved from the reported one by a quarter (and at least
//! [`MIN_MOVE`] points). Between reports the parties keep the last one.

use crate::party::quality::score;
use crate::protocol::SessionId;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How far back the samples of a score reach.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// Most samples kept: a minute of them at the default 5 s keep-alive
/// period, both ends included. A shorter period keeps a shorter window.
pub(crate) const MAX_SAMPLES: usize = 13;

/// Fewer packets than this sent over the window say nothing of loss: the
/// loss term counts as zero (an idle connection sends a few a minute).
pub(crate) const MIN_PACKETS_FOR_LOSS: u64 = 10;

/// A score is reported again once it moved by a quarter of the reported
/// one, and at least this many points.
pub(crate) const MIN_MOVE: u32 = 10;

/// One look at a connection: 24 bytes, so that a session's window costs
/// about 300 (the sessions of a node hold one each).
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Milliseconds after the connection's first sample.
    at_ms: u32,
    rtt_us: u32,
    /// Packets sent and lost on the path so far (quinn counts from the
    /// connection's start).
    sent: u64,
    lost: u64,
}

#[derive(Debug, Default)]
struct MeterState {
    /// The connection the samples are of (quinn's stable id): another
    /// one starts the window over.
    connection: Option<usize>,
    /// When that connection's first sample was taken.
    epoch: Option<Instant>,
    samples: VecDeque<Sample>,
    /// The score the parties were last told; `None`: nothing told since
    /// this connection began.
    reported: Option<u32>,
}

/// One session's measurements.
#[derive(Debug)]
pub(crate) struct QualityMeter {
    pub(crate) session: SessionId,
    state: Mutex<MeterState>,
    /// The session took a new seat or request: the next sample reports,
    /// changed or not.
    owed: AtomicBool,
}

impl QualityMeter {
    pub(crate) fn new(session: SessionId) -> Self {
        QualityMeter {
            session,
            state: Mutex::default(),
            owed: AtomicBool::new(false),
        }
    }

    /// The session holds a new seat or request: its parties' homes learn
    /// its score at the next sample.
    pub(crate) fn owe(&self) {
        self.owed.store(true, Ordering::Relaxed);
    }

    /// The score of the samples so far; `None` before the first.
    pub(crate) fn score(&self) -> Option<u32> {
        window_score(&self.lock().samples)
    }

    /// Takes a sample of connection `connection` (quinn's `stable_id`):
    /// its smoothed RTT, and the packets its path sent and lost so far.
    /// The score to report, when one is due.
    pub(crate) fn sample(
        &self,
        connection: usize,
        now: Instant,
        rtt: Duration,
        sent: u64,
        lost: u64,
    ) -> Option<u32> {
        let mut state = self.lock();
        let restarted = state.connection != Some(connection)
            || state
                .samples
                .back()
                .is_some_and(|last| sent < last.sent || lost < last.lost);
        if restarted {
            // Another connection, or a path whose counters started over
            // (a migration): measured anew, and told anew.
            state.connection = Some(connection);
            state.epoch = Some(now);
            state.samples.clear();
            state.samples.reserve_exact(MAX_SAMPLES);
            state.reported = None;
        }
        let since = now.saturating_duration_since(state.epoch.unwrap_or(now));
        let at_ms = u32::try_from(since.as_millis()).unwrap_or(u32::MAX);
        let window_ms = WINDOW.as_millis() as u32;
        while state.samples.len() >= MAX_SAMPLES
            || state
                .samples
                .front()
                .is_some_and(|first| at_ms.saturating_sub(first.at_ms) > window_ms)
        {
            state.samples.pop_front();
        }
        state.samples.push_back(Sample {
            at_ms,
            rtt_us: u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX),
            sent,
            lost,
        });
        let score = window_score(&state.samples)?;
        let owed = self.owed.swap(false, Ordering::Relaxed);
        if !owed && state.reported.is_some_and(|told| !moved(told, score)) {
            return None;
        }
        state.reported = Some(score);
        Some(score)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MeterState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether `score` moved far enough from `told` to be told.
fn moved(told: u32, score: u32) -> bool {
    told.abs_diff(score) >= (told / 4).max(MIN_MOVE)
}

/// The score of a window: the mean smoothed RTT of its samples, and the
/// loss between its first and last sample.
fn window_score(samples: &VecDeque<Sample>) -> Option<u32> {
    let (first, last) = (samples.front()?, samples.back()?);
    let total_us: u64 = samples.iter().map(|s| u64::from(s.rtt_us)).sum();
    let mean_us = total_us / samples.len() as u64;
    let rtt_ms = u32::try_from(mean_us / 1000).unwrap_or(u32::MAX);
    let sent = last.sent.saturating_sub(first.sent);
    let lost = last.lost.saturating_sub(first.lost);
    let loss_per_mille = match sent >= MIN_PACKETS_FOR_LOSS {
        true => u32::try_from(lost.min(sent) * 1000 / sent).unwrap_or(1000),
        false => 0,
    };
    Some(score(rtt_ms, loss_per_mille))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_first_sample_reports_and_small_moves_do_not() {
        let meter = QualityMeter::new(SessionId::from_u128(1));
        let start = Instant::now();
        let every = Duration::from_secs(5);
        assert_eq!(meter.sample(1, start, 40 * MS, 0, 0), Some(40));
        assert_eq!(meter.sample(1, start + every, 44 * MS, 5, 0), None);
        // Owed after a new seat: told again, unchanged.
        meter.owe();
        assert_eq!(meter.sample(1, start + every * 2, 42 * MS, 9, 0), Some(42));
        // A minute of samples at 160 ms drags the mean up to 160: told
        // at 71 (from 42), 89, 115 and 150, each a quarter (or 10 points)
        // on from the last told; 160 is within a quarter of 150.
        let reports: Vec<u32> = (3..16)
            .filter_map(|i| meter.sample(1, start + every * i, 160 * MS, 9, 0))
            .collect();
        assert_eq!(reports, [71, 89, 115, 150]);
        assert_eq!(meter.score(), Some(160));
    }

    #[test]
    fn loss_counts_over_the_window_and_a_new_connection_starts_over() {
        let meter = QualityMeter::new(SessionId::from_u128(1));
        let start = Instant::now();
        meter.sample(7, start, 20 * MS, 100, 0);
        // 2 of 100 packets lost: 20 per mille, 100 points.
        let score = meter.sample(7, start + Duration::from_secs(5), 20 * MS, 200, 2);
        assert_eq!(score, Some(120));
        // Too few packets to judge.
        let meter = QualityMeter::new(SessionId::from_u128(2));
        meter.sample(7, start, 20 * MS, 0, 0);
        assert_eq!(meter.sample(7, start + MS, 20 * MS, 5, 5), None);
        assert_eq!(meter.score(), Some(20));
        // Another connection: its first sample is told, whatever it is.
        assert_eq!(meter.sample(8, start + 2 * MS, 21 * MS, 1, 0), Some(21));
        // Samples older than the window are gone.
        let later = start + WINDOW + Duration::from_secs(1);
        assert_eq!(meter.sample(8, later, 300 * MS, 2, 0), Some(300));
    }
}
