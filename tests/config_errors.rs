//! `sluice check`: every bad config gets exit 1 and exactly the errors we expect, each with file,
//! line and YAML path; good configs get a one-line summary; nothing is bound.
#![allow(clippy::unwrap_used)]

mod common;

use common::sluice_cmd;

/// Writes `yaml` as `cfg.yaml` in a fresh directory and runs `sluice check -c cfg.yaml` there.
fn check(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cfg.yaml"), yaml).unwrap();
    sluice_cmd(&["check", "-c", "cfg.yaml"], dir.path())
}

const GOOD: &str = "\
admin: { address: 127.0.0.1:15000 }
workers: 1
drain_timeout: 15s
listeners:
  - name: tcp_in
    address: 127.0.0.1:9000
    filters:
      - tcp_proxy: { cluster: backend, idle_timeout: 60s }
  - name: uds_in
    address: unix:/tmp/sluice-check.sock
    socket_mode: \"0660\"
    filters: [{ tcp_proxy: { cluster: other } }]
clusters:
  - name: backend
    connect_timeout: 1s
    lb_policy: round_robin
    endpoints:
      - address: 127.0.0.1:9001
      - { address: unix:/run/backend.sock, weight: 2 }
  - name: other
    lb_policy: random
    endpoints: [{ address: \"[::1]:9002\" }]
  - name: spare
";

#[test]
fn a_good_config_prints_a_summary() {
    let (code, out, err) = check(GOOD);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "ok: 2 listeners, 3 clusters\n", "")
    );
}

#[test]
fn singular_counts_read_well() {
    let (code, out, _) = check("listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters: [{ tcp_proxy: { cluster: c } }]\nclusters: [{ name: c }]\n");
    assert_eq!((code, out.as_str()), (0, "ok: 1 listener, 1 cluster\n"));
}

#[test]
fn check_binds_nothing() {
    // The port is taken, yet check succeeds: it never binds.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (code, out, _) = check(&GOOD.replace("127.0.0.1:9000", &format!("127.0.0.1:{port}")));
    assert_eq!((code, out.as_str()), (0, "ok: 2 listeners, 3 clusters\n"));
}

/// Each bad config, with the exact stderr lines `sluice check` must print.
const BAD: &[(&str, &str, &[&str])] = &[
    (
        "cluster and route settings, each mistake reported",
        "listeners:\n  - name: t\n    address: 127.0.0.1:1\n    filters: [{ tcp_proxy: { cluster: a, hash_policy: [{ header: x-user }] } }]\n  - name: h\n    address: 127.0.0.1:2\n    filters:\n      - http_proxy:\n          route_config:\n            virtual_hosts:\n              - name: all\n                domains: [\"*\"]\n                routes:\n                  - match: { prefix: / }\n                    route: { cluster: a, priority: urgent, hash_policy: [{ cookie: \"bad name\" }, { source_ip: false }, { header: x-a, query_parameter: u }] }\nclusters:\n  - name: a\n    type: strict_dns\n    dns_refresh_rate: 10ms\n    dns_resolvers: [\"not-an-ip\"]\n    overprovisioning_factor: 50\n    per_connection_buffer_limit: 1KiB\n    upstream_connection_options: { tcp_keepalive: { keepalive_time: 500ms } }\n    outlier_detection: { interval: 5ms, base_ejection_time: 30s, max_ejection_time: 10s }\n    circuit_breakers: { retry_budget: { budget_percent: 150 }, high_priority: { max_request: 1 } }\n    lb_policy: least_request\n    least_request_lb_config: { choice_count: 1 }\n    endpoints: [{ address: \"a.test:80\" }]\n  - name: b\n    lb_policy: ring_hash\n    max_requests_per_connection: 0\n    ring_hash_lb_config: { minimum_ring_size: 4096, maximum_ring_size: 1024 }\n  - name: c\n    lb_policy: peak_ewma\n    peak_ewma_lb_config: { decay: 0ms }\n",
        &[
            "cfg.yaml:4: listeners[0].filters[0].tcp_proxy.hash_policy: tcp_proxy can hash only the client's address: use [{ source_ip: true }]",
            "cfg.yaml:15: listeners[1].filters[0].http_proxy.route_config.virtual_hosts[0].routes[0].route.hash_policy[0].cookie: invalid cookie name \"bad name\"",
            "cfg.yaml:15: listeners[1].filters[0].http_proxy.route_config.virtual_hosts[0].routes[0].route.hash_policy[1].source_ip: write `source_ip: true`, or leave the policy out",
            "cfg.yaml:15: listeners[1].filters[0].http_proxy.route_config.virtual_hosts[0].routes[0].route.hash_policy[2]: use only one of: header, cookie, source_ip, query_parameter",
            "cfg.yaml:15: listeners[1].filters[0].http_proxy.route_config.virtual_hosts[0].routes[0].route.priority: unknown priority \"urgent\"; expected one of: default, high",
            "cfg.yaml:19: clusters[0].dns_refresh_rate: must be at least 100ms, found 10ms",
            "cfg.yaml:20: clusters[0].dns_resolvers[0]: invalid name server \"not-an-ip\": expected an IP address, with an optional :port",
            "cfg.yaml:21: clusters[0].overprovisioning_factor: must be from 100 to 1000, found 50",
            "cfg.yaml:22: clusters[0].per_connection_buffer_limit: must be from 16KiB to 1GiB, found 1024 bytes",
            "cfg.yaml:23: clusters[0].upstream_connection_options.tcp_keepalive: keepalive_time and keepalive_interval must be at least 1s (the kernel counts whole seconds)",
            "cfg.yaml:24: clusters[0].outlier_detection.interval: must be at least 10ms, found 5ms",
            "cfg.yaml:24: clusters[0].outlier_detection.max_ejection_time: must be at least base_ejection_time (30s), found 10s",
            "cfg.yaml:25: clusters[0].circuit_breakers.retry_budget.budget_percent: must be from 0 to 100, found 150",
            "cfg.yaml:25: clusters[0].circuit_breakers.high_priority.max_request: unknown field \"max_request\" (did you mean \"max_requests\"?)",
            "cfg.yaml:27: clusters[0].least_request_lb_config.choice_count: must be from 2 to 100, found 1",
            "cfg.yaml:31: clusters[1].max_requests_per_connection: must be at least 1",
            "cfg.yaml:32: clusters[1].ring_hash_lb_config: need 1 <= minimum_ring_size <= maximum_ring_size <= 8388608, found 4096 and 1024",
            "cfg.yaml:35: clusters[2].peak_ewma_lb_config.decay: must be at least 1ms, found 0ns",
        ],
    ),
    (
        "cluster discovery, balancing and protection",
        "clusters:\n  - name: a\n    lb_policy: round_robin\n    maglev_lb_config: { table_size: 100 }\n    endpoints: [{ address: \"backend.local:80\" }]\n  - name: b\n    type: logical_dns\n    endpoints: [{ address: \"x.local:80\" }, { address: \"y.local:80\" }]\n  - name: c\n    lb_policy: maglev\n    maglev_lb_config: { table_size: 100 }\n    subset_selectors: [[]]\n    outlier_detection: { max_ejection_percent: 150 }\n    max_requests_per_connection: 5\n    common_http_protocol_options: { max_requests_per_connection: 5 }\n    upstream_connection_options: { tcp_keepalive: { keepalive_probes: 0 } }\n    fallback_policy: any\n    endpoints: [{ address: \"127.0.0.1:1\", priority: 200, metadata: { version: [1] } }]\n",
        &[
            "cfg.yaml:4: clusters[0].maglev_lb_config: applies to lb_policy maglev, but the cluster's lb_policy is round_robin",
            "cfg.yaml:5: clusters[0].endpoints[0].address: invalid socket address \"backend.local:80\"; a host name needs `type: strict_dns` or `type: logical_dns`",
            "cfg.yaml:8: clusters[1].endpoints: a logical_dns cluster has exactly one endpoint, found 2",
            "cfg.yaml:11: clusters[2].maglev_lb_config.table_size: must be a prime number no larger than 5000011, found 100",
            "cfg.yaml:12: clusters[2].subset_selectors[0]: a subset selector is a non-empty list of distinct metadata keys",
            "cfg.yaml:13: clusters[2].outlier_detection.max_ejection_percent: must be from 0 to 100, found 150",
            "cfg.yaml:14: clusters[2].max_requests_per_connection: also set in common_http_protocol_options; set it in one place",
            "cfg.yaml:16: clusters[2].upstream_connection_options.tcp_keepalive.keepalive_probes: must be from 1 to 127, found 0",
            "cfg.yaml:17: clusters[2].fallback_policy: unknown fallback_policy \"any\" (did you mean \"any_endpoint\"?); expected one of: no_fallback, any_endpoint, default_subset",
            "cfg.yaml:18: clusters[2].endpoints[0].metadata.version: expected a string, found a list",
            "cfg.yaml:18: clusters[2].endpoints[0].priority: must be from 0 to 127, found 200",
        ],
    ),
    (
        "invalid listener address",
        "listeners:\n  - name: a\n    address: 0.0.0.0:80a\n    filters: [{ tcp_proxy: { cluster: c } }]\nclusters: [{ name: c }]\n",
        &["cfg.yaml:3: listeners[0].address: invalid socket address \"0.0.0.0:80a\""],
    ),
    (
        "ipv6 without brackets",
        "listeners:\n  - name: a\n    address: \"::1:80\"\n    filters: [{ tcp_proxy: { cluster: c } }]\nclusters: [{ name: c }]\n",
        &["cfg.yaml:3: listeners[0].address: invalid socket address \"::1:80\": write IPv6 addresses as [addr]:port"],
    ),
    (
        "unknown top-level key",
        "listner: []\n",
        &["cfg.yaml:1: listner: unknown field \"listner\" (did you mean \"listeners\"?)"],
    ),
    (
        "unknown key in a filter",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters:\n      - tcp_proxy: { cluster: c, idle_timout: 5s }\nclusters: [{ name: c }]\n",
        &["cfg.yaml:5: listeners[0].filters[0].tcp_proxy.idle_timout: unknown field \"idle_timout\" (did you mean \"idle_timeout\"?)"],
    ),
    (
        "unknown cluster",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters:\n      - tcp_proxy: { cluster: backnd }\nclusters:\n  - name: backend\n",
        &["cfg.yaml:5: listeners[0].filters[0].tcp_proxy.cluster: unknown cluster \"backnd\" (did you mean \"backend\"?)"],
    ),
    (
        "unknown filter",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters: [{ tcp_prox: { cluster: c } }]\nclusters: [{ name: c }]\n",
        &["cfg.yaml:4: listeners[0].filters[0]: unknown network filter \"tcp_prox\" (did you mean \"tcp_proxy\"?); known filters: tcp_proxy, http_proxy, rpc_proxy, rbac"],
    ),
    (
        "duplicate names",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters: [{ tcp_proxy: { cluster: c } }]\n  - name: a\n    address: 127.0.0.1:2\n    filters: [{ tcp_proxy: { cluster: c } }]\nclusters:\n  - name: c\n  - name: c\n",
        &[
            "cfg.yaml:5: listeners[1].name: duplicate listener name \"a\" (first defined on line 2)",
            "cfg.yaml:10: clusters[1].name: duplicate cluster name \"c\" (first defined on line 9)",
        ],
    ),
    (
        "duplicate address",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters: [{ tcp_proxy: { cluster: c } }]\n  - name: b\n    address: 127.0.0.1:1\n    filters: [{ tcp_proxy: { cluster: c } }]\nclusters: [{ name: c }]\n",
        &["cfg.yaml:5: listeners[1].address: address 127.0.0.1:1 is already used by listener \"a\""],
    ),
    (
        "missing required fields",
        "listeners:\n  - name: a\nclusters:\n  - endpoints: []\n",
        &[
            "cfg.yaml:2: listeners[0]: missing required field \"address\"",
            "cfg.yaml:2: listeners[0]: missing required field \"filters\"",
            "cfg.yaml:4: clusters[0]: missing required field \"name\"",
        ],
    ),
    (
        "bad units and enums",
        "drain_timeout: 15\nclusters:\n  - name: c\n    connect_timeout: 1x\n    lb_policy: round_robbin\n    endpoints: [{ address: 127.0.0.1:1, weight: 0 }]\n",
        &[
            "cfg.yaml:1: drain_timeout: invalid duration \"15\": expected a number and a unit (ms, s, m, h), e.g. 250ms, 5s, 1m",
            "cfg.yaml:4: clusters[0].connect_timeout: invalid duration \"1x\": expected a number and a unit (ms, s, m, h), e.g. 250ms, 5s, 1m",
            "cfg.yaml:5: clusters[0].lb_policy: unknown lb_policy \"round_robbin\" (did you mean \"round_robin\"?); expected one of: round_robin, random, least_request, ring_hash, maglev, peak_ewma",
            "cfg.yaml:6: clusters[0].endpoints[0].weight: must be from 1 to 128, found 0",
        ],
    ),
    (
        "wrong types",
        "workers: many\nlisteners: { name: a }\n",
        &[
            "cfg.yaml:1: workers: expected a whole number from 0 to 65535, found \"many\"",
            "cfg.yaml:2: listeners: expected a list, found a mapping",
        ],
    ),
    (
        "unknown worker mode",
        "worker_mode: percore\n",
        &["cfg.yaml:1: worker_mode: unknown worker_mode \"percore\" (did you mean \"per_core\"?); expected one of: work_stealing, per_core"],
    ),
    (
        "zero workers",
        "workers: 0\n",
        &["cfg.yaml:1: workers: must be at least 1"],
    ),
    (
        "socket_mode on a TCP listener",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    socket_mode: \"0660\"\n    filters: [{ tcp_proxy: { cluster: c } }]\nclusters: [{ name: c }]\n",
        &["cfg.yaml:4: listeners[0].socket_mode: only applies to unix: listener addresses"],
    ),
    (
        "filter chain without a terminal filter",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters: []\n",
        &["cfg.yaml:2: listeners[0].filters: needs a terminal filter (such as tcp_proxy) to handle connections"],
    ),
    (
        "tcp_proxy limits",
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    filters:\n      - tcp_proxy:\n          cluster: c\n          buffer_size: 1\n",
        &[
            "cfg.yaml:6: listeners[0].filters[0].tcp_proxy.cluster: unknown cluster \"c\"",
            "cfg.yaml:7: listeners[0].filters[0].tcp_proxy.buffer_size: must be from 1KiB to 16MiB, found 1 bytes",
        ],
    ),
    (
        "http_proxy limits and values",
        "listeners:\n  - name: web\n    address: 127.0.0.1:8080\n    filters:\n      - http_proxy:\n          routes: { virtual_hosts: [{ name: a, domains: [\"*\"], routes: [{ match: { prefix: / }, direct_response: { status: 200 } }] }] }\n          max_request_headers_kb: 0\n          max_headers_count: 20000\n          max_request_body: 12 parsecs\n          via: \"bad\\nvalue\"\n          request_headers_timeout: soon\n",
        &[
            "cfg.yaml:7: listeners[0].filters[0].http_proxy.max_request_headers_kb: must be from 1 to 8192, found 0",
            "cfg.yaml:8: listeners[0].filters[0].http_proxy.max_headers_count: must be from 1 to 10000, found 20000",
            "cfg.yaml:9: listeners[0].filters[0].http_proxy.max_request_body: invalid size \"12 parsecs\": expected a number with an optional unit, e.g. 64KiB, 1MiB, 4096",
            "cfg.yaml:10: listeners[0].filters[0].http_proxy.via: invalid header value \"bad\\nvalue\"",
            "cfg.yaml:11: listeners[0].filters[0].http_proxy.request_headers_timeout: invalid duration \"soon\": expected a number and a unit (ms, s, m, h), e.g. 250ms, 5s, 1m",
        ],
    ),
    (
        "cluster protocol options out of range",
        "clusters:\n  - name: c\n    http2_protocol_options: { max_concurrent_streams: 0 }\n    common_http_protocol_options: { idle_timeout: 10ms, idle: 1s,\n      max_requests_per_connection: 0, max_idle_connections: -1 }\n  - name: d\n    http2_protocol_options: { connection_keepalive: { interval: 1ms } }\n",
        &[
            "cfg.yaml:3: clusters[0].http2_protocol_options.max_concurrent_streams: must be from 1 to 2147483647, found 0",
            "cfg.yaml:4: clusters[0].common_http_protocol_options.idle: unknown field \"idle\" (did you mean \"idle_timeout\"?)",
            "cfg.yaml:4: clusters[0].common_http_protocol_options.idle_timeout: must be at least 100ms, found 10ms",
            "cfg.yaml:5: clusters[0].common_http_protocol_options.max_idle_connections: expected a whole number from 0 to 4294967295, found \"-1\"",
            "cfg.yaml:5: clusters[0].common_http_protocol_options.max_requests_per_connection: must be at least 1",
            "cfg.yaml:7: clusters[1].http2_protocol_options.connection_keepalive: missing required field \"timeout\"",
        ],
    ),
    (
        "admin on a unix socket",
        "admin: { address: unix:/tmp/admin.sock }\n",
        &["cfg.yaml:1: admin.address: the admin address must be host:port"],
    ),
    (
        "yaml syntax error",
        "listeners: [\n  { name: a\n",
        &["cfg.yaml:3: YAML syntax error: while parsing a flow mapping, did not find expected ',' or '}'"],
    ),
    (
        "duplicate yaml key",
        "workers: 1\nworkers: 2\n",
        &["cfg.yaml:2: YAML syntax error: duplicate key \"workers\""],
    ),
];

#[test]
fn bad_configs_get_exact_located_errors() {
    let mut failures = Vec::new();
    for (name, yaml, expected) in BAD {
        let (code, out, err) = check(yaml);
        let got: Vec<&str> = err.lines().collect();
        if code != 1 || !out.is_empty() || got != *expected {
            failures.push(format!(
                "case {name:?}: exit {code}, stdout {out:?}\n  expected: {expected:#?}\n  got:      {got:#?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_error_in_a_file_is_reported_at_once() {
    let yaml = "\
workers: 0
listeners:
  - name: tcp_in
    address: 0.0.0.0:80a
    filters:
      - tcp_proxy: { cluster: backnd }
  - name: tcp_in
    adress: 127.0.0.1:1
    filters: [{ tcp_proxy: { cluster: backend } }]
clusters:
  - name: backend
    lb_policy: random
";
    let (code, _, err) = check(yaml);
    assert_eq!(code, 1);
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        vec![
            "cfg.yaml:1: workers: must be at least 1",
            "cfg.yaml:4: listeners[0].address: invalid socket address \"0.0.0.0:80a\"",
            "cfg.yaml:6: listeners[0].filters[0].tcp_proxy.cluster: unknown cluster \"backnd\" (did you mean \"backend\"?)",
            "cfg.yaml:7: listeners[1]: missing required field \"address\"",
            "cfg.yaml:7: listeners[1].name: duplicate listener name \"tcp_in\" (first defined on line 3)",
            "cfg.yaml:8: listeners[1].adress: unknown field \"adress\" (did you mean \"address\"?)",
        ]
    );
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = sluice_cmd(&["check", "-c", "nope.yaml"], dir.path());
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "nope.yaml: cannot read config file: No such file or directory (os error 2)\n"
    );
}

#[test]
fn run_refuses_a_bad_config_with_the_same_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cfg.yaml"), "workers: 0\n").unwrap();
    let (code, _, err) = sluice_cmd(&["run", "-c", "cfg.yaml"], dir.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("cfg.yaml:1: workers: must be at least 1"),
        "{err}"
    );
}

#[test]
fn version_prints_the_crate_version() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, _) = sluice_cmd(&["version"], dir.path());
    assert_eq!(
        (code, out),
        (0, format!("sluice {}\n", env!("CARGO_PKG_VERSION")))
    );
}

#[test]
fn the_bundled_examples_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // The TLS example reads certificates that examples/certs/gen.sh makes: make them in a
    // scratch working directory (never in the source tree) and check every example from it.
    let cwd = tempfile::tempdir().unwrap();
    common::certs::generate(&cwd.path().join("examples/certs/out"));
    for entry in std::fs::read_dir(root.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let (code, out, err) = sluice_cmd(&["check", "-c", path.to_str().unwrap()], cwd.path());
            assert_eq!(code, 0, "{}: {err}", path.display());
            assert!(out.starts_with("ok: "), "{out}");
        }
    }
}

/// The route example from the HTTP issue, plus every matcher kind and action.
const GOOD_ROUTES: &str = r#"route_configs:
  - name: main
    virtual_hosts:
      - name: api
        domains: ["api.example.com", "*.api.example.com"]
        routes:
          - match: { prefix: /v1/, headers: [{ name: x-canary, exact: "1" }] }
            route:
              weighted_clusters: [{ cluster: v2, weight: 10 }, { cluster: v1, weight: 90 }]
              timeout: 5s
              retry_policy: { retry_on: "5xx,reset,connect-failure", num_retries: 2, per_try_timeout: 1s }
              request_mirror: { cluster: shadow, percent: 10 }
          - match: { path: /healthz }
            direct_response: { status: 200, body: "ok" }
          - match: { regex: "^/old/(.*)$" }
            redirect: { path_redirect: /new, response_code: 301 }
          - match: { prefix: /, grpc: { service: echo.Echo }, query_parameters: [{ name: debug, present: true }] }
            route: { cluster: v1, prefix_rewrite: /, host_rewrite_literal: internal }
clusters:
  - name: v1
    endpoints: [{ address: 127.0.0.1:9001 }]
  - name: v2
  - name: shadow
"#;

#[test]
fn a_route_config_with_every_kind_of_match_and_action_is_accepted() {
    let (code, out, err) = check(GOOD_ROUTES);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, "ok: 0 listeners, 3 clusters, 1 route config\n", "")
    );
}

const BAD_ROUTES: &str = r#"route_configs:
  - name: main
    virtual_hosts:
      - name: a
        domains: ["a.com", "x.*.com"]
        routes:
          - match: { prefix: /, path: /x }
            route: { cluster: v1 }
          - match: { prefix: / }
          - match: { prefix: / }
            route: { cluster: v1 }
            direct_response: { status: 200 }
          - match: { regex: "([a-z" }
            route: { cluster: v1 }
          - match: { prefix: nope }
            route:
              weighted_clusters: [{ cluster: v3, weight: 1 }]
              retry_policy: { retry_on: "5xx,conect-failure" }
              request_mirror: { cluster: v1, percent: 150 }
          - match: { prefix: /, headers: [{ name: x-a }, { name: "bad header", exact: x }] }
            redirect: { response_code: 200 }
          - match: { path: /d }
            direct_response: { status: 99 }
      - name: b
        domains: ["A.com"]
  - name: main
    virtual_hosts: []
clusters:
  - name: v1
"#;

#[test]
fn route_config_mistakes_are_each_located() {
    let (code, _, err) = check(BAD_ROUTES);
    assert_eq!(code, 1);
    assert_eq!(
        err.lines().collect::<Vec<_>>(),
        vec![
            r#"cfg.yaml:5: route_configs[0].virtual_hosts[0].domains[1]: invalid domain "x.*.com": a wildcard may only stand alone ("*"), first ("*.example.com") or last ("example.*")"#,
            r#"cfg.yaml:7: route_configs[0].virtual_hosts[0].routes[0].match: use only one of: prefix, path, regex"#,
            r#"cfg.yaml:9: route_configs[0].virtual_hosts[0].routes[1]: needs an action: one of route, redirect, direct_response"#,
            r#"cfg.yaml:10: route_configs[0].virtual_hosts[0].routes[2]: has more than one action: use only one of route, redirect, direct_response"#,
            r#"cfg.yaml:13: route_configs[0].virtual_hosts[0].routes[3].match.regex: invalid regex "([a-z": unclosed character class"#,
            r#"cfg.yaml:15: route_configs[0].virtual_hosts[0].routes[4].match.prefix: must start with "/", found "nope""#,
            r#"cfg.yaml:17: route_configs[0].virtual_hosts[0].routes[4].route.weighted_clusters[0].cluster: unknown cluster "v3""#,
            r#"cfg.yaml:18: route_configs[0].virtual_hosts[0].routes[4].route.retry_policy.retry_on: unknown retry condition "conect-failure" (did you mean "connect-failure"?)"#,
            r#"cfg.yaml:19: route_configs[0].virtual_hosts[0].routes[4].route.request_mirror.percent: must be a number from 0 to 100, found "150""#,
            r#"cfg.yaml:20: route_configs[0].virtual_hosts[0].routes[5].match.headers[0]: needs one of: exact, prefix, suffix, contains, regex, present"#,
            r#"cfg.yaml:20: route_configs[0].virtual_hosts[0].routes[5].match.headers[1].name: invalid header name "bad header""#,
            r#"cfg.yaml:21: route_configs[0].virtual_hosts[0].routes[5].redirect.response_code: must be 301, 302, 303, 307 or 308, found 200"#,
            r#"cfg.yaml:23: route_configs[0].virtual_hosts[0].routes[6].direct_response.status: must be an HTTP status from 200 to 599, found 99"#,
            r#"cfg.yaml:25: route_configs[0].virtual_hosts[1].domains[0]: domain "A.com" is already served by another virtual host (line 5)"#,
            r#"cfg.yaml:26: route_configs[1].name: duplicate route config name "main" (first defined on line 2)"#,
        ]
    );
}

/// The cluster block of the upstream issue's contract, word for word, with a route using it.
#[test]
fn the_cluster_contract_is_accepted() {
    let yaml = r#"listeners:
  - name: web
    address: 127.0.0.1:1
    filters:
      - http_proxy:
          route_config:
            virtual_hosts:
              - name: all
                domains: ["*"]
                routes:
                  - match: { prefix: / }
                    route: { cluster: web, metadata_match: { version: v2 }, hash_policy: [{ header: x-user }] }
clusters:
  - name: web
    type: static                        # static | strict_dns | logical_dns
    lb_policy: least_request            # round_robin | random | least_request | ring_hash | maglev | peak_ewma
    health_check: { http: { path: /healthz, expected_statuses: [200] }, interval: 1s, timeout: 500ms,
                    unhealthy_threshold: 2, healthy_threshold: 1 }
    outlier_detection: { consecutive_5xx: 5, interval: 1s, base_ejection_time: 10s, max_ejection_percent: 50 }
    circuit_breakers: { max_connections: 1024, max_pending_requests: 1024, max_requests: 1024, max_retries: 3 }
    subset_selectors: [[version], [version, stage]]
    fallback_policy: any_endpoint       # no_fallback | any_endpoint | default_subset
    local_zone: z1
    endpoints:
      - { address: 127.0.0.1:9001, weight: 3, metadata: { version: v1 }, zone: z1, priority: 0 }
"#;
    let (code, out, err) = check(yaml);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    for policy in ["round_robin", "random", "ring_hash", "maglev", "peak_ewma"] {
        let (code, _, err) =
            check(&yaml.replace("lb_policy: least_request", &format!("lb_policy: {policy}")));
        assert_eq!((code, err.as_str()), (0, ""), "{policy}");
    }
    for kind in ["strict_dns", "logical_dns"] {
        let (code, _, err) = check(&yaml.replace("type: static", &format!("type: {kind}")));
        assert_eq!((code, err.as_str()), (0, ""), "{kind}");
    }
}

#[test]
fn the_rpc_contract_is_accepted_and_its_mistakes_located() {
    let yaml = r#"listeners:
  - name: rpc
    address: 127.0.0.1:12200
    filters:
      - rpc_proxy:
          protocol: kv              # bolt | dubbo | any registered name | auto
          route_config: rpc
route_configs:
  - name: rpc
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: { headers: [{ name: service, exact: "com.example.Echo:1.0" }, { name: method, exact: echo }] }
            route: { cluster: echo_v2, timeout: 3s, retry_policy: { retry_on: "connect-failure,reset", num_retries: 2 } }
          - match: { headers: [{ name: service, prefix: "com.example." }] }
            route: { cluster: echo_v1 }
clusters:
  - name: echo_v1
    endpoints: [{ address: 127.0.0.1:12201 }]
  - name: echo_v2
    endpoints: [{ address: 127.0.0.1:12202 }]
"#;
    for protocol in ["bolt", "dubbo", "kv", "auto"] {
        let (code, out, err) =
            check(&yaml.replace("protocol: kv", &format!("protocol: {protocol}")));
        assert_eq!((code, err.as_str()), (0, ""), "{protocol}: {out}");
    }
    let bad = yaml.replace("protocol: kv ", "protocol: kvv").replace(
        "route_config: rpc",
        "route_config: rpc\n          max_frame_size: 10\n          max_concurrent_requests: 0\n          upstream_heartbeat_timeout: 0s",
    );
    let (code, _, err) = check(&bad);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(code, 1);
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with(
            "cfg.yaml:6: listeners[0].filters[0].rpc_proxy.protocol: unknown protocol \"kvv\" (did you mean \"kv\"?); expected one of: "
        ) && lines[0].ends_with("expected one of: bolt, dubbo, kv, auto"),
        "{err}"
    );
    assert_eq!(
        lines[1],
        "cfg.yaml:8: listeners[0].filters[0].rpc_proxy.max_frame_size: must be at least 64 bytes"
    );
    assert_eq!(
        lines[2],
        "cfg.yaml:9: listeners[0].filters[0].rpc_proxy.max_concurrent_requests: must be at least 1"
    );
    assert_eq!(
        lines[3],
        "cfg.yaml:10: listeners[0].filters[0].rpc_proxy.upstream_heartbeat_timeout: must be at least 1ms (set upstream_heartbeat_interval: 0s to send no heartbeats)"
    );
    let (code, _, err) = check(&yaml.replace("          route_config: rpc\n", ""));
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "cfg.yaml:5: listeners[0].filters[0].rpc_proxy: needs route_config (a name from route_configs, or inline)\n"
        )
    );
}
