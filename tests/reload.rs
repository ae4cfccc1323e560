//! Live reload of the config file (SIGHUP, `--watch`): changes apply while traffic flows,
//! with no request lost, and an invalid file leaves the running config in force.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::curl::curl;
use common::http1::{read_body, read_head};
use common::nginx::Nginx;
use common::{free_port, stat, Sluice};

fn upstream(name: &str) -> Nginx {
    Nginx::serving(&format!(r#"location / {{ return 200 "{name}\n"; }}"#))
}

/// A config whose named route config `r` sends everything to `cluster`; clusters `a` and
/// `b` are the two upstreams.
fn config(port: u16, cluster: &str, a: SocketAddr, b: SocketAddr) -> String {
    format!(
        r#"admin: {{ address: "{{admin}}" }}
drain_timeout: 2s
listeners:
  - name: web
    address: "127.0.0.1:{port}"
    filters:
      - http_proxy: {{ route_config: r }}
route_configs:
  - name: r
    virtual_hosts:
      - name: all
        domains: ["*"]
        routes: [{{ match: {{ prefix: "/" }}, route: {{ cluster: {cluster} }} }}]
clusters:
  - name: a
    endpoints: [{{ address: "{a}" }}]
  - name: b
    endpoints: [{{ address: "{b}" }}]
"#
    )
}

/// Rewrites the running process's config file (the admin address filled in as at start),
/// in place, as an editor would: the watch must not load it half-written.
fn rewrite(sluice: &Sluice, yaml: &str) {
    let yaml = yaml.replace("{admin}", &sluice.admin.to_string());
    std::fs::write(&sluice.config, yaml).unwrap();
}

/// Waits until `config_reload.<what>` reaches `n`.
fn wait_reload(sluice: &Sluice, what: &str, n: u64) {
    let name = format!("config_reload.{what}");
    sluice.poll(&name, || (stat(sluice, &name) >= n).then_some(()));
}

/// One keep-alive HTTP/1.1 exchange on `conn`: the response body.
fn get_on(conn: &mut BufReader<TcpStream>, path: &str) -> std::io::Result<String> {
    conn.get_mut()
        .write_all(format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n").as_bytes())?;
    let (status, headers) = read_head(conn)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed before a response",
        )
    })?;
    let body = read_body(conn, &headers)?;
    assert!(status.contains(" 200 "), "{status}");
    Ok(String::from_utf8(body).unwrap())
}

fn keep_alive(addr: SocketAddr) -> BufReader<TcpStream> {
    BufReader::new(common::connect(addr))
}

#[test]
fn sighup_moves_a_route_for_the_next_request_on_an_open_connection() {
    let (a, b) = (upstream("a"), upstream("b"));
    let port = free_port();
    let sluice = Sluice::start(&config(port, "a", a.addr, b.addr));
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut conn = keep_alive(addr);
    assert_eq!(get_on(&mut conn, "/").unwrap(), "a\n");

    rewrite(&sluice, &config(port, "b", a.addr, b.addr));
    sluice.signal("HUP");
    wait_reload(&sluice, "update_success", 1);
    // The same connection (the listener did not change: only its named route config).
    assert_eq!(get_on(&mut conn, "/").unwrap(), "b\n");
    // A new client, curl, too.
    let reply = curl(&["-s", &format!("http://{addr}/")]);
    assert_eq!(reply.text(), "b\n");
    assert_eq!(stat(&sluice, "config_reload.update_rejected"), 0);
}

#[test]
fn an_invalid_file_is_rejected_and_the_running_config_keeps_serving() {
    let (a, b) = (upstream("a"), upstream("b"));
    let port = free_port();
    let good = config(port, "a", a.addr, b.addr);
    let sluice = Sluice::start_with(&good, &["--watch", "--watch-interval", "100ms"]);
    let url = format!("http://127.0.0.1:{port}/");

    // A route to a cluster that does not exist: `sluice check` refuses it, and so does the
    // reload, naming the place.
    rewrite(&sluice, &config(port, "nowhere", a.addr, b.addr));
    wait_reload(&sluice, "update_rejected", 1);
    assert_eq!(curl(&["-s", &url]).text(), "a\n");
    let log = sluice.log();
    assert!(log.contains("the running config stays"), "{log}");
    assert!(log.contains("nowhere"), "{log}");

    // Not YAML at all, sent by SIGHUP this time.
    rewrite(&sluice, "listeners: [");
    sluice.signal("HUP");
    wait_reload(&sluice, "update_rejected", 2);
    assert_eq!(curl(&["-s", &url]).text(), "a\n");

    // Then a good one, picked up by the watch.
    rewrite(&sluice, &config(port, "b", a.addr, b.addr));
    wait_reload(&sluice, "update_success", 1);
    assert_eq!(curl(&["-s", &url]).text(), "b\n");
    assert_eq!(stat(&sluice, "config_reload.update_success"), 1);
}

/// A client loops requests the whole time while the cluster's endpoints move from one
/// upstream to the other and back, several times: no request fails.
#[test]
fn endpoints_change_under_load_without_a_failed_request() {
    let (a, b) = (upstream("a"), upstream("b"));
    let port = free_port();
    // Cluster `a` is the one routed to; its endpoints are what changes.
    let with_endpoint = |e: SocketAddr| {
        config(port, "a", a.addr, b.addr).replace(
            &format!(
                "  - name: a\n    endpoints: [{{ address: \"{}\" }}]",
                a.addr
            ),
            &format!("  - name: a\n    endpoints: [{{ address: \"{e}\" }}]"),
        )
    };
    let sluice = Sluice::start_with(
        &with_endpoint(a.addr),
        &["--watch", "--watch-interval", "50ms"],
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, seen_b) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, failed, seen_b) =
                (stop.clone(), ok.clone(), failed.clone(), seen_b.clone());
            thread::spawn(move || {
                let mut conn = keep_alive(addr);
                while !stop.load(Ordering::SeqCst) {
                    match get_on(&mut conn, "/") {
                        Ok(body) => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if body == "b\n" {
                                seen_b.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(e) => {
                            eprintln!("request failed: {e}");
                            failed.fetch_add(1, Ordering::SeqCst);
                            conn = keep_alive(addr);
                        }
                    }
                }
            })
        })
        .collect();
    for round in 1..=4u64 {
        let to = if round % 2 == 1 { b.addr } else { a.addr };
        rewrite(&sluice, &with_endpoint(to));
        wait_reload(&sluice, "update_success", round);
        // Some requests go through after each change before the next one.
        let after = ok.load(Ordering::SeqCst) + 20;
        sluice.poll("requests after the change", || {
            (ok.load(Ordering::SeqCst) >= after).then_some(())
        });
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    assert_eq!(failed.load(Ordering::SeqCst), 0);
    assert!(
        seen_b.load(Ordering::SeqCst) > 0,
        "the endpoint change took effect"
    );
}

#[test]
fn listeners_are_added_changed_and_removed_and_old_connections_drain() {
    let (a, b) = (upstream("a"), upstream("b"));
    let (web, extra) = (free_port(), free_port());
    let base = config(web, "a", a.addr, b.addr);
    let sluice = Sluice::start(&base);
    let web_addr: SocketAddr = format!("127.0.0.1:{web}").parse().unwrap();
    let extra_addr: SocketAddr = format!("127.0.0.1:{extra}").parse().unwrap();

    // Added: a tcp_proxy listener to b.
    let added = base.replace(
        "route_configs:",
        &format!(
            "  - name: extra\n    address: \"127.0.0.1:{extra}\"\n    filters: [{{ tcp_proxy: {{ cluster: b }} }}]\nroute_configs:"
        ),
    );
    rewrite(&sluice, &added);
    sluice.signal("HUP");
    wait_reload(&sluice, "update_success", 1);
    let mut through_extra = keep_alive(extra_addr);
    assert_eq!(get_on(&mut through_extra, "/").unwrap(), "b\n");
    let (_, listeners) = common::http_get(sluice.admin, "/listeners").unwrap();
    assert!(listeners.contains("extra"), "{listeners}");

    // Changed: `web` gets a stat_prefix. A connection open before the change is drained
    // (closed once idle); new connections get the new config.
    let mut before = keep_alive(web_addr);
    assert_eq!(get_on(&mut before, "/").unwrap(), "a\n");
    let changed = added.replace(
        "http_proxy: { route_config: r }",
        "http_proxy: { route_config: r, stat_prefix: renamed }",
    );
    rewrite(&sluice, &changed);
    sluice.signal("HUP");
    wait_reload(&sluice, "update_success", 2);
    let mut line = String::new();
    let n = before.read_line(&mut line).unwrap_or(0);
    assert_eq!(n, 0, "the old connection is closed, got {line:?}");
    assert_eq!(curl(&["-s", &format!("http://{web_addr}/")]).text(), "a\n");
    assert!(stat(&sluice, "http.renamed.downstream_rq_total") >= 1);

    // Removed: `extra` refuses new connections; its open one (a tcp_proxy one, which does
    // not react to the drain) works on until drain_timeout cuts it.
    rewrite(&sluice, &changed.replace(&format!("  - name: extra\n    address: \"127.0.0.1:{extra}\"\n    filters: [{{ tcp_proxy: {{ cluster: b }} }}]\n"), ""));
    sluice.signal("HUP");
    wait_reload(&sluice, "update_success", 3);
    sluice.poll("extra refusing connections", || {
        TcpStream::connect(extra_addr).is_err().then_some(())
    });
    assert_eq!(get_on(&mut through_extra, "/").unwrap(), "b\n");
    sluice.poll("the removed listener's connection cut", || {
        get_on(&mut through_extra, "/").is_err().then_some(())
    });
    // `web` is untouched by all this.
    assert_eq!(curl(&["-s", &format!("http://{web_addr}/")]).text(), "a\n");
}

/// A config that validates but cannot be built, here a new listener on a port another
/// process holds, is rejected whole: nothing of it applies (not even its route change).
#[test]
fn a_config_that_cannot_be_built_is_rejected_whole() {
    let (a, b) = (upstream("a"), upstream("b"));
    let port = free_port();
    let base = config(port, "a", a.addr, b.addr);
    let sluice = Sluice::start(&base);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let unbuildable = config(port, "b", a.addr, b.addr).replace(
        "route_configs:",
        &format!(
            "  - name: clash\n    address: \"{taken_addr}\"\n    reuse_port: false\n    filters: [{{ tcp_proxy: {{ cluster: b }} }}]\nroute_configs:"
        ),
    );
    rewrite(&sluice, &unbuildable);
    sluice.signal("HUP");
    wait_reload(&sluice, "update_rejected", 1);
    let log = sluice.log();
    assert!(log.contains("cannot apply the new config"), "{log}");
    assert!(log.contains("clash"), "{log}");
    assert_eq!(
        curl(&["-s", &format!("http://127.0.0.1:{port}/")]).text(),
        "a\n"
    );
    assert_eq!(stat(&sluice, "config_reload.update_success"), 0);
}

#[test]
fn a_bad_watch_interval_is_a_command_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = common::sluice_cmd(
        &[
            "run",
            "-c",
            "none.yaml",
            "--watch",
            "--watch-interval",
            "soon",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--watch-interval"), "{stderr}");
}
