//! `sluice run --envoy-config` and `sluice check --envoy-config`: Envoy v3 bootstrap files, as
//! Envoy's own documentation publishes them (rewritten to loopback addresses and free ports),
//! run by Sluice against real peers: nginx (plain and TLS), curl, and the go-control-plane
//! xDS server of tests/control-plane.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;

use common::control_plane::ControlPlane;
use common::curl::{curl, Reply};
use common::mesh::Mesh;
use common::nginx::Nginx;
use common::{certs, free_port, sluice_cmd, stat, Sluice};

/// Envoy's quick-start demo, `docs/root/start/quick-start/_include/envoy-demo.yaml` in
/// envoyproxy/envoy, as published except: the listener is on `127.0.0.1:{port}` (was
/// `0.0.0.0:10000`), the cluster's endpoint is `localhost:{nginx_port}` (was
/// `www.envoyproxy.io:443`), and an `admin` block is added (the demo has none; the test
/// harness needs one).
const ENVOY_DEMO: &str = r#"static_resources:

  listeners:
  - name: listener_0
    address:
      socket_address:
        address: 127.0.0.1
        port_value: {port}
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
              - match:
                  prefix: "/"
                route:
                  host_rewrite_literal: www.envoyproxy.io
                  cluster: service_envoyproxy_io

  clusters:
  - name: service_envoyproxy_io
    connect_timeout: 30s
    type: LOGICAL_DNS
    # Comment out the following line to test on v6 networks
    dns_lookup_family: V4_ONLY
    load_assignment:
      cluster_name: service_envoyproxy_io
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: localhost
                port_value: {nginx_port}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: www.envoyproxy.io

admin:
  address:
    socket_address:
      address: 127.0.0.1
      port_value: {admin_port}
"#;

/// The `https` passthrough of Envoy's TLS sandbox, `examples/tls/envoy.yaml` in
/// envoyproxy/envoy (the listener with `stat_prefix: https_passthrough` and its cluster
/// `service-https`), as published except: the listener is on `127.0.0.1:{port}` (was
/// `0.0.0.0:10000`), the endpoint is `localhost:{nginx_port}` (was `service-https:443`, a
/// docker-compose service), the cluster resolves IPv4 only (many machines' /etc/hosts also
/// map `localhost` to `::1`, where the test's nginx does not listen; the line is the one
/// Envoy's quick-start demo uses), and an `admin` block is added.
const TLS_PASSTHROUGH: &str = r#"static_resources:
  listeners:
  - address:
      socket_address:
        address: 127.0.0.1
        port_value: {port}
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          cluster: service-https
          stat_prefix: https_passthrough

  clusters:
  - name: service-https
    type: STRICT_DNS
    dns_lookup_family: V4_ONLY
    lb_policy: ROUND_ROBIN
    load_assignment:
      cluster_name: service-https
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: localhost
                port_value: {nginx_port}

admin:
  address:
    socket_address:
      address: 127.0.0.1
      port_value: {admin_port}
"#;

/// Envoy's `envoy-dynamic-control-plane-demo.yaml` (the dynamic configuration quick start,
/// `docs/root/start/quick-start/_include/envoy-dynamic-control-plane-demo.yaml` in
/// envoyproxy/envoy), as published except: the control plane is at `{cp_ip}:{cp_port}` (was
/// `my-control-plane:18000`), `api_type` is `{api_type}` (published: `GRPC`), and the admin
/// listens on `127.0.0.1:{admin_port}` (was `0.0.0.0:19000`). `type: strict_dns` is in lower
/// case as published: Envoy takes enum names in any case.
const DYNAMIC_CONTROL_PLANE_DEMO: &str = r#"node:
  cluster: test-cluster
  id: test-id

dynamic_resources:
  ads_config:
    api_type: {api_type}
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
                address: {cp_ip}
                port_value: {cp_port}

admin:
  access_log_path: /dev/null
  address:
    socket_address:
      address: 127.0.0.1
      port_value: {admin_port}
"#;

/// For the reload tests: the quick-start demo's listener (without its access log) routing to
/// `{cluster}`, and two STATIC clusters `service_a` and `service_b` at `127.0.0.1:{a_port}`
/// and `127.0.0.1:{b_port}` (plain HTTP).
const TWO_CLUSTERS: &str = r#"static_resources:

  listeners:
  - name: listener_0
    address:
      socket_address:
        address: 127.0.0.1
        port_value: {port}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          http_filters:
          - name: envoy.filters.http.router
          route_config:
            name: local_route
            virtual_hosts:
            - name: local_service
              domains: ["*"]
              routes:
              - match:
                  prefix: "/"
                route:
                  cluster: {cluster}

  clusters:
  - name: service_a
    connect_timeout: 5s
    type: STATIC
    load_assignment:
      cluster_name: service_a
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: 127.0.0.1
                port_value: {a_port}
  - name: service_b
    connect_timeout: 5s
    type: STATIC
    load_assignment:
      cluster_name: service_b
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address:
                address: 127.0.0.1
                port_value: {b_port}

admin:
  address:
    socket_address:
      address: 127.0.0.1
      port_value: {admin_port}
"#;

/// `template` with each `{key}` replaced by its value (other braces, YAML's, stay).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_string(), |s, (k, v)| {
        s.replace(&format!("{{{k}}}"), v)
    })
}

/// nginx answering every request with `name`.
fn upstream(name: &str) -> Nginx {
    Nginx::serving(&format!(r#"location / {{ return 200 "{name}\n"; }}"#))
}

/// nginx over TLS with the test PKI's `server` certificate (DNS localhost, IP 127.0.0.1)
/// and the given `location` blocks.
fn tls_upstream(locations: &str) -> Nginx {
    Nginx::serving_tls(&format!(
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate {}; ssl_certificate_key {}; {locations}",
        certs::file("server.pem"),
        certs::file("server.key"),
    ))
}

/// GETs `url` with curl until it answers 200 (a DNS cluster has no host until its first
/// answer, which startup does not wait for): that reply.
fn get_ok(sluice: &Sluice, url: &str, extra: &[&str]) -> Reply {
    sluice.poll(&format!("a 200 from {url}"), || {
        let mut args = vec!["-s", "--max-time", "5"];
        args.extend_from_slice(extra);
        args.push(url);
        let reply = curl(&args);
        (reply.status == 200).then_some(reply)
    })
}

/// Waits until the counter `name` reaches `n`.
fn wait_stat(sluice: &Sluice, name: &str, n: u64) {
    sluice.poll(&format!("{name} >= {n}"), || {
        (stat(sluice, name) >= n).then_some(())
    });
}

/// The 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the file"))
        + 1
}

/// Envoy's quick-start demo, as is but for addresses: the route's `host_rewrite_literal`
/// becomes the Host nginx sees, and the cluster's `UpstreamTlsContext` sends
/// `sni: www.envoyproxy.io`; with no validation context the upstream's certificate (issued
/// to localhost) is not verified, as in Envoy.
#[test]
fn envoy_quick_start_demo_rewrites_the_host_and_sends_the_sni() {
    let nginx = tls_upstream(r#"location / { return 200 "$host $ssl_server_name\n"; }"#);
    let port = free_port();
    let yaml = fill(
        ENVOY_DEMO,
        &[
            ("port", &port.to_string()),
            ("nginx_port", &nginx.addr.port().to_string()),
        ],
    );
    let sluice = Sluice::start_envoy(&yaml, &[]);
    let reply = get_ok(&sluice, &format!("http://127.0.0.1:{port}/"), &[]);
    assert_eq!(
        reply.text(),
        "www.envoyproxy.io www.envoyproxy.io\n",
        "nginx error log:\n{}",
        nginx.error_log()
    );
    // The HTTP connection manager's stat_prefix names its counters; exactly one request got
    // a 2xx (those before the first DNS answer got 503s).
    wait_stat(&sluice, "http.ingress_http.downstream_rq_2xx", 1);
    assert_eq!(stat(&sluice, "http.ingress_http.downstream_rq_2xx"), 1);
    assert!(stat(&sluice, "cluster.service_envoyproxy_io.upstream_rq_total") >= 1);
    // The demo's StdoutAccessLog, in Envoy's default format.
    sluice.poll("the access log line on stdout", || {
        let out = sluice.stdout();
        out.lines()
            .any(|l| l.contains("\"GET / HTTP/1.1\" 200 "))
            .then_some(())
    });
}

/// Envoy's TLS sandbox `https` passthrough: a TCP proxy carries the client's TLS to nginx
/// untouched, so curl verifies nginx's own certificate against the test CA.
#[test]
fn envoy_tls_sandbox_passthrough_carries_tls_to_the_upstream_untouched() {
    let nginx =
        tls_upstream(r#"location / { return 200 "tls $ssl_protocol $ssl_server_name\n"; }"#);
    let port = free_port();
    let yaml = fill(
        TLS_PASSTHROUGH,
        &[
            ("port", &port.to_string()),
            ("nginx_port", &nginx.addr.port().to_string()),
        ],
    );
    let sluice = Sluice::start_envoy(&yaml, &[]);
    let ca = certs::file("ca.pem");
    // A TCP proxy to a cluster with no host yet closes the connection (curl would fail):
    // wait for the first DNS answer.
    sluice.poll("the DNS cluster's first host", || {
        (stat(&sluice, "cluster.service-https.membership_total") >= 1).then_some(())
    });
    let reply = get_ok(
        &sluice,
        &format!("https://localhost:{port}/"),
        &[
            "--cacert",
            &ca,
            "--resolve",
            &format!("localhost:{port}:127.0.0.1"),
        ],
    );
    let text = reply.text();
    assert!(
        text.starts_with("tls TLSv1.") && text.ends_with(" localhost\n"),
        "{text}"
    );
    // The unnamed listener's TCP proxy counts under its stat_prefix.
    wait_stat(&sluice, "tcp.https_passthrough.downstream_cx_total", 1);
    assert_eq!(
        stat(&sluice, "tcp.https_passthrough.downstream_cx_total"),
        1
    );
}

/// Envoy's dynamic control-plane demo against go-control-plane, with `api_type`: the listener,
/// route config, cluster and endpoints all come over ADS, traffic flows, and the control
/// plane saw the bootstrap's node.
fn dynamic_control_plane_demo(api_type: &str) {
    let nginx = upstream("a");
    let port = free_port();
    let resources = tempfile::tempdir().unwrap();
    Mesh {
        port,
        cluster: "a".into(),
        a: vec![nginx.addr],
        b: vec![nginx.addr],
    }
    .write(resources.path());
    let cp = ControlPlane::start(resources.path(), "127.0.0.1:0");
    let cp_addr: SocketAddr = cp.address.parse().unwrap();
    let yaml = fill(
        DYNAMIC_CONTROL_PLANE_DEMO,
        &[
            ("api_type", api_type),
            ("cp_ip", &cp_addr.ip().to_string()),
            ("cp_port", &cp_addr.port().to_string()),
        ],
    );
    let sluice = Sluice::start_envoy(&yaml, &[]);
    let reply = get_ok(&sluice, &format!("http://127.0.0.1:{port}/"), &[]);
    assert_eq!(reply.text(), "a\n");
    for kind in ["lds", "rds", "cds", "eds"] {
        assert!(
            stat(&sluice, &format!("xds.{kind}.update_success")) >= 1,
            "{kind}: {}",
            sluice.log()
        );
        assert_eq!(stat(&sluice, &format!("xds.{kind}.update_rejected")), 0);
    }
    // The bootstrap's node reached the control plane, over the protocol api_type names.
    let log = cp.log();
    assert!(log.contains("node=\"test-id\""), "{log}");
    let delta = api_type == "DELTA_GRPC";
    assert_eq!(log.contains("delta stream"), delta, "{log}");
    if !delta {
        assert!(log.contains("cluster=\"test-cluster\""), "{log}");
    }
    assert!(!log.contains("NACK"), "{log}");
}

#[test]
fn envoy_dynamic_control_plane_demo_over_ads_state_of_the_world() {
    dynamic_control_plane_demo("GRPC");
}

#[test]
fn envoy_dynamic_control_plane_demo_over_ads_delta() {
    dynamic_control_plane_demo("DELTA_GRPC");
}

/// `sluice check --envoy-config FILE` in `dir` with `yaml` as FILE (`envoy.yaml`): (exit
/// code, stdout, stderr).
fn check(dir: &Path, yaml: &str) -> (i32, String, String) {
    std::fs::write(dir.join("envoy.yaml"), yaml).unwrap();
    sluice_cmd(&["check", "--envoy-config", "envoy.yaml"], dir)
}

/// The quick-start demo with fixed ports (`check` binds nothing).
fn demo_for_check() -> String {
    fill(
        ENVOY_DEMO,
        &[
            ("port", "10000"),
            ("nginx_port", "443"),
            ("admin_port", "19000"),
        ],
    )
}

#[test]
fn check_accepts_envoys_published_files() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = check(dir.path(), &demo_for_check());
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "ok: 1 listener, 1 cluster", "{err}");

    let passthrough = fill(
        TLS_PASSTHROUGH,
        &[
            ("port", "10000"),
            ("nginx_port", "443"),
            ("admin_port", "19000"),
        ],
    );
    let (code, out, err) = check(dir.path(), &passthrough);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: 1 listener, 1 cluster"), "{out}");

    // `type: strict_dns` in lower case, as Envoy's dynamic demo writes it.
    let dynamic = fill(
        DYNAMIC_CONTROL_PLANE_DEMO,
        &[
            ("api_type", "GRPC"),
            ("cp_ip", "127.0.0.1"),
            ("cp_port", "18000"),
            ("admin_port", "19000"),
        ],
    );
    assert!(dynamic.contains("type: strict_dns"));
    let (code, out, err) = check(dir.path(), &dynamic);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ok: "), "{out}");

    // Lower case in a file that is otherwise the TLS sandbox's.
    let lower = passthrough.replace("type: STRICT_DNS", "type: strict_dns");
    assert_ne!(lower, passthrough);
    let (code, _, err) = check(dir.path(), &lower);
    assert_eq!(code, 0, "{err}");
}

/// The line `sluice check` names for the error about `path` in `stderr` (`envoy.yaml:LINE:
/// PATH: ...`).
fn error_line(stderr: &str, path: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            let (line, rest) = l.strip_prefix("envoy.yaml:")?.split_once(": ")?;
            rest.starts_with(path).then(|| line.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no error about {path} in:\n{stderr}"))
}

#[test]
fn check_names_the_file_line_and_path_of_a_misspelled_field() {
    let dir = tempfile::tempdir().unwrap();
    // A misspelled field inside a typed_config (the HTTP connection manager's).
    let yaml = demo_for_check().replace("stat_prefix: ingress_http", "stat_prefx: ingress_http");
    let line = line_of(&yaml, "stat_prefx:");
    let (code, out, err) = check(dir.path(), &yaml);
    assert_ne!(code, 0, "{out}");
    let path = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.stat_prefx";
    assert!(
        err.contains(&format!("envoy.yaml:{line}: {path}: unknown field")),
        "{err}"
    );
    assert!(
        err.contains(
            "(not in envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager)"
        ),
        "{err}"
    );

    // A misspelled field whose value is a block mapping: the line named is the key's, or
    // the next one, where its value starts (Sluice's YAML tree, native configs included,
    // gives a block mapping the line of its first entry).
    let yaml = demo_for_check().replacen("    address:\n", "    addres:\n", 1);
    let line = line_of(&yaml, "addres:");
    let (code, out, err) = check(dir.path(), &yaml);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains(
            ": static_resources.listeners[0].addres: unknown field (not in envoy.config.listener.v3.Listener)"
        ),
        "{err}"
    );
    let reported = error_line(&err, "static_resources.listeners[0].addres");
    assert!(
        reported == line || reported == line + 1,
        "line {line}: {err}"
    );

    // A misspelled enum value is named too.
    let yaml = demo_for_check().replace("type: LOGICAL_DNS", "type: LOGICAL_DSN");
    let line = line_of(&yaml, "LOGICAL_DSN");
    let (code, _, err) = check(dir.path(), &yaml);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "envoy.yaml:{line}: static_resources.clusters[0].type"
        )),
        "{err}"
    );
}

#[test]
fn check_names_a_field_sluice_refuses() {
    let dir = tempfile::tempdir().unwrap();
    // Top-level tracing (Envoy's Zipkin tracer).
    let yaml = format!(
        "{}tracing: {{ http: {{ name: envoy.tracers.zipkin }} }}\n",
        demo_for_check()
    );
    let line = line_of(&yaml, "tracing:");
    let (code, _, err) = check(dir.path(), &yaml);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "envoy.yaml:{line}: tracing: is not supported by Sluice"
        )),
        "{err}"
    );

    // A load-balancing policy Sluice has not.
    let yaml = demo_for_check().replace(
        "    type: LOGICAL_DNS\n",
        "    type: LOGICAL_DNS\n    lb_policy: CLUSTER_PROVIDED\n",
    );
    let line = line_of(&yaml, "lb_policy:");
    let (code, _, err) = check(dir.path(), &yaml);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!(
            "envoy.yaml:{line}: static_resources.clusters[0].lb_policy: CLUSTER_PROVIDED is not supported by Sluice"
        )),
        "{err}"
    );
}

#[test]
fn check_refuses_a_native_and_an_envoy_file_together() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("envoy.yaml"), demo_for_check()).unwrap();
    std::fs::write(dir.path().join("sluice.yaml"), "listeners: []\n").unwrap();
    for cmd in ["check", "run"] {
        let (code, out, err) = sluice_cmd(
            &[cmd, "-c", "sluice.yaml", "--envoy-config", "envoy.yaml"],
            dir.path(),
        );
        assert_eq!(code, 2, "{cmd}: {out}{err}");
        assert!(err.contains("cannot be used with"), "{cmd}: {err}");
    }
    // And neither is a usage error too.
    let (code, _, err) = sluice_cmd(&["check"], dir.path());
    assert_eq!(code, 2, "{err}");
}

/// The reload tests' file routing to `cluster`, with the admin port `admin_port` (the
/// placeholder `{admin_port}` at start, the running process's port when rewritten).
fn two_clusters(port: u16, cluster: &str, a: &Nginx, b: &Nginx, admin_port: &str) -> String {
    fill(
        TWO_CLUSTERS,
        &[
            ("port", &port.to_string()),
            ("cluster", cluster),
            ("a_port", &a.addr.port().to_string()),
            ("b_port", &b.addr.port().to_string()),
            ("admin_port", admin_port),
        ],
    )
}

#[test]
fn sighup_reloads_the_envoy_file_and_an_invalid_one_is_rejected() {
    let (a, b) = (upstream("a"), upstream("b"));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let sluice = Sluice::start_envoy(
        &two_clusters(port, "service_a", &a, &b, "{admin_port}"),
        &[],
    );
    let admin_port = sluice.admin.port().to_string();
    assert_eq!(get_ok(&sluice, &url, &[]).text(), "a\n");

    std::fs::write(
        &sluice.config,
        two_clusters(port, "service_b", &a, &b, &admin_port),
    )
    .unwrap();
    sluice.signal("HUP");
    sluice.poll("responses from b", || {
        (curl(&["-s", &url]).text() == "b\n").then_some(())
    });
    wait_stat(&sluice, "config_reload.update_success", 1);
    assert_eq!(stat(&sluice, "config_reload.update_rejected"), 0);

    // A misspelled field: refused with its Envoy path, and b keeps serving.
    let invalid = two_clusters(port, "service_a", &a, &b, &admin_port)
        .replace("    type: STATIC\n", "    typ: STATIC\n");
    std::fs::write(&sluice.config, invalid).unwrap();
    sluice.signal("HUP");
    wait_stat(&sluice, "config_reload.update_rejected", 1);
    assert_eq!(curl(&["-s", &url]).text(), "b\n");
    assert_eq!(stat(&sluice, "config_reload.update_success"), 1);
    let log = sluice.log();
    assert!(log.contains("the running config stays"), "{log}");
    assert!(
        log.contains("static_resources.clusters[0].typ: unknown field"),
        "{log}"
    );
}

#[test]
fn watch_picks_up_a_changed_envoy_file() {
    let (a, b) = (upstream("a"), upstream("b"));
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let sluice = Sluice::start_envoy(
        &two_clusters(port, "service_a", &a, &b, "{admin_port}"),
        &["--watch", "--watch-interval", "100ms"],
    );
    let admin_port = sluice.admin.port().to_string();
    assert_eq!(get_ok(&sluice, &url, &[]).text(), "a\n");
    std::fs::write(
        &sluice.config,
        two_clusters(port, "service_b", &a, &b, &admin_port),
    )
    .unwrap();
    wait_stat(&sluice, "config_reload.update_success", 1);
    assert_eq!(curl(&["-s", &url]).text(), "b\n");
}
