//! What a new config changes against the one in force, resource by resource (listeners,
//! clusters, route configs), so a reload touches only what changed: an unchanged listener
//! keeps its connections, an unchanged cluster its hosts, pools and health.
//!
//! Resources are compared as written (their YAML subtrees, lines ignored), not as decoded:
//! every field counts, including ones whose decoded form hides content (key material).

use std::collections::BTreeMap;

use crate::yaml::{Node, NodeKind};
use crate::Config;

/// The names of one kind of resource, sorted into what a change does to them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: Vec<String>,
    /// Of `changed`, those whose `endpoints` alone changed (clusters: their members can be
    /// replaced in place).
    pub endpoints_only: Vec<String>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Whether `name` is kept as it is.
    pub fn keeps(&self, name: &str) -> bool {
        self.unchanged.iter().any(|n| n == name)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub listeners: Delta,
    pub clusters: Delta,
    pub route_configs: Delta,
    /// Top-level keys whose change takes a restart (`admin`, `workers`, `node`, ...): a
    /// reload keeps their old values.
    pub need_restart: Vec<&'static str>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
            && self.clusters.is_empty()
            && self.route_configs.is_empty()
            && self.need_restart.is_empty()
    }
}

/// The top-level keys a running process reads once.
pub const RESTART_KEYS: [&str; 9] = [
    "admin",
    "workers",
    "worker_mode",
    "node",
    "sds",
    "xds",
    "tracing",
    "stats_sinks",
    "stats_flush_interval",
];

/// What going from `old` to `new` changes.
pub fn diff(old: &Config, new: &Config) -> Changes {
    documents(&old.document, &new.document)
}

/// [`diff`] of two config documents.
pub fn documents(a: &Node, b: &Node) -> Changes {
    Changes {
        listeners: delta(a, b, "listeners"),
        clusters: delta(a, b, "clusters"),
        route_configs: delta(a, b, "route_configs"),
        need_restart: RESTART_KEYS
            .into_iter()
            .filter(|k| !same_opt(field(a, k), field(b, k)))
            .collect(),
    }
}

fn delta(old: &Node, new: &Node, key: &str) -> Delta {
    let (before, after) = (named(old, key), named(new, key));
    let mut d = Delta::default();
    for (name, node) in &after {
        match before.get(name) {
            None => d.added.push(name.clone()),
            Some(was) if same(was, node) => d.unchanged.push(name.clone()),
            Some(was) => {
                if same_except(was, node, "endpoints") {
                    d.endpoints_only.push(name.clone());
                }
                d.changed.push(name.clone());
            }
        }
    }
    d.removed = before
        .keys()
        .filter(|n| !after.contains_key(*n))
        .cloned()
        .collect();
    d
}

/// The entries of the list at top-level `key`, by their `name`.
fn named<'a>(doc: &'a Node, key: &str) -> BTreeMap<String, &'a Node> {
    let Some(NodeKind::Seq(items)) = field(doc, key).map(|n| &n.kind) else {
        return BTreeMap::new();
    };
    items
        .iter()
        .filter_map(|item| Some((field(item, "name")?.as_scalar()?.to_string(), item)))
        .collect()
}

fn field<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.kind {
        NodeKind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

fn same_opt(a: Option<&Node>, b: Option<&Node>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    }
}

/// Equal mappings but for `key`.
fn same_except(a: &Node, b: &Node, key: &str) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Map(x), NodeKind::Map(y)) => same_entries(x, y, Some(key)),
        _ => false,
    }
}

/// The same entries in any order, `skip`'s aside.
fn same_entries(x: &[(String, Node)], y: &[(String, Node)], skip: Option<&str>) -> bool {
    let kept = |(k, _): &&(String, Node)| Some(k.as_str()) != skip;
    x.iter().filter(kept).count() == y.iter().filter(kept).count()
        && x.iter().filter(kept).all(|(k, v)| {
            y.iter()
                .find(|(l, _)| l == k)
                .is_some_and(|(_, w)| same(v, w))
        })
}

/// Equal content, wherever it stands in the file.
pub fn same(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Null, NodeKind::Null) => true,
        (NodeKind::Scalar { text: x, quoted: p }, NodeKind::Scalar { text: y, quoted: q }) => {
            x == y && p == q
        }
        (NodeKind::Seq(x), NodeKind::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (NodeKind::Map(x), NodeKind::Map(y)) => same_entries(x, y, None),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(src: &str) -> Node {
        crate::yaml::parse(src).unwrap()
    }

    const BASE: &str = "
listeners:
  - name: a
    address: 127.0.0.1:1
    filters: []
  - name: b
    address: 127.0.0.1:2
    filters: []
clusters:
  - name: c
    endpoints: [{ address: 127.0.0.1:9 }]
  - name: e
    endpoints: [{ address: 127.0.0.1:11 }]
";

    #[test]
    fn sorts_resources_by_what_changed_ignoring_lines_and_key_order() {
        let old = config(BASE);
        let new = config(
            "
workers: 3

clusters:
  - endpoints: [{ address: 127.0.0.1:9 }]
    name: c
  - name: e
    endpoints: [{ address: 127.0.0.1:12 }]
  - name: d
    endpoints: [{ address: 127.0.0.1:10 }]
listeners:
  - name: a
    address: 127.0.0.1:1
    backlog: 64
    filters: []
",
        );
        let c = documents(&old, &new);
        assert_eq!(c.listeners.changed, ["a"]);
        assert_eq!(c.listeners.removed, ["b"]);
        assert!(c.listeners.added.is_empty());
        assert_eq!(c.clusters.unchanged, ["c"]);
        assert_eq!(c.clusters.added, ["d"]);
        assert_eq!(c.clusters.changed, ["e"]);
        assert_eq!(c.clusters.endpoints_only, ["e"]);
        assert!(c.listeners.endpoints_only.is_empty());
        assert_eq!(c.need_restart, ["workers"]);
        assert!(documents(&old, &config(BASE)).is_empty());
    }
}
