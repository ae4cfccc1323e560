//! A received resource, decoded and translated, and the dynamic config the accepted ones
//! make together (with Envoy's warming: a listener waits for its route configs, an EDS
//! cluster for its endpoints, each until `initial_fetch_timeout`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime};

use envoy_types::pb::envoy::config::cluster::v3::Cluster as EnvoyCluster;
use envoy_types::pb::envoy::config::endpoint::v3::ClusterLoadAssignment;
use envoy_types::pb::envoy::config::listener::v3::Listener as EnvoyListener;
use envoy_types::pb::envoy::config::route::v3::RouteConfiguration;
use envoy_types::pb::google::protobuf::Any;
use prost::Message;
use sluice_config::yaml::Node;

use crate::kind::Kind;
use crate::translate::{self, cluster, endpoint, listener, route, tree};

/// One resource as translated.
#[derive(Debug)]
pub enum Translated {
    Listener(listener::Listener),
    Route(Node),
    Cluster(cluster::Cluster),
    Endpoints(endpoint::Endpoints),
}

/// An accepted resource. Cloned into each candidate set; the translation is shared.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub version: String,
    /// A hash of the resource's bytes: an unchanged resource is not translated again.
    pub digest: u64,
    pub updated: SystemTime,
    pub value: std::sync::Arc<Translated>,
}

/// Decodes and translates one resource; the error names the resource when it can.
pub fn translate(kind: Kind, any: &Any) -> Result<(String, Translated), String> {
    if any.type_url != kind.type_url() {
        return Err(format!(
            "resource of type {} in a {} response",
            any.type_url,
            kind.type_url()
        ));
    }
    let bytes = any.value.as_slice();
    let bad = |e: prost::DecodeError| format!("cannot decode a {}: {e}", kind.noun());
    let named = |name: &str, e: translate::Error| format!("{} \"{name}\": {e}", kind.noun());
    match kind {
        Kind::Listener => {
            let l = EnvoyListener::decode(bytes).map_err(bad)?;
            let t = listener::listener(&l).map_err(|e| named(&l.name, e))?;
            Ok((l.name, Translated::Listener(t)))
        }
        Kind::Route => {
            let rc = RouteConfiguration::decode(bytes).map_err(bad)?;
            if rc.name.is_empty() {
                return Err("a route configuration without a name".into());
            }
            let t = route::route_configuration(&rc, true).map_err(|e| named(&rc.name, e))?;
            Ok((rc.name, Translated::Route(t)))
        }
        Kind::Cluster => {
            let c = EnvoyCluster::decode(bytes).map_err(bad)?;
            let t = cluster::cluster(&c).map_err(|e| named(&c.name, e))?;
            Ok((c.name, Translated::Cluster(t)))
        }
        Kind::Endpoint => {
            let cla = ClusterLoadAssignment::decode(bytes).map_err(bad)?;
            let t = endpoint::endpoints(&cla).map_err(|e| named(&cla.cluster_name, e))?;
            Ok((cla.cluster_name, Translated::Endpoints(t)))
        }
    }
}

/// The resources from the control plane, as native config entries to add to the file's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dynamic {
    pub listeners: Vec<Node>,
    pub route_configs: Vec<Node>,
    pub clusters: Vec<Node>,
}

/// What is still warming, and since when.
#[derive(Debug, Default)]
pub struct Warming {
    pub since: HashMap<(Kind, String), Instant>,
}

/// Composes the dynamic config from the accepted resources of each type. A listener
/// missing a route config, or an EDS cluster missing its endpoints, is left out until it
/// arrives or `timeout` passes (then it goes in without: an empty route config answers
/// 404, a cluster without endpoints 503). Returns the config and the earliest moment a
/// warming resource times out.
pub fn compose(
    resources: &BTreeMap<Kind, BTreeMap<String, Entry>>,
    warming: &mut Warming,
    timeout: std::time::Duration,
    now: Instant,
) -> (Dynamic, Option<Instant>) {
    let empty = BTreeMap::new();
    let of = |k: Kind| resources.get(&k).unwrap_or(&empty);
    let mut dynamic = Dynamic::default();
    let mut still: HashMap<(Kind, String), Instant> = HashMap::new();
    let mut next: Option<Instant> = None;
    let mut wait = |kind: Kind, name: &str| -> bool {
        let key = (kind, name.to_string());
        let since = warming.since.get(&key).copied().unwrap_or(now);
        let deadline = since + timeout;
        // Kept past its deadline too, so a resource that timed out does not wait again.
        still.insert(key, since);
        if now >= deadline {
            return false;
        }
        next = Some(next.map_or(deadline, |n| n.min(deadline)));
        true
    };
    let endpoints = of(Kind::Endpoint);
    for (name, e) in of(Kind::Cluster) {
        let Translated::Cluster(c) = e.value.as_ref() else {
            continue;
        };
        match &c.eds {
            None => dynamic.clusters.push(c.node.clone()),
            Some(service) => match endpoints.get(service).map(|e| e.value.as_ref()) {
                Some(Translated::Endpoints(eps)) => {
                    dynamic.clusters.push(cluster::with_endpoints(&c.node, eps));
                }
                _ if wait(Kind::Cluster, name) => {}
                _ => dynamic.clusters.push(c.node.clone()),
            },
        }
    }
    let routes = of(Kind::Route);
    let mut used_routes = BTreeSet::new();
    let mut placeholders = BTreeSet::new();
    for (name, e) in of(Kind::Listener) {
        let Translated::Listener(l) = e.value.as_ref() else {
            continue;
        };
        let missing: Vec<&String> = l.rds.iter().filter(|r| !routes.contains_key(*r)).collect();
        if !missing.is_empty() && wait(Kind::Listener, name) {
            continue;
        }
        used_routes.extend(l.rds.iter().cloned());
        placeholders.extend(missing.into_iter().cloned());
        dynamic.listeners.push(l.node.clone());
    }
    for (name, e) in routes {
        if let Translated::Route(node) = e.value.as_ref() {
            if used_routes.contains(name) {
                dynamic.route_configs.push(node.clone());
            }
        }
    }
    for name in placeholders {
        let mut m = tree::Map::new();
        m.set("name", tree::text(&name));
        m.set("virtual_hosts", tree::list(Vec::new()));
        dynamic.route_configs.push(m.build());
    }
    warming.since = still;
    (dynamic, next)
}

/// The names of `kind` the accepted resources need: route configs named by listeners,
/// endpoints named by EDS clusters.
pub fn wanted(resources: &BTreeMap<Kind, BTreeMap<String, Entry>>, kind: Kind) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let source = match kind {
        Kind::Route => Kind::Listener,
        Kind::Endpoint => Kind::Cluster,
        _ => return names,
    };
    for e in resources.get(&source).into_iter().flat_map(|m| m.values()) {
        match e.value.as_ref() {
            Translated::Listener(l) => names.extend(l.rds.iter().cloned()),
            Translated::Cluster(c) => names.extend(c.eds.iter().cloned()),
            _ => {}
        }
    }
    names
}
