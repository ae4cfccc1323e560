//! Black-box tests of clusters under trouble: active health checks and outlier detection
//! taking hosts out and back, circuit breakers, subsets, zones and hash balancing. Upstreams
//! are nginx processes (stopped and restarted to play a dying host); the client is curl.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::curl::{curl, curl_many};
use common::nginx::Nginx;
use common::*;

/// An nginx answering `/healthz` with 200 and everything else with `name` (also in the
/// `x-upstream` header, so a test can tell who answered).
fn upstream(name: &str) -> Nginx {
    Nginx::serving(&format!(
        r#"add_header x-upstream {name} always;
        location /healthz {{ return 200 "ok"; }}
        location / {{ return 200 "{name}"; }}"#
    ))
}

/// Sluice with listener `web` routing everything to `route` (a YAML flow mapping), with
/// `clusters` (YAML list items) appended.
fn start(route: &str, extra_routes: &str, clusters: &str) -> (Sluice, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {{ route_config: main }}
route_configs:
  - name: main
    virtual_hosts:
      - name: all
        domains: [\"*\"]
        routes:
{extra_routes}          - match: {{ prefix: / }}
            route: {route}
clusters:
{clusters}"
    );
    (Sluice::start(&yaml), addr)
}

fn admin(s: &Sluice, path: &str) -> String {
    let (status, body) = http_get(s.admin, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Polls `check` until it holds; fails with `what` and the process log at the deadline.
fn wait_until(s: &Sluice, what: &str, check: impl Fn() -> bool) {
    s.poll(what, || check().then_some(()));
}

/// The `/clusters` health flags of `host` in `cluster`.
fn health(s: &Sluice, cluster: &str, host: SocketAddr) -> String {
    let prefix = format!("{cluster}::{host}::health_flags::");
    admin(s, "/clusters")
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_default()
}

fn stat(s: &Sluice, name: &str) -> u64 {
    let prefix = format!("{name}: ");
    admin(s, "/stats")
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse().unwrap()))
        .unwrap_or_else(|| panic!("no stat {name}"))
}

/// Who answered `n` requests: upstream name -> count; status != 200 counts as "!<status>".
fn tally(addr: SocketAddr, path: &str, n: usize, extra: &[&str]) -> HashMap<String, usize> {
    let mut t = HashMap::new();
    for (status, who) in curl_many(&format!("http://{addr}{path}"), n, "x-upstream", extra) {
        let key = if status == 200 {
            who
        } else {
            format!("!{status}")
        };
        *t.entry(key).or_default() += 1;
    }
    t
}

#[test]
fn health_checks_take_a_killed_host_out_with_no_failed_request_and_bring_it_back() {
    let a = upstream("A");
    let mut b = upstream("B");
    let (s, addr) = start(
        "{ cluster: web, retry_policy: { retry_on: \"connect-failure,reset,5xx\", num_retries: 2 } }",
        "",
        &format!(
            "  - name: web
    health_check: {{ http: {{ path: /healthz, expected_statuses: [200] }}, interval: 100ms, timeout: 500ms,
                    unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints: [{{ address: \"{}\" }}, {{ address: \"{}\" }}]
",
            a.addr, b.addr
        ),
    );
    wait_until(&s, "both hosts checked healthy", || {
        health(&s, "web", a.addr) == "healthy" && health(&s, "web", b.addr) == "healthy"
    });

    // Load from two curl processes, each a run of keep-alive requests, while B dies.
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut all: HashMap<String, usize> = HashMap::new();
                while !stop.load(Ordering::Relaxed) {
                    for (k, v) in tally(addr, "/", 50, &[]) {
                        *all.entry(k).or_default() += v;
                    }
                }
                all
            })
        })
        .collect();
    wait_until(&s, "load reaching B", || {
        stat(&s, "cluster.web.upstream_rq_total") > 200
    });
    b.stop();
    wait_until(&s, "B failing its health check", || {
        health(&s, "web", b.addr).contains("failed_active_hc")
    });
    let after = stat(&s, "cluster.web.upstream_rq_total");
    wait_until(&s, "more load after the ejection", || {
        stat(&s, "cluster.web.upstream_rq_total") > after + 200
    });
    stop.store(true, Ordering::Relaxed);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for l in loaders {
        for (k, v) in l.join().unwrap() {
            *seen.entry(k).or_default() += v;
        }
    }
    let failed: usize = seen
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "A" | "B"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(failed, 0, "failed requests while B died: {seen:?}");
    assert!(seen.get("A").copied().unwrap_or(0) > 0 && seen.get("B").copied().unwrap_or(0) > 0);
    // Taken out: everything goes to A.
    assert_eq!(tally(addr, "/", 20, &[]), HashMap::from([("A".into(), 20)]));

    // B comes back and is checked healthy again: it gets traffic again.
    b.resume();
    wait_until(&s, "B healthy again", || {
        health(&s, "web", b.addr) == "healthy"
    });
    let t = tally(addr, "/", 40, &[]);
    assert!(t.get("B").copied().unwrap_or(0) > 0, "{t:?}");
    assert!(stat(&s, "cluster.web.health_check.failure") > 0);
}

#[test]
fn outlier_detection_ejects_a_failing_host_and_readmits_it_after_the_ejection() {
    let a = upstream("A");
    let b =
        Nginx::serving(r#"add_header x-upstream B always; location / { return 500 "B broken"; }"#);
    let (s, addr) = start(
        "{ cluster: web }",
        "",
        &format!(
            "  - name: web
    outlier_detection: {{ consecutive_5xx: 3, interval: 100ms, base_ejection_time: 1s, max_ejection_percent: 50 }}
    endpoints: [{{ address: \"{}\" }}, {{ address: \"{}\" }}]
",
            a.addr, b.addr
        ),
    );
    // Round robin: B's third 500 in a row ejects it.
    let t = tally(addr, "/", 10, &[]);
    assert_eq!(t.get("!500"), Some(&3), "{t:?}");
    assert!(health(&s, "web", b.addr).contains("failed_outlier_check"));
    assert_eq!(
        stat(
            &s,
            "cluster.web.outlier_detection.ejections_consecutive_5xx"
        ),
        1
    );
    assert_eq!(
        stat(&s, "cluster.web.outlier_detection.ejections_active"),
        1
    );
    assert_eq!(tally(addr, "/", 20, &[]), HashMap::from([("A".into(), 20)]));
    // After base_ejection_time the sweep returns B to service.
    wait_until(&s, "B back from ejection", || {
        health(&s, "web", b.addr) == "healthy"
    });
    let t = tally(addr, "/", 4, &[]);
    assert!(t.contains_key("!500"), "B serves (and fails) again: {t:?}");
}

#[test]
fn circuit_breaker_overflow_answers_503_and_counts() {
    // An upstream that holds each request until the test lets it go.
    let release = Arc::new(AtomicBool::new(false));
    let held = release.clone();
    let upstream = spawn_server(move |mut conn| {
        let mut buf = [0u8; 4096];
        let _ = std::io::Read::read(&mut conn, &mut buf);
        while !held.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(5));
        }
        let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nslow");
    });
    let (s, addr) = start(
        "{ cluster: slow }",
        "          - match: { prefix: /high }
            route: { cluster: slow, priority: high }
",
        &format!(
            "  - name: slow
    circuit_breakers: {{ max_requests: 1, high_priority: {{ max_requests: 1 }} }}
    endpoints: [{{ address: \"{upstream}\" }}]
"
        ),
    );
    let first = thread::spawn(move || curl(&[&format!("http://{addr}/first")]));
    wait_until(&s, "the first request in flight", || {
        stat(&s, "cluster.slow.upstream_rq_active") == 1
    });
    let second = curl(&[&format!("http://{addr}/second")]);
    assert_eq!(second.status, 503, "{second:?}");
    assert_eq!(second.header("x-envoy-overloaded"), Some("true"));
    assert!(
        second.text().contains("max_requests (1)"),
        "{}",
        second.text()
    );
    // A high-priority route has thresholds of its own: it still gets through.
    let high = thread::spawn(move || curl(&[&format!("http://{addr}/high")]));
    wait_until(&s, "the high-priority request in flight", || {
        stat(&s, "cluster.slow.upstream_rq_active") == 2
    });
    release.store(true, Ordering::Relaxed);
    let first = first.join().unwrap();
    assert_eq!((first.status, first.text().as_str()), (200, "slow"));
    assert_eq!(high.join().unwrap().status, 200);
    assert_eq!(stat(&s, "cluster.slow.upstream_rq_pending_overflow"), 1);
}

#[test]
fn subsets_route_by_metadata_with_fallbacks() {
    let v1 = upstream("v1");
    let v2 = upstream("v2");
    let gray = upstream("v2-gray");
    let endpoints = format!(
        "[{{ address: \"{}\", metadata: {{ version: v1 }} }},
                {{ address: \"{}\", metadata: {{ version: v2 }} }},
                {{ address: \"{}\", metadata: {{ version: v2, stage: gray }} }}]",
        v1.addr, v2.addr, gray.addr
    );
    let (_s, addr) = start(
        "{ cluster: web, metadata_match: { version: v1 } }",
        "          - match: { prefix: /, headers: [{ name: x-canary, exact: gray }] }
            route: { cluster: web, metadata_match: { version: v2, stage: gray } }
          - match: { prefix: /, headers: [{ name: x-canary, exact: v2 }] }
            route: { cluster: web, metadata_match: { version: v2 } }
          - match: { prefix: /v3 }
            route: { cluster: web, metadata_match: { version: v3 } }
          - match: { prefix: /strict }
            route: { cluster: strict, metadata_match: { version: v3 } }
          - match: { prefix: /split }
            route: { weighted_clusters: [{ cluster: web, weight: 1, metadata_match: { version: v2 } }] }
",
        &format!(
            "  - name: web
    subset_selectors: [[version], [version, stage]]
    fallback_policy: default_subset
    default_subset: {{ version: v1 }}
    endpoints: {endpoints}
  - name: strict
    subset_selectors: [[version]]
    fallback_policy: no_fallback
    endpoints: {endpoints}
"
        ),
    );
    assert_eq!(
        tally(addr, "/", 10, &[]),
        HashMap::from([("v1".into(), 10)])
    );
    let t = tally(addr, "/", 20, &["-H", "x-canary: v2"]);
    assert_eq!(t.len(), 2, "both v2 hosts: {t:?}");
    assert!(t.contains_key("v2") && t.contains_key("v2-gray"), "{t:?}");
    assert_eq!(
        tally(addr, "/", 10, &["-H", "x-canary: gray"]),
        HashMap::from([("v2-gray".into(), 10)])
    );
    // No v3 subset: the default subset serves.
    assert_eq!(
        tally(addr, "/v3", 10, &[]),
        HashMap::from([("v1".into(), 10)])
    );
    // Weighted entries carry their own metadata_match.
    let t = tally(addr, "/split", 20, &[]);
    assert!(!t.contains_key("v1") && t.len() == 2, "{t:?}");
    // No fallback: a clear 503.
    let r = curl(&[&format!("http://{addr}/strict")]);
    assert_eq!(r.status, 503);
    assert!(
        r.text()
            .contains("no endpoints matching metadata_match {version=v3}"),
        "{}",
        r.text()
    );
}

#[test]
fn zone_aware_routing_prefers_the_local_zone_and_spills_in_proportion() {
    let local_up = upstream("local1");
    let mut local_down = upstream("local2");
    let remote1 = upstream("remote1");
    let remote2 = upstream("remote2");
    let (s, addr) = start(
        "{ cluster: web }",
        "",
        &format!(
            "  - name: web
    lb_policy: random
    local_zone: z1
    health_check: {{ tcp: {{}}, interval: 100ms, timeout: 500ms, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints:
      - {{ address: \"{}\", zone: z1 }}
      - {{ address: \"{}\", zone: z1 }}
      - {{ address: \"{}\", zone: z2 }}
      - {{ address: \"{}\", zone: z2 }}
",
            local_up.addr, local_down.addr, remote1.addr, remote2.addr
        ),
    );
    wait_until(&s, "all hosts checked", || {
        !admin(&s, "/clusters").contains("pending_active_hc")
    });
    // All of z1 healthy: nothing leaves the zone.
    let t = tally(addr, "/", 200, &[]);
    assert!(
        !t.contains_key("remote1") && !t.contains_key("remote2"),
        "{t:?}"
    );
    // Half of z1 down: 50% × 1.4 = 70% stays local, 30% spills to z2.
    local_down.stop();
    wait_until(&s, "local2 failing", || {
        health(&s, "web", local_down.addr).contains("failed_active_hc")
    });
    let t = tally(addr, "/", 1000, &[]);
    let local = t.get("local1").copied().unwrap_or(0);
    let remote = t.get("remote1").copied().unwrap_or(0) + t.get("remote2").copied().unwrap_or(0);
    assert_eq!(local + remote, 1000, "{t:?}");
    // Expected 700; ±60 is over four standard deviations of 1,000 draws.
    assert!((640..=760).contains(&local), "{t:?}");
}

#[test]
fn ring_hash_and_maglev_keep_a_key_on_one_host_and_spread_keys() {
    let hosts = [upstream("h1"), upstream("h2"), upstream("h3")];
    let endpoints: Vec<String> = hosts
        .iter()
        .map(|h| format!("{{ address: \"{}\" }}", h.addr))
        .collect();
    let endpoints = endpoints.join(", ");
    let (_s, addr) = start(
        "{ cluster: ring, hash_policy: [{ header: x-user }] }",
        "          - match: { prefix: /maglev }
            route: { cluster: maglev, hash_policy: [{ header: x-user }] }
          - match: { prefix: /cookie }
            route: { cluster: ring, hash_policy: [{ cookie: { name: sticky, ttl: 1h, path: / } }] }
",
        &format!(
            "  - name: ring
    lb_policy: ring_hash
    endpoints: [{endpoints}]
  - name: maglev
    lb_policy: maglev
    endpoints: [{endpoints}]
"
        ),
    );
    for path in ["/", "/maglev"] {
        let mut owners = std::collections::HashSet::new();
        for user in 0..12 {
            let t = tally(addr, path, 5, &["-H", &format!("x-user: user-{user}")]);
            assert_eq!(t.len(), 1, "{path} user-{user} on one host: {t:?}");
            owners.extend(t.into_keys());
        }
        assert!(
            owners.len() >= 2,
            "{path}: keys spread over hosts: {owners:?}"
        );
    }
    // Cookie affinity: the first answer sets the cookie; sending it back sticks.
    let r = curl(&[&format!("http://{addr}/cookie")]);
    let set = r
        .header("set-cookie")
        .expect("a generated cookie")
        .to_string();
    assert!(
        set.starts_with("sticky=") && set.contains("Max-Age=3600"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let t = tally(addr, "/cookie", 10, &["-H", &format!("cookie: {cookie}")]);
    assert_eq!(t.len(), 1, "{t:?}");
}

/// grpcio's own `grpc.health.v1` servicer, its status set through stdin.
struct GrpcHealthServer {
    child: std::process::Child,
    addr: SocketAddr,
    lines: std::sync::mpsc::Receiver<String>,
}

impl GrpcHealthServer {
    fn start() -> GrpcHealthServer {
        use std::io::BufRead;
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/grpc/health_server.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(addr.port().to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3 with grpcio-health-checking (.ci/run installs it)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let server = GrpcHealthServer { child, addr, lines };
        assert_eq!(server.lines.recv_timeout(DEADLINE).as_deref(), Ok("ready"));
        server
    }

    fn set(&mut self, status: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{status}").unwrap();
        stdin.flush().unwrap();
        assert_eq!(self.lines.recv_timeout(DEADLINE).as_deref(), Ok("ok"));
    }
}

impl Drop for GrpcHealthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn grpc_health_checks_follow_grpc_health_v1() {
    let mut server = GrpcHealthServer::start();
    let (s, _) = start(
        "{ cluster: grpc }",
        "",
        &format!(
            "  - name: grpc
    protocol: http2
    health_check: {{ grpc: {{}}, interval: 100ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1 }}
    endpoints: [{{ address: \"{}\" }}]
",
            server.addr
        ),
    );
    wait_until(&s, "the gRPC host checked SERVING", || {
        health(&s, "grpc", server.addr) == "healthy"
    });
    server.set("NOT_SERVING");
    wait_until(&s, "NOT_SERVING seen", || {
        health(&s, "grpc", server.addr).contains("failed_active_hc")
    });
    server.set("SERVING");
    wait_until(&s, "SERVING again", || {
        health(&s, "grpc", server.addr) == "healthy"
    });
    assert!(stat(&s, "cluster.grpc.health_check.failure") >= 1);
    assert!(stat(&s, "cluster.grpc.health_check.success") >= 2);
}
