//! `http_proxy`: an L7 proxy for HTTP/1.1 and cleartext HTTP/2 (hyper 1.x), routing each
//! request with a precompiled route table to a cluster, a redirect or a direct response.
//!
//! Served today: routing, local actions, rewrites, standard proxy headers, per-route timeouts,
//! retries, request mirroring, protocol upgrades (WebSocket), header mutations and pooled
//! upstream connections. Body limits come next (see docs/configuration.md).

mod body;
mod config;
mod headers;
mod local_reply;
mod mirror;
mod mutate;
mod retry;
mod service;
mod upgrade;
mod upstream;

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use sluice_net::filter::BoxFuture;
use sluice_net::{ConnectionHandler, ConnectionInfo, PeerAddr, Stream};
use sluice_proxy::route::RouteTable;
use tracing::debug;

pub use config::{Codec, HttpProxyConfig, RouteSource};
pub use upstream::Upstreams;

use crate::registry::{BuildContext, Built, NetworkFilterKind};
use service::Proxy;

pub const KIND: NetworkFilterKind = NetworkFilterKind {
    name: "http_proxy",
    decode: config::decode,
    build,
};

/// hyper refuses HTTP/1 read buffers below this size.
const MIN_HTTP1_BUFFER: usize = 8192;

fn build(config: &dyn Any, ctx: &BuildContext) -> Result<Built, String> {
    let config = config
        .downcast_ref::<HttpProxyConfig>()
        .ok_or("config of another filter type")?;
    let routes = match &config.routes {
        RouteSource::Inline(r) => r.clone(),
        RouteSource::Named(name) => Arc::new(
            ctx.config
                .route_configs
                .iter()
                .find(|r| r.name == name.name)
                .ok_or_else(|| format!("unknown route config \"{}\"", name.name))?
                .clone(),
        ),
    };
    let table = RouteTable::compile(&routes).map_err(|e| e.to_string())?;
    Ok(Built::Handler(Arc::new(HttpProxy {
        config: config.clone(),
        table: Arc::new(table),
        upstreams: ctx.http_upstreams.clone(),
    })))
}

struct HttpProxy {
    config: HttpProxyConfig,
    table: Arc<RouteTable>,
    upstreams: Arc<Upstreams>,
}

impl ConnectionHandler for HttpProxy {
    fn serve(&self, stream: Stream, info: ConnectionInfo) -> BoxFuture {
        let proxy = Arc::new(Proxy {
            listener: info.listener.clone(),
            max_request_body: self.config.max_request_body,
            table: self.table.clone(),
            upstreams: self.upstreams.clone(),
        });
        let client = match info.peer {
            PeerAddr::Tcp(a) => Some(a),
            PeerAddr::Unix => None,
        };
        let config = self.config.clone();
        Box::pin(async move {
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(req, client).await) }
            });
            let head_limit = config.max_request_headers_kb as usize * 1024;
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(config.request_headers_timeout)
                .max_buf_size(head_limit.max(MIN_HTTP1_BUFFER));
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_header_list_size(u32::try_from(head_limit).unwrap_or(u32::MAX));
            let builder = match config.codec {
                Codec::Http1 => builder.http1_only(),
                Codec::Http2 => builder.http2_only(),
                Codec::Auto => builder,
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = info.drain.cancelled() => {
                    // Finish the requests in flight, then close (GOAWAY on HTTP/2).
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                debug!(listener = %info.listener, error = %e, "http connection ended with an error");
            }
        })
    }
}
