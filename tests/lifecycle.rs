//! Process lifecycle: readiness, graceful drain on signals, bind failures, logs, quick start.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn tcp_config(port: u16, upstream: SocketAddr, drain: &str, extra_listener: &str) -> String {
    format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
drain_timeout: {drain}
listeners:
  - name: tcp_in
    address: \"127.0.0.1:{port}\"
{extra_listener}    filters: [{{ tcp_proxy: {{ cluster: backend }} }}]
clusters:
  - name: backend
    endpoints: [{{ address: \"{upstream}\" }}]
"
    )
}

/// Waits (bounded) until connecting to `addr` is refused.
fn wait_refused(addr: SocketAddr) {
    let start = Instant::now();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => return,
            _ => {}
        }
        assert!(
            start.elapsed() < DEADLINE,
            "listener still accepting after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ready_and_listeners_are_reported() {
    let port = free_port();
    let s = Sluice::start(&tcp_config(port, echo_server(), "5s", ""));
    assert_eq!(http_get(s.admin, "/ready").unwrap(), (200, "LIVE\n".into()));
    assert_eq!(
        http_get(s.admin, "/listeners").unwrap(),
        (200, format!("tcp_in::127.0.0.1:{port}\n"))
    );
    assert_eq!(http_get(s.admin, "/nope").unwrap().0, 404);
}

#[test]
fn sigterm_drains_live_connections_and_refuses_new_ones() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = Sluice::start(&tcp_config(port, echo_server(), "15s", ""));
    let mut old = connect(addr);
    roundtrip(&mut old, b"before");

    s.signal("TERM");
    wait_refused(addr);
    // Still draining (the old connection is open): readiness says so.
    assert_eq!(
        http_get(s.admin, "/ready").unwrap(),
        (503, "DRAINING\n".into())
    );
    // The connection opened before the signal keeps working...
    roundtrip(&mut old, b"after the signal");
    assert!(
        s.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "exited while a connection was live"
    );
    // ...and once it closes, the process exits cleanly.
    drop(old);
    let status = s.wait_exit();
    assert_eq!(status.code(), Some(0), "log:\n{}", s.log());
    assert!(s.log().contains("drained; exiting"), "{}", s.log());
}

#[test]
fn sigint_drains_too() {
    let port = free_port();
    let mut s = Sluice::start(&tcp_config(port, echo_server(), "15s", ""));
    s.signal("INT");
    assert_eq!(s.wait_exit().code(), Some(0));
}

#[test]
fn drain_timeout_cuts_connections_that_do_not_finish() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = Sluice::start(&tcp_config(port, echo_server(), "500ms", ""));
    let mut stuck = connect(addr);
    roundtrip(&mut stuck, b"x");
    s.signal("TERM");
    assert_eq!(s.wait_exit().code(), Some(0));
    assert!(s.log().contains("drain timeout reached"), "{}", s.log());
    assert_closed(&mut stuck, "connection past the drain timeout");
}

#[test]
fn a_taken_port_fails_with_the_listener_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut s = Sluice::spawn(&tcp_config(port, echo_server(), "5s", ""), &[]);
    assert_eq!(s.wait_exit().code(), Some(1));
    let expected =
        format!("listener \"tcp_in\": cannot bind 127.0.0.1:{port}: Address already in use");
    assert_eq!(s.log().matches(&expected).count(), 1, "{}", s.log());
    // Said once: not repeated by an error chain.
    assert_eq!(
        s.log().matches("Address already in use").count(),
        1,
        "{}",
        s.log()
    );
}

#[test]
fn a_taken_admin_port_fails_with_admin_named() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = taken.local_addr().unwrap();
    let yaml =
        tcp_config(free_port(), echo_server(), "5s", "").replace("{admin}", &admin.to_string());
    let mut s = Sluice::spawn(&yaml, &[]);
    assert_eq!(s.wait_exit().code(), Some(1));
    assert!(
        s.log().contains(&format!("admin: cannot bind {admin}")),
        "{}",
        s.log()
    );
}

#[test]
fn reuse_port_lets_a_second_process_bind_the_same_port() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let yaml = tcp_config(port, echo_server(), "5s", "    reuse_port: true\n");
    let _first = Sluice::start(&yaml);
    let _second = Sluice::start(&yaml);
    let mut c = connect(addr);
    roundtrip(&mut c, b"either process");
    // Without reuse_port, the same situation is a bind error.
    let mut third = Sluice::spawn(&tcp_config(port, echo_server(), "5s", ""), &[]);
    assert_eq!(third.wait_exit().code(), Some(1));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut s = Sluice::start_with(
        &tcp_config(free_port(), echo_server(), "5s", ""),
        &["--log-format", "json", "--log-level", "info"],
    );
    s.signal("TERM");
    s.wait_exit();
    let log = s.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 3, "{log}");
    for line in lines {
        assert!(
            line.starts_with('{') && line.ends_with('}'),
            "not a JSON line: {line}"
        );
        assert!(line.contains("\"level\":\"INFO\""), "{line}");
    }
    assert!(log.contains("\"message\":\"sluice ready\""), "{log}");
}

#[test]
fn log_level_flag_overrides_rust_log() {
    // The harness sets RUST_LOG=debug; --log-level warn must silence info lines.
    let mut s = Sluice::start_with(
        &tcp_config(free_port(), echo_server(), "5s", ""),
        &["--log-level", "warn"],
    );
    s.signal("TERM");
    s.wait_exit();
    assert!(!s.log().contains("sluice ready"), "{}", s.log());
}

#[test]
fn a_bad_log_level_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.yaml"), "listeners: []\n").unwrap();
    let (code, _, err) = sluice_cmd(
        &["run", "-c", "c.yaml", "--log-level", "info,=[="],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(err.contains("invalid --log-level"), "{err}");
}

#[test]
fn the_quick_start_works_with_curl() {
    // The README's first command, on its own ports: curl through both listeners.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let yaml = std::fs::read_to_string(root.join("examples/quickstart.yaml")).unwrap();
    let (tcp, http) = (free_port(), free_port());
    // The harness fills {admin} in both places: the admin address and the cluster endpoint.
    let yaml = yaml
        .replace("127.0.0.1:15000", "{admin}")
        .replace("127.0.0.1:10000", &format!("127.0.0.1:{tcp}"))
        .replace("127.0.0.1:10080", &format!("127.0.0.1:{http}"));
    let _s = Sluice::start(&yaml);
    let curl = |url: String| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", &url])
            .output()
            .expect("curl must be installed (.ci/run installs it)");
        assert!(
            out.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(format!("http://127.0.0.1:{tcp}/ready")), "LIVE\n");
    assert_eq!(curl(format!("http://127.0.0.1:{http}/ready")), "LIVE\n");
    assert_eq!(
        curl(format!("http://127.0.0.1:{http}/hello")),
        "hello from sluice\n"
    );
}

#[test]
fn many_concurrent_connections_all_complete() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _s = Sluice::start(&tcp_config(port, echo_server(), "5s", ""));
    let handles: Vec<_> = (0..50u8)
        .map(|i| {
            thread::spawn(move || {
                let mut c = connect(addr);
                for j in 0..20u8 {
                    roundtrip(&mut c, &[i, j, 1, 2, 3]);
                }
                c.flush().unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn per_core_workers_serve_tcp_and_unix_and_drain() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let uds = dir.path().join("in.sock");
    let upstream = echo_server();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
worker_mode: per_core
listeners:
  - name: tcp_in
    address: \"127.0.0.1:{port}\"
    filters: [{{ tcp_proxy: {{ cluster: backend }} }}]
  - name: uds_in
    address: \"unix:{}\"
    filters: [{{ tcp_proxy: {{ cluster: backend }} }}]
clusters:
  - name: backend
    endpoints: [{{ address: \"{upstream}\" }}]
",
        uds.display()
    );
    let mut s = Sluice::start(&yaml);
    assert!(s.log().contains("sockets=2"), "{}", s.log());
    let clients: Vec<_> = (0..20u8)
        .map(|i| {
            thread::spawn(move || {
                let mut c = connect(addr);
                roundtrip(&mut c, &[i; 32]);
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    for _ in 0..5 {
        let mut c = std::os::unix::net::UnixStream::connect(&uds).unwrap();
        c.set_read_timeout(Some(DEADLINE)).unwrap();
        c.write_all(b"uds").unwrap();
        let mut b = [0u8; 3];
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"uds");
    }
    let mut held = connect(addr);
    roundtrip(&mut held, b"held");
    s.signal("TERM");
    wait_refused(addr);
    roundtrip(&mut held, b"still served while draining");
    drop(held);
    assert_eq!(s.wait_exit().code(), Some(0), "{}", s.log());
    assert!(!uds.exists(), "socket file left behind");
}

#[test]
fn idle_http_keep_alive_connections_do_not_hold_the_drain() {
    // A keep-alive HTTP connection with nothing in flight is closed as soon as draining
    // starts, so the process exits well before a long drain_timeout (60s here, while the
    // harness gives up after 20s).
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut s = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
drain_timeout: 60s
listeners:
  - name: web
    address: \"127.0.0.1:{port}\"
    filters:
      - http_proxy:
          routes: [{{ match: {{ prefix: / }}, direct_response: {{ status: 200, body: \"hi\" }} }}]
"
    ));
    let mut c = connect(addr);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let n = c.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // The connection stays open (keep-alive); now stop the process.
    s.signal("TERM");
    assert_eq!(s.wait_exit().code(), Some(0), "{}", s.log());
    assert!(s.log().contains("drained; exiting"), "{}", s.log());
    assert_closed(&mut c, "idle keep-alive connection after drain");
}
