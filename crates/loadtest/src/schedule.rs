//! When each sender sends. `n` senders at one rate are spread evenly over
//! the period: slot `j` belongs to sender `j mod n` and is due at
//! `start + j × period / n`. One task walks the slots in order, sleeping on
//! a precise timer between them, so a send is late only when the generator
//! is busy, and that lateness is measured rather than hidden.

use crate::measure::{histogram, record, Clock, Stamp};
use hdrhistogram::Histogram;
use partyline::precise_time::PreciseTimer;

/// The slots of one run, in nanoseconds on the run's clock.
#[derive(Clone, Copy, Debug)]
pub struct Timetable {
    pub senders: usize,
    pub period_ns: u64,
    pub start_ns: u64,
    /// Sends due before this are warm-up: made, but not measured.
    pub warm_end_ns: u64,
    /// No send is due at or after this.
    pub end_ns: u64,
}

impl Timetable {
    fn due(&self, slot: u64) -> u64 {
        let offset = u128::from(slot) * u128::from(self.period_ns) / self.senders.max(1) as u128;
        self.start_ns
            .saturating_add(u64::try_from(offset).unwrap_or(u64::MAX))
    }
}

/// What the senders did inside the measured window.
pub struct SendFigures {
    /// Sends due in the window.
    pub offered: u64,
    /// Sends made (accepted by the client library).
    pub sent: u64,
    /// Sends the client library refused (connection gone, too large).
    pub failed: u64,
    /// Sends skipped because the sender's next send was already due.
    pub missed: u64,
    /// Sends made during the warm-up.
    pub warmup_sent: u64,
    /// How late each measured send left, against its due time, ns.
    pub lateness: Histogram<u64>,
}

/// Walks the timetable, calling `send(sender, message)` for each slot;
/// `send` answers whether the send was accepted. Every message carries a
/// stamp (see `measure`); the rest of `payload` bytes are zero.
pub async fn drive<F>(table: Timetable, clock: Clock, payload: usize, mut send: F) -> SendFigures
where
    F: FnMut(usize, &[u8]) -> bool,
{
    let mut figures = SendFigures {
        offered: 0,
        sent: 0,
        failed: 0,
        missed: 0,
        warmup_sent: 0,
        lateness: histogram(),
    };
    if table.senders == 0 || table.period_ns == 0 {
        return figures;
    }
    let mut timer = PreciseTimer::new();
    if !timer.is_precise() {
        eprintln!(
            "warning: no timerfd: sends are paced by tokio's 1 ms timer, and late by up to 1 ms"
        );
    }
    let mut seqs = vec![0u32; table.senders];
    let mut message = vec![0u8; payload.max(crate::measure::STAMP_LEN)];
    let mut slot = 0u64;
    loop {
        let next = table.due(slot);
        if next >= table.end_ns {
            break;
        }
        if next > clock.now_ns() {
            timer.sleep_until(clock.at(next)).await;
        } else {
            // Behind: let receivers and connection drivers run between batches.
            tokio::task::yield_now().await;
        }
        let now = clock.now_ns();
        // Every slot due by now, oldest first.
        loop {
            let due = table.due(slot);
            if due > now || due >= table.end_ns {
                break;
            }
            let sender = (slot % table.senders as u64) as usize;
            slot += 1;
            let measured = due >= table.warm_end_ns;
            let late = now - due;
            if late >= table.period_ns {
                // This sender's next send is due already: a missed tick.
                if measured {
                    figures.offered += 1;
                    figures.missed += 1;
                }
                continue;
            }
            seqs[sender] = seqs[sender].wrapping_add(1);
            Stamp {
                sent_ns: clock.now_ns(),
                sender: sender as u32,
                measured,
                seq: seqs[sender],
            }
            .write(&mut message);
            let accepted = send(sender, &message);
            if measured {
                figures.offered += 1;
                record(&mut figures.lateness, late);
                if accepted {
                    figures.sent += 1;
                } else {
                    figures.failed += 1;
                }
            } else if accepted {
                figures.warmup_sent += 1;
            }
        }
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Stamp;
    use std::time::Duration;

    #[test]
    fn slots_spread_evenly_over_the_period() {
        let table = Timetable {
            senders: 4,
            period_ns: 1_000,
            start_ns: 10,
            warm_end_ns: 0,
            end_ns: u64::MAX,
        };
        let due: Vec<u64> = (0..6).map(|slot| table.due(slot)).collect();
        assert_eq!(due, [10, 260, 510, 760, 1010, 1260]);
    }

    #[tokio::test]
    async fn every_slot_is_sent_once_with_its_sender_and_sequence() {
        let clock = Clock::start();
        let start = clock.now_ns() + 1_000_000;
        let period = Duration::from_millis(10).as_nanos() as u64;
        let table = Timetable {
            senders: 3,
            period_ns: period,
            start_ns: start,
            warm_end_ns: start + period,
            end_ns: start + 3 * period,
        };
        let mut seen = Vec::new();
        let figures = drive(table, clock, 32, |sender, message| {
            let stamp = Stamp::read(message).expect("stamped");
            assert_eq!(stamp.sender as usize, sender);
            seen.push((sender, stamp.seq, stamp.measured));
            true
        })
        .await;
        // 3 periods of 3 senders; the first period is warm-up.
        assert_eq!(figures.offered, 6, "measured slots, sent or missed");
        assert!(figures.warmup_sent <= 3);
        assert_eq!(figures.offered, figures.sent + figures.missed);
        assert_eq!(figures.lateness.len(), figures.sent);
        for sender in 0..3 {
            let seqs: Vec<u32> = seen
                .iter()
                .filter(|(s, _, _)| *s == sender)
                .map(|(_, seq, _)| *seq)
                .collect();
            assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        }
        let first_measured = seen.iter().position(|(_, _, m)| *m).unwrap_or(seen.len());
        assert!(
            seen[first_measured..].iter().all(|(_, _, m)| *m),
            "warm-up first"
        );
    }

    #[tokio::test]
    async fn a_generator_that_falls_behind_counts_missed_ticks() {
        let clock = Clock::start();
        let start = clock.now_ns();
        let period = Duration::from_millis(1).as_nanos() as u64;
        let table = Timetable {
            senders: 1,
            period_ns: period,
            start_ns: start,
            warm_end_ns: start,
            end_ns: start + 20 * period,
        };
        let figures = drive(table, clock, 16, |_, _| {
            // A send that takes five periods: the ticks in between are missed.
            std::thread::sleep(Duration::from_millis(5));
            true
        })
        .await;
        assert!(figures.missed > 0, "ticks were missed");
        assert_eq!(figures.offered, figures.sent + figures.missed);
    }
}
