//! All clusters, swappable as one snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sluice_config::Config;

use crate::cluster::Cluster;

/// The clusters of the current config. Readers take the map lock-free per connection; an update
/// publishes a whole new map, and connections that already picked a cluster keep it.
pub struct ClusterManager {
    clusters: ArcSwap<HashMap<Arc<str>, Arc<Cluster>>>,
}

impl ClusterManager {
    /// Fails when a cluster cannot be built (its TLS settings), naming the cluster.
    pub fn new(config: &Config, secrets: &sluice_net::Secrets) -> Result<Self, String> {
        Ok(ClusterManager {
            clusters: ArcSwap::from_pointee(Self::build(config, secrets)?),
        })
    }

    /// Background work (outlier sweeps, health checks, DNS refreshes) runs on the runtime
    /// current when this is called; without one, none runs.
    fn build(
        config: &Config,
        secrets: &sluice_net::Secrets,
    ) -> Result<HashMap<Arc<str>, Arc<Cluster>>, String> {
        config
            .clusters
            .iter()
            .map(|c| {
                let cluster = Arc::new(Cluster::with_secrets(c, secrets)?);
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    cluster.run_rebuilds_on(runtime);
                }
                crate::outlier::spawn_sweep(&cluster);
                crate::health::spawn_for(&cluster);
                crate::dns::spawn_for(&cluster);
                Ok((cluster.name.clone(), cluster))
            })
            .collect()
    }

    /// Every cluster, sorted by name.
    pub fn all(&self) -> Vec<Arc<Cluster>> {
        let mut v: Vec<Arc<Cluster>> = self.clusters.load().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The clusters' computed gauges (members, requests in flight), for the stats store to
    /// read at each snapshot; it holds the manager weakly.
    pub fn stats_source(self: &Arc<Self>) -> sluice_stats::Source {
        let manager = Arc::downgrade(self);
        Box::new(move |out| {
            if let Some(m) = manager.upgrade() {
                for c in m.all() {
                    crate::stats::gauges(&c, out);
                }
            }
        })
    }

    pub fn get(&self, name: &str) -> Option<Arc<Cluster>> {
        self.clusters.load().get(name).cloned()
    }

    /// Replaces every cluster with the ones `config` describes.
    pub fn update(&self, config: &Config, secrets: &sluice_net::Secrets) -> Result<(), String> {
        self.clusters.store(Arc::new(Self::build(config, secrets)?));
        Ok(())
    }
}
