//! Per-session rate limits: a token bucket, plus a count of refusals so a
//! client that keeps flooding is cut off instead of costing a refusal each.
//! Pure: time comes in as an argument.

use std::time::{Duration, Instant};

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allow,
    /// Over the limit: refuse (commands) or drop (data).
    Deny,
    /// Over the limit for too long: close the connection.
    Disconnect,
}

/// How long refusals are counted before the count starts over.
const VIOLATION_WINDOW: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub(crate) struct RateLimit {
    /// Tokens per second; 0 disables the limit.
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    violations: u64,
    window_start: Instant,
}

impl RateLimit {
    /// `rate` per second with a burst of twice that; `rate == 0` never limits.
    pub(crate) fn new(rate: f64, now: Instant) -> Self {
        Self::with_burst(rate, (rate * 2.0).max(1.0), now)
    }

    /// `per_minute` a minute, all of them at once if wanted; 0 never limits.
    pub(crate) fn per_minute(per_minute: u32, now: Instant) -> Self {
        let burst = f64::from(per_minute).max(1.0);
        Self::with_burst(f64::from(per_minute) / 60.0, burst, now)
    }

    fn with_burst(rate: f64, burst: f64, now: Instant) -> Self {
        RateLimit {
            rate,
            burst,
            tokens: burst,
            last: now,
            violations: 0,
            window_start: now,
        }
    }

    pub(crate) fn check(&mut self, now: Instant) -> Verdict {
        if self.rate <= 0.0 {
            return Verdict::Allow;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window_start) > VIOLATION_WINDOW {
            self.window_start = now;
            self.violations = 0;
        }
        self.violations += 1;
        // Refusing more than the whole window's allowance means the client
        // is not slowing down: cut it off.
        if self.violations as f64 > self.rate * VIOLATION_WINDOW.as_secs_f64() {
            Verdict::Disconnect
        } else {
            Verdict::Deny
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate_then_a_disconnect_for_a_flood() {
        let start = Instant::now();
        let mut limit = RateLimit::new(5.0, start);
        let allowed = (0..20)
            .filter(|_| limit.check(start) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 10, "a burst of twice the rate");
        // One second later, five more tokens.
        let later = start + Duration::from_secs(1);
        let allowed = (0..20)
            .filter(|_| limit.check(later) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 5);
        // Keep flooding: after the window's allowance of refusals, cut off.
        let verdicts: Vec<Verdict> = (0..100).map(|_| limit.check(later)).collect();
        assert_eq!(verdicts.last(), Some(&Verdict::Disconnect));
    }

    /// The numbers PROTOCOL.md ("Rate limits") gives a client to count
    /// on, with the default --command-rate: 1,000 commands at one instant
    /// get 100 served, 500 refused, and the next one cuts.
    #[test]
    fn the_documented_cut_at_the_default_command_rate() {
        let now = Instant::now();
        let mut limit = RateLimit::new(50.0, now);
        let verdicts: Vec<Verdict> = (0..1000).map(|_| limit.check(now)).collect();
        let served = verdicts
            .iter()
            .take_while(|v| **v == Verdict::Allow)
            .count();
        assert_eq!(served, 100, "a burst of twice the rate");
        let refused = verdicts[served..]
            .iter()
            .take_while(|v| **v == Verdict::Deny)
            .count();
        assert_eq!(refused, 500, "refused until the count passes rate x 10 s");
        assert_eq!(verdicts[served + refused], Verdict::Disconnect);
        // 500 refusals, then a window later: the bucket is full again and
        // the count of refusals starts over (refused, not cut).
        let mut patient = RateLimit::new(50.0, now);
        for _ in 0..600 {
            patient.check(now);
        }
        let later = now + VIOLATION_WINDOW + Duration::from_millis(1);
        let served = (0..100)
            .filter(|_| patient.check(later) == Verdict::Allow)
            .count();
        assert_eq!(served, 100);
        assert_eq!(patient.check(later), Verdict::Deny);
    }

    #[test]
    fn zero_means_unlimited() {
        let now = Instant::now();
        let mut limit = RateLimit::new(0.0, now);
        assert!((0..10_000).all(|_| limit.check(now) == Verdict::Allow));
    }
}
