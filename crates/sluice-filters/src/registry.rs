//! The table of network filters: name -> (how to decode its config, how to build it).
//!
//! Adding a filter means adding one row here and one module; nothing else names filters.

use std::any::Any;
use std::sync::Arc;

use sluice_config::registry::NetworkFilterDecoder;
use sluice_config::{
    Config, ListenerConfig, ListenerFilter, NetworkFilterConfig, NetworkFilterSpec, Registry,
};
use sluice_net::{
    Chain, ConnectionHandler, FilterChain, ListenerChains, NetworkFilter, Secrets, TlsServer,
};
use sluice_upstream::ClusterManager;

use crate::{http_proxy, rbac, rpc_proxy, tcp_proxy};

/// What a built filter is: a connection-level check, or the terminal handler.
pub enum Built {
    Filter(Arc<dyn NetworkFilter>),
    Handler(Arc<dyn ConnectionHandler>),
}

/// Shared runtime state filters are built against.
#[derive(Clone)]
pub struct BuildContext {
    pub config: Arc<Config>,
    pub clusters: Arc<ClusterManager>,
    /// HTTP connection pools per upstream host, shared by every listener and worker.
    pub http_upstreams: Arc<http_proxy::Upstreams>,
    /// The named route tables, shared by the proxies that name them.
    pub routes: Arc<crate::routes::RouteTables>,
    /// Certificates and CA bundles (files or SDS), shared by every chain that names them.
    pub secrets: Arc<Secrets>,
    /// The listener whose chain is being built (names counters); set by [`build_chain`].
    pub listener: Arc<str>,
    /// What hears about the listener's finished requests (access logs, tracing).
    pub observers: Arc<sluice_observe::Observers>,
    /// The OTLP exporter's queue, when the config has a top-level `tracing` block (set by
    /// the binary, which starts the exporter).
    pub spans: Option<Arc<dyn sluice_observe::trace::SpanSink>>,
}

impl BuildContext {
    /// Fails when a cluster cannot be built (its TLS settings), naming the cluster.
    pub fn new(config: Arc<Config>) -> Result<Self, String> {
        let secrets = Secrets::new();
        let clusters = Arc::new(ClusterManager::new(&config, &secrets)?);
        let http_upstreams = Arc::new(http_proxy::Upstreams::new(&clusters));
        let routes = Arc::new(crate::routes::RouteTables::default());
        routes.commit(crate::routes::RouteTables::compile(&config)?);
        Ok(BuildContext {
            config,
            clusters,
            http_upstreams,
            routes,
            secrets,
            listener: Arc::from(""),
            observers: Arc::default(),
            spans: None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("listener \"{listener}\": filter \"{filter}\": {message}")]
pub struct BuildError {
    pub listener: String,
    pub filter: String,
    pub message: String,
}

pub type Builder = fn(&dyn Any, &BuildContext) -> Result<Built, String>;

pub struct NetworkFilterKind {
    pub name: &'static str,
    pub decode: NetworkFilterDecoder,
    pub build: Builder,
}

pub static NETWORK_FILTERS: &[NetworkFilterKind] = &[
    tcp_proxy::KIND,
    http_proxy::KIND,
    rpc_proxy::KIND,
    rbac::KIND,
];

/// The config registry with every built-in filter's decoder.
pub fn config_registry() -> Registry {
    let mut r = Registry::default();
    for kind in NETWORK_FILTERS {
        r.register_network_filter(kind.name, kind.decode);
    }
    r
}

/// Builds a listener's filter chains, with their TLS, from its (validated) config.
pub fn build_listener(
    listener: &ListenerConfig,
    ctx: &BuildContext,
) -> Result<ListenerChains, BuildError> {
    let observers = sluice_observe::access_log::observers(&listener.name, &listener.access_log)
        .map_err(|message| BuildError {
            listener: listener.name.clone(),
            filter: "access_log".into(),
            message,
        })?;
    let observers = Arc::new(sluice_observe::Observers::new(observers));
    let ctx = &BuildContext {
        observers: observers.clone(),
        ..ctx.clone()
    };
    let mut chains = Vec::with_capacity(listener.filter_chains.len());
    for chain in &listener.filter_chains {
        let tls = match &chain.tls {
            Some(tls) => Some(Arc::new(TlsServer::build(tls, &ctx.secrets).map_err(
                |message| BuildError {
                    listener: listener.name.clone(),
                    filter: format!("{}.tls", chain.path),
                    message,
                },
            )?)),
            None => None,
        };
        chains.push(Chain {
            matcher: chain.matcher.clone(),
            tls,
            filters: build_chain(&listener.name, &chain.filters, ctx)?,
        });
    }
    let inspector = listener
        .listener_filters
        .contains(&ListenerFilter::TlsInspector);
    let scope = sluice_stats::Scope::listener(&listener.address.to_string());
    Ok(ListenerChains::new(chains, inspector, &scope)
        .with_inspector_timeout(
            listener.listener_filters_timeout,
            listener.continue_on_listener_filters_timeout,
        )
        .with_observers(observers))
}

/// Builds one filter chain's network filters.
pub fn build_chain(
    listener: &str,
    specs: &[NetworkFilterSpec],
    ctx: &BuildContext,
) -> Result<FilterChain, BuildError> {
    let ctx = &BuildContext {
        listener: Arc::from(listener),
        ..ctx.clone()
    };
    let mut filters = Vec::new();
    let mut handler = None;
    for spec in specs {
        let err = |message: String| BuildError {
            listener: listener.to_string(),
            filter: spec.name.clone(),
            message,
        };
        let kind = NETWORK_FILTERS
            .iter()
            .find(|k| k.name == spec.name)
            .ok_or_else(|| err("not a registered filter".into()))?;
        let config: &dyn NetworkFilterConfig = spec.config.as_ref();
        match (kind.build)(config as &dyn Any, ctx).map_err(err)? {
            Built::Filter(f) => filters.push(f),
            Built::Handler(h) => handler = Some(h),
        }
    }
    let handler = handler.ok_or_else(|| BuildError {
        listener: listener.to_string(),
        filter: String::new(),
        message: "no terminal filter".into(),
    })?;
    Ok(FilterChain { filters, handler })
}
