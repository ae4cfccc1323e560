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
