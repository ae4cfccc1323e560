//! One `rpc_proxy` listener in front of routes and clusters written as YAML list items: the
//! starting point of every RPC suite (kv, Bolt, Dubbo, health checks).

use std::net::SocketAddr;

use super::{free_port, Sluice};

/// Sluice with an admin port and one `rpc_proxy` listener speaking `protocol` on route config
/// `rpc`. `listener_extra` adds keys to the filter (each line indented by 10 spaces), `routes`
/// are items of the one virtual host's `routes`, `clusters` items of `clusters`.
pub fn start(
    protocol: &str,
    listener_extra: &str,
    routes: &str,
    clusters: &str,
) -> (Sluice, SocketAddr) {
    let port = free_port();
    let yaml = format!(
        r#"
admin: {{ address: "{{admin}}" }}
listeners:
  - name: rpc
    address: "127.0.0.1:{port}"
    filters:
      - rpc_proxy:
          protocol: {protocol}
          route_config: rpc
{listener_extra}
route_configs:
  - name: rpc
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
{routes}
clusters:
{clusters}
"#
    );
    let sluice = Sluice::start(&yaml);
    (sluice, format!("127.0.0.1:{port}").parse().unwrap())
}

/// A route item sending every request to `cluster`.
pub fn all_to(cluster: &str) -> String {
    format!("          - match: {{ prefix: / }}\n            route: {{ cluster: {cluster} }}\n")
}

/// A cluster item of `addrs`; more keys may follow, indented by 4 spaces.
pub fn cluster(name: &str, addrs: &[SocketAddr]) -> String {
    let endpoints: Vec<String> = addrs
        .iter()
        .map(|a| format!("{{ address: \"{a}\" }}"))
        .collect();
    format!(
        "  - name: {name}\n    endpoints: [{}]\n",
        endpoints.join(", ")
    )
}
