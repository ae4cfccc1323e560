//! Decoding `clusters[]` entries.

use std::net::SocketAddr;
use std::time::Duration;

use crate::address::{name_and_port, Address};
use crate::cluster::*;
use crate::decode::{index, join, keyword, seq, Cx, Decode, Fields};
use crate::model::{CommonHttpProtocolOptions, Http2ProtocolOptions, UpstreamProtocol};
use crate::yaml::{Node, NodeKind};

impl Decode for ClusterConfig {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let name = f.required::<String>("name", cx);
        let discovery = f.or("type", DiscoveryType::Static, cx);
        let refresh = f.or("dns_refresh_rate", Duration::from_secs(5), cx);
        let refresh_line = f.line_of("dns_refresh_rate");
        let family = f.or("dns_lookup_family", DnsLookupFamily::Auto, cx);
        let resolvers = f.or("dns_resolvers", Vec::<Resolver>::new(), cx);
        let protocol = f.or("protocol", UpstreamProtocol::Http1, cx);
        let http2 = f.or(
            "http2_protocol_options",
            Http2ProtocolOptions::default(),
            cx,
        );
        let common = f.or(
            "common_http_protocol_options",
            CommonHttpProtocolOptions::default(),
            cx,
        );
        let connect_timeout = f.or("connect_timeout", Duration::from_secs(5), cx);
        let health_check = f.optional::<crate::HealthCheckConfig>("health_check", cx);
        let lb_policy = f.or("lb_policy", LbPolicy::RoundRobin, cx);
        let lb_config = decode_lb_config(&mut f, lb_policy, cx);
        let subset = decode_subset(&mut f, cx);
        let local = decode_local(&mut f, cx);
        let overprovisioning = f.or("overprovisioning_factor", 140u32, cx);
        let overprovisioning_line = f.line_of("overprovisioning_factor");
        let panic = f.or("healthy_panic_threshold", 50u32, cx);
        let panic_line = f.line_of("healthy_panic_threshold");
        let outlier = f.optional::<OutlierDetection>("outlier_detection", cx);
        let breakers = f.or("circuit_breakers", CircuitBreakers::default(), cx);
        let keepalive = decode_connection_options(&mut f, cx);
        let buffer_limit = f.optional::<crate::ByteSize>("per_connection_buffer_limit", cx);
        let buffer_line = f.line_of("per_connection_buffer_limit");
        let max_requests = f.optional::<u32>("max_requests_per_connection", cx);
        let max_requests_line = f.line_of("max_requests_per_connection");
        let tls = f.optional::<crate::cluster_tls::UpstreamTlsConfig>("tls", cx);
        let tls_line = f.line_of("tls");
        let matches = f.or(
            "transport_socket_matches",
            Vec::<TransportSocketMatch>::new(),
            cx,
        );
        let matches_line = f.line_of("transport_socket_matches");
        let endpoints_line = f.line_of("endpoints");
        let endpoints = match (f.node("endpoints"), discovery) {
            (None, _) => Some(Vec::new()),
            (Some(list), Some(discovery)) => seq(list, &join(path, "endpoints"), cx, |n, p, cx| {
                decode_endpoint(n, p, discovery, cx)
            }),
            (Some(_), None) => None,
        };
        let path_of = |key| join(path, key);
        f.finish(cx);

        let overprovisioning = crate::decode::in_range(
            overprovisioning,
            100..=1000,
            overprovisioning_line,
            &path_of("overprovisioning_factor"),
            cx,
        );
        let panic = crate::decode::in_range(
            panic,
            0..=100,
            panic_line,
            &path_of("healthy_panic_threshold"),
            cx,
        );
        // Each check reports and leaves its value unusable; the cluster is refused at the end,
        // so every mistake in it is reported at once.
        let refresh = match refresh {
            Some(d) if d < Duration::from_millis(100) => {
                cx.error(
                    refresh_line,
                    &path_of("dns_refresh_rate"),
                    format!("must be at least 100ms, found {d:?}"),
                );
                None
            }
            refresh => refresh,
        };
        let buffer_limit = match buffer_limit.ok().map(|b| b.map(|b| b.0)) {
            Some(Some(b)) if !(16 * 1024..=1 << 30).contains(&b) => {
                cx.error(
                    buffer_line,
                    &path_of("per_connection_buffer_limit"),
                    format!("must be from 16KiB to 1GiB, found {b} bytes"),
                );
                None
            }
            limit => limit,
        };
        // The cluster-level `max_requests_per_connection` (Envoy's older spelling) is the
        // same setting as the one under `common_http_protocol_options`.
        let max_requests = match max_requests.ok() {
            Some(Some(0)) => {
                cx.error(
                    max_requests_line,
                    &path_of("max_requests_per_connection"),
                    "must be at least 1",
                );
                None
            }
            max => max,
        };
        let common = match (common, max_requests) {
            (Some(c), Some(Some(_))) if c.max_requests_per_connection.is_some() => {
                cx.error(
                    max_requests_line,
                    &path_of("max_requests_per_connection"),
                    "also set in common_http_protocol_options; set it in one place",
                );
                None
            }
            (Some(mut c), Some(max)) => {
                c.max_requests_per_connection = c.max_requests_per_connection.or(max);
                Some(c)
            }
            _ => None,
        };
        let endpoints = match (discovery, endpoints) {
            (Some(DiscoveryType::LogicalDns), Some(e)) if e.len() != 1 => {
                cx.error(
                    endpoints_line,
                    &path_of("endpoints"),
                    format!(
                        "a logical_dns cluster has exactly one endpoint, found {}",
                        e.len()
                    ),
                );
                None
            }
            (_, endpoints) => endpoints,
        };
        // A Unix socket has no name or address to verify a certificate against.
        let tls = match (tls, &endpoints) {
            (Ok(Some(t)), Some(e))
                if t.sni.is_none()
                    && e.iter().any(|e| {
                        matches!(e.address, EndpointAddress::Socket(Address::Unix(_)))
                    }) =>
            {
                cx.error(
                    tls_line,
                    &path_of("tls.sni"),
                    "needed with Unix socket endpoints (the name the server's certificate is verified against)",
                );
                Err(crate::decode::Reported)
            }
            (tls, _) => tls,
        };
        let matches = match matches {
            Some(m) if !m.is_empty() && matches!(&health_check, Ok(Some(_))) => {
                cx.error(
                    matches_line,
                    &path_of("transport_socket_matches"),
                    "cannot be used with health_check yet (health checks would not follow each endpoint's transport)",
                );
                None
            }
            Some(m) => {
                let mut names = std::collections::HashSet::new();
                match m.iter().find(|e| !names.insert(e.name.as_str())) {
                    Some(dup) => {
                        cx.error(
                            matches_line,
                            &path_of("transport_socket_matches"),
                            format!("the name \"{}\" is used twice", dup.name),
                        );
                        None
                    }
                    None => Some(m),
                }
            }
            None => None,
        };
        Some(ClusterConfig {
            name: name?,
            discovery: discovery?,
            dns_refresh_rate: refresh?,
            dns_lookup_family: family?,
            dns_resolvers: resolvers?.into_iter().map(|r| r.0).collect(),
            protocol: protocol?,
            http2_protocol_options: http2?,
            common_http_protocol_options: common?,
            connect_timeout: connect_timeout?,
            health_check: health_check.ok()?,
            lb_policy: lb_policy?,
            lb_config: lb_config?,
            subset: subset?,
            local_locality: local?,
            overprovisioning_factor: overprovisioning?,
            healthy_panic_threshold: panic?,
            outlier_detection: outlier.ok()?,
            circuit_breakers: breakers?,
            tcp_keepalive: keepalive?,
            per_connection_buffer_limit: buffer_limit?,
            tls: tls.ok()?.map(std::sync::Arc::new),
            transport_socket_matches: matches?,
            endpoints: endpoints?,
            line: node.line,
        })
    }
}

/// A name server address; port 53 when none is written.
struct Resolver(SocketAddr);

impl Decode for Resolver {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let text = String::decode(node, path, cx)?;
        let parsed = text.parse::<SocketAddr>().ok().or_else(|| {
            text.parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        });
        match parsed {
            Some(a) => Some(Resolver(a)),
            None => {
                cx.error(
                    node.line,
                    path,
                    format!("invalid name server \"{text}\": expected an IP address, with an optional :port"),
                );
                None
            }
        }
    }
}

fn decode_endpoint(
    node: &Node,
    path: &str,
    discovery: DiscoveryType,
    cx: &mut Cx,
) -> Option<EndpointConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let address_line = f.line_of("address");
    let address = f.required::<String>("address", cx);
    let weight = f.or("weight", 1u32, cx);
    let weight_line = f.line_of("weight");
    let metadata = match f.node("metadata") {
        None => Some(Vec::new()),
        Some(n) => string_map(n, &join(path, "metadata"), cx),
    };
    let region = f.or("region", String::new(), cx);
    let zone = f.or("zone", String::new(), cx);
    let sub_zone = f.or("sub_zone", String::new(), cx);
    let priority = f.or("priority", 0u32, cx);
    let priority_line = f.line_of("priority");
    let transport = match f.node("transport_socket_match") {
        None => Some(Vec::new()),
        Some(n) => string_map(n, &join(path, "transport_socket_match"), cx),
    };
    f.finish(cx);
    let weight = crate::decode::in_range(weight, 1..=128, weight_line, &join(path, "weight"), cx);
    let priority = crate::decode::in_range(
        priority,
        0..=127,
        priority_line,
        &join(path, "priority"),
        cx,
    );
    let address = endpoint_address(
        &address?,
        discovery,
        address_line,
        &join(path, "address"),
        cx,
    );
    Some(EndpointConfig {
        address: address?,
        weight: weight?,
        metadata: metadata?,
        region: region?,
        zone: zone?,
        sub_zone: sub_zone?,
        priority: priority?,
        transport_socket_match: transport?,
    })
}

impl Decode for TransportSocketMatch {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let name = f.required::<String>("name", cx);
        let labels = match f.node("match") {
            None => Some(Vec::new()),
            Some(n) => string_map(n, &join(path, "match"), cx),
        };
        let tls = f.optional::<crate::cluster_tls::UpstreamTlsConfig>("tls", cx);
        f.finish(cx);
        Some(TransportSocketMatch {
            name: name?,
            labels: labels?,
            tls: tls.ok()?.map(std::sync::Arc::new),
        })
    }
}

/// A socket address, or for DNS clusters also `name:port`.
fn endpoint_address(
    text: &str,
    discovery: DiscoveryType,
    line: usize,
    path: &str,
    cx: &mut Cx,
) -> Option<EndpointAddress> {
    let socket_error = match Address::parse(text) {
        Ok(Address::Unix(_)) if discovery.uses_dns() => {
            "a DNS cluster resolves names; a Unix socket needs a static cluster".to_string()
        }
        Ok(a) => return Some(EndpointAddress::Socket(a)),
        Err(e) => e,
    };
    if !discovery.uses_dns() || text.starts_with("unix:") {
        let hint = if discovery.uses_dns() || text.starts_with("unix:") {
            String::new()
        } else if name_and_port(text).is_some() {
            "; a host name needs `type: strict_dns` or `type: logical_dns`".to_string()
        } else {
            String::new()
        };
        cx.error(line, path, format!("{socket_error}{hint}"));
        return None;
    }
    match name_and_port(text) {
        Some((host, port)) => Some(EndpointAddress::Name {
            host: host.to_string(),
            port,
        }),
        None => {
            cx.error(
                line,
                path,
                format!(
                    "invalid endpoint \"{text}\": expected host:port, such as backend.local:8080"
                ),
            );
            None
        }
    }
}

/// A mapping of string keys to scalar values (`{ version: v2, stage: gray }`), in order.
pub fn string_map(node: &Node, path: &str, cx: &mut Cx) -> Option<Vec<(String, String)>> {
    let entries = match &node.kind {
        NodeKind::Map(entries) => entries,
        NodeKind::Null => return Some(Vec::new()),
        _ => {
            cx.error(
                node.line,
                path,
                format!(
                    "expected a mapping of keys to values, found {}",
                    node.type_name()
                ),
            );
            return None;
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (key, value) in entries {
        match String::decode(value, &join(path, key), cx) {
            Some(v) => out.push((key.clone(), v)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// The `*_lb_config` blocks; each only with its own policy.
fn decode_lb_config(f: &mut Fields<'_>, policy: Option<LbPolicy>, cx: &mut Cx) -> Option<LbConfig> {
    let mut config = LbConfig::default();
    let mut ok = true;
    let blocks: [(&'static str, LbPolicy); 4] = [
        ("least_request_lb_config", LbPolicy::LeastRequest),
        ("ring_hash_lb_config", LbPolicy::RingHash),
        ("maglev_lb_config", LbPolicy::Maglev),
        ("peak_ewma_lb_config", LbPolicy::PeakEwma),
    ];
    for (key, owner) in blocks {
        let Some(node) = f.node(key) else { continue };
        let path = join(f.path(), key);
        if policy.is_some_and(|p| p != owner) {
            cx.error(
                node.line,
                &path,
                format!(
                    "applies to lb_policy {}, but the cluster's lb_policy is {}",
                    LbPolicy::NAMES[owner as usize],
                    LbPolicy::NAMES[policy.map_or(0, |p| p as usize)]
                ),
            );
            ok = false;
            continue;
        }
        ok &= decode_lb_block(node, &path, owner, &mut config, cx).is_some();
    }
    ok.then_some(config)
}

fn decode_lb_block(
    node: &Node,
    path: &str,
    policy: LbPolicy,
    config: &mut LbConfig,
    cx: &mut Cx,
) -> Option<()> {
    let mut f = Fields::new(node, path, cx)?;
    let mut ok = true;
    match policy {
        LbPolicy::LeastRequest => {
            let n = f.or("choice_count", config.choice_count, cx);
            let line = f.line_of("choice_count");
            match crate::decode::in_range(n, 2..=100, line, &join(path, "choice_count"), cx) {
                Some(n) => config.choice_count = n,
                None => ok = false,
            }
        }
        LbPolicy::RingHash => {
            let min = f.or("minimum_ring_size", config.minimum_ring_size, cx);
            let max = f.or("maximum_ring_size", config.maximum_ring_size, cx);
            let line = f.line_of("minimum_ring_size");
            match (min, max) {
                (Some(min), Some(max)) if (1..=max).contains(&min) && max <= 8 << 20 => {
                    config.minimum_ring_size = min;
                    config.maximum_ring_size = max;
                }
                (Some(min), Some(max)) => {
                    cx.error(
                        line,
                        path,
                        format!("need 1 <= minimum_ring_size <= maximum_ring_size <= 8388608, found {min} and {max}"),
                    );
                    ok = false;
                }
                _ => ok = false,
            }
        }
        LbPolicy::Maglev => {
            let size = f.or("table_size", config.maglev_table_size, cx);
            let line = f.line_of("table_size");
            match size {
                Some(n) if is_prime(n) && n <= 5_000_011 => config.maglev_table_size = n,
                Some(n) => {
                    cx.error(
                        line,
                        &join(path, "table_size"),
                        format!("must be a prime number no larger than 5000011, found {n}"),
                    );
                    ok = false;
                }
                None => ok = false,
            }
        }
        LbPolicy::PeakEwma => {
            let decay = f.or("decay", config.peak_ewma_decay, cx);
            let rtt = f.or("default_rtt", config.peak_ewma_default_rtt, cx);
            let decay_line = f.line_of("decay");
            match (decay, rtt) {
                (Some(d), Some(r)) if d >= Duration::from_millis(1) => {
                    config.peak_ewma_decay = d;
                    config.peak_ewma_default_rtt = r;
                }
                (Some(d), Some(_)) => {
                    cx.error(
                        decay_line,
                        &join(path, "decay"),
                        format!("must be at least 1ms, found {d:?}"),
                    );
                    ok = false;
                }
                _ => ok = false,
            }
        }
        LbPolicy::RoundRobin | LbPolicy::Random => {}
    }
    ok &= f.finish(cx);
    ok.then_some(())
}

fn is_prime(n: u64) -> bool {
    n >= 2
        && (2..)
            .take_while(|d| d * d <= n)
            .all(|d| !n.is_multiple_of(d))
}

/// `subset_selectors`, `fallback_policy` and `default_subset`.
fn decode_subset(f: &mut Fields<'_>, cx: &mut Cx) -> Option<SubsetConfig> {
    let selectors = f.or("subset_selectors", Vec::<Vec<String>>::new(), cx);
    let selectors_path = join(f.path(), "subset_selectors");
    let selectors_line = f.line_of("subset_selectors");
    let fallback = f.or("fallback_policy", FallbackPolicy::AnyEndpoint, cx);
    let default_subset = match f.node("default_subset") {
        None => Some(Vec::new()),
        Some(n) => string_map(n, &join(f.path(), "default_subset"), cx),
    };
    let mut selectors = selectors?;
    for (i, keys) in selectors.iter_mut().enumerate() {
        let before = keys.len();
        keys.sort();
        keys.dedup();
        if keys.is_empty() || keys.len() != before {
            cx.error(
                selectors_line,
                &index(&selectors_path, i),
                "a subset selector is a non-empty list of distinct metadata keys",
            );
            return None;
        }
    }
    Some(SubsetConfig {
        selectors,
        fallback_policy: fallback?,
        default_subset: default_subset?,
    })
}

/// `local_region`, `local_zone`, `local_sub_zone`.
fn decode_local(f: &mut Fields<'_>, cx: &mut Cx) -> Option<Option<LocalLocality>> {
    let region = f.optional::<String>("local_region", cx).ok()?;
    let zone = f.optional::<String>("local_zone", cx).ok()?;
    let sub_zone = f.optional::<String>("local_sub_zone", cx).ok()?;
    if region.is_none() && zone.is_none() && sub_zone.is_none() {
        return Some(None);
    }
    Some(Some(LocalLocality {
        region,
        zone,
        sub_zone,
    }))
}

/// `upstream_connection_options: { tcp_keepalive: { ... } }`.
fn decode_connection_options(f: &mut Fields<'_>, cx: &mut Cx) -> Option<Option<TcpKeepalive>> {
    let Some(node) = f.node("upstream_connection_options") else {
        return Some(None);
    };
    let path = join(f.path(), "upstream_connection_options");
    let mut o = Fields::new(node, &path, cx)?;
    let keepalive = o.optional::<TcpKeepalive>("tcp_keepalive", cx);
    o.finish(cx);
    keepalive.ok()
}

impl Decode for TcpKeepalive {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let d = TcpKeepalive::default();
        let mut f = Fields::new(node, path, cx)?;
        let time = f.or("keepalive_time", d.keepalive_time, cx);
        let interval = f.or("keepalive_interval", d.keepalive_interval, cx);
        let probes = f.or("keepalive_probes", d.keepalive_probes, cx);
        let probes_line = f.line_of("keepalive_probes");
        let time_line = f.line_of("keepalive_time");
        f.finish(cx);
        let probes = crate::decode::in_range(
            probes,
            1..=127,
            probes_line,
            &join(path, "keepalive_probes"),
            cx,
        );
        let (time, interval) = (time?, interval?);
        if time < Duration::from_secs(1) || interval < Duration::from_secs(1) {
            cx.error(
                time_line,
                path,
                "keepalive_time and keepalive_interval must be at least 1s (the kernel counts whole seconds)",
            );
            return None;
        }
        Some(TcpKeepalive {
            keepalive_time: time,
            keepalive_interval: interval,
            keepalive_probes: probes?,
        })
    }
}

impl Decode for OutlierDetection {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let d = OutlierDetection::default();
        let mut f = Fields::new(node, path, cx)?;
        let c5xx = f.or("consecutive_5xx", d.consecutive_5xx, cx);
        let cgw = f.or(
            "consecutive_gateway_failure",
            d.consecutive_gateway_failure,
            cx,
        );
        let interval = f.or("interval", d.interval, cx);
        let interval_line = f.line_of("interval");
        let base = f.or("base_ejection_time", d.base_ejection_time, cx);
        let base_line = f.line_of("base_ejection_time");
        let max_time = f.or("max_ejection_time", d.max_ejection_time, cx);
        let max_time_line = f.line_of("max_ejection_time");
        let percent = f.or("max_ejection_percent", d.max_ejection_percent, cx);
        let percent_line = f.line_of("max_ejection_percent");
        let sr_hosts = f.or(
            "success_rate_minimum_hosts",
            d.success_rate_minimum_hosts,
            cx,
        );
        let sr_volume = f.or(
            "success_rate_request_volume",
            d.success_rate_request_volume,
            cx,
        );
        let sr_volume_line = f.line_of("success_rate_request_volume");
        let sr_factor = f.or("success_rate_stdev_factor", d.success_rate_stdev_factor, cx);
        f.finish(cx);
        let percent = crate::decode::in_range(
            percent,
            0..=100,
            percent_line,
            &join(path, "max_ejection_percent"),
            cx,
        );
        let sr_volume = crate::decode::in_range(
            sr_volume,
            1..=u32::MAX,
            sr_volume_line,
            &join(path, "success_rate_request_volume"),
            cx,
        );
        let (interval, base, max_time) = (interval?, base?, max_time?);
        let mut ok = crate::decode::durations_at_least(
            path,
            Duration::from_millis(10),
            &[
                (interval, interval_line, "interval"),
                (base, base_line, "base_ejection_time"),
            ],
            cx,
        );
        if max_time < base {
            cx.error(
                max_time_line,
                &join(path, "max_ejection_time"),
                format!("must be at least base_ejection_time ({base:?}), found {max_time:?}"),
            );
            ok = false;
        }
        let detection = OutlierDetection {
            consecutive_5xx: c5xx?,
            consecutive_gateway_failure: cgw?,
            interval,
            base_ejection_time: base,
            max_ejection_time: max_time,
            max_ejection_percent: percent?,
            success_rate_minimum_hosts: sr_hosts?,
            success_rate_request_volume: sr_volume?,
            success_rate_stdev_factor: sr_factor?,
        };
        ok.then_some(detection)
    }
}

impl Decode for CircuitBreakers {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let d = CircuitBreakers::default();
        let mut f = Fields::new(node, path, cx)?;
        let cx_max = f.or("max_connections", d.max_connections, cx);
        let pending = f.or("max_pending_requests", d.max_pending_requests, cx);
        let requests = f.or("max_requests", d.max_requests, cx);
        let retries = f.or("max_retries", d.max_retries, cx);
        let budget = f.optional::<RetryBudget>("retry_budget", cx);
        let high = f.or("high_priority", HighPriorityThresholds::default(), cx);
        f.finish(cx);
        Some(CircuitBreakers {
            max_connections: cx_max?,
            max_pending_requests: pending?,
            max_requests: requests?,
            max_retries: retries?,
            retry_budget: budget.ok()?,
            high_priority: high?,
        })
    }
}

impl Decode for HighPriorityThresholds {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let d = HighPriorityThresholds::default();
        let mut f = Fields::new(node, path, cx)?;
        let requests = f.or("max_requests", d.max_requests, cx);
        let retries = f.or("max_retries", d.max_retries, cx);
        let budget = f.optional::<RetryBudget>("retry_budget", cx);
        f.finish(cx);
        Some(HighPriorityThresholds {
            max_requests: requests?,
            max_retries: retries?,
            retry_budget: budget.ok()?,
        })
    }
}

impl Decode for RetryBudget {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let percent = f.or("budget_percent", 20u32, cx);
        let percent_line = f.line_of("budget_percent");
        let min = f.or("min_retry_concurrency", 3u32, cx);
        f.finish(cx);
        let percent = crate::decode::in_range(
            percent,
            0..=100,
            percent_line,
            &join(path, "budget_percent"),
            cx,
        )?;
        Some(RetryBudget {
            budget_percent: f64::from(percent),
            min_retry_concurrency: min?,
        })
    }
}

impl Decode for DiscoveryType {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "cluster type",
            &DiscoveryType::NAMES,
            DiscoveryType::from_name,
        )
    }
}

impl Decode for DnsLookupFamily {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "dns_lookup_family",
            &DnsLookupFamily::NAMES,
            DnsLookupFamily::from_name,
        )
    }
}

impl Decode for LbPolicy {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "lb_policy",
            &LbPolicy::NAMES,
            LbPolicy::from_name,
        )
    }
}

impl Decode for FallbackPolicy {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "fallback_policy",
            &FallbackPolicy::NAMES,
            FallbackPolicy::from_name,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ports() {
        assert_eq!(
            name_and_port("backend.local:80"),
            Some(("backend.local", 80))
        );
        assert_eq!(name_and_port("a_b-c:1"), Some(("a_b-c", 1)));
        assert_eq!(name_and_port("backend.local"), None);
        assert_eq!(name_and_port("-bad:80"), None);
        assert_eq!(name_and_port("a..b:80"), None);
        assert_eq!(name_and_port("a:0"), None);
        assert_eq!(name_and_port("a b:80"), None);
    }

    fn errors(yaml: &str) -> String {
        let node = crate::yaml::parse(yaml).unwrap_or_else(|e| panic!("{e:?}"));
        let mut cx = Cx::default();
        let got = ClusterConfig::decode(&node, "clusters[0]", &mut cx);
        assert!(got.is_none() || cx.has_errors());
        cx.diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn transport_socket_matches_are_checked() {
        let node = crate::yaml::parse(
            "name: c\ntransport_socket_matches: [{ name: a, match: { tlsMode: istio }, tls: { insecure_skip_verify: true } }, { name: b }]\nendpoints: [{ address: \"127.0.0.1:1\", transport_socket_match: { tlsMode: istio } }]\n",
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let mut cx = Cx::default();
        let c = ClusterConfig::decode(&node, "c", &mut cx)
            .unwrap_or_else(|| panic!("{:?}", cx.diagnostics));
        assert_eq!(c.transport_socket_matches.len(), 2);
        assert!(c.transport_socket_matches[1].tls.is_none());
        assert_eq!(c.endpoints[0].transport_socket_match.len(), 1);
        let e = errors("name: c\ntransport_socket_matches: [{ name: a }, { name: a }]\n");
        assert!(
            e.contains("clusters[0].transport_socket_matches: the name \"a\" is used twice"),
            "{e}"
        );
        let e = errors("name: c\nhealth_check: { timeout: 1s, interval: 5s, tcp: {} }\ntransport_socket_matches: [{ name: a }]\n");
        assert!(e.contains("cannot be used with health_check yet"), "{e}");
    }

    #[test]
    fn primes() {
        assert!(is_prime(65_537));
        assert!(is_prime(5_000_011));
        assert!(!is_prime(65_536));
        assert!(!is_prime(1));
    }
}
