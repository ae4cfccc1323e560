//! Weighted least request: power of `choice_count` choices.
//!
//! Each pick draws `choice_count` candidates and keeps the one with the fewest requests in
//! flight per unit of weight, so a slow or overloaded host, whose requests pile up, loses
//! comparisons until it catches up.
//!
//! With unequal weights Envoy schedules hosts by an effective weight of
//! `weight / (active + 1)`, either with a shared earliest-deadline schedule (mutated on every
//! pick, so it would need a lock here) or as a weighted random over every host (reading every
//! host's counter: microseconds with a thousand hosts). Instead the candidates are drawn in
//! proportion to weight (see `choices.rs`) and compared by `active / weight`, ties keeping the
//! earlier draw: an idle cluster splits exactly by weight, and a loaded one settles where
//! requests in flight are proportional to weight, which is what the effective weight aims
//! at. A pick costs `choice_count` draws and counter reads, O(log n) each.

use std::sync::Arc;

use super::choices::Draw;
use super::{LbContext, LoadBalancer};
use crate::host::Host;

pub struct LeastRequest {
    hosts: Vec<Arc<Host>>,
    draw: Draw,
    /// Candidates per pick, at least 1.
    choices: u32,
}

impl LeastRequest {
    pub fn new(hosts: &[Arc<Host>], choice_count: u32) -> Self {
        let weights: Vec<u32> = hosts.iter().map(|h| h.weight).collect();
        LeastRequest {
            hosts: hosts.to_vec(),
            draw: Draw::new(&weights),
            choices: choice_count.max(1),
        }
    }

    /// Requests in flight and weight, the two sides of the comparison.
    fn load(&self, i: usize) -> (u64, u64) {
        let h = &self.hosts[i];
        (u64::from(h.active_requests()), u64::from(h.weight))
    }
}

impl LoadBalancer for LeastRequest {
    fn choose(&self, _: &LbContext) -> Option<usize> {
        let mut best = self.draw.one()?;
        let (mut best_active, mut best_weight) = self.load(best);
        for _ in 1..self.choices {
            let c = self.draw.other(best);
            let (active, weight) = self.load(c);
            // active / weight < best_active / best_weight, without division.
            if active * best_weight < best_active * weight {
                (best, best_active, best_weight) = (c, active, weight);
            }
        }
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::testing::{counts, counts_under_load, hosts, near};

    #[test]
    fn equal_weights_spread_evenly_when_idle() {
        fastrand::seed(1);
        let lb = LeastRequest::new(&hosts(&[1, 1, 1]), 2);
        let c = counts(&lb, 3, 30_000);
        // Expected 10,000 each, within 3%.
        assert!(c.iter().all(|&n| near(n, 10_000.0, 0.03)), "{c:?}");
    }

    #[test]
    fn unequal_weights_split_by_weight_when_idle() {
        fastrand::seed(2);
        let lb = LeastRequest::new(&hosts(&[3, 1]), 2);
        let c = counts(&lb, 2, 40_000);
        // Expected 30,000 / 10,000, within 3%.
        assert!(
            near(c[0], 30_000.0, 0.03) && near(c[1], 10_000.0, 0.03),
            "{c:?}"
        );
    }

    #[test]
    fn unequal_weights_split_by_weight_under_load() {
        fastrand::seed(3);
        let hs = hosts(&[3, 1, 2]);
        let lb = LeastRequest::new(&hs, 2);
        let c = counts_under_load(&lb, &hs, 60, 60_000);
        // Expected 30,000 / 10,000 / 20,000, within 5%.
        assert!(near(c[0], 30_000.0, 0.05), "{c:?}");
        assert!(near(c[1], 10_000.0, 0.05), "{c:?}");
        assert!(near(c[2], 20_000.0, 0.05), "{c:?}");
    }

    #[test]
    fn a_loaded_host_is_avoided() {
        fastrand::seed(4);
        let hs = hosts(&[1, 1, 1]);
        let lb = LeastRequest::new(&hs, 2);
        let _held: Vec<_> = (0..5).map(|_| hs[0].start_request()).collect();
        // Two distinct candidates always include an idle host.
        let c = counts(&lb, 3, 1_000);
        assert_eq!(c[0], 0, "{c:?}");
    }

    #[test]
    fn more_choices_find_the_idle_host() {
        fastrand::seed(5);
        let hs = hosts(&[1; 8]);
        let lb = LeastRequest::new(&hs, 8);
        let _held: Vec<_> = hs[1..].iter().map(|h| h.start_request()).collect();
        let c = counts(&lb, 8, 1_000);
        // Eight distinct-from-the-best draws find host 0 in most picks.
        assert!(c[0] > 600, "{c:?}");
    }

    #[test]
    fn weighted_comparison_uses_load_per_weight() {
        fastrand::seed(6);
        let hs = hosts(&[4, 1]);
        let lb = LeastRequest::new(&hs, 2);
        // 3 in flight on weight 4 (0.75 each) beats 1 on weight 1.
        let _a: Vec<_> = (0..3).map(|_| hs[0].start_request()).collect();
        let _b = hs[1].start_request();
        let c = counts(&lb, 2, 1_000);
        assert!(c[0] > 950, "{c:?}");
    }

    #[test]
    fn no_hosts_no_choice() {
        assert_eq!(
            LeastRequest::new(&[], 2).choose(&LbContext::default()),
            None
        );
    }
}
