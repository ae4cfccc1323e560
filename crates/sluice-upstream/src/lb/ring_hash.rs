//! Consistent hashing on a ring (Ketama-style).
//!
//! Every host gets points on a 64-bit ring, as many as its share of the weight calls for; a
//! request's hash goes to the first point at or after it, wrapping past the end. When a host
//! leaves, only the keys that fell on its arcs move: the others keep their host, which is
//! what makes this the policy for caches and sticky sessions.
//!
//! A point's position is [`hash_key`] of `"<address>_<replica>"`, so it depends on the host
//! alone: every proxy, whatever order its hosts are listed in, builds the same ring. The ring
//! is two sorted arrays (positions, and the host of each), so a lookup is one binary search
//! over cache-friendly `u64`s.

use std::fmt::Write;
use std::sync::Arc;

use super::hash::hash_key;
use super::{LbContext, LoadBalancer};
use crate::host::Host;

pub struct RingHash {
    /// Point positions, ascending.
    points: Vec<u64>,
    /// The host index of each point.
    owners: Vec<u32>,
}

impl RingHash {
    /// A ring of at least `minimum_ring_size` points (up to twice that), with the same whole
    /// number of points per unit of weight for every host, so shares follow the weights
    /// exactly; capped at `maximum_ring_size`, beyond which shares are rounded down (each host
    /// keeping one point).
    ///
    /// The points per unit of weight are a power of two: then adding or removing a host
    /// seldom changes them, and the hosts that stay keep exactly their points (and keys).
    /// Scaling to the exact minimum would change every host's count on every membership
    /// change and move keys between hosts that did not change.
    pub fn new(hosts: &[Arc<Host>], minimum_ring_size: u64, maximum_ring_size: u64) -> Self {
        let total: u64 = hosts.iter().map(|h| u64::from(h.weight)).sum();
        if total == 0 {
            return RingHash {
                points: Vec::new(),
                owners: Vec::new(),
            };
        }
        let per_weight = minimum_ring_size.div_ceil(total).max(1).next_power_of_two();
        let size = (total * per_weight).min(maximum_ring_size.max(1));

        let mut ring: Vec<(u64, u32)> = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        let mut key = String::new();
        for (index, host) in hosts.iter().enumerate() {
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            let share = u128::from(host.weight) * u128::from(size) / u128::from(total);
            let replicas = u64::try_from(share).unwrap_or(u64::MAX).max(1);
            key.clear();
            // Writing to a String cannot fail.
            let _ = write!(key, "{}_", host.address);
            let prefix = key.len();
            for replica in 0..replicas {
                key.truncate(prefix);
                let _ = write!(key, "{replica}");
                ring.push((hash_key(key.as_bytes()), index));
            }
        }
        // Equal positions (vanishingly rare with 64 bits) are ordered by address, not by list
        // order, so that every proxy still agrees.
        ring.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                let (x, y) = (&hosts[a.1 as usize].address, &hosts[b.1 as usize].address);
                x.to_string().cmp(&y.to_string())
            })
        });
        let (points, owners) = ring.into_iter().unzip();
        RingHash { points, owners }
    }

    /// How many points the ring has.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

impl LoadBalancer for RingHash {
    fn choose(&self, ctx: &LbContext) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let point = match ctx.hash {
            Some(hash) => {
                let i = self.points.partition_point(|&p| p < hash);
                if i == self.points.len() {
                    0
                } else {
                    i
                }
            }
            // A uniform point, not a random hash: points are spread by weight, arcs are not.
            None => fastrand::usize(..self.points.len()),
        };
        self.owners.get(point).map(|&h| h as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::testing::{
        assert_order_independent, counts, hosts, keys_kept_when_one_of_ten_leaves, near, pick,
    };

    #[test]
    fn ring_size_follows_weights_and_bounds() {
        let lb = RingHash::new(&hosts(&[1, 2]), 1024, 8 << 20);
        // 1,024 / 3 rounds up to 512 points per unit of weight.
        assert_eq!(lb.len(), 1536);
        assert_eq!(lb.owners.iter().filter(|&&o| o == 1).count(), 1024);
        let capped = RingHash::new(&hosts(&[1; 10]), 100_000, 1_000);
        assert_eq!(capped.len(), 1_000);
        // Every host keeps a point even when the cap rounds its share to zero.
        let tiny = RingHash::new(&hosts(&[1, 1, 1]), 1, 1);
        assert_eq!(tiny.len(), 3);
    }

    #[test]
    fn same_hash_same_host_whatever_the_host_order() {
        assert_order_independent(&[1, 2, 3, 1], |hs| RingHash::new(hs, 1024, 8 << 20));
    }

    #[test]
    fn removing_a_host_moves_only_its_keys() {
        let (kept, elsewhere) =
            keys_kept_when_one_of_ten_leaves(|hs| RingHash::new(hs, 1024, 8 << 20));
        assert!(kept * 10 >= elsewhere * 9, "{kept} of {elsewhere}");
        // 128 points per host with 10 hosts or 9: the others keep every point, so none move.
        assert_eq!(kept, elsewhere);
    }

    #[test]
    fn hashed_keys_follow_weights() {
        let lb = RingHash::new(&hosts(&[1, 3]), 16_384, 8 << 20);
        let mut c = [0usize; 2];
        for key in 0..40_000u64 {
            c[pick(&lb, hash_key(&key.to_le_bytes()))] += 1;
        }
        // Expected 10,000 / 30,000; arcs vary, so within 5%.
        assert!(near(c[0], 10_000.0, 0.05), "{c:?}");
    }

    #[test]
    fn without_a_hash_picks_follow_weights() {
        fastrand::seed(8);
        let lb = RingHash::new(&hosts(&[1, 3]), 1024, 8 << 20);
        let c = counts(&lb, 2, 40_000);
        // Expected 10,000 / 30,000, within 3%.
        assert!(near(c[0], 10_000.0, 0.03), "{c:?}");
    }

    #[test]
    fn wraps_past_the_last_point() {
        let lb = RingHash::new(&hosts(&[1, 1]), 16, 16);
        let last = *lb.points.last().unwrap();
        if last < u64::MAX {
            assert_eq!(pick(&lb, last + 1), lb.owners[0] as usize);
        }
        assert_eq!(pick(&lb, 0), lb.owners[0] as usize);
    }

    #[test]
    fn no_hosts_no_choice() {
        let lb = RingHash::new(&[], 1024, 8 << 20);
        assert!(lb.is_empty());
        assert_eq!(lb.choose(&LbContext { hash: Some(1) }), None);
        assert_eq!(lb.choose(&LbContext::default()), None);
    }
}
