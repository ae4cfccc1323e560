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
mod protocols;
mod request_view;
mod upstream;

use std::any::Any;
use std::sync::Arc;

use bytes::BytesMut;
use sluice_net::filter::BoxFuture;
use sluice_net::{ConnectionHandler, ConnectionInfo, PeerAddr, Stream};
use sluice_proxy::route::RouteTable;
use sluice_xprotocol::Protocol;
use tracing::debug;

pub use config::{ProtocolChoice, RpcProxyConfig};
pub use protocols::{protocols, register_protocol};
pub use upstream::RpcUpstreams;

use crate::http_proxy::{HttpProxy, HttpProxyConfig};
use crate::registry::{BuildContext, Built, NetworkFilterKind};
use call::Shared;
use detect::Detected;
use downstream::Limits;

pub const KIND: NetworkFilterKind = NetworkFilterKind {
    name: "rpc_proxy",
    decode: config::decode,
    build,
};

fn build(config: &dyn Any, ctx: &BuildContext) -> Result<Built, String> {
    let config = config
        .downcast_ref::<RpcProxyConfig>()
        .ok_or("config of another filter type")?;
    let routes = config.routes.resolve(&ctx.config)?;
    let table = Arc::new(RouteTable::compile(&routes).map_err(|e| e.to_string())?);
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
    let http = protocol.is_none().then(|| {
        Arc::new(HttpProxy::new(
            HttpProxyConfig::with_routes(config.routes.clone()),
            table.clone(),
            ctx.http_upstreams.clone(),
        ))
    });
    Ok(Built::Handler(Arc::new(RpcProxy {
        config: config.clone(),
        protocol,
        table,
        upstreams: ctx.rpc_upstreams.clone(),
        http,
    })))
}

struct RpcProxy {
    config: RpcProxyConfig,
    /// `None` with `protocol: auto`.
    protocol: Option<Arc<dyn Protocol>>,
    table: Arc<RouteTable>,
    upstreams: Arc<RpcUpstreams>,
    /// HTTP on an `auto` listener.
    http: Option<Arc<HttpProxy>>,
}

impl RpcProxy {
    fn shared(&self, listener: Arc<str>, protocol: Arc<dyn Protocol>) -> Arc<Shared> {
        Arc::new(Shared {
            listener,
            protocol,
            table: self.table.clone(),
            upstreams: self.upstreams.clone(),
            // Checked against usize when the config was read.
            max_frame_size: usize::try_from(self.config.max_frame_size).unwrap_or(usize::MAX),
        })
    }
}

impl ConnectionHandler for RpcProxy {
    fn serve(&self, mut stream: Stream, info: ConnectionInfo) -> BoxFuture {
        let client = match info.peer {
            PeerAddr::Tcp(a) => Some(a),
            PeerAddr::Unix => None,
        };
        let limits = Limits {
            max_concurrent_requests: self.config.max_concurrent_requests as usize,
            idle_timeout: self.config.idle_timeout,
        };
        if let Some(protocol) = &self.protocol {
            let shared = self.shared(info.listener.clone(), protocol.clone());
            return Box::pin(downstream::serve(
                stream,
                BytesMut::new(),
                shared,
                client,
                limits,
                info.drain,
            ));
        }
        let registry = protocols();
        let deadline = self.config.detect_timeout;
        let http = self.http.clone();
        let this = RpcProxy {
            config: self.config.clone(),
            protocol: None,
            table: self.table.clone(),
            upstreams: self.upstreams.clone(),
            http: None,
        };
        Box::pin(async move {
            let mut early = BytesMut::with_capacity(8 * 1024);
            match detect::detect(&mut stream, &mut early, &registry, deadline).await {
                Ok(Detected::Rpc(protocol)) => {
                    let shared = this.shared(info.listener.clone(), protocol);
                    downstream::serve(stream, early, shared, client, limits, info.drain).await;
                }
                Ok(Detected::Http) => match http {
                    Some(http) => http.serve_after(stream, early.to_vec(), info).await,
                    None => debug!("no HTTP handler on an auto listener"),
                },
                Err(why) => {
                    debug!(listener = %info.listener, ?why, "protocol not detected; closing");
                }
            }
        })
    }
}
