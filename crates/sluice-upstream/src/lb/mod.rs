//! Load balancers. Each picks a host index from a fixed host list; none takes a lock, because a
//! pick happens on every new upstream connection on every worker.

mod random;
mod round_robin;

pub use random::WeightedRandom;
pub use round_robin::SmoothRoundRobin;

use sluice_config::LbPolicy;

/// Picks the index of the next host. Implementations are built for one host list and are
/// replaced, not mutated, when the list changes.
pub trait LoadBalancer: Send + Sync + 'static {
    fn choose(&self) -> usize;
}

pub fn build(policy: LbPolicy, weights: &[u32]) -> Box<dyn LoadBalancer> {
    match policy {
        LbPolicy::RoundRobin => Box::new(SmoothRoundRobin::new(weights)),
        LbPolicy::Random => Box::new(WeightedRandom::new(weights)),
    }
}
