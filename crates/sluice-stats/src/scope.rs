//! A name prefix and the tags it stands for, handed to a component to name its metrics.

use std::sync::Arc;

use crate::name::{tag, Name, Tag};
use crate::{store, Counter, Gauge, Histogram};

/// Envoy's scope: `cluster.backend.` stands for the tag `envoy.cluster_name=backend`, so the
/// metrics made under it get both names (see [`Name`]).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    flat: String,
    extracted: String,
    /// Innermost first.
    tags: Vec<Tag>,
}

impl Scope {
    /// An untagged scope under `prefix`; a trailing dot is added when missing.
    pub fn new(prefix: &str) -> Scope {
        Scope::default().scope(prefix)
    }

    /// The empty scope, for top-level names.
    pub fn root() -> Scope {
        Scope::default()
    }

    /// Envoy's scope for a listener: `listener.<address>.`, with `:` in the address made `_`
    /// (`listener.127.0.0.1_8443.`), so the name stays one token for StatsD and Prometheus.
    /// Tag: `envoy.listener_address`.
    pub fn listener(address: &str) -> Scope {
        Scope::root().tagged(
            "listener",
            tag::LISTENER_ADDRESS,
            &address.replace(':', "_"),
        )
    }

    /// `cluster.<name>.`, tag `envoy.cluster_name`.
    pub fn cluster(name: &str) -> Scope {
        Scope::root().tagged("cluster", tag::CLUSTER_NAME, name)
    }

    /// An HTTP connection manager's: `http.<stat_prefix>.`, tag
    /// `envoy.http_conn_manager_prefix`.
    pub fn http(stat_prefix: &str) -> Scope {
        Scope::root().tagged("http", tag::HTTP_CONN_MANAGER_PREFIX, stat_prefix)
    }

    /// A TCP proxy's: `tcp.<stat_prefix>.`, tag `envoy.tcp_prefix`.
    pub fn tcp(stat_prefix: &str) -> Scope {
        Scope::root().tagged("tcp", tag::TCP_PREFIX, stat_prefix)
    }

    /// An RPC proxy's: `rpc.<stat_prefix>.`, tag `envoy.rpc_prefix`.
    pub fn rpc(stat_prefix: &str) -> Scope {
        Scope::root().tagged("rpc", tag::RPC_PREFIX, stat_prefix)
    }

    /// A nested scope: `prefix + name + .` in both names.
    pub fn scope(&self, name: &str) -> Scope {
        let mut s = self.clone();
        for part in [&mut s.flat, &mut s.extracted] {
            part.push_str(name);
            if !part.is_empty() && !part.ends_with('.') {
                part.push('.');
            }
        }
        s
    }

    /// A nested scope whose second part is a tag's value: `prefix + name + . + value + .`
    /// flat, `prefix + name + .` extracted.
    pub fn tagged(&self, name: &str, tag_name: &'static str, value: &str) -> Scope {
        let mut s = self.scope(name);
        s.flat.push_str(value);
        s.flat.push('.');
        s.tags.insert(
            0,
            Tag {
                name: tag_name,
                value: value.into(),
            },
        );
        s
    }

    /// The names of the metric `name` in this scope.
    pub fn name(&self, name: &str) -> Name {
        Name {
            flat: format!("{}{name}", self.flat).into(),
            extracted: format!("{}{name}", self.extracted).into(),
            tags: self.tags.clone().into(),
        }
    }

    /// The names of a metric whose leaf holds a tag: `flat` here (`upstream_rq_200`) is
    /// `extracted` (`upstream_rq`) with `tag_name=value`.
    pub fn name_tagged(
        &self,
        flat: &str,
        extracted: &str,
        tag_name: &'static str,
        value: &str,
    ) -> Name {
        let mut tags = Vec::with_capacity(self.tags.len() + 1);
        tags.push(Tag {
            name: tag_name,
            value: value.into(),
        });
        tags.extend(self.tags.iter().cloned());
        Name {
            flat: format!("{}{flat}", self.flat).into(),
            extracted: format!("{}{extracted}", self.extracted).into(),
            tags: tags.into(),
        }
    }

    /// The counter `prefix + name` in the process's store.
    pub fn counter(&self, name: &str) -> Arc<Counter> {
        store().counter_named(self.name(name))
    }

    /// The gauge `prefix + name` in the process's store.
    pub fn gauge(&self, name: &str) -> Arc<Gauge> {
        store().gauge_named(self.name(name))
    }

    /// The histogram `prefix + name` (values in ms) in the process's store.
    pub fn histogram(&self, name: &str) -> Arc<Histogram> {
        store().histogram_named(self.name(name))
    }

    /// The flat prefix: `listener.127.0.0.1_8443.`.
    pub fn prefix(&self) -> &str {
        &self.flat
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tags(n: &Name) -> Vec<(&str, &str)> {
        n.tags.iter().map(|t| (t.name, &*t.value)).collect()
    }

    #[test]
    fn names_are_extracted_as_envoy_does() {
        let n = Scope::cluster("backend").name("upstream_rq_total");
        assert_eq!(&*n.flat, "cluster.backend.upstream_rq_total");
        assert_eq!(&*n.extracted, "cluster.upstream_rq_total");
        assert_eq!(tags(&n), [("envoy.cluster_name", "backend")]);

        let n = Scope::listener("127.0.0.1:8080").name("downstream_cx_active");
        assert_eq!(&*n.flat, "listener.127.0.0.1_8080.downstream_cx_active");
        assert_eq!(&*n.extracted, "listener.downstream_cx_active");
        assert_eq!(tags(&n), [("envoy.listener_address", "127.0.0.1_8080")]);

        let n = Scope::http("web").name_tagged(
            "downstream_rq_2xx",
            "downstream_rq_xx",
            tag::RESPONSE_CODE_CLASS,
            "2",
        );
        assert_eq!(&*n.flat, "http.web.downstream_rq_2xx");
        assert_eq!(&*n.extracted, "http.downstream_rq_xx");
        assert_eq!(
            tags(&n),
            [
                ("envoy.response_code_class", "2"),
                ("envoy.http_conn_manager_prefix", "web")
            ]
        );

        let n = Scope::rpc("ingress")
            .tagged("service", tag::RPC_SERVICE, "com.example.Echo")
            .name("rq_total");
        assert_eq!(&*n.flat, "rpc.ingress.service.com.example.Echo.rq_total");
        assert_eq!(&*n.extracted, "rpc.service.rq_total");
        assert_eq!(
            tags(&n),
            [
                ("sluice.rpc_service", "com.example.Echo"),
                ("envoy.rpc_prefix", "ingress")
            ]
        );

        let n = Scope::new("server").scope("x").name("y");
        assert_eq!(&*n.flat, "server.x.y");
        assert_eq!(n.flat, n.extracted);
        assert!(n.tags.is_empty());
    }
}
