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
use sluice_stats::Counter;
use sluice_upstream::ClusterManager;
use tracing::{debug, warn};

pub use config::TcpProxyConfig;
pub use transfer::{transfer, TransferEnd, TransferSettings};

use crate::registry::{BuildContext, Built, NetworkFilterKind};
use sluice_observe::{Observers, Protocol, RequestRecord, ResponseFlags};
use sluice_upstream::connect::ConnectError;

pub const KIND: NetworkFilterKind = NetworkFilterKind {
    name: "tcp_proxy",
    decode: config::decode,
    build,
};

fn build(config: &dyn Any, ctx: &BuildContext) -> Result<Built, String> {
    let config = config
        .downcast_ref::<TcpProxyConfig>()
        .ok_or("config of another filter type")?;
    let scope = sluice_stats::Scope::tcp(crate::stat_prefix::or_listener(
        &config.stat_prefix,
        &ctx.listener,
    ));
    Ok(Built::Handler(Arc::new(TcpProxy {
        stats: TcpStats {
            downstream_cx_total: scope.counter("downstream_cx_total"),
            downstream_cx_no_route: scope.counter("downstream_cx_no_route"),
            upstream_cx_connect_fail: scope.counter("upstream_cx_connect_fail"),
            downstream_cx_rx_bytes_total: scope.counter("downstream_cx_rx_bytes_total"),
            downstream_cx_tx_bytes_total: scope.counter("downstream_cx_tx_bytes_total"),
            idle_timeout: scope.counter("idle_timeout"),
        }
        .into(),
        cluster: config.cluster.name.as_str().into(),
        clusters: ctx.clusters.clone(),
        settings: TransferSettings {
            buffer_size: config.buffer_size,
            idle_timeout: config.idle_timeout,
        },
        max_connect_attempts: config.max_connect_attempts,
        hash_source_ip: config.hash_source_ip,
        observers: ctx.observers.clone(),
    })))
}

/// Envoy's `tcp.<stat_prefix>.` counters.
struct TcpStats {
    downstream_cx_total: Arc<Counter>,
    /// The cluster does not exist.
    downstream_cx_no_route: Arc<Counter>,
    /// No host of the cluster could be connected to.
    upstream_cx_connect_fail: Arc<Counter>,
    /// Bytes from the client, and to it.
    downstream_cx_rx_bytes_total: Arc<Counter>,
    downstream_cx_tx_bytes_total: Arc<Counter>,
    /// Connections closed for `idle_timeout`.
    idle_timeout: Arc<Counter>,
}

struct TcpProxy {
    stats: Arc<TcpStats>,
    cluster: Arc<str>,
    clusters: Arc<ClusterManager>,
    settings: TransferSettings,
    max_connect_attempts: Option<usize>,
    hash_source_ip: bool,
    /// The listener's access logs: one record per connection.
    observers: Arc<Observers>,
}

impl ConnectionHandler for TcpProxy {
    fn serve(&self, downstream: Stream, info: ConnectionInfo) -> BoxFuture {
        // The cluster is looked up now: a connection keeps the cluster it started with even if
        // the cluster set is swapped while it runs.
        let cluster = self.clusters.get(&self.cluster);
        let name = self.cluster.clone();
        let settings = self.settings;
        let stats = self.stats.clone();
        stats.downstream_cx_total.inc();
        let max_attempts = self.max_connect_attempts;
        let ctx = sluice_upstream::LbContext {
            hash: match info.peer {
                PeerAddr::Tcp(a) if self.hash_source_ip => Some(hash_ip(a.ip())),
                _ => None,
            },
        };
        let observers = self.observers.clone();
        let mut record = start_record(&observers, &info, &name);
        Box::pin(async move {
            let Some(cluster) = cluster else {
                stats.downstream_cx_no_route.inc();
                warn!(cluster = %name, "tcp_proxy: cluster not found; closing connection");
                if let Some(mut r) = record {
                    r.response_flags = ResponseFlags::NO_CLUSTER_FOUND;
                    observers.complete(Arc::from(r));
                }
                return;
            };
            // `_open` counts the connection in the host's `cx_active` while the transfer lasts.
            let (upstream, host, _open) = match cluster.connect(max_attempts, &ctx).await {
                Ok(c) => c,
                Err(e) => {
                    stats.upstream_cx_connect_fail.inc();
                    // Dropping the downstream closes it at once: the client is not left hanging.
                    warn!(listener = %info.listener, peer = %info.peer, error = %e, "tcp_proxy: no upstream connection");
                    if let Some(mut r) = record {
                        connect_failed(&mut r, &e);
                        observers.complete(Arc::from(r));
                    }
                    return;
                }
            };
            if let Some(r) = &mut record {
                r.upstream_host = Some(host.label().clone());
                r.upstream_attempts = 1;
            }
            let end = transfer(downstream, upstream, settings).await;
            let (sent, received) = end.bytes();
            stats.downstream_cx_rx_bytes_total.add(sent);
            stats.downstream_cx_tx_bytes_total.add(received);
            if matches!(end, TransferEnd::Idle { .. }) {
                stats.idle_timeout.inc();
            }
            debug!(upstream = %host.address, ?end, "tcp_proxy: connection closed");
            if let Some(mut r) = record {
                (r.bytes_received, r.bytes_sent) = end.bytes();
                if let TransferEnd::Idle { .. } = end {
                    r.response_flags = ResponseFlags::STREAM_IDLE_TIMEOUT;
                }
                observers.complete(Arc::from(r));
            }
        })
    }
}

/// The connection's access-log record, or `None` when the listener has no access log.
fn start_record(
    observers: &Observers,
    info: &ConnectionInfo,
    cluster: &Arc<str>,
) -> Option<Box<RequestRecord>> {
    if observers.is_empty() {
        return None;
    }
    let mut r = RequestRecord::new(Protocol::Tcp, info.listener.clone());
    r.downstream_remote = match info.peer {
        PeerAddr::Tcp(a) => Some(a),
        PeerAddr::Unix => None,
    };
    r.downstream_local = info.local;
    if let Some(tls) = info.tls.as_deref() {
        r.requested_server_name = tls.server_name.as_deref().map(Arc::from);
        r.downstream_peer_uri_san = tls
            .peer
            .as_ref()
            .and_then(|p| p.uri_sans.first())
            .map(|s| Arc::from(s.as_str()));
    }
    r.upstream_cluster = Some(cluster.clone());
    Some(Box::new(r))
}

/// `UH` when the cluster had no host to try, else `UF,URX` with the last try's host and error.
fn connect_failed(r: &mut RequestRecord, e: &ConnectError) {
    match e {
        ConnectError::NoHosts(_) => r.response_flags = ResponseFlags::NO_HEALTHY_UPSTREAM,
        ConnectError::Failed {
            attempts,
            host,
            source,
            ..
        } => {
            // Envoy's pair for a connection whose connect attempts all failed.
            r.response_flags = ResponseFlags::UPSTREAM_CONNECTION_FAILURE
                | ResponseFlags::UPSTREAM_RETRY_LIMIT_EXCEEDED;
            r.upstream_host = Some(Arc::from(host.as_str()));
            r.upstream_attempts = u32::try_from(*attempts).unwrap_or(u32::MAX);
            r.upstream_failure_reason = Some(source.to_string());
        }
    }
}
