//! gRPC through Sluice, black box: the real Python `grpcio` library as both client and server
//! (tests/grpc/client.py and tests/grpc/server.py, raw-bytes generic handlers, so no protoc),
//! with the `http_proxy` filter routing by `grpc: { service, method }` to `protocol: http2`
//! clusters. Every scenario first runs straight against the server, so a failure through Sluice
//! is known to be Sluice's. CI installs grpcio with `pip install grpcio`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

// ---------------------------------------------------------------------------------------------
// The Python side
// ---------------------------------------------------------------------------------------------

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/grpc/{name}"))
}

/// A running tests/grpc/server.py. Killed on drop, so a failing test never leaks one.
struct GrpcServer {
    child: Child,
    addr: SocketAddr,
}

impl GrpcServer {
    /// Starts the echo server under `name` (what its `Name` method answers) on a free port and
    /// returns once it printed "ready".
    fn start(name: &str) -> GrpcServer {
        Self::start_with(name, None)
    }

    /// Like [`GrpcServer::start`], advertising `max_streams` concurrent streams per connection.
    fn start_with(name: &str, max_streams: Option<u32>) -> GrpcServer {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Self::start_at(addr, name, max_streams)
    }

    fn start_at(addr: SocketAddr, name: &str, max_streams: Option<u32>) -> GrpcServer {
        let child = Command::new("python3")
            .arg(script("server.py"))
            .arg(addr.port().to_string())
            .arg(name)
            .args(max_streams.map(|m| m.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed (with `pip install grpcio`)");
        let mut server = GrpcServer { child, addr };
        wait_for_ready_line(&mut server.child, &format!("grpc server {name}"));
        server
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one tests/grpc/client.py scenario against `target`, bounded by `DEADLINE`:
/// its stdout, or (on a non-zero exit or timeout) a description with its stderr.
fn client(target: SocketAddr, scenario: &str) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new("python3")
        .arg(script("client.py"))
        .arg(target.to_string())
        .arg(scenario)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("python3 must be installed (with `pip install grpcio`)");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = std::fs::read_to_string(&out).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(stdout),
        Some(s) => Err(format!(
            "client {scenario} exited with {s}; stdout:\n{stdout}stderr:\n{stderr}"
        )),
        None => Err(format!(
            "client {scenario} still running after {DEADLINE:?}; stdout:\n{stdout}stderr:\n{stderr}"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Sluice in front
// ---------------------------------------------------------------------------------------------

/// One `clusters[]` entry speaking h2c to `endpoint`.
fn h2_cluster(name: &str, endpoint: SocketAddr) -> String {
    format!(
        "  - name: {name}\n    protocol: http2\n    connect_timeout: 2s\n    endpoints: [{{ address: \"{endpoint}\" }}]\n"
    )
}

/// Starts sluice with one `http_proxy` listener (`codec: auto`) whose inline `routes` are
/// `routes` (block-style list items indented for that spot), plus `clusters`.
fn start_sluice(routes: &str, clusters: &str) -> (Sluice, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
listeners:
  - name: grpc
    address: \"{addr}\"
    filters:
      - http_proxy:
          codec: auto
          routes:
{routes}
clusters:
{clusters}"
    );
    (Sluice::start(&yaml), addr)
}

/// One echo server behind Sluice, routed by `grpc: { service: echo.Echo }`.
struct EchoSetup {
    server: GrpcServer,
    sluice: Sluice,
    addr: SocketAddr,
}

fn echo_setup() -> EchoSetup {
    let server = GrpcServer::start("A");
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: echo }",
        &h2_cluster("echo", server.addr),
    );
    EchoSetup {
        server,
        sluice,
        addr,
    }
}

/// The last lines of sluice's (debug) log, for failure messages.
fn log_tail(sluice: &Sluice) -> String {
    let log = sluice.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(80)..].join("\n")
}

/// Runs `scenario` through Sluice at `addr` and expects exactly `want` on stdout; fails with
/// the client's output and Sluice's log.
fn expect_through(sluice: &Sluice, addr: SocketAddr, scenario: &str, want: &str) {
    match client(addr, scenario) {
        Ok(out) if out == want => {}
        Ok(out) => panic!(
            "{scenario} through sluice: expected {want:?}, got {out:?}\nsluice log:\n{}",
            log_tail(sluice)
        ),
        Err(e) => panic!(
            "{scenario} through sluice: {e}\nsluice log:\n{}",
            log_tail(sluice)
        ),
    }
}

/// `scenario` straight to the server (the baseline), then through Sluice: both must print
/// exactly `want`.
fn check(scenario: &str, want: &str) {
    let s = echo_setup();
    assert_eq!(
        client(s.server.addr, scenario).as_deref(),
        Ok(want),
        "{scenario} straight to the server (no sluice): the test setup itself is broken"
    );
    expect_through(&s.sluice, s.addr, scenario, want);
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[test]
fn unary_call() {
    check("unary", "unary: hello grpc\n");
}

#[test]
fn error_status_details_and_trailers_reach_the_client() {
    // grpc-status (the code), grpc-message (the details) and a custom trailer all travel in
    // the trailers-only response; losing any of them changes what the client prints.
    check(
        "error",
        "code: INVALID_ARGUMENT\ndetails: asked to fail\ntrailer x-why: because\n",
    );
}

#[test]
fn server_streaming() {
    check(
        "server_stream",
        "server_stream: msg-0,msg-1,msg-2,msg-3,msg-4\n",
    );
}

#[test]
fn server_streaming_error_after_messages_keeps_trailers() {
    // Here grpc-status, grpc-message and x-why come in a trailers frame after DATA frames.
    check(
        "stream_error",
        "received: before-0,before-1\ncode: INVALID_ARGUMENT\ndetails: asked to fail\ntrailer x-why: because\n",
    );
}

#[test]
fn client_streaming() {
    check("client_stream", "client_stream: abcdef\n");
}

#[test]
fn bidi_streaming_ping_pong() {
    check("bidi", "bidi: 100 echoed in order\n");
}

#[test]
fn large_message_4mib() {
    check("large", "large: 4194304 bytes echoed\n");
}

#[test]
fn deadline_exceeded_then_the_proxy_still_serves() {
    let s = echo_setup();
    assert_eq!(
        client(s.server.addr, "deadline").as_deref(),
        Ok("deadline: DEADLINE_EXCEEDED\n"),
        "baseline (no sluice)"
    );
    expect_through(
        &s.sluice,
        s.addr,
        "deadline",
        "deadline: DEADLINE_EXCEEDED\n",
    );
    // The cancelled stream must not have broken the pooled upstream connection.
    expect_through(&s.sluice, s.addr, "unary", "unary: hello grpc\n");
}

#[test]
fn routes_by_grpc_service_and_method() {
    let a = GrpcServer::start("A");
    let b = GrpcServer::start("B");
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo, method: Name } }
              route: { cluster: a }
            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: b }",
        &format!("{}{}", h2_cluster("a", a.addr), h2_cluster("b", b.addr)),
    );
    // Name goes to A; Unary (the rest of the service) to B, whose Name would say "B".
    expect_through(&sluice, addr, "name", "name: A\nunary: x\n");
    assert_eq!(
        client(b.addr, "name").as_deref(),
        Ok("name: B\nunary: x\n"),
        "baseline: B answers its own name"
    );
    // A service no route names: Sluice's 404, which gRPC clients read as UNIMPLEMENTED.
    expect_through(&sluice, addr, "unknown", "unknown: UNIMPLEMENTED\n");
}

#[test]
fn retries_a_trailers_only_unavailable_on_another_host() {
    let down = GrpcServer::start("down");
    let up = GrpcServer::start("up");
    assert_eq!(
        client(down.addr, "flaky").as_deref(),
        Ok("flaky: UNAVAILABLE\n"),
        "baseline: the down server fails"
    );
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: both, retry_policy: { retry_on: unavailable, num_retries: 1 } }",
        &format!(
            "  - name: both\n    protocol: http2\n    connect_timeout: 2s\n    endpoints: [{{ address: \"{}\" }}, {{ address: \"{}\" }}]\n",
            down.addr, up.addr
        ),
    );
    // Whichever host the first try picks, the answer comes from `up`: a try on `down` gets
    // grpc-status 14 in a trailers-only response and is retried on the host not tried yet.
    for _ in 0..4 {
        expect_through(&sluice, addr, "flaky", "flaky: up\n");
    }
}

#[test]
fn bidi_streaming_on_a_route_with_a_retry_policy() {
    let server = GrpcServer::start("A");
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: echo, retry_policy: { retry_on: unavailable } }",
        &h2_cluster("echo", server.addr),
    );
    expect_through(&sluice, addr, "bidi", "bidi: 100 echoed in order\n");
}

/// Twelve calls held open together (tests/grpc/client.py `gather`) through a cluster whose
/// connections carry at most four streams each, by the upstream's SETTINGS or by the
/// cluster's own `max_concurrent_streams`: Sluice opens three connections and none of the
/// calls waits behind another.
fn gather_through(server: &GrpcServer, cluster_extra: &str) {
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: echo }",
        &format!("{}{cluster_extra}", h2_cluster("echo", server.addr)),
    );
    expect_through(&sluice, addr, "gather", "together: 12/12\nconnections: 3\n");
}

#[test]
fn a_full_upstream_http2_connection_gets_a_second_one_by_the_servers_stream_limit() {
    let server = GrpcServer::start_with("A", Some(4));
    gather_through(&server, "");
}

#[test]
fn a_full_upstream_http2_connection_gets_a_second_one_by_the_clusters_stream_limit() {
    let server = GrpcServer::start("A");
    gather_through(
        &server,
        "    http2_protocol_options: { max_concurrent_streams: 4 }\n",
    );
}

#[test]
fn an_upstream_restart_is_followed_by_a_new_http2_connection() {
    let first = GrpcServer::start("A");
    let addr_a = first.addr;
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: echo }",
        &h2_cluster("echo", addr_a),
    );
    expect_through(&sluice, addr, "unary", "unary: hello grpc\n");
    // The upstream goes away (its pooled connection with it) and comes back on the same port.
    drop(first);
    let _second = GrpcServer::start_at(addr_a, "A2", None);
    expect_through(&sluice, addr, "name", "name: A2\nunary: x\n");
}

#[test]
fn max_requests_per_connection_spreads_http2_streams_over_connections() {
    let server = GrpcServer::start("A");
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: echo }",
        &format!(
            "{}    common_http_protocol_options: {{ max_requests_per_connection: 2 }}\n",
            h2_cluster("echo", server.addr)
        ),
    );
    // Twelve calls held open together, two streams per connection at most over its life.
    expect_through(&sluice, addr, "gather", "together: 12/12\nconnections: 6\n");
}

/// A TCP relay in front of a server that can go silent: after [`Freezer::freeze`], the
/// connections it relayed so far pass nothing more either way (as when a peer vanishes
/// without a FIN), while new connections are relayed normally.
struct Freezer {
    addr: SocketAddr,
    /// Connections accepted before this generation are frozen.
    frozen_before: Arc<AtomicUsize>,
    /// Relayed connections the client side has closed.
    closed_by_client: Arc<AtomicUsize>,
}

impl Freezer {
    fn start(backend: SocketAddr) -> Freezer {
        let frozen_before = Arc::new(AtomicUsize::new(0));
        let closed_by_client = Arc::new(AtomicUsize::new(0));
        let generation = Arc::new(AtomicUsize::new(0));
        let (frozen, closed) = (frozen_before.clone(), closed_by_client.clone());
        let addr = spawn_server(move |client| {
            let mine = generation.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(backend) else {
                return;
            };
            let relay = move |mut from: TcpStream, mut to: TcpStream, frozen: Arc<AtomicUsize>| {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        // Frozen: read and drop, so the sender sees no answer and no close.
                        Ok(_) if frozen.load(Ordering::SeqCst) > mine => {}
                        Ok(n) => {
                            if to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = to.shutdown(Shutdown::Write);
            };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let f = frozen.clone();
            let back = thread::spawn(move || relay(s2, c2, f));
            relay(client, server, frozen.clone());
            closed.fetch_add(1, Ordering::SeqCst);
            let _ = back.join();
        });
        Freezer {
            addr,
            frozen_before,
            closed_by_client,
        }
    }

    /// Freezes every connection relayed so far.
    fn freeze(&self, accepted_so_far: usize) {
        self.frozen_before.store(accepted_so_far, Ordering::SeqCst);
    }
}

#[test]
fn keepalive_pings_retire_an_upstream_connection_that_went_silent() {
    let server = GrpcServer::start("A");
    let freezer = Freezer::start(server.addr);
    let (sluice, addr) = start_sluice(
        "            - match: { prefix: /, grpc: { service: echo.Echo } }
              route: { cluster: echo, timeout: 5s }",
        &format!(
            "{}    http2_protocol_options: {{ connection_keepalive: {{ interval: 200ms, timeout: 300ms }} }}\n",
            h2_cluster("echo", freezer.addr)
        ),
    );
    expect_through(&sluice, addr, "unary", "unary: hello grpc\n");
    // The pooled connection goes silent: its PINGs go unanswered, so Sluice closes it...
    freezer.freeze(1);
    let start = Instant::now();
    while freezer.closed_by_client.load(Ordering::SeqCst) == 0 {
        assert!(
            start.elapsed() < DEADLINE,
            "the silent upstream connection was not closed within {DEADLINE:?}\n{}",
            log_tail(&sluice)
        );
        thread::sleep(Duration::from_millis(20));
    }
    // ...and the next call goes out on a new one instead of waiting on the dead one.
    expect_through(&sluice, addr, "unary", "unary: hello grpc\n");
}
