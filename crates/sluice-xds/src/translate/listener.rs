//! Envoy's `Listener` as a native `listeners[]` entry.
//!
//! Every filter chain becomes a native `filter_chains[]` entry; the network filters map by
//! their `typed_config` type: the HTTP connection manager to `http_proxy`, the TCP proxy to
//! `tcp_proxy`. Access logs of the listener, its connection managers and TCP proxies all go
//! to the listener's native `access_log`.

use envoy_types::pb::envoy::config::listener::v3::{
    filter, listener_filter, Filter, FilterChain, FilterChainMatch, Listener as EnvoyListener,
};
use envoy_types::pb::envoy::config::core::v3::{transport_socket, CidrRange};
use envoy_types::pb::envoy::extensions::filters::http::router::v3::Router;
use envoy_types::pb::envoy::extensions::filters::listener::tls_inspector::v3::TlsInspector;
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::{
    CodecType, ForwardClientCertDetails, RouteSpecifier,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
    http_filter, HttpConnectionManager,
};
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::ClusterSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use envoy_types::pb::envoy::r#type::v3::hash_policy::PolicySpecifier;
use prost::Name;
use sluice_config::yaml::Node;

use super::tree::{
    boolean, ignored, index, join, list, number, opt_duration, single, text, texts, unpack,
    unsupported, Map,
};
use super::{access_log, address, route, tls, Error, Result};

/// A translated listener.
#[derive(Debug)]
pub struct Listener {
    /// The native `listeners[]` entry.
    pub node: Node,
    /// The route configurations its HTTP connection managers take over RDS, in order: the
    /// listener is complete once they have arrived.
    pub rds: Vec<String>,
}

const RAW_BUFFER: &str = "envoy.transport_sockets.raw_buffer";

pub fn listener(l: &EnvoyListener) -> Result<Listener> {
    if l.name.is_empty() {
        return Err(Error::new("name", "is required"));
    }
    let mut m = Map::new();
    m.set("name", text(&l.name));
    m.set(
        "address",
        address::address(l.address.as_ref(), "address", false)?,
    );
    unsupported(!l.additional_addresses.is_empty(), "additional_addresses")?;
    unsupported(
        l.use_original_dst.is_some_and(|b| b.value),
        "use_original_dst",
    )?;
    unsupported(l.default_filter_chain.is_some(), "default_filter_chain")?;
    unsupported(l.filter_chain_matcher.is_some(), "filter_chain_matcher")?;
    unsupported(l.fcds_config.is_some(), "fcds_config")?;
    unsupported(l.transparent.is_some_and(|b| b.value), "transparent")?;
    unsupported(l.freebind.is_some_and(|b| b.value), "freebind")?;
    unsupported(l.bind_to_port.is_some_and(|b| !b.value), "bind_to_port")?;
    unsupported(l.api_listener.is_some(), "api_listener")?;
    unsupported(l.udp_listener_config.is_some(), "udp_listener_config")?;
    unsupported(l.enable_mptcp, "enable_mptcp")?;
    unsupported(l.listener_specifier.is_some(), "internal_listener")?;
    ignored(!l.stat_prefix.is_empty(), "", "stat_prefix");
    ignored(l.stats_matcher.is_some(), "", "stats_matcher");
    ignored(l.metadata.is_some(), "", "metadata");
    ignored(l.drain_type != 0, "", "drain_type");
    ignored(l.traffic_direction != 0, "", "traffic_direction");
    ignored(!l.socket_options.is_empty(), "", "socket_options");
    ignored(
        l.tcp_fast_open_queue_length.is_some(),
        "",
        "tcp_fast_open_queue_length",
    );
    ignored(
        l.per_connection_buffer_limit_bytes.is_some(),
        "",
        "per_connection_buffer_limit_bytes",
    );
    ignored(
        l.connection_balance_config.is_some(),
        "",
        "connection_balance_config",
    );
    ignored(
        l.max_connections_to_accept_per_socket_event.is_some(),
        "",
        "max_connections_to_accept_per_socket_event",
    );
    ignored(l.tcp_keepalive.is_some(), "", "tcp_keepalive");
    ignored(l.ignore_global_conn_limit, "", "ignore_global_conn_limit");
    ignored(l.bypass_overload_manager, "", "bypass_overload_manager");
    #[allow(deprecated)]
    let reuse_port = l
        .enable_reuse_port
        .map(|b| b.value)
        .or(l.reuse_port.then_some(true));
    if let Some(reuse) = reuse_port {
        m.set("reuse_port", boolean(reuse));
    }
    if let Some(backlog) = l.tcp_backlog_size {
        m.set("backlog", number(backlog.value));
    }

    let mut inspector = false;
    for (i, f) in l.listener_filters.iter().enumerate() {
        let path = index("listener_filters", i);
        unsupported(f.filter_disabled.is_some(), &join(&path, "filter_disabled"))?;
        match &f.config_type {
            Some(listener_filter::ConfigType::TypedConfig(any))
                if any.type_url == TlsInspector::type_url() =>
            {
                inspector = true;
            }
            Some(listener_filter::ConfigType::TypedConfig(any)) => {
                return Err(Error::new(
                    join(&path, "typed_config"),
                    format!(
                        "listener filter {} is not supported by Sluice (tls_inspector is)",
                        any.type_url
                    ),
                ))
            }
            _ => return Err(Error::new(join(&path, "typed_config"), "is required")),
        }
    }
    if inspector {
        m.set("listener_filters", list(vec![text("tls_inspector")]));
    }
    if let Some(t) = opt_duration(
        l.listener_filters_timeout.as_ref(),
        "listener_filters_timeout",
    )? {
        if inspector {
            m.set("listener_filters_timeout", t);
        }
    }
    if l.continue_on_listener_filters_timeout && inspector {
        m.set("continue_on_listener_filters_timeout", boolean(true));
    }

    let mut logs = Vec::new();
    access_log::sinks(&l.access_log, "access_log", &mut logs)?;
    let mut rds = Vec::new();
    if l.filter_chains.is_empty() {
        return Err(Error::new("filter_chains", "needs at least one chain"));
    }
    let mut chains = Vec::with_capacity(l.filter_chains.len());
    for (i, chain) in l.filter_chains.iter().enumerate() {
        let path = index("filter_chains", i);
        chains.push(filter_chain(chain, &path, &mut logs, &mut rds)?);
    }
    if !logs.is_empty() {
        m.set("access_log", list(logs));
    }
    m.set("filter_chains", list(chains));
    Ok(Listener {
        node: m.build(),
        rds,
    })
}

fn filter_chain(
    chain: &FilterChain,
    path: &str,
    logs: &mut Vec<Node>,
    rds: &mut Vec<String>,
) -> Result<Node> {
    let mut m = Map::new();
    if let Some(fcm) = &chain.filter_chain_match {
        let matcher = chain_match(fcm, &join(path, "filter_chain_match"))?;
        if !matcher.is_empty() {
            m.set("match", matcher.build());
        }
    }
    #[allow(deprecated)]
    let proxy_protocol = chain.use_proxy_proto.is_some_and(|b| b.value);
    unsupported(proxy_protocol, &join(path, "use_proxy_proto"))?;
    ignored(chain.metadata.is_some(), path, "metadata");
    ignored(!chain.name.is_empty(), path, "name");
    let handshake = opt_duration(
        chain.transport_socket_connect_timeout.as_ref(),
        &join(path, "transport_socket_connect_timeout"),
    )?;
    if let Some(ts) = &chain.transport_socket {
        let tpath = join(path, "transport_socket");
        match &ts.config_type {
            Some(transport_socket::ConfigType::TypedConfig(any))
                if any.type_url == DownstreamTlsContext::type_url() =>
            {
                let ctx: DownstreamTlsContext =
                    unpack(any, &DownstreamTlsContext::type_url(), &join(&tpath, "typed_config"))?;
                m.set(
                    "tls",
                    tls::downstream(&ctx, &join(&tpath, "typed_config"), handshake)?,
                );
            }
            None if ts.name == RAW_BUFFER || ts.name.is_empty() => {}
            Some(transport_socket::ConfigType::TypedConfig(any))
                if any.type_url.ends_with(".RawBuffer") => {}
            Some(transport_socket::ConfigType::TypedConfig(any)) => {
                return Err(Error::new(
                    join(&tpath, "typed_config"),
                    format!(
                        "transport socket {} is not supported by Sluice (DownstreamTlsContext and raw_buffer are)",
                        any.type_url
                    ),
                ))
            }
            None => {
                return Err(Error::new(
                    join(&tpath, "name"),
                    format!("transport socket \"{}\" without typed_config is not supported", ts.name),
                ))
            }
        }
    }
    if chain.filters.is_empty() {
        return Err(Error::new(
            join(path, "filters"),
            "needs at least one filter",
        ));
    }
    let mut filters = Vec::with_capacity(chain.filters.len());
    for (i, f) in chain.filters.iter().enumerate() {
        filters.push(network_filter(
            f,
            &index(&join(path, "filters"), i),
            logs,
            rds,
        )?);
    }
    m.set("filters", list(filters));
    Ok(m.build())
}

fn chain_match(fcm: &FilterChainMatch, path: &str) -> Result<Map> {
    let mut m = Map::new();
    if let Some(port) = fcm.destination_port {
        m.set("destination_port", number(port.value));
    }
    if !fcm.prefix_ranges.is_empty() {
        m.set(
            "prefix_ranges",
            cidrs(&fcm.prefix_ranges, &join(path, "prefix_ranges"))?,
        );
    }
    unsupported(
        !fcm.address_suffix.is_empty(),
        &join(path, "address_suffix"),
    )?;
    unsupported(fcm.suffix_len.is_some(), &join(path, "suffix_len"))?;
    unsupported(
        !fcm.direct_source_prefix_ranges.is_empty(),
        &join(path, "direct_source_prefix_ranges"),
    )?;
    unsupported(fcm.source_type != 0, &join(path, "source_type"))?;
    if !fcm.source_prefix_ranges.is_empty() {
        m.set(
            "source_prefix_ranges",
            cidrs(
                &fcm.source_prefix_ranges,
                &join(path, "source_prefix_ranges"),
            )?,
        );
    }
    if !fcm.source_ports.is_empty() {
        m.set(
            "source_ports",
            list(fcm.source_ports.iter().map(|p| number(*p)).collect()),
        );
    }
    if !fcm.server_names.is_empty() {
        m.set("server_names", texts(&fcm.server_names));
    }
    if !fcm.transport_protocol.is_empty() {
        m.set("transport_protocol", text(&fcm.transport_protocol));
    }
    if !fcm.application_protocols.is_empty() {
        m.set("application_protocols", texts(&fcm.application_protocols));
    }
    Ok(m)
}

fn cidrs(ranges: &[CidrRange], path: &str) -> Result<Node> {
    let mut out = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        let len = match r.prefix_len {
            Some(l) => l.value,
            None => match r.address_prefix.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(_)) => 128,
                _ => 32,
            },
        };
        if r.address_prefix.is_empty() {
            return Err(Error::new(
                join(&index(path, i), "address_prefix"),
                "is required",
            ));
        }
        out.push(text(&format!("{}/{len}", r.address_prefix)));
    }
    Ok(list(out))
}

fn network_filter(
    f: &Filter,
    path: &str,
    logs: &mut Vec<Node>,
    rds: &mut Vec<String>,
) -> Result<Node> {
    let tpath = join(path, "typed_config");
    let any = match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any)) => any,
        Some(filter::ConfigType::ConfigDiscovery(_)) => {
            return Err(Error::new(
                join(path, "config_discovery"),
                "is not supported by Sluice",
            ))
        }
        None => return Err(Error::new(tpath, "is required")),
    };
    if any.type_url == HttpConnectionManager::type_url() {
        let hcm: HttpConnectionManager = unpack(any, &HttpConnectionManager::type_url(), &tpath)?;
        Ok(single(
            "http_proxy",
            http_connection_manager(&hcm, &tpath, logs, rds)?,
        ))
    } else if any.type_url == TcpProxy::type_url() {
        let tcp: TcpProxy = unpack(any, &TcpProxy::type_url(), &tpath)?;
        Ok(single("tcp_proxy", tcp_proxy(&tcp, &tpath, logs)?))
    } else {
        Err(Error::new(
            tpath,
            format!(
                "network filter {} is not supported by Sluice (HttpConnectionManager and TcpProxy are)",
                any.type_url
            ),
        ))
    }
}

/// A stat prefix as the native side takes it: Envoy's may hold dots (Istio's
/// `outbound_0.0.0.0_80`); the native one names one level of the stats tree.
fn stat_prefix(prefix: &str) -> Option<Node> {
    (!prefix.is_empty()).then(|| text(&prefix.replace('.', "_")))
}

fn http_connection_manager(
    hcm: &HttpConnectionManager,
    path: &str,
    logs: &mut Vec<Node>,
    rds: &mut Vec<String>,
) -> Result<Node> {
    let mut m = Map::new();
    match CodecType::try_from(hcm.codec_type) {
        Ok(CodecType::Auto) => {}
        Ok(CodecType::Http1) => {
            m.set("codec", text("http1"));
        }
        Ok(CodecType::Http2) => {
            m.set("codec", text("http2"));
        }
        _ => {
            return Err(Error::new(
                join(path, "codec_type"),
                "only AUTO, HTTP1 and HTTP2 are supported by Sluice",
            ))
        }
    }
    m.opt("stat_prefix", stat_prefix(&hcm.stat_prefix));
    match &hcm.route_specifier {
        Some(RouteSpecifier::Rds(r)) => {
            if r.route_config_name.is_empty() {
                return Err(Error::new(
                    join(path, "rds.route_config_name"),
                    "is required",
                ));
            }
            // The config source is not read: every resource comes from the one xDS server.
            m.set("route_config", text(&r.route_config_name));
            rds.push(r.route_config_name.clone());
        }
        Some(RouteSpecifier::RouteConfig(rc)) => {
            let node = route::route_configuration(rc, false)
                .map_err(|e| e.under(&join(path, "route_config")))?;
            m.set("route_config", node);
        }
        Some(RouteSpecifier::ScopedRoutes(_)) => {
            return Err(Error::new(
                join(path, "scoped_routes"),
                "is not supported by Sluice",
            ))
        }
        None => {
            return Err(Error::new(
                join(path, "rds"),
                "rds or route_config is required",
            ))
        }
    }
    if let Some(kb) = hcm.max_request_headers_kb {
        m.set("max_request_headers_kb", number(kb.value));
    }
    if let Some(o) = &hcm.common_http_protocol_options {
        let opath = join(path, "common_http_protocol_options");
        if let Some(n) = o.max_headers_count {
            m.set("max_headers_count", number(n.value));
        }
        unsupported(
            o.max_connection_duration.is_some(),
            &join(&opath, "max_connection_duration"),
        )?;
        unsupported(
            o.max_stream_duration.is_some(),
            &join(&opath, "max_stream_duration"),
        )?;
        unsupported(
            o.headers_with_underscores_action != 0,
            &join(&opath, "headers_with_underscores_action"),
        )?;
        ignored(o.idle_timeout.is_some(), &opath, "idle_timeout");
        ignored(
            o.max_response_headers_kb.is_some(),
            &opath,
            "max_response_headers_kb",
        );
        ignored(
            o.max_requests_per_connection.is_some(),
            &opath,
            "max_requests_per_connection",
        );
    }
    // Envoy waits for a request's headers without limit unless told; so does the translation.
    let headers_timeout = opt_duration(
        hcm.request_headers_timeout.as_ref(),
        &join(path, "request_headers_timeout"),
    )?;
    m.set(
        "request_headers_timeout",
        headers_timeout.unwrap_or_else(|| number(0)),
    );
    unsupported(
        hcm.request_timeout
            .is_some_and(|d| d.seconds != 0 || d.nanos != 0),
        &join(path, "request_timeout"),
    )?;
    if !hcm.via.is_empty() {
        m.set("via", text(&hcm.via));
    }
    let fcc = match ForwardClientCertDetails::try_from(hcm.forward_client_cert_details) {
        Ok(ForwardClientCertDetails::Sanitize) => None,
        Ok(ForwardClientCertDetails::ForwardOnly) => Some("forward_only"),
        Ok(ForwardClientCertDetails::AppendForward) => Some("append_forward"),
        Ok(ForwardClientCertDetails::SanitizeSet) => Some("sanitize_set"),
        Ok(ForwardClientCertDetails::AlwaysForwardOnly) => Some("always_forward_only"),
        Err(_) => {
            return Err(Error::new(
                join(path, "forward_client_cert_details"),
                "unknown value",
            ))
        }
    };
    if let Some(mode) = fcc {
        m.set("forward_client_cert_details", text(mode));
    }
    if let Some(d) = &hcm.set_current_client_cert_details {
        let dpath = join(path, "set_current_client_cert_details");
        unsupported(d.issuer, &join(&dpath, "issuer"))?;
        let mut details = Map::new();
        details.set("subject", boolean(d.subject.is_some_and(|b| b.value)));
        details.set("cert", boolean(d.cert));
        details.set("chain", boolean(d.chain));
        details.set("dns", boolean(d.dns));
        details.set("uri", boolean(d.uri));
        m.set("set_current_client_cert_details", details.build());
    }
    unsupported(
        hcm.forward_client_cert_matcher.is_some(),
        &join(path, "forward_client_cert_matcher"),
    )?;
    unsupported(hcm.skip_xff_append, &join(path, "skip_xff_append"))?;
    unsupported(
        hcm.generate_request_id.is_some_and(|b| !b.value),
        &join(path, "generate_request_id"),
    )?;
    unsupported(
        hcm.local_reply_config.is_some(),
        &join(path, "local_reply_config"),
    )?;
    unsupported(
        hcm.request_id_extension.is_some(),
        &join(path, "request_id_extension"),
    )?;
    unsupported(
        !hcm.original_ip_detection_extensions.is_empty(),
        &join(path, "original_ip_detection_extensions"),
    )?;
    unsupported(
        !hcm.early_header_mutation_extensions.is_empty(),
        &join(path, "early_header_mutation_extensions"),
    )?;
    unsupported(
        hcm.http3_protocol_options.is_some(),
        &join(path, "http3_protocol_options"),
    )?;
    for (what, set) in [
        ("tracing", hcm.tracing.is_some()),
        ("use_remote_address", hcm.use_remote_address.is_some()),
        ("xff_num_trusted_hops", hcm.xff_num_trusted_hops != 0),
        (
            "internal_address_config",
            hcm.internal_address_config.is_some(),
        ),
        ("server_name", !hcm.server_name.is_empty()),
        (
            "server_header_transformation",
            hcm.server_header_transformation != 0,
        ),
        (
            "scheme_header_transformation",
            hcm.scheme_header_transformation.is_some(),
        ),
        ("add_user_agent", hcm.add_user_agent.is_some()),
        ("stream_idle_timeout", hcm.stream_idle_timeout.is_some()),
        ("drain_timeout", hcm.drain_timeout.is_some()),
        ("delayed_close_timeout", hcm.delayed_close_timeout.is_some()),
        ("http_protocol_options", hcm.http_protocol_options.is_some()),
        (
            "http2_protocol_options",
            hcm.http2_protocol_options.is_some(),
        ),
        ("upgrade_configs", !hcm.upgrade_configs.is_empty()),
        ("normalize_path", hcm.normalize_path.is_some()),
        ("merge_slashes", hcm.merge_slashes),
        (
            "path_with_escaped_slashes_action",
            hcm.path_with_escaped_slashes_action != 0,
        ),
        (
            "preserve_external_request_id",
            hcm.preserve_external_request_id,
        ),
        (
            "always_set_request_id_in_response",
            hcm.always_set_request_id_in_response,
        ),
        ("proxy_100_continue", hcm.proxy_100_continue),
        ("strip_matching_host_port", hcm.strip_matching_host_port),
        ("strip_trailing_host_dot", hcm.strip_trailing_host_dot),
        ("access_log_options", hcm.access_log_options.is_some()),
        (
            "stream_error_on_invalid_http_message",
            hcm.stream_error_on_invalid_http_message.is_some(),
        ),
    ] {
        ignored(set, path, what);
    }
    access_log::sinks(&hcm.access_log, &join(path, "access_log"), logs)?;

    let mut filters = Vec::new();
    let mut router = false;
    for (i, f) in hcm.http_filters.iter().enumerate() {
        let fpath = index(&join(path, "http_filters"), i);
        if router {
            return Err(Error::new(fpath, "no HTTP filter may follow the router"));
        }
        let any = match &f.config_type {
            Some(http_filter::ConfigType::TypedConfig(any)) => any,
            Some(http_filter::ConfigType::ConfigDiscovery(_)) => {
                return Err(Error::new(
                    join(&fpath, "config_discovery"),
                    "is not supported by Sluice",
                ))
            }
            None => return Err(Error::new(join(&fpath, "typed_config"), "is required")),
        };
        if any.type_url == Router::type_url() {
            router = true;
            continue;
        }
        if f.disabled || f.is_optional {
            // A disabled filter runs only where a route enables it, which Sluice does not
            // do; an optional one may be skipped when unknown, as Envoy does.
            tracing::debug!(filter = %f.name, r#type = %any.type_url, "xDS: HTTP filter skipped (disabled or optional)");
            continue;
        }
        if let Some(node) = http_filter(any, &join(&fpath, "typed_config"))? {
            filters.push(node);
        }
    }
    if !router {
        return Err(Error::new(
            join(path, "http_filters"),
            "the last HTTP filter must be the router (envoy.extensions.filters.http.router.v3.Router)",
        ));
    }
    if !filters.is_empty() {
        m.set("http_filters", list(filters));
    }
    Ok(m.build())
}

#[allow(deprecated)]
fn tcp_proxy(t: &TcpProxy, path: &str, logs: &mut Vec<Node>) -> Result<Node> {
    let mut m = Map::new();
    match &t.cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) if !c.is_empty() => {
            m.set("cluster", text(c));
        }
        Some(ClusterSpecifier::WeightedClusters(_)) => {
            return Err(Error::new(
                join(path, "weighted_clusters"),
                "is not supported by Sluice",
            ))
        }
        _ => return Err(Error::new(join(path, "cluster"), "is required")),
    }
    m.opt("stat_prefix", stat_prefix(&t.stat_prefix));
    if let Some(idle) = opt_duration(t.idle_timeout.as_ref(), &join(path, "idle_timeout"))? {
        m.set("idle_timeout", idle);
    }
    if let Some(n) = t.max_connect_attempts {
        m.set("max_connect_attempts", number(n.value));
    }
    let mut hashes = Vec::new();
    for (i, h) in t.hash_policy.iter().enumerate() {
        match &h.policy_specifier {
            Some(PolicySpecifier::SourceIp(_)) => hashes.push(single("source_ip", boolean(true))),
            _ => {
                return Err(Error::new(
                    index(&join(path, "hash_policy"), i),
                    "only source_ip is supported by Sluice",
                ))
            }
        }
    }
    if !hashes.is_empty() {
        m.set("hash_policy", list(hashes));
    }
    unsupported(t.on_demand.is_some(), &join(path, "on_demand"))?;
    unsupported(t.metadata_match.is_some(), &join(path, "metadata_match"))?;
    unsupported(
        t.tunneling_config.is_some(),
        &join(path, "tunneling_config"),
    )?;
    unsupported(
        t.max_downstream_connection_duration.is_some(),
        &join(path, "max_downstream_connection_duration"),
    )?;
    unsupported(
        t.downstream_idle_timeout.is_some(),
        &join(path, "downstream_idle_timeout"),
    )?;
    unsupported(
        t.upstream_idle_timeout.is_some(),
        &join(path, "upstream_idle_timeout"),
    )?;
    unsupported(
        !t.proxy_protocol_tlvs.is_empty(),
        &join(path, "proxy_protocol_tlvs"),
    )?;
    unsupported(
        t.upstream_connect_mode != 0,
        &join(path, "upstream_connect_mode"),
    )?;
    ignored(t.backoff_options.is_some(), path, "backoff_options");
    ignored(
        t.access_log_flush_interval.is_some(),
        path,
        "access_log_flush_interval",
    );
    ignored(t.access_log_options.is_some(), path, "access_log_options");
    access_log::sinks(&t.access_log, &join(path, "access_log"), logs)?;
    Ok(m.build())
}

/// A native `http_filters` entry for an Envoy HTTP filter other than the router: the
/// health check filter; anything else is refused.
fn http_filter(any: &envoy_types::pb::google::protobuf::Any, path: &str) -> Result<Option<Node>> {
    use envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck;
    if any.type_url == HealthCheck::type_url() {
        let h: HealthCheck = unpack(any, &HealthCheck::type_url(), path)?;
        unsupported(h.cache_time.is_some(), &join(path, "cache_time"))?;
        unsupported(
            !h.cluster_min_healthy_percentages.is_empty(),
            &join(path, "cluster_min_healthy_percentages"),
        )?;
        let mut headers = Vec::new();
        for (i, m) in h.headers.iter().enumerate() {
            headers.extend(route::header_matcher(m, &index(&join(path, "headers"), i))?);
        }
        let mut m = Map::new();
        m.set(
            "pass_through_mode",
            boolean(h.pass_through_mode.is_some_and(|b| b.value)),
        );
        m.set("headers", list(headers));
        return Ok(Some(single("health_check", m.build())));
    }
    Err(Error::new(
        path,
        format!(
            "HTTP filter {} is not supported by Sluice (router and health_check are; mark others is_optional to have them skipped)",
            any.type_url
        ),
    ))
}
