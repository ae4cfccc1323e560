//! One published state of a cluster: its members arranged for picking, and its subsets.
//!
//! Subsets are computed here, when the snapshot is built: for each `subset_selectors` entry,
//! hosts are grouped by their values for the selector's keys. A request then finds its subset
//! with one hash lookup of the route's precomputed key, never by scanning hosts.

use std::sync::Arc;

use rustc_hash::FxHashMap;
use sluice_config::{metadata_key, FallbackPolicy, SubsetConfig};

use crate::group::{GroupParams, HostGroup};
use crate::host::Host;

pub struct ClusterSnapshot {
    /// Every member.
    pub all: HostGroup,
    /// By [`metadata_key`] of the subset's pairs.
    subsets: FxHashMap<String, HostGroup>,
    fallback: Fallback,
}

enum Fallback {
    None,
    Any,
    Default(HostGroup),
}

impl ClusterSnapshot {
    pub fn new(hosts: Vec<Arc<Host>>, params: &GroupParams, subset: &SubsetConfig) -> Self {
        let mut members: FxHashMap<String, Vec<Arc<Host>>> = FxHashMap::default();
        for keys in &subset.selectors {
            for host in &hosts {
                let values: Option<Vec<(&str, &str)>> = keys
                    .iter()
                    .map(|k| host.metadata.get(k).map(|v| (k.as_str(), v)))
                    .collect();
                if let Some(values) = values {
                    members
                        .entry(metadata_key(values))
                        .or_default()
                        .push(host.clone());
                }
            }
        }
        let subsets = members
            .into_iter()
            .map(|(key, hosts)| (key, HostGroup::new(hosts, params)))
            .collect();
        let fallback = match subset.fallback_policy {
            FallbackPolicy::NoFallback => Fallback::None,
            FallbackPolicy::AnyEndpoint => Fallback::Any,
            FallbackPolicy::DefaultSubset => {
                let chosen: Vec<Arc<Host>> = hosts
                    .iter()
                    .filter(|h| {
                        subset
                            .default_subset
                            .iter()
                            .all(|(k, v)| h.metadata.get(k) == Some(v.as_str()))
                    })
                    .cloned()
                    .collect();
                Fallback::Default(HostGroup::new(chosen, params))
            }
        };
        ClusterSnapshot {
            all: HostGroup::new(hosts, params),
            subsets,
            fallback,
        }
    }

    /// The hosts a route with this `metadata_match` key may use: the whole cluster for an
    /// empty key, the matching subset, or the fallback; `None` when there is no fallback.
    pub fn group(&self, metadata_key: &str) -> Option<&HostGroup> {
        if metadata_key.is_empty() {
            return Some(&self.all);
        }
        match self.subsets.get(metadata_key) {
            Some(g) => Some(g),
            None => match &self.fallback {
                Fallback::None => None,
                Fallback::Any => Some(&self.all),
                Fallback::Default(g) => Some(g),
            },
        }
    }

    pub fn hosts(&self) -> &[Arc<Host>] {
        &self.all.hosts
    }

    /// The subsets' keys as `k=v,k=v` (for `/clusters` and tests), sorted.
    pub fn subset_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .subsets
            .keys()
            .map(|k| k.replace('\u{0}', "=").replace('\u{1}', ","))
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{Locality, Metadata};
    use crate::lb::LbContext;
    use sluice_config::{Address, LbPolicy};

    fn host(port: u16, meta: &[(&str, &str)]) -> Arc<Host> {
        Arc::new(Host::new(
            Address::parse(&format!("127.0.0.1:{port}")).unwrap(),
            1,
            Metadata::new(meta.iter().map(|(k, v)| (Arc::from(*k), Arc::from(*v)))),
            Locality::default(),
            0,
        ))
    }

    fn snapshot(fallback: FallbackPolicy) -> ClusterSnapshot {
        let hosts = vec![
            host(1, &[("version", "v1")]),
            host(2, &[("version", "v1"), ("stage", "gray")]),
            host(3, &[("version", "v2"), ("stage", "gray")]),
            host(4, &[]),
        ];
        let subset = SubsetConfig {
            selectors: vec![
                vec!["version".into()],
                vec!["stage".into(), "version".into()],
            ],
            fallback_policy: fallback,
            default_subset: vec![("version".into(), "v1".into())],
        };
        ClusterSnapshot::new(hosts, &GroupParams::new(LbPolicy::RoundRobin), &subset)
    }

    fn ports(g: &HostGroup) -> Vec<u16> {
        let mut p: Vec<u16> = (0..50)
            .map(|_| {
                g.choose(&LbContext::default())
                    .unwrap()
                    .address
                    .as_tcp()
                    .unwrap()
                    .port()
            })
            .collect();
        p.sort();
        p.dedup();
        p
    }

    fn key(pairs: &[(&str, &str)]) -> String {
        metadata_key(pairs.iter().copied())
    }

    #[test]
    fn subsets_are_precomputed_per_selector() {
        let s = snapshot(FallbackPolicy::NoFallback);
        assert_eq!(
            s.subset_names(),
            [
                "stage=gray,version=v1",
                "stage=gray,version=v2",
                "version=v1",
                "version=v2"
            ]
        );
        assert_eq!(ports(s.group(&key(&[("version", "v1")])).unwrap()), [1, 2]);
        assert_eq!(ports(s.group(&key(&[("version", "v2")])).unwrap()), [3]);
        assert_eq!(
            ports(
                s.group(&key(&[("version", "v1"), ("stage", "gray")]))
                    .unwrap()
            ),
            [2]
        );
        assert_eq!(ports(s.group("").unwrap()), [1, 2, 3, 4]);
    }

    #[test]
    fn fallback_policies() {
        let missing = key(&[("version", "v3")]);
        assert!(snapshot(FallbackPolicy::NoFallback)
            .group(&missing)
            .is_none());
        let any = snapshot(FallbackPolicy::AnyEndpoint);
        assert_eq!(ports(any.group(&missing).unwrap()), [1, 2, 3, 4]);
        let default = snapshot(FallbackPolicy::DefaultSubset);
        assert_eq!(ports(default.group(&missing).unwrap()), [1, 2]);
        // A key set no selector names falls back too.
        assert_eq!(
            ports(default.group(&key(&[("stage", "gray")])).unwrap()),
            [1, 2]
        );
    }
}
