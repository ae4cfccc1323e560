//! Metrics through the real binary: traffic through an `http_proxy` listener to nginx (and to
//! a dead port), Bolt calls through an `rpc_proxy`, then `/stats/prometheus` read by the
//! reference Python parser (`prometheus_client` from PyPI), `/stats` in Envoy's text and
//! JSON layouts, and the StatsD / DogStatsD sinks heard on UDP sockets.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::bolt::{BoltClient, BoltServer};
use common::curl::curl;
use common::nginx::Nginx;
use common::rpc::{self, all_to, cluster};
use common::*;

/// One sample as the parser read it.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// The exposition parsed by `prometheus_client.parser.text_string_to_metric_families`:
/// (family name, type) pairs and every sample. A parse error fails the test.
fn parse_prometheus(text: &str) -> (Vec<(String, String)>, Vec<Sample>) {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
families, samples = [], []
for f in text_string_to_metric_families(sys.stdin.read()):
    families.append([f.name, f.type])
    for s in f.samples:
        samples.append([s.name, s.labels, s.value])
print(json.dumps({"families": families, "samples": samples}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let families = v["families"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f[0].as_str().unwrap().to_string(),
                f[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let samples = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Sample {
            name: s[0].as_str().unwrap().to_string(),
            labels: s[1]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            value: s[2].as_f64().unwrap(),
        })
        .collect();
    (families, samples)
}

/// The value of the sample `name` with exactly `labels`. The parser names counter samples
/// with a `_total` suffix (its data model's), whatever the exposition said, so a counter
/// `name` is also found as `name_total`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let suffixed = format!("{name}_total");
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            (s.name == name || s.name == suffixed)
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().map(|s| s.value)
}

fn scrape(s: &Sluice) -> (Vec<(String, String)>, Vec<Sample>) {
    parse_prometheus(&scrape_text(s))
}

fn scrape_text(s: &Sluice) -> String {
    let r = curl(&[&format!("http://{}/stats/prometheus", s.admin)]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.text()
}

fn admin_text(s: &Sluice, path: &str) -> String {
    let (status, body) = http_get(s.admin, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

/// Sluice with listener `web` (stat_prefix `ingress`): `/dead` to a cluster on a refused
/// port, everything else to `backend`.
fn start_http(backend: SocketAddr, extra: &str) -> (Sluice, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let dead = refused_addr();
    let yaml = format!(
        r#"admin: {{ address: "{{admin}}" }}
{extra}
listeners:
  - name: web
    address: "{addr}"
    filters:
      - http_proxy:
          stat_prefix: ingress
          route_config: main
route_configs:
  - name: main
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes:
          - match: {{ prefix: /dead }}
            route: {{ cluster: dead }}
          - match: {{ prefix: / }}
            stat_prefix: root
            route: {{ cluster: backend }}
clusters:
  - name: backend
    endpoints: [{{ address: "{backend}" }}]
  - name: dead
    connect_timeout: 1s
    endpoints: [{{ address: "{dead}" }}]
"#
    );
    (Sluice::start(&yaml), addr)
}

const N: usize = 10;

#[test]
fn prometheus_counts_match_the_traffic_sent() {
    let nginx = Nginx::start();
    let (s, web) = start_http(nginx.addr, "");
    for _ in 0..N {
        assert_eq!(curl(&[&format!("http://{web}/")]).status, 200);
    }
    for _ in 0..2 {
        assert_eq!(curl(&[&format!("http://{web}/dead")]).status, 503);
    }
    let listener = format!("127.0.0.1_{}", web.port());
    let cx = [("envoy_listener_address", listener.as_str())];
    // A connection is counted closed when its task ends, just after curl has its answer.
    let samples = s.poll("every connection counted closed", || {
        let (families, samples) = scrape(&s);
        let destroyed = value(&samples, "envoy_listener_downstream_cx_destroy", &cx)?;
        (destroyed == (N + 2) as f64).then_some((families, samples))
    });
    let (families, samples) = samples;
    let backend = [("envoy_cluster_name", "backend")];
    let dead = [("envoy_cluster_name", "dead")];
    let http = [("envoy_http_conn_manager_prefix", "ingress")];
    let http_2xx = [
        ("envoy_response_code_class", "2"),
        ("envoy_http_conn_manager_prefix", "ingress"),
    ];
    let http_5xx = [
        ("envoy_response_code_class", "5"),
        ("envoy_http_conn_manager_prefix", "ingress"),
    ];
    let route = [("envoy_route", "root"), ("envoy_virtual_host", "all")];
    let route_2xx = [
        ("envoy_response_code_class", "2"),
        ("envoy_route", "root"),
        ("envoy_virtual_host", "all"),
    ];
    let n = N as f64;
    for (name, labels, expected) in [
        ("envoy_cluster_upstream_rq_total", &backend[..], n),
        ("envoy_cluster_upstream_rq_time_count", &backend, n),
        ("envoy_cluster_upstream_cx_total", &backend, 1.0),
        ("envoy_cluster_upstream_cx_connect_ms_count", &backend, 1.0),
        ("envoy_cluster_upstream_cx_connect_fail", &backend, 0.0),
        ("envoy_cluster_membership_healthy", &backend, 1.0),
        ("envoy_cluster_membership_total", &backend, 1.0),
        ("envoy_cluster_upstream_rq_total", &dead, 2.0),
        ("envoy_cluster_upstream_cx_connect_fail", &dead, 2.0),
        ("envoy_cluster_upstream_rq_time_count", &dead, 0.0),
        ("envoy_listener_downstream_cx_total", &cx, n + 2.0),
        ("envoy_listener_downstream_cx_active", &cx, 0.0),
        ("envoy_listener_downstream_cx_length_ms_count", &cx, n + 2.0),
        ("envoy_http_downstream_rq_total", &http, n + 2.0),
        ("envoy_http_downstream_rq_http1_total", &http, n + 2.0),
        ("envoy_http_downstream_rq_completed", &http, n + 2.0),
        ("envoy_http_downstream_rq_time_count", &http, n + 2.0),
        ("envoy_http_downstream_rq_active", &http, 0.0),
        ("envoy_http_downstream_cx_total", &http, n + 2.0),
        ("envoy_http_downstream_cx_active", &http, 0.0),
        ("envoy_http_no_route", &http, 0.0),
        ("envoy_http_downstream_rq_xx", &http_2xx, n),
        ("envoy_http_downstream_rq_xx", &http_5xx, 2.0),
        ("envoy_vhost_route_upstream_rq_total", &route, n),
        ("envoy_vhost_route_upstream_rq_completed", &route, n),
        ("envoy_vhost_route_upstream_rq_time_count", &route, n),
        ("envoy_vhost_route_upstream_rq_xx", &route_2xx, n),
    ] {
        assert_eq!(
            value(&samples, name, labels),
            Some(expected),
            "{name} {labels:?}"
        );
    }
    let code = [
        ("envoy_response_code", "200"),
        ("envoy_cluster_name", "backend"),
    ];
    assert_eq!(value(&samples, "envoy_cluster_upstream_rq", &code), Some(n));
    let class = [
        ("envoy_response_code_class", "2"),
        ("envoy_cluster_name", "backend"),
    ];
    assert_eq!(
        value(&samples, "envoy_cluster_upstream_rq_xx", &class),
        Some(n)
    );
    let inf = [("envoy_cluster_name", "backend"), ("le", "+Inf")];
    assert_eq!(
        value(&samples, "envoy_cluster_upstream_rq_time_bucket", &inf),
        Some(n)
    );
    // Counters keep Envoy's names in the exposition: no `_total` added.
    let text = scrape_text(&s);
    assert!(
        text.contains("\nenvoy_cluster_upstream_cx_connect_fail{envoy_cluster_name=\"dead\"} 2\n"),
        "{text}"
    );
    assert!(text.contains(
        "\nenvoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"backend\"} 10\n"
    ));
    // Every family was typed (an untyped one reads as "unknown").
    let types: HashMap<&str, &str> = families
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert!(
        !types.values().any(|t| *t == "unknown"),
        "untyped families: {families:?}"
    );
    assert_eq!(
        types.get("envoy_cluster_upstream_rq_time"),
        Some(&"histogram")
    );
    assert_eq!(
        types.get("envoy_listener_downstream_cx_active"),
        Some(&"gauge")
    );
    assert_eq!(
        types.get("envoy_cluster_upstream_cx_connect_fail"),
        Some(&"counter")
    );

    // /stats: Envoy's text lines, histograms as quantiles.
    let text = admin_text(&s, "/stats");
    for line in [
        format!("cluster.backend.upstream_rq_total: {N}"),
        "cluster.dead.upstream_cx_connect_fail: 2".to_string(),
        format!("listener.{listener}.downstream_cx_total: {}", N + 2),
        "cluster.backend.membership_healthy: 1".to_string(),
        format!("http.ingress.downstream_rq_2xx: {N}"),
        "http.ingress.downstream_rq_5xx: 2".to_string(),
        format!("vhost.all.route.root.upstream_rq_2xx: {N}"),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    }
    let rq_time = text
        .lines()
        .find(|l| l.starts_with("cluster.backend.upstream_rq_time: "))
        .unwrap();
    assert!(
        rq_time.contains(" P0(") && rq_time.contains(" P99.9("),
        "{rq_time}"
    );
    let filtered = admin_text(&s, "/stats?filter=%5Ecluster%5C.dead%5C.");
    assert!(
        filtered.lines().all(|l| l.starts_with("cluster.dead.")),
        "{filtered}"
    );
    assert!(!filtered.is_empty());
    let used = admin_text(&s, "/stats?usedonly&filter=%5Ecluster%5C.backend%5C.");
    assert!(!used.contains("upstream_cx_connect_fail"), "{used}");
    assert!(used.contains("upstream_rq_total"), "{used}");

    // /stats?format=json: Envoy's shape, histograms last.
    let v: serde_json::Value = serde_json::from_str(&admin_text(&s, "/stats?format=json")).unwrap();
    let stats = v["stats"].as_array().unwrap();
    assert!(stats
        .iter()
        .any(|e| e["name"] == "cluster.backend.upstream_rq_total" && e["value"] == N));
    let histograms = &stats.last().unwrap()["histograms"];
    assert_eq!(
        histograms["supported_quantiles"].as_array().unwrap().len(),
        10
    );
    let rq_time = histograms["computed_quantiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "cluster.backend.upstream_rq_time")
        .unwrap();
    let values = rq_time["values"].as_array().unwrap();
    assert_eq!(values.len(), 10);
    assert!(values
        .iter()
        .all(|q| q["cumulative"].as_f64().unwrap() >= 0.0 && q.get("interval").is_some()));
}

#[test]
fn rpc_calls_are_counted_by_service() {
    let server = BoltServer::start("m");
    let (s, addr) = rpc::start(
        "bolt",
        "          stat_prefix: bolt_in",
        &all_to("b"),
        &cluster("b", &[server.addr]),
    );
    let run = BoltClient::new(addr).count(7).run();
    assert_eq!((run.ok, run.errors), (7, 0), "{}", run.raw);
    let (_, samples) = scrape(&s);
    let prefix = [("envoy_rpc_prefix", "bolt_in")];
    assert_eq!(
        value(&samples, "envoy_rpc_downstream_rq_total", &prefix),
        Some(7.0)
    );
    assert_eq!(
        value(&samples, "envoy_rpc_downstream_rq_active", &prefix),
        Some(0.0)
    );
    let by_service: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "envoy_rpc_service_rq_total")
        .collect();
    assert_eq!(by_service.len(), 1, "{by_service:?}");
    let service = by_service[0].labels["sluice_rpc_service"].clone();
    assert!(service.starts_with("com.example.Echo"), "{service}");
    let labels = [
        ("envoy_rpc_prefix", "bolt_in"),
        ("sluice_rpc_service", service.as_str()),
    ];
    assert_eq!(
        value(&samples, "envoy_rpc_service_rq_total", &labels),
        Some(7.0)
    );
    assert_eq!(
        value(&samples, "envoy_rpc_service_rq_success", &labels),
        Some(7.0)
    );
    assert_eq!(
        value(&samples, "envoy_rpc_service_rq_error", &labels),
        Some(0.0)
    );
    assert_eq!(
        value(&samples, "envoy_rpc_service_rq_time_count", &labels),
        Some(7.0)
    );
    let b = [("envoy_cluster_name", "b")];
    assert_eq!(
        value(&samples, "envoy_cluster_upstream_rq_total", &b),
        Some(7.0)
    );
    assert_eq!(
        value(&samples, "envoy_cluster_upstream_rq_time_count", &b),
        Some(7.0)
    );
    let text = admin_text(&s, "/stats");
    let line = format!("rpc.bolt_in.service.{service}.rq_total: 7");
    assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
}

/// Datagrams from `socket` until `done` holds on the lines heard so far; fails after 20s.
fn listen(socket: &UdpSocket, what: &str, mut done: impl FnMut(&[String]) -> bool) {
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    let mut buf = [0u8; 65536];
    while !done(&lines) {
        assert!(Instant::now() < deadline, "never heard {what}: {lines:#?}");
        if let Ok(n) = socket.recv(&mut buf) {
            let datagram = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(n <= 8192, "datagram of {n} bytes");
            lines.extend(datagram.lines().map(str::to_string));
        }
    }
}

/// The sum of the deltas of counter lines that are exactly `name:<n>|c` + `tail`.
fn deltas(lines: &[String], name: &str, tail: &str) -> u64 {
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')?
                .strip_suffix(tail)?
                .strip_suffix("|c")?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[test]
fn statsd_sinks_get_counter_deltas() {
    let nginx = Nginx::start();
    let statsd = UdpSocket::bind("127.0.0.1:0").unwrap();
    let dog = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sinks = format!(
        "stats_flush_interval: 100ms
stats_sinks:
  - statsd: {{ address: \"{}\", prefix: sluice }}
  - dog_statsd: {{ address: \"{}\", prefix: dd }}",
        statsd.local_addr().unwrap(),
        dog.local_addr().unwrap()
    );
    let (_s, web) = start_http(nginx.addr, &sinks);
    for _ in 0..4 {
        assert_eq!(curl(&[&format!("http://{web}/")]).status, 200);
    }
    let mut healthy = false;
    listen(&statsd, "4 requests counted on statsd", |lines| {
        healthy |= lines
            .iter()
            .any(|l| l == "sluice.cluster.backend.membership_healthy:1|g");
        healthy && deltas(lines, "sluice.cluster.backend.upstream_rq_total", "") == 4
    });
    listen(&dog, "4 requests counted on dogstatsd", |lines| {
        deltas(
            lines,
            "dd.cluster.upstream_rq_total",
            "|#envoy.cluster_name:backend",
        ) == 4
            && lines.iter().any(|l| {
                l.starts_with("dd.cluster.upstream_rq_time.p50:")
                    && l.ends_with("|g|#envoy.cluster_name:backend")
            })
    });
}

#[test]
fn a_bad_sink_is_named_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfg.yaml"),
        "stats_sinks:\n  - statsd: { address: \"127.0.0.1:8125\" }\n  - graphite: { address: \"127.0.0.1:1\" }\n",
    )
    .unwrap();
    let (code, _, stderr) = sluice_cmd(&["check", "-c", "cfg.yaml"], dir.path());
    assert_ne!(code, 0);
    assert!(
        stderr.contains("cfg.yaml:3: stats_sinks[1]: ") && stderr.contains("dog_statsd"),
        "{stderr}"
    );
}
