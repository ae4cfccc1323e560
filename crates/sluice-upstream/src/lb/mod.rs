//! Load balancers: each picks one host from a fixed list, and is rebuilt, not mutated, when
//! the list changes (membership or health). None takes a lock: a pick happens on every request
//! on every worker.
//!
//! A balancer is built for one group of hosts (one priority level and locality tier of one
//! subset, see [`crate::snapshot`]); which group a request goes to is decided before the
//! balancer is asked.

mod choices;
mod hash;
mod least_request;
mod maglev;
mod random;
mod ring_hash;
mod round_robin;

pub mod peak_ewma;

#[cfg(test)]
mod testing;

pub use hash::{hash_ip, hash_key};
pub use least_request::LeastRequest;
pub use maglev::Maglev;
pub use peak_ewma::PeakEwma;
pub use random::WeightedRandom;
pub use ring_hash::RingHash;
pub use round_robin::SmoothRoundRobin;

use std::sync::Arc;

use sluice_config::{LbConfig, LbPolicy};

use crate::host::Host;

/// What a request brings to the choice.
#[derive(Debug, Clone, Copy, Default)]
pub struct LbContext {
    /// The request's hash from the route's `hash_policy` ([`hash_key`] of the chosen values);
    /// `None` when the route has none or no policy applied, and hash balancers pick at random.
    pub hash: Option<u64>,
}

/// Picks a host.
pub trait LoadBalancer: Send + Sync + 'static {
    /// An index into the hosts the balancer was built with; `None` only when there are none.
    fn choose(&self, ctx: &LbContext) -> Option<usize>;
}

/// Builds a balancer for `hosts` (each with its weight) under the cluster's options.
pub type Build = fn(hosts: &[Arc<Host>], config: &LbConfig) -> Box<dyn LoadBalancer>;

/// The balancer of each policy, by the name config uses.
pub fn builder(policy: LbPolicy) -> Build {
    match policy {
        LbPolicy::RoundRobin => |hosts, _| Box::new(SmoothRoundRobin::new(&weights(hosts))),
        LbPolicy::Random => |hosts, _| Box::new(WeightedRandom::new(&weights(hosts))),
        LbPolicy::LeastRequest => |hosts, c| Box::new(LeastRequest::new(hosts, c.choice_count)),
        LbPolicy::RingHash => |hosts, c| {
            Box::new(RingHash::new(
                hosts,
                c.minimum_ring_size,
                c.maximum_ring_size,
            ))
        },
        LbPolicy::Maglev => |hosts, c| Box::new(Maglev::new(hosts, c.maglev_table_size)),
        LbPolicy::PeakEwma => |hosts, c| {
            Box::new(PeakEwma::new(
                hosts,
                c.peak_ewma_decay,
                c.peak_ewma_default_rtt,
            ))
        },
    }
}

pub fn build(policy: LbPolicy, hosts: &[Arc<Host>], config: &LbConfig) -> Box<dyn LoadBalancer> {
    builder(policy)(hosts, config)
}

fn weights(hosts: &[Arc<Host>]) -> Vec<u32> {
    hosts.iter().map(|h| h.weight).collect()
}
