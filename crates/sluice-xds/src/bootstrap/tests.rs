#![allow(clippy::unwrap_used)]

use super::*;
use crate::translate::endpoint::tests::show;

fn native(yaml: &str) -> std::result::Result<String, Diagnostic> {
    let doc = sluice_config::yaml::parse(yaml).unwrap();
    translate(&doc).map(|n| show(&n))
}

/// Envoy's quick-start demo (static HTTP reverse proxy), pointed at loopback.
const DEMO: &str = r#"
static_resources:
  listeners:
  - name: listener_0
    address:
      socket_address: { address: 127.0.0.1, port_value: 10000 }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          access_log:
          - name: envoy.access_loggers.stdout
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog
          http_filters:
          - name: envoy.filters.http.router
          route_config:
            name: local_route
            virtual_hosts:
            - name: local_service
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { host_rewrite_literal: www.example.com, cluster: service_backend }
  clusters:
  - name: service_backend
    connect_timeout: 30s
    type: LOGICAL_DNS
    dns_lookup_family: V4_ONLY
    load_assignment:
      cluster_name: service_backend
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: localhost, port_value: 8080 }
admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 19000 }
"#;

#[test]
fn demo_translates() {
    let out = native(DEMO).unwrap();
    println!("{out}");
    assert!(out.contains("admin"), "{out}");
}
