//! Weighted round robin without a lock.
//!
//! nginx's "smooth" weighted round robin interleaves heavy and light hosts (weights 5,1,1 give
//! a a b a c a a rather than a a a a a b c) but mutates per-host state on every pick, which
//! needs a lock. Since the host list is immutable, we run that algorithm once, ahead of time, to
//! produce one full cycle (sum of weights / gcd entries, at most 128 x hosts), and each pick
//! is then one atomic increment and an array read.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{LbContext, LoadBalancer};

pub struct SmoothRoundRobin {
    schedule: Vec<u32>,
    next: AtomicUsize,
}

impl SmoothRoundRobin {
    pub fn new(weights: &[u32]) -> Self {
        let g = weights.iter().copied().fold(0, gcd).max(1);
        let weights: Vec<i64> = weights.iter().map(|w| i64::from(w / g)).collect();
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut schedule = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let Some((best, _)) = current
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
            else {
                break;
            };
            current[best] -= total;
            schedule.push(u32::try_from(best).unwrap_or(0));
        }
        // Start each instance at a random offset so many proxies (or a rebuilt cluster) do not
        // all hit the first host at once.
        let start = fastrand::usize(..schedule.len().max(1));
        SmoothRoundRobin {
            schedule,
            next: AtomicUsize::new(start),
        }
    }
}

impl LoadBalancer for SmoothRoundRobin {
    fn choose(&self, _: &LbContext) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.schedule
            .get(i % self.schedule.len().max(1))
            .map(|&h| h as usize)
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(lb: &SmoothRoundRobin, n: usize, hosts: usize) -> Vec<usize> {
        let mut c = vec![0; hosts];
        for _ in 0..n {
            c[lb.choose(&LbContext::default()).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn equal_weights_alternate() {
        let lb = SmoothRoundRobin::new(&[1, 1, 1]);
        assert_eq!(lb.schedule, vec![0, 1, 2]);
        assert_eq!(counts(&lb, 300, 3), vec![100, 100, 100]);
    }

    #[test]
    fn weights_are_exact_per_cycle_and_interleaved() {
        let lb = SmoothRoundRobin::new(&[5, 1, 1]);
        assert_eq!(lb.schedule, vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(counts(&lb, 700, 3), vec![500, 100, 100]);
    }

    #[test]
    fn no_hosts_no_choice() {
        assert_eq!(
            SmoothRoundRobin::new(&[]).choose(&LbContext::default()),
            None
        );
    }

    #[test]
    fn common_factors_shrink_the_cycle() {
        let lb = SmoothRoundRobin::new(&[20, 10]);
        assert_eq!(lb.schedule.len(), 3);
    }
}
