//! A session's replay log: its most recent event frames, as encoded for
//! its control stream, for exact replay on resume (PROTOCOL.md section 9).
//!
//! Bounded twice: at most `max_events` events (`--replay-events`) and at
//! most `max_bytes` bytes of frames (`--replay-bytes`); the oldest go
//! first. The frames sit back to back in one ring of bytes, with one
//! length each beside them: a logged event costs its frame and 4 bytes,
//! where a log of `Event` values cost a 272-byte slot and the event's own
//! allocations (BENCHMARKS.md, "Replay log: bytes per event").
//!
//! The log always holds the newest events without a gap: every event a
//! session numbers is pushed, and one too large for the log empties it. A
//! resume from before what it holds gets snapshots instead.

use bytes::Bytes;
use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct ReplayLog {
    /// The frames, oldest first, back to back.
    frames: VecDeque<u8>,
    /// Each frame's length, oldest first.
    lengths: VecDeque<u32>,
    /// The number of the oldest frame held (meaningless when empty).
    first_seq: u64,
    max_events: usize,
    max_bytes: usize,
}

/// Missed events, ready to write: their frames back to back.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub(crate) frames: Bytes,
    pub(crate) count: usize,
}

impl ReplayLog {
    /// An empty log; it allocates nothing until an event is pushed.
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> Self {
        ReplayLog {
            frames: VecDeque::new(),
            lengths: VecDeque::new(),
            first_seq: 0,
            max_events,
            max_bytes,
        }
    }

    /// Logs event `seq`'s frame; `seq` is one above the last pushed. The
    /// oldest frames go until it fits both bounds. A frame that cannot fit
    /// (larger than `max_bytes`, or a log of 0 events) empties the log
    /// instead: what it holds must reach the newest event, so a resume
    /// from before this one gets snapshots.
    pub(crate) fn push(&mut self, seq: u64, frame: &[u8]) {
        let fits = frame.len() <= self.max_bytes && self.max_events > 0;
        let length = u32::try_from(frame.len());
        let (true, Ok(length)) = (fits, length) else {
            self.release();
            return;
        };
        while self.lengths.len() >= self.max_events
            || self.frames.len() + frame.len() > self.max_bytes
        {
            self.evict_oldest();
        }
        if self.lengths.is_empty() {
            self.first_seq = seq;
        }
        self.reserve(frame.len());
        self.frames.extend(frame);
        self.lengths.push_back(length);
    }

    /// The events after `last_seen` when the log holds every one of them
    /// (none when `last_seen` is the newest); `None` when some are gone
    /// (or `last_seen` is above `next_seq`, the next event's number).
    pub(crate) fn after(&self, last_seen: u64, next_seq: u64) -> Option<Replay> {
        if last_seen >= next_seq {
            return None;
        }
        let missed = next_seq - 1 - last_seen;
        if missed == 0 {
            return Some(Replay::default());
        }
        let held = self.lengths.len() as u64;
        if missed > held {
            return None;
        }
        let skipped = (held - missed) as usize;
        let start: usize = self.lengths.iter().take(skipped).map(|&l| l as usize).sum();
        let (front, back) = self.frames.as_slices();
        let mut frames = Vec::with_capacity(self.frames.len() - start);
        match start.checked_sub(front.len()) {
            None => {
                frames.extend_from_slice(front.get(start..).unwrap_or_default());
                frames.extend_from_slice(back);
            }
            Some(into_back) => frames.extend_from_slice(back.get(into_back..).unwrap_or_default()),
        }
        Some(Replay {
            frames: Bytes::from(frames),
            count: missed as usize,
        })
    }

    /// Forgets everything and gives its memory back (the session ended).
    pub(crate) fn release(&mut self) {
        self.frames = VecDeque::new();
        self.lengths = VecDeque::new();
    }

    /// The number of the oldest event held, if any.
    #[cfg(test)]
    fn oldest(&self) -> Option<u64> {
        (!self.lengths.is_empty()).then_some(self.first_seq)
    }

    /// Bytes of frames held (not what the ring has allocated).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.frames.len()
    }

    fn evict_oldest(&mut self) {
        if let Some(length) = self.lengths.pop_front() {
            self.frames.drain(..length as usize);
            self.first_seq += 1;
        }
    }

    /// Room for `more` bytes, growing the ring as a `Vec` does but never
    /// past `max_bytes`: a full log holds at most its budget.
    fn reserve(&mut self, more: usize) {
        let needed = self.frames.len() + more;
        if needed <= self.frames.capacity() {
            return;
        }
        let grown = needed.max(self.frames.capacity() * 2).min(self.max_bytes);
        self.frames.reserve_exact(grown - self.frames.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of `len` bytes that names its event.
    fn frame(seq: u64, len: usize) -> Vec<u8> {
        let mut frame = seq.to_le_bytes().to_vec();
        frame.resize(len, seq as u8);
        frame
    }

    fn log_of(
        max_events: usize,
        max_bytes: usize,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> ReplayLog {
        let mut log = ReplayLog::new(max_events, max_bytes);
        for seq in seqs {
            log.push(seq, &frame(seq, 10));
        }
        log
    }

    /// The replayed frames, split back into the events' numbers.
    fn replayed(replay: Replay, len: usize) -> Vec<u64> {
        assert_eq!(replay.frames.len(), replay.count * len);
        replay
            .frames
            .chunks(len)
            .map(|frame| u64::from_le_bytes(frame[..8].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn the_count_bound_evicts_the_oldest() {
        let log = log_of(3, 1 << 20, 1..=5);
        assert_eq!((log.oldest(), log.bytes()), (Some(3), 30));
        assert_eq!(replayed(log.after(2, 6).unwrap(), 10), [3, 4, 5]);
        assert!(log.after(1, 6).is_none(), "event 2 is gone");
    }

    #[test]
    fn the_byte_bound_evicts_the_oldest() {
        // 35 bytes hold three 10-byte frames, not four.
        let log = log_of(1024, 35, 1..=5);
        assert_eq!((log.oldest(), log.bytes()), (Some(3), 30));
        assert_eq!(replayed(log.after(3, 6).unwrap(), 10), [4, 5]);
        assert!(log.after(1, 6).is_none());
        // The ring never grows past the budget.
        assert!(log.frames.capacity() <= 35, "{}", log.frames.capacity());
    }

    #[test]
    fn frames_of_different_sizes_leave_as_many_as_the_new_one_needs() {
        let mut log = ReplayLog::new(1024, 100);
        for seq in 1..=4 {
            log.push(seq, &frame(seq, 20));
        }
        log.push(5, &frame(5, 50));
        // 80 + 50 > 100: events 1 and 2 go (40 bytes), 3 and 4 stay.
        assert_eq!((log.oldest(), log.bytes()), (Some(3), 90));
        let replay = log.after(2, 6).unwrap();
        assert_eq!(replay.count, 3);
        assert_eq!(replay.frames.len(), 90);
        assert_eq!(&replay.frames[40..], frame(5, 50));
    }

    #[test]
    fn an_event_larger_than_the_budget_empties_the_log() {
        let mut log = log_of(1024, 35, 1..=3);
        log.push(4, &frame(4, 36));
        assert_eq!((log.oldest(), log.bytes()), (None, 0));
        assert!(log.after(3, 5).is_none(), "event 4 is not held");
        assert_eq!(log.after(4, 5).unwrap().count, 0, "nothing missed");
        // Later events are logged again, from the one after it.
        log.push(5, &frame(5, 10));
        assert_eq!(replayed(log.after(4, 6).unwrap(), 10), [5]);
        assert!(log.after(3, 6).is_none());
    }

    #[test]
    fn a_log_of_no_events_replays_only_an_empty_gap() {
        let log = log_of(0, 1 << 20, 1..=3);
        assert_eq!(log.bytes(), 0);
        assert_eq!(log.after(3, 4).unwrap().count, 0);
        assert!(log.after(2, 4).is_none());
    }

    #[test]
    fn a_number_from_the_future_is_refused_without_overflow() {
        let log = log_of(8, 1 << 20, 1..=3);
        assert!(log.after(4, 4).is_none());
        assert!(log.after(u64::MAX, 4).is_none());
    }

    #[test]
    fn a_replay_across_the_ring_s_wrap_is_in_order() {
        // A ring of 40 bytes, filled and evicted many times over, so the
        // frames held straddle its end.
        let log = log_of(1024, 40, 1..=57);
        assert_eq!(replayed(log.after(53, 58).unwrap(), 10), [54, 55, 56, 57]);
        assert_eq!(replayed(log.after(55, 58).unwrap(), 10), [56, 57]);
    }

    #[test]
    fn an_empty_log_allocates_nothing_and_an_ended_one_gives_its_memory_back() {
        let mut log = ReplayLog::new(1024, 1 << 16);
        assert_eq!((log.frames.capacity(), log.lengths.capacity()), (0, 0));
        for seq in 1..=100 {
            log.push(seq, &frame(seq, 100));
        }
        log.release();
        assert_eq!((log.frames.capacity(), log.lengths.capacity()), (0, 0));
    }
}
