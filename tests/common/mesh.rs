//! The resources of a small mesh, written as the Envoy YAML files the go-control-plane test
//! peer (`tests/control-plane`) serves from a directory.

use std::net::SocketAddr;
use std::path::Path;

/// The resources of a small mesh: listener `web` on `port` with RDS route config `routes`
/// sending everything to `cluster`; EDS clusters `a` and `b` with the given endpoints.
pub struct Mesh {
    pub port: u16,
    pub cluster: String,
    pub a: Vec<SocketAddr>,
    pub b: Vec<SocketAddr>,
}

impl Mesh {
    pub fn write(&self, dir: &Path) {
        for sub in ["listeners", "routes", "clusters", "endpoints"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(
            dir.join("listeners/web.yaml"),
            format!(
                r#"name: web
address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }}
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress_http
      rds: {{ route_config_name: routes, config_source: {{ ads: {{}}, resource_api_version: V3 }} }}
      http_filters:
      - name: envoy.filters.http.router
        typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
"#,
                self.port
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("routes/routes.yaml"),
            format!(
                r#"name: routes
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: {{ prefix: "/" }}
    route: {{ cluster: {}, timeout: 5s }}
"#,
                self.cluster
            ),
        )
        .unwrap();
        for (name, hosts) in [("a", &self.a), ("b", &self.b)] {
            std::fs::write(
                dir.join(format!("clusters/{name}.yaml")),
                format!(
                    r#"name: {name}
type: EDS
connect_timeout: 1s
eds_cluster_config: {{ eds_config: {{ ads: {{}}, resource_api_version: V3 }} }}
"#
                ),
            )
            .unwrap();
            let endpoints: String = hosts
                .iter()
                .map(|h| {
                    format!(
                        "  - endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }}\n",
                        h.ip(),
                        h.port()
                    )
                })
                .collect();
            std::fs::write(
                dir.join(format!("endpoints/{name}.yaml")),
                format!("cluster_name: {name}\nendpoints:\n- lb_endpoints:\n{endpoints}"),
            )
            .unwrap();
        }
    }
}
