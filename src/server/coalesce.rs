//! Per-recipient send coalescing of party datagrams (`--coalesce-us`).
//!
//! quinn packs the datagrams queued on a connection before its driver task
//! runs into one UDP packet. With senders spread over time that rarely
//! happens: each relayed datagram leaves alone, one packet (~10 µs of
//! server CPU) per recipient per datagram. With a window W, a recipient's
//! datagrams wait in its link's [`super::pending::Pending`] buffer and are handed to quinn
//! back to back, with no await in between, so those of one window share a
//! packet.
//!
//! One flusher task serves every recipient with one timer: the first
//! datagram of a window marks its recipient dirty and wakes the flusher,
//! which sleeps W (a [`PreciseTimer`]: tokio's timer ticks in whole
//! milliseconds), takes the dirty list and flushes each recipient on it.
//! So no datagram waits much longer than W, and an idle server sleeps.

use super::metrics::{self, Metrics};
use super::session::{lock, SessionRef};
use crate::precise_time::PreciseTimer;
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// Flushed recipients between two yields of the flusher, so that a big
/// flush does not hold a worker thread for long.
const FLUSH_BATCH: usize = 256;

/// The server-wide half: which recipients have datagrams waiting, and the
/// flusher's wake-up.
pub(crate) struct Coalescer {
    window: Duration,
    /// Recipients with a non-empty `Pending` buffer, each once. A std mutex,
    /// never held across an await; it is taken once per recipient per
    /// window, not once per datagram.
    dirty: Mutex<Vec<SessionRef>>,
    /// Notified when `dirty` stops being empty.
    wake: Notify,
    metrics: Arc<Metrics>,
}

impl Coalescer {
    pub(crate) fn new(window: Duration, metrics: Arc<Metrics>) -> Self {
        Coalescer {
            window,
            dirty: Mutex::new(Vec::new()),
            wake: Notify::new(),
            metrics,
        }
    }

    /// Queues `datagram` for `recipient`, to leave with the next flush.
    ///
    /// A recipient whose buffer holds something is on the dirty list, or
    /// in the flush under way, once: the push that finds the buffer empty
    /// puts it on the list, and only the flusher empties the buffer, after
    /// taking the list. So a recipient costs the list one entry per window,
    /// however much it is sent.
    pub(crate) fn queue(&self, recipient: SessionRef, datagram: Bytes) {
        let pushed = recipient.pend(datagram);
        if pushed.dropped_oldest {
            metrics::count(&self.metrics.coalesce_dropped);
        }
        if pushed.first {
            let mut dirty = lock(&self.dirty);
            let was_idle = dirty.is_empty();
            dirty.push(recipient);
            drop(dirty);
            // A non-empty list already woke the flusher (or left it a
            // permit): one wake per window is enough.
            if was_idle {
                self.wake.notify_one();
            }
        }
    }
}

/// The flusher: runs until the server aborts it at shutdown. Every
/// datagram is flushed within about one window plus one flush of when it
/// was queued: the push that makes the list non-empty leaves a permit even
/// while a flush is under way, and the next sleep starts after it.
pub(crate) async fn flush_loop(coalescer: Arc<Coalescer>) {
    let mut timer = PreciseTimer::new();
    tracing::info!(
        window = ?coalescer.window,
        precise = timer.is_precise(),
        "coalescing party datagrams per recipient"
    );
    // Both kept across windows, so a steady flush allocates nothing.
    let mut recipients: Vec<SessionRef> = Vec::new();
    let mut datagrams: Vec<Bytes> = Vec::new();
    loop {
        coalescer.wake.notified().await;
        timer.sleep(coalescer.window).await;
        std::mem::swap(&mut *lock(&coalescer.dirty), &mut recipients);
        for (flushed, recipient) in recipients.drain(..).enumerate() {
            if recipient.flush_pending(&mut datagrams) > 0 {
                metrics::count(&coalescer.metrics.coalesce_batches);
            }
            // The link clone goes before any yield: the flusher holds no
            // session past its flush (one that ended meanwhile is freed
            // now, its buffer with it).
            drop(recipient);
            if (flushed + 1) % FLUSH_BATCH == 0 {
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Presence, SessionId};
    use crate::server::pending::{Pending, Pushed, PENDING_CAPACITY};
    use crate::server::session::SessionLink;

    fn datagram(n: usize) -> Bytes {
        Bytes::from(n.to_le_bytes().to_vec())
    }

    #[test]
    fn the_first_push_marks_the_recipient_and_a_full_buffer_drops_the_oldest() {
        let mut pending = Pending::default();
        let pushes: Vec<Pushed> = (0..PENDING_CAPACITY + 3)
            .map(|n| pending.push(datagram(n)))
            .collect();
        assert!(pushes[0].first);
        assert!(pushes[1..].iter().all(|pushed| !pushed.first));
        let dropped = pushes.iter().filter(|pushed| pushed.dropped_oldest).count();
        assert_eq!(dropped, 3);
        assert!(pushes[..PENDING_CAPACITY]
            .iter()
            .all(|pushed| !pushed.dropped_oldest));

        let mut out = Vec::new();
        pending.drain_into(&mut out);
        let expected: Vec<Bytes> = (3..PENDING_CAPACITY + 3).map(datagram).collect();
        assert_eq!(out, expected, "the newest, in order");
        // Drained: the next push is a window's first again.
        assert!(pending.push(datagram(0)).first);
    }

    #[tokio::test]
    async fn the_flusher_empties_the_buffer_and_lets_the_link_go() {
        let metrics = Arc::new(Metrics::default());
        let coalescer = Arc::new(Coalescer::new(Duration::from_micros(200), metrics.clone()));
        // Never connected: what is flushed to it is dropped, as for a
        // session in its grace window.
        let presence = Presence {
            user_id: "ana".into(),
            username: "Ana".into(),
            session_id: SessionId::random(),
        };
        let link = Arc::new(SessionLink::new(
            presence,
            crate::server::replay::ReplayLog::new(0, 0),
            metrics.clone(),
        ));
        for n in 0..3 {
            coalescer.queue(link.clone(), datagram(n));
        }
        assert_eq!(Arc::strong_count(&link), 2, "on the dirty list once");
        let flusher = tokio::spawn(flush_loop(coalescer.clone()));
        // No bound on how long the flush takes, only a guard against a hang.
        tokio::time::timeout(Duration::from_secs(60), async {
            while Arc::strong_count(&link) > 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the flusher let go of the link");
        assert_eq!(metrics.coalesce_batches.get(), 1);
        assert_eq!(link.flush_pending(&mut Vec::new()), 0, "nothing left");
        flusher.abort();
    }
}
