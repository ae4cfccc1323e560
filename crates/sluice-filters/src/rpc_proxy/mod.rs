//! `rpc_proxy`: the multiplexed-RPC proxy. A protocol (`sluice_xprotocol::Protocol`: Bolt,
//! Dubbo, or one a build registers) supplies the codec and a few hooks; this module supplies
//! everything else: downstream multiplexing, request-id remapping onto shared upstream
//! connections, routing with the same route tables as HTTP, load balancing, circuit breakers,
//! timeouts, retries and outlier detection. With `protocol: auto` each connection's first
//! bytes pick the protocol, HTTP/1 and h2 included (served as `http_proxy` would).

mod call;
mod config;
mod detect;
mod downstream;
mod mutate;
mod observe;
mod request_view;
mod stats;
mod trace;
mod upstream;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use crate::routes::SharedTable;
use bytes::BytesMut;
use sluice_net::filter::BoxFuture;
use sluice_net::{ConnectionHandler, ConnectionInfo, PeerAddr, Stream};
use sluice_upstream::ClusterManager;
use sluice_xprotocol::Protocol;
use tracing::debug;

pub use config::{ProtocolChoice, RpcProxyConfig};
pub use sluice_xprotocol::{protocols, register_protocol};

use crate::http_proxy::{HttpProxy, HttpProxyConfig};
use crate::registry::{BuildContext, Built, NetworkFilterKind};
use crate::stream::StreamFilters;
use call::Shared;
use detect::Detected;
use downstream::Limits;
use upstream::Heartbeat;

pub const KIND: NetworkFilterKind = NetworkFilterKind {
    name: "rpc_proxy",
    decode: config::decode,
    build,
};

fn build(config: &dyn Any, ctx: &BuildContext) -> Result<Built, String> {
    let config = config
        .downcast_ref::<RpcProxyConfig>()
        .ok_or("config of another filter type")?;
    let table = ctx.routes.table(&config.routes, &ctx.config)?;
    let stats = Arc::new(stats::RpcStats::new(crate::stat_prefix::or_listener(
        &config.stat_prefix,
        &ctx.listener,
    )));
    let filters = crate::stream::build_list(&config.stream_filters, stats.scope())?;
    let registry = protocols();
    let protocol = match &config.protocol {
        ProtocolChoice::Named(name) => Some(
            registry
                .get(name)
                .cloned()
                .ok_or_else(|| format!("unknown protocol \"{name}\""))?,
        ),
        ProtocolChoice::Auto => None,
    };
    // The tracer, when the listener traces, is one of its observers.
    let (observers, tracer) = crate::http_proxy::trace::build(config.tracing.as_deref(), ctx)?;
    let speaks = match protocol {
        Some(protocol) => Speaks::One(protocol),
        None => Speaks::Auto(Box::new(
            HttpProxy::new(
                HttpProxyConfig::with_routes(config.routes.clone()),
                table.clone(),
                ctx.http_upstreams.clone(),
                // HTTP on this listener passes the same checks as RPC.
                filters.clone(),
                observers.clone(),
                // Its HTTP requests count under `http.<the rpc_proxy's stat_prefix>.`.
                Arc::new(crate::http_proxy::stats::HttpStats::new(
                    &sluice_stats::Scope::http(crate::stat_prefix::or_listener(
                        &config.stat_prefix,
                        &ctx.listener,
                    )),
                )),
            )
            .with_tracer(tracer.clone()),
        )),
    };
    Ok(Built::Handler(Arc::new(RpcProxy(Arc::new(Inner {
        speaks,
        table,
        filters,
        stats,
        clusters: ctx.clusters.clone(),
        // Checked against usize when the config was read.
        max_frame_size: usize::try_from(config.max_frame_size).unwrap_or(usize::MAX),
        upstream_heartbeat: config
            .upstream_heartbeat_interval
            .map(|interval| Heartbeat {
                interval,
                timeout: config.upstream_heartbeat_timeout,
            }),
        detect_timeout: config.detect_timeout,
        observers,
        tracer,
        limits: Limits {
            max_concurrent_requests: config.max_concurrent_requests as usize,
            idle_timeout: config.idle_timeout,
            flush: false,
        },
    })))))
}

/// What a listener speaks: one protocol, or whatever each connection's first bytes say.
enum Speaks {
    One(Arc<dyn Protocol>),
    /// Any registered protocol, and HTTP served by this `http_proxy`.
    Auto(Box<HttpProxy>),
}

/// Shared by the listener's connections (a detecting connection holds it while it reads).
struct RpcProxy(Arc<Inner>);

struct Inner {
    speaks: Speaks,
    table: SharedTable,
    filters: StreamFilters,
    stats: Arc<stats::RpcStats>,
    clusters: Arc<ClusterManager>,
    max_frame_size: usize,
    upstream_heartbeat: Option<Heartbeat>,
    detect_timeout: Duration,
    limits: Limits,
    observers: Arc<sluice_observe::Observers>,
    tracer: Option<Arc<sluice_observe::trace::Tracer>>,
}

impl Inner {
    fn shared(&self, info: &ConnectionInfo, protocol: Arc<dyn Protocol>) -> Arc<Shared> {
        Arc::new(Shared {
            listener: info.listener.clone(),
            protocol,
            table: self.table.clone(),
            filters: self.filters.clone(),
            stats: self.stats.clone(),
            info: (!self.filters.is_empty()).then(|| info.clone()),
            clusters: self.clusters.clone(),
            max_frame_size: self.max_frame_size,
            upstream_heartbeat: self.upstream_heartbeat,
            observers: self.observers.clone(),
            tracer: self.tracer.clone(),
            local: info.local,
            server_name: info
                .tls
                .as_deref()
                .and_then(|t| t.server_name.as_deref())
                .map(Arc::from),
        })
    }
}

impl ConnectionHandler for RpcProxy {
    fn serve(&self, mut stream: Stream, info: ConnectionInfo) -> BoxFuture {
        let client = match info.peer {
            PeerAddr::Tcp(a) => Some(a),
            PeerAddr::Unix => None,
        };
        let inner = &self.0;
        if let Speaks::One(protocol) = &inner.speaks {
            let shared = inner.shared(&info, protocol.clone());
            let early = BytesMut::new();
            let limits = Limits {
                flush: info.tls.is_some(),
                ..inner.limits
            };
            return Box::pin(downstream::serve(
                stream, early, shared, client, limits, info.drain,
            ));
        }
        let inner = inner.clone();
        Box::pin(async move {
            let registry = protocols();
            let mut early = BytesMut::with_capacity(8 * 1024);
            let detected =
                detect::detect(&mut stream, &mut early, &registry, inner.detect_timeout).await;
            match (detected, &inner.speaks) {
                (Ok(Detected::Rpc(protocol)), _) => {
                    let shared = inner.shared(&info, protocol);
                    let limits = Limits {
                        flush: info.tls.is_some(),
                        ..inner.limits
                    };
                    downstream::serve(stream, early, shared, client, limits, info.drain).await;
                }
                (Ok(Detected::Http), Speaks::Auto(http)) => {
                    http.serve_after(stream, early.to_vec(), info).await;
                }
                // A one-protocol listener never detects (it returned above).
                (Ok(Detected::Http), Speaks::One(_)) => {}
                (Err(why), _) => {
                    debug!(listener = %info.listener, ?why, "protocol not detected; closing");
                }
            }
        })
    }
}
