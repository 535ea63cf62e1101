//! What every load message carries, and what each receiver makes of it.
//!
//! Payload layout (little-endian), the rest zero:
//! - bytes 0..8: send time, nanoseconds on the run's clock;
//! - bytes 8..12: sender index, with the top bit set when the send was
//!   due inside the measured window (after the warm-up);
//! - bytes 12..16: the sender's sequence number, from 1.

use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::time::Instant;

/// Smallest payload: the stamp.
pub const STAMP_LEN: usize = 16;
/// A measured message slower than this is a late one, counted per
/// `LATE_BUCKET_NS` of send time: when the tail happened, not only how long.
pub const LATE_NS: u64 = 10_000_000;
pub const LATE_BUCKET_NS: u64 = 100_000_000;
const MEASURED: u32 = 1 << 31;

/// The run's clock: payload timestamps are nanoseconds since `base`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    pub base: Instant,
}

impl Clock {
    pub fn start() -> Clock {
        Clock {
            base: Instant::now(),
        }
    }

    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn at(&self, ns: u64) -> Instant {
        self.base + std::time::Duration::from_nanos(ns)
    }
}

/// A latency histogram of nanoseconds at 2 significant digits (1%),
/// growing with the largest value recorded. Fixed bounds at 3 digits
/// would cost 228 KiB per histogram up front, and the generator keeps one
/// per receiving session: hundreds of megabytes, and cache misses on
/// every message.
pub fn histogram() -> Histogram<u64> {
    #[allow(clippy::expect_used)]
    Histogram::new(2).expect("2 significant digits is valid")
}

/// Records a value (0 counts as 1 ns: the histogram starts at 1).
pub fn record(histogram: &mut Histogram<u64>, value: u64) {
    let _ = histogram.record(value.max(1));
}

/// One message's stamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub sent_ns: u64,
    pub sender: u32,
    pub measured: bool,
    pub seq: u32,
}

impl Stamp {
    pub fn write(&self, message: &mut [u8]) {
        let sender = self.sender | if self.measured { MEASURED } else { 0 };
        message[..8].copy_from_slice(&self.sent_ns.to_le_bytes());
        message[8..12].copy_from_slice(&sender.to_le_bytes());
        message[12..16].copy_from_slice(&self.seq.to_le_bytes());
    }

    pub fn read(message: &[u8]) -> Option<Stamp> {
        let sent_ns = u64::from_le_bytes(message.get(..8)?.try_into().ok()?);
        let sender = u32::from_le_bytes(message.get(8..12)?.try_into().ok()?);
        let seq = u32::from_le_bytes(message.get(12..16)?.try_into().ok()?);
        Some(Stamp {
            sent_ns,
            sender: sender & !MEASURED,
            measured: sender & MEASURED != 0,
            seq,
        })
    }
}

/// Which sequence numbers of one sender a receiver has seen: the highest,
/// and a 64-wide window below it (as in anti-replay windows).
#[derive(Default)]
struct SeqWindow {
    highest: u32,
    /// Bit i: `highest - i` was seen.
    seen: u64,
}

enum Arrival {
    InOrder,
    Reordered,
    Duplicate,
}

impl SeqWindow {
    fn observe(&mut self, seq: u32) -> Arrival {
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = seq;
            return Arrival::InOrder;
        }
        let back = self.highest - seq;
        if back >= 64 {
            // Too old to tell apart from a duplicate: it came late, at least.
            return Arrival::Reordered;
        }
        let bit = 1u64 << back;
        if self.seen & bit != 0 {
            Arrival::Duplicate
        } else {
            self.seen |= bit;
            Arrival::Reordered
        }
    }
}

/// What one receiver counted.
pub struct Tally {
    /// One-way latency of measured messages, nanoseconds.
    pub latency: Histogram<u64>,
    /// Measured messages received (duplicates not counted).
    pub received: u64,
    /// Messages of the warm-up received (not measured).
    pub warmup_received: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Payloads too short to carry a stamp.
    pub malformed: u64,
    /// Every message handed to `observe`.
    events: u64,
    /// Late measured messages by 100 ms bucket of their send time.
    pub late_by_bucket: HashMap<u64, u64>,
    senders: HashMap<u32, SeqWindow>,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            latency: histogram(),
            received: 0,
            warmup_received: 0,
            duplicates: 0,
            reordered: 0,
            malformed: 0,
            events: 0,
            late_by_bucket: HashMap::new(),
            senders: HashMap::new(),
        }
    }
}

impl Tally {
    pub fn observe(&mut self, payload: &[u8], now_ns: u64) {
        self.events += 1;
        let Some(stamp) = Stamp::read(payload) else {
            self.malformed += 1;
            return;
        };
        match self
            .senders
            .entry(stamp.sender)
            .or_default()
            .observe(stamp.seq)
        {
            Arrival::Duplicate => {
                self.duplicates += 1;
                return;
            }
            Arrival::Reordered => self.reordered += 1,
            Arrival::InOrder => {}
        }
        if stamp.measured {
            let latency = now_ns.saturating_sub(stamp.sent_ns);
            record(&mut self.latency, latency);
            self.received += 1;
            if latency > LATE_NS {
                *self
                    .late_by_bucket
                    .entry(stamp.sent_ns / LATE_BUCKET_NS)
                    .or_default() += 1;
            }
        } else {
            self.warmup_received += 1;
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        let _ = self.latency.add(&other.latency);
        self.received += other.received;
        self.warmup_received += other.warmup_received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.malformed += other.malformed;
        self.events += other.events;
        for (bucket, count) in &other.late_by_bucket {
            *self.late_by_bucket.entry(*bucket).or_default() += count;
        }
    }

    /// Messages seen in all: measured, warm-up, duplicate or malformed.
    pub fn events(&self) -> u64 {
        self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(sender: u32, seq: u32, measured: bool) -> Vec<u8> {
        let mut message = vec![0u8; 64];
        Stamp {
            sent_ns: 1_000,
            sender,
            measured,
            seq,
        }
        .write(&mut message);
        message
    }

    #[test]
    fn a_stamp_reads_back_as_written() {
        let stamp = Stamp {
            sent_ns: 123_456_789,
            sender: 77,
            measured: true,
            seq: 9,
        };
        let mut message = [0u8; 16];
        stamp.write(&mut message);
        assert_eq!(Stamp::read(&message), Some(stamp));
        assert_eq!(Stamp::read(&message[..15]), None);
    }

    #[test]
    fn duplicates_and_reordering_are_told_apart_per_sender() {
        let mut tally = Tally::default();
        for (sender, seq) in [
            (1, 1),
            (1, 2),
            (2, 1),
            (1, 4),
            (1, 3),
            (1, 3),
            (2, 1),
            (1, 100),
        ] {
            tally.observe(&message(sender, seq, true), 2_000);
        }
        assert_eq!(tally.duplicates, 2, "(1,3) and (2,1) came twice");
        assert_eq!(tally.reordered, 1, "3 came after 4");
        assert_eq!(tally.received, 6);
        // Far behind the window: counted as reordered, not as new.
        tally.observe(&message(1, 5, true), 2_000);
        assert_eq!(tally.reordered, 2);
    }

    #[test]
    fn late_messages_are_counted_by_slice_of_send_time() {
        let mut tally = Tally::default();
        // Sent at 1_000 ns: on time, then 20 ms late, twice; then one late
        // message sent in the next slice.
        tally.observe(&message(1, 1, true), 2_000);
        tally.observe(&message(1, 2, true), 20_001_000);
        tally.observe(&message(2, 1, true), 20_001_000);
        let mut later = vec![0u8; 64];
        Stamp {
            sent_ns: LATE_BUCKET_NS + 5,
            sender: 3,
            measured: true,
            seq: 1,
        }
        .write(&mut later);
        tally.observe(&later, LATE_BUCKET_NS + 50_000_000);
        let mut slices: Vec<(u64, u64)> = tally.late_by_bucket.into_iter().collect();
        slices.sort();
        assert_eq!(slices, [(0, 2), (1, 1)]);
    }

    #[test]
    fn warm_up_messages_are_counted_apart() {
        let mut tally = Tally::default();
        tally.observe(&message(1, 1, false), 5_000);
        tally.observe(&message(1, 2, true), 5_000);
        tally.observe(&[0u8; 4], 5_000);
        assert_eq!(
            (tally.warmup_received, tally.received, tally.malformed),
            (1, 1, 1)
        );
        assert_eq!(tally.latency.len(), 1);
        assert!(tally.latency.equivalent(tally.latency.max(), 4_000));
    }
}
