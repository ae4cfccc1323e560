//! Drawing candidates for the power-of-choices balancers (`least_request`, `peak_ewma`).
//!
//! Candidates are drawn in proportion to weight, so when every candidate looks the same (an
//! idle cluster, or hosts that answer equally fast) keeping the first draw splits traffic
//! exactly by weight; the balancers then compare load per unit of weight, so under load the
//! split still follows the weights. With equal weights a draw is one uniform number; otherwise
//! it is a binary search over the running totals, O(log n) either way.

/// Draws host indices; immutable, so shared by every worker without a lock.
pub(crate) struct Draw {
    /// Running totals of the weights; empty when all weights are equal (then draws are
    /// uniform over `len`).
    cumulative: Vec<u64>,
    len: usize,
}

/// How many times a weighted draw is repeated to find a host other than the one in hand. A
/// heavy host may keep coming up; after this many tries the duplicate is kept, which only
/// means the comparison is skipped for that pick.
const REDRAWS: usize = 4;

impl Draw {
    pub(crate) fn new(weights: &[u32]) -> Self {
        let equal = weights.windows(2).all(|w| w[0] == w[1]);
        let cumulative = if equal {
            Vec::new()
        } else {
            let mut sum = 0u64;
            weights
                .iter()
                .map(|w| {
                    sum += u64::from(*w);
                    sum
                })
                .collect()
        };
        Draw {
            cumulative,
            len: weights.len(),
        }
    }

    /// Whether every host has the same weight (comparisons may then ignore weight).
    pub(crate) fn equal_weights(&self) -> bool {
        self.cumulative.is_empty()
    }

    /// One host, in proportion to weight; `None` with no hosts.
    pub(crate) fn one(&self) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        Some(match self.cumulative.last() {
            None => fastrand::usize(..self.len),
            Some(&total) => {
                let r = fastrand::u64(..total);
                self.cumulative.partition_point(|&c| c <= r)
            }
        })
    }

    /// A host other than `not` where there is one: exact for equal weights (a uniform draw
    /// over the others), a bounded number of redraws otherwise.
    pub(crate) fn other(&self, not: usize) -> usize {
        if self.len < 2 {
            return not;
        }
        if self.equal_weights() {
            let i = fastrand::usize(..self.len - 1);
            return if i >= not { i + 1 } else { i };
        }
        let mut i = not;
        for _ in 0..REDRAWS {
            i = self.one().unwrap_or(not);
            if i != not {
                break;
            }
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_weights() {
        fastrand::seed(11);
        let d = Draw::new(&[1, 3]);
        let mut c = [0usize; 2];
        for _ in 0..40_000 {
            c[d.one().unwrap()] += 1;
        }
        // Expected 10,000 / 30,000.
        assert!((9_500..10_500).contains(&c[0]), "{c:?}");
    }

    #[test]
    fn other_avoids_the_given_host() {
        fastrand::seed(3);
        let equal = Draw::new(&[1, 1, 1]);
        let weighted = Draw::new(&[1, 2, 3]);
        for _ in 0..1000 {
            let i = equal.other(1);
            assert!(i < 3 && i != 1);
            assert!(weighted.other(2) < 3);
        }
        assert_eq!(Draw::new(&[5]).other(0), 0);
        assert_eq!(Draw::new(&[]).one(), None);
    }
}
