//! A recipient's party data waiting for the coalescing flusher
//! (the coalesce module): kept on its session, drained by the flusher.

use bytes::Bytes;
use std::collections::VecDeque;

/// Datagrams one recipient may have waiting: a window of party data. Beyond
/// it the oldest is dropped, as quinn's own send buffer does: stale game
/// state is worth less than fresh.
pub(crate) const PENDING_CAPACITY: usize = 64;

/// A recipient's datagrams waiting for the next flush. Empty (and holding
/// no allocation) on a session that was never sent to with coalescing on.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    queue: VecDeque<Bytes>,
}

/// What [`Pending::push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// The buffer was empty: the recipient must be marked dirty.
    pub(crate) first: bool,
    /// The buffer was full: its oldest datagram was dropped.
    pub(crate) dropped_oldest: bool,
}

impl Pending {
    pub(crate) fn push(&mut self, datagram: Bytes) -> Pushed {
        let first = self.queue.is_empty();
        let dropped_oldest = self.queue.len() >= PENDING_CAPACITY;
        if dropped_oldest {
            self.queue.pop_front();
        }
        self.queue.push_back(datagram);
        Pushed {
            first,
            dropped_oldest,
        }
    }

    /// Moves every waiting datagram, oldest first, to the end of `out`.
    /// The buffer keeps its capacity for the next window.
    pub(crate) fn drain_into(&mut self, out: &mut Vec<Bytes>) {
        out.extend(self.queue.drain(..));
    }
}
