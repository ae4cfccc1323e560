//! The `http_proxy` YAML body.

use std::sync::Arc;
use std::time::Duration;

use sluice_config::decode::{in_range, join, keyword, Cx, Fields, Reported};
use sluice_config::route::RouteConfig;
use sluice_config::yaml::NodeKind;
use sluice_config::{ByteSize, Decode, NetworkFilterConfig, Node, RouteConfigRef};

/// Which HTTP versions a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Http1,
    /// Cleartext HTTP/2 with prior knowledge.
    Http2,
    /// HTTP/2 when the client opens with the h2 preface, HTTP/1.1 otherwise.
    Auto,
}

impl Codec {
    const NAMES: [&'static str; 3] = ["http1", "http2", "auto"];
}

/// Where the listener's routes come from.
#[derive(Debug, Clone)]
pub enum RouteSource {
    Named(RouteConfigRef),
    Inline(Arc<RouteConfig>),
}

impl RouteSource {
    /// The route config these routes are: the inline one, or the named `route_configs` entry.
    pub fn resolve(&self, config: &sluice_config::Config) -> Result<Arc<RouteConfig>, String> {
        match self {
            RouteSource::Inline(r) => Ok(r.clone()),
            RouteSource::Named(name) => config
                .route_configs
                .iter()
                .find(|r| r.name == name.name)
                .map(|r| Arc::new(r.clone()))
                .ok_or_else(|| format!("unknown route config \"{}\"", name.name)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct HttpProxyConfig {
    pub codec: Codec,
    pub routes: RouteSource,
    /// Limit on the request head (request line and headers), in KiB.
    pub max_request_headers_kb: u32,
    /// Limit on the number of request headers (Envoy's `max_headers_count`).
    pub max_headers_count: u32,
    /// An HTTP/1 client must finish sending its request head within this time.
    pub request_headers_timeout: Option<Duration>,
    /// Request bodies larger than this get 413; `None` streams any size.
    pub max_request_body: Option<u64>,
    /// Appended as a `via` header to requests and responses (Envoy's `via`); `None` adds none.
    pub via: Option<http::HeaderValue>,
    /// `http_filters`: run on each request before routing.
    pub http_filters: Vec<crate::stream::StreamFilterSpec>,
    /// `forward_client_cert_details` and `set_current_client_cert_details`.
    pub xfcc: super::xfcc::XfccConfig,
    /// `tracing`: spans for this listener's requests (exported by the top-level `tracing`).
    pub tracing: Option<Arc<sluice_config::ListenerTracing>>,
    /// Metrics go under `http.<stat_prefix>.`; `None`: the listener's name.
    pub stat_prefix: Option<String>,
}

pub const DEFAULT_MAX_REQUEST_HEADERS_KB: u32 = 60;
pub const DEFAULT_MAX_HEADERS_COUNT: u32 = 100;
pub const DEFAULT_REQUEST_HEADERS_TIMEOUT: Duration = Duration::from_secs(10);

impl HttpProxyConfig {
    /// Every setting at its default, with these routes (HTTP on an `rpc_proxy` listener with
    /// `protocol: auto`).
    pub fn with_routes(routes: RouteSource) -> Self {
        HttpProxyConfig {
            codec: Codec::Auto,
            routes,
            max_request_headers_kb: DEFAULT_MAX_REQUEST_HEADERS_KB,
            max_headers_count: DEFAULT_MAX_HEADERS_COUNT,
            request_headers_timeout: Some(DEFAULT_REQUEST_HEADERS_TIMEOUT),
            max_request_body: None,
            via: None,
            http_filters: Vec::new(),
            xfcc: super::xfcc::XfccConfig::default(),
            tracing: None,
            stat_prefix: None,
        }
    }
}

impl NetworkFilterConfig for HttpProxyConfig {
    fn is_terminal(&self) -> bool {
        true
    }
}

pub fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Arc<dyn NetworkFilterConfig>> {
    let mut f = Fields::new(node, path, cx)?;
    let codec = match f.node("codec") {
        None => Some(Codec::Auto),
        Some(n) => decode_codec(n, &join(path, "codec"), cx),
    };
    let named = f.node("route_config");
    let inline = f.node("routes");
    let routes = match (named, inline) {
        (Some(n), None) => match n.kind {
            NodeKind::Scalar { .. } => {
                RouteConfigRef::decode(n, &join(path, "route_config"), cx).map(RouteSource::Named)
            }
            _ => sluice_config::decode_inline_route_config(n, &join(path, "route_config"), cx)
                .map(|r| RouteSource::Inline(Arc::new(r))),
        },
        (None, Some(n)) => sluice_config::decode_inline_route_config(n, &join(path, "routes"), cx)
            .map(|r| RouteSource::Inline(Arc::new(r))),
        (None, None) => {
            cx.error(
                f.line(),
                path,
                "needs route_config (a name from route_configs, or inline) or routes",
            );
            None
        }
        (Some(_), Some(n)) => {
            cx.error(n.line, path, "use only one of: route_config, routes");
            None
        }
    };
    let kb = f.or("max_request_headers_kb", DEFAULT_MAX_REQUEST_HEADERS_KB, cx);
    let kb_line = f.line_of("max_request_headers_kb");
    let count = f.or("max_headers_count", DEFAULT_MAX_HEADERS_COUNT, cx);
    let count_line = f.line_of("max_headers_count");
    let timeout = f.or(
        "request_headers_timeout",
        DEFAULT_REQUEST_HEADERS_TIMEOUT,
        cx,
    );
    let body_limit = f.optional::<ByteSize>("max_request_body", cx);
    let via = f.optional::<String>("via", cx);
    let via_line = f.line_of("via");
    let http_filters = match f.node("http_filters") {
        Some(n) => crate::stream::decode_list(n, &join(path, "http_filters"), cx),
        None => Some(Vec::new()),
    };
    let xfcc = super::xfcc::decode(&mut f, cx);
    let tracing = match f.node("tracing") {
        Some(n) => sluice_config::tracing::decode_listener(n, &join(path, "tracing"), cx)
            .map(|t| Some(Arc::new(t))),
        None => Some(None),
    };
    let stat_prefix = crate::stat_prefix::decode(&mut f, path, cx);
    f.finish(cx);
    let kb = in_range(
        kb,
        1..=8192,
        kb_line,
        &join(path, "max_request_headers_kb"),
        cx,
    );
    let count = in_range(
        count,
        1..=10_000,
        count_line,
        &join(path, "max_headers_count"),
        cx,
    );
    let via = match via {
        Ok(None) => Ok(None),
        Ok(Some(text)) => match http::HeaderValue::from_str(&text) {
            Ok(v) if !text.is_empty() => Ok(Some(v)),
            _ => {
                cx.error(
                    via_line,
                    &join(path, "via"),
                    format!("invalid header value {text:?}"),
                );
                Err(Reported)
            }
        },
        Err(e) => Err(e),
    };
    Some(Arc::new(HttpProxyConfig {
        codec: codec?,
        routes: routes?,
        max_request_headers_kb: kb?,
        max_headers_count: count?,
        request_headers_timeout: timeout.map(|t| (!t.is_zero()).then_some(t))?,
        max_request_body: body_limit.ok()?.map(|b| b.0),
        via: via.ok()?,
        http_filters: http_filters?,
        xfcc: xfcc?,
        tracing: tracing?,
        stat_prefix: stat_prefix?,
    }))
}

fn decode_codec(node: &Node, path: &str, cx: &mut Cx) -> Option<Codec> {
    keyword(node, path, cx, "codec", &Codec::NAMES, |name| match name {
        "http1" => Some(Codec::Http1),
        "http2" => Some(Codec::Http2),
        "auto" => Some(Codec::Auto),
        _ => None,
    })
}
