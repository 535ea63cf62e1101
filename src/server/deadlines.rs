//! Session deadlines (the end of a grace window, the end of a lost
//! leader's grace) as data: one ordered map and one timer task, instead of
//! a sleeping task per lost connection. A deadline that is no longer
//! wanted (the session came back) is simply found stale when it fires, and
//! everything pending goes with the server when it stops: no detached
//! timer outlives a shutdown.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio::sync::Notify;
use tokio::time::Instant;

pub(crate) struct Deadlines<T> {
    /// Keyed by (when, order of scheduling): two deadlines at the same
    /// instant fire in the order they were set.
    due: Mutex<BTreeMap<(Instant, u64), T>>,
    next_order: AtomicU64,
    /// Wakes the timer when a deadline earlier than all others arrives.
    earlier: Notify,
}

impl<T> Default for Deadlines<T> {
    fn default() -> Self {
        Deadlines {
            due: Mutex::new(BTreeMap::new()),
            next_order: AtomicU64::new(0),
            earlier: Notify::new(),
        }
    }
}

impl<T> Deadlines<T> {
    pub(crate) fn schedule(&self, at: Instant, item: T) {
        let order = self.next_order.fetch_add(1, Ordering::Relaxed);
        let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        let first = due.keys().next().is_none_or(|(next, _)| at < *next);
        due.insert((at, order), item);
        drop(due);
        if first {
            self.earlier.notify_one();
        }
    }

    /// Takes every deadline at or before `now`, earliest first.
    pub(crate) fn take_due(&self, now: Instant) -> Vec<T> {
        let mut due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        let later = due.split_off(&(now, u64::MAX));
        std::mem::replace(&mut *due, later).into_values().collect()
    }

    fn next(&self) -> Option<Instant> {
        let due = self.due.lock().unwrap_or_else(PoisonError::into_inner);
        due.keys().next().map(|(at, _)| *at)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.due
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Fires deadlines as they come due, for as long as the caller polls
    /// it (the server aborts it when it stops).
    pub(crate) async fn run(&self, mut fire: impl FnMut(T)) {
        loop {
            let earlier = self.earlier.notified();
            match self.next() {
                Some(at) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = earlier => continue,
                    }
                }
                None => {
                    earlier.await;
                    continue;
                }
            }
            for item in self.take_due(Instant::now()) {
                fire(item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn deadlines_fire_at_their_time_in_order_and_not_before() {
        let deadlines = Arc::new(Deadlines::<&'static str>::default());
        let fired = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let timer = {
            let (deadlines, fired) = (deadlines.clone(), fired.clone());
            tokio::spawn(async move {
                deadlines
                    .run(|item| fired.lock().unwrap().push((item, start.elapsed())))
                    .await
            })
        };
        deadlines.schedule(start + Duration::from_secs(15), "grace");
        deadlines.schedule(start + Duration::from_secs(5), "leader grace");
        deadlines.schedule(start + Duration::from_secs(15), "grace of another");
        tokio::time::sleep(Duration::from_millis(4_999)).await;
        assert!(fired.lock().unwrap().is_empty(), "nothing before 5 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            *fired.lock().unwrap(),
            vec![("leader grace", Duration::from_secs(5))]
        );
        // An earlier deadline set while the timer sleeps wakes it.
        deadlines.schedule(Instant::now() + Duration::from_secs(1), "short");
        tokio::time::sleep(Duration::from_secs(20)).await;
        let fired = fired.lock().unwrap().clone();
        let names: Vec<_> = fired.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            vec!["leader grace", "short", "grace", "grace of another"]
        );
        assert_eq!(fired[2].1, Duration::from_secs(15), "exactly at 15 s");
        assert_eq!(deadlines.len(), 0);
        timer.abort();
    }
}
