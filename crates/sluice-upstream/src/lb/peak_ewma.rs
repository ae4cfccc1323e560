//! Peak-EWMA (latency-aware) balancing. Placeholder: the estimate is added with the balancer.

/// A host's latency estimate.
#[derive(Debug, Default)]
pub struct Ewma {}
