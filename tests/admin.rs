//! The admin API through the real binary, driven by curl: `/server_info` (JSON), `/stats`
//! with `?filter=` and `?format=json`, the method rules (reads are GET, changes are POST) and
//! `POST /quitquitquit`. More endpoints come with the observability issue.
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
    // A connection opened before the drain stays served.
    let mut early = connect(web);
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
