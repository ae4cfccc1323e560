//! Maglev consistent hashing: a lookup table filled from each host's own permutation.
//!
//! Every host walks the table in its own order (start at `offset`, step by `skip`, both from
//! hashes of its address; the table size is prime, so any step visits every entry) and the
//! hosts take turns claiming the next entry of their walk that is still free. A request goes
//! to `table[hash % size]`: one division and one read, cheaper than a ring's binary search,
//! at the price of slightly more keys moving when hosts change (a few percent, against none
//! for the ring).
//!
//! Weight: each turn a host earns its weight in credit and claims one entry per
//! `max_weight` of credit, so over the fill a host claims entries in proportion to its
//! weight. Hosts take turns in address order, so the table does not depend on how the host
//! list is ordered and every proxy builds the same one.

use std::sync::Arc;

use xxhash_rust::xxh64::xxh64;

use super::hash::hash_key;
use super::{LbContext, LoadBalancer};
use crate::host::Host;

/// Seed of the second address hash, the one `skip` comes from; any value other than
/// [`hash_key`]'s 0 makes the two independent.
const SKIP_SEED: u64 = 0x6d61_676c_6576;

/// A free table entry while filling.
const FREE: u32 = u32::MAX;

/// Used when the configured size cannot hold a permutation (config validation allows only
/// primes, so only for direct callers).
const FALLBACK_SIZE: u64 = 65_537;

pub struct Maglev {
    /// Host index of each entry; empty when there are no hosts.
    table: Vec<u32>,
}

/// One host's walk through the table.
struct Walk {
    index: u32,
    weight: u64,
    next: u64,
    skip: u64,
    credit: u64,
}

impl Maglev {
    /// `table_size` should be prime and well above the number of hosts (Maglev's authors
    /// suggest 100 times) for shares to be even; hosts beyond the table size get no entry.
    pub fn new(hosts: &[Arc<Host>], table_size: u64) -> Self {
        if hosts.is_empty() {
            return Maglev { table: Vec::new() };
        }
        let size = if table_size < 2 {
            FALLBACK_SIZE
        } else {
            table_size
        };
        let mut named: Vec<(String, usize)> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.address.to_string(), i))
            .collect();
        named.sort();
        let mut walks: Vec<Walk> = named
            .iter()
            .filter_map(|(address, i)| {
                Some(Walk {
                    index: u32::try_from(*i).ok()?,
                    weight: u64::from(hosts[*i].weight),
                    next: hash_key(address.as_bytes()) % size,
                    skip: xxh64(address.as_bytes(), SKIP_SEED) % (size - 1) + 1,
                    credit: 0,
                })
            })
            .collect();
        let max_weight = walks.iter().map(|w| w.weight).max().unwrap_or(1).max(1);

        let Ok(len) = usize::try_from(size) else {
            return Maglev { table: Vec::new() };
        };
        let mut table = vec![FREE; len];
        let mut filled = 0usize;
        // Each round the heaviest hosts claim one entry, so this ends within
        // `size` rounds; the inner walk ends because a free entry remains and the walk
        // visits every entry.
        'fill: loop {
            for walk in &mut walks {
                walk.credit += walk.weight;
                if walk.credit < max_weight {
                    continue;
                }
                walk.credit -= max_weight;
                loop {
                    let entry = walk.next as usize;
                    walk.next = (walk.next + walk.skip) % size;
                    if table[entry] == FREE {
                        table[entry] = walk.index;
                        filled += 1;
                        break;
                    }
                }
                if filled == len {
                    break 'fill;
                }
            }
        }
        Maglev { table }
    }
}

impl LoadBalancer for Maglev {
    fn choose(&self, ctx: &LbContext) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let entry = match ctx.hash {
            Some(hash) => (hash % self.table.len() as u64) as usize,
            None => fastrand::usize(..self.table.len()),
        };
        self.table.get(entry).map(|&h| h as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::testing::{
        assert_order_independent, counts, hosts, keys_kept_when_one_of_ten_leaves, near, pick,
    };

    #[test]
    fn table_shares_follow_weights() {
        let lb = Maglev::new(&hosts(&[1, 3, 2]), 65_537);
        let mut c = [0usize; 3];
        for &h in &lb.table {
            c[h as usize] += 1;
        }
        // Claims go 1:3:2 per round, so the shares are exact to within one round.
        let unit = 65_537.0 / 6.0;
        assert!(near(c[0], unit, 0.001), "{c:?}");
        assert!(near(c[1], 3.0 * unit, 0.001), "{c:?}");
        assert!(near(c[2], 2.0 * unit, 0.001), "{c:?}");
    }

    #[test]
    fn hashed_keys_follow_weights() {
        let lb = Maglev::new(&hosts(&[1, 3]), 65_537);
        let mut c = [0usize; 2];
        for key in 0..40_000u64 {
            c[pick(&lb, hash_key(&key.to_le_bytes()))] += 1;
        }
        // Expected 10,000 / 30,000, within 3%.
        assert!(near(c[0], 10_000.0, 0.03), "{c:?}");
    }

    #[test]
    fn without_a_hash_picks_follow_weights() {
        fastrand::seed(9);
        let lb = Maglev::new(&hosts(&[1, 3]), 65_537);
        let c = counts(&lb, 2, 40_000);
        // Expected 10,000 / 30,000, within 3%.
        assert!(near(c[0], 10_000.0, 0.03), "{c:?}");
    }

    #[test]
    fn same_hash_same_host_whatever_the_host_order() {
        assert_order_independent(&[1, 2, 3, 1, 1], |hs| Maglev::new(hs, 65_537));
    }

    #[test]
    fn removing_a_host_keeps_most_keys() {
        let (kept, elsewhere) = keys_kept_when_one_of_ten_leaves(|hs| Maglev::new(hs, 65_537));
        assert!(kept * 10 >= elsewhere * 9, "{kept} of {elsewhere}");
    }

    #[test]
    fn small_tables_and_no_hosts() {
        let lb = Maglev::new(&hosts(&[1, 1, 1]), 7);
        assert_eq!(lb.table.len(), 7);
        assert!(lb.table.iter().all(|&h| h < 3));
        let empty = Maglev::new(&[], 65_537);
        assert_eq!(empty.choose(&LbContext { hash: Some(1) }), None);
        assert_eq!(empty.choose(&LbContext::default()), None);
    }
}
