//! A metric's two names: Envoy's flat name (`cluster.backend.upstream_rq_200`) and the
//! tag-extracted one (`cluster.upstream_rq` with `envoy.cluster_name=backend`,
//! `envoy.response_code=200`) that Prometheus and DogStatsD show.
//!
//! Envoy finds tags by running regexes over flat names; here the scopes that make a name
//! carry its tags, so the two names are built together and cannot disagree.

/// Envoy's tag names (`envoy.cluster_name` is `envoy_cluster_name` in Prometheus), and ours
/// where Envoy has none.
pub mod tag {
    pub const CLUSTER_NAME: &str = "envoy.cluster_name";
    pub const LISTENER_ADDRESS: &str = "envoy.listener_address";
    pub const HTTP_CONN_MANAGER_PREFIX: &str = "envoy.http_conn_manager_prefix";
    pub const TCP_PREFIX: &str = "envoy.tcp_prefix";
    pub const RESPONSE_CODE: &str = "envoy.response_code";
    pub const RESPONSE_CODE_CLASS: &str = "envoy.response_code_class";
    /// An `rpc_proxy`'s `stat_prefix` (Envoy's protocol proxies use `envoy.dubbo_prefix` and
    /// the like; ours serves several protocols).
    pub const RPC_PREFIX: &str = "envoy.rpc_prefix";
    /// The RPC service (interface) a request called.
    pub const RPC_SERVICE: &str = "sluice.rpc_service";
}

/// One tag: its name (from [`tag`]) and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: &'static str,
    pub value: Box<str>,
}

/// A metric's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    /// Envoy's full name: `listener.127.0.0.1_8080.downstream_cx_active`.
    pub flat: Box<str>,
    /// The name with tag values taken out: `listener.downstream_cx_active`.
    pub extracted: Box<str>,
    /// The values taken out, the metric's own first (`envoy.response_code`), then its
    /// scopes' from the innermost out.
    pub tags: Box<[Tag]>,
}

impl Name {
    /// A name without tags: both names are `flat`.
    pub fn plain(flat: &str) -> Name {
        Name {
            flat: flat.into(),
            extracted: flat.into(),
            tags: Box::new([]),
        }
    }
}
