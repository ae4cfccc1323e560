//! The SDS server of a bootstrap. The native config has one (`sds: { address }`), where
//! Envoy names a config source in each `sds_secret_config`: the sources found in the static
//! TLS contexts must agree on one server. Without any, a static cluster named `sds-grpc`
//! (the one Istio's bootstrap gives its agent's SDS socket) is taken, so that secrets named
//! by resources from the control plane have a server too.

use envoy_types::pb::envoy::config::bootstrap::v3::bootstrap::StaticResources;
use envoy_types::pb::envoy::config::cluster::v3::Cluster as EnvoyCluster;
use envoy_types::pb::envoy::config::core::v3::transport_socket::ConfigType;
use envoy_types::pb::envoy::config::core::v3::{ConfigSource, TransportSocket};
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CommonTlsContext, DownstreamTlsContext, UpstreamTlsContext,
};
use prost::{Message, Name};
use sluice_config::yaml::Node;

use super::{cluster_address, config_source, Server};
use crate::translate::tree::{duration, index, join, text, unpack, Map};
use crate::translate::{Error, Result};

/// Istio's name for the cluster of its agent's SDS socket.
const ISTIO_SDS_CLUSTER: &str = "sds-grpc";

/// The native `sds` block, if the bootstrap has an SDS server.
pub(super) fn sds(statics: &StaticResources, ads: Option<&Server>) -> Result<Option<Node>> {
    let mut sources: Vec<(String, ConfigSource)> = Vec::new();
    for (i, l) in statics.listeners.iter().enumerate() {
        let lpath = index("static_resources.listeners", i);
        let chains = l
            .filter_chains
            .iter()
            .enumerate()
            .map(|(j, c)| (index(&join(&lpath, "filter_chains"), j), c))
            .chain(
                l.default_filter_chain
                    .iter()
                    .map(|c| (join(&lpath, "default_filter_chain"), c)),
            );
        for (cpath, chain) in chains {
            if let Some(ts) = &chain.transport_socket {
                let at = join(&cpath, "transport_socket");
                if let Some(common) = tls_context::<DownstreamTlsContext>(ts, &at)?
                    .and_then(|(c, p)| c.common_tls_context.map(|c| (c, p)))
                {
                    collect(&common.0, &common.1, &mut sources);
                }
            }
        }
    }
    for (i, c) in statics.clusters.iter().enumerate() {
        let cpath = index("static_resources.clusters", i);
        let sockets = c
            .transport_socket
            .iter()
            .map(|ts| (join(&cpath, "transport_socket"), ts))
            .chain(
                c.transport_socket_matches
                    .iter()
                    .enumerate()
                    .filter_map(|(j, m)| {
                        m.transport_socket.as_ref().map(|ts| {
                            (
                                join(
                                    &index(&join(&cpath, "transport_socket_matches"), j),
                                    "transport_socket",
                                ),
                                ts,
                            )
                        })
                    }),
            );
        for (at, ts) in sockets {
            if let Some(common) = tls_context::<UpstreamTlsContext>(ts, &at)?
                .and_then(|(c, p)| c.common_tls_context.map(|c| (c, p)))
            {
                collect(&common.0, &common.1, &mut sources);
            }
        }
    }
    let mut server: Option<(String, Server)> = None;
    let mut timeout = None;
    for (path, source) in &sources {
        let found = config_source(source, path, ads, &statics.clusters)?;
        if timeout.is_none() {
            if let Some(t) = &source.initial_fetch_timeout {
                timeout = Some(duration(t, &join(path, "initial_fetch_timeout"))?);
            }
        }
        match &server {
            None => server = Some((path.clone(), found)),
            Some((first, s)) if s.address != found.address => {
                return Err(Error::new(
                    path.clone(),
                    format!(
                        "Sluice takes secrets from one SDS server; this names {}, {first} names {}",
                        found.address, s.address
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let address = match server {
        Some((_, s)) => s.address,
        None => match statics
            .clusters
            .iter()
            .any(|c: &EnvoyCluster| c.name == ISTIO_SDS_CLUSTER)
        {
            true => cluster_address(ISTIO_SDS_CLUSTER, &statics.clusters, "static_resources")?,
            false => return Ok(None),
        },
    };
    let mut m = Map::new();
    m.set("address", text(&address));
    if let Some(t) = timeout {
        m.set("initial_fetch_timeout", t);
    }
    Ok(Some(m.build()))
}

/// The TLS context of a transport socket of type `M`, with the path of its common context.
fn tls_context<M: Message + Name + Default>(
    ts: &TransportSocket,
    path: &str,
) -> Result<Option<(M, String)>> {
    let Some(ConfigType::TypedConfig(any)) = &ts.config_type else {
        return Ok(None);
    };
    if any.type_url != M::type_url() {
        return Ok(None);
    }
    let at = join(path, "typed_config");
    let ctx: M = unpack(any, &M::type_url(), &at)?;
    Ok(Some((ctx, join(&at, "common_tls_context"))))
}

/// The SDS config sources a common TLS context names, with their paths.
fn collect(c: &CommonTlsContext, path: &str, out: &mut Vec<(String, ConfigSource)>) {
    for (i, s) in c.tls_certificate_sds_secret_configs.iter().enumerate() {
        if let Some(source) = &s.sds_config {
            let at = index(&join(path, "tls_certificate_sds_secret_configs"), i);
            out.push((join(&at, "sds_config"), source.clone()));
        }
    }
    match &c.validation_context_type {
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => {
            if let Some(source) = &s.sds_config {
                let at = join(path, "validation_context_sds_secret_config");
                out.push((join(&at, "sds_config"), source.clone()));
            }
        }
        Some(ValidationContextType::CombinedValidationContext(v)) => {
            if let Some(source) = v
                .validation_context_sds_secret_config
                .as_ref()
                .and_then(|s| s.sds_config.as_ref())
            {
                let at = join(
                    &join(path, "combined_validation_context"),
                    "validation_context_sds_secret_config",
                );
                out.push((join(&at, "sds_config"), source.clone()));
            }
        }
        _ => {}
    }
}
