//! The clusters `http_proxy` forwards to: each host's connection pool (see [`super::pool`]),
//! and the protocol spoken to them.

use std::sync::Arc;

use rustc_hash::FxHashMap;

use sluice_config::{Config, UpstreamProtocol};
use sluice_upstream::{Cluster, ClusterManager};

use super::pool::{HostPool, PoolOptions};

/// The pools of every cluster.
pub struct Upstreams {
    /// Looked up per request by cluster name: a fast hash, since names come from the config,
    /// not from clients.
    clusters: FxHashMap<Arc<str>, UpstreamCluster>,
}

pub struct UpstreamCluster {
    pub cluster: Arc<Cluster>,
    pub protocol: UpstreamProtocol,
    /// One pool per host, in the cluster's host order.
    hosts: Vec<Arc<HostPool>>,
}

impl Upstreams {
    pub fn new(config: &Config, clusters: &ClusterManager) -> Self {
        let mut map = FxHashMap::default();
        for c in &config.clusters {
            let Some(cluster) = clusters.get(&c.name) else {
                continue;
            };
            let options = PoolOptions {
                connect_timeout: cluster.connect_timeout,
                idle_timeout: c.common_http_protocol_options.idle_timeout,
                max_concurrent_streams: c.http2_protocol_options.max_concurrent_streams,
                max_requests_per_connection: c
                    .common_http_protocol_options
                    .max_requests_per_connection,
                max_idle_connections: c.common_http_protocol_options.max_idle_connections,
                keepalive: c.http2_protocol_options.connection_keepalive,
            };
            let hosts = cluster
                .hosts
                .iter()
                .map(|h| HostPool::new(h.address.clone(), options.clone()))
                .collect();
            map.insert(
                cluster.name.clone(),
                UpstreamCluster {
                    cluster,
                    protocol: c.protocol,
                    hosts,
                },
            );
        }
        Upstreams { clusters: map }
    }

    pub fn get(&self, name: &str) -> Option<&UpstreamCluster> {
        self.clusters.get(name)
    }
}

impl UpstreamCluster {
    /// Whether requests to this cluster go out as HTTP/2, given the downstream's version.
    pub fn speaks_http2(&self, downstream: http::Version) -> bool {
        match self.protocol {
            UpstreamProtocol::Http1 => false,
            UpstreamProtocol::Http2 => true,
            UpstreamProtocol::SameAsDownstream => downstream == http::Version::HTTP_2,
        }
    }

    /// The host the load balancer picks, preferring one not in `tried` (a retry should go
    /// elsewhere when there is an elsewhere), and its pool.
    pub fn pick(&self, tried: &[usize]) -> Option<(usize, &Arc<HostPool>)> {
        let index = self
            .cluster
            .choose_untried(|i| tried.contains(&i))
            .or_else(|| self.cluster.choose())?;
        Some((index, self.hosts.get(index)?))
    }

    /// The pool of the host the load balancer picks.
    pub fn host(&self) -> Option<&Arc<HostPool>> {
        self.pick(&[]).map(|(_, pool)| pool)
    }
}
