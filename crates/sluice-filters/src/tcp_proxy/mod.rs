//! `tcp_proxy`: forwards a connection's bytes to a host of a cluster, both ways.

mod config;
mod pool;
mod transfer;

use sluice_net::PeerAddr;
use sluice_upstream::lb::hash_ip;
use std::any::Any;
use std::sync::Arc;

use sluice_net::filter::BoxFuture;
use sluice_net::{ConnectionHandler, ConnectionInfo, Stream};
use sluice_upstream::ClusterManager;
use tracing::{debug, warn};

pub use config::TcpProxyConfig;
pub use transfer::{transfer, TransferEnd, TransferSettings};

use crate::registry::{BuildContext, Built, NetworkFilterKind};

pub const KIND: NetworkFilterKind = NetworkFilterKind {
    name: "tcp_proxy",
    decode: config::decode,
    build,
};

fn build(config: &dyn Any, ctx: &BuildContext) -> Result<Built, String> {
    let config = config
        .downcast_ref::<TcpProxyConfig>()
        .ok_or("config of another filter type")?;
    Ok(Built::Handler(Arc::new(TcpProxy {
        cluster: config.cluster.name.as_str().into(),
        clusters: ctx.clusters.clone(),
        settings: TransferSettings {
            buffer_size: config.buffer_size,
            idle_timeout: config.idle_timeout,
        },
        max_connect_attempts: config.max_connect_attempts,
        hash_source_ip: config.hash_source_ip,
    })))
}

struct TcpProxy {
    cluster: Arc<str>,
    clusters: Arc<ClusterManager>,
    settings: TransferSettings,
    max_connect_attempts: Option<usize>,
    hash_source_ip: bool,
}

impl ConnectionHandler for TcpProxy {
    fn serve(&self, downstream: Stream, info: ConnectionInfo) -> BoxFuture {
        // The cluster is looked up now: a connection keeps the cluster it started with even if
        // the cluster set is swapped while it runs.
        let cluster = self.clusters.get(&self.cluster);
        let name = self.cluster.clone();
        let settings = self.settings;
        let max_attempts = self.max_connect_attempts;
        let ctx = sluice_upstream::LbContext {
            hash: match info.peer {
                PeerAddr::Tcp(a) if self.hash_source_ip => Some(hash_ip(a.ip())),
                _ => None,
            },
        };
        Box::pin(async move {
            let Some(cluster) = cluster else {
                warn!(cluster = %name, "tcp_proxy: cluster not found; closing connection");
                return;
            };
            let (upstream, host) = match cluster.connect(max_attempts, &ctx).await {
                Ok(c) => c,
                Err(e) => {
                    // Dropping the downstream closes it at once: the client is not left hanging.
                    warn!(listener = %info.listener, peer = %info.peer, error = %e, "tcp_proxy: no upstream connection");
                    return;
                }
            };
            let end = transfer(downstream, upstream, settings).await;
            debug!(upstream = %host.address, ?end, "tcp_proxy: connection closed");
        })
    }
}
