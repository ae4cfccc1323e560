//! Clusters: how their hosts are found, how one is picked, and how hosts are grouped (subsets,
//! localities, priorities). Decoding is in `cluster_decode.rs`.

use std::net::SocketAddr;
use std::time::Duration;

use crate::address::Address;
use crate::model::{CommonHttpProtocolOptions, Http2ProtocolOptions, UpstreamProtocol};

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub name: String,
    /// How the endpoints' addresses become hosts.
    pub discovery: DiscoveryType,
    /// DNS clusters: how often names are resolved again.
    pub dns_refresh_rate: Duration,
    /// DNS clusters: which address families a name resolves to.
    pub dns_lookup_family: DnsLookupFamily,
    /// DNS clusters: the name servers to ask; empty means the system's (`/etc/resolv.conf`).
    pub dns_resolvers: Vec<SocketAddr>,
    /// The HTTP version spoken to the endpoints (ignored by `tcp_proxy`).
    pub protocol: UpstreamProtocol,
    /// Settings for HTTP/2 connections to the endpoints.
    pub http2_protocol_options: Http2ProtocolOptions,
    /// Settings for HTTP connections of either version to the endpoints.
    pub common_http_protocol_options: CommonHttpProtocolOptions,
    pub connect_timeout: Duration,
    /// Active health checking of the endpoints; none when absent.
    pub health_check: Option<crate::health_check::HealthCheckConfig>,
    pub lb_policy: LbPolicy,
    /// Tuning of the policies that have any.
    pub lb_config: LbConfig,
    pub subset: SubsetConfig,
    /// The caller's own locality: hosts there are preferred, with spill-over by health.
    pub local_locality: Option<LocalLocality>,
    /// Percent; a level (priority, or locality tier) whose healthy share times this factor is
    /// under 100% passes the rest of its traffic on. Envoy's default is 140.
    pub overprovisioning_factor: u32,
    /// Percent; when fewer hosts than this are healthy, health is ignored (a half-broken
    /// cluster gets all hosts rather than overloading the few left). Envoy's default is 50.
    pub healthy_panic_threshold: u32,
    pub outlier_detection: Option<OutlierDetection>,
    pub circuit_breakers: CircuitBreakers,
    /// TCP keepalive on upstream connections (`upstream_connection_options.tcp_keepalive`).
    pub tcp_keepalive: Option<TcpKeepalive>,
    /// Bytes an upstream connection may buffer; sizes the HTTP/2 flow-control windows.
    pub per_connection_buffer_limit: Option<u64>,
    /// TLS to the endpoints (`tls:`); plaintext when absent.
    pub tls: Option<std::sync::Arc<crate::cluster_tls::UpstreamTlsConfig>>,
    /// Per-endpoint transport: the first entry whose labels an endpoint's
    /// `transport_socket_match` has decides its TLS (or plaintext); `tls` for the rest.
    pub transport_socket_matches: Vec<TransportSocketMatch>,
    pub endpoints: Vec<EndpointConfig>,
    pub line: usize,
}

/// `static`, `strict_dns` or `logical_dns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveryType {
    /// Endpoints are IP addresses (or Unix sockets) as written.
    Static,
    /// Every address a name resolves to is a host; membership follows each resolution.
    StrictDns,
    /// One host per name: new connections go to the first address of the latest resolution.
    LogicalDns,
}

impl DiscoveryType {
    pub const NAMES: [&'static str; 3] = ["static", "strict_dns", "logical_dns"];

    pub fn from_name(name: &str) -> Option<DiscoveryType> {
        match name {
            "static" => Some(DiscoveryType::Static),
            "strict_dns" => Some(DiscoveryType::StrictDns),
            "logical_dns" => Some(DiscoveryType::LogicalDns),
            _ => None,
        }
    }

    pub fn uses_dns(self) -> bool {
        self != DiscoveryType::Static
    }
}

/// Envoy's `dns_lookup_family`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsLookupFamily {
    /// IPv4 only.
    V4Only,
    /// IPv6 only.
    V6Only,
    /// IPv6 if the name has any, else IPv4.
    Auto,
    /// IPv4 if the name has any, else IPv6.
    V4Preferred,
    /// Both.
    All,
}

impl DnsLookupFamily {
    pub const NAMES: [&'static str; 5] = ["v4_only", "v6_only", "auto", "v4_preferred", "all"];

    pub fn from_name(name: &str) -> Option<DnsLookupFamily> {
        match name {
            "v4_only" => Some(DnsLookupFamily::V4Only),
            "v6_only" => Some(DnsLookupFamily::V6Only),
            "auto" => Some(DnsLookupFamily::Auto),
            "v4_preferred" => Some(DnsLookupFamily::V4Preferred),
            "all" => Some(DnsLookupFamily::All),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbPolicy {
    RoundRobin,
    Random,
    LeastRequest,
    RingHash,
    Maglev,
    PeakEwma,
}

impl LbPolicy {
    pub const NAMES: [&'static str; 6] = [
        "round_robin",
        "random",
        "least_request",
        "ring_hash",
        "maglev",
        "peak_ewma",
    ];

    pub fn from_name(name: &str) -> Option<LbPolicy> {
        match name {
            "round_robin" => Some(LbPolicy::RoundRobin),
            "random" => Some(LbPolicy::Random),
            "least_request" => Some(LbPolicy::LeastRequest),
            "ring_hash" => Some(LbPolicy::RingHash),
            "maglev" => Some(LbPolicy::Maglev),
            "peak_ewma" => Some(LbPolicy::PeakEwma),
            _ => None,
        }
    }

    /// Whether the policy uses the route's `hash_policy`.
    pub fn is_hash(self) -> bool {
        matches!(self, LbPolicy::RingHash | LbPolicy::Maglev)
    }
}

/// Per-policy tuning, Envoy's `*_lb_config` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LbConfig {
    /// `least_request_lb_config.choice_count`: hosts sampled per pick (the least loaded wins).
    pub choice_count: u32,
    /// `ring_hash_lb_config.minimum_ring_size`.
    pub minimum_ring_size: u64,
    /// `ring_hash_lb_config.maximum_ring_size`.
    pub maximum_ring_size: u64,
    /// `maglev_lb_config.table_size`: a prime.
    pub maglev_table_size: u64,
    /// `peak_ewma_lb_config.decay`: how fast a latency sample fades.
    pub peak_ewma_decay: Duration,
    /// `peak_ewma_lb_config.default_rtt`: the estimate of a host with no sample yet.
    pub peak_ewma_default_rtt: Duration,
}

impl Default for LbConfig {
    fn default() -> Self {
        LbConfig {
            choice_count: 2,
            minimum_ring_size: 1024,
            maximum_ring_size: 8 * 1024 * 1024,
            maglev_table_size: 65_537,
            peak_ewma_decay: Duration::from_secs(10),
            peak_ewma_default_rtt: Duration::from_millis(30),
        }
    }
}

/// Subset load balancing: which subsets exist and what a route that names none gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubsetConfig {
    /// Each entry is a set of metadata keys; every combination of values the hosts carry for
    /// those keys becomes a subset, built when hosts change.
    pub selectors: Vec<Vec<String>>,
    pub fallback_policy: FallbackPolicy,
    /// The subset `default_subset` fallback uses: hosts whose metadata has all these pairs.
    pub default_subset: Vec<(String, String)>,
}

/// What a request whose `metadata_match` finds no (non-empty) subset gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FallbackPolicy {
    /// A 503: no host matches.
    NoFallback,
    /// Any host of the cluster.
    #[default]
    AnyEndpoint,
    /// The hosts of `default_subset`.
    DefaultSubset,
}

impl FallbackPolicy {
    pub const NAMES: [&'static str; 3] = ["no_fallback", "any_endpoint", "default_subset"];

    pub fn from_name(name: &str) -> Option<FallbackPolicy> {
        match name {
            "no_fallback" => Some(FallbackPolicy::NoFallback),
            "any_endpoint" => Some(FallbackPolicy::AnyEndpoint),
            "default_subset" => Some(FallbackPolicy::DefaultSubset),
            _ => None,
        }
    }
}

/// Where the proxy itself runs (`local_region`, `local_zone`, `local_sub_zone`); at least one
/// is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalLocality {
    pub region: Option<String>,
    pub zone: Option<String>,
    pub sub_zone: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub address: EndpointAddress,
    /// Relative share of traffic, 1..=128 (Envoy's bound for endpoint weights is larger, but
    /// a bounded range keeps the round-robin schedule small).
    pub weight: u32,
    /// Labels for subset load balancing, in the order written.
    pub metadata: Vec<(String, String)>,
    pub region: String,
    pub zone: String,
    pub sub_zone: String,
    /// 0 (the default) is tried first; higher levels take traffic as lower ones fail.
    pub priority: u32,
    /// Labels the cluster's `transport_socket_matches` are matched against.
    pub transport_socket_match: Vec<(String, String)>,
}

/// One `transport_socket_matches` entry: endpoints whose labels include all of `labels`
/// connect with `tls`, or in plaintext when it is `None` (Envoy's per-endpoint transport,
/// which Istio's automatic mTLS uses).
#[derive(Debug, Clone)]
pub struct TransportSocketMatch {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub tls: Option<std::sync::Arc<crate::cluster_tls::UpstreamTlsConfig>>,
}

/// An endpoint's address: a socket address, or (DNS clusters) a name and port to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointAddress {
    Socket(Address),
    Name { host: String, port: u16 },
}

impl EndpointAddress {
    pub fn socket(&self) -> Option<&Address> {
        match self {
            EndpointAddress::Socket(a) => Some(a),
            EndpointAddress::Name { .. } => None,
        }
    }
}

impl std::fmt::Display for EndpointAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointAddress::Socket(a) => a.fmt(f),
            EndpointAddress::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// A set of metadata pairs in canonical form (sorted by key, one value per key), as subset
/// load balancing keys its subsets and routes name them, so a lookup is one string hash.
pub fn metadata_key<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
    pairs.sort();
    pairs.dedup_by(|a, b| a.0 == b.0);
    let mut key = String::new();
    for (i, (k, v)) in pairs.into_iter().enumerate() {
        if i > 0 {
            key.push('\u{1}');
        }
        key.push_str(k);
        key.push('\u{0}');
        key.push_str(v);
    }
    key
}

/// A route's `metadata_match`: the pairs as written (sorted by key) and their
/// [`metadata_key`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataMatch {
    pub pairs: Vec<(String, String)>,
    pub key: String,
}

impl MetadataMatch {
    pub fn new(mut pairs: Vec<(String, String)>) -> Self {
        pairs.sort();
        let key = metadata_key(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        MetadataMatch { pairs, key }
    }

    /// These pairs, with `other`'s added (its value winning for a key both have).
    pub fn merged(&self, other: &MetadataMatch) -> MetadataMatch {
        let mut pairs = other.pairs.clone();
        for (k, v) in &self.pairs {
            if !pairs.iter().any(|(ok, _)| ok == k) {
                pairs.push((k.clone(), v.clone()));
            }
        }
        MetadataMatch::new(pairs)
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// Passive health checking: hosts that fail requests are ejected for a while (Envoy's
/// `outlier_detection`, the part Sluice implements).
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierDetection {
    /// Consecutive 5xx responses (or connect failures and resets) that eject a host; 0: off.
    pub consecutive_5xx: u32,
    /// Consecutive 502/503/504 responses, connect failures or resets that eject a host; 0: off.
    pub consecutive_gateway_failure: u32,
    /// How often ejections expire and success rates are computed.
    pub interval: Duration,
    /// An ejection lasts this long times the number of times the host was ejected lately.
    pub base_ejection_time: Duration,
    /// The longest an ejection lasts.
    pub max_ejection_time: Duration,
    /// At most this share of the cluster's hosts (percent) is ejected at once; at least one
    /// host can always be ejected.
    pub max_ejection_percent: u32,
    /// Success-rate ejection: on when `success_rate_minimum_hosts` hosts each had at least
    /// `success_rate_request_volume` requests in an interval; a host whose success rate is
    /// under mean − `success_rate_stdev_factor`/1000 × stdev is ejected. 0 hosts: off.
    pub success_rate_minimum_hosts: u32,
    pub success_rate_request_volume: u32,
    pub success_rate_stdev_factor: u32,
}

impl Default for OutlierDetection {
    fn default() -> Self {
        OutlierDetection {
            consecutive_5xx: 5,
            consecutive_gateway_failure: 0,
            interval: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            success_rate_minimum_hosts: 5,
            success_rate_request_volume: 100,
            success_rate_stdev_factor: 1900,
        }
    }
}

/// Limits on what a cluster may have in flight (Envoy's `circuit_breakers` thresholds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CircuitBreakers {
    /// Open connections to all hosts.
    pub max_connections: u32,
    /// Requests waiting for a connection.
    pub max_pending_requests: u32,
    /// Requests in flight.
    pub max_requests: u32,
    /// Retries in flight.
    pub max_retries: u32,
    /// If set, replaces `max_retries`: retries in flight may be this share (percent) of the
    /// requests in flight, and at least `min_retry_concurrency`.
    pub retry_budget: Option<RetryBudget>,
    /// Limits for routes with `priority: high`, counted apart from the default ones (Envoy's
    /// `HIGH` thresholds). Connections are shared by both priorities, so their caps are the
    /// cluster's.
    pub high_priority: HighPriorityThresholds,
}

/// Request-side limits of high-priority routes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HighPriorityThresholds {
    pub max_requests: u32,
    pub max_retries: u32,
    pub retry_budget: Option<RetryBudget>,
}

impl Default for HighPriorityThresholds {
    fn default() -> Self {
        HighPriorityThresholds {
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    pub budget_percent: f64,
    pub min_retry_concurrency: u32,
}

impl Default for CircuitBreakers {
    fn default() -> Self {
        CircuitBreakers {
            max_connections: 1024,
            max_pending_requests: 1024,
            max_requests: 1024,
            max_retries: 3,
            retry_budget: None,
            high_priority: HighPriorityThresholds::default(),
        }
    }
}

/// Envoy's `tcp_keepalive`: probes after `keepalive_time` idle, every `keepalive_interval`,
/// `keepalive_probes` unanswered close the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpKeepalive {
    pub keepalive_time: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_probes: u32,
}

impl Default for TcpKeepalive {
    fn default() -> Self {
        // Linux's own defaults, which Envoy also keeps for fields left out.
        TcpKeepalive {
            keepalive_time: Duration::from_secs(7200),
            keepalive_interval: Duration::from_secs(75),
            keepalive_probes: 9,
        }
    }
}
