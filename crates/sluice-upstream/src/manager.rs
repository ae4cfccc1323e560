//! All clusters, swappable as one snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use sluice_config::{ClusterConfig, Config};

use crate::cluster::{socket_hosts, Cluster};
use crate::host::Host;

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
                let cluster = Self::start(c, secrets)?;
                Ok((cluster.name.clone(), cluster))
            })
            .collect()
    }

    fn start(c: &ClusterConfig, secrets: &sluice_net::Secrets) -> Result<Arc<Cluster>, String> {
        let cluster = Arc::new(Cluster::with_secrets(c, secrets)?);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            cluster.run_rebuilds_on(runtime);
        }
        crate::outlier::spawn_sweep(&cluster);
        crate::health::spawn_for(&cluster);
        crate::dns::spawn_for(&cluster);
        Ok(cluster)
    }

    /// The clusters `config` describes, built but not in force (see [`Self::commit`]): those
    /// `changes` keeps are the running ones; a static cluster whose endpoints alone changed
    /// keeps its running self too, with its members replaced at commit (hosts that stay
    /// keep their health, counters and pools); the others are new. Fails, naming the
    /// cluster, when one cannot be built.
    pub fn prepare(
        &self,
        config: &Config,
        secrets: &sluice_net::Secrets,
        changes: &sluice_config::diff::Delta,
    ) -> Result<Prepared, String> {
        let current = self.clusters.load();
        let mut clusters = HashMap::with_capacity(config.clusters.len());
        let mut members = Vec::new();
        for c in &config.clusters {
            let running = current.get(c.name.as_str());
            let cluster = match running {
                Some(r) if changes.keeps(&c.name) => r.clone(),
                Some(r) if changes.endpoints_only.contains(&c.name) && !c.discovery.uses_dns() => {
                    let hosts = r.reuse_all(socket_hosts(c));
                    members.push((r.clone(), hosts));
                    r.clone()
                }
                _ => Self::start(c, secrets)?,
            };
            clusters.insert(cluster.name.clone(), cluster);
        }
        Ok(Prepared { clusters, members })
    }

    /// Puts prepared clusters in force: requests from now on see them; those already
    /// holding a removed or replaced cluster finish on it.
    pub fn commit(&self, prepared: Prepared) {
        for (cluster, hosts) in prepared.members {
            cluster.set_members(hosts);
        }
        self.clusters.store(Arc::new(prepared.clusters));
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
}

/// Clusters built for a config not yet in force.
pub struct Prepared {
    clusters: HashMap<Arc<str>, Arc<Cluster>>,
    /// Running clusters whose members change at commit.
    members: Vec<(Arc<Cluster>, Vec<Arc<Host>>)>,
}
