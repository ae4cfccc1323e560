//! An Envoy v3 bootstrap file (`sluice run --envoy-config`) as a native config document.
//!
//! The YAML is read against Envoy's schema ([`schema`]) into the same `envoy-types` messages
//! xDS delivers, and its static listeners and clusters go through the xDS translators: a
//! field means the same thing, and is refused in the same words, whichever way it arrives.
//! `dynamic_resources` becomes the native `xds` block, the control plane's address taken
//! from the static cluster its gRPC service names. Errors carry the YAML line and the
//! Envoy path (`static_resources.clusters[1].lb_policy`).

pub mod schema;
mod sds;

use envoy_types::pb::envoy::config::bootstrap::v3::bootstrap::{DynamicResources, StaticResources};
use envoy_types::pb::envoy::config::bootstrap::v3::{Admin, Bootstrap};
use envoy_types::pb::envoy::config::cluster::v3::cluster::{ClusterDiscoveryType, DiscoveryType};
use envoy_types::pb::envoy::config::cluster::v3::Cluster as EnvoyCluster;
use envoy_types::pb::envoy::config::core::v3::api_config_source::ApiType;
use envoy_types::pb::envoy::config::core::v3::config_source::ConfigSourceSpecifier;
use envoy_types::pb::envoy::config::core::v3::grpc_service::TargetSpecifier;
use envoy_types::pb::envoy::config::core::v3::{
    ApiConfigSource, ApiVersion, ConfigSource, Node as EnvoyNode,
};
use envoy_types::pb::envoy::config::metrics::v3::statsd_sink::StatsdSpecifier;
use envoy_types::pb::envoy::config::metrics::v3::{
    stats_sink, DogStatsdSink, StatsSink, StatsdSink,
};
use envoy_types::pb::google::protobuf::Duration;
use sluice_config::decode::Diagnostic;
use sluice_config::yaml::{Node, NodeKind};

use crate::translate::address::{self, Role};
use crate::translate::tree::{
    boolean, duration, ignored, index, join, list, string_map, string_metadata, text, type_url,
    unpack, unsupported, Map,
};
use crate::translate::{cluster, listener, Error, Result};

/// The native document an Envoy bootstrap (as parsed YAML) stands for.
pub fn translate(doc: &Node) -> std::result::Result<Node, Diagnostic> {
    let bootstrap: Bootstrap = schema::decode(doc).map_err(|e| Diagnostic {
        line: e.line,
        path: e.path,
        message: e.message,
    })?;
    document(&bootstrap).map_err(|e| Diagnostic {
        line: line_of(doc, &e.field),
        path: e.field,
        message: e.message,
    })
}

fn document(b: &Bootstrap) -> Result<Node> {
    refuse_unsupported(b)?;
    let mut out = Map::new();
    if let Some(admin) = &b.admin {
        out.set("admin", self::admin(admin)?);
    }
    if let Some(node) = &b.node {
        out.set("node", self::node(node)?);
    }
    if let Some(d) = &b.stats_flush_interval {
        out.set("stats_flush_interval", duration(d, "stats_flush_interval")?);
    }
    if !b.stats_sinks.is_empty() {
        let sinks = b
            .stats_sinks
            .iter()
            .enumerate()
            .map(|(i, s)| stats_sink(s, &index("stats_sinks", i)))
            .collect::<Result<Vec<_>>>()?;
        out.set("stats_sinks", list(sinks));
    }
    let empty = StaticResources::default();
    let statics = b.static_resources.as_ref().unwrap_or(&empty);
    let (listeners, clusters) = static_resources(statics)?;
    if !listeners.is_empty() {
        out.set("listeners", list(listeners));
    }
    if !clusters.is_empty() {
        out.set("clusters", list(clusters));
    }
    let ads = match b
        .dynamic_resources
        .as_ref()
        .and_then(|d| d.ads_config.as_ref())
    {
        Some(a) => Some(server(
            a,
            "dynamic_resources.ads_config",
            &statics.clusters,
            true,
        )?),
        None => None,
    };
    if let Some(d) = &b.dynamic_resources {
        if let Some(xds) = dynamic_resources(d, &statics.clusters, ads.as_ref())? {
            out.set("xds", xds);
        }
    }
    if let Some(sds) = sds::sds(statics, ads.as_ref())? {
        out.set("sds", sds);
    }
    Ok(out.build())
}

/// Bootstrap fields with no native counterpart: refused when they change what the proxy
/// does, ignored (debug log) when they only tune Envoy's internals or its own stats.
#[allow(deprecated)]
fn refuse_unsupported(b: &Bootstrap) -> Result<()> {
    let refused = [
        ("hds_config", b.hds_config.is_some()),
        ("tracing", b.tracing.is_some()),
        ("header_prefix", !b.header_prefix.is_empty()),
        ("bootstrap_extensions", !b.bootstrap_extensions.is_empty()),
        ("config_sources", !b.config_sources.is_empty()),
        ("default_config_source", b.default_config_source.is_some()),
        (
            "certificate_provider_instances",
            !b.certificate_provider_instances.is_empty(),
        ),
        ("xds_delegate_extension", b.xds_delegate_extension.is_some()),
        (
            "xds_config_tracker_extension",
            b.xds_config_tracker_extension.is_some(),
        ),
        ("listener_manager", b.listener_manager.is_some()),
        (
            "default_socket_interface",
            !b.default_socket_interface.is_empty(),
        ),
        (
            "overload_manager.actions",
            b.overload_manager
                .as_ref()
                .is_some_and(|o| !o.actions.is_empty()),
        ),
        (
            "cluster_manager.upstream_bind_config",
            b.cluster_manager
                .as_ref()
                .is_some_and(|c| c.upstream_bind_config.is_some()),
        ),
        (
            "cluster_manager.load_stats_config",
            b.cluster_manager
                .as_ref()
                .is_some_and(|c| c.load_stats_config.is_some()),
        ),
    ];
    for (field, set) in refused {
        unsupported(set, field)?;
    }
    let ignored_fields = [
        ("node_context_params", !b.node_context_params.is_empty()),
        ("cluster_manager", b.cluster_manager.is_some()),
        ("flags_path", !b.flags_path.is_empty()),
        ("deferred_stat_options", b.deferred_stat_options.is_some()),
        ("stats_config", b.stats_config.is_some()),
        ("watchdog", b.watchdog.is_some()),
        ("watchdogs", b.watchdogs.is_some()),
        ("layered_runtime", b.layered_runtime.is_some()),
        ("overload_manager", b.overload_manager.is_some()),
        ("enable_dispatcher_stats", b.enable_dispatcher_stats),
        (
            "stats_server_version_override",
            b.stats_server_version_override.is_some(),
        ),
        ("use_tcp_for_dns_lookups", b.use_tcp_for_dns_lookups),
        ("dns_resolution_config", b.dns_resolution_config.is_some()),
        (
            "typed_dns_resolver_config",
            b.typed_dns_resolver_config.is_some(),
        ),
        ("fatal_actions", !b.fatal_actions.is_empty()),
        ("inline_headers", !b.inline_headers.is_empty()),
        (
            "perf_tracing_file_path",
            !b.perf_tracing_file_path.is_empty(),
        ),
        ("default_regex_engine", b.default_regex_engine.is_some()),
        ("application_log_config", b.application_log_config.is_some()),
        (
            "grpc_async_client_manager_config",
            b.grpc_async_client_manager_config.is_some(),
        ),
        (
            "memory_allocator_manager",
            b.memory_allocator_manager.is_some(),
        ),
        ("enable_worker_cpu_affinity", b.enable_worker_cpu_affinity),
        ("stats_flush", b.stats_flush.is_some()),
        ("stats_eviction", b.stats_eviction.is_some()),
    ];
    for (field, set) in ignored_fields {
        ignored(set, "", field);
    }
    Ok(())
}

#[allow(deprecated)]
fn admin(a: &Admin) -> Result<Node> {
    if !a.allow_paths.is_empty() {
        return Err(Error::new(
            "admin.allow_paths",
            "is not supported by Sluice (its admin API serves every endpoint; keep it on loopback)",
        ));
    }
    if !a.socket_options.is_empty() {
        return Err(Error::new(
            "admin.socket_options",
            "is not supported by Sluice",
        ));
    }
    for (field, set) in [
        ("access_log", !a.access_log.is_empty()),
        ("access_log_path", !a.access_log_path.is_empty()),
        ("profile_path", !a.profile_path.is_empty()),
        ("ignore_global_conn_limit", a.ignore_global_conn_limit),
    ] {
        ignored(set, "admin", field);
    }
    let mut m = Map::new();
    if a.address.is_some() {
        let addr = address::address(a.address.as_ref(), "admin.address", Role::Listener)?;
        if addr.starts_with("unix:") {
            return Err(Error::new(
                "admin.address.pipe",
                "the admin API listens on TCP only in Sluice",
            ));
        }
        m.set("address", text(&addr));
    }
    Ok(m.build())
}

fn node(n: &EnvoyNode) -> Result<Node> {
    let mut m = Map::new();
    if !n.id.is_empty() {
        m.set("id", text(&n.id));
    }
    if !n.cluster.is_empty() {
        m.set("cluster", text(&n.cluster));
    }
    let metadata = string_metadata(n.metadata.as_ref(), "node.metadata")?;
    if !metadata.is_empty() {
        m.set("metadata", string_map(&metadata));
    }
    if let Some(l) = &n.locality {
        let mut loc = Map::new();
        for (key, value) in [
            ("region", &l.region),
            ("zone", &l.zone),
            ("sub_zone", &l.sub_zone),
        ] {
            if !value.is_empty() {
                loc.set(key, text(value));
            }
        }
        if !loc.is_empty() {
            m.set("locality", loc.build());
        }
    }
    for (field, set) in [
        ("user_agent_name", !n.user_agent_name.is_empty()),
        (
            "user_agent_version_type",
            n.user_agent_version_type.is_some(),
        ),
        ("extensions", !n.extensions.is_empty()),
        ("client_features", !n.client_features.is_empty()),
        ("dynamic_parameters", !n.dynamic_parameters.is_empty()),
    ] {
        ignored(set, "node", field);
    }
    #[allow(deprecated)]
    ignored(
        !n.listening_addresses.is_empty(),
        "node",
        "listening_addresses",
    );
    Ok(m.build())
}

fn stats_sink(s: &StatsSink, path: &str) -> Result<Node> {
    let Some(stats_sink::ConfigType::TypedConfig(any)) = &s.config_type else {
        return Err(Error::new(join(path, "typed_config"), "is required"));
    };
    let at = join(path, "typed_config");
    let (key, address, prefix) = if any.type_url == type_url("envoy.config.metrics.v3.StatsdSink") {
        let sink: StatsdSink = unpack(any, &any.type_url, &at)?;
        match sink.statsd_specifier {
            Some(StatsdSpecifier::Address(a)) => ("statsd", a, sink.prefix),
            Some(StatsdSpecifier::TcpClusterName(_)) => {
                return Err(Error::new(
                    join(&at, "tcp_cluster_name"),
                    "is not supported by Sluice (StatsD over UDP only)",
                ))
            }
            None => return Err(Error::new(join(&at, "address"), "is required")),
        }
    } else if any.type_url == type_url("envoy.config.metrics.v3.DogStatsdSink") {
        let sink: DogStatsdSink = unpack(any, &any.type_url, &at)?;
        ignored(
            sink.max_bytes_per_datagram.is_some(),
            &at,
            "max_bytes_per_datagram",
        );
        match sink.dog_statsd_specifier {
            Some(envoy_types::pb::envoy::config::metrics::v3::dog_statsd_sink::DogStatsdSpecifier::Address(a)) => {
                ("dog_statsd", a, sink.prefix)
            }
            None => return Err(Error::new(join(&at, "address"), "is required")),
        }
    } else {
        return Err(Error::new(
            at,
            format!(
                "stats sink {} is not supported by Sluice (StatsdSink and DogStatsdSink are)",
                any.type_url
            ),
        ));
    };
    let addr = address::address(Some(&address), &join(&at, "address"), Role::Endpoint)?;
    let mut m = Map::new();
    m.set("address", text(&addr));
    if !prefix.is_empty() {
        m.set("prefix", text(&prefix));
    }
    let mut sink = Map::new();
    sink.set(key, m.build());
    Ok(sink.build())
}

/// Static listeners and clusters, through the xDS translators.
fn static_resources(s: &StaticResources) -> Result<(Vec<Node>, Vec<Node>)> {
    if !s.secrets.is_empty() {
        return Err(Error::new(
            "static_resources.secrets",
            "is not supported by Sluice: name certificate files in the TLS contexts, or serve secrets over SDS",
        ));
    }
    let mut listeners = Vec::with_capacity(s.listeners.len());
    for (i, l) in s.listeners.iter().enumerate() {
        let path = index("static_resources.listeners", i);
        let mut l = l.clone();
        // Envoy names an unnamed static listener itself; the native config needs a name.
        if l.name.is_empty() {
            l.name = format!("listener_{i}");
        }
        let t = listener::listener(&l).map_err(|e| e.under(&path))?;
        if !t.rds.is_empty() {
            return Err(Error::new(
                path,
                format!(
                    "takes route configuration {:?} over RDS; Sluice takes RDS only for listeners from LDS: write the route_config inline",
                    t.rds[0]
                ),
            ));
        }
        listeners.push(t.node);
    }
    let mut clusters = Vec::with_capacity(s.clusters.len());
    for (i, c) in s.clusters.iter().enumerate() {
        let path = index("static_resources.clusters", i);
        let t = cluster::cluster(c).map_err(|e| e.under(&path))?;
        if t.eds.is_some() {
            return Err(Error::new(
                join(&path, "type"),
                "EDS clusters come from CDS in Sluice: a static cluster needs its endpoints (STATIC, STRICT_DNS or LOGICAL_DNS)",
            ));
        }
        clusters.push(t.node);
    }
    Ok((listeners, clusters))
}

/// Where LDS and CDS come from, as the native `xds` block (none when neither is set).
fn dynamic_resources(
    d: &DynamicResources,
    clusters: &[EnvoyCluster],
    ads: Option<&Server>,
) -> Result<Option<Node>> {
    let path = "dynamic_resources";
    for (field, set) in [
        ("lds_resources_locator", !d.lds_resources_locator.is_empty()),
        ("cds_resources_locator", !d.cds_resources_locator.is_empty()),
    ] {
        if set {
            return Err(Error::new(
                join(path, field),
                "is not supported by Sluice (xdstp:// names)",
            ));
        }
    }
    // Each of LDS and CDS: over ADS, or over a stream of its own to some server.
    let mut streams: Vec<(&str, Server, Option<&Duration>)> = Vec::new();
    for (field, source) in [("lds_config", &d.lds_config), ("cds_config", &d.cds_config)] {
        let Some(source) = source else { continue };
        let at = join(path, field);
        let stream = config_source(source, &at, ads, clusters)?;
        streams.push((field, stream, source.initial_fetch_timeout.as_ref()));
    }
    let Some((_, first, _)) = streams.first() else {
        return Ok(None);
    };
    if let Some((field, other, _)) = streams.iter().find(|(_, s, _)| s != first) {
        return Err(Error::new(
            join(path, field),
            format!(
                "Sluice takes LDS and CDS from one control plane over one kind of stream; this differs from the other ({} vs {})",
                other.describe(),
                first.describe()
            ),
        ));
    }
    let mut m = Map::new();
    m.set("address", text(&first.address));
    m.set("ads", boolean(first.ads));
    m.set("delta", boolean(first.delta));
    m.set("lds", boolean(d.lds_config.is_some()));
    m.set("cds", boolean(d.cds_config.is_some()));
    if let Some((field, _, Some(t))) = streams.iter().find(|(_, _, t)| t.is_some()) {
        m.set(
            "initial_fetch_timeout",
            duration(t, &join(&join(path, field), "initial_fetch_timeout"))?,
        );
    }
    Ok(Some(m.build()))
}

/// A control-plane stream: where, and which protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Server {
    address: String,
    ads: bool,
    delta: bool,
}

impl Server {
    fn describe(&self) -> String {
        format!(
            "{} {} at {}",
            if self.ads { "ADS" } else { "separate" },
            if self.delta {
                "delta"
            } else {
                "state of the world"
            },
            self.address
        )
    }
}

fn config_source(
    s: &ConfigSource,
    path: &str,
    ads: Option<&Server>,
    clusters: &[EnvoyCluster],
) -> Result<Server> {
    if !s.authorities.is_empty() {
        return Err(Error::new(
            join(path, "authorities"),
            "is not supported by Sluice",
        ));
    }
    version(s.resource_api_version, &join(path, "resource_api_version"))?;
    #[allow(deprecated)]
    match &s.config_source_specifier {
        Some(ConfigSourceSpecifier::Ads(_)) => ads.cloned().ok_or_else(|| {
            Error::new(join(path, "ads"), "needs dynamic_resources.ads_config")
        }),
        Some(ConfigSourceSpecifier::ApiConfigSource(api)) => {
            server(api, &join(path, "api_config_source"), clusters, false)
        }
        Some(ConfigSourceSpecifier::Path(_)) | Some(ConfigSourceSpecifier::PathConfigSource(_)) => Err(Error::new(
            path,
            "file-based config sources are not supported by Sluice (use `sluice run -c` with --watch, or a control plane)",
        )),
        Some(ConfigSourceSpecifier::Self_(_)) => Err(Error::new(join(path, "self"), "is not supported by Sluice")),
        None => Err(Error::new(path, "needs ads or api_config_source")),
    }
}

#[allow(deprecated)]
fn version(v: i32, path: &str) -> Result<()> {
    if v == ApiVersion::V2 as i32 {
        return Err(Error::new(path, "only the v3 xDS API is supported"));
    }
    Ok(())
}

/// A gRPC `ApiConfigSource`: the server it names and the protocol it asks for.
fn server(a: &ApiConfigSource, path: &str, clusters: &[EnvoyCluster], ads: bool) -> Result<Server> {
    let delta = match ApiType::try_from(a.api_type) {
        Ok(ApiType::Grpc) | Ok(ApiType::AggregatedGrpc) => false,
        Ok(ApiType::DeltaGrpc) | Ok(ApiType::AggregatedDeltaGrpc) => true,
        _ => {
            return Err(Error::new(
                join(path, "api_type"),
                "only GRPC and DELTA_GRPC are supported by Sluice",
            ))
        }
    };
    version(
        a.transport_api_version,
        &join(path, "transport_api_version"),
    )?;
    if !a.cluster_names.is_empty() {
        return Err(Error::new(
            join(path, "cluster_names"),
            "is for REST sources; use grpc_services",
        ));
    }
    if !a.config_validators.is_empty() {
        return Err(Error::new(
            join(path, "config_validators"),
            "is not supported by Sluice",
        ));
    }
    for (field, set) in [
        ("refresh_delay", a.refresh_delay.is_some()),
        ("request_timeout", a.request_timeout.is_some()),
        ("rate_limit_settings", a.rate_limit_settings.is_some()),
        (
            "set_node_on_first_message_only",
            a.set_node_on_first_message_only,
        ),
    ] {
        ignored(set, path, field);
    }
    let [service] = a.grpc_services.as_slice() else {
        return Err(Error::new(
            join(path, "grpc_services"),
            format!(
                "needs exactly one gRPC service, found {}",
                a.grpc_services.len()
            ),
        ));
    };
    let at = index(&join(path, "grpc_services"), 0);
    if !service.initial_metadata.is_empty() {
        return Err(Error::new(
            join(&at, "initial_metadata"),
            "is not supported by Sluice",
        ));
    }
    ignored(service.timeout.is_some(), &at, "timeout");
    ignored(service.retry_policy.is_some(), &at, "retry_policy");
    let address = match &service.target_specifier {
        Some(TargetSpecifier::EnvoyGrpc(g)) => cluster_address(
            &g.cluster_name,
            clusters,
            &join(&join(&at, "envoy_grpc"), "cluster_name"),
        )?,
        Some(TargetSpecifier::GoogleGrpc(g)) => {
            let target = join(&at, "google_grpc");
            if g.channel_credentials.is_some() || !g.call_credentials.is_empty() {
                return Err(Error::new(
                    target,
                    "credentials are not supported by Sluice (plaintext gRPC only)",
                ));
            }
            g.target_uri
                .strip_prefix("dns:///")
                .or_else(|| g.target_uri.strip_prefix("ipv4:"))
                .unwrap_or(&g.target_uri)
                .to_string()
        }
        None => return Err(Error::new(at, "needs envoy_grpc or google_grpc")),
    };
    Ok(Server {
        address,
        ads,
        delta,
    })
}

/// The address of the first endpoint of the static cluster `name`.
fn cluster_address(name: &str, clusters: &[EnvoyCluster], path: &str) -> Result<String> {
    let Some((i, c)) = clusters.iter().enumerate().find(|(_, c)| c.name == name) else {
        return Err(Error::new(
            path,
            format!("no static cluster named {name:?}"),
        ));
    };
    let cpath = index("static_resources.clusters", i);
    if c.transport_socket.is_some() {
        return Err(Error::new(
            join(&cpath, "transport_socket"),
            "TLS to the control plane is not supported by Sluice yet (plaintext gRPC only)",
        ));
    }
    let dns = matches!(
        &c.cluster_discovery_type,
        Some(ClusterDiscoveryType::Type(t))
            if *t == DiscoveryType::StrictDns as i32 || *t == DiscoveryType::LogicalDns as i32
    );
    let endpoint = c
        .load_assignment
        .as_ref()
        .and_then(|cla| cla.endpoints.first())
        .and_then(|group| group.lb_endpoints.first());
    let lb_path = join(&cpath, "load_assignment.endpoints[0].lb_endpoints[0]");
    use envoy_types::pb::envoy::config::endpoint::v3::lb_endpoint::HostIdentifier;
    let Some(HostIdentifier::Endpoint(e)) = endpoint.and_then(|e| e.host_identifier.as_ref())
    else {
        return Err(Error::new(
            lb_path,
            "the control plane's cluster needs an endpoint",
        ));
    };
    address::address(
        e.address.as_ref(),
        &join(&join(&lb_path, "endpoint"), "address"),
        if dns {
            Role::DnsEndpoint
        } else {
            Role::Endpoint
        },
    )
}

/// The line of the deepest node `path` (`a.b[2].c`) reaches in the YAML; 0 if none.
fn line_of(doc: &Node, path: &str) -> usize {
    let mut node = doc;
    let mut line = doc.line;
    for part in path.split('.') {
        let (key, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            let NodeKind::Map(entries) = &node.kind else {
                return line;
            };
            let Some((_, child)) = entries.iter().find(|(k, _)| k == key) else {
                return line;
            };
            node = child;
            line = node.line;
        }
        for i in indexes
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<usize>().ok())
        {
            let NodeKind::Seq(items) = &node.kind else {
                return line;
            };
            let Some(child) = items.get(i) else {
                return line;
            };
            node = child;
            line = node.line;
        }
    }
    line
}

#[cfg(test)]
mod tests;
