//! A probe wrapper that counts attempts and results in the cluster's stats
//! (`health_check.attempt`, `.success`, `.failure`).

use std::sync::Arc;

use sluice_config::Address;

use super::probe::{Probe, ProbeFuture};
use crate::stats::ClusterStats;

pub struct Counted {
    pub inner: Arc<dyn Probe>,
    pub stats: Arc<ClusterStats>,
}

impl Probe for Counted {
    fn check<'a>(&'a self, address: &'a Address, hostname: Option<&'a str>) -> ProbeFuture<'a> {
        Box::pin(async move {
            ClusterStats::add(&self.stats.health_check_attempt);
            let result = self.inner.check(address, hostname).await;
            ClusterStats::add(match &result {
                Ok(()) => &self.stats.health_check_success,
                Err(_) => &self.stats.health_check_failure,
            });
            result
        })
    }
}
