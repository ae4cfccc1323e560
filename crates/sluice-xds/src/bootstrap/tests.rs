#![allow(clippy::unwrap_used)]

use super::*;
use crate::translate::endpoint::tests::{assert_yaml, show};

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

fn doc(yaml: &str) -> Node {
    sluice_config::yaml::parse(yaml).unwrap()
}

fn failure(yaml: &str) -> Diagnostic {
    match translate(&doc(yaml)) {
        Ok(n) => panic!("translated: {}", show(&n)),
        Err(d) => d,
    }
}

#[test]
fn the_quick_start_demo_becomes_a_native_document() {
    // (The loader's view of it is tests/envoy_config.rs's: filters register in sluice-filters.)
    let got = translate(&doc(DEMO)).unwrap();
    assert_yaml(
        &got,
        r#"
admin: { address: "127.0.0.1:19000" }
listeners:
  - name: "listener_0"
    address: "127.0.0.1:10000"
    access_log: [{ path: "stdout" }]
    filter_chains:
      - filters:
          - http_proxy:
              stat_prefix: "ingress_http"
              route_config:
                name: "local_route"
                virtual_hosts:
                  - name: "local_service"
                    domains: ["*"]
                    routes:
                      - match: { prefix: "/" }
                        route: { cluster: "service_backend", host_rewrite_literal: "www.example.com" }
              request_headers_timeout: 0
clusters:
  - name: "service_backend"
    type: "logical_dns"
    dns_lookup_family: "v4_only"
    connect_timeout: 30s
    lb_policy: "round_robin"
    common_http_protocol_options: { idle_timeout: 1h }
    endpoints: [{ address: "localhost:8080" }]
"#,
    );
}

/// Envoy's control-plane quick start: ADS for LDS and CDS, the server a static cluster.
const CONTROL_PLANE: &str = r#"
node:
  cluster: test-cluster
  id: test-id
  metadata: { team: payments, replicas: 3 }
  locality: { region: eu, zone: eu-1a }
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc:
        cluster_name: xds_cluster
  cds_config:
    resource_api_version: V3
    ads: {}
  lds_config:
    resource_api_version: V3
    ads: {}
static_resources:
  clusters:
  - connect_timeout: 1s
    type: strict_dns
    http2_protocol_options: {}
    name: xds_cluster
    load_assignment:
      cluster_name: xds_cluster
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: my-control-plane
                port_value: 18000
admin:
  access_log_path: /dev/null
  address:
    socket_address:
      address: 127.0.0.1
      port_value: 19000
"#;

#[test]
fn dynamic_resources_become_the_xds_block() {
    let got = translate(&doc(CONTROL_PLANE)).unwrap();
    let text = show(&got);
    assert!(
        text.contains(r#"node: { id: "test-id", cluster: "test-cluster", metadata: { replicas: "3", team: "payments" }, locality: { region: "eu", zone: "eu-1a" } }"#),
        "{text}"
    );
    assert!(
        text.contains(r#"xds: { address: "my-control-plane:18000", ads: true, delta: false, lds: true, cds: true }"#),
        "{text}"
    );
    // The static cluster stays a cluster, as in Envoy.
    assert!(
        text.contains(r#"name: "xds_cluster", type: "strict_dns""#),
        "{text}"
    );

    // Delta, and separate streams with a fetch timeout.
    let delta = CONTROL_PLANE.replace("api_type: GRPC", "api_type: DELTA_GRPC");
    assert!(show(&translate(&doc(&delta)).unwrap()).contains("ads: true, delta: true"));
    let separate = CONTROL_PLANE
        .replace(
            "  cds_config:\n    resource_api_version: V3\n    ads: {}",
            "  cds_config:\n    initial_fetch_timeout: 3s\n    api_config_source: { api_type: GRPC, grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }] }",
        )
        .replace(
            "  lds_config:\n    resource_api_version: V3\n    ads: {}",
            "  lds_config:\n    api_config_source: { api_type: GRPC, grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }] }",
        );
    let text = show(&translate(&doc(&separate)).unwrap());
    assert!(
        text.contains(r#"xds: { address: "my-control-plane:18000", ads: false, delta: false, lds: true, cds: true, initial_fetch_timeout: 3s }"#),
        "{text}"
    );
    // Only CDS.
    let cds_only = CONTROL_PLANE.replace(
        "  lds_config:\n    resource_api_version: V3\n    ads: {}\n",
        "",
    );
    assert!(show(&translate(&doc(&cds_only)).unwrap()).contains("lds: false, cds: true"));
}

#[test]
fn control_plane_choices_sluice_cannot_follow_are_refused() {
    let mixed = CONTROL_PLANE.replace(
        "  lds_config:\n    resource_api_version: V3\n    ads: {}",
        "  lds_config:\n    api_config_source: { api_type: DELTA_GRPC, grpc_services: [{ envoy_grpc: { cluster_name: xds_cluster } }] }",
    );
    let d = failure(&mixed);
    assert_eq!(d.path, "dynamic_resources.cds_config");
    assert!(d.message.contains("one kind of stream"), "{}", d.message);

    let rest = CONTROL_PLANE.replace("api_type: GRPC", "api_type: REST");
    let d = failure(&rest);
    assert_eq!(d.path, "dynamic_resources.ads_config.api_type");
    assert_eq!(d.line, 9);

    let missing = CONTROL_PLANE.replace(
        "cluster_name: xds_cluster\n  cds",
        "cluster_name: nowhere\n  cds",
    );
    let d = failure(&missing);
    assert_eq!(
        (d.path.as_str(), d.message.as_str()),
        (
            "dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name",
            "no static cluster named \"nowhere\""
        )
    );

    let files = CONTROL_PLANE.replace(
        "  lds_config:\n    resource_api_version: V3\n    ads: {}",
        "  lds_config:\n    path_config_source: { path: /etc/envoy/lds.yaml }",
    );
    assert!(failure(&files)
        .message
        .contains("file-based config sources"));

    let tls = CONTROL_PLANE.replace(
        "    http2_protocol_options: {}\n",
        "    http2_protocol_options: {}\n    transport_socket: { name: tls, typed_config: { \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext } }\n",
    );
    let d = failure(&tls);
    assert_eq!(d.path, "static_resources.clusters[0].transport_socket");
    assert!(d.message.contains("TLS to the control plane"));
}

#[test]
fn errors_name_the_line_and_the_envoy_path() {
    let d = failure("static_resources:\n  listeners:\n  - name: l\n    addres: {}\n");
    assert_eq!(
        d,
        Diagnostic {
            line: 4,
            path: "static_resources.listeners[0].addres".into(),
            message: "unknown field (not in envoy.config.listener.v3.Listener)".into(),
        }
    );
    let d = failure("static_resources:\n  clusters:\n  - name: c\n    type: STRICTDNS\n");
    assert_eq!(d.path, "static_resources.clusters[0].type");
    assert!(
        d.message.contains("expected one of STATIC, STRICT_DNS"),
        "{}",
        d.message
    );
    let d = failure("static_resources:\n  clusters:\n  - name: c\n    connect_timeout: 5\n");
    assert_eq!(d.message, "expected a duration such as 1.5s, found \"5\"");
    let d = failure(
        "admin:\n  address:\n    socket_address: { address: 127.0.0.1, port_value: 70000 }\n",
    );
    assert_eq!(d.path, "admin.address.socket_address.port_value");
    let d = failure("static_resources:\n  clusters:\n  - name: c\n    type: STATIC\n    cluster_type: { name: x }\n");
    assert_eq!(d.message, "only one of type and cluster_type may be set");
    // A translator's error, located in the file by its path.
    let d = failure("static_resources:\n  clusters:\n  - name: c\n    type: STATIC\n    lb_policy: CLUSTER_PROVIDED\n");
    assert_eq!(
        (d.line, d.path.as_str()),
        (5, "static_resources.clusters[0].lb_policy")
    );
    // Refused at the top.
    let d = failure("tracing:\n  http: { name: envoy.tracers.zipkin }\n");
    assert_eq!((d.line, d.path.as_str()), (1, "tracing"));
    assert_eq!(d.message, "is not supported by Sluice");
}

#[test]
fn the_protobuf_json_forms_are_read() {
    // camelCase names, wrappers as bare values, enums in any case, Struct metadata.
    let got = translate(&doc(r#"
staticResources:
  clusters:
  - name: c
    type: static
    connectTimeout: 0.25s
    perConnectionBufferLimitBytes: 65536
    lb_policy: least_request
    load_assignment:
      cluster_name: c
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8080 } } }
          load_balancing_weight: 3
"#))
    .unwrap();
    let text = show(&got);
    assert!(text.contains("connect_timeout: 250ms"), "{text}");
    assert!(text.contains("weight: 3"), "{text}");
    assert!(text.contains(r#"lb_policy: "least_request""#), "{text}");
}

#[test]
fn static_resources_sluice_takes_only_over_xds_are_refused() {
    let eds = "static_resources:\n  clusters:\n  - name: c\n    type: EDS\n    eds_cluster_config: { eds_config: { ads: {} } }\n";
    let d = failure(eds);
    assert_eq!(d.path, "static_resources.clusters[0].type");
    let rds = r#"
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }
    filter_chains:
    - filters:
      - name: hcm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: x
          rds: { route_config_name: r, config_source: { ads: {} } }
          http_filters: [{ name: envoy.filters.http.router }]
"#;
    let d = failure(rds);
    assert_eq!(
        (d.line, d.path.as_str()),
        (4, "static_resources.listeners[0]")
    );
    assert!(d.message.contains("RDS"), "{}", d.message);
    let d = failure("static_resources:\n  secrets: [{ name: s }]\n");
    assert_eq!(d.path, "static_resources.secrets");
}

#[test]
fn unknown_typed_configs_reach_the_translator_which_names_them() {
    let yaml = r#"
static_resources:
  listeners:
  - name: l
    address: { socket_address: { address: 127.0.0.1, port_value: 8080 } }
    filter_chains:
    - filters:
      - name: mongo
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.mongo_proxy.v3.MongoProxy
          stat_prefix: m
"#;
    let d = failure(yaml);
    assert_eq!(
        d.path,
        "static_resources.listeners[0].filter_chains[0].filters[0].typed_config"
    );
    assert_eq!(d.line, 9);
    assert!(d.message.contains("MongoProxy"), "{}", d.message);
}

#[test]
fn unnamed_static_listeners_get_names_and_statsd_sinks_map() {
    let got = translate(&doc(r#"
stats_flush_interval: 2s
stats_sinks:
- name: envoy.stat_sinks.statsd
  typed_config:
    "@type": type.googleapis.com/envoy.config.metrics.v3.StatsdSink
    address: { socket_address: { address: 127.0.0.1, port_value: 8125 } }
    prefix: edge
static_resources:
  listeners:
  - address: { socket_address: { address: 127.0.0.1, port_value: 10000 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          cluster: backend
          stat_prefix: passthrough
"#))
    .unwrap();
    let text = show(&got);
    assert!(text.contains(r#"stats_flush_interval: 2s, stats_sinks: [{ statsd: { address: "127.0.0.1:8125", prefix: "edge" } }]"#), "{text}");
    assert!(text.contains(r#"name: "listener_0""#), "{text}");
}

/// A static listener whose certificate comes over SDS from a static cluster.
const SDS_LISTENER: &str = r#"
static_resources:
  listeners:
  - name: tls
    address: { socket_address: { address: 127.0.0.1, port_value: 10443 } }
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            tls_certificate_sds_secret_configs:
            - name: server-cert
              sds_config:
                initial_fetch_timeout: 2s
                api_config_source: { api_type: GRPC, grpc_services: [{ envoy_grpc: { cluster_name: sds_cluster } }] }
      filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: t
          cluster: sds_cluster
  clusters:
  - name: sds_cluster
    type: STATIC
    load_assignment:
      cluster_name: sds_cluster
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 8234 } } } }] }]
"#;

#[test]
fn sds_sources_become_the_sds_server() {
    let text = show(&translate(&doc(SDS_LISTENER)).unwrap());
    assert!(
        text.contains(r#"sds: { address: "127.0.0.1:8234", initial_fetch_timeout: 2s }"#),
        "{text}"
    );
    assert!(
        text.contains(r#"certificates: [{ sds: "server-cert" }]"#),
        "{text}"
    );

    // Istio's bootstrap: no source in the static resources, its agent's socket by name.
    let istio = r#"
static_resources:
  clusters:
  - name: sds-grpc
    type: STATIC
    load_assignment:
      cluster_name: sds-grpc
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: /var/run/secrets/workload-spiffe-uds/socket } } } }] }]
"#;
    let text = show(&translate(&doc(istio)).unwrap());
    assert!(
        text.contains(r#"sds: { address: "unix:/var/run/secrets/workload-spiffe-uds/socket" }"#),
        "{text}"
    );

    // Two servers: the native config has one.
    let two = SDS_LISTENER.replace(
        "  clusters:\n",
        "  clusters:\n  - name: other\n    type: STATIC\n    load_assignment: { cluster_name: other, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9 } } } }] }] }\n",
    )
    .replace(
        "          common_tls_context:\n",
        "          common_tls_context:\n            validation_context_sds_secret_config: { name: ca, sds_config: { api_config_source: { api_type: GRPC, grpc_services: [{ envoy_grpc: { cluster_name: other } }] } } }\n",
    );
    let d = failure(&two);
    assert!(d.message.contains("one SDS server"), "{d:?}");
    assert!(d.path.ends_with("sds_config"), "{d:?}");
}
