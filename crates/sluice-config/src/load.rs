//! From a YAML file to a validated [`Config`], or to every error in it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::address::{Address, ServerAddress};
use crate::decode::{
    did_you_mean, in_range, index, join, keyword, seq, single_key, Cx, Decode, Diagnostic, Fields,
};
use crate::model::*;
use crate::registry::Registry;
use crate::tls::*;
use crate::units::parse_size;
use crate::yaml::{self, Node};

/// Every problem found in one config file.
#[derive(Debug, Clone)]
pub struct ConfigErrors {
    /// The file as the user named it.
    pub file: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if d.line == 0 {
                // Not about a line (the file could not be read at all).
                write!(f, "{}: {}", self.file, d.message)?;
            } else {
                write!(f, "{}:{d}", self.file)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Reads and validates a config file.
pub fn load_file(path: &Path, registry: &Registry) -> Result<Config, ConfigErrors> {
    let label = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        file: label.clone(),
        diagnostics: vec![Diagnostic {
            line: 0,
            path: String::new(),
            message: format!("cannot read config file: {e}"),
        }],
    })?;
    load_str(&src, &label, registry)
}

/// How a document is checked beyond its own content.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// References to clusters that are not in the document are accepted (requests to them
    /// fail at run time): with xDS, a route may arrive before the cluster it names.
    pub allow_unknown_clusters: bool,
}

/// Parses and validates config text; `file` names it in messages.
pub fn load_str(src: &str, file: &str, registry: &Registry) -> Result<Config, ConfigErrors> {
    let root = yaml::parse(src).map_err(|e| ConfigErrors {
        file: file.to_string(),
        diagnostics: vec![Diagnostic {
            line: e.line,
            path: String::new(),
            message: format!("YAML syntax error: {}", e.message),
        }],
    })?;
    load_tree(root, file, registry, LoadOptions::default())
}

/// Validates a document already parsed (or built: the xDS translation makes one). Given as
/// an `Arc`, the caller keeps it without a copy (to name the resources in errors).
pub fn load_tree(
    root: impl Into<Arc<Node>>,
    file: &str,
    registry: &Registry,
    options: LoadOptions,
) -> Result<Config, ConfigErrors> {
    let fail = |diagnostics| ConfigErrors {
        file: file.to_string(),
        diagnostics,
    };
    let root: Arc<Node> = root.into();
    let mut cx = Cx::default();
    let config = decode_config(&root, registry, &mut cx);
    check_names(&root, options, &mut cx);
    if let Some(config) = &config {
        validate(config, &mut cx);
    }
    match config {
        Some(config) if !cx.has_errors() => Ok(config),
        _ => {
            let mut diagnostics = cx.diagnostics;
            // Stable: errors on one line keep the order they were found in.
            diagnostics.sort_by_key(|d| d.line);
            Err(fail(diagnostics))
        }
    }
}

fn decode_config(root: &Arc<Node>, registry: &Registry, cx: &mut Cx) -> Option<Config> {
    let mut f = Fields::new(root, "", cx)?;
    let admin = match f.node("admin") {
        Some(node) => decode_admin(node, "admin", cx),
        None => Some(default_admin()),
    };
    let workers = f.or("workers", default_workers(), cx).map(usize::from);
    if let Some(0) = workers {
        let line = f.line_of("workers");
        cx.error(line, "workers", "must be at least 1");
    }
    let worker_mode = f.or("worker_mode", WorkerMode::WorkStealing, cx);
    let drain_timeout = f.or("drain_timeout", Duration::from_secs(15), cx);
    let listeners = match f.node("listeners") {
        Some(node) => seq(node, "listeners", cx, |n, p, cx| {
            decode_listener(n, p, registry, cx)
        }),
        None => Some(Vec::new()),
    };
    let route_configs = f.or("route_configs", Vec::new(), cx);
    let clusters = f.or("clusters", Vec::new(), cx);
    let node = match f.node("node") {
        Some(n) => decode_node(n, "node", cx),
        None => Some(NodeConfig::default()),
    };
    let sds = match f.node("sds") {
        Some(n) => decode_sds(n, "sds", cx).map(Some),
        None => Some(None),
    };
    let xds = match f.node("xds") {
        Some(n) => decode_xds(n, "xds", cx).map(Some),
        None => Some(None),
    };
    let tracing = match (f.node("tracing"), &node) {
        (Some(n), Some(node)) => {
            let service = match node.cluster.as_str() {
                "" => crate::tracing::DEFAULT_SERVICE_NAME,
                cluster => cluster,
            };
            crate::tracing::decode(n, "tracing", service, cx).map(Some)
        }
        (Some(_), None) => None,
        (None, _) => {
            for (line, path) in std::mem::take(&mut cx.tracing_uses) {
                cx.error(
                    line,
                    &path,
                    "tracing is on here, but there is no top-level tracing: { otlp } to export spans to",
                );
            }
            Some(None)
        }
    };
    let stats_flush_interval = f.or(
        "stats_flush_interval",
        crate::stats_sinks::DEFAULT_STATS_FLUSH_INTERVAL,
        cx,
    );
    let flush_line = f.line_of("stats_flush_interval");
    let stats_sinks = match f.node("stats_sinks") {
        Some(n) => crate::stats_sinks::decode_sinks(n, "stats_sinks", cx),
        None => Some(Vec::new()),
    };
    f.finish(cx);
    if stats_flush_interval.is_some_and(|d| d < Duration::from_millis(10)) {
        cx.error(flush_line, "stats_flush_interval", "must be at least 10ms");
    }
    if let (Some(None), Some(listeners)) = (&sds, &listeners) {
        let clusters: &[crate::ClusterConfig] = clusters.as_deref().unwrap_or_default();
        for r in listeners
            .iter()
            .flat_map(|l| &l.filter_chains)
            .filter_map(|c| c.tls.as_deref())
            .flat_map(|t| t.sds_refs())
            .chain(
                clusters
                    .iter()
                    .filter_map(|c| c.tls.as_ref())
                    .flat_map(|t| t.sds_refs()),
            )
        {
            cx.error(
                r.line,
                &r.path,
                format!(
                    "secret \"{}\" comes from SDS, but there is no top-level sds: {{ address }}",
                    r.name
                ),
            );
        }
    }
    Some(Config {
        node: node?,
        sds: sds?,
        xds: xds?,
        tracing: tracing?,
        admin: admin?,
        workers: workers?,
        worker_mode: worker_mode?,
        drain_timeout: drain_timeout?,
        listeners: listeners?,
        route_configs: route_configs?,
        clusters: clusters?,
        document: root.clone(),
        stats_flush_interval: stats_flush_interval?,
        stats_sinks: stats_sinks?,
    })
}

fn decode_node(node: &Node, path: &str, cx: &mut Cx) -> Option<NodeConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let id = f.or("id", DEFAULT_NODE_ID.to_string(), cx);
    let id_line = f.line_of("id");
    let cluster = f.or("cluster", String::new(), cx);
    let metadata = match f.node("metadata") {
        None => Some(Vec::new()),
        Some(n) => crate::cluster_decode::string_map(n, &join(path, "metadata"), cx),
    };
    let locality = match f.node("locality") {
        Some(n) => decode_locality(n, &join(path, "locality"), cx),
        None => Some(Locality::default()),
    };
    f.finish(cx);
    if id.as_deref() == Some("") {
        cx.error(id_line, &join(path, "id"), "cannot be empty");
        return None;
    }
    Some(NodeConfig {
        id: id?,
        cluster: cluster?,
        metadata: metadata?,
        locality: locality?,
    })
}

fn decode_locality(node: &Node, path: &str, cx: &mut Cx) -> Option<Locality> {
    let mut f = Fields::new(node, path, cx)?;
    let region = f.or("region", String::new(), cx);
    let zone = f.or("zone", String::new(), cx);
    let sub_zone = f.or("sub_zone", String::new(), cx);
    f.finish(cx);
    Some(Locality {
        region: region?,
        zone: zone?,
        sub_zone: sub_zone?,
    })
}

fn decode_xds(node: &Node, path: &str, cx: &mut Cx) -> Option<XdsConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let address = f.required::<ServerAddress>("address", cx);
    let ads = f.or("ads", true, cx);
    let delta = f.or("delta", false, cx);
    let lds = f.or("lds", true, cx);
    let cds = f.or("cds", true, cx);
    let timeout = f.or("initial_fetch_timeout", DEFAULT_INITIAL_FETCH_TIMEOUT, cx);
    f.finish(cx);
    Some(XdsConfig {
        address: address?,
        ads: ads?,
        delta: delta?,
        lds: lds?,
        cds: cds?,
        initial_fetch_timeout: timeout?,
    })
}

fn decode_sds(node: &Node, path: &str, cx: &mut Cx) -> Option<SdsConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let address = f.required::<ServerAddress>("address", cx);
    let timeout = f.or("initial_fetch_timeout", DEFAULT_INITIAL_FETCH_TIMEOUT, cx);
    f.finish(cx);
    Some(SdsConfig {
        address: address?,
        initial_fetch_timeout: timeout?,
    })
}

fn default_admin() -> AdminConfig {
    AdminConfig {
        address: Address::parse(DEFAULT_ADMIN_ADDRESS).unwrap_or(Address::Tcp(
            std::net::SocketAddr::from(([127, 0, 0, 1], 15000)),
        )),
    }
}

fn default_workers() -> u16 {
    std::thread::available_parallelism().map_or(1, |n| u16::try_from(n.get()).unwrap_or(u16::MAX))
}

fn decode_admin(node: &Node, path: &str, cx: &mut Cx) -> Option<AdminConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let address = f.or("address", default_admin().address, cx);
    let line = f.line_of("address");
    f.finish(cx);
    let address = address?;
    if address.as_tcp().is_none() {
        cx.error(
            line,
            &join(path, "address"),
            "the admin address must be host:port",
        );
        return None;
    }
    Some(AdminConfig { address })
}

fn decode_listener(
    node: &Node,
    path: &str,
    registry: &Registry,
    cx: &mut Cx,
) -> Option<ListenerConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let name = f.required::<String>("name", cx);
    let address = f.required::<Address>("address", cx);
    let reuse_port = f.or("reuse_port", false, cx);
    let backlog = f.or("backlog", 1024u32, cx);
    let socket_mode = f.optional::<FileMode>("socket_mode", cx);
    let listener_filters = f.or("listener_filters", Vec::<ListenerFilter>::new(), cx);
    let listener_filters_timeout =
        f.optional::<std::time::Duration>("listener_filters_timeout", cx);
    let continue_on_timeout = f.or("continue_on_listener_filters_timeout", false, cx);
    for key in [
        "listener_filters_timeout",
        "continue_on_listener_filters_timeout",
    ] {
        let without_filters = listener_filters.as_ref().is_some_and(Vec::is_empty);
        if let (Some(n), true) = (f.node(key), without_filters) {
            cx.error(
                n.line,
                &join(path, key),
                "applies only with listener_filters (e.g. [tls_inspector])",
            );
        }
    }
    let short_filters = f.node("filters");
    let short_tls = f.node("tls");
    let chains_node = f.node("filter_chains");
    let filter_chains = match (chains_node, short_filters) {
        (Some(n), None) => {
            if let Some(t) = short_tls {
                cx.error(
                    t.line,
                    &join(path, "tls"),
                    "with filter_chains, put tls: inside the chain it applies to",
                );
            }
            seq(n, &join(path, "filter_chains"), cx, |n, p, cx| {
                decode_filter_chain(n, p, registry, cx)
            })
        }
        (Some(n), Some(_)) => {
            cx.error(
                n.line,
                path,
                "has both filters and filter_chains: use filter_chains alone (or filters, with tls, as the short form of one chain)",
            );
            None
        }
        (None, Some(n)) => {
            let filters = seq(n, &join(path, "filters"), cx, |n, p, cx| {
                decode_network_filter(n, p, registry, cx)
            });
            let tls = match short_tls {
                Some(t) => TlsConfig::decode(t, &join(path, "tls"), cx).map(|t| Some(Arc::new(t))),
                None => Some(None),
            };
            match (filters, tls) {
                (Some(filters), Some(tls)) => Some(vec![FilterChainConfig {
                    matcher: FilterChainMatch::default(),
                    tls,
                    filters,
                    path: path.to_string(),
                    line: node.line,
                }]),
                _ => None,
            }
        }
        (None, None) => {
            cx.error(f.line(), path, "missing required field \"filters\"");
            None
        }
    };
    let access_log = f.or("access_log", Vec::new(), cx);
    let mode_line = f.node("socket_mode").map(|n| n.line);
    f.finish(cx);
    let socket_mode = socket_mode.ok()?.map(|m| m.0);
    if let (Some(line), Some(Address::Tcp(_))) = (mode_line, &address) {
        cx.error(
            line,
            &join(path, "socket_mode"),
            "only applies to unix: listener addresses",
        );
    }
    Some(ListenerConfig {
        name: name?,
        address: address?,
        reuse_port: reuse_port?,
        backlog: backlog?,
        socket_mode,
        listener_filters: listener_filters?,
        listener_filters_timeout: listener_filters_timeout.ok()?,
        continue_on_listener_filters_timeout: continue_on_timeout?,
        filter_chains: filter_chains?,
        access_log: access_log?,
        line: node.line,
    })
}

fn decode_filter_chain(
    node: &Node,
    path: &str,
    registry: &Registry,
    cx: &mut Cx,
) -> Option<FilterChainConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let matcher = match f.node("match") {
        Some(n) => decode_chain_match(n, &join(path, "match"), cx),
        None => Some(FilterChainMatch::default()),
    };
    let tls = f
        .optional::<TlsConfig>("tls", cx)
        .map(|t| t.map(Arc::new))
        .ok();
    let filters = match f.node("filters") {
        Some(n) => seq(n, &join(path, "filters"), cx, |n, p, cx| {
            decode_network_filter(n, p, registry, cx)
        }),
        None => {
            cx.error(f.line(), path, "missing required field \"filters\"");
            None
        }
    };
    f.finish(cx);
    Some(FilterChainConfig {
        matcher: matcher?,
        tls: tls?,
        filters: filters?,
        path: path.to_string(),
        line: node.line,
    })
}

fn decode_chain_match(node: &Node, path: &str, cx: &mut Cx) -> Option<FilterChainMatch> {
    let mut f = Fields::new(node, path, cx)?;
    let destination_port = f.optional::<u16>("destination_port", cx);
    let prefix_ranges = f.or("prefix_ranges", Vec::<crate::Cidr>::new(), cx);
    let server_names = f.or("server_names", Vec::<String>::new(), cx);
    let transport_protocol = f.optional::<TransportProtocol>("transport_protocol", cx);
    let application_protocols = f.or("application_protocols", Vec::<String>::new(), cx);
    let source_prefix_ranges = f.or("source_prefix_ranges", Vec::<crate::Cidr>::new(), cx);
    let source_ports = f.or("source_ports", Vec::<u16>::new(), cx);
    f.finish(cx);
    let server_names: Vec<String> = server_names?
        .into_iter()
        .map(|n| n.to_ascii_lowercase())
        .collect();
    for (i, n) in server_names.iter().enumerate() {
        let bare = n.strip_prefix("*.").unwrap_or(n);
        if bare.is_empty() || bare.contains('*') {
            cx.error(
                node.line,
                &index(&join(path, "server_names"), i),
                format!("\"{n}\" is not a host name or a leading wildcard such as *.example.com"),
            );
        }
    }
    Some(FilterChainMatch {
        destination_port: destination_port.ok()?,
        prefix_ranges: prefix_ranges?,
        server_names,
        transport_protocol: transport_protocol.ok()?,
        application_protocols: application_protocols?,
        source_prefix_ranges: source_prefix_ranges?,
        source_ports: source_ports?,
    })
}

/// A Unix file mode written in octal, e.g. `"0660"` or `660`.
struct FileMode(u32);

impl Decode for FileMode {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let text = String::decode(node, path, cx)?;
        let digits = text.trim_start_matches("0o");
        match u32::from_str_radix(digits, 8) {
            Ok(m) if m <= 0o777 => Some(FileMode(m)),
            _ => {
                cx.error(
                    node.line,
                    path,
                    format!(
                        "invalid file mode \"{text}\": expected octal permissions such as \"0660\""
                    ),
                );
                None
            }
        }
    }
}

fn decode_network_filter(
    node: &Node,
    path: &str,
    registry: &Registry,
    cx: &mut Cx,
) -> Option<NetworkFilterSpec> {
    let (name, body) = single_key(node, path, cx)?;
    let Some(decoder) = registry.network_filter(name) else {
        let hint = did_you_mean(name, registry.network_filter_names());
        let known: Vec<&str> = registry.network_filter_names().collect();
        cx.error(
            node.line,
            path,
            format!(
                "unknown network filter \"{name}\"{hint}; known filters: {}",
                known.join(", ")
            ),
        );
        return None;
    };
    let config = decoder(body, &join(path, name), cx)?;
    Some(NetworkFilterSpec {
        name: name.to_string(),
        config,
    })
}

impl Decode for CommonHttpProtocolOptions {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let idle = f.or(
            "idle_timeout",
            CommonHttpProtocolOptions::default().idle_timeout,
            cx,
        );
        let idle_line = f.line_of("idle_timeout");
        let max_requests = f.optional::<u32>("max_requests_per_connection", cx);
        let max_requests_line = f.line_of("max_requests_per_connection");
        let max_idle = f.optional::<u32>("max_idle_connections", cx);
        f.finish(cx);
        let mut ok = true;
        if let Some(idle) = idle.filter(|d| *d < Duration::from_millis(100)) {
            cx.error(
                idle_line,
                &join(path, "idle_timeout"),
                format!("must be at least 100ms, found {idle:?}"),
            );
            ok = false;
        }
        if let Ok(Some(0)) = max_requests {
            cx.error(
                max_requests_line,
                &join(path, "max_requests_per_connection"),
                "must be at least 1",
            );
            ok = false;
        }
        let options = CommonHttpProtocolOptions {
            idle_timeout: idle?,
            max_requests_per_connection: max_requests.ok()?,
            max_idle_connections: max_idle.ok()?,
        };
        ok.then_some(options)
    }
}

impl Decode for Http2ProtocolOptions {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let max = f.optional::<u32>("max_concurrent_streams", cx);
        let max_line = f.line_of("max_concurrent_streams");
        let keepalive = f.optional::<Keepalive>("connection_keepalive", cx);
        f.finish(cx);
        let max = match max.ok()? {
            None => None,
            Some(m) => Some(in_range(
                Some(m),
                1..=MAX_H2_STREAMS,
                max_line,
                &join(path, "max_concurrent_streams"),
                cx,
            )?),
        };
        Some(Http2ProtocolOptions {
            max_concurrent_streams: max,
            connection_keepalive: keepalive.ok()?,
        })
    }
}

impl Decode for Keepalive {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let interval = f.required::<Duration>("interval", cx);
        let interval_line = f.line_of("interval");
        let timeout = f.required::<Duration>("timeout", cx);
        let timeout_line = f.line_of("timeout");
        f.finish(cx);
        let (interval, timeout) = (interval?, timeout?);
        let ok = crate::decode::durations_at_least(
            path,
            Duration::from_millis(10),
            &[
                (interval, interval_line, "interval"),
                (timeout, timeout_line, "timeout"),
            ],
            cx,
        );
        ok.then_some(Keepalive { interval, timeout })
    }
}

/// The largest stream count HTTP/2 can express (stream ids are 31 bits).
const MAX_H2_STREAMS: u32 = (1 << 31) - 1;

impl Decode for UpstreamProtocol {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "protocol",
            &UpstreamProtocol::NAMES,
            UpstreamProtocol::from_name,
        )
    }
}

impl Decode for WorkerMode {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "worker_mode",
            &WorkerMode::NAMES,
            WorkerMode::from_name,
        )
    }
}

impl Decode for RouteConfigRef {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let r = RouteConfigRef {
            name: String::decode(node, path, cx)?,
            path: path.to_string(),
            line: node.line,
        };
        cx.route_config_refs.push(r.clone());
        Some(r)
    }
}

impl Decode for ClusterRef {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let r = ClusterRef {
            name: String::decode(node, path, cx)?,
            path: path.to_string(),
            line: node.line,
        };
        cx.cluster_refs.push(r.clone());
        Some(r)
    }
}

/// A byte size written as `64KiB`, `1MiB` or a plain number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl Decode for ByteSize {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let text = String::decode(node, path, cx)?;
        match parse_size(&text) {
            Ok(n) => Some(ByteSize(n)),
            Err(e) => {
                cx.error(node.line, path, e);
                None
            }
        }
    }
}

/// The `name` of each item of a top-level list, read from the raw tree so that the checks
/// below run even when other fields of those items failed to decode.
fn raw_names<'n>(root: &'n Node, list: &str) -> Vec<(usize, &'n str, usize)> {
    let yaml::NodeKind::Map(entries) = &root.kind else {
        return Vec::new();
    };
    let Some((
        _,
        yaml::Node {
            kind: yaml::NodeKind::Seq(items),
            ..
        },
    )) = entries.iter().find(|(k, _)| k == list)
    else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let yaml::NodeKind::Map(fields) = &item.kind else {
                return None;
            };
            let (_, name) = fields.iter().find(|(k, _)| k == "name")?;
            Some((i, name.as_scalar()?, name.line))
        })
        .collect()
}

/// Duplicate listener and cluster names, and references to clusters that do not exist.
fn check_names(root: &Node, options: LoadOptions, cx: &mut Cx) {
    for (list, what) in [
        ("listeners", "listener"),
        ("clusters", "cluster"),
        ("route_configs", "route config"),
    ] {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, name, line) in raw_names(root, list) {
            if let Some(first) = seen.insert(name, line) {
                cx.error(
                    line,
                    &join(&index(list, i), "name"),
                    format!("duplicate {what} name \"{name}\" (first defined on line {first})"),
                );
            }
        }
    }
    let mut cluster_refs = std::mem::take(&mut cx.cluster_refs);
    if options.allow_unknown_clusters {
        cluster_refs.clear();
    }
    let cluster_refs = cluster_refs
        .into_iter()
        .map(|r| (r.name, r.path, r.line, "clusters", "cluster"));
    let route_refs = std::mem::take(&mut cx.route_config_refs)
        .into_iter()
        .map(|r| (r.name, r.path, r.line, "route_configs", "route config"));
    let clusters = raw_names(root, "clusters");
    let route_configs = raw_names(root, "route_configs");
    let cluster_set: HashSet<&str> = clusters.iter().map(|(_, n, _)| *n).collect();
    let route_set: HashSet<&str> = route_configs.iter().map(|(_, n, _)| *n).collect();
    for (name, path, line, list, what) in cluster_refs.chain(route_refs) {
        let (defined, set) = if list == "clusters" {
            (&clusters, &cluster_set)
        } else {
            (&route_configs, &route_set)
        };
        if !set.contains(name.as_str()) {
            let hint = did_you_mean(&name, defined.iter().map(|(_, n, _)| *n));
            cx.error(line, &path, format!("unknown {what} \"{name}\"{hint}"));
        }
    }
}

/// Checks that need decoded values: address clashes and chain shape.
fn validate(config: &Config, cx: &mut Cx) {
    let mut addresses: HashMap<&Address, &str> = HashMap::new();
    for (i, l) in config.listeners.iter().enumerate() {
        let path = index("listeners", i);
        if let Some(other) = addresses.insert(&l.address, &l.name) {
            cx.error(
                l.line,
                &join(&path, "address"),
                format!(
                    "address {} is already used by listener \"{other}\"",
                    l.address
                ),
            );
        }
        check_chains(l, &path, cx);
    }
}

/// Chains of a listener: told apart by their matches, and the matches usable (the TLS
/// inspector is what sees SNI and the transport); each needs one terminal filter, last.
fn check_chains(l: &ListenerConfig, path: &str, cx: &mut Cx) {
    let inspector = l.listener_filters.contains(&ListenerFilter::TlsInspector);
    if l.filter_chains.is_empty() {
        cx.error(
            l.line,
            &join(path, "filter_chains"),
            "needs at least one chain",
        );
    }
    for (i, chain) in l.filter_chains.iter().enumerate() {
        check_chain(chain, cx);
        let m = &chain.matcher;
        if m.needs_inspector() && !inspector {
            cx.error(
                chain.line,
                &join(&chain.path, "match"),
                "matching on server_names, transport_protocol or application_protocols needs listener_filters: [tls_inspector]",
            );
        }
        if chain.tls.is_some() && m.transport_protocol == Some(TransportProtocol::RawBuffer) {
            cx.error(
                chain.line,
                &join(&chain.path, "tls"),
                "a raw_buffer chain cannot terminate TLS",
            );
        } else if m.transport_protocol == Some(TransportProtocol::RawBuffer) && m.names_tls() {
            cx.error(
                chain.line,
                &join(&chain.path, "match"),
                "server_names and application_protocols come from a TLS ClientHello: a raw_buffer chain never sees one",
            );
        }
        let same = |other: &FilterChainConfig| {
            fn sorted<T: Ord + Clone>(v: &[T]) -> Vec<T> {
                let mut v = v.to_vec();
                v.sort();
                v
            }
            let (a, b) = (&other.matcher, m);
            sorted(&a.server_names) == sorted(&b.server_names)
                && sorted(&a.application_protocols) == sorted(&b.application_protocols)
                && sorted(&a.source_ports) == sorted(&b.source_ports)
                && sorted(&a.prefix_ranges) == sorted(&b.prefix_ranges)
                && sorted(&a.source_prefix_ranges) == sorted(&b.source_prefix_ranges)
                && a.destination_port == b.destination_port
                && a.transport_protocol == b.transport_protocol
                // With the inspector, TLS and plaintext clients go to different chains;
                // without it, every client goes to the one chain.
                && (!inspector || other.takes_tls() == chain.takes_tls())
        };
        if let Some(j) = l.filter_chains[..i].iter().position(same) {
            cx.error(
                chain.line,
                &chain.path,
                format!("matches the same connections as filter_chains[{j}]"),
            );
        }
    }
}

/// A chain needs exactly one terminal filter, and it must come last.
fn check_chain(chain: &FilterChainConfig, cx: &mut Cx) {
    let path = join(&chain.path, "filters");
    let filters = &chain.filters;
    match filters.iter().position(|f| f.config.is_terminal()) {
        None => cx.error(
            chain.line,
            &path,
            "needs a terminal filter (such as tcp_proxy) to handle connections",
        ),
        Some(t) if t + 1 != filters.len() => cx.error(
            chain.line,
            &index(&path, t + 1),
            format!(
                "filter \"{}\" comes after the terminal filter \"{}\" and would never run",
                filters[t + 1].name,
                filters[t].name
            ),
        ),
        Some(_) => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn admin(yaml: &str) -> Result<std::net::SocketAddr, String> {
        load_str(yaml, "t.yaml", &Registry::default())
            .map(|c| c.admin.address.as_tcp().unwrap())
            .map_err(|e| e.to_string())
    }

    /// The admin API can stop and reconfigure the proxy: loopback unless the file says so.
    #[test]
    fn admin_binds_loopback_unless_told_otherwise() {
        let loopback = "127.0.0.1:15000".parse().unwrap();
        assert_eq!(admin(""), Ok(loopback));
        assert_eq!(admin("admin:"), Ok(loopback));
        assert_eq!(admin("admin: {}"), Ok(loopback));
        assert_eq!(
            admin("admin: { address: \"0.0.0.0:9901\" }"),
            Ok("0.0.0.0:9901".parse().unwrap())
        );
        assert!(admin("admin: { address: \"unix:/tmp/a\" }")
            .unwrap_err()
            .contains("admin.address"));
    }

    #[test]
    fn xds_and_node_identity_decode_with_defaults_and_located_errors() {
        let c = load_str(
            "xds: { address: \"unix:/run/xds.sock\" }\nnode: { id: n, metadata: { team: pay }, locality: { zone: z1 } }",
            "t.yaml",
            &Registry::default(),
        )
        .unwrap();
        let x = c.xds.unwrap();
        assert!(x.ads && !x.delta && x.lds && x.cds);
        assert_eq!(x.initial_fetch_timeout, DEFAULT_INITIAL_FETCH_TIMEOUT);
        assert_eq!(c.node.metadata, [("team".to_string(), "pay".to_string())]);
        assert_eq!(c.node.locality.zone, "z1");

        let e = load_str(
            "xds: { ads: maybe, initial_fetch_timeout: 5 }\nnode: { locality: { zon: z } }",
            "t.yaml",
            &Registry::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("xds: missing required field \"address\""), "{e}");
        assert!(e.contains("xds.ads: expected true or false"), "{e}");
        assert!(e.contains("xds.initial_fetch_timeout"), "{e}");
        assert!(e.contains("node.locality.zon: unknown field"), "{e}");
    }
}
