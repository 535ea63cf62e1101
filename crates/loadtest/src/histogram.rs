//! A log-linear latency histogram: exact below 64 ns, then 32 buckets per
//! power of two (about 3% resolution), fixed size, mergeable.

const LINEAR: usize = 64;
const SUB_BUCKETS: usize = 32;
const BUCKETS: usize = LINEAR + (64 - 6) * SUB_BUCKETS;

#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(value: u64) -> usize {
    if value < LINEAR as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros() as usize; // >= 6
    let sub = ((value >> (exponent - 5)) & (SUB_BUCKETS as u64 - 1)) as usize;
    LINEAR + (exponent - 6) * SUB_BUCKETS + sub
}

/// The largest value that falls in `bucket`.
fn upper_bound(bucket: usize) -> u64 {
    if bucket < LINEAR {
        return bucket as u64;
    }
    let exponent = (bucket - LINEAR) / SUB_BUCKETS + 6;
    let sub = ((bucket - LINEAR) % SUB_BUCKETS) as u64;
    let low = (1u64 << exponent) | (sub << (exponent - 5));
    low + (1u64 << (exponent - 5)) - 1
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        self.counts[bucket_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0..=1.0), as the upper bound of its
    /// bucket (never above the maximum seen). 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return upper_bound(bucket).min(self.max);
            }
        }
        self.max
    }

    /// (upper bound, cumulative fraction) for every non-empty bucket, for plots.
    pub fn cdf(&self) -> Vec<(u64, f64)> {
        let mut seen = 0;
        let mut points = Vec::new();
        for (bucket, count) in self.counts.iter().enumerate() {
            if *count > 0 {
                seen += count;
                points.push((
                    upper_bound(bucket).min(self.max),
                    seen as f64 / self.total as f64,
                ));
            }
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order_within_three_percent() {
        for value in [
            0u64,
            1,
            63,
            64,
            65,
            100,
            1_000,
            123_456,
            10_000_000,
            u64::MAX / 2,
        ] {
            let bucket = bucket_of(value);
            assert!(upper_bound(bucket) >= value, "{value}");
            if bucket > 0 {
                assert!(upper_bound(bucket - 1) < value, "{value}");
            }
            assert!((upper_bound(bucket) - value) as f64 <= value as f64 * 0.032 + 1.0);
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut histogram = Histogram::default();
        for value in 1..=1000u64 {
            histogram.record(value * 1000);
        }
        let p50 = histogram.quantile(0.5) as f64;
        assert!((p50 - 500_000.0).abs() / 500_000.0 < 0.04, "{p50}");
        assert_eq!(histogram.quantile(1.0), 1_000_000);
        let mut other = Histogram::default();
        other.record(5);
        histogram.merge(&other);
        assert_eq!(histogram.count(), 1001);
        assert_eq!(histogram.quantile(0.0), 5);
    }
}
