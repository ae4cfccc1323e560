//! A cluster: a named set of interchangeable hosts, and the published snapshot that arranges
//! them for picking.
//!
//! The snapshot is rebuilt (read-copy-update) when membership changes (DNS) or a host's
//! health changes (health checks, outlier detection); requests load it lock-free. Rebuilds use
//! `ArcSwap::rcu`, so two racing rebuilds cannot publish a state older than the flags they read.

use std::sync::Arc;

use arc_swap::ArcSwap;
use sluice_config::{ClusterConfig, LbPolicy};

use crate::breakers::Breakers;
use crate::group::GroupParams;
use crate::host::{Host, Locality, Metadata};
use crate::snapshot::ClusterSnapshot;
use crate::stats::ClusterStats;

pub struct Cluster {
    pub name: Arc<str>,
    pub config: Arc<ClusterConfig>,
    pub stats: Arc<ClusterStats>,
    pub breakers: Arc<Breakers>,
    params: GroupParams,
    snapshot: ArcSwap<ClusterSnapshot>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("hosts", &self.snapshot.load().hosts())
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// The cluster with its configured socket endpoints as members. A DNS cluster starts
    /// with only its IP-literal endpoints; its resolver adds the rest.
    pub fn from_config(config: &ClusterConfig) -> Cluster {
        let hosts: Vec<Arc<Host>> = config
            .endpoints
            .iter()
            .filter_map(|e| Some(Arc::new(host_of(e, e.address.socket()?.clone()))))
            .collect();
        let params = GroupParams {
            policy: config.lb_policy,
            lb_config: config.lb_config,
            local: config.local_locality.clone(),
            overprovisioning_factor: config.overprovisioning_factor,
            healthy_panic_threshold: config.healthy_panic_threshold,
        };
        let snapshot = ClusterSnapshot::new(hosts, &params, &config.subset);
        Cluster {
            name: config.name.as_str().into(),
            config: Arc::new(config.clone()),
            stats: Arc::new(ClusterStats::default()),
            breakers: Arc::new(Breakers::new(config.circuit_breakers)),
            params,
            snapshot: ArcSwap::from_pointee(snapshot),
        }
    }

    /// The current arrangement. Hold it briefly: take what you need and drop it.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<ClusterSnapshot>> {
        self.snapshot.load()
    }

    pub fn lb_policy(&self) -> LbPolicy {
        self.params.policy
    }

    /// The current members.
    pub fn hosts(&self) -> Vec<Arc<Host>> {
        self.snapshot.load().hosts().to_vec()
    }

    /// Re-arranges the current members after a health change.
    pub fn health_changed(&self) {
        self.snapshot.rcu(|current| {
            ClusterSnapshot::new(current.hosts().to_vec(), &self.params, &self.config.subset)
        });
    }

    /// Replaces the members. Hosts that stay should be passed as the same `Arc`s (see
    /// [`Cluster::reuse`]), so they keep their health, counters and pools.
    pub fn set_members(&self, hosts: Vec<Arc<Host>>) {
        self.snapshot
            .rcu(|_| ClusterSnapshot::new(hosts.clone(), &self.params, &self.config.subset));
    }

    /// The current member equal to `candidate` (same address, weight, metadata, locality and
    /// priority) if there is one, else `candidate` itself.
    pub fn reuse(&self, candidate: Host) -> Arc<Host> {
        self.snapshot
            .load()
            .hosts()
            .iter()
            .find(|h| h.same_endpoint(&candidate))
            .cloned()
            .unwrap_or_else(|| Arc::new(candidate))
    }
}

/// The host an endpoint describes, at `address`.
pub fn host_of(e: &sluice_config::EndpointConfig, address: sluice_config::Address) -> Host {
    Host::new(
        address,
        e.weight,
        Metadata::new(
            e.metadata
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str()))),
        ),
        Locality {
            region: e.region.as_str().into(),
            zone: e.zone.as_str().into(),
            sub_zone: e.sub_zone.as_str().into(),
        },
        e.priority,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::health;
    use crate::lb::LbContext;

    fn cluster(yaml: &str) -> Cluster {
        Cluster::from_config(&crate::testing::cluster_config(yaml))
    }

    #[test]
    fn endpoints_become_hosts_with_their_attributes() {
        let c = cluster(
            "{ name: c, local_zone: z1, endpoints: [{ address: \"127.0.0.1:1\", weight: 3, metadata: { version: v1 }, region: r, zone: z1, sub_zone: s, priority: 1 }] }",
        );
        let hosts = c.hosts();
        let h = &hosts[0];
        assert_eq!(h.weight, 3);
        assert_eq!(h.metadata.get("version"), Some("v1"));
        assert_eq!(&*h.locality.zone, "z1");
        assert_eq!(&*h.locality.region, "r");
        assert_eq!(&*h.locality.sub_zone, "s");
        assert_eq!(h.priority, 1);
    }

    #[test]
    fn health_changes_republish() {
        let c = cluster(
            "{ name: c, endpoints: [{ address: \"127.0.0.1:1\" }, { address: \"127.0.0.1:2\" }] }",
        );
        let hosts = c.hosts();
        hosts[0].set_health_flag(health::FAILED_ACTIVE_HC, true);
        c.health_changed();
        for _ in 0..10 {
            let snap = c.snapshot();
            let h = snap.all.choose(&LbContext::default()).unwrap();
            assert!(Arc::ptr_eq(h, &hosts[1]));
        }
    }

    #[test]
    fn members_are_reused_by_identity() {
        let c = cluster("{ name: c, endpoints: [{ address: \"127.0.0.1:1\" }] }");
        let old = c.hosts()[0].clone();
        let same = c.reuse(Host::plain(
            sluice_config::Address::parse("127.0.0.1:1").unwrap(),
        ));
        assert!(Arc::ptr_eq(&old, &same));
        let new = c.reuse(Host::plain(
            sluice_config::Address::parse("127.0.0.1:2").unwrap(),
        ));
        assert!(!Arc::ptr_eq(&old, &new));
        c.set_members(vec![same, new]);
        assert_eq!(c.hosts().len(), 2);
    }
}
