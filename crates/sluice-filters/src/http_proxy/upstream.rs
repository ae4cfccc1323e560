//! The clusters `http_proxy` forwards to: each host's connection pool (see [`super::pool`]),
//! and the protocol spoken to them.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustc_hash::FxHashMap;

use sluice_config::UpstreamProtocol;
pub use sluice_upstream::NoHost;
use sluice_upstream::{Cluster, ClusterManager, Host, LbContext};

use super::pool::{HostPool, PoolOptions};

/// The pools of every cluster, as one snapshot replaced whole when clusters change (a reload,
/// CDS); each request looks its cluster up in the current one.
pub struct Upstreams {
    /// Looked up per request by cluster name: a fast hash, since names come from the config,
    /// not from clients.
    clusters: ArcSwap<FxHashMap<Arc<str>, Arc<UpstreamCluster>>>,
}

pub struct UpstreamCluster {
    pub cluster: Arc<Cluster>,
    /// How each host's pool behaves; the pool itself lives in the host (made on first use), so
    /// it follows the host in and out of the cluster.
    options: PoolOptions,
}

impl Upstreams {
    pub fn new(clusters: &ClusterManager) -> Self {
        Upstreams {
            clusters: ArcSwap::from_pointee(Self::map(clusters, &FxHashMap::default())),
        }
    }

    /// Follows the cluster manager after it changed: clusters it still holds (the same
    /// `Cluster`) keep their entry, the others are made anew.
    pub fn update(&self, clusters: &ClusterManager) {
        let old = self.clusters.load_full();
        self.clusters.store(Arc::new(Self::map(clusters, &old)));
    }

    fn map(
        clusters: &ClusterManager,
        old: &FxHashMap<Arc<str>, Arc<UpstreamCluster>>,
    ) -> FxHashMap<Arc<str>, Arc<UpstreamCluster>> {
        let mut map = FxHashMap::default();
        for cluster in clusters.all() {
            if let Some(kept) = old
                .get(&cluster.name)
                .filter(|u| Arc::ptr_eq(&u.cluster, &cluster))
            {
                map.insert(cluster.name.clone(), kept.clone());
                continue;
            }
            let c = &cluster.config;
            let options = PoolOptions {
                connect_timeout: c.connect_timeout,
                idle_timeout: c.common_http_protocol_options.idle_timeout,
                max_concurrent_streams: c.http2_protocol_options.max_concurrent_streams,
                max_requests_per_connection: c
                    .common_http_protocol_options
                    .max_requests_per_connection,
                max_idle_connections: c.common_http_protocol_options.max_idle_connections,
                keepalive: c.http2_protocol_options.connection_keepalive,
                tcp_keepalive: c.tcp_keepalive,
                h2_window: c
                    .per_connection_buffer_limit
                    .map(|b| u32::try_from(b).unwrap_or(u32::MAX).min((1 << 31) - 1)),
                breakers: cluster.breakers.clone(),
                stats: cluster.stats.clone(),
                tls: cluster.tls.clone(),
            };
            map.insert(
                cluster.name.clone(),
                Arc::new(UpstreamCluster { cluster, options }),
            );
        }
        map
    }

    pub fn get(&self, name: &str) -> Option<Arc<UpstreamCluster>> {
        self.clusters.load().get(name).cloned()
    }
}

impl UpstreamCluster {
    /// Whether requests to this cluster go out as HTTP/2, given the downstream's version.
    pub fn speaks_http2(&self, downstream: http::Version) -> bool {
        match self.cluster.config.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::SameAsDownstream => downstream == http::Version::HTTP_2,
        }
    }

    /// See [`Cluster::pick`].
    pub fn pick(
        &self,
        metadata_key: &str,
        ctx: &LbContext,
        tried: &[Arc<Host>],
    ) -> Result<Arc<Host>, NoHost> {
        self.cluster.pick(metadata_key, ctx, tried)
    }

    /// The connection pool of `host`, made on first use.
    pub fn pool<'h>(&self, host: &'h Host) -> Option<&'h Arc<HostPool>> {
        host.slot(|| {
            let mut options = self.options.clone();
            // The host's own transport (`transport_socket_matches`), else the cluster's.
            options.tls = self.cluster.tls_for(host).cloned();
            HostPool::new(
                host.address.clone(),
                host.hostname.clone(),
                host.connections().clone(),
                options,
            )
        })
    }
}
