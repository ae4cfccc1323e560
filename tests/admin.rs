//! The admin API through the real binary, driven by curl: every endpoint's status, content
//! type and shape (`/server_info`, `/stats`, `/listeners`, `/clusters`, `/config_dump` and its
//! redaction, the index), the method rules (reads are GET, changes are POST), the
//! `health_check` filter under `/healthcheck/fail|ok`, and `POST /quitquitquit`.
#![allow(clippy::unwrap_used)]

mod common;

use common::curl::curl;
use common::*;

fn start() -> (Sluice, std::net::SocketAddr) {
    start_with(&[])
}

fn start_with(args: &[&str]) -> (Sluice, std::net::SocketAddr) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: backend }} }}] }}
clusters:
  - name: backend
    endpoints: [{{ address: \"{}\" }}]
",
        refused_addr()
    );
    (Sluice::start_with(&yaml, args), addr)
}

fn admin(s: &Sluice, path_and_args: &[&str]) -> common::curl::Reply {
    let url = format!("http://{}{}", s.admin, path_and_args[0]);
    let mut args: Vec<&str> = path_and_args[1..].to_vec();
    args.push(&url);
    curl(&args)
}

#[test]
fn server_info_is_json_with_version_state_and_uptime() {
    let (s, _) = start();
    let r = admin(&s, &["/server_info"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(v["state"], "LIVE");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        v["uptime_current_epoch"].as_str().unwrap().ends_with('s'),
        "{v}"
    );
    assert_eq!(v["hot_restart_version"], "disabled");
    assert_eq!(v["command_line_options"]["restart_epoch"], 0);
    assert_eq!(
        v["command_line_options"]["config_path"],
        s.config.display().to_string()
    );
    assert_eq!(v["node"]["id"], "sluice");
}

#[test]
fn stats_filter_by_regex_and_json_format() {
    let (s, web) = start();
    // Two requests to a cluster with nothing behind it: each counted once.
    for _ in 0..2 {
        assert_eq!(curl(&[&format!("http://{web}/")]).status, 503);
    }
    let r = admin(
        &s,
        &["/stats?filter=%5Ecluster%5C.backend%5C.upstream_rq_total%24"],
    );
    assert_eq!(r.text(), "cluster.backend.upstream_rq_total: 2\n");
    let r = admin(&s, &["/stats?format=json&filter=upstream_rq_total"]);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(
        v["stats"],
        serde_json::json!([{ "name": "cluster.backend.upstream_rq_total", "value": 2 }])
    );
    let r = admin(&s, &["/stats?filter=("]);
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("not a valid regular expression"),
        "{}",
        r.text()
    );
    let r = admin(&s, &["/stats?format=xml"]);
    assert_eq!(r.status, 400);
}

#[test]
fn quitquitquit_is_post_only_and_drains_then_exits() {
    let (mut s, _) = start();
    let r = admin(&s, &["/quitquitquit"]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    let r = admin(&s, &["/stats", "-X", "POST"]);
    assert_eq!(r.status, 405);
    assert_eq!(admin(&s, &["/ready"]).status, 200);
    let r = admin(&s, &["/quitquitquit", "-X", "POST"]);
    assert_eq!(r.status, 200);
    let status = s.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(
        s.log().contains("admin /quitquitquit: draining"),
        "{}",
        s.log()
    );
}

#[test]
fn logging_shows_and_changes_the_filter_at_run_time() {
    let (s, web) = start_with(&["--log-level", "info"]);
    let r = admin(&s, &["/logging"]);
    assert_eq!((r.status, r.text().as_str()), (200, "filter: info\n"));
    // A failed upstream request is logged at debug by http_proxy: not at info.
    curl(&[&format!("http://{web}/before")]);
    let r = admin(
        &s,
        &["/logging?filter=info,sluice_filters=debug", "-X", "POST"],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("sluice_filters=debug"), "{}", r.text());
    curl(&[&format!("http://{web}/after")]);
    s.poll("the debug line of the request after the change", || {
        s.log().contains("upstream request failed").then_some(())
    });
    // Only the second request was logged.
    assert_eq!(
        s.log().matches("upstream request failed").count(),
        1,
        "{}",
        s.log()
    );
    // A bad directive is refused and changes nothing.
    let r = admin(&s, &["/logging?filter=sluice_filters=loud", "-X", "POST"]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(admin(&s, &["/logging"])
        .text()
        .contains("sluice_filters=debug"));
    let r = admin(&s, &["/logging?level=warn", "-X", "POST"]);
    assert_eq!(r.text(), "filter: warn\n");
    assert_eq!(admin(&s, &["/logging", "-X", "POST"]).status, 400);
}

#[test]
fn drain_listeners_stops_accepting_and_keeps_the_process() {
    let (mut s, web) = start();
    // A connection opened before the drain stays served. Waited for until Sluice has
    // accepted it: one still in the listen backlog is reset when the listener closes, which
    // is not what this checks.
    let mut early = connect(web);
    s.poll("the early connection accepted", || {
        (stat(&s, "http.web.downstream_cx_active") == 1).then_some(())
    });
    assert_eq!(admin(&s, &["/drain_listeners"]).status, 405);
    assert_eq!(admin(&s, &["/drain_listeners", "-X", "POST"]).status, 200);
    s.poll("the listener closed", || {
        std::net::TcpStream::connect(web).is_err().then_some(())
    });
    let r = admin(&s, &["/ready"]);
    assert_eq!((r.status, r.text().as_str()), (503, "DRAINING\n"));
    let info: serde_json::Value =
        serde_json::from_str(&admin(&s, &["/server_info"]).text()).unwrap();
    assert_eq!(info["state"], "DRAINING");
    use std::io::{Read, Write};
    early
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    early.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert_eq!(admin(&s, &["/quitquitquit", "-X", "POST"]).status, 200);
    assert!(s.wait_exit().success());
}

/// Every admin endpoint, with the methods it takes: the index must list exactly these.
const ENDPOINTS: &[(&str, &str)] = &[
    ("/", "GET"),
    ("/dashboard", "GET"),
    ("/ready", "GET"),
    ("/server_info", "GET"),
    ("/listeners", "GET"),
    ("/clusters", "GET"),
    ("/stats", "GET"),
    ("/stats/prometheus", "GET"),
    ("/config_dump", "GET"),
    ("/logging", "GET, POST"),
    ("/healthcheck/fail", "POST"),
    ("/healthcheck/ok", "POST"),
    ("/drain_listeners", "POST"),
    ("/quitquitquit", "POST"),
];

#[test]
fn index_lists_every_endpoint_and_the_method_rules_hold() {
    let (s, _) = start();
    let r = admin(&s, &["/"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    let listed: Vec<&str> = page
        .split("data-endpoint=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .collect();
    let expected: Vec<&str> = ENDPOINTS.iter().map(|(p, _)| *p).collect();
    assert_eq!(listed, expected, "{page}");
    for (path, methods) in ENDPOINTS {
        let row = page
            .split(&format!("data-endpoint=\"{path}\""))
            .nth(1)
            .unwrap()
            .split("</tr>")
            .next()
            .unwrap();
        assert!(
            row.contains(&format!("<td>{methods}</td>")),
            "{path}: {row}"
        );
        if *methods == "POST" {
            // A button, not a link: following links must never change anything.
            assert!(
                row.contains(&format!("<form action=\"{path}\" method=\"post\">")),
                "{row}"
            );
            let r = admin(&s, &[path]);
            assert_eq!((r.status, r.header("allow")), (405, Some("POST")), "{path}");
        } else {
            assert!(row.contains(&format!("<a href=\"{path}\">")), "{row}");
            let r = admin(&s, &[path]);
            assert_eq!(r.status, 200, "{path}: {}", r.text());
            if !methods.contains("POST") {
                let r = admin(&s, &[path, "-X", "POST"]);
                assert_eq!(
                    (r.status, r.header("allow")),
                    (405, Some("GET, HEAD")),
                    "{path}"
                );
            }
        }
    }
    assert_eq!(admin(&s, &["/nope"]).status, 404);
}

#[test]
fn listeners_in_text_and_json() {
    let (s, web) = start();
    let r = admin(&s, &["/listeners"]);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.text(), format!("web::{web}\n"));
    let r = admin(&s, &["/listeners?format=json"]);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({ "listener_statuses": [{
            "name": "web",
            "local_address": { "socket_address": { "address": "127.0.0.1", "port_value": web.port() } },
        }] })
    );
    assert_eq!(admin(&s, &["/listeners?format=yaml"]).status, 400);
}

/// An upstream answering every request `200 ok`.
fn ok_upstream() -> std::net::SocketAddr {
    common::http1::scripted(|_, _, _| {
        Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec())
    })
    .0
}

#[test]
fn clusters_show_hosts_counters_health_and_outlier_status() {
    let (live, dead) = (ok_upstream(), refused_addr());
    let web: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let s = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: \"{web}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: backend }} }}] }}
clusters:
  - name: backend
    outlier_detection: {{ consecutive_5xx: 1, base_ejection_time: 300s, max_ejection_percent: 50 }}
    endpoints:
      - {{ address: \"{live}\", weight: 3, zone: z1, region: r1 }}
      - {{ address: \"{dead}\", zone: z2 }}
"
    ));
    // Round robin reaches the dead host within a few requests; its connect failure ejects it.
    s.poll("the dead host ejected", || {
        curl(&[&format!("http://{web}/")]);
        admin(&s, &["/clusters"])
            .text()
            .contains(&format!(
                "backend::{dead}::health_flags::/failed_outlier_check"
            ))
            .then_some(())
    });
    for _ in 0..3 {
        assert_eq!(curl(&[&format!("http://{web}/")]).status, 200);
    }
    let text = admin(&s, &["/clusters"]).text();
    for line in [
        format!("backend::{live}::health_flags::healthy"),
        format!("backend::{live}::weight::3"),
        format!("backend::{live}::zone::z1"),
        format!("backend::{live}::rq_active::0"),
        format!("backend::{live}::rq_error::0"),
        format!("backend::{dead}::outlier_ejections::1"),
        format!("backend::{dead}::rq_error::1"),
        format!("backend::{dead}::cx_active::0"),
        format!("backend::{dead}::cx_total::0"),
        format!("backend::{dead}::cx_connect_fail::1"),
        format!("backend::{live}::cx_connect_fail::0"),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in:\n{text}");
    }
    assert!(
        text.contains(&format!("backend::{dead}::outlier_ejection_remaining::")),
        "{text}"
    );

    let r = admin(&s, &["/clusters?format=json"]);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_str(&r.text()).unwrap();
    let c = &v["cluster_statuses"][0];
    assert_eq!(c["name"], "backend");
    assert_eq!(c["added_via_api"], false);
    let host = |addr: std::net::SocketAddr| {
        c["host_statuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["address"]["socket_address"]["port_value"] == addr.port())
            .unwrap()
            .clone()
    };
    let stat = |h: &serde_json::Value, name: &str| {
        h["stats"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["value"]
            .as_u64()
            .unwrap()
    };
    let (l, d) = (host(live), host(dead));
    assert_eq!(l["address"]["socket_address"]["address"], "127.0.0.1");
    assert_eq!(l["weight"], 3);
    assert_eq!(
        l["locality"],
        serde_json::json!({ "region": "r1", "zone": "z1", "sub_zone": "" })
    );
    assert_eq!(l["priority"], 0);
    assert!(stat(&l, "rq_total") >= 3, "{l}");
    assert_eq!(stat(&l, "rq_active"), 0);
    // The live host's connections were made and (kept alive or closed) counted.
    assert!(stat(&l, "cx_total") >= 1, "{l}");
    assert!(stat(&l, "cx_active") <= stat(&l, "cx_total"), "{l}");
    assert_eq!(stat(&d, "cx_connect_fail"), 1, "{d}");
    assert_eq!(l["health_status"]["eds_health_status"], "HEALTHY");
    assert_eq!(l["health_status"]["failed_outlier_check"], false);
    assert_eq!(l["outlier_detection"]["ejected"], false);
    assert_eq!(d["health_status"]["eds_health_status"], "UNHEALTHY");
    assert_eq!(d["health_status"]["failed_outlier_check"], true);
    assert_eq!(d["health_status"]["failed_active_health_check"], false);
    assert_eq!(d["outlier_detection"]["ejected"], true);
    assert_eq!(d["outlier_detection"]["recent_ejections"], 1);
    assert_eq!(stat(&d, "rq_error"), 1);
    assert_eq!(admin(&s, &["/clusters?format=xml"]).status, 400);
}

/// An inline PEM key (in a direct response body: a string the config takes as is) and a TLS
/// listener whose key is a file: `/config_dump` shows neither key, keeps the file's path, and
/// is shaped as Envoy's ConfigDump.
#[test]
fn config_dump_is_the_config_with_key_material_redacted() {
    let key_file = common::certs::file("server.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    // The key's base64 body, one line of it at least.
    let body_line = key.lines().nth(1).unwrap().to_string();
    let inline = key.replace('\n', "\\n");
    let (web, tls) = (free_port(), free_port());
    let s = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: 127.0.0.1:{web}
    filters:
      - http_proxy:
          route_config: main
  - name: secure
    address: 127.0.0.1:{tls}
    filter_chains:
      - tls: {{ certificates: [{{ cert_chain: \"{}\", private_key: \"{key_file}\" }}] }}
        filters: [{{ tcp_proxy: {{ cluster: backend }} }}]
route_configs:
  - name: main
    virtual_hosts:
      - name: all
        domains: [\"*\"]
        routes:
          - match: {{ prefix: /key }}
            direct_response: {{ status: 200, body: \"{inline}\" }}
clusters:
  - name: backend
    endpoints: [{{ address: \"{}\" }}]
  - name: other
    endpoints: [{{ address: \"{}\" }}]
",
        common::certs::file("server.pem"),
        refused_addr(),
        refused_addr(),
    ));
    // The key really is in the live config: the route answers with it.
    assert!(curl(&[&format!("http://127.0.0.1:{web}/key")])
        .text()
        .contains("PRIVATE KEY"));

    let r = admin(&s, &["/config_dump"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let dump = r.text();
    assert!(!dump.contains("PRIVATE KEY"), "{dump}");
    assert!(!dump.contains(&body_line), "{dump}");
    assert!(
        dump.contains(&key_file),
        "the key file's path stays: {dump}"
    );
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    let types: Vec<&str> = v["configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["@type"].as_str().unwrap().rsplit('.').next().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "BootstrapConfigDump",
            "ListenersConfigDump",
            "ClustersConfigDump",
            "RoutesConfigDump",
            "SecretsConfigDump"
        ]
    );
    let configs = &v["configs"];
    assert_eq!(
        configs[0]["bootstrap"]["admin"]["address"],
        s.admin.to_string()
    );
    assert_eq!(
        configs[1]["static_listeners"][1]["listener"]["name"],
        "secure"
    );
    assert!(configs[1]["static_listeners"][0]["last_updated"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(configs[2]["static_clusters"][1]["cluster"]["name"], "other");
    let route = &configs[3]["static_route_configs"][0]["route_config"];
    assert_eq!(route["name"], "main");
    assert_eq!(
        route["virtual_hosts"][0]["routes"][0]["direct_response"],
        serde_json::json!({ "status": 200, "body": "[redacted]" })
    );
    assert_eq!(
        configs[4]["static_secrets"][0]["name"],
        common::certs::file("server.pem")
    );

    // One resource: its items only, each typed.
    let v: serde_json::Value =
        serde_json::from_str(&admin(&s, &["/config_dump?resource=static_clusters"]).text())
            .unwrap();
    let items = v["configs"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["@type"],
        "type.googleapis.com/envoy.admin.v3.ClustersConfigDump.StaticCluster"
    );
    assert_eq!(items[0]["cluster"]["name"], "backend");
    let v: serde_json::Value = serde_json::from_str(
        &admin(&s, &["/config_dump?resource=clusters&name_regex=^oth"]).text(),
    )
    .unwrap();
    assert_eq!(v["configs"].as_array().unwrap().len(), 1);
    assert_eq!(v["configs"][0]["cluster"]["name"], "other");
    for resource in [
        "listeners",
        "route_configs",
        "secrets",
        "bootstrap",
        "endpoints",
    ] {
        let r = admin(&s, &[&format!("/config_dump?resource={resource}")]);
        assert_eq!(r.status, 200, "{resource}");
        assert!(!r.text().contains("PRIVATE KEY"), "{resource}");
    }
    let r = admin(&s, &["/config_dump?resource=endpoint"]);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("static_clusters"), "{}", r.text());
    assert_eq!(admin(&s, &["/config_dump?name_regex=("]).status, 400);
}

#[test]
fn healthcheck_fail_and_ok_drive_the_health_check_filter() {
    let upstream = ok_upstream();
    let web = free_port();
    let mut s = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: 127.0.0.1:{web}
    filters:
      - http_proxy:
          http_filters:
            - health_check: {{ pass_through_mode: false, headers: [{{ name: \":path\", exact: /healthz }}] }}
          routes: [{{ match: {{ prefix: / }}, route: {{ cluster: backend }} }}]
clusters:
  - name: backend
    endpoints: [{{ address: \"{upstream}\" }}]
"
    ));
    let probe = || curl(&[&format!("http://127.0.0.1:{web}/healthz")]);
    let r = probe();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "", "answered by the proxy, not the upstream");
    assert_eq!(r.header("x-envoy-immediate-health-check-fail"), None);

    assert_eq!(admin(&s, &["/healthcheck/fail"]).status, 405);
    assert_eq!(admin(&s, &["/healthcheck/fail", "-X", "POST"]).status, 200);
    let r = probe();
    assert_eq!(r.status, 503);
    assert_eq!(
        r.header("x-envoy-immediate-health-check-fail"),
        Some("true")
    );
    // Still serving everything else; reporting DRAINING as Envoy does.
    let r = curl(&[&format!("http://127.0.0.1:{web}/app")]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = admin(&s, &["/ready"]);
    assert_eq!((r.status, r.text().as_str()), (503, "DRAINING\n"));
    let info: serde_json::Value =
        serde_json::from_str(&admin(&s, &["/server_info"]).text()).unwrap();
    assert_eq!(info["state"], "DRAINING");

    assert_eq!(admin(&s, &["/healthcheck/ok"]).status, 405);
    assert_eq!(admin(&s, &["/healthcheck/ok", "-X", "POST"]).status, 200);
    assert_eq!(probe().status, 200);
    assert_eq!(admin(&s, &["/ready"]).status, 200);
    assert!(s.log().contains("admin /healthcheck/fail"), "{}", s.log());
    // The listeners kept accepting throughout.
    assert!(s.child.as_mut().unwrap().try_wait().unwrap().is_none());
}

#[test]
fn dashboard_is_one_self_contained_page() {
    let (s, _) = start();
    let r = admin(&s, &["/dashboard"]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    for endpoint in [
        "/server_info",
        "/listeners?format=json",
        "/clusters?format=json",
        "/stats?format=json",
    ] {
        assert!(page.contains(&format!("\"{endpoint}\"")), "{endpoint}");
    }
    // No external assets: nothing loaded from elsewhere.
    for external in ["src=", "href=", "http://", "https://", "@import"] {
        assert!(!page.contains(external), "{external}");
    }
}
