//! The `rpc_proxy` YAML body.

use std::sync::Arc;
use std::time::Duration;

use sluice_config::decode::{did_you_mean, join, Cx, Fields};
use sluice_config::yaml::NodeKind;
use sluice_config::{ByteSize, Decode, NetworkFilterConfig, Node, RouteConfigRef};

use crate::http_proxy::RouteSource;
use sluice_xprotocol::protocols;

/// Which protocol a listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolChoice {
    /// One registered protocol.
    Named(String),
    /// Told apart by each connection's first bytes: any registered protocol, HTTP/1 or h2.
    Auto,
}

#[derive(Debug, Clone)]
pub struct RpcProxyConfig {
    pub protocol: ProtocolChoice,
    pub routes: RouteSource,
    /// A frame declaring more bytes than this closes its connection (after a protocol error
    /// reply where the protocol has one).
    pub max_frame_size: u64,
    /// With `auto`, the first bytes must tell the protocol within this time; a client that
    /// sends nothing is dropped.
    pub detect_timeout: Duration,
    /// Requests in flight on one downstream connection; reading pauses at the limit, so a
    /// client cannot queue unbounded work (back-pressure, not an error).
    pub max_concurrent_requests: u32,
    /// A downstream connection with nothing in flight and nothing received for this long is
    /// closed; `None` keeps it.
    pub idle_timeout: Option<Duration>,
    /// An upstream connection that has read nothing for between one and two of these sends
    /// the protocol's heartbeat; `None` (`0s` in YAML) sends none.
    pub upstream_heartbeat_interval: Option<Duration>,
    /// A heartbeat with nothing read back within this closes its upstream connection (the
    /// calls on it fail as resets, which retry policies may retry).
    pub upstream_heartbeat_timeout: Duration,
    /// `stream_filters`: run on each request before routing.
    pub stream_filters: Vec<crate::stream::StreamFilterSpec>,
    /// Metrics go under `rpc.<stat_prefix>.`; `None`: the listener's name.
    pub stat_prefix: Option<String>,
    /// `tracing`: spans for this listener's calls (and its HTTP requests, with `auto`),
    /// exported by the top-level `tracing`.
    pub tracing: Option<Arc<sluice_config::ListenerTracing>>,
}

pub const DEFAULT_MAX_FRAME_SIZE: u64 = 16 * 1024 * 1024;
pub const DEFAULT_DETECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: u32 = 10_000;
pub const DEFAULT_UPSTREAM_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_UPSTREAM_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

impl NetworkFilterConfig for RpcProxyConfig {
    fn is_terminal(&self) -> bool {
        true
    }
}

pub fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Arc<dyn NetworkFilterConfig>> {
    let mut f = Fields::new(node, path, cx)?;
    let protocol = f.required::<String>("protocol", cx);
    let protocol_line = f.line_of("protocol");
    let routes = match f.node("route_config") {
        Some(n) => match n.kind {
            NodeKind::Scalar { .. } => {
                RouteConfigRef::decode(n, &join(path, "route_config"), cx).map(RouteSource::Named)
            }
            _ => sluice_config::decode_inline_route_config(n, &join(path, "route_config"), cx)
                .map(|r| RouteSource::Inline(Arc::new(r))),
        },
        None => {
            cx.error(
                f.line(),
                path,
                "needs route_config (a name from route_configs, or inline)",
            );
            None
        }
    };
    let max_frame_size = f.or("max_frame_size", ByteSize(DEFAULT_MAX_FRAME_SIZE), cx);
    let max_frame_line = f.line_of("max_frame_size");
    let detect_timeout = f.or("detect_timeout", DEFAULT_DETECT_TIMEOUT, cx);
    let max_concurrent = f.or(
        "max_concurrent_requests",
        DEFAULT_MAX_CONCURRENT_REQUESTS,
        cx,
    );
    let max_concurrent_line = f.line_of("max_concurrent_requests");
    let idle_timeout = f.optional::<Duration>("idle_timeout", cx);
    let heartbeat_interval = f.or(
        "upstream_heartbeat_interval",
        DEFAULT_UPSTREAM_HEARTBEAT_INTERVAL,
        cx,
    );
    let heartbeat_timeout_line = f.line_of("upstream_heartbeat_timeout");
    let heartbeat_timeout = f.or(
        "upstream_heartbeat_timeout",
        DEFAULT_UPSTREAM_HEARTBEAT_TIMEOUT,
        cx,
    );
    let stream_filters = match f.node("stream_filters") {
        Some(n) => {
            crate::stream::decode_list(n, &sluice_config::decode::join(path, "stream_filters"), cx)
                .and_then(|specs| http_only(specs, n.line, cx))
        }
        None => Some(Vec::new()),
    };
    let stat_prefix = crate::stat_prefix::decode(&mut f, path, cx);
    let tracing = match f.node("tracing") {
        Some(n) => sluice_config::tracing::decode_listener(n, &join(path, "tracing"), cx)
            .map(|t| Some(Arc::new(t))),
        None => Some(None),
    };
    f.finish(cx);

    let protocol = protocol.and_then(|name| {
        if name == "auto" {
            return Some(ProtocolChoice::Auto);
        }
        let registry = protocols();
        if registry.get(&name).is_some() {
            return Some(ProtocolChoice::Named(name));
        }
        let mut names = registry.names();
        names.push("auto");
        let hint = did_you_mean(&name, names.iter().copied());
        cx.error(
            protocol_line,
            &join(path, "protocol"),
            format!(
                "unknown protocol \"{name}\"{hint}; expected one of: {}",
                names.join(", ")
            ),
        );
        None
    });
    let max_frame_size = max_frame_size.and_then(|b| {
        if b.0 < 64 || usize::try_from(b.0).is_err() {
            cx.error(
                max_frame_line,
                &join(path, "max_frame_size"),
                "must be at least 64 bytes",
            );
            return None;
        }
        Some(b.0)
    });
    let max_concurrent = max_concurrent.and_then(|n| {
        if n == 0 {
            cx.error(
                max_concurrent_line,
                &join(path, "max_concurrent_requests"),
                "must be at least 1",
            );
            return None;
        }
        Some(n)
    });
    let heartbeat_timeout = heartbeat_timeout.and_then(|t| {
        if t < Duration::from_millis(1) {
            cx.error(
                heartbeat_timeout_line,
                &join(path, "upstream_heartbeat_timeout"),
                "must be at least 1ms (set upstream_heartbeat_interval: 0s to send no heartbeats)",
            );
            return None;
        }
        Some(t)
    });
    Some(Arc::new(RpcProxyConfig {
        protocol: protocol?,
        routes: routes?,
        max_frame_size: max_frame_size?,
        detect_timeout: detect_timeout?,
        max_concurrent_requests: max_concurrent?,
        idle_timeout: idle_timeout.ok()?.filter(|t| !t.is_zero()),
        upstream_heartbeat_interval: Some(heartbeat_interval?).filter(|d| !d.is_zero()),
        upstream_heartbeat_timeout: heartbeat_timeout?,
        stream_filters: stream_filters?,
        stat_prefix: stat_prefix?,
        tracing: tracing?,
    }))
}

/// `health_check` answers HTTP probes; an RPC protocol has no status to answer them with.
fn http_only(
    specs: Vec<crate::stream::StreamFilterSpec>,
    line: usize,
    cx: &mut Cx,
) -> Option<Vec<crate::stream::StreamFilterSpec>> {
    let mut ok = true;
    for spec in specs.iter().filter(|s| s.name == "health_check") {
        cx.error(
            line,
            &spec.path,
            "health_check answers HTTP probes: use it in http_proxy's http_filters",
        );
        ok = false;
    }
    ok.then_some(specs)
}
