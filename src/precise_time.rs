//! Sleeps finer than a millisecond.
//!
//! tokio's timer wheel ticks once a millisecond, so `tokio::time::sleep`
//! of 250 µs sleeps a whole millisecond or more: useless for a window of a
//! few hundred microseconds (the server's `--coalesce-us`) or for pacing a
//! load generator's ticks. On Linux a timerfd, registered with tokio's
//! reactor, wakes the task when the kernel timer fires, with microsecond
//! precision and no thread of its own. Elsewhere, or if no timerfd can be
//! made, it falls back to tokio's timer.

use std::time::{Duration, Instant};

/// A reusable one-shot timer with sub-millisecond resolution: one file
/// descriptor and one reactor registration for a whole loop of sleeps.
///
/// Each sleep re-arms the timer, which discards whatever an earlier,
/// cancelled sleep left armed: dropping a sleep midway is safe.
#[derive(Debug)]
pub struct PreciseTimer {
    /// `None`: tokio's millisecond timer (the timerfd could not be made, or
    /// failed since).
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
}

impl PreciseTimer {
    /// A timer for the current tokio runtime (must be called inside one:
    /// the timerfd registers with its reactor). If the timerfd cannot be
    /// made (out of file descriptors, a sandbox without it), logs a warning
    /// and sleeps with tokio's timer instead.
    pub fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            let fd = linux::create()
                .inspect_err(|error| {
                    tracing::warn!(%error, "no timerfd: sub-millisecond sleeps round up to tokio's 1 ms timer");
                })
                .ok();
            PreciseTimer { fd }
        }
        #[cfg(not(target_os = "linux"))]
        PreciseTimer {}
    }

    /// Whether sleeps are precise below a millisecond (false: tokio's
    /// timer, which rounds up to whole milliseconds).
    pub fn is_precise(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.fd.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Sleeps for `duration`, never less.
    pub async fn sleep(&mut self, duration: Duration) {
        if duration.is_zero() {
            // An all-zero timerfd setting disarms it instead of firing.
            return;
        }
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            let started = Instant::now();
            match linux::sleep(fd, duration).await {
                Ok(()) => return,
                Err(error) => {
                    // Only a broken reactor or fd gets here; degrade, never panic.
                    tracing::warn!(%error, "timerfd failed: falling back to tokio's 1 ms timer");
                    self.fd = None;
                    let left = duration.saturating_sub(started.elapsed());
                    tokio::time::sleep(left).await;
                    return;
                }
            }
        }
        tokio::time::sleep(duration).await;
    }

    /// Sleeps until `deadline` (at once if it has passed).
    pub async fn sleep_until(&mut self, deadline: Instant) {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
            .await;
    }
}

impl Default for PreciseTimer {
    /// Same as [`PreciseTimer::new`]: needs a tokio runtime.
    fn default() -> Self {
        Self::new()
    }
}

/// Sleeps for `duration` on a timer of its own. A loop should keep one
/// [`PreciseTimer`] instead, which saves a file descriptor and a reactor
/// registration per sleep.
pub async fn sleep(duration: Duration) {
    PreciseTimer::new().sleep(duration).await;
}

#[cfg(target_os = "linux")]
mod linux {
    use rustix::time::{
        timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags,
        TimerfdTimerFlags, Timespec,
    };
    use std::io;
    use std::os::fd::OwnedFd;
    use std::time::Duration;
    use tokio::io::unix::AsyncFd;
    use tokio::io::Interest;

    /// A non-blocking monotonic timerfd (the clock `Instant` reads), so
    /// that tokio's reactor can wait for it.
    pub(super) fn create() -> io::Result<AsyncFd<OwnedFd>> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // SAFETY: the `OwnedFd` moves into the `AsyncFd`, which owns it
        // from here on: it stays open, and is the same descriptor, until
        // the `AsyncFd` is dropped.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(io::Error::from)
    }

    /// Arms the timer `duration` (non-zero) from now and waits until it
    /// fires. Re-arming also zeroes the expiry count, so an expiry left by
    /// a cancelled sleep cannot end this one early.
    pub(super) async fn sleep(fd: &AsyncFd<OwnedFd>, duration: Duration) -> io::Result<()> {
        let it_value = Timespec::try_from(duration)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "sleep too long"))?;
        let it_interval = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let one_shot = Itimerspec {
            it_interval,
            it_value,
        };
        timerfd_settime(fd.get_ref(), TimerfdTimerFlags::empty(), &one_shot)?;
        loop {
            let mut ready = fd.readable().await?;
            // The 8 bytes are the expiry count; that there is one is all we need.
            let mut expiries = [0u8; 8];
            let read = ready.try_io(|fd| {
                rustix::io::retry_on_intr(|| rustix::io::read(fd.get_ref(), &mut expiries))
                    .map_err(io::Error::from)
            });
            match read {
                Ok(result) => return result.map(drop),
                // Readiness was stale (an earlier, cancelled sleep's expiry):
                // tokio has cleared it; wait for the real one.
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only turns a hang into a failure; no test here bounds how long a
    /// sleep may take (a loaded machine may be arbitrarily late).
    const HANG_GUARD: Duration = Duration::from_secs(60);

    async fn guarded<F: std::future::Future>(sleep: F) -> F::Output {
        tokio::time::timeout(HANG_GUARD, sleep)
            .await
            .expect("the sleep completed")
    }

    #[tokio::test]
    async fn a_timerfd_is_used_on_linux() {
        assert_eq!(PreciseTimer::new().is_precise(), cfg!(target_os = "linux"));
    }

    #[tokio::test]
    async fn it_fires_and_never_early() {
        let mut timer = PreciseTimer::new();
        for micros in [1, 250, 1500] {
            let duration = Duration::from_micros(micros);
            let started = Instant::now();
            guarded(timer.sleep(duration)).await;
            assert!(started.elapsed() >= duration, "woke early for {duration:?}");
        }
        guarded(timer.sleep(Duration::ZERO)).await;
        guarded(timer.sleep_until(Instant::now())).await;
        guarded(sleep(Duration::from_micros(100))).await;
    }

    #[tokio::test]
    async fn a_new_sleep_replaces_a_cancelled_one() {
        let mut timer = PreciseTimer::new();
        // Armed for an hour, then dropped after a millisecond or so.
        let cancelled = tokio::time::timeout(
            Duration::from_millis(1),
            timer.sleep(Duration::from_secs(3600)),
        )
        .await;
        assert!(cancelled.is_err());
        // The re-armed timer fires on its own deadline, not the hour's.
        let duration = Duration::from_micros(300);
        let started = Instant::now();
        guarded(timer.sleep(duration)).await;
        assert!(started.elapsed() >= duration);
        // An expiry nobody read (its sleep dropped first) does not end the
        // next sleep early.
        let _ = tokio::time::timeout(Duration::ZERO, timer.sleep(Duration::from_micros(1))).await;
        std::thread::sleep(Duration::from_millis(1));
        let duration = Duration::from_millis(2);
        let started = Instant::now();
        guarded(timer.sleep(duration)).await;
        assert!(started.elapsed() >= duration);
    }
}
