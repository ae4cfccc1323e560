//! Envoy's `Listener` as a native `listeners[]` entry.
//!
//! Every filter chain becomes a native `filter_chains[]` entry; the network filters map by
//! their `typed_config` type: the HTTP connection manager to `http_proxy`, the TCP proxy to
//! `tcp_proxy`, RBAC to `rbac` (as RBAC HTTP filters are, see [`super::rbac`]). Access logs
//! of the listener, its connection managers and TCP proxies all go to the listener's native
//! `access_log`.

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
use envoy_types::pb::envoy::extensions::filters::network::rbac::v3::Rbac as NetworkRbac;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::ClusterSpecifier;
use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::TcpProxy;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::DownstreamTlsContext;
use envoy_types::pb::envoy::r#type::v3::hash_policy::PolicySpecifier;
use prost::Name;
use sluice_config::yaml::Node;

use super::tree::{
    boolean, duration, ignored, index, join, list, number, opt_duration, single, text, texts,
    unpack, unsupported, Map,
};
use super::{access_log, address, rbac, route, tls, Error, Result};

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
const ROUTER_NAME: &str = "envoy.filters.http.router";

pub fn listener(l: &EnvoyListener) -> Result<Listener> {
    if l.name.is_empty() {
        return Err(Error::new("name", "is required"));
    }
    let mut m = Map::new();
    m.set("name", text(&l.name));
    m.set(
        "address",
        text(&address::address(
            l.address.as_ref(),
            "address",
            address::Role::Listener,
        )?),
    );
    m.opt(
        "socket_mode",
        address::socket_mode(l.address.as_ref(), "address")?,
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
    match &l.listener_filters_timeout {
        _ if !inspector => {}
        // Envoy's default, where the native one is the longest handshake timeout.
        None => {
            m.set("listener_filters_timeout", number("15s"));
        }
        // Zero is no limit in Envoy; natively it would close every connection at once, so
        // the native default (the longest handshake timeout) bounds the wait instead.
        Some(d) if d.seconds == 0 && d.nanos == 0 => {
            ignored(true, "", "listener_filters_timeout");
        }
        Some(d) => {
            m.set(
                "listener_filters_timeout",
                duration(d, "listener_filters_timeout")?,
            );
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
    // Zero is no limit in Envoy; the native handshake timeout cannot be turned off, so its
    // default applies.
    let handshake = match &chain.transport_socket_connect_timeout {
        Some(d) if d.seconds == 0 && d.nanos == 0 => {
            ignored(true, path, "transport_socket_connect_timeout");
            None
        }
        d => opt_duration(d.as_ref(), &join(path, "transport_socket_connect_timeout"))?,
    };
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
        let fpath = index(&join(path, "filters"), i);
        // As in Envoy, the terminal filter is the last: a filter after it would never run
        // (the native loader says the same, in native terms).
        if i > 0 && is_terminal(&chain.filters[i - 1]) {
            return Err(Error::new(
                fpath,
                "comes after the terminal filter (HttpConnectionManager or TcpProxy), which must be the last",
            ));
        }
        filters.push(network_filter(f, &fpath, logs, rds)?);
    }
    m.set("filters", list(filters));
    Ok(m.build())
}

fn chain_match(fcm: &FilterChainMatch, path: &str) -> Result<Map> {
    let mut m = Map::new();
    if let Some(port) = fcm.destination_port {
        m.set(
            "destination_port",
            number(port_number(port.value, &join(path, "destination_port"))?),
        );
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
        let mut ports = Vec::with_capacity(fcm.source_ports.len());
        for (i, p) in fcm.source_ports.iter().enumerate() {
            ports.push(number(port_number(
                *p,
                &index(&join(path, "source_ports"), i),
            )?));
        }
        m.set("source_ports", list(ports));
    }
    if !fcm.server_names.is_empty() {
        m.set("server_names", texts(&fcm.server_names));
    }
    match fcm.transport_protocol.as_str() {
        "" => {}
        p @ ("tls" | "raw_buffer") => {
            m.set("transport_protocol", text(p));
        }
        other => {
            return Err(Error::new(
                join(path, "transport_protocol"),
                format!("\"{other}\" is not supported by Sluice (tls and raw_buffer are)"),
            ))
        }
    }
    if !fcm.application_protocols.is_empty() {
        m.set("application_protocols", texts(&fcm.application_protocols));
    }
    Ok(m)
}

/// A port of a chain match: Envoy's field is wider than a port.
fn port_number(p: u32, path: &str) -> Result<u32> {
    if (1..=65535).contains(&p) {
        Ok(p)
    } else {
        Err(Error::new(
            path,
            format!("must be from 1 to 65535, found {p}"),
        ))
    }
}

/// Envoy's `CidrRange`s as native ranges, `address/len` (see [`cidr`]).
fn cidrs(ranges: &[CidrRange], path: &str) -> Result<Node> {
    let mut out = Vec::with_capacity(ranges.len());
    for (i, r) in ranges.iter().enumerate() {
        out.push(text(&cidr(r, &index(path, i))?));
    }
    Ok(list(out))
}

/// Envoy's `CidrRange` at `path` as a native range, `address/len`. An unset `prefix_len` is
/// 0 in Envoy (the whole family), not a single host.
pub(crate) fn cidr(r: &CidrRange, path: &str) -> Result<String> {
    let ip: std::net::IpAddr = match r.address_prefix.parse() {
        Ok(ip) => ip,
        Err(_) if r.address_prefix.is_empty() => {
            return Err(Error::new(join(path, "address_prefix"), "is required"))
        }
        Err(_) => {
            return Err(Error::new(
                join(path, "address_prefix"),
                format!("\"{}\" is not an IP address", r.address_prefix),
            ))
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = r.prefix_len.map_or(0, |l| l.value);
    if len > max {
        return Err(Error::new(
            join(path, "prefix_len"),
            format!("must be at most {max} for {ip}, found {len}"),
        ));
    }
    Ok(format!("{ip}/{len}"))
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
    } else if any.type_url == NetworkRbac::type_url() {
        let r: NetworkRbac = unpack(any, &NetworkRbac::type_url(), &tpath)?;
        Ok(single("rbac", rbac::network_rbac(&r, &tpath)?))
    } else {
        Err(Error::new(
            tpath,
            format!(
                "network filter {} is not supported by Sluice (HttpConnectionManager, TcpProxy and RBAC are)",
                any.type_url
            ),
        ))
    }
}

/// Whether a network filter ends the chain (handles the connection itself).
fn is_terminal(f: &Filter) -> bool {
    match &f.config_type {
        Some(filter::ConfigType::TypedConfig(any)) => {
            any.type_url == HttpConnectionManager::type_url()
                || any.type_url == TcpProxy::type_url()
        }
        _ => false,
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
            // Envoy still finds the router by its well-known name alone (its own demo
            // config writes it so); every other filter needs its config.
            None if f.name == ROUTER_NAME => {
                router = true;
                continue;
            }
            None => return Err(Error::new(join(&fpath, "typed_config"), "is required")),
        };
        if any.type_url == Router::type_url() {
            router = true;
            continue;
        }
        if inert_http_filter(any, &join(&fpath, "typed_config"))? {
            tracing::debug!(filter = %f.name, r#type = %any.type_url, "xDS: HTTP filter skipped (it does nothing without per-route config, which Sluice refuses)");
            continue;
        }
        if f.disabled {
            // A disabled filter runs only where a route enables it, which Sluice does not do.
            tracing::debug!(filter = %f.name, r#type = %any.type_url, "xDS: HTTP filter skipped (disabled)");
            continue;
        }
        match http_filter(any, &join(&fpath, "typed_config"))? {
            Some(node) => filters.push(node),
            // Envoy too skips an optional filter it does not know.
            None if f.is_optional => {
                tracing::debug!(filter = %f.name, r#type = %any.type_url, "xDS: optional HTTP filter skipped (not supported)");
            }
            None => {
                return Err(Error::new(
                    join(&fpath, "typed_config"),
                    format!(
                        "HTTP filter {} is not supported by Sluice (router, health_check and RBAC are; mark others is_optional to have them skipped)",
                        any.type_url
                    ),
                ))
            }
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
    // Envoy makes one attempt unless told; the native default tries every endpoint.
    match t.max_connect_attempts.map_or(1, |n| n.value) {
        0 => {
            return Err(Error::new(
                join(path, "max_connect_attempts"),
                "must be at least 1",
            ))
        }
        n => {
            m.set("max_connect_attempts", number(n));
        }
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

/// Whether an HTTP filter does nothing as configured: CORS (its policies are per route or
/// virtual host, which Sluice refuses) and a fault filter with no fault of its own (Istio
/// installs both in every chain; their per-route configs are refused where they appear).
fn inert_http_filter(any: &envoy_types::pb::google::protobuf::Any, path: &str) -> Result<bool> {
    use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
    use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
    if any.type_url == Cors::type_url() {
        return Ok(true);
    }
    if any.type_url == HttpFault::type_url() {
        let f: HttpFault = unpack(any, &HttpFault::type_url(), path)?;
        for (field, set) in [
            ("delay", f.delay.is_some()),
            ("abort", f.abort.is_some()),
            ("response_rate_limit", f.response_rate_limit.is_some()),
        ] {
            if set {
                return Err(Error::new(
                    join(path, field),
                    "fault injection is not supported by Sluice",
                ));
            }
        }
        return Ok(true);
    }
    Ok(false)
}

/// A native `http_filters` entry for an Envoy HTTP filter other than the router: the
/// health check filter and RBAC; `None` for any other (the caller skips it if optional).
fn http_filter(any: &envoy_types::pb::google::protobuf::Any, path: &str) -> Result<Option<Node>> {
    use envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck;
    use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as HttpRbac;
    if any.type_url == HttpRbac::type_url() {
        let r: HttpRbac = unpack(any, &HttpRbac::type_url(), path)?;
        return Ok(Some(single("rbac", rbac::http_rbac(&r, path)?)));
    }
    if any.type_url == HealthCheck::type_url() {
        let h: HealthCheck = unpack(any, &HealthCheck::type_url(), path)?;
        unsupported(h.cache_time.is_some(), &join(path, "cache_time"))?;
        unsupported(
            !h.cluster_min_healthy_percentages.is_empty(),
            &join(path, "cluster_min_healthy_percentages"),
        )?;
        let mut headers = Vec::new();
        for (i, m) in h.headers.iter().enumerate() {
            headers.push(route::header_matcher(m, &index(&join(path, "headers"), i))?);
        }
        if headers.is_empty() {
            // Envoy would take every request for a probe.
            return Err(Error::new(
                join(path, "headers"),
                "needs at least one header matcher in Sluice",
            ));
        }
        let mut m = Map::new();
        m.set(
            "pass_through_mode",
            boolean(h.pass_through_mode.is_some_and(|b| b.value)),
        );
        m.set("headers", list(headers));
        return Ok(Some(single("health_check", m.build())));
    }
    Ok(None)
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::translate::endpoint::tests::{assert_yaml, show, socket};
    use envoy_types::pb::envoy::config::accesslog::v3::{access_log, AccessLog};
    use envoy_types::pb::envoy::config::core::v3::address::Address as AddressKind;
    use envoy_types::pb::envoy::config::core::v3::{Address, Pipe, TransportSocket};
    use envoy_types::pb::envoy::config::listener::v3::ListenerFilter;
    use envoy_types::pb::envoy::config::route::v3::{
        route, route_action, route_match, Route, RouteAction, RouteConfiguration, RouteMatch,
        VirtualHost,
    };
    use envoy_types::pb::envoy::extensions::access_loggers::file::v3::FileAccessLog;
    use envoy_types::pb::envoy::extensions::filters::http::health_check::v3::HealthCheck;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::SetCurrentClientCertDetails;
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        HttpFilter, Rds,
    };
    use envoy_types::pb::envoy::extensions::filters::network::tcp_proxy::v3::tcp_proxy::{
        weighted_cluster::ClusterWeight, WeightedCluster,
    };
    use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher, StringMatcher};
    use envoy_types::pb::envoy::config::route::v3::{header_matcher, HeaderMatcher};
    use envoy_types::pb::envoy::r#type::v3::{hash_policy, HashPolicy};
    use envoy_types::pb::google::protobuf::{Any, BoolValue, Duration, UInt32Value};
    use prost::Message;
    use sluice_config::yaml::NodeKind;
    use std::sync::Arc;

    /// A mapping's value by key, for assertions on one part of a tree.
    pub(crate) trait Get {
        fn get(&self, key: &str) -> Option<&Node>;
    }

    impl Get for Node {
        fn get(&self, key: &str) -> Option<&Node> {
            match &self.kind {
                NodeKind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }
    }

    pub(crate) fn any<M: Message + Name>(m: &M) -> Any {
        Any {
            type_url: M::type_url(),
            value: m.encode_to_vec(),
        }
    }

    fn u32v(value: u32) -> Option<UInt32Value> {
        Some(UInt32Value { value })
    }

    fn secs(seconds: i64) -> Option<Duration> {
        Some(Duration { seconds, nanos: 0 })
    }

    pub(crate) fn router() -> HttpFilter {
        HttpFilter {
            name: "envoy.filters.http.router".into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(
                any(&Router::default()),
            )),
            ..Default::default()
        }
    }

    /// A connection manager taking route config `name` over RDS, with only the router.
    pub(crate) fn hcm(name: &str) -> HttpConnectionManager {
        HttpConnectionManager {
            stat_prefix: "ingress_http".into(),
            route_specifier: Some(RouteSpecifier::Rds(Rds {
                route_config_name: name.into(),
                ..Default::default()
            })),
            http_filters: vec![router()],
            ..Default::default()
        }
    }

    pub(crate) fn hcm_filter(h: &HttpConnectionManager) -> Filter {
        Filter {
            name: "envoy.filters.network.http_connection_manager".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(h))),
        }
    }

    fn tcp(cluster: &str) -> TcpProxy {
        TcpProxy {
            stat_prefix: "tcp".into(),
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        }
    }

    fn tcp_filter(t: &TcpProxy) -> Filter {
        Filter {
            name: "envoy.filters.network.tcp_proxy".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(t))),
        }
    }

    pub(crate) fn chain(filters: Vec<Filter>) -> FilterChain {
        FilterChain {
            filters,
            ..Default::default()
        }
    }

    pub(crate) fn envoy_listener(name: &str, port: u32, chains: Vec<FilterChain>) -> EnvoyListener {
        EnvoyListener {
            name: name.into(),
            address: Some(socket("0.0.0.0", port)),
            filter_chains: chains,
            ..Default::default()
        }
    }

    /// A listener on port 8080 with one chain holding `h`.
    fn with_hcm(h: &HttpConnectionManager) -> EnvoyListener {
        envoy_listener("web", 8080, vec![chain(vec![hcm_filter(h)])])
    }

    pub(crate) fn tls_inspector() -> ListenerFilter {
        ListenerFilter {
            name: "envoy.filters.listener.tls_inspector".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(any(
                &TlsInspector::default(),
            ))),
            ..Default::default()
        }
    }

    pub(crate) fn tls_socket(ctx: &DownstreamTlsContext) -> Option<TransportSocket> {
        Some(TransportSocket {
            name: "envoy.transport_sockets.tls".into(),
            config_type: Some(transport_socket::ConfigType::TypedConfig(any(ctx))),
        })
    }

    /// The first filter's body of the first chain, `{ http_proxy: BODY }` unwrapped.
    fn first_filter(node: &Node) -> Node {
        let chains = node.get("filter_chains").unwrap();
        let NodeKind::Seq(chains) = &chains.kind else {
            panic!("filter_chains is not a list: {}", show(node))
        };
        let NodeKind::Seq(filters) = &chains[0].get("filters").unwrap().kind else {
            panic!("filters is not a list: {}", show(node))
        };
        let NodeKind::Map(entries) = &filters[0].kind else {
            panic!("a filter is not a mapping: {}", show(node))
        };
        entries[0].1.clone()
    }

    /// Asserts translating `l` fails at `field`.
    #[track_caller]
    pub(crate) fn refused(l: &EnvoyListener, field: &str) -> Error {
        match listener(l) {
            Ok(t) => panic!("expected an error at {field}, got {}", show(&t.node)),
            Err(e) => {
                assert_eq!(e.field, field, "{e}");
                e
            }
        }
    }

    /// Stands in for a terminal filter's decoder: `sluice-filters` (which has the real ones)
    /// is not a dependency of this crate, so the loader checks the listener around them.
    #[derive(Debug)]
    struct Terminal;

    impl sluice_config::NetworkFilterConfig for Terminal {
        fn is_terminal(&self) -> bool {
            true
        }
    }

    fn terminal(
        _: &Node,
        _: &str,
        _: &mut sluice_config::Cx,
    ) -> Option<Arc<dyn sluice_config::NetworkFilterConfig>> {
        Some(Arc::new(Terminal))
    }

    /// Loads a document of `listeners`, `route_configs` and `sds` (when given), as the xDS
    /// client does.
    #[track_caller]
    pub(crate) fn load(
        listeners: Vec<Node>,
        route_configs: Vec<Node>,
        sds: bool,
    ) -> sluice_config::Config {
        let mut registry = sluice_config::Registry::default();
        registry.register_network_filter("http_proxy", terminal);
        registry.register_network_filter("tcp_proxy", terminal);
        let mut doc = Map::new();
        if sds {
            doc.set("sds", single("address", text("127.0.0.1:15012")));
        }
        doc.set("listeners", list(listeners));
        doc.set("route_configs", list(route_configs));
        let doc = doc.build();
        match sluice_config::load_tree(
            doc.clone(),
            "xds",
            &registry,
            sluice_config::LoadOptions {
                allow_unknown_clusters: true,
            },
        ) {
            Ok(c) => c,
            Err(e) => panic!(
                "the loader refused the translated tree:\n{e}\n{}",
                show(&doc)
            ),
        }
    }

    fn inline_routes() -> RouteConfiguration {
        RouteConfiguration {
            virtual_hosts: vec![VirtualHost {
                name: "all".into(),
                domains: vec!["*".into()],
                routes: vec![Route {
                    r#match: Some(RouteMatch {
                        path_specifier: Some(route_match::PathSpecifier::Prefix("/".into())),
                        ..Default::default()
                    }),
                    action: Some(route::Action::Route(RouteAction {
                        cluster_specifier: Some(route_action::ClusterSpecifier::Cluster(
                            "backend".into(),
                        )),
                        ..Default::default()
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn an_http_listener_over_rds() {
        let t = listener(&with_hcm(&hcm("main"))).unwrap();
        assert_eq!(t.rds, vec!["main".to_string()]);
        assert_yaml(
            &t.node,
            r#"
name: "web"
address: "0.0.0.0:8080"
filter_chains:
  - filters:
      - http_proxy:
          stat_prefix: "ingress_http"
          route_config: "main"
          request_headers_timeout: 0
"#,
        );
        let mut rc = Map::new();
        rc.set("name", text("main"));
        rc.set("virtual_hosts", list(vec![]));
        let config = load(vec![t.node], vec![rc.build()], false);
        assert_eq!(config.listeners[0].name, "web");
        assert_eq!(config.listeners[0].address.to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn every_mapped_connection_manager_field() {
        let mut h = hcm("unused");
        h.route_specifier = Some(RouteSpecifier::RouteConfig(inline_routes()));
        h.codec_type = CodecType::Http2 as i32;
        h.stat_prefix = "outbound_0.0.0.0_80".into();
        h.max_request_headers_kb = u32v(96);
        h.common_http_protocol_options = Some(
            envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions {
                max_headers_count: u32v(50),
                ..Default::default()
            },
        );
        h.request_headers_timeout = Some(Duration {
            seconds: 2,
            nanos: 500_000_000,
        });
        h.via = "1.1 sluice".into();
        h.forward_client_cert_details = ForwardClientCertDetails::SanitizeSet as i32;
        h.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
            subject: Some(BoolValue { value: true }),
            uri: true,
            ..Default::default()
        });
        let t = listener(&with_hcm(&h)).unwrap();
        assert!(t.rds.is_empty());
        assert_yaml(
            &first_filter(&t.node),
            r#"
codec: "http2"
stat_prefix: "outbound_0_0_0_0_80"
route_config:
  virtual_hosts:
    - name: "all"
      domains: ["*"]
      routes: [{ match: { prefix: "/" }, route: { cluster: "backend" } }]
max_request_headers_kb: 96
max_headers_count: 50
request_headers_timeout: 2500ms
via: "1.1 sluice"
forward_client_cert_details: "sanitize_set"
set_current_client_cert_details: { subject: true, cert: false, chain: false, dns: false, uri: true }
"#,
        );
        load(vec![t.node], vec![], false);
    }

    #[test]
    fn codecs_and_forwarding_modes() {
        let codec = |c: CodecType| {
            let mut h = hcm("rc");
            h.codec_type = c as i32;
            listener(&with_hcm(&h)).map(|t| first_filter(&t.node))
        };
        assert!(codec(CodecType::Auto).unwrap().get("codec").is_none());
        assert_eq!(
            codec(CodecType::Http1)
                .unwrap()
                .get("codec")
                .unwrap()
                .as_scalar(),
            Some("http1")
        );
        let e = codec(CodecType::Http3).unwrap_err();
        assert_eq!(
            e.field,
            "filter_chains[0].filters[0].typed_config.codec_type"
        );
        for (mode, native) in [
            (ForwardClientCertDetails::Sanitize, None),
            (ForwardClientCertDetails::ForwardOnly, Some("forward_only")),
            (
                ForwardClientCertDetails::AppendForward,
                Some("append_forward"),
            ),
            (ForwardClientCertDetails::SanitizeSet, Some("sanitize_set")),
            (
                ForwardClientCertDetails::AlwaysForwardOnly,
                Some("always_forward_only"),
            ),
        ] {
            let mut h = hcm("rc");
            h.forward_client_cert_details = mode as i32;
            let body = first_filter(&listener(&with_hcm(&h)).unwrap().node);
            assert_eq!(
                body.get("forward_client_cert_details")
                    .and_then(|n| n.as_scalar()),
                native
            );
        }
        let mut h = hcm("rc");
        h.set_current_client_cert_details = Some(SetCurrentClientCertDetails {
            issuer: true,
            ..Default::default()
        });
        refused(
            &with_hcm(&h),
            "filter_chains[0].filters[0].typed_config.set_current_client_cert_details.issuer",
        );
    }

    #[test]
    fn http_filters_end_with_the_router() {
        let fpath = "filter_chains[0].filters[0].typed_config.http_filters";
        let mut h = hcm("rc");
        h.http_filters = vec![];
        let e = refused(&with_hcm(&h), fpath);
        assert!(e.message.contains("must be the router"), "{e}");
        h.http_filters = vec![router(), router()];
        let e = refused(&with_hcm(&h), &format!("{fpath}[1]"));
        assert_eq!(e.message, "no HTTP filter may follow the router");

        let unknown = |is_optional: bool| HttpFilter {
            name: "envoy.filters.http.lua".into(),
            is_optional,
            config_type: Some(http_filter::ConfigType::TypedConfig(Any {
                type_url: "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua".into(),
                value: Vec::new(),
            })),
            ..Default::default()
        };
        h.http_filters = vec![unknown(true), router()];
        let t = listener(&with_hcm(&h)).unwrap();
        assert!(first_filter(&t.node).get("http_filters").is_none());
        h.http_filters = vec![unknown(false), router()];
        let e = refused(&with_hcm(&h), &format!("{fpath}[0].typed_config"));
        assert!(
            e.message
                .starts_with("HTTP filter type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua is not supported"),
            "{e}"
        );
    }

    #[test]
    fn cors_and_faultless_fault_filters_are_inert() {
        use envoy_types::pb::envoy::extensions::filters::common::fault::v3::FaultDelay;
        use envoy_types::pb::envoy::extensions::filters::http::cors::v3::Cors;
        use envoy_types::pb::envoy::extensions::filters::http::fault::v3::HttpFault;
        let filter = |name: &str, any: Any| HttpFilter {
            name: name.into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(any)),
            ..Default::default()
        };
        let mut h = hcm("rc");
        // Istio's chain: fault, CORS, router; neither mandatory filter does anything.
        h.http_filters = vec![
            filter(
                "envoy.filters.http.fault",
                super::tests::any(&HttpFault::default()),
            ),
            filter("envoy.filters.http.cors", super::tests::any(&Cors {})),
            router(),
        ];
        let t = listener(&with_hcm(&h)).unwrap();
        assert!(first_filter(&t.node).get("http_filters").is_none());
        // A fault of its own is injection, which Sluice does not do.
        h.http_filters[0] = filter(
            "envoy.filters.http.fault",
            super::tests::any(&HttpFault {
                delay: Some(FaultDelay::default()),
                ..Default::default()
            }),
        );
        let e = refused(
            &with_hcm(&h),
            "filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.delay",
        );
        assert_eq!(e.message, "fault injection is not supported by Sluice");
    }

    fn health_check(pass_through: bool, is_optional: bool) -> HttpFilter {
        let h = HealthCheck {
            pass_through_mode: Some(BoolValue {
                value: pass_through,
            }),
            headers: vec![HeaderMatcher {
                name: ":path".into(),
                header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(
                    StringMatcher {
                        match_pattern: Some(string_matcher::MatchPattern::Exact("/healthz".into())),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }],
            ..Default::default()
        };
        HttpFilter {
            name: "envoy.filters.http.health_check".into(),
            is_optional,
            config_type: Some(http_filter::ConfigType::TypedConfig(any(&h))),
            ..Default::default()
        }
    }

    #[test]
    fn the_health_check_filter() {
        let mut h = hcm("rc");
        // Optional or not, a filter Sluice has is used.
        h.http_filters = vec![
            health_check(false, false),
            health_check(true, true),
            router(),
        ];
        let t = listener(&with_hcm(&h)).unwrap();
        assert_yaml(
            first_filter(&t.node).get("http_filters").unwrap(),
            r#"
- health_check: { pass_through_mode: false, headers: [{ name: ":path", exact: "/healthz" }] }
- health_check: { pass_through_mode: true, headers: [{ name: ":path", exact: "/healthz" }] }
"#,
        );
        let empty = HealthCheck::default();
        h.http_filters = vec![
            HttpFilter {
                name: "hc".into(),
                config_type: Some(http_filter::ConfigType::TypedConfig(any(&empty))),
                ..Default::default()
            },
            router(),
        ];
        refused(
            &with_hcm(&h),
            "filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.headers",
        );
        let caching = HealthCheck {
            cache_time: secs(5),
            ..Default::default()
        };
        h.http_filters[0].config_type = Some(http_filter::ConfigType::TypedConfig(any(&caching)));
        refused(
            &with_hcm(&h),
            "filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.cache_time",
        );
    }

    #[test]
    fn connection_manager_fields_sluice_lacks_are_refused() {
        let at = "filter_chains[0].filters[0].typed_config";
        let mut h = hcm("rc");
        h.route_specifier = None;
        refused(&with_hcm(&h), &format!("{at}.rds"));
        let mut h = hcm("");
        refused(&with_hcm(&h), &format!("{at}.rds.route_config_name"));
        h = hcm("rc");
        h.request_timeout = secs(30);
        refused(&with_hcm(&h), &format!("{at}.request_timeout"));
        h = hcm("rc");
        h.skip_xff_append = true;
        refused(&with_hcm(&h), &format!("{at}.skip_xff_append"));
        h = hcm("rc");
        h.generate_request_id = Some(BoolValue { value: false });
        refused(&with_hcm(&h), &format!("{at}.generate_request_id"));
        h = hcm("rc");
        h.common_http_protocol_options = Some(
            envoy_types::pb::envoy::config::core::v3::HttpProtocolOptions {
                max_stream_duration: secs(5),
                ..Default::default()
            },
        );
        refused(
            &with_hcm(&h),
            &format!("{at}.common_http_protocol_options.max_stream_duration"),
        );
        // Zero is Envoy's "no request timeout", which is Sluice's too.
        h = hcm("rc");
        h.request_timeout = secs(0);
        listener(&with_hcm(&h)).unwrap();
        // Fields that change nothing a client sees are ignored.
        h = hcm("rc");
        h.server_name = "sluice".into();
        h.stream_idle_timeout = secs(300);
        h.use_remote_address = Some(BoolValue { value: true });
        assert_yaml(
            &first_filter(&listener(&with_hcm(&h)).unwrap().node),
            r#"{ stat_prefix: "ingress_http", route_config: "rc", request_headers_timeout: 0 }"#,
        );
    }

    #[test]
    fn tcp_proxies() {
        let mut t = tcp("db");
        t.stat_prefix = "db.primary".into();
        t.idle_timeout = secs(600);
        t.max_connect_attempts = u32v(3);
        t.hash_policy = vec![HashPolicy {
            policy_specifier: Some(hash_policy::PolicySpecifier::SourceIp(
                hash_policy::SourceIp {},
            )),
        }];
        let l = envoy_listener("db", 5432, vec![chain(vec![tcp_filter(&t)])]);
        let translated = listener(&l).unwrap();
        assert!(translated.rds.is_empty());
        assert_yaml(
            &translated.node,
            r#"
name: "db"
address: "0.0.0.0:5432"
filter_chains:
  - filters:
      - tcp_proxy:
          cluster: "db"
          stat_prefix: "db_primary"
          idle_timeout: 600s
          max_connect_attempts: 3
          hash_policy: [{ source_ip: true }]
"#,
        );
        load(vec![translated.node], vec![], false);

        // Envoy makes one connect attempt unless told.
        let l = envoy_listener("db", 5432, vec![chain(vec![tcp_filter(&tcp("db"))])]);
        assert_yaml(
            &first_filter(&listener(&l).unwrap().node),
            r#"{ cluster: "db", stat_prefix: "tcp", max_connect_attempts: 1 }"#,
        );

        let at = "filter_chains[0].filters[0].typed_config";
        let mut weighted = tcp("db");
        weighted.cluster_specifier = Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
            clusters: vec![ClusterWeight {
                name: "a".into(),
                weight: 1,
                ..Default::default()
            }],
        }));
        refused(
            &envoy_listener("db", 5432, vec![chain(vec![tcp_filter(&weighted)])]),
            &format!("{at}.weighted_clusters"),
        );
        let mut zero = tcp("db");
        zero.max_connect_attempts = u32v(0);
        refused(
            &envoy_listener("db", 5432, vec![chain(vec![tcp_filter(&zero)])]),
            &format!("{at}.max_connect_attempts"),
        );
        let mut state = tcp("db");
        state.hash_policy = vec![HashPolicy {
            policy_specifier: Some(hash_policy::PolicySpecifier::FilterState(
                hash_policy::FilterState { key: "k".into() },
            )),
        }];
        refused(
            &envoy_listener("db", 5432, vec![chain(vec![tcp_filter(&state)])]),
            &format!("{at}.hash_policy[0]"),
        );
        let mut none = tcp("db");
        none.cluster_specifier = None;
        refused(
            &envoy_listener("db", 5432, vec![chain(vec![tcp_filter(&none)])]),
            &format!("{at}.cluster"),
        );
    }

    #[test]
    fn filter_chain_matches_and_the_tls_inspector() {
        use envoy_types::pb::envoy::config::core::v3::CidrRange;
        let cidr = |ip: &str, len: Option<u32>| CidrRange {
            address_prefix: ip.into(),
            prefix_len: len.map(|value| UInt32Value { value }),
        };
        let by_sni = FilterChain {
            filter_chain_match: Some(FilterChainMatch {
                destination_port: u32v(443),
                prefix_ranges: vec![cidr("10.1.2.3", Some(8)), cidr("fd00::", None)],
                server_names: vec!["api.example.com".into(), "*.example.org".into()],
                transport_protocol: "tls".into(),
                application_protocols: vec!["h2".into(), "http/1.1".into()],
                source_prefix_ranges: vec![cidr("192.168.0.0", Some(16))],
                source_ports: vec![1234, 5678],
                ..Default::default()
            }),
            ..chain(vec![tcp_filter(&tcp("passthrough"))])
        };
        let plain = FilterChain {
            filter_chain_match: Some(FilterChainMatch {
                transport_protocol: "raw_buffer".into(),
                ..Default::default()
            }),
            ..chain(vec![tcp_filter(&tcp("plain"))])
        };
        let l = EnvoyListener {
            listener_filters: vec![tls_inspector()],
            ..envoy_listener("edge", 443, vec![by_sni, plain])
        };
        let t = listener(&l).unwrap();
        assert_yaml(
            &t.node,
            r#"
name: "edge"
address: "0.0.0.0:443"
listener_filters: ["tls_inspector"]
listener_filters_timeout: 15s
filter_chains:
  - match:
      destination_port: 443
      prefix_ranges: ["10.1.2.3/8", "fd00::/0"]
      source_prefix_ranges: ["192.168.0.0/16"]
      source_ports: [1234, 5678]
      server_names: ["api.example.com", "*.example.org"]
      transport_protocol: "tls"
      application_protocols: ["h2", "http/1.1"]
    filters: [{ tcp_proxy: { cluster: "passthrough", stat_prefix: "tcp", max_connect_attempts: 1 } }]
  - match: { transport_protocol: "raw_buffer" }
    filters: [{ tcp_proxy: { cluster: "plain", stat_prefix: "tcp", max_connect_attempts: 1 } }]
"#,
        );
        let config = load(vec![t.node], vec![], false);
        let m = &config.listeners[0].filter_chains[0].matcher;
        assert_eq!(m.prefix_ranges[0].to_string(), "10.0.0.0/8");
        // An unset prefix_len is 0 in Envoy: every IPv6 address.
        assert_eq!(m.prefix_ranges[1].to_string(), "::/0");
        assert_eq!(m.source_ports, vec![1234, 5678]);

        // The timeout given, or 0 (no limit in Envoy, so the native default), and continuing.
        let mut l2 = l.clone();
        l2.listener_filters_timeout = Some(Duration {
            seconds: 0,
            nanos: 300_000_000,
        });
        l2.continue_on_listener_filters_timeout = true;
        let node = listener(&l2).unwrap().node;
        assert_eq!(
            node.get("listener_filters_timeout").unwrap().as_scalar(),
            Some("300ms")
        );
        assert_eq!(
            node.get("continue_on_listener_filters_timeout")
                .unwrap()
                .as_scalar(),
            Some("true")
        );
        l2.listener_filters_timeout = secs(0);
        assert!(listener(&l2)
            .unwrap()
            .node
            .get("listener_filters_timeout")
            .is_none());

        let at = "filter_chains[0].filter_chain_match";
        let refused_match = |m: FilterChainMatch, field: &str| {
            let l = envoy_listener(
                "edge",
                443,
                vec![FilterChain {
                    filter_chain_match: Some(m),
                    ..chain(vec![tcp_filter(&tcp("c"))])
                }],
            );
            refused(&l, &format!("{at}.{field}"))
        };
        refused_match(
            FilterChainMatch {
                prefix_ranges: vec![cidr("10.0.0.0", Some(33))],
                ..Default::default()
            },
            "prefix_ranges[0].prefix_len",
        );
        refused_match(
            FilterChainMatch {
                source_prefix_ranges: vec![cidr("not-an-ip", Some(8))],
                ..Default::default()
            },
            "source_prefix_ranges[0].address_prefix",
        );
        refused_match(
            FilterChainMatch {
                destination_port: u32v(70000),
                ..Default::default()
            },
            "destination_port",
        );
        refused_match(
            FilterChainMatch {
                source_ports: vec![80, 0],
                ..Default::default()
            },
            "source_ports[1]",
        );
        refused_match(
            FilterChainMatch {
                transport_protocol: "quic".into(),
                ..Default::default()
            },
            "transport_protocol",
        );
        refused_match(
            FilterChainMatch {
                address_suffix: "::1".into(),
                ..Default::default()
            },
            "address_suffix",
        );
        refused_match(
            FilterChainMatch {
                source_type: 1,
                ..Default::default()
            },
            "source_type",
        );

        let other = ListenerFilter {
            name: "envoy.filters.listener.http_inspector".into(),
            config_type: Some(listener_filter::ConfigType::TypedConfig(Any {
                type_url: "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector".into(),
                value: Vec::new(),
            })),
            ..Default::default()
        };
        let l = EnvoyListener {
            listener_filters: vec![tls_inspector(), other],
            ..envoy_listener("edge", 443, vec![chain(vec![tcp_filter(&tcp("c"))])])
        };
        refused(&l, "listener_filters[1].typed_config");
    }

    #[test]
    fn listener_fields_sluice_lacks_are_refused_by_their_envoy_path() {
        let base = || envoy_listener("web", 8080, vec![chain(vec![hcm_filter(&hcm("rc"))])]);
        let yes = Some(BoolValue { value: true });
        #[allow(deprecated)]
        let cases: Vec<(EnvoyListener, &str)> = vec![
            (
                EnvoyListener {
                    transparent: yes,
                    ..base()
                },
                "transparent",
            ),
            (
                EnvoyListener {
                    use_original_dst: yes,
                    ..base()
                },
                "use_original_dst",
            ),
            (
                EnvoyListener {
                    default_filter_chain: Some(chain(vec![hcm_filter(&hcm("rc"))])),
                    ..base()
                },
                "default_filter_chain",
            ),
            (
                EnvoyListener {
                    freebind: yes,
                    ..base()
                },
                "freebind",
            ),
            (
                EnvoyListener {
                    bind_to_port: Some(BoolValue { value: false }),
                    ..base()
                },
                "bind_to_port",
            ),
            (
                EnvoyListener {
                    enable_mptcp: true,
                    ..base()
                },
                "enable_mptcp",
            ),
            (
                EnvoyListener {
                    additional_addresses: vec![Default::default()],
                    ..base()
                },
                "additional_addresses",
            ),
            (
                EnvoyListener {
                    name: String::new(),
                    ..base()
                },
                "name",
            ),
            (
                EnvoyListener {
                    filter_chains: vec![],
                    ..base()
                },
                "filter_chains",
            ),
            (
                EnvoyListener {
                    filter_chains: vec![chain(vec![])],
                    ..base()
                },
                "filter_chains[0].filters",
            ),
            (
                EnvoyListener {
                    address: Some(socket("localhost", 8080)),
                    ..base()
                },
                "address.socket_address.address",
            ),
            (
                EnvoyListener {
                    address: Some(socket("0.0.0.0", 0)),
                    ..base()
                },
                "address.socket_address.port_value",
            ),
            (
                EnvoyListener {
                    filter_chains: vec![FilterChain {
                        use_proxy_proto: yes,
                        ..chain(vec![hcm_filter(&hcm("rc"))])
                    }],
                    ..base()
                },
                "filter_chains[0].use_proxy_proto",
            ),
            (
                EnvoyListener {
                    filter_chains: vec![chain(vec![Filter {
                        name: "envoy.filters.network.redis_proxy".into(),
                        config_type: Some(filter::ConfigType::TypedConfig(Any {
                            type_url: "type.googleapis.com/envoy.extensions.filters.network.redis_proxy.v3.RedisProxy".into(),
                            value: Vec::new(),
                        })),
                    }])],
                    ..base()
                },
                "filter_chains[0].filters[0].typed_config",
            ),
        ];
        for (l, field) in cases {
            refused(&l, field);
        }
        let e = refused(
            &EnvoyListener {
                address: Some(socket("localhost", 8080)),
                ..base()
            },
            "address.socket_address.address",
        );
        assert!(e.message.contains("a listener binds an IP address"), "{e}");
        // Settings with no client-visible effect are ignored; the ones with a native key map.
        let l = EnvoyListener {
            stat_prefix: "web".into(),
            per_connection_buffer_limit_bytes: u32v(32768),
            enable_reuse_port: yes,
            tcp_backlog_size: u32v(512),
            ..base()
        };
        let node = listener(&l).unwrap().node;
        assert_eq!(node.get("reuse_port").unwrap().as_scalar(), Some("true"));
        assert_eq!(node.get("backlog").unwrap().as_scalar(), Some("512"));
    }

    #[test]
    fn a_unix_socket_listener_keeps_its_mode() {
        let l = EnvoyListener {
            address: Some(Address {
                address: Some(AddressKind::Pipe(Pipe {
                    path: "/tmp/sluice-xds-listener.sock".into(),
                    mode: 0o660,
                })),
            }),
            ..envoy_listener("local", 0, vec![chain(vec![hcm_filter(&hcm("rc"))])])
        };
        let t = listener(&l).unwrap();
        assert_eq!(
            t.node.get("address").unwrap().as_scalar(),
            Some("unix:/tmp/sluice-xds-listener.sock")
        );
        assert_eq!(t.node.get("socket_mode").unwrap().as_scalar(), Some("0660"));
        let mut rc = Map::new();
        rc.set("name", text("rc"));
        rc.set("virtual_hosts", list(vec![]));
        let config = load(vec![t.node], vec![rc.build()], false);
        assert_eq!(config.listeners[0].socket_mode, Some(0o660));
    }

    #[test]
    fn access_logs_of_listener_manager_and_proxy_all_go_to_the_listener() {
        let file_log = |path: &str| AccessLog {
            name: "envoy.access_loggers.file".into(),
            config_type: Some(access_log::ConfigType::TypedConfig(any(&FileAccessLog {
                path: path.into(),
                ..Default::default()
            }))),
            ..Default::default()
        };
        let mut h = hcm("rc");
        h.access_log = vec![file_log("/dev/stdout")];
        let mut t = tcp("db");
        t.access_log = vec![file_log("/tmp/tcp.log")];
        let l = EnvoyListener {
            access_log: vec![file_log("/tmp/listener.log")],
            ..envoy_listener(
                "web",
                8080,
                vec![
                    FilterChain {
                        filter_chain_match: Some(FilterChainMatch {
                            destination_port: u32v(8080),
                            ..Default::default()
                        }),
                        ..chain(vec![hcm_filter(&h)])
                    },
                    chain(vec![tcp_filter(&t)]),
                ],
            )
        };
        let node = listener(&l).unwrap().node;
        assert_yaml(
            node.get("access_log").unwrap(),
            r#"[{ path: "/tmp/listener.log" }, { path: "stdout" }, { path: "/tmp/tcp.log" }]"#,
        );
        let mut filtered = file_log("/tmp/x.log");
        filtered.filter = Some(Default::default());
        h.access_log = vec![filtered];
        refused(
            &with_hcm(&h),
            "filter_chains[0].filters[0].typed_config.access_log[0].filter",
        );
    }
}
