//! Envoy's `Cluster` as a native `clusters[]` entry.
//!
//! Where Envoy's default differs from the native one, the Envoy value is written out, so a
//! translated cluster behaves as Envoy would: the upstream idle timeout (Envoy 1h, native
//! 60s), an HTTP health check's expected statuses (Envoy 200 only, native any 2xx), the
//! subset fallback (Envoy `NO_FALLBACK`), the TLS client's highest version (Envoy TLS 1.2 for
//! upstreams unless told otherwise) and the `connect_timeout` (both 5s, written anyway).
//!
//! An `EDS` cluster becomes a native `static` cluster without endpoints; [`with_endpoints`]
//! puts in those of its `ClusterLoadAssignment` when they arrive.

use envoy_types::pb::envoy::config::cluster::v3::circuit_breakers::thresholds::RetryBudget;
use envoy_types::pb::envoy::config::cluster::v3::circuit_breakers::Thresholds;
use envoy_types::pb::envoy::config::cluster::v3::cluster::common_lb_config::LocalityConfigSpecifier;
use envoy_types::pb::envoy::config::cluster::v3::cluster::lb_subset_config::lb_subset_selector::LbSubsetSelectorFallbackPolicy;
use envoy_types::pb::envoy::config::cluster::v3::cluster::lb_subset_config::{
    LbSubsetFallbackPolicy, LbSubsetMetadataFallbackPolicy,
};
use envoy_types::pb::envoy::config::cluster::v3::cluster::ring_hash_lb_config::HashFunction;
use envoy_types::pb::envoy::config::cluster::v3::cluster::{
    ClusterDiscoveryType, ClusterProtocolSelection, CommonLbConfig, DiscoveryType,
    DnsLookupFamily, LbConfig, LbPolicy, LbSubsetConfig, SlowStartConfig,
};
use envoy_types::pb::envoy::config::cluster::v3::{
    CircuitBreakers, Cluster as EnvoyCluster, OutlierDetection, UpstreamConnectionOptions,
};
use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
use envoy_types::pb::envoy::config::core::v3::health_check::payload::Payload as PayloadKind;
use envoy_types::pb::envoy::config::core::v3::health_check::{
    GrpcHealthCheck, HealthChecker, HttpHealthCheck, Payload, TcpHealthCheck,
};
use envoy_types::pb::envoy::config::core::v3::http_protocol_options::HeadersWithUnderscoresAction;
use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::config::core::v3::{
    Address, HealthCheck, Http1ProtocolOptions, Http2ProtocolOptions,
    HttpProtocolOptions as CoreHttpProtocolOptions, RequestMethod, RoutingPriority,
    TransportSocket, UpstreamHttpProtocolOptions,
};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::subject_alt_name_matcher::SanType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::tls_parameters::TlsProtocol;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, TlsParameters, UpstreamTlsContext,
};
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::explicit_http_config::ProtocolConfig;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::UpstreamProtocolOptions;
use envoy_types::pb::envoy::extensions::upstreams::http::v3::HttpProtocolOptions as UpstreamHttpOptions;
use envoy_types::pb::envoy::r#type::matcher::v3::string_matcher::MatchPattern;
use envoy_types::pb::envoy::r#type::matcher::v3::StringMatcher;
use envoy_types::pb::envoy::r#type::v3::{CodecClientType, Percent};
use envoy_types::pb::google::protobuf::Duration;
use sluice_config::yaml::{Node, NodeKind};

use super::endpoint::{self, Endpoints};
use super::tls::{self, file, sds_ref};
use super::tree::{
    boolean, duration, ignored, index, join, list, number, single, string_map, string_metadata,
    text, texts, type_url, unpack, Map,
};
use super::{Error, Result};

/// The key of the HTTP options in `typed_extension_protocol_options`, and their message.
const HTTP_OPTIONS: &str = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const UPSTREAM_TLS_CONTEXT: &str = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";
const RAW_BUFFER: &str = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

/// A translated cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The native `clusters[]` entry; for an EDS cluster, without `endpoints` yet.
    pub node: Node,
    /// For an EDS cluster: the ClusterLoadAssignment name to subscribe to
    /// (`eds_cluster_config.service_name`, else the cluster's name).
    pub eds: Option<String>,
}

/// How the cluster finds its hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Static,
    StrictDns,
    LogicalDns,
    Eds,
}

impl Kind {
    fn dns(self) -> bool {
        matches!(self, Kind::StrictDns | Kind::LogicalDns)
    }

    /// The native `type`: an EDS cluster is a static one whose endpoints come later.
    fn native(self) -> &'static str {
        match self {
            Kind::Static | Kind::Eds => "static",
            Kind::StrictDns => "strict_dns",
            Kind::LogicalDns => "logical_dns",
        }
    }
}

/// Translates a `Cluster`.
pub fn cluster(c: &EnvoyCluster) -> Result<Cluster> {
    if c.name.is_empty() {
        return Err(Error::new("name", "is required"));
    }
    let kind = discovery(c)?;
    let mut m = Map::new();
    m.set("name", text(&c.name));
    m.set("type", text(kind.native()));
    ignore_and_refuse(c)?;
    dns(c, kind, &mut m)?;
    m.set(
        "connect_timeout",
        match &c.connect_timeout {
            Some(d) => positive(d, "connect_timeout")?,
            None => number("5s"),
        },
    );
    lb_policy(c, &mut m)?;
    if let Some(lb) = &c.common_lb_config {
        common_lb(lb, "common_lb_config", &mut m)?;
    }
    if let Some(s) = &c.lb_subset_config {
        subset(s, "lb_subset_config", &mut m)?;
    }
    protocol(c, &mut m)?;
    if let Some(cb) = &c.circuit_breakers {
        m.set(
            "circuit_breakers",
            circuit_breakers(cb, "circuit_breakers")?,
        );
    }
    if let Some(od) = &c.outlier_detection {
        m.set(
            "outlier_detection",
            outlier_detection(od, "outlier_detection")?,
        );
    }
    match c.health_checks.as_slice() {
        [] => {}
        [hc] => {
            m.set(
                "health_check",
                health_check(hc, &index("health_checks", 0))?,
            );
        }
        [_, ..] => {
            return Err(Error::new(
                index("health_checks", 1),
                "Sluice runs one health check per cluster",
            ))
        }
    }
    if let Some(o) = &c.upstream_connection_options {
        if let Some(node) = connection_options(o, "upstream_connection_options")? {
            m.set("upstream_connection_options", node);
        }
    }
    if let Some(limit) = c
        .per_connection_buffer_limit_bytes
        .as_ref()
        .map(|v| v.value)
    {
        if !(16 * 1024..=1 << 30).contains(&limit) {
            return Err(Error::new(
                "per_connection_buffer_limit_bytes",
                format!("must be from 16384 to 1073741824 in Sluice, found {limit}"),
            ));
        }
        m.set("per_connection_buffer_limit", number(limit));
    }
    if let Some(ts) = &c.transport_socket {
        if let Some(tls) = transport_socket(ts, "transport_socket", kind)? {
            m.set("tls", tls);
        }
    }
    if !c.transport_socket_matches.is_empty() {
        let mut entries = Vec::with_capacity(c.transport_socket_matches.len());
        for (i, t) in c.transport_socket_matches.iter().enumerate() {
            let at = index("transport_socket_matches", i);
            if t.name.is_empty() {
                return Err(Error::new(join(&at, "name"), "is required"));
            }
            let mut e = Map::new();
            e.set("name", text(&t.name));
            let labels = string_metadata(t.r#match.as_ref(), &join(&at, "match"))?;
            if !labels.is_empty() {
                e.set("match", string_map(&labels));
            }
            let ts = t
                .transport_socket
                .as_ref()
                .ok_or_else(|| Error::new(join(&at, "transport_socket"), "is required"))?;
            if let Some(tls) = transport_socket(ts, &join(&at, "transport_socket"), kind)? {
                e.set("tls", tls);
            }
            entries.push(e.build());
        }
        m.set("transport_socket_matches", list(entries));
    }
    let eds = match kind {
        Kind::Eds => {
            // Envoy reads an EDS cluster's endpoints from EDS only.
            ignored(c.load_assignment.is_some(), "", "load_assignment");
            let config = c.eds_cluster_config.as_ref();
            // Sluice's xDS client asks its own server; where Envoy would is not a choice here.
            ignored(
                config.is_some_and(|e| e.eds_config.is_some()),
                "eds_cluster_config",
                "eds_config",
            );
            Some(
                config
                    .map(|e| e.service_name.as_str())
                    .filter(|s| !s.is_empty())
                    .unwrap_or(&c.name)
                    .to_string(),
            )
        }
        _ => {
            ignored(c.eds_cluster_config.is_some(), "", "eds_cluster_config");
            let found = match &c.load_assignment {
                Some(cla) => {
                    let e = endpoint::translate(cla, kind.dns())
                        .map_err(|e| e.under("load_assignment"))?;
                    let count = match &e.list.kind {
                        NodeKind::Seq(items) => items.len(),
                        _ => 0,
                    };
                    Some((e, count))
                }
                None => None,
            };
            if kind == Kind::LogicalDns {
                let count = found.as_ref().map_or(0, |(_, n)| *n);
                if count != 1 {
                    return Err(Error::new(
                        "load_assignment",
                        format!("a LOGICAL_DNS cluster has exactly one endpoint, found {count}"),
                    ));
                }
            }
            if let Some((e, _)) = found {
                m.set("endpoints", e.list);
                if let Some(f) = e.overprovisioning_factor {
                    m.set("overprovisioning_factor", number(f));
                }
            }
            None
        }
    };
    Ok(Cluster {
        node: m.build(),
        eds,
    })
}

/// An EDS cluster's entry with its endpoints put in (and the overprovisioning factor).
pub fn with_endpoints(cluster: &Node, endpoints: &Endpoints) -> Node {
    let mut node = cluster.clone();
    if let NodeKind::Map(entries) = &mut node.kind {
        // A new assignment replaces the previous one whole, the factor included.
        entries.retain(|(k, _)| k != "endpoints" && k != "overprovisioning_factor");
        entries.push(("endpoints".to_string(), endpoints.list.clone()));
        if let Some(f) = endpoints.overprovisioning_factor {
            entries.push(("overprovisioning_factor".to_string(), number(f)));
        }
    }
    node
}

/// `type` (or the `cluster_type` extension, refused).
fn discovery(c: &EnvoyCluster) -> Result<Kind> {
    let t = match &c.cluster_discovery_type {
        None => DiscoveryType::Static as i32,
        Some(ClusterDiscoveryType::Type(t)) => *t,
        Some(ClusterDiscoveryType::ClusterType(ct)) => {
            return Err(Error::new(
                "cluster_type",
                format!(
                    "custom cluster type \"{}\" is not supported by Sluice",
                    ct.name
                ),
            ))
        }
    };
    match DiscoveryType::try_from(t) {
        Ok(DiscoveryType::Static) => Ok(Kind::Static),
        Ok(DiscoveryType::StrictDns) => Ok(Kind::StrictDns),
        Ok(DiscoveryType::LogicalDns) => Ok(Kind::LogicalDns),
        Ok(DiscoveryType::Eds) => Ok(Kind::Eds),
        Ok(DiscoveryType::OriginalDst) => Err(Error::new(
            "type",
            "ORIGINAL_DST is not supported by Sluice",
        )),
        Err(_) => Err(Error::new("type", format!("unknown cluster type {t}"))),
    }
}

/// Fields with nothing to write: ignored when they change nothing a client sees, refused
/// when they would.
#[allow(deprecated)]
fn ignore_and_refuse(c: &EnvoyCluster) -> Result<()> {
    // Names and labels for stats, logs and the admin pages.
    ignored(!c.alt_stat_name.is_empty(), "", "alt_stat_name");
    ignored(c.stats_matcher.is_some(), "", "stats_matcher");
    ignored(c.metadata.is_some(), "", "metadata");
    ignored(c.track_timeout_budgets, "", "track_timeout_budgets");
    ignored(c.track_cluster_stats.is_some(), "", "track_cluster_stats");
    ignored(c.lrs_server.is_some(), "", "lrs_server");
    ignored(
        !c.lrs_report_endpoint_metrics.is_empty(),
        "",
        "lrs_report_endpoint_metrics",
    );
    // Readiness at start, not what traffic does once running.
    ignored(
        c.wait_for_warm_on_init.is_some(),
        "",
        "wait_for_warm_on_init",
    );
    // Only ORIGINAL_DST clusters (refused) read it.
    ignored(c.cleanup_interval.is_some(), "", "cleanup_interval");
    // Sluice drops a host EDS removes at once, health check or not: Envoy's behaviour with
    // this set to true.
    ignored(
        c.ignore_health_on_host_removal,
        "",
        "ignore_health_on_host_removal",
    );
    let refuse = |set: bool, field: &str, why: &str| -> Result<()> {
        if set {
            Err(Error::new(
                field,
                format!("is not supported by Sluice ({why})"),
            ))
        } else {
            Ok(())
        }
    };
    refuse(
        c.transport_socket_matcher.is_some(),
        "transport_socket_matcher",
        "one transport socket for all endpoints",
    )?;
    refuse(
        c.per_connection_buffer_high_watermark_timeout
            .as_ref()
            .is_some_and(|d| d.seconds != 0 || d.nanos != 0),
        "per_connection_buffer_high_watermark_timeout",
        "connections are not closed for staying above their buffer limit",
    )?;
    refuse(
        c.upstream_bind_config.is_some(),
        "upstream_bind_config",
        "upstream connections are not bound to a source address",
    )?;
    refuse(
        c.close_connections_on_host_health_failure,
        "close_connections_on_host_health_failure",
        "connections to a host that turns unhealthy are kept",
    )?;
    refuse(
        !c.filters.is_empty(),
        "filters",
        "no upstream network filters",
    )?;
    refuse(
        c.load_balancing_policy.is_some(),
        "load_balancing_policy",
        "use lb_policy",
    )?;
    refuse(
        c.upstream_config.is_some(),
        "upstream_config",
        "the built-in connection pools only",
    )?;
    refuse(
        c.preconnect_policy.is_some(),
        "preconnect_policy",
        "connections are opened on demand",
    )?;
    refuse(
        c.connection_pool_per_downstream_connection,
        "connection_pool_per_downstream_connection",
        "pools are per endpoint",
    )?;
    refuse(
        c.queuing_policies.is_some(),
        "queuing_policies",
        "pending requests wait in order",
    )?;
    Ok(())
}

/// The DNS settings of `STRICT_DNS` and `LOGICAL_DNS` clusters; Envoy ignores them elsewhere.
#[allow(deprecated)]
fn dns(c: &EnvoyCluster, kind: Kind, m: &mut Map) -> Result<()> {
    if !kind.dns() {
        for (set, field) in [
            (c.dns_refresh_rate.is_some(), "dns_refresh_rate"),
            (c.dns_jitter.is_some(), "dns_jitter"),
            (
                c.dns_failure_refresh_rate.is_some(),
                "dns_failure_refresh_rate",
            ),
            (c.respect_dns_ttl, "respect_dns_ttl"),
            (c.dns_lookup_family != 0, "dns_lookup_family"),
            (!c.dns_resolvers.is_empty(), "dns_resolvers"),
            (c.use_tcp_for_dns_lookups, "use_tcp_for_dns_lookups"),
            (c.dns_resolution_config.is_some(), "dns_resolution_config"),
            (
                c.typed_dns_resolver_config.is_some(),
                "typed_dns_resolver_config",
            ),
        ] {
            ignored(set, "", field);
        }
        return Ok(());
    }
    if let Some(d) = &c.dns_refresh_rate {
        m.set(
            "dns_refresh_rate",
            at_least(d, std::time::Duration::from_millis(100), "dns_refresh_rate")?,
        );
    }
    if c.dns_jitter
        .as_ref()
        .is_some_and(|d| d.seconds != 0 || d.nanos != 0)
    {
        return Err(Error::new(
            "dns_jitter",
            "is not supported by Sluice (names are resolved every dns_refresh_rate)",
        ));
    }
    if c.dns_failure_refresh_rate.is_some() {
        return Err(Error::new(
            "dns_failure_refresh_rate",
            "is not supported by Sluice (a failed resolution is retried at dns_refresh_rate)",
        ));
    }
    if c.respect_dns_ttl {
        return Err(Error::new(
            "respect_dns_ttl",
            "is not supported by Sluice (names are resolved every dns_refresh_rate)",
        ));
    }
    let family = match DnsLookupFamily::try_from(c.dns_lookup_family) {
        Ok(DnsLookupFamily::Auto) => None,
        Ok(DnsLookupFamily::V4Only) => Some("v4_only"),
        Ok(DnsLookupFamily::V6Only) => Some("v6_only"),
        Ok(DnsLookupFamily::V4Preferred) => Some("v4_preferred"),
        Ok(DnsLookupFamily::All) => Some("all"),
        Err(_) => {
            return Err(Error::new(
                "dns_lookup_family",
                format!("unknown value {}", c.dns_lookup_family),
            ))
        }
    };
    if let Some(f) = family {
        m.set("dns_lookup_family", text(f));
    }
    if c.use_tcp_for_dns_lookups {
        return Err(Error::new(
            "use_tcp_for_dns_lookups",
            "is not supported by Sluice (DNS over UDP)",
        ));
    }
    if c.typed_dns_resolver_config.is_some() {
        return Err(Error::new(
            "typed_dns_resolver_config",
            "is not supported by Sluice (give dns_resolution_config.resolvers)",
        ));
    }
    let mut resolvers = Vec::new();
    for (i, a) in c.dns_resolvers.iter().enumerate() {
        resolvers.push(resolver(a, &index("dns_resolvers", i))?);
    }
    if let Some(rc) = &c.dns_resolution_config {
        let path = "dns_resolution_config";
        if let Some(o) = &rc.dns_resolver_options {
            let at = join(path, "dns_resolver_options");
            if o.use_tcp_for_dns_lookups {
                return Err(Error::new(
                    join(&at, "use_tcp_for_dns_lookups"),
                    "is not supported by Sluice (DNS over UDP)",
                ));
            }
            if o.no_default_search_domain {
                return Err(Error::new(
                    join(&at, "no_default_search_domain"),
                    "is not supported by Sluice",
                ));
            }
        }
        for (i, a) in rc.resolvers.iter().enumerate() {
            resolvers.push(resolver(a, &index(&join(path, "resolvers"), i))?);
        }
    }
    if !resolvers.is_empty() {
        m.set("dns_resolvers", texts(&resolvers));
    }
    Ok(())
}

/// A name server: `ip` (port 53) or `ip:port`.
fn resolver(a: &Address, path: &str) -> Result<String> {
    let Some(AddressKind::SocketAddress(s)) = &a.address else {
        return Err(Error::new(
            path,
            "a name server is a socket_address with an IP address",
        ));
    };
    let at = join(path, "socket_address");
    let ip: std::net::IpAddr = s.address.parse().map_err(|_| {
        Error::new(
            join(&at, "address"),
            format!("\"{}\" is not an IP address", s.address),
        )
    })?;
    let port = match &s.port_specifier {
        None | Some(PortSpecifier::PortValue(0)) => 53,
        Some(PortSpecifier::PortValue(p)) if *p <= 65535 => *p,
        Some(PortSpecifier::PortValue(p)) => {
            return Err(Error::new(
                join(&at, "port_value"),
                format!("must be from 1 to 65535, found {p}"),
            ))
        }
        Some(PortSpecifier::NamedPort(_)) => {
            return Err(Error::new(
                join(&at, "named_port"),
                "is not supported by Sluice (give port_value)",
            ))
        }
    };
    Ok(match ip {
        std::net::IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        std::net::IpAddr::V4(v4) => format!("{v4}:{port}"),
    })
}

/// `lb_policy` and its tuning (`lb_config`).
fn lb_policy(c: &EnvoyCluster, m: &mut Map) -> Result<()> {
    let policy = LbPolicy::try_from(c.lb_policy)
        .map_err(|_| Error::new("lb_policy", format!("unknown value {}", c.lb_policy)))?;
    let name = match policy {
        LbPolicy::RoundRobin => "round_robin",
        LbPolicy::LeastRequest => "least_request",
        LbPolicy::RingHash => "ring_hash",
        LbPolicy::Random => "random",
        LbPolicy::Maglev => "maglev",
        LbPolicy::ClusterProvided | LbPolicy::LoadBalancingPolicyConfig => {
            return Err(Error::new(
                "lb_policy",
                format!("{} is not supported by Sluice", policy.as_str_name()),
            ))
        }
    };
    m.set("lb_policy", text(name));
    let Some(config) = &c.lb_config else {
        return Ok(());
    };
    let (field, owner) = match config {
        LbConfig::RingHashLbConfig(_) => ("ring_hash_lb_config", LbPolicy::RingHash),
        LbConfig::MaglevLbConfig(_) => ("maglev_lb_config", LbPolicy::Maglev),
        LbConfig::LeastRequestLbConfig(_) => ("least_request_lb_config", LbPolicy::LeastRequest),
        LbConfig::RoundRobinLbConfig(_) => ("round_robin_lb_config", LbPolicy::RoundRobin),
        LbConfig::OriginalDstLbConfig(_) => {
            return Err(Error::new(
                "original_dst_lb_config",
                "is not supported by Sluice (ORIGINAL_DST)",
            ))
        }
    };
    if owner != policy {
        return Err(Error::new(
            field,
            format!(
                "applies to lb_policy {}, but the cluster's is {}",
                owner.as_str_name(),
                policy.as_str_name()
            ),
        ));
    }
    let slow_start = |s: &Option<SlowStartConfig>| -> Result<()> {
        if s.is_some() {
            return Err(Error::new(
                join(field, "slow_start_config"),
                "is not supported by Sluice (new hosts take their full share at once)",
            ));
        }
        Ok(())
    };
    match config {
        LbConfig::RoundRobinLbConfig(r) => slow_start(&r.slow_start_config)?,
        LbConfig::LeastRequestLbConfig(l) => {
            slow_start(&l.slow_start_config)?;
            if l.active_request_bias
                .as_ref()
                .is_some_and(|b| b.default_value != 1.0)
            {
                return Err(Error::new(
                    join(field, "active_request_bias"),
                    "is not supported by Sluice (only the default bias, 1.0)",
                ));
            }
            if let Some(n) = l.choice_count.as_ref().map(|v| v.value) {
                if !(2..=100).contains(&n) {
                    return Err(Error::new(
                        join(field, "choice_count"),
                        format!("must be from 2 to 100 in Sluice, found {n}"),
                    ));
                }
                m.set(field, single("choice_count", number(n)));
            }
        }
        LbConfig::RingHashLbConfig(r) => {
            if HashFunction::try_from(r.hash_function) != Ok(HashFunction::XxHash) {
                return Err(Error::new(
                    join(field, "hash_function"),
                    "only XX_HASH is supported by Sluice",
                ));
            }
            let mut ring = Map::new();
            ring.opt(
                "minimum_ring_size",
                r.minimum_ring_size.as_ref().map(|v| number(v.value)),
            );
            ring.opt(
                "maximum_ring_size",
                r.maximum_ring_size.as_ref().map(|v| number(v.value)),
            );
            if !ring.is_empty() {
                m.set(field, ring.build());
            }
        }
        LbConfig::MaglevLbConfig(g) => {
            if let Some(size) = g.table_size.as_ref().map(|v| v.value) {
                m.set(field, single("table_size", number(size)));
            }
        }
        LbConfig::OriginalDstLbConfig(_) => {}
    }
    Ok(())
}

/// `common_lb_config`: the panic threshold; the rest is refused or has no effect here.
fn common_lb(c: &CommonLbConfig, path: &str, m: &mut Map) -> Result<()> {
    if let Some(p) = &c.healthy_panic_threshold {
        m.set(
            "healthy_panic_threshold",
            number(whole_percent(p, &join(path, "healthy_panic_threshold"))?),
        );
    }
    // Batches host changes; the result is the same.
    ignored(c.update_merge_window.is_some(), path, "update_merge_window");
    if c.ignore_new_hosts_until_first_hc {
        return Err(Error::new(
            join(path, "ignore_new_hosts_until_first_hc"),
            "is not supported by Sluice (a new host is used while its first check is pending)",
        ));
    }
    if c.close_connections_on_host_set_change {
        return Err(Error::new(
            join(path, "close_connections_on_host_set_change"),
            "is not supported by Sluice",
        ));
    }
    if let Some(h) = &c.consistent_hashing_lb_config {
        let at = join(path, "consistent_hashing_lb_config");
        if h.use_hostname_for_hashing {
            return Err(Error::new(
                join(&at, "use_hostname_for_hashing"),
                "is not supported by Sluice (hosts are hashed by address)",
            ));
        }
        if h.hash_balance_factor.is_some() {
            return Err(Error::new(
                join(&at, "hash_balance_factor"),
                "is not supported by Sluice (bounded-load consistent hashing)",
            ));
        }
    }
    if c.override_host_status.is_some() {
        return Err(Error::new(
            join(path, "override_host_status"),
            "is not supported by Sluice (host overrides)",
        ));
    }
    match &c.locality_config_specifier {
        None => {}
        // Envoy's zone-aware routing needs the local cluster of its bootstrap; the native one
        // needs `local_zone`, which is the proxy's and not part of a Cluster resource.
        Some(LocalityConfigSpecifier::ZoneAwareLbConfig(_)) => {
            ignored(true, path, "zone_aware_lb_config");
        }
        Some(LocalityConfigSpecifier::LocalityWeightedLbConfig(_)) => {
            return Err(Error::new(
                join(path, "locality_weighted_lb_config"),
                "is not supported by Sluice (no locality weights)",
            ))
        }
    }
    Ok(())
}

/// A `Percent` the native side takes as a whole number from 0 to 100.
fn whole_percent(p: &Percent, path: &str) -> Result<u32> {
    let v = p.value;
    if !(0.0..=100.0).contains(&v) || v.fract() != 0.0 {
        return Err(Error::new(
            path,
            format!("must be a whole percentage from 0 to 100 in Sluice, found {v}"),
        ));
    }
    // In range and whole: the cast is exact.
    Ok(v as u32)
}

/// `lb_subset_config`: selectors, fallback and default subset.
fn subset(s: &LbSubsetConfig, path: &str, m: &mut Map) -> Result<()> {
    for (set, field, why) in [
        (
            s.locality_weight_aware,
            "locality_weight_aware",
            "no locality weights",
        ),
        (
            s.scale_locality_weight,
            "scale_locality_weight",
            "no locality weights",
        ),
        (
            s.panic_mode_any,
            "panic_mode_any",
            "a subset in panic uses its own hosts",
        ),
        (
            s.list_as_any,
            "list_as_any",
            "metadata lists are not matched",
        ),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                format!("is not supported by Sluice ({why})"),
            ));
        }
    }
    if LbSubsetMetadataFallbackPolicy::try_from(s.metadata_fallback_policy)
        != Ok(LbSubsetMetadataFallbackPolicy::MetadataNoFallback)
    {
        return Err(Error::new(
            join(path, "metadata_fallback_policy"),
            "only METADATA_NO_FALLBACK is supported by Sluice",
        ));
    }
    let mut selectors = Vec::new();
    for (i, sel) in s.subset_selectors.iter().enumerate() {
        let at = index(&join(path, "subset_selectors"), i);
        if sel.keys.is_empty() {
            return Err(Error::new(
                join(&at, "keys"),
                "a subset selector needs at least one key",
            ));
        }
        if sel.single_host_per_subset {
            return Err(Error::new(
                join(&at, "single_host_per_subset"),
                "is not supported by Sluice",
            ));
        }
        if LbSubsetSelectorFallbackPolicy::try_from(sel.fallback_policy)
            != Ok(LbSubsetSelectorFallbackPolicy::NotDefined)
        {
            return Err(Error::new(
                join(&at, "fallback_policy"),
                "is not supported by Sluice (the cluster's fallback_policy applies)",
            ));
        }
        if !sel.fallback_keys_subset.is_empty() {
            return Err(Error::new(
                join(&at, "fallback_keys_subset"),
                "is not supported by Sluice",
            ));
        }
        selectors.push(texts(&sel.keys));
    }
    if selectors.is_empty() {
        // Envoy turns subset load balancing on only with selectors; without, routes'
        // metadata_match names no subset and every host serves, as the native default does.
        ignored(true, path, "fallback_policy");
        return Ok(());
    }
    m.set("subset_selectors", list(selectors));
    let fallback = match LbSubsetFallbackPolicy::try_from(s.fallback_policy) {
        Ok(LbSubsetFallbackPolicy::NoFallback) => "no_fallback",
        Ok(LbSubsetFallbackPolicy::AnyEndpoint) => "any_endpoint",
        Ok(LbSubsetFallbackPolicy::DefaultSubset) => "default_subset",
        Err(_) => {
            return Err(Error::new(
                join(path, "fallback_policy"),
                format!("unknown value {}", s.fallback_policy),
            ))
        }
    };
    // Written even for Envoy's default (NO_FALLBACK): the native default is any_endpoint.
    m.set("fallback_policy", text(fallback));
    let pairs = string_metadata(s.default_subset.as_ref(), &join(path, "default_subset"))?;
    if !pairs.is_empty() {
        m.set("default_subset", string_map(&pairs));
    }
    Ok(())
}

/// Where the HTTP options of a cluster came from.
struct HttpOptions {
    /// The native `protocol`, when not HTTP/1.1.
    protocol: Option<&'static str>,
    http1: Option<(Http1ProtocolOptions, String)>,
    http2: Option<(Http2ProtocolOptions, String)>,
    common: Option<(CoreHttpProtocolOptions, String)>,
    upstream: Option<(UpstreamHttpProtocolOptions, String)>,
}

/// `protocol`, `common_http_protocol_options` and `http2_protocol_options`, from
/// `typed_extension_protocol_options` or the deprecated cluster fields.
#[allow(deprecated)]
fn protocol(c: &EnvoyCluster, m: &mut Map) -> Result<()> {
    let typed_path = format!("typed_extension_protocol_options[\"{HTTP_OPTIONS}\"]");
    let mut keys: Vec<&String> = c.typed_extension_protocol_options.keys().collect();
    keys.sort();
    if let Some(k) = keys.into_iter().find(|k| *k != HTTP_OPTIONS) {
        return Err(Error::new(
            format!("typed_extension_protocol_options[\"{k}\"]"),
            "is not supported by Sluice",
        ));
    }
    let legacy = c.http2_protocol_options.is_some()
        || c.common_http_protocol_options.is_some()
        || c.http_protocol_options.is_some()
        || c.upstream_http_protocol_options.is_some()
        || c.protocol_selection != 0;
    let options = match c.typed_extension_protocol_options.get(HTTP_OPTIONS) {
        Some(any) => {
            if legacy {
                return Err(Error::new(
                    typed_path,
                    "cannot be combined with the deprecated cluster fields http_protocol_options, \
                     http2_protocol_options, common_http_protocol_options, \
                     upstream_http_protocol_options and protocol_selection",
                ));
            }
            let o: UpstreamHttpOptions = unpack(any, &type_url(HTTP_OPTIONS), &typed_path)?;
            typed_http_options(&o, &typed_path)?
        }
        None => {
            let selection =
                ClusterProtocolSelection::try_from(c.protocol_selection).map_err(|_| {
                    Error::new(
                        "protocol_selection",
                        format!("unknown value {}", c.protocol_selection),
                    )
                })?;
            let protocol = match selection {
                ClusterProtocolSelection::UseDownstreamProtocol => Some("same_as_downstream"),
                ClusterProtocolSelection::UseConfiguredProtocol => {
                    c.http2_protocol_options.as_ref().map(|_| "http2")
                }
            };
            HttpOptions {
                protocol,
                http1: c
                    .http_protocol_options
                    .clone()
                    .map(|o| (o, "http_protocol_options".to_string())),
                http2: c
                    .http2_protocol_options
                    .clone()
                    .map(|o| (o, "http2_protocol_options".to_string())),
                common: c
                    .common_http_protocol_options
                    .map(|o| (o, "common_http_protocol_options".to_string())),
                upstream: c
                    .upstream_http_protocol_options
                    .clone()
                    .map(|o| (o, "upstream_http_protocol_options".to_string())),
            }
        }
    };
    if let Some(p) = options.protocol {
        m.set("protocol", text(p));
    }
    if let Some((h1, path)) = &options.http1 {
        http1_options(h1, path)?;
    }
    if let Some((u, path)) = &options.upstream {
        upstream_http_options(u, path)?;
    }
    if let Some((h2, path)) = &options.http2 {
        let node = http2_options(h2, path)?;
        if !node_is_empty(&node) {
            m.set("http2_protocol_options", node);
        }
    }
    let legacy_max = c
        .max_requests_per_connection
        .as_ref()
        .map(|v| v.value)
        .filter(|v| *v > 0);
    let (mut common, common_max) = common_options(options.common.as_ref())?;
    if common_max.is_some() && legacy_max.is_some() {
        return Err(Error::new(
            "max_requests_per_connection",
            "is also set in common_http_protocol_options; set it in one place",
        ));
    }
    if let Some(n) = common_max.or(legacy_max) {
        common.set("max_requests_per_connection", number(n));
    }
    m.set("common_http_protocol_options", common.build());
    Ok(())
}

/// `HttpProtocolOptions` (the extension message): which protocol, and the options of each.
fn typed_http_options(o: &UpstreamHttpOptions, path: &str) -> Result<HttpOptions> {
    for (set, field, why) in [
        (
            !o.http_filters.is_empty(),
            "http_filters",
            "no upstream HTTP filters",
        ),
        (
            o.outlier_detection
                .as_ref()
                .is_some_and(|d| d.error_matcher.is_some()),
            "outlier_detection.error_matcher",
            "outlier detection counts 5xx responses, connect failures, resets and timeouts",
        ),
        (
            !o.request_mirror_policies.is_empty(),
            "request_mirror_policies",
            "mirroring is the route's request_mirror",
        ),
        (
            !o.hash_policy.is_empty(),
            "hash_policy",
            "hash policies are the route's",
        ),
        (
            o.retry_policy.is_some(),
            "retry_policy",
            "retry policies are the route's",
        ),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                format!("is not supported by Sluice ({why})"),
            ));
        }
    }
    // Not implemented by Envoy.
    ignored(
        o.header_validation_config.is_some(),
        path,
        "header_validation_config",
    );
    let (protocol, http1, http2) =
        match &o.upstream_protocol_options {
            None => {
                return Err(Error::new(
                    join(path, "upstream_protocol_options"),
                    "needs explicit_http_config, use_downstream_protocol_config or auto_config",
                ))
            }
            Some(UpstreamProtocolOptions::ExplicitHttpConfig(e)) => {
                let at = join(path, "explicit_http_config");
                match &e.protocol_config {
                    None => {
                        return Err(Error::new(
                            at,
                            "needs http_protocol_options or http2_protocol_options",
                        ))
                    }
                    Some(ProtocolConfig::HttpProtocolOptions(h1)) => (
                        None,
                        Some((h1.clone(), join(&at, "http_protocol_options"))),
                        None,
                    ),
                    Some(ProtocolConfig::Http2ProtocolOptions(h2)) => (
                        Some("http2"),
                        None,
                        Some((h2.clone(), join(&at, "http2_protocol_options"))),
                    ),
                    Some(ProtocolConfig::Http3ProtocolOptions(_)) => {
                        return Err(Error::new(
                            join(&at, "http3_protocol_options"),
                            "HTTP/3 is not supported by Sluice",
                        ))
                    }
                }
            }
            Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(u)) => {
                let at = join(path, "use_downstream_protocol_config");
                if u.http3_protocol_options.is_some() {
                    return Err(Error::new(
                        join(&at, "http3_protocol_options"),
                        "HTTP/3 is not supported by Sluice",
                    ));
                }
                (
                    Some("same_as_downstream"),
                    u.http_protocol_options
                        .clone()
                        .map(|o| (o, join(&at, "http_protocol_options"))),
                    u.http2_protocol_options
                        .clone()
                        .map(|o| (o, join(&at, "http2_protocol_options"))),
                )
            }
            Some(UpstreamProtocolOptions::AutoConfig(_)) => return Err(Error::new(
                join(path, "auto_config"),
                "is not supported by Sluice (no protocol choice by ALPN; use explicit_http_config)",
            )),
        };
    Ok(HttpOptions {
        protocol,
        http1,
        http2,
        common: o
            .common_http_protocol_options
            .map(|c| (c, join(path, "common_http_protocol_options"))),
        upstream: o
            .upstream_http_protocol_options
            .clone()
            .map(|u| (u, join(path, "upstream_http_protocol_options"))),
    })
}

/// HTTP/1.1 options: those an upstream connection would use are refused.
#[allow(deprecated)] // `use_balsa_parser`, only ignored
fn http1_options(h: &Http1ProtocolOptions, path: &str) -> Result<()> {
    // Request parsing (the downstream side): an upstream codec does not read them.
    ignored(h.allow_absolute_url.is_some(), path, "allow_absolute_url");
    ignored(h.accept_http_10, path, "accept_http_10");
    ignored(
        !h.default_host_for_http_10.is_empty(),
        path,
        "default_host_for_http_10",
    );
    ignored(h.allow_custom_methods, path, "allow_custom_methods");
    ignored(
        !h.ignore_http_11_upgrade.is_empty(),
        path,
        "ignore_http_11_upgrade",
    );
    // The parser and how an invalid message is reset: the message is refused either way.
    ignored(h.use_balsa_parser.is_some(), path, "use_balsa_parser");
    ignored(
        h.override_stream_error_on_invalid_http_message.is_some(),
        path,
        "override_stream_error_on_invalid_http_message",
    );
    for (set, field, why) in [
        (
            h.header_key_format.is_some(),
            "header_key_format",
            "header names are sent in lower case",
        ),
        (
            h.enable_trailers,
            "enable_trailers",
            "no trailers to HTTP/1 upstreams",
        ),
        (
            h.allow_chunked_length,
            "allow_chunked_length",
            "a response with both Content-Length and chunked coding is refused",
        ),
        (
            h.send_fully_qualified_url,
            "send_fully_qualified_url",
            "requests carry the path only",
        ),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                format!("is not supported by Sluice ({why})"),
            ));
        }
    }
    Ok(())
}

/// `upstream_http_protocol_options`: SNI and SAN checks from the request's host are refused.
fn upstream_http_options(u: &UpstreamHttpProtocolOptions, path: &str) -> Result<()> {
    if u.auto_sni {
        return Err(Error::new(
            join(path, "auto_sni"),
            "is not supported by Sluice (the SNI is the cluster's tls.sni, or a DNS endpoint's name)",
        ));
    }
    if u.auto_san_validation {
        return Err(Error::new(
            join(path, "auto_san_validation"),
            "is not supported by Sluice (use match_typed_subject_alt_names or sni)",
        ));
    }
    // A no-op without auto_sni and auto_san_validation.
    ignored(
        !u.override_auto_sni_header.is_empty(),
        path,
        "override_auto_sni_header",
    );
    Ok(())
}

/// HTTP/2 options: `max_concurrent_streams` and `connection_keepalive`.
#[allow(deprecated)] // `stream_error_on_invalid_http_messaging`, only ignored
fn http2_options(h: &Http2ProtocolOptions, path: &str) -> Result<Node> {
    let mut o = Map::new();
    if let Some(n) = h.max_concurrent_streams.as_ref().map(|v| v.value) {
        if !(1..=2_147_483_647).contains(&n) {
            return Err(Error::new(
                join(path, "max_concurrent_streams"),
                format!("must be from 1 to 2147483647, found {n}"),
            ));
        }
        o.set("max_concurrent_streams", number(n));
    }
    for (set, field, why) in [
        (
            h.hpack_table_size.as_ref().is_some_and(|v| v.value != 4096),
            "hpack_table_size",
            "the HPACK table is 4096 bytes",
        ),
        (
            h.initial_stream_window_size.is_some(),
            "initial_stream_window_size",
            "windows follow per_connection_buffer_limit_bytes",
        ),
        (
            h.initial_connection_window_size.is_some(),
            "initial_connection_window_size",
            "windows follow per_connection_buffer_limit_bytes",
        ),
        (h.allow_connect, "allow_connect", "no extended CONNECT"),
        (h.allow_metadata, "allow_metadata", "no METADATA frames"),
        (
            !h.custom_settings_parameters.is_empty(),
            "custom_settings_parameters",
            "no custom SETTINGS",
        ),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                format!("is not supported by Sluice ({why})"),
            ));
        }
    }
    // Flood protections and codec internals: limits on a misbehaving peer, not on traffic.
    for (set, field) in [
        (h.max_outbound_frames.is_some(), "max_outbound_frames"),
        (
            h.max_outbound_control_frames.is_some(),
            "max_outbound_control_frames",
        ),
        (
            h.max_consecutive_inbound_frames_with_empty_payload
                .is_some(),
            "max_consecutive_inbound_frames_with_empty_payload",
        ),
        (
            h.max_inbound_priority_frames_per_stream.is_some(),
            "max_inbound_priority_frames_per_stream",
        ),
        (
            h.max_inbound_window_update_frames_per_data_frame_sent
                .is_some(),
            "max_inbound_window_update_frames_per_data_frame_sent",
        ),
        (
            h.stream_error_on_invalid_http_messaging,
            "stream_error_on_invalid_http_messaging",
        ),
        (
            h.override_stream_error_on_invalid_http_message.is_some(),
            "override_stream_error_on_invalid_http_message",
        ),
        (h.use_oghttp2_codec.is_some(), "use_oghttp2_codec"),
        (h.max_metadata_size.is_some(), "max_metadata_size"),
        (
            h.enable_huffman_encoding.is_some(),
            "enable_huffman_encoding",
        ),
        (
            h.max_header_field_size_kb.is_some(),
            "max_header_field_size_kb",
        ),
        (h.disallow_obs_text.is_some(), "disallow_obs_text"),
        (h.stream_reset_burst.is_some(), "stream_reset_burst"),
        (h.stream_reset_rate.is_some(), "stream_reset_rate"),
    ] {
        ignored(set, path, field);
    }
    if let Some(k) = &h.connection_keepalive {
        let at = join(path, "connection_keepalive");
        if k.connection_idle_interval.is_some() {
            return Err(Error::new(
                join(&at, "connection_idle_interval"),
                "is not supported by Sluice (PINGs go every interval)",
            ));
        }
        // Spreads the PINGs in time; their purpose is the same.
        ignored(k.interval_jitter.is_some(), &at, "interval_jitter");
        let ten_ms = std::time::Duration::from_millis(10);
        match (&k.interval, &k.timeout) {
            (Some(i), Some(t)) => {
                let mut ka = Map::new();
                ka.set("interval", at_least(i, ten_ms, &join(&at, "interval"))?);
                ka.set("timeout", at_least(t, ten_ms, &join(&at, "timeout"))?);
                o.set("connection_keepalive", ka.build());
            }
            (_, None) => return Err(Error::new(join(&at, "timeout"), "is required")),
            // Without an interval (or an idle interval) Envoy sends no PING.
            (None, Some(_)) => ignored(true, &at, "timeout"),
        }
    }
    Ok(o.build())
}

fn node_is_empty(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::Map(entries) if entries.is_empty())
}

/// `common_http_protocol_options` with Envoy's idle timeout (1h) when none is given, and
/// `max_requests_per_connection` (0 is no limit) apart.
fn common_options(o: Option<&(CoreHttpProtocolOptions, String)>) -> Result<(Map, Option<u32>)> {
    let mut m = Map::new();
    let Some((o, path)) = o else {
        m.set("idle_timeout", number("1h"));
        return Ok((m, None));
    };
    match &o.idle_timeout {
        None => {
            m.set("idle_timeout", number("1h"));
        }
        Some(d) if d.seconds == 0 && d.nanos == 0 => {
            return Err(Error::new(
                join(path, "idle_timeout"),
                "0 (never close idle connections) is not supported by Sluice",
            ))
        }
        Some(d) => {
            m.set(
                "idle_timeout",
                at_least(
                    d,
                    std::time::Duration::from_millis(100),
                    &join(path, "idle_timeout"),
                )?,
            );
        }
    }
    for (set, field, why) in [
        (
            o.max_connection_duration
                .as_ref()
                .is_some_and(|d| d.seconds != 0 || d.nanos != 0),
            "max_connection_duration",
            "connections close when idle or after max_requests_per_connection",
        ),
        (
            o.max_headers_count.as_ref().is_some_and(|v| v.value != 100),
            "max_headers_count",
            "only Envoy's default, 100",
        ),
        (
            o.max_response_headers_kb
                .as_ref()
                .is_some_and(|v| v.value != 60),
            "max_response_headers_kb",
            "only Envoy's default, 60",
        ),
        (
            o.max_stream_duration
                .as_ref()
                .is_some_and(|d| d.seconds != 0 || d.nanos != 0),
            "max_stream_duration",
            "use the route's timeout",
        ),
        (
            HeadersWithUnderscoresAction::try_from(o.headers_with_underscores_action)
                != Ok(HeadersWithUnderscoresAction::Allow),
            "headers_with_underscores_action",
            "headers with underscores are allowed",
        ),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                format!("is not supported by Sluice ({why})"),
            ));
        }
    }
    // Only spreads max_connection_duration, which is refused when set.
    ignored(
        o.max_connection_duration_jitter.is_some(),
        path,
        "max_connection_duration_jitter",
    );
    let max = o
        .max_requests_per_connection
        .as_ref()
        .map(|v| v.value)
        .filter(|v| *v > 0);
    Ok((m, max))
}

/// `circuit_breakers`: the `DEFAULT` thresholds at the top, `HIGH` under `high_priority`.
fn circuit_breakers(cb: &CircuitBreakers, path: &str) -> Result<Node> {
    if !cb.per_host_thresholds.is_empty() {
        return Err(Error::new(
            join(path, "per_host_thresholds"),
            "is not supported by Sluice (limits are per cluster)",
        ));
    }
    let mut out = Map::new();
    let mut high = Map::new();
    let mut seen = [false; 2];
    for (i, t) in cb.thresholds.iter().enumerate() {
        let at = index(&join(path, "thresholds"), i);
        let priority = RoutingPriority::try_from(t.priority).map_err(|_| {
            Error::new(
                join(&at, "priority"),
                format!("unknown priority {}", t.priority),
            )
        })?;
        let slot = match priority {
            RoutingPriority::Default => 0,
            RoutingPriority::High => 1,
        };
        if seen[slot] {
            return Err(Error::new(
                join(&at, "priority"),
                format!("a second threshold for {}", priority.as_str_name()),
            ));
        }
        seen[slot] = true;
        thresholds(t, priority, &at, &mut out, &mut high)?;
    }
    if !high.is_empty() {
        out.set("high_priority", high.build());
    }
    Ok(out.build())
}

/// One `Thresholds` entry into the native block (`out`) or its `high_priority` part.
fn thresholds(
    t: &Thresholds,
    priority: RoutingPriority,
    path: &str,
    out: &mut Map,
    high: &mut Map,
) -> Result<()> {
    // Stats only.
    ignored(t.track_remaining, path, "track_remaining");
    if t.max_connection_pools.is_some() {
        return Err(Error::new(
            join(path, "max_connection_pools"),
            "is not supported by Sluice (one pool per endpoint)",
        ));
    }
    let value = |v: &Option<envoy_types::pb::google::protobuf::UInt32Value>| {
        v.as_ref().map(|v| number(v.value))
    };
    let budget = t
        .retry_budget
        .as_ref()
        .map(|b| retry_budget(b, &join(path, "retry_budget")))
        .transpose()?;
    match priority {
        RoutingPriority::Default => {
            out.opt("max_connections", value(&t.max_connections));
            out.opt("max_pending_requests", value(&t.max_pending_requests));
            out.opt("max_requests", value(&t.max_requests));
            out.opt("max_retries", value(&t.max_retries));
            out.opt("retry_budget", budget);
        }
        RoutingPriority::High => {
            for (set, field) in [
                (t.max_connections.is_some(), "max_connections"),
                (t.max_pending_requests.is_some(), "max_pending_requests"),
            ] {
                if set {
                    return Err(Error::new(
                        join(path, field),
                        "is the cluster's in Sluice, shared by both priorities: set it on the DEFAULT thresholds",
                    ));
                }
            }
            high.opt("max_requests", value(&t.max_requests));
            high.opt("max_retries", value(&t.max_retries));
            high.opt("retry_budget", budget);
        }
    }
    Ok(())
}

fn retry_budget(b: &RetryBudget, path: &str) -> Result<Node> {
    if b.budget_interval
        .as_ref()
        .is_some_and(|d| d.seconds != 0 || d.nanos != 0)
    {
        return Err(Error::new(
            join(path, "budget_interval"),
            "is not supported by Sluice (the budget counts the requests active now)",
        ));
    }
    let mut m = Map::new();
    if let Some(p) = &b.budget_percent {
        m.set(
            "budget_percent",
            number(whole_percent(p, &join(path, "budget_percent"))?),
        );
    }
    m.opt(
        "min_retry_concurrency",
        b.min_retry_concurrency.as_ref().map(|v| number(v.value)),
    );
    Ok(m.build())
}

/// `outlier_detection`, every native key written with Envoy's effective value.
fn outlier_detection(od: &OutlierDetection, path: &str) -> Result<Node> {
    let value = |v: &Option<envoy_types::pb::google::protobuf::UInt32Value>, default: u32| {
        v.as_ref().map_or(default, |v| v.value)
    };
    // An enforcement percentage is a probability of ejecting; Sluice ejects always or never.
    let enforced = |v: &Option<envoy_types::pb::google::protobuf::UInt32Value>,
                    default: u32,
                    field: &str|
     -> Result<bool> {
        match value(v, default) {
            0 => Ok(false),
            100 => Ok(true),
            n => Err(Error::new(
                join(path, field),
                format!("must be 0 or 100 in Sluice (ejection is all or nothing), found {n}"),
            )),
        }
    };
    let c5xx = enforced(
        &od.enforcing_consecutive_5xx,
        100,
        "enforcing_consecutive_5xx",
    )?;
    let gateway = enforced(
        &od.enforcing_consecutive_gateway_failure,
        0,
        "enforcing_consecutive_gateway_failure",
    )?;
    let success_rate = enforced(&od.enforcing_success_rate, 100, "enforcing_success_rate")?;
    if od.split_external_local_origin_errors {
        return Err(Error::new(
            join(path, "split_external_local_origin_errors"),
            "is not supported by Sluice (connect failures, resets and timeouts count as 5xx)",
        ));
    }
    // Read by Envoy only with split_external_local_origin_errors.
    for (set, field) in [
        (
            od.consecutive_local_origin_failure.is_some(),
            "consecutive_local_origin_failure",
        ),
        (
            od.enforcing_consecutive_local_origin_failure.is_some(),
            "enforcing_consecutive_local_origin_failure",
        ),
        (
            od.enforcing_local_origin_success_rate.is_some(),
            "enforcing_local_origin_success_rate",
        ),
        (
            od.enforcing_failure_percentage_local_origin.is_some(),
            "enforcing_failure_percentage_local_origin",
        ),
    ] {
        ignored(set, path, field);
    }
    if value(&od.enforcing_failure_percentage, 0) != 0 {
        return Err(Error::new(
            join(path, "enforcing_failure_percentage"),
            "is not supported by Sluice (no failure-percentage ejection)",
        ));
    }
    // Read by Envoy only with enforcing_failure_percentage.
    for (set, field) in [
        (
            od.failure_percentage_threshold.is_some(),
            "failure_percentage_threshold",
        ),
        (
            od.failure_percentage_minimum_hosts.is_some(),
            "failure_percentage_minimum_hosts",
        ),
        (
            od.failure_percentage_request_volume.is_some(),
            "failure_percentage_request_volume",
        ),
    ] {
        ignored(set, path, field);
    }
    if od
        .max_ejection_time_jitter
        .as_ref()
        .is_some_and(|d| d.seconds != 0 || d.nanos != 0)
    {
        return Err(Error::new(
            join(path, "max_ejection_time_jitter"),
            "is not supported by Sluice (ejections last exactly their time)",
        ));
    }
    if od.detect_degraded_hosts.as_ref().is_some_and(|b| b.value) {
        return Err(Error::new(
            join(path, "detect_degraded_hosts"),
            "is not supported by Sluice (no degraded hosts)",
        ));
    }
    // Not implemented by Envoy.
    ignored(!od.monitors.is_empty(), path, "monitors");
    // Sluice always lets one host be ejected (Envoy's always_eject_one_host: true), and an
    // active health check does not end an ejection (Envoy's
    // successful_active_health_check_uneject_host: false).
    ignored(
        od.always_eject_one_host.is_some(),
        path,
        "always_eject_one_host",
    );
    ignored(
        od.successful_active_health_check_uneject_host.is_some(),
        path,
        "successful_active_health_check_uneject_host",
    );

    let ten_ms = std::time::Duration::from_millis(10);
    let interval = match &od.interval {
        Some(d) => at_least(d, ten_ms, &join(path, "interval"))?,
        None => number("10s"),
    };
    let base_nanos = match &od.base_ejection_time {
        Some(d) => {
            at_least(d, ten_ms, &join(path, "base_ejection_time"))?;
            nanos(d, &join(path, "base_ejection_time"))?
        }
        None => 30 * NANOS_PER_SECOND,
    };
    // Envoy's default is 300s, or base_ejection_time when that is longer.
    let max_time = match &od.max_ejection_time {
        Some(d) => {
            let n = nanos(d, &join(path, "max_ejection_time"))?;
            if n < base_nanos {
                return Err(Error::new(
                    join(path, "max_ejection_time"),
                    "must be at least base_ejection_time",
                ));
            }
            duration(d, &join(path, "max_ejection_time"))?
        }
        None => from_nanos(base_nanos.max(300 * NANOS_PER_SECOND)),
    };
    let percent = value(&od.max_ejection_percent, 10);
    if percent > 100 {
        return Err(Error::new(
            join(path, "max_ejection_percent"),
            format!("must be at most 100, found {percent}"),
        ));
    }
    let mut m = Map::new();
    m.set(
        "consecutive_5xx",
        number(if c5xx {
            value(&od.consecutive_5xx, 5)
        } else {
            0
        }),
    );
    m.set(
        "consecutive_gateway_failure",
        number(if gateway {
            value(&od.consecutive_gateway_failure, 5)
        } else {
            0
        }),
    );
    m.set("interval", interval);
    m.set("base_ejection_time", from_nanos(base_nanos));
    m.set("max_ejection_time", max_time);
    m.set("max_ejection_percent", number(percent));
    // Natively 0 turns success-rate ejection off; in Envoy it only drops the host minimum,
    // and with no host qualifying there is nothing to judge either way.
    m.set(
        "success_rate_minimum_hosts",
        number(if success_rate {
            value(&od.success_rate_minimum_hosts, 5).max(1)
        } else {
            0
        }),
    );
    // A host without requests has no success rate: 0 and 1 judge the same hosts.
    m.set(
        "success_rate_request_volume",
        number(value(&od.success_rate_request_volume, 100).max(1)),
    );
    m.set(
        "success_rate_stdev_factor",
        number(value(&od.success_rate_stdev_factor, 1900)),
    );
    Ok(m.build())
}

/// One `HealthCheck` as the native `health_check`.
#[allow(deprecated)]
fn health_check(hc: &HealthCheck, path: &str) -> Result<Node> {
    let one_ms = std::time::Duration::from_millis(1);
    let mut m = Map::new();
    let required = |d: &Option<Duration>, field: &str| -> Result<Duration> {
        d.ok_or_else(|| Error::new(join(path, field), "is required"))
    };
    let timeout = required(&hc.timeout, "timeout")?;
    m.set(
        "timeout",
        at_least(&timeout, one_ms, &join(path, "timeout"))?,
    );
    let interval = required(&hc.interval, "interval")?;
    m.set(
        "interval",
        at_least(&interval, one_ms, &join(path, "interval"))?,
    );
    // Envoy adds both jitters (each a random share of its bound); one bound of their sum
    // spreads checks as far.
    let mut jitter = match &hc.interval_jitter {
        Some(d) => nanos(d, &join(path, "interval_jitter"))?,
        None => 0,
    };
    jitter +=
        nanos(&interval, &join(path, "interval"))? * u128::from(hc.interval_jitter_percent) / 100;
    if jitter > 0 {
        m.set("interval_jitter", from_nanos(jitter));
    }
    if let Some(d) = &hc.unhealthy_interval {
        m.set(
            "unhealthy_interval",
            at_least(d, one_ms, &join(path, "unhealthy_interval"))?,
        );
    }
    for (set, field) in [
        (
            hc.unhealthy_edge_interval.is_some(),
            "unhealthy_edge_interval",
        ),
        (hc.healthy_edge_interval.is_some(), "healthy_edge_interval"),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                "is not supported by Sluice (the next check waits interval, or unhealthy_interval)",
            ));
        }
    }
    for (v, field) in [
        (&hc.unhealthy_threshold, "unhealthy_threshold"),
        (&hc.healthy_threshold, "healthy_threshold"),
    ] {
        match v.as_ref().map(|v| v.value) {
            None => return Err(Error::new(join(path, field), "is required")),
            Some(0) => return Err(Error::new(join(path, field), "must be at least 1")),
            Some(n) => {
                m.set(field, number(n));
            }
        }
    }
    // When the first check runs, how often an idle cluster is checked, whether a check
    // reuses its connection, and logging: when and how checks run, not what they decide.
    for (set, field) in [
        (hc.initial_jitter.is_some(), "initial_jitter"),
        (hc.alt_port.is_some(), "alt_port"),
        (hc.reuse_connection.is_some(), "reuse_connection"),
        (hc.no_traffic_interval.is_some(), "no_traffic_interval"),
        (
            hc.no_traffic_healthy_interval.is_some(),
            "no_traffic_healthy_interval",
        ),
        (!hc.event_log_path.is_empty(), "event_log_path"),
        (!hc.event_logger.is_empty(), "event_logger"),
        (hc.event_service.is_some(), "event_service"),
        (
            hc.always_log_health_check_failures,
            "always_log_health_check_failures",
        ),
        (
            hc.always_log_health_check_success,
            "always_log_health_check_success",
        ),
    ] {
        ignored(set, path, field);
    }
    if hc
        .tls_options
        .as_ref()
        .is_some_and(|t| !t.alpn_protocols.is_empty())
    {
        return Err(Error::new(
            join(path, "tls_options.alpn_protocols"),
            "is not supported by Sluice (checks offer the cluster's ALPN)",
        ));
    }
    if hc.transport_socket_match_criteria.is_some() {
        return Err(Error::new(
            join(path, "transport_socket_match_criteria"),
            "is not supported by Sluice (one transport socket per cluster)",
        ));
    }
    match &hc.health_checker {
        None => {
            return Err(Error::new(
                path,
                "needs http_health_check, tcp_health_check or grpc_health_check",
            ))
        }
        Some(HealthChecker::HttpHealthCheck(h)) => {
            m.set("http", http_check(h, &join(path, "http_health_check"))?);
        }
        Some(HealthChecker::TcpHealthCheck(t)) => {
            m.set("tcp", tcp_check(t, &join(path, "tcp_health_check"))?);
        }
        Some(HealthChecker::GrpcHealthCheck(g)) => {
            m.set("grpc", grpc_check(g, &join(path, "grpc_health_check"))?);
        }
        Some(HealthChecker::CustomHealthCheck(c)) => {
            return Err(Error::new(
                join(path, "custom_health_check"),
                format!(
                    "custom health checker \"{}\" is not supported by Sluice",
                    c.name
                ),
            ))
        }
    }
    Ok(m.build())
}

fn http_check(h: &HttpHealthCheck, path: &str) -> Result<Node> {
    let mut m = Map::new();
    if !h.path.starts_with('/') {
        return Err(Error::new(
            join(path, "path"),
            format!("must start with /, found \"{}\"", h.path),
        ));
    }
    m.set("path", text(&h.path));
    if !h.host.is_empty() {
        m.set("host", text(&h.host));
    }
    let method = RequestMethod::try_from(h.method)
        .map_err(|_| Error::new(join(path, "method"), format!("unknown method {}", h.method)))?;
    match method {
        RequestMethod::MethodUnspecified | RequestMethod::Get => {}
        RequestMethod::Connect => {
            return Err(Error::new(
                join(path, "method"),
                "CONNECT is not a health check method",
            ))
        }
        other => {
            m.set("method", text(other.as_str_name()));
        }
    }
    // Envoy's default is 200 alone; the native default is any 2xx.
    let statuses = if h.expected_statuses.is_empty() {
        vec![number(200)]
    } else {
        let mut out = Vec::new();
        for (i, r) in h.expected_statuses.iter().enumerate() {
            if !(100 <= r.start && r.start < r.end && r.end <= 600) {
                return Err(Error::new(
                    index(&join(path, "expected_statuses"), i),
                    format!(
                        "needs 100 <= start < end <= 600, found start {} and end {}",
                        r.start, r.end
                    ),
                ));
            }
            out.push(if r.end == r.start + 1 {
                number(r.start)
            } else {
                let mut range = Map::new();
                range.set("start", number(r.start));
                range.set("end", number(r.end));
                range.build()
            });
        }
        out
    };
    m.set("expected_statuses", list(statuses));
    // Natively every failing status counts towards unhealthy_threshold, which is what
    // listing a status as retriable does in Envoy.
    ignored(!h.retriable_statuses.is_empty(), path, "retriable_statuses");
    // Only sizes the body match of `receive`, refused below.
    ignored(
        h.response_buffer_size.is_some(),
        path,
        "response_buffer_size",
    );
    for (set, field, why) in [
        (h.send.is_some(), "send", "checks send no body"),
        (!h.receive.is_empty(), "receive", "only the status is read"),
        (
            !h.request_headers_to_add.is_empty(),
            "request_headers_to_add",
            "checks send fixed headers",
        ),
        (
            !h.request_headers_to_remove.is_empty(),
            "request_headers_to_remove",
            "checks send fixed headers",
        ),
        (
            h.service_name_matcher.is_some(),
            "service_name_matcher",
            "no x-envoy-upstream-healthchecked-cluster check",
        ),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                format!("is not supported by Sluice ({why})"),
            ));
        }
    }
    match CodecClientType::try_from(h.codec_client_type) {
        Ok(CodecClientType::Http1) => {}
        _ => {
            return Err(Error::new(
                join(path, "codec_client_type"),
                "only HTTP1 is supported by Sluice (HTTP checks speak HTTP/1.1)",
            ))
        }
    }
    Ok(m.build())
}

fn tcp_check(t: &TcpHealthCheck, path: &str) -> Result<Node> {
    let mut m = Map::new();
    if t.proxy_protocol_config.is_some() {
        return Err(Error::new(
            join(path, "proxy_protocol_config"),
            "is not supported by Sluice",
        ));
    }
    if let Some(p) = &t.send {
        if let Some(node) = payload(p, &join(path, "send"))? {
            m.set("send", node);
        }
    }
    let mut receive = Vec::new();
    for (i, p) in t.receive.iter().enumerate() {
        let at = index(&join(path, "receive"), i);
        match payload(p, &at)? {
            Some(node) => receive.push(node),
            None => return Err(Error::new(at, "must not be empty")),
        }
    }
    if !receive.is_empty() {
        m.set("receive", list(receive));
    }
    Ok(m.build())
}

/// A payload as `{ text: HEX }`; `None` when it holds nothing (a connect-only `send`).
fn payload(p: &Payload, path: &str) -> Result<Option<Node>> {
    match &p.payload {
        None => Ok(None),
        Some(PayloadKind::Text(hex)) => {
            if hex.is_empty() {
                return Err(Error::new(join(path, "text"), "must not be empty"));
            }
            Ok(Some(single("text", text(hex))))
        }
        Some(PayloadKind::Binary(bytes)) => {
            if bytes.is_empty() {
                return Err(Error::new(join(path, "binary"), "must not be empty"));
            }
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            Ok(Some(single("text", text(&hex))))
        }
    }
}

fn grpc_check(g: &GrpcHealthCheck, path: &str) -> Result<Node> {
    if !g.initial_metadata.is_empty() {
        return Err(Error::new(
            join(path, "initial_metadata"),
            "is not supported by Sluice (checks send no extra metadata)",
        ));
    }
    let mut m = Map::new();
    if !g.service_name.is_empty() {
        m.set("service_name", text(&g.service_name));
    }
    if !g.authority.is_empty() {
        m.set("authority", text(&g.authority));
    }
    Ok(m.build())
}

/// `upstream_connection_options`: TCP keepalive.
fn connection_options(o: &UpstreamConnectionOptions, path: &str) -> Result<Option<Node>> {
    // Names the interface in connection info only.
    ignored(
        o.set_local_interface_name_on_upstream_connections,
        path,
        "set_local_interface_name_on_upstream_connections",
    );
    if o.happy_eyeballs_config.is_some() {
        return Err(Error::new(
            join(path, "happy_eyeballs_config"),
            "is not supported by Sluice",
        ));
    }
    let Some(k) = &o.tcp_keepalive else {
        return Ok(None);
    };
    let at = join(path, "tcp_keepalive");
    let mut ka = Map::new();
    for (v, field) in [
        (&k.keepalive_time, "keepalive_time"),
        (&k.keepalive_interval, "keepalive_interval"),
    ] {
        match v.as_ref().map(|v| v.value) {
            None => {}
            Some(0) => return Err(Error::new(join(&at, field), "must be at least 1 (second)")),
            Some(s) => {
                ka.set(field, number(format!("{s}s")));
            }
        }
    }
    match k.keepalive_probes.as_ref().map(|v| v.value) {
        None => {}
        Some(n) if (1..=127).contains(&n) => {
            ka.set("keepalive_probes", number(n));
        }
        Some(n) => {
            return Err(Error::new(
                join(&at, "keepalive_probes"),
                format!("must be from 1 to 127, found {n}"),
            ))
        }
    }
    // Unset fields keep the kernel's defaults, as the native ones do.
    Ok(Some(single("tcp_keepalive", ka.build())))
}

/// The native `tls:` of an `UpstreamTlsContext` transport socket; `None` for plaintext.
fn transport_socket(ts: &TransportSocket, path: &str, kind: Kind) -> Result<Option<Node>> {
    match &ts.config_type {
        None if matches!(
            ts.name.as_str(),
            "envoy.transport_sockets.raw_buffer" | "raw_buffer"
        ) =>
        {
            Ok(None)
        }
        None => Err(Error::new(
            join(path, "typed_config"),
            format!("is required (transport socket \"{}\")", ts.name),
        )),
        Some(ConfigType::TypedConfig(any)) => {
            let at = join(path, "typed_config");
            if any.type_url == type_url(RAW_BUFFER) {
                return Ok(None);
            }
            if any.type_url != type_url(UPSTREAM_TLS_CONTEXT) {
                return Err(Error::new(
                    at,
                    format!(
                        "transport socket {} is not supported by Sluice (UpstreamTlsContext or RawBuffer)",
                        any.type_url
                    ),
                ));
            }
            let ctx: UpstreamTlsContext = unpack(any, &type_url(UPSTREAM_TLS_CONTEXT), &at)?;
            upstream_tls(&ctx, &at, kind).map(Some)
        }
    }
}

#[allow(deprecated)] // `enforce_rsa_key_usage`, only ignored
fn upstream_tls(ctx: &UpstreamTlsContext, path: &str, kind: Kind) -> Result<Node> {
    let mut m = Map::new();
    if ctx.auto_host_sni {
        // A DNS cluster's native default is the endpoint's host name, which is what
        // auto_host_sni sends; elsewhere it would be EDS hostnames, which Sluice has not.
        if !kind.dns() {
            return Err(Error::new(
                join(path, "auto_host_sni"),
                "is supported by Sluice for STRICT_DNS and LOGICAL_DNS clusters only",
            ));
        }
    } else if !ctx.sni.is_empty() {
        m.set("sni", text(&ctx.sni));
    }
    if ctx.allow_renegotiation {
        return Err(Error::new(
            join(path, "allow_renegotiation"),
            "is not supported by Sluice (no TLS renegotiation)",
        ));
    }
    // Resumption cache sizing, and a field Envoy itself ignores.
    ignored(ctx.max_session_keys.is_some(), path, "max_session_keys");
    ignored(
        ctx.enforce_rsa_key_usage.is_some(),
        path,
        "enforce_rsa_key_usage",
    );
    let default = CommonTlsContext::default();
    let common = ctx.common_tls_context.as_ref().unwrap_or(&default);
    let cpath = join(path, "common_tls_context");
    common_tls(common, &cpath, ctx.auto_sni_san_validation, &mut m)?;
    Ok(m.build())
}

/// The parts of a `CommonTlsContext` a client uses: trust, client certificate, ALPN and
/// parameters.
#[allow(deprecated)]
fn common_tls(
    common: &CommonTlsContext,
    path: &str,
    auto_sni_san_validation: bool,
    m: &mut Map,
) -> Result<()> {
    super::tls::refuse_providers(common, path)?;
    // Writes session keys to a file for debugging; the connection is the same.
    ignored(common.key_log.is_some(), path, "key_log");

    let (ca, mut sans, san_path) = match &common.validation_context_type {
        None => (None, Vec::new(), String::new()),
        Some(ValidationContextType::ValidationContext(v)) => {
            let at = join(path, "validation_context");
            let (ca, sans) = validation(v, &at)?;
            (ca, sans, at)
        }
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => (
            Some(sds_ref(
                s,
                &join(path, "validation_context_sds_secret_config"),
            )?),
            Vec::new(),
            String::new(),
        ),
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            let at = join(path, "combined_validation_context");
            if c.validation_context_certificate_provider.is_some()
                || c.validation_context_certificate_provider_instance.is_some()
            {
                return Err(Error::new(
                    at,
                    "certificate providers are not supported by Sluice (use SDS)",
                ));
            }
            let sds = c
                .validation_context_sds_secret_config
                .as_ref()
                .ok_or_else(|| {
                    Error::new(
                        join(&at, "validation_context_sds_secret_config"),
                        "is required",
                    )
                })?;
            let ca = sds_ref(sds, &join(&at, "validation_context_sds_secret_config"))?;
            let default_at = join(&at, "default_validation_context");
            let sans = match &c.default_validation_context {
                None => Vec::new(),
                Some(d) => {
                    if d.trusted_ca.is_some() {
                        return Err(Error::new(
                            join(&default_at, "trusted_ca"),
                            "is not supported by Sluice with an SDS validation context (the CA is the secret's)",
                        ));
                    }
                    validation(d, &default_at)?.1
                }
            };
            (Some(ca), sans, default_at)
        }
        Some(ValidationContextType::ValidationContextCertificateProvider(_))
        | Some(ValidationContextType::ValidationContextCertificateProviderInstance(_)) => {
            return Err(Error::new(
                path,
                "certificate providers are not supported by Sluice (use SDS)",
            ))
        }
    };
    if auto_sni_san_validation {
        // Envoy then checks the certificate against the SNI instead of the SANs listed: the
        // native check when verify_san is empty.
        sans.clear();
    }
    match ca {
        Some(ca) => {
            m.set("ca", ca);
        }
        None if !sans.is_empty() => {
            return Err(Error::new(
                join(&san_path, "match_typed_subject_alt_names"),
                "needs trusted_ca (SANs of a certificate nobody verified prove nothing)",
            ))
        }
        // Envoy verifies nothing without a trusted CA.
        None => {
            m.set("insecure_skip_verify", boolean(true));
        }
    }
    if !sans.is_empty() {
        m.set("verify_san", list(sans));
    }

    let certs = join(path, "tls_certificates");
    match common.tls_certificates.as_slice() {
        [] => match common.tls_certificate_sds_secret_configs.as_slice() {
            [] => {}
            [s] => {
                m.set(
                    "certificate",
                    sds_ref(
                        s,
                        &index(&join(path, "tls_certificate_sds_secret_configs"), 0),
                    )?,
                );
            }
            [_, ..] => {
                return Err(Error::new(
                    index(&join(path, "tls_certificate_sds_secret_configs"), 1),
                    "a client presents one certificate",
                ))
            }
        },
        [c] => {
            let at = index(&certs, 0);
            // Envoy uses tls_certificates and ignores these when both are given.
            ignored(
                !common.tls_certificate_sds_secret_configs.is_empty(),
                path,
                "tls_certificate_sds_secret_configs",
            );
            for (set, field) in [
                (c.pkcs12.is_some(), "pkcs12"),
                (c.private_key_provider.is_some(), "private_key_provider"),
                (c.password.is_some(), "password"),
                (c.tls_params.is_some(), "tls_params"),
            ] {
                if set {
                    return Err(Error::new(join(&at, field), "is not supported by Sluice"));
                }
            }
            // A server's stapled OCSP response and SCTs; reloading is watched natively.
            ignored(c.ocsp_staple.is_some(), &at, "ocsp_staple");
            ignored(
                !c.signed_certificate_timestamp.is_empty(),
                &at,
                "signed_certificate_timestamp",
            );
            ignored(c.watched_directory.is_some(), &at, "watched_directory");
            m.set(
                "cert_chain",
                text(&file(
                    c.certificate_chain.as_ref(),
                    &join(&at, "certificate_chain"),
                )?),
            );
            m.set(
                "private_key",
                text(&file(c.private_key.as_ref(), &join(&at, "private_key"))?),
            );
        }
        [_, ..] => {
            return Err(Error::new(
                index(&certs, 1),
                "a client presents one certificate",
            ))
        }
    }
    if !common.alpn_protocols.is_empty() {
        m.set("alpn", texts(&common.alpn_protocols));
    }
    let default = TlsParameters::default();
    tls_params(
        common.tls_params.as_ref().unwrap_or(&default),
        &join(path, "tls_params"),
        m,
    )
}

/// The CA (a file) and the SANs of a `CertificateValidationContext`.
#[allow(deprecated)] // `match_subject_alt_names`, still read
fn validation(v: &CertificateValidationContext, path: &str) -> Result<(Option<Node>, Vec<Node>)> {
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::certificate_validation_context::TrustChainVerification;
    for (set, field, why) in [
        (
            v.ca_certificate_provider_instance.is_some(),
            "ca_certificate_provider_instance",
            "use trusted_ca or SDS",
        ),
        (
            !v.verify_certificate_spki.is_empty(),
            "verify_certificate_spki",
            "no key pinning",
        ),
        (
            !v.verify_certificate_hash.is_empty(),
            "verify_certificate_hash",
            "no certificate pinning",
        ),
        (v.crl.is_some(), "crl", "no revocation lists"),
        (
            v.allow_expired_certificate,
            "allow_expired_certificate",
            "expired certificates are refused",
        ),
        (
            TrustChainVerification::try_from(v.trust_chain_verification)
                != Ok(TrustChainVerification::VerifyTrustChain),
            "trust_chain_verification",
            "the chain is always verified",
        ),
        (
            v.custom_validator_config.is_some(),
            "custom_validator_config",
            "the built-in verification only",
        ),
        (
            v.max_verify_depth.is_some(),
            "max_verify_depth",
            "no chain depth limit",
        ),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                format!("is not supported by Sluice ({why})"),
            ));
        }
    }
    // Not implemented by Envoy, file watching (native watches the file itself), a CRL option
    // without a CRL, and a server-side option.
    for (set, field) in [
        (v.system_root_certs.is_some(), "system_root_certs"),
        (
            v.require_signed_certificate_timestamp.is_some(),
            "require_signed_certificate_timestamp",
        ),
        (v.watched_directory.is_some(), "watched_directory"),
        (v.only_verify_leaf_cert_crl, "only_verify_leaf_cert_crl"),
        (v.suppress_client_ca_list, "suppress_client_ca_list"),
    ] {
        ignored(set, path, field);
    }
    let ca = match &v.trusted_ca {
        None => None,
        Some(ds) => Some(text(&file(Some(ds), &join(path, "trusted_ca"))?)),
    };
    let mut sans = Vec::new();
    if v.match_typed_subject_alt_names.is_empty() {
        for (i, sm) in v.match_subject_alt_names.iter().enumerate() {
            let at = index(&join(path, "match_subject_alt_names"), i);
            // Any SAN kind: the native side reads the kind from the value's form.
            sans.push(text(&exact_san(sm, &at, false)?));
        }
    } else {
        // Envoy ignores the deprecated list when the typed one is given.
        ignored(
            !v.match_subject_alt_names.is_empty(),
            path,
            "match_subject_alt_names",
        );
        for (i, san) in v.match_typed_subject_alt_names.iter().enumerate() {
            let at = index(&join(path, "match_typed_subject_alt_names"), i);
            let kind = match SanType::try_from(san.san_type) {
                Ok(SanType::Dns) => "dns",
                Ok(SanType::Uri) => "uri",
                Ok(SanType::IpAddress) => "ip",
                Ok(SanType::Email) | Ok(SanType::OtherName) => {
                    return Err(Error::new(
                        join(&at, "san_type"),
                        "only DNS, URI and IP_ADDRESS SANs are supported by Sluice",
                    ))
                }
                Ok(SanType::Unspecified) | Err(_) => {
                    return Err(Error::new(join(&at, "san_type"), "is required"))
                }
            };
            let matcher = san
                .matcher
                .as_ref()
                .ok_or_else(|| Error::new(join(&at, "matcher"), "is required"))?;
            let value = exact_san(matcher, &join(&at, "matcher"), kind != "uri")?;
            sans.push(single(kind, text(&value)));
        }
    }
    Ok((ca, sans))
}

/// The value of an exact SAN matcher; `any_case` when ignoring case changes nothing natively
/// (DNS names are compared without case, IP addresses have none).
fn exact_san(m: &StringMatcher, path: &str, any_case: bool) -> Result<String> {
    match &m.match_pattern {
        Some(MatchPattern::Exact(v)) if !v.is_empty() => {
            if m.ignore_case && !any_case {
                return Err(Error::new(
                    join(path, "ignore_case"),
                    "is not supported by Sluice here (URI SANs are compared exactly)",
                ));
            }
            Ok(v.clone())
        }
        _ => Err(Error::new(
            path,
            "only a non-empty exact match is supported by Sluice for SANs",
        )),
    }
}

/// `tls_params`: versions and suites. An Envoy client's highest version is TLS 1.2 unless
/// `tls_maximum_protocol_version` says TLSv1_3; natively TLS 1.3 is always offered unless
/// the suites leave it out, so an Envoy TLS 1.2 client becomes a list of TLS 1.2 suites.
fn tls_params(p: &TlsParameters, path: &str, m: &mut Map) -> Result<()> {
    let (min, tls13) = tls::versions(p, path, false)?;
    match min {
        TlsProtocol::TlSv13 => {
            m.set("min_version", text("TLS1_3"));
        }
        // TLS 1.2 is the native floor: servers that speak only 1.0 or 1.1 are not reached.
        TlsProtocol::TlSv10 | TlsProtocol::TlSv11 => {
            ignored(true, path, "tls_minimum_protocol_version");
        }
        TlsProtocol::TlsAuto | TlsProtocol::TlSv12 => {}
    }
    let suites = tls::cipher_suites(&p.cipher_suites, &join(path, "cipher_suites"), tls13)?;
    if !suites.is_empty() {
        m.set("cipher_suites", texts(&suites));
    }
    for (set, field) in [
        (!p.ecdh_curves.is_empty(), "ecdh_curves"),
        (!p.signature_algorithms.is_empty(), "signature_algorithms"),
        (!p.compliance_policies.is_empty(), "compliance_policies"),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                "is not supported by Sluice (the TLS provider's defaults)",
            ));
        }
    }
    Ok(())
}

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A non-negative duration in nanoseconds.
fn nanos(d: &Duration, path: &str) -> Result<u128> {
    if d.seconds < 0 || d.nanos < 0 {
        return Err(Error::new(path, "must not be negative"));
    }
    Ok(
        u128::from(d.seconds.unsigned_abs()) * NANOS_PER_SECOND
            + u128::from(d.nanos.unsigned_abs()),
    )
}

/// The native text of a duration given in nanoseconds.
fn from_nanos(n: u128) -> Node {
    let seconds = i64::try_from(n / NANOS_PER_SECOND).unwrap_or(i64::MAX);
    // Below one second: fits.
    let nanos = i32::try_from(n % NANOS_PER_SECOND).unwrap_or(0);
    // Not negative, so rendering cannot fail; the fallback is never used.
    duration(&Duration { seconds, nanos }, "").unwrap_or_else(|_| number("0"))
}

/// A duration the native side needs to be at least `min`.
fn at_least(d: &Duration, min: std::time::Duration, path: &str) -> Result<Node> {
    let node = duration(d, path)?;
    if nanos(d, path)? < min.as_nanos() {
        return Err(Error::new(
            path,
            format!(
                "must be at least {min:?} in Sluice, found {}",
                node.as_scalar().unwrap_or("")
            ),
        ));
    }
    Ok(node)
}

/// A duration Envoy needs to be above zero.
fn positive(d: &Duration, path: &str) -> Result<Node> {
    if nanos(d, path)? == 0 {
        return Err(Error::new(path, "must be greater than 0"));
    }
    duration(d, path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::translate::endpoint::tests::{assert_yaml, cla, group, lb, show, socket};
    use envoy_types::pb::envoy::config::cluster::v3::cluster::lb_subset_config::LbSubsetSelector;
    use envoy_types::pb::envoy::config::cluster::v3::cluster::{
        EdsClusterConfig, LeastRequestLbConfig, RingHashLbConfig,
    };
    use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
    use envoy_types::pb::envoy::config::core::v3::{
        ConfigSource, DataSource, KeepaliveSettings, Locality, Metadata, TcpKeepalive,
    };
    use envoy_types::pb::envoy::config::endpoint::v3::cluster_load_assignment::Policy;
    use envoy_types::pb::envoy::config::endpoint::v3::{
        ClusterLoadAssignment, LocalityLbEndpoints,
    };
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::CombinedCertificateValidationContext;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        SdsSecretConfig, SubjectAltNameMatcher, TlsCertificate,
    };
    use envoy_types::pb::envoy::extensions::upstreams::http::v3::http_protocol_options::{
        AutoHttpConfig, ExplicitHttpConfig, UseDownstreamHttpConfig,
    };
    use envoy_types::pb::envoy::r#type::v3::Int64Range;
    use envoy_types::pb::google::protobuf::{value, Any, Struct, UInt32Value, UInt64Value, Value};
    use prost::{Message, Name};
    use sluice_config::{
        DiscoveryType as NativeDiscovery, EndpointAddress, FallbackPolicy, LbPolicy as NativeLb,
        ProbeConfig, SanMatcher, UpstreamProtocol, UpstreamTrust,
    };

    fn dur(seconds: i64, nanos: i32) -> Option<Duration> {
        Some(Duration { seconds, nanos })
    }

    fn u32v(value: u32) -> Option<UInt32Value> {
        Some(UInt32Value { value })
    }

    fn any<M: Message + Name>(m: &M) -> Any {
        Any {
            type_url: M::type_url(),
            value: m.encode_to_vec(),
        }
    }

    fn kind(t: DiscoveryType) -> Option<ClusterDiscoveryType> {
        Some(ClusterDiscoveryType::Type(t as i32))
    }

    fn strings(pairs: &[(&str, &str)]) -> Struct {
        Struct {
            fields: pairs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value {
                            kind: Some(value::Kind::StringValue(v.to_string())),
                        },
                    )
                })
                .collect(),
        }
    }

    fn exact(v: &str) -> Option<StringMatcher> {
        Some(StringMatcher {
            match_pattern: Some(MatchPattern::Exact(v.into())),
            ..Default::default()
        })
    }

    fn tls_socket(ctx: &UpstreamTlsContext) -> Option<TransportSocket> {
        Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(ConfigType::TypedConfig(any(ctx))),
        })
    }

    fn http_options(o: &UpstreamHttpOptions) -> std::collections::HashMap<String, Any> {
        [(HTTP_OPTIONS.to_string(), any(o))].into()
    }

    fn h2_options(h2: Http2ProtocolOptions) -> UpstreamHttpOptions {
        UpstreamHttpOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::Http2ProtocolOptions(h2)),
                },
            )),
            ..Default::default()
        }
    }

    fn static_cluster(name: &str, load_assignment: ClusterLoadAssignment) -> EnvoyCluster {
        EnvoyCluster {
            name: name.into(),
            cluster_discovery_type: kind(DiscoveryType::Static),
            load_assignment: Some(load_assignment),
            ..Default::default()
        }
    }

    fn basic() -> EnvoyCluster {
        static_cluster("web", cla(vec![group(vec![lb(socket("127.0.0.1", 9001))])]))
    }

    fn http_check(path: &str) -> HealthCheck {
        HealthCheck {
            timeout: dur(1, 0),
            interval: dur(5, 0),
            unhealthy_threshold: u32v(3),
            healthy_threshold: u32v(2),
            health_checker: Some(HealthChecker::HttpHealthCheck(HttpHealthCheck {
                path: path.into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    /// The full-featured EDS cluster of the mapping and load tests.
    fn api() -> EnvoyCluster {
        let tls = UpstreamTlsContext {
            sni: "api.internal".into(),
            common_tls_context: Some(CommonTlsContext {
                tls_params: Some(TlsParameters {
                    tls_minimum_protocol_version: TlsProtocol::TlSv12 as i32,
                    tls_maximum_protocol_version: TlsProtocol::TlSv13 as i32,
                    cipher_suites: vec![
                        "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]".into(),
                        "ECDHE-RSA-AES256-GCM-SHA384".into(),
                    ],
                    ..Default::default()
                }),
                tls_certificate_sds_secret_configs: vec![SdsSecretConfig {
                    name: "default".into(),
                    sds_config: Some(ConfigSource::default()),
                }],
                alpn_protocols: vec!["h2".into()],
                validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(CertificateValidationContext {
                            match_typed_subject_alt_names: vec![
                                SubjectAltNameMatcher {
                                    san_type: SanType::Uri as i32,
                                    matcher: exact("spiffe://cluster.local/ns/default/sa/api"),
                                    oid: String::new(),
                                },
                                SubjectAltNameMatcher {
                                    san_type: SanType::Dns as i32,
                                    matcher: exact("api.internal"),
                                    oid: String::new(),
                                },
                            ],
                            ..Default::default()
                        }),
                        validation_context_sds_secret_config: Some(SdsSecretConfig {
                            name: "ROOTCA".into(),
                            sds_config: None,
                        }),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        let http = UpstreamHttpOptions {
            common_http_protocol_options: Some(CoreHttpProtocolOptions {
                idle_timeout: dur(30, 0),
                max_requests_per_connection: u32v(1000),
                ..Default::default()
            }),
            ..h2_options(Http2ProtocolOptions {
                max_concurrent_streams: u32v(100),
                connection_keepalive: Some(KeepaliveSettings {
                    interval: dur(10, 0),
                    timeout: dur(2, 0),
                    ..Default::default()
                }),
                ..Default::default()
            })
        };
        let mut check = http_check("/healthz");
        check.timeout = dur(0, 500_000_000);
        check.interval = dur(1, 0);
        check.interval_jitter_percent = 10;
        check.unhealthy_threshold = u32v(2);
        check.healthy_threshold = u32v(1);
        check.health_checker = Some(HealthChecker::HttpHealthCheck(HttpHealthCheck {
            path: "/healthz".into(),
            host: "api.local".into(),
            method: RequestMethod::Head as i32,
            expected_statuses: vec![
                Int64Range {
                    start: 200,
                    end: 201,
                },
                Int64Range {
                    start: 300,
                    end: 400,
                },
            ],
            ..Default::default()
        }));
        EnvoyCluster {
            name: "api".into(),
            alt_stat_name: "api_stats".into(),
            metadata: Some(Metadata::default()),
            cluster_discovery_type: kind(DiscoveryType::Eds),
            eds_cluster_config: Some(EdsClusterConfig {
                eds_config: Some(ConfigSource::default()),
                service_name: "api-v1".into(),
            }),
            connect_timeout: dur(1, 500_000_000),
            lb_policy: LbPolicy::RingHash as i32,
            lb_config: Some(LbConfig::RingHashLbConfig(RingHashLbConfig {
                minimum_ring_size: Some(UInt64Value { value: 2048 }),
                ..Default::default()
            })),
            common_lb_config: Some(CommonLbConfig {
                healthy_panic_threshold: Some(Percent { value: 30.0 }),
                ..Default::default()
            }),
            lb_subset_config: Some(LbSubsetConfig {
                fallback_policy: LbSubsetFallbackPolicy::DefaultSubset as i32,
                default_subset: Some(strings(&[("version", "v1")])),
                subset_selectors: vec![LbSubsetSelector {
                    keys: vec!["version".into()],
                    ..Default::default()
                }],
                ..Default::default()
            }),
            circuit_breakers: Some(CircuitBreakers {
                thresholds: vec![
                    Thresholds {
                        priority: RoutingPriority::Default as i32,
                        max_connections: u32v(100),
                        max_pending_requests: u32v(50),
                        max_requests: u32v(200),
                        max_retries: u32v(5),
                        track_remaining: true,
                        ..Default::default()
                    },
                    Thresholds {
                        priority: RoutingPriority::High as i32,
                        max_requests: u32v(20),
                        retry_budget: Some(RetryBudget {
                            budget_percent: Some(Percent { value: 25.0 }),
                            min_retry_concurrency: u32v(2),
                            budget_interval: None,
                        }),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }),
            outlier_detection: Some(OutlierDetection {
                consecutive_5xx: u32v(3),
                interval: dur(5, 0),
                base_ejection_time: dur(400, 0),
                max_ejection_percent: u32v(50),
                enforcing_consecutive_gateway_failure: u32v(100),
                enforcing_success_rate: u32v(0),
                ..Default::default()
            }),
            health_checks: vec![check],
            typed_extension_protocol_options: http_options(&http),
            upstream_connection_options: Some(UpstreamConnectionOptions {
                tcp_keepalive: Some(TcpKeepalive {
                    keepalive_time: u32v(60),
                    keepalive_probes: u32v(3),
                    keepalive_interval: None,
                }),
                ..Default::default()
            }),
            per_connection_buffer_limit_bytes: u32v(65536),
            transport_socket: tls_socket(&tls),
            ..Default::default()
        }
    }

    const API_YAML: &str = r#"
name: "api"
type: "static"
connect_timeout: 1500ms
lb_policy: "ring_hash"
ring_hash_lb_config: { minimum_ring_size: 2048 }
healthy_panic_threshold: 30
subset_selectors: [["version"]]
fallback_policy: "default_subset"
default_subset: { version: "v1" }
protocol: "http2"
http2_protocol_options: { max_concurrent_streams: 100, connection_keepalive: { interval: 10s, timeout: 2s } }
common_http_protocol_options: { idle_timeout: 30s, max_requests_per_connection: 1000 }
circuit_breakers:
  max_connections: 100
  max_pending_requests: 50
  max_requests: 200
  max_retries: 5
  high_priority: { max_requests: 20, retry_budget: { budget_percent: 25, min_retry_concurrency: 2 } }
outlier_detection:
  consecutive_5xx: 3
  consecutive_gateway_failure: 5
  interval: 5s
  base_ejection_time: 400s
  max_ejection_time: 400s
  max_ejection_percent: 50
  success_rate_minimum_hosts: 0
  success_rate_request_volume: 100
  success_rate_stdev_factor: 1900
health_check:
  timeout: 500ms
  interval: 1s
  interval_jitter: 100ms
  unhealthy_threshold: 2
  healthy_threshold: 1
  http: { path: "/healthz", host: "api.local", method: "HEAD", expected_statuses: [200, { start: 300, end: 400 }] }
upstream_connection_options: { tcp_keepalive: { keepalive_time: 60s, keepalive_probes: 3 } }
per_connection_buffer_limit: 65536
tls:
  sni: "api.internal"
  ca: { sds: "ROOTCA" }
  verify_san: [{ uri: "spiffe://cluster.local/ns/default/sa/api" }, { dns: "api.internal" }]
  certificate: { sds: "default" }
  alpn: ["h2"]
  cipher_suites:
    - "TLS13_AES_128_GCM_SHA256"
    - "TLS13_AES_256_GCM_SHA384"
    - "TLS13_CHACHA20_POLY1305_SHA256"
    - "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    - "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    - "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
"#;

    /// The endpoints EDS sends for `api`: two zones, a weight, labels, a draining host, and a
    /// failover level.
    fn api_assignment() -> ClusterLoadAssignment {
        let mut v2 = lb(socket("10.0.1.2", 8443));
        v2.load_balancing_weight = u32v(3);
        v2.metadata = Some(Metadata {
            filter_metadata: [("envoy.lb".to_string(), strings(&[("version", "v2")]))].into(),
            ..Default::default()
        });
        let mut draining = lb(socket("10.0.1.3", 8443));
        draining.health_status =
            envoy_types::pb::envoy::config::core::v3::HealthStatus::Draining as i32;
        let zone = |z: &str| {
            Some(Locality {
                region: "r1".into(),
                zone: z.into(),
                sub_zone: String::new(),
            })
        };
        ClusterLoadAssignment {
            cluster_name: "api-v1".into(),
            endpoints: vec![
                LocalityLbEndpoints {
                    locality: zone("z1"),
                    ..group(vec![lb(socket("10.0.1.1", 8443)), v2, draining])
                },
                LocalityLbEndpoints {
                    locality: zone("z2"),
                    priority: 1,
                    ..group(vec![lb(socket("10.0.2.1", 8443))])
                },
            ],
            policy: Some(Policy {
                overprovisioning_factor: u32v(200),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn document(clusters: Vec<Node>, sds: bool) -> Node {
        let mut doc = Map::new();
        if sds {
            doc.set("sds", single("address", text("127.0.0.1:15012")));
        }
        doc.set("clusters", list(clusters));
        doc.build()
    }

    fn load(clusters: Vec<Node>, sds: bool) -> sluice_config::Config {
        let doc = document(clusters, sds);
        match sluice_config::load_tree(
            doc.clone(),
            "xds",
            &sluice_config::Registry::default(),
            sluice_config::LoadOptions::default(),
        ) {
            Ok(c) => c,
            Err(e) => panic!("{e}\n{}", show(&doc)),
        }
    }

    fn error(c: &EnvoyCluster) -> Error {
        cluster(c).unwrap_err()
    }

    /// Asserts translating `c` fails at `field`.
    #[track_caller]
    fn refused(c: &EnvoyCluster, field: &str) {
        match cluster(c) {
            Ok(t) => panic!("expected an error at {field}, got {}", show(&t.node)),
            Err(e) => assert_eq!(e.field, field, "{e}"),
        }
    }

    #[test]
    fn a_static_cluster_gets_envoys_defaults_written_out() {
        let t = cluster(&basic()).unwrap();
        assert_eq!(t.eds, None);
        assert_yaml(
            &t.node,
            r#"
name: "web"
type: "static"
connect_timeout: 5s
lb_policy: "round_robin"
common_http_protocol_options: { idle_timeout: 1h }
endpoints: [{ address: "127.0.0.1:9001" }]
"#,
        );
        let config = load(vec![t.node], false);
        let c = &config.clusters[0];
        assert_eq!(c.connect_timeout, std::time::Duration::from_secs(5));
        assert_eq!(
            c.common_http_protocol_options.idle_timeout,
            std::time::Duration::from_secs(3600)
        );
        assert_eq!(c.protocol, UpstreamProtocol::Http1);
        assert_eq!(c.endpoints[0].address.to_string(), "127.0.0.1:9001");
    }

    #[test]
    fn the_full_mapping() {
        let t = cluster(&api()).unwrap();
        assert_eq!(t.eds.as_deref(), Some("api-v1"));
        assert_yaml(&t.node, API_YAML);
    }

    #[test]
    fn an_eds_cluster_loads_with_its_endpoints() {
        let t = cluster(&api()).unwrap();
        let e = endpoint::endpoints(&api_assignment()).unwrap();
        let node = with_endpoints(&t.node, &e);
        let config = load(vec![node.clone(), cluster(&basic()).unwrap().node], true);
        let c = &config.clusters[0];
        assert_eq!(c.name, "api");
        assert_eq!(c.discovery, NativeDiscovery::Static);
        assert_eq!(c.connect_timeout, std::time::Duration::from_millis(1500));
        assert_eq!(c.lb_policy, NativeLb::RingHash);
        assert_eq!(c.lb_config.minimum_ring_size, 2048);
        assert_eq!(c.healthy_panic_threshold, 30);
        assert_eq!(c.overprovisioning_factor, 200);
        assert_eq!(c.subset.selectors, vec![vec!["version".to_string()]]);
        assert_eq!(c.subset.fallback_policy, FallbackPolicy::DefaultSubset);
        assert_eq!(c.protocol, UpstreamProtocol::Http2);
        assert_eq!(c.http2_protocol_options.max_concurrent_streams, Some(100));
        assert_eq!(
            c.common_http_protocol_options.max_requests_per_connection,
            Some(1000)
        );
        assert_eq!(c.circuit_breakers.max_requests, 200);
        assert_eq!(c.circuit_breakers.high_priority.max_requests, 20);
        let budget = c.circuit_breakers.high_priority.retry_budget.unwrap();
        assert_eq!(budget.budget_percent, 25.0);
        let od = c.outlier_detection.as_ref().unwrap();
        assert_eq!(od.consecutive_5xx, 3);
        assert_eq!(od.consecutive_gateway_failure, 5);
        assert_eq!(od.success_rate_minimum_hosts, 0);
        let hc = c.health_check.as_ref().unwrap();
        assert_eq!(hc.interval_jitter, std::time::Duration::from_millis(100));
        let ProbeConfig::Http(http) = &hc.probe else {
            panic!("an HTTP check expected")
        };
        assert_eq!(http.path, "/healthz");
        assert_eq!(http.host.as_deref(), Some("api.local"));
        assert_eq!(http.expected_statuses.len(), 2);
        assert_eq!(c.per_connection_buffer_limit, Some(65536));
        assert_eq!(
            c.tcp_keepalive.unwrap().keepalive_time,
            std::time::Duration::from_secs(60)
        );
        let tls = c.tls.as_ref().unwrap();
        assert_eq!(tls.sni.as_deref(), Some("api.internal"));
        assert!(
            matches!(&tls.trust, UpstreamTrust::Ca(sluice_config::CaSource::Sds(r)) if r.name == "ROOTCA")
        );
        assert_eq!(
            tls.verify_san,
            vec![
                SanMatcher::Uri("spiffe://cluster.local/ns/default/sa/api".into()),
                SanMatcher::Dns("api.internal".into()),
            ]
        );
        assert_eq!(tls.alpn, Some(vec!["h2".to_string()]));
        // The draining host is left out; the others keep their order and locality.
        let hosts: Vec<(String, u32, &str, u32)> = c
            .endpoints
            .iter()
            .map(|e| (e.address.to_string(), e.weight, e.zone.as_str(), e.priority))
            .collect();
        assert_eq!(
            hosts,
            [
                ("10.0.1.1:8443".to_string(), 1, "z1", 0),
                ("10.0.1.2:8443".to_string(), 3, "z1", 0),
                ("10.0.2.1:8443".to_string(), 1, "z2", 1),
            ]
        );
        assert_eq!(c.endpoints[1].region, "r1");
        assert_eq!(
            c.endpoints[1].metadata,
            vec![("version".to_string(), "v2".to_string())]
        );
    }

    #[test]
    fn with_endpoints_replaces_the_previous_assignment() {
        let t = cluster(&api()).unwrap();
        let first = with_endpoints(&t.node, &endpoint::endpoints(&api_assignment()).unwrap());
        let second = cla(vec![group(vec![lb(socket("10.9.9.9", 80))])]);
        let node = with_endpoints(&first, &endpoint::endpoints(&second).unwrap());
        let NodeKind::Map(entries) = &node.kind else {
            panic!("a mapping expected")
        };
        assert_eq!(entries.iter().filter(|(k, _)| k == "endpoints").count(), 1);
        assert!(!entries.iter().any(|(k, _)| k == "overprovisioning_factor"));
        let config = load(vec![node], true);
        assert_eq!(config.clusters[0].endpoints.len(), 1);
        assert_eq!(config.clusters[0].overprovisioning_factor, 140);
    }

    #[test]
    fn istio_transport_socket_matches_choose_tls_per_endpoint() {
        use envoy_types::pb::envoy::config::cluster::v3::cluster::TransportSocketMatch;
        use envoy_types::pb::google::protobuf::{value, Struct, Value};
        let labels = |pairs: &[(&str, &str)]| Struct {
            fields: pairs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        Value {
                            kind: Some(value::Kind::StringValue(v.to_string())),
                        },
                    )
                })
                .collect(),
        };
        let mut c = basic();
        c.transport_socket_matches = vec![
            TransportSocketMatch {
                name: "tlsMode-istio".into(),
                r#match: Some(labels(&[("tlsMode", "istio")])),
                transport_socket: tls_socket(&UpstreamTlsContext {
                    sni: "outbound_.80_._.web".into(),
                    ..Default::default()
                }),
            },
            TransportSocketMatch {
                name: "tlsMode-disabled".into(),
                r#match: Some(labels(&[])),
                transport_socket: Some(TransportSocket {
                    name: "envoy.transport_sockets.raw_buffer".into(),
                    config_type: None,
                }),
            },
        ];
        let mut endpoint = lb(socket("127.0.0.1", 9002));
        endpoint.metadata = Some(Metadata {
            filter_metadata: [(
                "envoy.transport_socket_match".to_string(),
                labels(&[("tlsMode", "istio")]),
            )]
            .into(),
            ..Default::default()
        });
        c.load_assignment = Some(cla(vec![group(vec![
            lb(socket("127.0.0.1", 9001)),
            endpoint,
        ])]));
        let t = cluster(&c).unwrap();
        let config = load(vec![t.node], false);
        let got = &config.clusters[0];
        assert_eq!(got.transport_socket_matches.len(), 2);
        assert_eq!(got.transport_socket_matches[0].name, "tlsMode-istio");
        assert_eq!(
            got.transport_socket_matches[0].labels,
            vec![("tlsMode".to_string(), "istio".to_string())]
        );
        assert!(got.transport_socket_matches[0].tls.is_some());
        assert!(got.transport_socket_matches[1].tls.is_none());
        assert!(got.transport_socket_matches[1].labels.is_empty());
        assert!(got.endpoints[0].transport_socket_match.is_empty());
        assert_eq!(
            got.endpoints[1].transport_socket_match,
            vec![("tlsMode".to_string(), "istio".to_string())]
        );
    }

    #[test]
    fn dns_clusters_tls_files_and_the_deprecated_http2_field() {
        let dir = std::env::temp_dir().join(format!("sluice-xds-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
        let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
        for (name, body) in [("ca.pem", cert), ("c.pem", cert), ("c.key", key)] {
            std::fs::write(dir.join(name), body).unwrap();
        }
        let path = |name: &str| dir.join(name).display().to_string();
        let file = |name: &str| {
            Some(DataSource {
                specifier: Some(Specifier::Filename(path(name))),
                ..Default::default()
            })
        };
        let tls = UpstreamTlsContext {
            common_tls_context: Some(CommonTlsContext {
                tls_certificates: vec![TlsCertificate {
                    certificate_chain: file("c.pem"),
                    private_key: file("c.key"),
                    ..Default::default()
                }],
                validation_context_type: Some(ValidationContextType::ValidationContext(
                    CertificateValidationContext {
                        trusted_ca: file("ca.pem"),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
            ..Default::default()
        };
        #[allow(deprecated)]
        let c = EnvoyCluster {
            name: "dns".into(),
            cluster_discovery_type: kind(DiscoveryType::StrictDns),
            dns_refresh_rate: dur(10, 0),
            dns_lookup_family: DnsLookupFamily::V4Only as i32,
            dns_resolvers: vec![socket("10.0.0.53", 0), socket("::1", 5353)],
            lb_policy: LbPolicy::LeastRequest as i32,
            lb_config: Some(LbConfig::LeastRequestLbConfig(LeastRequestLbConfig {
                choice_count: u32v(3),
                ..Default::default()
            })),
            http2_protocol_options: Some(Http2ProtocolOptions::default()),
            load_assignment: Some(cla(vec![group(vec![
                lb(socket("backend.local", 8443)),
                lb(socket("10.0.0.7", 8443)),
            ])])),
            transport_socket: tls_socket(&tls),
            ..Default::default()
        };
        let t = cluster(&c).unwrap();
        assert_yaml(
            &t.node,
            &format!(
                r#"
name: "dns"
type: "strict_dns"
dns_refresh_rate: 10s
dns_lookup_family: "v4_only"
dns_resolvers: ["10.0.0.53:53", "[::1]:5353"]
connect_timeout: 5s
lb_policy: "least_request"
least_request_lb_config: {{ choice_count: 3 }}
protocol: "http2"
common_http_protocol_options: {{ idle_timeout: 1h }}
tls:
  ca: "{ca}"
  cert_chain: "{chain}"
  private_key: "{key}"
  cipher_suites:
    - "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    - "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
    - "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    - "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    - "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    - "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
endpoints: [{{ address: "backend.local:8443" }}, {{ address: "10.0.0.7:8443" }}]
"#,
                ca = path("ca.pem"),
                chain = path("c.pem"),
                key = path("c.key"),
            ),
        );
        let config = load(vec![t.node], false);
        let _ = std::fs::remove_dir_all(&dir);
        let c = &config.clusters[0];
        assert_eq!(c.discovery, NativeDiscovery::StrictDns);
        assert_eq!(c.lb_config.choice_count, 3);
        assert_eq!(c.protocol, UpstreamProtocol::Http2);
        assert_eq!(
            c.endpoints[0].address,
            EndpointAddress::Name {
                host: "backend.local".into(),
                port: 8443
            }
        );
        assert_eq!(c.dns_resolvers.len(), 2);
        let tls = c.tls.as_ref().unwrap();
        assert!(tls.client_certificate.is_some());
        // An Envoy client stops at TLS 1.2 unless told otherwise.
        assert!(tls.cipher_suites.iter().all(|s| !s.starts_with("TLS13_")));
    }

    #[test]
    fn envoy_defaults_that_differ_from_the_native_ones() {
        // An HTTP check passes on 200 only; subsets fall back to nothing; a TLS socket
        // without a validation context verifies nothing.
        let mut c = basic();
        c.health_checks = vec![http_check("/ready")];
        c.lb_subset_config = Some(LbSubsetConfig {
            subset_selectors: vec![LbSubsetSelector {
                keys: vec!["stage".into()],
                ..Default::default()
            }],
            ..Default::default()
        });
        c.outlier_detection = Some(OutlierDetection::default());
        c.transport_socket = tls_socket(&UpstreamTlsContext {
            sni: "web.local".into(),
            common_tls_context: Some(CommonTlsContext {
                tls_params: Some(TlsParameters {
                    tls_maximum_protocol_version: TlsProtocol::TlSv13 as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        let t = cluster(&c).unwrap();
        assert_yaml(
            &t.node,
            r#"
name: "web"
type: "static"
connect_timeout: 5s
lb_policy: "round_robin"
subset_selectors: [["stage"]]
fallback_policy: "no_fallback"
common_http_protocol_options: { idle_timeout: 1h }
outlier_detection:
  consecutive_5xx: 5
  consecutive_gateway_failure: 0
  interval: 10s
  base_ejection_time: 30s
  max_ejection_time: 300s
  max_ejection_percent: 10
  success_rate_minimum_hosts: 5
  success_rate_request_volume: 100
  success_rate_stdev_factor: 1900
health_check:
  timeout: 1s
  interval: 5s
  unhealthy_threshold: 3
  healthy_threshold: 2
  http: { path: "/ready", expected_statuses: [200] }
tls: { sni: "web.local", insecure_skip_verify: true }
endpoints: [{ address: "127.0.0.1:9001" }]
"#,
        );
        let config = load(vec![t.node], false);
        let c = &config.clusters[0];
        assert_eq!(c.subset.fallback_policy, FallbackPolicy::NoFallback);
        assert!(matches!(
            c.tls.as_ref().unwrap().trust,
            UpstreamTrust::InsecureSkipVerify
        ));
    }

    #[test]
    fn protocol_choices() {
        let downstream = UpstreamHttpOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::UseDownstreamProtocolConfig(
                UseDownstreamHttpConfig {
                    http2_protocol_options: Some(Http2ProtocolOptions {
                        max_concurrent_streams: u32v(50),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let mut c = basic();
        c.typed_extension_protocol_options = http_options(&downstream);
        let config = load(vec![cluster(&c).unwrap().node], false);
        assert_eq!(
            config.clusters[0].protocol,
            UpstreamProtocol::SameAsDownstream
        );
        assert_eq!(
            config.clusters[0]
                .http2_protocol_options
                .max_concurrent_streams,
            Some(50)
        );

        let http1 = UpstreamHttpOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::ExplicitHttpConfig(
                ExplicitHttpConfig {
                    protocol_config: Some(ProtocolConfig::HttpProtocolOptions(
                        Http1ProtocolOptions::default(),
                    )),
                },
            )),
            ..Default::default()
        };
        c.typed_extension_protocol_options = http_options(&http1);
        let config = load(vec![cluster(&c).unwrap().node], false);
        assert_eq!(config.clusters[0].protocol, UpstreamProtocol::Http1);

        let auto = UpstreamHttpOptions {
            upstream_protocol_options: Some(UpstreamProtocolOptions::AutoConfig(
                AutoHttpConfig::default(),
            )),
            ..Default::default()
        };
        c.typed_extension_protocol_options = http_options(&auto);
        refused(
            &c,
            &format!("typed_extension_protocol_options[\"{HTTP_OPTIONS}\"].auto_config"),
        );

        #[allow(deprecated)]
        {
            let mut both = basic();
            both.typed_extension_protocol_options = http_options(&http1);
            both.http2_protocol_options = Some(Http2ProtocolOptions::default());
            refused(
                &both,
                &format!("typed_extension_protocol_options[\"{HTTP_OPTIONS}\"]"),
            );
            let mut twice = basic();
            twice.max_requests_per_connection = u32v(5);
            twice.common_http_protocol_options = Some(CoreHttpProtocolOptions {
                max_requests_per_connection: u32v(6),
                ..Default::default()
            });
            refused(&twice, "max_requests_per_connection");
        }
    }

    #[test]
    fn logical_dns_takes_exactly_one_endpoint() {
        let mut c = static_cluster(
            "one",
            cla(vec![group(vec![
                lb(socket("a.local", 80)),
                lb(socket("b.local", 80)),
            ])]),
        );
        c.cluster_discovery_type = kind(DiscoveryType::LogicalDns);
        let e = error(&c);
        assert_eq!(e.field, "load_assignment");
        assert!(e.message.contains("exactly one endpoint, found 2"), "{e}");
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut c = basic();
        c.connect_timeout = dur(-1, 0);
        let e = error(&c);
        assert_eq!(e.to_string(), "connect_timeout: must not be negative");
        c.connect_timeout = dur(0, 0);
        refused(&c, "connect_timeout");

        let port = |p: u32| static_cluster("p", cla(vec![group(vec![lb(socket("10.0.0.1", p))])]));
        let field = "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value";
        refused(&port(0), field);
        refused(&port(65536), field);
        let named = static_cluster("n", cla(vec![group(vec![lb(socket("db.local", 5432))])]));
        let e = error(&named);
        assert_eq!(
            e.field,
            "load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address"
        );
        assert!(e.message.contains("is not an IP address"), "{e}");

        let mut hc = basic();
        let mut check = http_check("/h");
        check.interval = dur(0, -5);
        hc.health_checks = vec![check];
        refused(&hc, "health_checks[0].interval");
        let mut check = http_check("/h");
        check.timeout = None;
        hc.health_checks = vec![check];
        refused(&hc, "health_checks[0].timeout");
        hc.health_checks = vec![http_check("healthz")];
        refused(&hc, "health_checks[0].http_health_check.path");

        let mut od = basic();
        od.outlier_detection = Some(OutlierDetection {
            base_ejection_time: dur(60, 0),
            max_ejection_time: dur(30, 0),
            ..Default::default()
        });
        refused(&od, "outlier_detection.max_ejection_time");

        let mut nameless = basic();
        nameless.name.clear();
        refused(&nameless, "name");
        let mut unknown = basic();
        unknown.lb_policy = 42;
        refused(&unknown, "lb_policy");
    }

    #[test]
    fn unsupported_fields_are_refused_by_their_envoy_path() {
        let mut cases: Vec<(EnvoyCluster, String)> = Vec::new();
        let mut case = |f: &dyn Fn(&mut EnvoyCluster), field: &str| {
            let mut c = basic();
            f(&mut c);
            cases.push((c, field.to_string()));
        };
        case(
            &|c| c.cluster_discovery_type = kind(DiscoveryType::OriginalDst),
            "type",
        );
        case(
            &|c| {
                c.cluster_discovery_type = Some(ClusterDiscoveryType::ClusterType(
                    envoy_types::pb::envoy::config::cluster::v3::cluster::CustomClusterType {
                        name: "envoy.clusters.aggregate".into(),
                        typed_config: None,
                    },
                ))
            },
            "cluster_type",
        );
        case(
            &|c| c.lb_policy = LbPolicy::ClusterProvided as i32,
            "lb_policy",
        );
        case(
            &|c| {
                c.lb_config = Some(LbConfig::MaglevLbConfig(Default::default()));
            },
            "maglev_lb_config",
        );
        case(
            &|c| {
                c.transport_socket_matches = vec![Default::default()];
            },
            "transport_socket_matches[0].name",
        );
        case(
            &|c| {
                c.filters = vec![Default::default()];
            },
            "filters",
        );
        case(
            &|c| {
                c.circuit_breakers = Some(CircuitBreakers {
                    thresholds: vec![Thresholds {
                        max_connection_pools: u32v(4),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            },
            "circuit_breakers.thresholds[0].max_connection_pools",
        );
        case(
            &|c| {
                c.circuit_breakers = Some(CircuitBreakers {
                    thresholds: vec![Thresholds {
                        priority: RoutingPriority::High as i32,
                        max_connections: u32v(4),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            },
            "circuit_breakers.thresholds[0].max_connections",
        );
        case(
            &|c| {
                c.circuit_breakers = Some(CircuitBreakers {
                    thresholds: vec![Thresholds::default(), Thresholds::default()],
                    ..Default::default()
                })
            },
            "circuit_breakers.thresholds[1].priority",
        );
        case(
            &|c| {
                c.circuit_breakers = Some(CircuitBreakers {
                    thresholds: vec![Thresholds {
                        retry_budget: Some(RetryBudget {
                            budget_percent: Some(Percent { value: 12.5 }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            },
            "circuit_breakers.thresholds[0].retry_budget.budget_percent",
        );
        case(
            &|c| {
                c.outlier_detection = Some(OutlierDetection {
                    enforcing_consecutive_5xx: u32v(50),
                    ..Default::default()
                })
            },
            "outlier_detection.enforcing_consecutive_5xx",
        );
        case(
            &|c| {
                c.outlier_detection = Some(OutlierDetection {
                    enforcing_failure_percentage: u32v(100),
                    ..Default::default()
                })
            },
            "outlier_detection.enforcing_failure_percentage",
        );
        case(
            &|c| {
                c.outlier_detection = Some(OutlierDetection {
                    split_external_local_origin_errors: true,
                    ..Default::default()
                })
            },
            "outlier_detection.split_external_local_origin_errors",
        );
        case(
            &|c| c.health_checks = vec![http_check("/a"), http_check("/b")],
            "health_checks[1]",
        );
        case(
            &|c| {
                let mut h = http_check("/a");
                if let Some(HealthChecker::HttpHealthCheck(x)) = &mut h.health_checker {
                    x.codec_client_type = CodecClientType::Http2 as i32;
                }
                c.health_checks = vec![h];
            },
            "health_checks[0].http_health_check.codec_client_type",
        );
        case(
            &|c| {
                let mut h = http_check("/a");
                h.healthy_edge_interval = dur(1, 0);
                c.health_checks = vec![h];
            },
            "health_checks[0].healthy_edge_interval",
        );
        case(
            &|c| {
                c.common_lb_config = Some(CommonLbConfig {
                    locality_config_specifier: Some(
                        LocalityConfigSpecifier::LocalityWeightedLbConfig(Default::default()),
                    ),
                    ..Default::default()
                })
            },
            "common_lb_config.locality_weighted_lb_config",
        );
        case(
            &|c| {
                c.common_lb_config = Some(CommonLbConfig {
                    healthy_panic_threshold: Some(Percent { value: 33.3 }),
                    ..Default::default()
                })
            },
            "common_lb_config.healthy_panic_threshold",
        );
        case(
            &|c| {
                c.lb_subset_config = Some(LbSubsetConfig {
                    panic_mode_any: true,
                    ..Default::default()
                })
            },
            "lb_subset_config.panic_mode_any",
        );
        case(
            &|c| {
                c.typed_extension_protocol_options = [(
                    "envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions".to_string(),
                    Any::default(),
                )]
                .into()
            },
            "typed_extension_protocol_options[\"envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions\"]",
        );
        case(
            &|c| {
                c.typed_extension_protocol_options =
                    http_options(&h2_options(Http2ProtocolOptions {
                        initial_stream_window_size: u32v(65535),
                        ..Default::default()
                    }))
            },
            &format!(
                "typed_extension_protocol_options[\"{HTTP_OPTIONS}\"].explicit_http_config.http2_protocol_options.initial_stream_window_size"
            ),
        );
        case(
            &|c| {
                c.typed_extension_protocol_options = http_options(&UpstreamHttpOptions {
                    common_http_protocol_options: Some(CoreHttpProtocolOptions {
                        idle_timeout: dur(0, 0),
                        ..Default::default()
                    }),
                    ..h2_options(Http2ProtocolOptions::default())
                })
            },
            &format!(
                "typed_extension_protocol_options[\"{HTTP_OPTIONS}\"].common_http_protocol_options.idle_timeout"
            ),
        );
        case(
            &|c| {
                c.upstream_connection_options = Some(UpstreamConnectionOptions {
                    tcp_keepalive: Some(TcpKeepalive {
                        keepalive_probes: u32v(500),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            },
            "upstream_connection_options.tcp_keepalive.keepalive_probes",
        );
        case(
            &|c| c.per_connection_buffer_limit_bytes = u32v(1024),
            "per_connection_buffer_limit_bytes",
        );
        case(
            &|c| {
                c.transport_socket = Some(TransportSocket {
                    name: "envoy.transport_sockets.alts".into(),
                    config_type: Some(ConfigType::TypedConfig(Any {
                        type_url:
                            "type.googleapis.com/envoy.extensions.transport_sockets.alts.v3.Alts"
                                .into(),
                        value: Vec::new(),
                    })),
                })
            },
            "transport_socket.typed_config",
        );
        let tls_case = |ctx: UpstreamTlsContext| tls_socket(&ctx);
        let common = |common: CommonTlsContext| UpstreamTlsContext {
            common_tls_context: Some(common),
            ..Default::default()
        };
        let inline = tls_case(common(CommonTlsContext {
            tls_certificates: vec![TlsCertificate {
                certificate_chain: Some(DataSource {
                    specifier: Some(Specifier::InlineBytes(b"-----BEGIN".to_vec())),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }));
        case(
            &|c| c.transport_socket = inline.clone(),
            "transport_socket.typed_config.common_tls_context.tls_certificates[0].certificate_chain",
        );
        let san_without_ca = tls_case(common(CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                        san_type: SanType::Dns as i32,
                        matcher: exact("a.local"),
                        oid: String::new(),
                    }],
                    ..Default::default()
                },
            )),
            ..Default::default()
        }));
        case(
            &|c| c.transport_socket = san_without_ca.clone(),
            "transport_socket.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names",
        );
        let prefix_san = tls_case(common(CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    trusted_ca: Some(DataSource {
                        specifier: Some(Specifier::Filename("/etc/ca.pem".into())),
                        ..Default::default()
                    }),
                    match_typed_subject_alt_names: vec![SubjectAltNameMatcher {
                        san_type: SanType::Uri as i32,
                        matcher: Some(StringMatcher {
                            match_pattern: Some(MatchPattern::Prefix("spiffe://td/".into())),
                            ..Default::default()
                        }),
                        oid: String::new(),
                    }],
                    ..Default::default()
                },
            )),
            ..Default::default()
        }));
        case(
            &|c| c.transport_socket = prefix_san.clone(),
            "transport_socket.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher",
        );
        let pinned = tls_case(common(CommonTlsContext {
            validation_context_type: Some(ValidationContextType::ValidationContext(
                CertificateValidationContext {
                    verify_certificate_spki: vec![
                        "NvqYIYSbgK2vCJpQhObf77vv+bQWtc5ek5RIOwPiC9A=".into()
                    ],
                    ..Default::default()
                },
            )),
            ..Default::default()
        }));
        case(
            &|c| c.transport_socket = pinned.clone(),
            "transport_socket.typed_config.common_tls_context.validation_context.verify_certificate_spki",
        );
        let old_tls = tls_case(common(CommonTlsContext {
            tls_params: Some(TlsParameters {
                tls_maximum_protocol_version: TlsProtocol::TlSv11 as i32,
                ..Default::default()
            }),
            ..Default::default()
        }));
        case(
            &|c| c.transport_socket = old_tls.clone(),
            "transport_socket.typed_config.common_tls_context.tls_params.tls_maximum_protocol_version",
        );
        let cbc = tls_case(common(CommonTlsContext {
            tls_params: Some(TlsParameters {
                cipher_suites: vec!["ECDHE-RSA-AES128-GCM-SHA256".into(), "AES128-SHA-X".into()],
                ..Default::default()
            }),
            ..Default::default()
        }));
        case(
            &|c| c.transport_socket = cbc.clone(),
            "transport_socket.typed_config.common_tls_context.tls_params.cipher_suites[1]",
        );
        let host_sni = tls_case(UpstreamTlsContext {
            auto_host_sni: true,
            ..Default::default()
        });
        case(
            &|c| c.transport_socket = host_sni.clone(),
            "transport_socket.typed_config.auto_host_sni",
        );
        for (c, field) in &cases {
            refused(c, field);
        }
    }
}
