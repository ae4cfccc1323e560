//! Helpers for the balancers' tests: hosts with given weights, and pick counting.

use std::collections::VecDeque;
use std::sync::Arc;

use sluice_config::Address;

use super::{LbContext, LoadBalancer};
use crate::host::{Host, Locality, Metadata};

/// `10.0.<i / 250>.<i % 250 + 1>:80`, with the given weights.
pub(crate) fn hosts(weights: &[u32]) -> Vec<Arc<Host>> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let address = Address::parse(&format!("10.0.{}.{}:80", i / 250, i % 250 + 1))
                .expect("a valid address");
            Arc::new(Host::new(
                address,
                w,
                Metadata::default(),
                Locality::default(),
                0,
            ))
        })
        .collect()
}

/// How often each host is picked in `n` picks without a hash.
pub(crate) fn counts(lb: &dyn LoadBalancer, hosts: usize, n: usize) -> Vec<usize> {
    let mut c = vec![0; hosts];
    for _ in 0..n {
        c[lb.choose(&LbContext::default()).expect("a host")] += 1;
    }
    c
}

/// Picks under a steady concurrency: every pick starts a request and the oldest of more than
/// `in_flight` requests ends, so `active_requests()` reflects what the balancer did.
pub(crate) fn counts_under_load(
    lb: &dyn LoadBalancer,
    hosts: &[Arc<Host>],
    in_flight: usize,
    n: usize,
) -> Vec<usize> {
    let mut c = vec![0; hosts.len()];
    let mut open = VecDeque::with_capacity(in_flight + 1);
    for _ in 0..n {
        let i = lb.choose(&LbContext::default()).expect("a host");
        c[i] += 1;
        open.push_back(hosts[i].start_request());
        if open.len() > in_flight {
            open.pop_front();
        }
    }
    c
}

/// Whether `count` is within `tolerance` (a fraction) of `expected`.
pub(crate) fn near(count: usize, expected: f64, tolerance: f64) -> bool {
    (count as f64 - expected).abs() <= expected * tolerance
}

/// The host a hash balancer picks for `hash`.
pub(crate) fn pick(lb: &dyn LoadBalancer, hash: u64) -> usize {
    lb.choose(&LbContext { hash: Some(hash) }).expect("a host")
}

/// Asserts that a hash balancer built by `build` over `weights` sends each hash to the same
/// host every time, and to the same host (by address) when the hosts are listed in reverse.
pub(crate) fn assert_order_independent<L: LoadBalancer>(
    weights: &[u32],
    build: impl Fn(&[Arc<Host>]) -> L,
) {
    let hs = hosts(weights);
    let lb = build(&hs);
    let mut reversed = hs.clone();
    reversed.reverse();
    let rev = build(&reversed);
    for key in 0..1_000u64 {
        let h = super::hash_key(&key.to_le_bytes());
        let a = pick(&lb, h);
        assert_eq!(pick(&lb, h), a);
        assert_eq!(reversed[pick(&rev, h)].address, hs[a].address);
    }
}

/// For ten equal hosts losing the fourth: of 10,000 keys that were not on it, how many stay
/// on their host (kept, out of elsewhere).
pub(crate) fn keys_kept_when_one_of_ten_leaves<L: LoadBalancer>(
    build: impl Fn(&[Arc<Host>]) -> L,
) -> (usize, usize) {
    let hs = hosts(&[1; 10]);
    let before = build(&hs);
    let removed = hs[3].address.clone();
    let rest: Vec<_> = hs
        .iter()
        .filter(|h| h.address != removed)
        .cloned()
        .collect();
    let after = build(&rest);
    let (mut kept, mut elsewhere) = (0, 0);
    for key in 0..10_000u64 {
        let h = super::hash_key(format!("key-{key}").as_bytes());
        let a = &hs[pick(&before, h)].address;
        if *a == removed {
            continue;
        }
        elsewhere += 1;
        if rest[pick(&after, h)].address == *a {
            kept += 1;
        }
    }
    (kept, elsewhere)
}
