//! Sleeping to the tens of microseconds. tokio's timers round every
//! deadline up to a whole millisecond, far coarser than the 50 µs between
//! sends at cell M: senders would leave in 1 ms clumps and every send would
//! be up to 1 ms late. A Linux timerfd, registered with tokio's reactor,
//! wakes within the kernel's timer slack (50 µs by default).

use std::time::Instant;
use timerfd::{ClockId, SetTimeFlags, TimerFd, TimerState};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// One reusable one-shot timer.
pub struct PreciseTimer {
    /// `None` when no timerfd could be made: tokio's timer then serves.
    fd: Option<AsyncFd<TimerFd>>,
}

impl Default for PreciseTimer {
    fn default() -> PreciseTimer {
        PreciseTimer::new()
    }
}

impl PreciseTimer {
    /// Must be called inside a tokio runtime with I/O enabled.
    pub fn new() -> PreciseTimer {
        let fd = TimerFd::new_custom(ClockId::Monotonic, true, true).and_then(|timer| {
            // SAFETY: the TimerFd owns its descriptor and closes it only on
            // drop, after the AsyncFd that owns it has deregistered it.
            unsafe { AsyncFd::register_with_interest(timer, Interest::READABLE) }
                .map_err(std::io::Error::from)
        });
        match fd {
            Ok(fd) => PreciseTimer { fd: Some(fd) },
            Err(error) => {
                eprintln!("warning: no timerfd ({error}); send times are rounded to 1 ms");
                PreciseTimer { fd: None }
            }
        }
    }

    /// Returns at `deadline` or soon after; at once if it has passed.
    pub async fn sleep_until(&mut self, deadline: Instant) {
        let now = Instant::now();
        if deadline <= now {
            return;
        }
        let Some(fd) = self.fd.as_mut() else {
            tokio::time::sleep_until(deadline.into()).await;
            return;
        };
        fd.get_mut()
            .set_state(TimerState::Oneshot(deadline - now), SetTimeFlags::Default);
        loop {
            let Ok(mut ready) = fd.readable().await else {
                tokio::time::sleep_until(deadline.into()).await;
                return;
            };
            // Non-blocking read: 0 means woken before the expiry.
            if ready.get_inner().read() > 0 {
                return;
            }
            ready.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn sleeps_until_the_deadline_and_can_be_reused() {
        let mut timer = PreciseTimer::new();
        for _ in 0..3 {
            let deadline = Instant::now() + Duration::from_micros(300);
            timer.sleep_until(deadline).await;
            assert!(Instant::now() >= deadline, "never returns early");
        }
        // A deadline already passed returns at once (no timer armed).
        timer.sleep_until(Instant::now()).await;
    }
}
