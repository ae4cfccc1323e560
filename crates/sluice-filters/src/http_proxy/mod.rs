//! `http_proxy`: an L7 proxy for HTTP/1.1 and cleartext HTTP/2 (hyper 1.x), routing each
//! request with a precompiled route table to a cluster, a redirect or a direct response.
//!
//! Served: routing, local actions, rewrites, standard proxy headers, per-route timeouts,
//! retries, request mirroring, protocol upgrades (WebSocket), header mutations, head and body
//! limits, stream filters (`http_filters`, e.g. RBAC), `x-forwarded-client-cert`, and pooled
//! upstream connections (see docs/configuration.md).

mod body;
mod config;
mod detect;
mod h1;
pub(crate) mod hash;
mod headers;
mod local_reply;
mod mirror;
pub(crate) mod mutate;
pub(crate) mod observe;
mod pool;
mod recycle;
mod retry;
mod service;
pub(crate) mod stats;
mod timer;
pub(crate) mod trace;
mod upgrade;
mod upstream;
mod xfcc;

use std::any::Any;
use std::convert::Infallible;
use std::sync::Arc;

use crate::routes::SharedTable;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sluice_net::filter::BoxFuture;
use sluice_net::{ConnectionHandler, ConnectionInfo, PeerAddr, Stream};
use tracing::debug;

pub use config::{Codec, HttpProxyConfig, RouteSource};
#[doc(hidden)]
pub use h1::fuzz;
pub(crate) use retry::backoff as retry_backoff;
pub use upstream::Upstreams;

use crate::registry::{BuildContext, Built, NetworkFilterKind};
use crate::stream::StreamFilters;
use detect::Protocol;
use service::Proxy;

/// Serves a hyper connection until it ends, or until the drain starts: then the requests in
/// flight finish and the connection closes (GOAWAY on HTTP/2).
macro_rules! until_drained {
    ($conn:expr, $drain:expr) => {{
        let conn = $conn;
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => r,
            () = $drain.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        }
    }};
}

pub const KIND: NetworkFilterKind = NetworkFilterKind {
    name: "http_proxy",
    decode: config::decode,
    build,
};

fn build(config: &dyn Any, ctx: &BuildContext) -> Result<Built, String> {
    let config = config
        .downcast_ref::<HttpProxyConfig>()
        .ok_or("config of another filter type")?;
    let table = ctx.routes.table(&config.routes, &ctx.config)?;
    let scope = sluice_stats::Scope::http(crate::stat_prefix::or_listener(
        &config.stat_prefix,
        &ctx.listener,
    ));
    let filters = crate::stream::build_list(&config.http_filters, &scope)?;
    let stats = Arc::new(stats::HttpStats::new(&scope));
    let (observers, tracer) = trace::build(config.tracing.as_deref(), ctx)?;
    Ok(Built::Handler(Arc::new(
        HttpProxy::new(
            config.clone(),
            table,
            ctx.http_upstreams.clone(),
            filters,
            observers,
            stats,
        )
        .with_tracer(tracer),
    )))
}

pub(crate) struct HttpProxy {
    config: HttpProxyConfig,
    table: SharedTable,
    upstreams: Arc<Upstreams>,
    filters: StreamFilters,
    observers: Arc<sluice_observe::Observers>,
    stats: Arc<stats::HttpStats>,
    tracer: Option<Arc<sluice_observe::trace::Tracer>>,
}

impl HttpProxy {
    pub(crate) fn new(
        config: HttpProxyConfig,
        table: SharedTable,
        upstreams: Arc<Upstreams>,
        filters: StreamFilters,
        observers: Arc<sluice_observe::Observers>,
        stats: Arc<stats::HttpStats>,
    ) -> Self {
        HttpProxy {
            config,
            table,
            upstreams,
            filters,
            observers,
            stats,
            tracer: None,
        }
    }

    /// Spans for this listener (its tracer is also among `observers`).
    pub(crate) fn with_tracer(
        mut self,
        tracer: Option<Arc<sluice_observe::trace::Tracer>>,
    ) -> Self {
        self.tracer = tracer;
        self
    }
}

impl ConnectionHandler for HttpProxy {
    fn serve(&self, stream: Stream, info: ConnectionInfo) -> BoxFuture {
        self.serve_after(stream, Vec::new(), info)
    }
}

impl HttpProxy {
    /// Serves a connection whose first bytes, `early`, were already read (by `rpc_proxy`'s
    /// protocol detection).
    pub(crate) fn serve_after(
        &self,
        stream: Stream,
        early: Vec<u8>,
        info: ConnectionInfo,
    ) -> BoxFuture {
        let client = match info.peer {
            PeerAddr::Tcp(a) => Some(a),
            PeerAddr::Unix => None,
        };
        let proxy = Arc::new(Proxy {
            listener: info.listener.clone(),
            max_request_body: self.config.max_request_body,
            max_request_headers_kb: self.config.max_request_headers_kb,
            max_headers_count: self.config.max_headers_count,
            via: self.config.via.clone(),
            table: self.table.clone(),
            upstreams: self.upstreams.clone(),
            client_ip: headers::client_ip_value(client.map(|a| a.ip())),
            https: info.tls.is_some(),
            filters: self.filters.clone(),
            xfcc: xfcc::ConnectionXfcc::new(&self.config.xfcc, info.tls.as_deref()),
            // Kept for the filters only: a listener without them holds nothing more.
            info: (!self.filters.is_empty()).then(|| info.clone()),
            observers: self.observers.clone(),
            tracer: self.tracer.clone(),
            conn: (!self.observers.is_empty()).then(|| observe::ConnectionFacts::new(&info)),
            stats: self.stats.clone(),
        });
        let stats = self.stats.clone();
        let config = self.config.clone();
        Box::pin(async move {
            let _connection = stats::ConnectionGuard::new(&stats, info.tls.is_some());
            // Read the opening bytes under the header deadline: an idle or half-open client
            // is dropped here, and a listener only speaks the protocol it was configured for.
            // Over TLS, ALPN decides: `http/1.1` needs no sniffing; `h2` still reads the
            // preface under the deadline, and a client that then speaks HTTP/1 is closed.
            let alpn = info.tls.as_ref().and_then(|t| match t.alpn.as_deref() {
                Some(b"h2") => Some(Protocol::Http2),
                Some(b"http/1.1") => Some(Protocol::Http1),
                _ => None,
            });
            let (protocol, io) = if alpn == Some(Protocol::Http1) {
                (Protocol::Http1, detect::Rewind::new(stream, early))
            } else {
                match detect::detect(stream, early, config.request_headers_timeout).await {
                    Ok((Protocol::Http1, _)) if alpn == Some(Protocol::Http2) => {
                        debug!(listener = %info.listener, "ALPN said h2 but no HTTP/2 preface came; closing");
                        return;
                    }
                    Ok(found) => found,
                    Err(why) => {
                        debug!(listener = %info.listener, ?why, "closed before a request");
                        return;
                    }
                }
            };
            let allowed = !matches!(
                (config.codec, protocol),
                (Codec::Http1, Protocol::Http2) | (Codec::Http2, Protocol::Http1)
            );
            if !allowed {
                debug!(listener = %info.listener, ?protocol, codec = ?config.codec, "protocol not served here; closing");
                detect::close_gracefully(io).await;
                return;
            }
            match protocol {
                Protocol::Http1 => stats.cx_http1_total.inc(),
                Protocol::Http2 => stats.cx_http2_total.inc(),
            }
            // Each protocol's serving state lives in its own box: an HTTP/1 connection does
            // not carry room for HTTP/2's (the task's future is held for the connection's life,
            // idle keep-alive time included).
            let result = match protocol {
                Protocol::Http1 => {
                    Box::pin(serve_http1(io, proxy, client, &config, &info)).await;
                    Ok(())
                }
                Protocol::Http2 => Box::pin(serve_http2(io, proxy, client, &config, &info)).await,
            };
            if let Err(e) = result {
                debug!(listener = %info.listener, error = %e, "http connection ended with an error");
            }
        })
    }
}

/// Serves one HTTP/1.1 connection until it ends or drains (our own server, `h1::server`).
async fn serve_http1(
    io: detect::Rewind,
    proxy: Arc<Proxy>,
    client: Option<std::net::SocketAddr>,
    config: &HttpProxyConfig,
    info: &ConnectionInfo,
) {
    let settings = h1::server::Settings {
        listener: info.listener.clone(),
        limits: h1::server::request::HeadLimits {
            bytes: config.max_request_headers_kb as usize * 1024,
            fields: config.max_headers_count as usize,
        },
        max_request_headers_kb: config.max_request_headers_kb,
        headers_timeout: config.request_headers_timeout,
        tls: info.tls.is_some(),
    };
    let (stream, early) = io.into_parts();
    h1::server::serve(stream, &early, proxy, client, &settings, &info.drain).await;
}

/// Serves one HTTP/2 connection until it ends or drains.
async fn serve_http2(
    io: detect::Rewind,
    proxy: Arc<Proxy>,
    client: Option<std::net::SocketAddr>,
    config: &HttpProxyConfig,
    info: &ConnectionInfo,
) -> hyper::Result<()> {
    let head_limit = config.max_request_headers_kb as usize * 1024;
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let proxy = proxy.clone();
        async move {
            // Each HTTP/2 stream is a task of its own: its timer serves that one request.
            let mut timer = timer::LazyTimer::default();
            let req = req.map(body::streamed);
            Ok::<_, Infallible>(proxy.handle(req, client, None, &mut timer).await)
        }
    });
    // h2 refuses a header list beyond its limit with a bare 431; below twice the
    // limit the service answers instead, with a body that says why.
    let h2_limit = head_limit.saturating_mul(2);
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(h2_limit).unwrap_or(u32::MAX));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    until_drained!(conn, info.drain)
}
