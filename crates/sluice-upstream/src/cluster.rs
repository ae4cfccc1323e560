//! A cluster: a named set of interchangeable hosts, and the published snapshot that arranges
//! them for picking.
//!
//! The snapshot is rebuilt (read-copy-update) when membership changes (DNS) or a host's
//! health changes (health checks, outlier detection); requests load it lock-free. Rebuilds use
//! `ArcSwap::rcu`, so two racing rebuilds cannot publish a state older than the flags they read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use arc_swap::ArcSwap;
use sluice_config::{ClusterConfig, LbPolicy};

use crate::breakers::Breakers;
use crate::group::GroupParams;
use crate::host::{Host, Locality, Metadata};
use crate::lb::LbContext;
use crate::snapshot::ClusterSnapshot;
use crate::stats::ClusterStats;

/// Why no host could be picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoHost {
    /// The cluster has no members.
    Empty,
    /// The route's `metadata_match` names no subset, and `fallback_policy` is `no_fallback`.
    NoSubset,
}

pub struct Cluster {
    pub name: Arc<str>,
    pub config: Arc<ClusterConfig>,
    pub stats: Arc<ClusterStats>,
    pub breakers: Arc<Breakers>,
    /// TLS to the hosts (the cluster's `tls:`), built once; `None`: plaintext.
    pub tls: Option<Arc<sluice_net::TlsClient>>,
    /// `transport_socket_matches`, built: the labels a host's must include, and its TLS.
    transport_matches: Vec<(Metadata, Option<Arc<sluice_net::TlsClient>>)>,
    params: GroupParams,
    snapshot: ArcSwap<ClusterSnapshot>,
    /// Where rebuilds asked for from the data path run (the control runtime), and this
    /// cluster, weakly; unset in tests and benches, where they run in place.
    background: OnceLock<(tokio::runtime::Handle, Weak<Cluster>)>,
    /// A background rebuild is queued and has not started yet.
    rebuild_queued: AtomicBool,
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
    /// with only its IP-literal endpoints; its resolver adds the rest. Fails when its TLS
    /// settings cannot be built (a key that does not match its certificate).
    pub fn from_config(config: &ClusterConfig) -> Result<Cluster, String> {
        Self::with_secrets(config, &sluice_net::Secrets::new())
    }

    /// As [`Cluster::from_config`], with the TLS files and SDS secrets registered in
    /// `secrets` (the process's, so they are watched and subscribed to).
    pub fn with_secrets(
        config: &ClusterConfig,
        secrets: &sluice_net::Secrets,
    ) -> Result<Cluster, String> {
        if config
            .tls
            .as_ref()
            .is_some_and(|t| matches!(t.trust, sluice_config::UpstreamTrust::InsecureSkipVerify))
        {
            tracing::warn!(
                cluster = %config.name,
                "tls has insecure_skip_verify: true; the servers' certificates are not verified"
            );
        }
        let tls = match &config.tls {
            Some(tls) => Some(Arc::new(
                sluice_net::TlsClient::build(tls, secrets)
                    .map_err(|e| format!("cluster \"{}\": tls: {e}", config.name))?,
            )),
            None => None,
        };
        let mut transport_matches = Vec::with_capacity(config.transport_socket_matches.len());
        for m in &config.transport_socket_matches {
            let tls = match &m.tls {
                Some(tls) => Some(Arc::new(
                    sluice_net::TlsClient::build(tls, secrets).map_err(|e| {
                        format!(
                            "cluster \"{}\": transport_socket_matches \"{}\": tls: {e}",
                            config.name, m.name
                        )
                    })?,
                )),
                None => None,
            };
            let labels = Metadata::new(
                m.labels
                    .iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str()))),
            );
            transport_matches.push((labels, tls));
        }
        let hosts: Vec<Arc<Host>> = socket_hosts(config).map(Arc::new).collect();
        let params = GroupParams {
            policy: config.lb_policy,
            lb_config: config.lb_config,
            local: config.local_locality.clone(),
            overprovisioning_factor: config.overprovisioning_factor,
            healthy_panic_threshold: config.healthy_panic_threshold,
        };
        let snapshot = ClusterSnapshot::new(hosts, &params, &config.subset);
        Ok(Cluster {
            name: config.name.as_str().into(),
            config: Arc::new(config.clone()),
            stats: Arc::new(if cfg!(test) {
                ClusterStats::detached(&config.name)
            } else {
                ClusterStats::new(&config.name)
            }),
            breakers: Arc::new(Breakers::new(config.circuit_breakers)),
            tls,
            transport_matches,
            params,
            snapshot: ArcSwap::from_pointee(snapshot),
            background: OnceLock::new(),
            rebuild_queued: AtomicBool::new(false),
        })
    }

    /// The current arrangement. Hold it briefly: take what you need and drop it.
    pub fn snapshot(&self) -> arc_swap::Guard<Arc<ClusterSnapshot>> {
        self.snapshot.load()
    }

    pub fn lb_policy(&self) -> LbPolicy {
        self.params.policy
    }

    /// The host the load balancer picks among those `metadata_key` (a route's
    /// `metadata_match`) allows, preferring one not in `tried` (a retry should go elsewhere
    /// when there is an elsewhere).
    pub fn pick(
        &self,
        metadata_key: &str,
        ctx: &LbContext,
        tried: &[Arc<Host>],
    ) -> Result<Arc<Host>, NoHost> {
        let snapshot = self.snapshot.load();
        let group = snapshot.group(metadata_key).ok_or(NoHost::NoSubset)?;
        let host = if tried.is_empty() {
            group.choose(ctx)
        } else {
            group.choose_untried(tried).or_else(|| group.choose(ctx))
        };
        host.cloned().ok_or(NoHost::Empty)
    }

    /// The current members.
    pub fn hosts(&self) -> Vec<Arc<Host>> {
        self.snapshot.load().hosts().to_vec()
    }

    /// Has rebuilds asked for by [`Cluster::health_changed_soon`] run on `runtime`.
    pub fn run_rebuilds_on(self: &Arc<Self>, runtime: tokio::runtime::Handle) {
        let _ = self.background.set((runtime, Arc::downgrade(self)));
    }

    /// Like [`Cluster::health_changed`], but from the data path: the rebuild (O(hosts), plus
    /// the balancers' tables) runs on the control runtime rather than holding up a worker's
    /// other connections, and a burst of changes costs one rebuild. Requests meanwhile use
    /// the current snapshot; the ejected host may get a few more.
    pub fn health_changed_soon(&self) {
        let Some((runtime, me)) = self.background.get() else {
            self.health_changed();
            return;
        };
        if self.rebuild_queued.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = me.clone();
        runtime.spawn(async move {
            if let Some(cluster) = me.upgrade() {
                // Cleared first: a change after this point queues a rebuild of its own.
                cluster.rebuild_queued.store(false, Ordering::Release);
                cluster.health_changed();
            }
        });
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

    /// The TLS `host` connects with: that of the first `transport_socket_matches` entry
    /// whose labels its own include, else the cluster's `tls`; `None`: plaintext.
    pub fn tls_for(&self, host: &Host) -> Option<&Arc<sluice_net::TlsClient>> {
        self.tls_for_labels(&host.transport)
    }

    /// [`Self::tls_for`] a host with these `transport_socket_match` labels.
    pub fn tls_for_labels(&self, transport: &Metadata) -> Option<&Arc<sluice_net::TlsClient>> {
        self.transport_matches
            .iter()
            .find(|(labels, _)| labels.iter().all(|(k, v)| transport.get(k) == Some(v)))
            .map_or(self.tls.as_ref(), |(_, tls)| tls.as_ref())
    }

    /// [`Self::reuse`] for every candidate, through an index of the current members by
    /// address: linear in the members, where a scan per candidate was quadratic (an EDS
    /// update of a 10,000-endpoint cluster).
    pub fn reuse_all(&self, candidates: impl IntoIterator<Item = Host>) -> Vec<Arc<Host>> {
        let snapshot = self.snapshot.load();
        let mut by_address: HashMap<&sluice_config::Address, Vec<&Arc<Host>>> =
            HashMap::with_capacity(snapshot.hosts().len());
        for h in snapshot.hosts() {
            by_address.entry(&h.address).or_default().push(h);
        }
        candidates
            .into_iter()
            .map(|candidate| {
                by_address
                    .get(&candidate.address)
                    .and_then(|same| same.iter().find(|h| h.same_endpoint(&candidate)))
                    .map(|h| Arc::clone(h))
                    .unwrap_or_else(|| Arc::new(candidate))
            })
            .collect()
    }
}

/// The hosts of a cluster's endpoints given as socket addresses (names are DNS's business).
pub fn socket_hosts(config: &ClusterConfig) -> impl Iterator<Item = Host> + '_ {
    config
        .endpoints
        .iter()
        .filter_map(|e| Some(host_of(e, e.address.socket()?.clone())))
}

/// The host an endpoint describes, at `address`.
pub fn host_of(e: &sluice_config::EndpointConfig, address: sluice_config::Address) -> Host {
    let hostname = match &e.address {
        sluice_config::EndpointAddress::Name { host, .. } => Some(host.as_str().into()),
        sluice_config::EndpointAddress::Socket(_) => None,
    };
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
    .with_hostname(hostname)
    .with_transport(Metadata::new(
        e.transport_socket_match
            .iter()
            .map(|(k, v)| (Arc::from(k.as_str()), Arc::from(v.as_str()))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::health;
    use crate::lb::LbContext;

    fn cluster(yaml: &str) -> Cluster {
        Cluster::from_config(&crate::testing::cluster_config(yaml)).unwrap()
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

    #[tokio::test]
    async fn changes_from_the_data_path_rebuild_in_the_background_once() {
        let c = Arc::new(cluster(
            "{ name: c, endpoints: [{ address: \"127.0.0.1:1\" }, { address: \"127.0.0.1:2\" }] }",
        ));
        c.run_rebuilds_on(tokio::runtime::Handle::current());
        let hosts = c.hosts();
        hosts[0].set_health_flag(health::FAILED_OUTLIER, true);
        c.health_changed_soon();
        c.health_changed_soon();
        assert!(c.rebuild_queued.load(Ordering::Acquire));
        // Not rebuilt yet: the old arrangement still holds both hosts.
        assert_eq!(c.snapshot().all.level_loads().len(), 1);
        let before = Arc::as_ptr(&c.snapshot.load_full());
        tokio::task::yield_now().await;
        assert!(!c.rebuild_queued.load(Ordering::Acquire));
        assert_ne!(before, Arc::as_ptr(&c.snapshot.load_full()));
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
        let plain = |a: &str| Host::plain(sluice_config::Address::parse(a).unwrap());
        let again = c.reuse_all([
            plain("127.0.0.1:2"),
            plain("127.0.0.1:1"),
            plain("127.0.0.1:3"),
        ]);
        assert!(Arc::ptr_eq(&again[0], &c.hosts()[1]));
        assert!(Arc::ptr_eq(&again[1], &old));
        assert!(!c.hosts().iter().any(|h| Arc::ptr_eq(h, &again[2])));
    }
}
