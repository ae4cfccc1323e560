//! The native config model: plain, immutable data that both YAML and (later) xDS produce.
//!
//! Every type here is built once per config version and then shared read-only behind an
//! `Arc`; nothing on the data path mutates it.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use crate::address::{Address, ServerAddress};
use crate::cluster::ClusterConfig;
use crate::route::RouteConfig;

/// A whole proxy configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub admin: AdminConfig,
    /// Worker threads for the data plane; 1 selects a current-thread runtime.
    pub workers: usize,
    /// How connections are spread over the workers.
    pub worker_mode: WorkerMode,
    /// How long live connections may finish after SIGTERM/SIGINT before the process exits.
    pub drain_timeout: Duration,
    pub listeners: Vec<ListenerConfig>,
    /// HTTP route tables, referred to by name from `http_proxy` filters.
    pub route_configs: Vec<RouteConfig>,
    pub clusters: Vec<ClusterConfig>,
    /// Who this proxy is to a control plane (SDS today, xDS later).
    pub node: NodeConfig,
    /// The SDS server, when some `tls:` block names a secret with `{ sds: NAME }`.
    pub sds: Option<SdsConfig>,
    /// The xDS control plane, if resources come from one.
    pub xds: Option<XdsConfig>,
    /// The document this config was decoded from, as written (the admin's `/config_dump`).
    pub document: Arc<crate::yaml::Node>,
    /// The OTLP exporter for the listeners that trace (`http_proxy` `tracing:`).
    pub tracing: Option<crate::tracing::TracingConfig>,
    /// How often histograms close an interval and sinks are sent to (Envoy's
    /// `stats_flush_interval`).
    pub stats_flush_interval: Duration,
    /// `stats_sinks`: StatsD / DogStatsD over UDP.
    pub stats_sinks: Vec<crate::StatsSinkConfig>,
}

/// `node:`, the identity sent in every discovery request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: String,
    pub cluster: String,
    /// `metadata`: string pairs a control plane may use to tell proxies apart.
    pub metadata: Vec<(String, String)>,
    /// `locality`: where this proxy runs (`region`, `zone`, `sub_zone`).
    pub locality: Locality,
}

/// A region / zone / sub-zone triple; empty parts are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locality {
    pub region: String,
    pub zone: String,
    pub sub_zone: String,
}

pub const DEFAULT_NODE_ID: &str = "sluice";

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            id: DEFAULT_NODE_ID.to_string(),
            cluster: String::new(),
            metadata: Vec::new(),
            locality: Locality::default(),
        }
    }
}

/// `sds:`, the Secret Discovery Service server certificates and CA bundles come from.
#[derive(Debug, Clone)]
pub struct SdsConfig {
    /// `host:port`, `name:port` (plaintext gRPC) or `unix:/path`.
    pub address: ServerAddress,
    /// How long a listener waits for its first secrets before it serves without them.
    pub initial_fetch_timeout: Duration,
}

pub const DEFAULT_INITIAL_FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// `xds:`, the control plane listeners, route configs, clusters and endpoints come from
/// (beside those written in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdsConfig {
    /// `host:port`, `name:port` (plaintext gRPC) or `unix:/path`.
    pub address: ServerAddress,
    /// One aggregated stream (ADS) for every type, or one stream per type.
    pub ads: bool,
    /// The incremental (delta) protocol instead of state of the world.
    pub delta: bool,
    /// Subscribe to listeners (LDS); their route configs (RDS) follow.
    pub lds: bool,
    /// Subscribe to clusters (CDS); their endpoints (EDS) follow.
    pub cds: bool,
    /// How long the start waits for the first resources, and a listener or cluster for the
    /// route config or endpoints it needs, before going on without them.
    pub initial_fetch_timeout: Duration,
}

impl Config {
    pub fn cluster(&self, name: &str) -> Option<&ClusterConfig> {
        self.clusters.iter().find(|c| c.name == name)
    }

    /// `2 listeners, 3 clusters`.
    pub fn summary(&self) -> String {
        fn n(count: usize, what: &str) -> String {
            format!("{count} {what}{}", if count == 1 { "" } else { "s" })
        }
        let mut s = format!(
            "{}, {}",
            n(self.listeners.len(), "listener"),
            n(self.clusters.len(), "cluster")
        );
        if !self.route_configs.is_empty() {
            s += &format!(", {}", n(self.route_configs.len(), "route config"));
        }
        s
    }
}

/// How the data plane uses its worker threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerMode {
    /// One multi-thread runtime: any worker may run any connection, idle workers steal work.
    WorkStealing,
    /// One single-thread runtime per worker, each with its own `SO_REUSEPORT` socket per TCP
    /// listener; the kernel spreads new connections and a connection never changes thread.
    PerCore,
}

impl WorkerMode {
    pub const NAMES: [&'static str; 2] = ["work_stealing", "per_core"];

    pub fn from_name(name: &str) -> Option<WorkerMode> {
        match name {
            "work_stealing" => Some(WorkerMode::WorkStealing),
            "per_core" => Some(WorkerMode::PerCore),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub address: Address,
}

pub const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:15000";

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub address: Address,
    /// Bind with `SO_REUSEPORT`, so another process (a hot upgrade) can bind the same port.
    pub reuse_port: bool,
    /// Accept queue length.
    pub backlog: u32,
    /// File mode for a Unix-socket listener (e.g. 0o660); `None` keeps the umask's.
    pub socket_mode: Option<u32>,
    /// Run on each new connection before a filter chain is chosen.
    pub listener_filters: Vec<crate::tls::ListenerFilter>,
    /// How long the listener filters may wait for the client's first bytes; `None`: the
    /// longest `handshake_timeout` of the listener's chains.
    pub listener_filters_timeout: Option<std::time::Duration>,
    /// On that timeout, go on as a plaintext connection (a protocol where the server speaks
    /// first) instead of closing.
    pub continue_on_listener_filters_timeout: bool,
    /// At least one. The short form (`filters:` with an optional `tls:`) is one chain that
    /// matches every connection.
    pub filter_chains: Vec<crate::tls::FilterChainConfig>,
    /// Where finished requests (connections, for TCP) are logged; empty: nowhere.
    pub access_log: Vec<crate::access_log::AccessLogConfig>,
    /// Line in the config file, for messages.
    pub line: usize,
}

/// One entry of a listener's network filter chain: a registered filter name and its decoded config.
#[derive(Debug, Clone)]
pub struct NetworkFilterSpec {
    pub name: String,
    pub config: Arc<dyn NetworkFilterConfig>,
}

/// The decoded config of one network filter. Each filter crate defines its own type and
/// registers a decoder for it (see [`crate::Registry`]); the runtime downcasts it back.
pub trait NetworkFilterConfig: Debug + Send + Sync + Any {
    /// Whether this filter takes over the connection (and so must be last in its chain).
    fn is_terminal(&self) -> bool;
}

/// A reference to a cluster by name, remembering where it was written so a dangling reference
/// can be reported at the right line. Decoding one records it for the existence check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRef {
    pub name: String,
    pub path: String,
    pub line: usize,
}

/// A reference to a `route_configs` entry by name, located like [`ClusterRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfigRef {
    pub name: String,
    pub path: String,
    pub line: usize,
}

/// Envoy's `common_http_protocol_options` of a cluster (the part Sluice uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonHttpProtocolOptions {
    /// An upstream connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// A connection is closed after this many requests (HTTP/2: streams); `None`: no limit.
    pub max_requests_per_connection: Option<u32>,
    /// HTTP/1: at most this many idle connections are kept per host; more are closed as they
    /// come free. `None`: no limit.
    pub max_idle_connections: Option<u32>,
}

impl Default for CommonHttpProtocolOptions {
    fn default() -> Self {
        CommonHttpProtocolOptions {
            idle_timeout: Duration::from_secs(60),
            max_requests_per_connection: None,
            max_idle_connections: None,
        }
    }
}

/// Envoy's `http2_protocol_options` of a cluster (the part Sluice uses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Http2ProtocolOptions {
    /// At most this many concurrent streams per upstream connection; another connection is
    /// opened beyond it. `None`: as many as the upstream allows.
    pub max_concurrent_streams: Option<u32>,
    /// PINGs that find dead connections (Envoy's `connection_keepalive`); `None`: no PINGs.
    pub connection_keepalive: Option<Keepalive>,
}

/// Envoy's `connection_keepalive`: a PING every `interval`; a connection whose PING goes
/// unanswered for `timeout` is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    Http1,
    /// HTTP/2 over cleartext (prior knowledge).
    Http2,
    /// Whatever the downstream request used.
    SameAsDownstream,
}

impl UpstreamProtocol {
    pub const NAMES: [&'static str; 3] = ["http1", "http2", "same_as_downstream"];

    pub fn from_name(name: &str) -> Option<UpstreamProtocol> {
        match name {
            "http1" => Some(UpstreamProtocol::Http1),
            "http2" => Some(UpstreamProtocol::Http2),
            "same_as_downstream" => Some(UpstreamProtocol::SameAsDownstream),
            _ => None,
        }
    }
}
