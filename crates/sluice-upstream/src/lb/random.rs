//! Weighted random: a uniform draw over the cumulative weights, found by binary search.

use super::{LbContext, LoadBalancer};

pub struct WeightedRandom {
    /// Running totals of the weights; the last entry is the sum.
    cumulative: Vec<u64>,
}

impl WeightedRandom {
    pub fn new(weights: &[u32]) -> Self {
        let mut sum = 0u64;
        let cumulative = weights
            .iter()
            .map(|w| {
                sum += u64::from(*w);
                sum
            })
            .collect();
        WeightedRandom { cumulative }
    }
}

impl LoadBalancer for WeightedRandom {
    fn choose(&self, _: &LbContext) -> Option<usize> {
        let total = self.cumulative.last().copied().unwrap_or(0);
        if total == 0 {
            return None;
        }
        let r = fastrand::u64(..total);
        Some(self.cumulative.partition_point(|&c| c <= r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_weights_within_tolerance() {
        fastrand::seed(7);
        let lb = WeightedRandom::new(&[3, 1]);
        let mut c = [0usize; 2];
        for _ in 0..40_000 {
            c[lb.choose(&LbContext::default()).unwrap()] += 1;
        }
        // Expected 30,000 / 10,000; a fixed seed keeps this deterministic.
        assert!((29_000..31_000).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn never_out_of_range() {
        let lb = WeightedRandom::new(&[1, 1, 1]);
        for _ in 0..1000 {
            assert!(lb.choose(&LbContext::default()).unwrap() < 3);
        }
    }
}
