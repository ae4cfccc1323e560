//! Upstream TLS (a cluster's `tls:` block), end to end: the real binary dials nginx over HTTPS
//! (server and client certificates, SNI, SAN checks, idle keep-alive closes, health checks), a
//! Python grpcio server over TLS with ALPN h2, and a second Sluice with a TLS listener requiring
//! client certificates (sidecar to sidecar mTLS, for HTTP and Bolt). Certificates are made at
//! run time by `examples/certs/gen.sh`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::bolt::{BoltClient, BoltServer};
use common::curl::{curl, Reply};
use common::nginx::Nginx;
use common::*;

fn cert(name: &str) -> String {
    common::certs::file(name)
}

fn local(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// nginx over HTTPS with `certificate` (`server`, `backend`, ...) and the given extra
/// directives and `location` blocks.
fn nginx_tls(certificate: &str, server: &str) -> Nginx {
    Nginx::serving_tls(&format!(
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_certificate {}; ssl_certificate_key {}; {server}",
        cert(&format!("{certificate}.pem")),
        cert(&format!("{certificate}.key"))
    ))
}

/// nginx answering with the SNI it saw, the TLS version and its connection number.
fn nginx_echoing_tls(certificate: &str, extra: &str) -> Nginx {
    nginx_tls(
        certificate,
        &format!(
            r#"{extra} location / {{ return 200 "sni=$ssl_server_name proto=$ssl_protocol conn=$connection client=$ssl_client_s_dn"; }}"#
        ),
    )
}

/// Sluice with a plaintext `http_proxy` listener sending everything to the cluster `secure`
/// at `upstream`, whose `tls:` is `tls` (a flow mapping). `cluster_extra` adds keys to the
/// cluster (each line indented by 4 spaces).
fn sluice_to(upstream: SocketAddr, tls: &str, cluster_extra: &str) -> (Sluice, SocketAddr) {
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: secure }} }}] }}
clusters:
  - name: secure
    connect_timeout: 2s
    tls: {tls}
    endpoints: [{{ address: \"{upstream}\" }}]
{cluster_extra}"
    );
    (Sluice::start(&yaml), addr)
}

fn get(addr: SocketAddr) -> Reply {
    curl(&[&format!("http://{addr}/")])
}

/// `ca` and, if given, a client certificate, as `tls:` keys.
fn ca(file: &str) -> String {
    format!("ca: \"{}\"", cert(file))
}

fn client_cert(name: &str) -> String {
    format!(
        "cert_chain: \"{}\", private_key: \"{}\"",
        cert(&format!("{name}.pem")),
        cert(&format!("{name}.key"))
    )
}

/// Waits until the Sluice log holds `needle` (log lines are written as things happen).
fn log_has(s: &Sluice, needle: &str) {
    s.poll(&format!("\"{needle}\" in the log"), || {
        s.log().contains(needle).then_some(())
    });
}

// ---------------------------------------------------------------------------------------------
// HTTP to nginx over TLS
// ---------------------------------------------------------------------------------------------

#[test]
fn http_to_an_https_upstream_verified_by_ca_and_ip() {
    let nginx = nginx_echoing_tls("server", "");
    // No `sni`: the endpoint's IP is the name verified (server.pem has IP:127.0.0.1), and no
    // SNI is sent (IP addresses are never sent as SNI).
    let (_s, addr) = sluice_to(nginx.addr, &format!("{{ {} }}", ca("ca.pem")), "");
    let reply = get(addr);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.text();
    assert!(body.starts_with("sni= proto=TLSv1.3 "), "{body}");
    assert!(
        body.ends_with("client="),
        "no client certificate was sent: {body}"
    );
}

#[test]
fn sni_is_sent_and_is_the_name_verified() {
    let nginx = nginx_echoing_tls("server", "");
    let (_s, addr) = sluice_to(
        nginx.addr,
        &format!("{{ sni: b.example.com, {} }}", ca("ca.pem")),
        "",
    );
    let reply = get(addr);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.text().starts_with("sni=b.example.com "),
        "{}",
        reply.text()
    );

    // A name the certificate does not hold: the handshake fails, the request gets 503 and
    // the debug log names the host and the reason.
    let (s, addr) = sluice_to(
        nginx.addr,
        &format!("{{ sni: nothere.example.com, {} }}", ca("ca.pem")),
        "",
    );
    assert_eq!(get(addr).status, 503);
    log_has(&s, "TLS handshake with \\\"nothere.example.com\\\" failed");
    assert!(
        s.log().contains("certificate not valid for name"),
        "{}",
        s.log()
    );
    assert!(s.log().contains(&nginx.addr.to_string()), "{}", s.log());
}

#[test]
fn a_server_from_another_ca_is_refused() {
    let nginx = nginx_echoing_tls("server", "");
    let (s, addr) = sluice_to(nginx.addr, &format!("{{ {} }}", ca("other-ca.pem")), "");
    assert_eq!(get(addr).status, 503);
    log_has(&s, "UnknownIssuer");
    // insecure_skip_verify accepts it, and says so at start.
    let (s, addr) = sluice_to(nginx.addr, "{ insecure_skip_verify: true }", "");
    assert_eq!(get(addr).status, 200);
    log_has(&s, "insecure_skip_verify: true");
    let log = s.log();
    assert!(
        log.lines()
            .any(|l| l.contains("insecure_skip_verify: true") && l.contains("cluster=secure")),
        "the warning names the cluster: {log}"
    );
}

#[test]
fn client_certificates_reach_an_nginx_that_requires_them() {
    let extra = format!(
        "ssl_verify_client on; ssl_client_certificate {};",
        cert("ca.pem")
    );
    let nginx = nginx_echoing_tls("server", &extra);
    let (_s, addr) = sluice_to(
        nginx.addr,
        &format!("{{ {}, {} }}", ca("ca.pem"), client_cert("client")),
        "",
    );
    let reply = get(addr);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.text().contains("client=CN=client,O=Sluice test"),
        "{}",
        reply.text()
    );

    // Without one, nginx completes the handshake and refuses the request itself (400).
    let (_s, addr) = sluice_to(nginx.addr, &format!("{{ {} }}", ca("ca.pem")), "");
    let reply = get(addr);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("No required SSL certificate was sent"),
        "{}",
        reply.text()
    );
}

#[test]
fn verify_san_replaces_the_name_check() {
    // backend.pem carries URI spiffe://cluster.local/ns/default/sa/backend and DNS
    // backend.local, not 127.0.0.1.
    let nginx = nginx_echoing_tls("backend", "");
    let want = "spiffe://cluster.local/ns/default/sa/backend";
    let (_s, addr) = sluice_to(
        nginx.addr,
        &format!("{{ {}, verify_san: [\"{want}\"] }}", ca("ca.pem")),
        "",
    );
    assert_eq!(get(addr).status, 200);

    // The same cluster without verify_san checks the IP, which the certificate lacks.
    let (s, addr) = sluice_to(nginx.addr, &format!("{{ {} }}", ca("ca.pem")), "");
    assert_eq!(get(addr).status, 503);
    log_has(&s, "certificate not valid for name \\\"127.0.0.1\\\"");

    // Any of the listed SANs will do; none of them present fails.
    let (_s, addr) = sluice_to(
        nginx.addr,
        &format!(
            "{{ {}, verify_san: [other.local, {{ dns: BACKEND.local }}] }}",
            ca("ca.pem")
        ),
        "",
    );
    assert_eq!(get(addr).status, 200);
    let (s, addr) = sluice_to(
        nginx.addr,
        &format!(
            "{{ {}, verify_san: [\"spiffe://cluster.local/ns/default/sa/other\", 127.0.0.1] }}",
            ca("ca.pem")
        ),
        "",
    );
    assert_eq!(get(addr).status, 503);
    log_has(&s, "SAN mismatch");
    assert!(
        s.log().contains(want),
        "the log lists what was found: {}",
        s.log()
    );
}

#[test]
fn an_idle_tls_connection_the_upstream_closed_is_not_reused() {
    let nginx = nginx_echoing_tls("server", "keepalive_timeout 1s;");
    let (_s, addr) = sluice_to(nginx.addr, &format!("{{ {} }}", ca("ca.pem")), "");
    let conn = |reply: &Reply| -> String {
        let body = reply.text();
        body.split_whitespace()
            .find_map(|w| w.strip_prefix("conn=").map(str::to_string))
            .unwrap_or_else(|| panic!("{body}"))
    };
    // Two requests in a row share one pooled TLS connection (TLS 1.3 session tickets read
    // while idle do not make it look closed).
    let first = get(addr);
    assert_eq!(first.status, 200);
    let second = get(addr);
    assert_eq!(conn(&first), conn(&second), "keep-alive over TLS");

    // nginx closes it after its keepalive_timeout: wait for that, then a POST (which is never
    // resent on another connection) must go out on a new connection and succeed.
    let port = nginx.addr.port();
    let start = Instant::now();
    while established_to(port) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "nginx never closed"
        );
        thread::sleep(Duration::from_millis(50));
    }
    let third = curl(&["-d", "payload", &format!("http://{addr}/")]);
    assert_eq!(third.status, 200, "{}", third.text());
    assert_ne!(conn(&first), conn(&third));
}

/// Whether a TCP connection to 127.0.0.1:`port` is still established (per `ss`).
fn established_to(port: u16) -> bool {
    let out = Command::new("ss")
        .args([
            "-Htn",
            "state",
            "established",
            "dst",
            &format!("127.0.0.1:{port}"),
        ])
        .output()
        .expect("ss (iproute2) must be installed");
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

#[test]
fn health_checks_use_the_cluster_tls() {
    let nginx = nginx_tls("server", r#"location / { return 200 "ok"; }"#);
    let check = "    health_check: { http: { path: /healthz }, interval: 200ms, timeout: 1s, unhealthy_threshold: 1, healthy_threshold: 1 }\n";
    let flags = |s: &Sluice| {
        let (_, body) = http_get(s.admin, "/clusters").unwrap();
        let prefix = format!("secure::{}::health_flags::", nginx.addr);
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .unwrap_or_default()
    };
    let (good, _) = sluice_to(nginx.addr, &format!("{{ {} }}", ca("ca.pem")), check);
    good.poll("the host to be healthy", || {
        (flags(&good) == "healthy").then_some(())
    });
    // The same check trusting another CA fails: it did go over TLS.
    let (bad, _) = sluice_to(nginx.addr, &format!("{{ {} }}", ca("other-ca.pem")), check);
    bad.poll("the host to fail its check", || {
        flags(&bad).contains("failed_active_hc").then_some(())
    });
    log_has(&bad, "UnknownIssuer");
}

// ---------------------------------------------------------------------------------------------
// tcp_proxy
// ---------------------------------------------------------------------------------------------

#[test]
fn tcp_proxy_carries_plaintext_into_a_tls_upstream() {
    let nginx = nginx_tls(
        "server",
        r#"location / { return 200 "over tls $ssl_protocol"; }"#,
    );
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: tcp
    address: \"{addr}\"
    filters: [{{ tcp_proxy: {{ cluster: secure }} }}]
clusters:
  - name: secure
    tls: {{ sni: localhost, {} }}
    endpoints: [{{ address: \"{}\" }}]
",
        ca("ca.pem"),
        nginx.addr
    );
    let _s = Sluice::start(&yaml);
    let mut stream = connect(addr);
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("over tls TLSv1."), "{reply}");
}

/// Istio's automatic mTLS: one cluster, an endpoint labelled `tlsMode: istio` dialed over TLS
/// (with a client certificate) and an unlabelled one in plaintext, chosen per endpoint by
/// `transport_socket_matches`, for HTTP and for `tcp_proxy`.
#[test]
fn transport_socket_matches_choose_tls_per_endpoint() {
    let secure = nginx_echoing_tls(
        "server",
        &format!(
            "ssl_client_certificate {}; ssl_verify_client on;",
            cert("ca.pem")
        ),
    );
    let plain = Nginx::serving(r#"location / { return 200 "plaintext"; }"#);
    let (http, tcp) = (local(free_port()), local(free_port()));
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 1
listeners:
  - name: web
    address: \"{http}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: mesh }} }}] }}
  - name: tcp
    address: \"{tcp}\"
    filters: [{{ tcp_proxy: {{ cluster: mesh }} }}]
clusters:
  - name: mesh
    lb_policy: round_robin
    transport_socket_matches:
      - name: tlsMode-istio
        match: {{ tlsMode: istio }}
        tls: {{ {ca}, {client} }}
      - name: tlsMode-disabled
    endpoints:
      - {{ address: \"{secure}\", transport_socket_match: {{ tlsMode: istio }} }}
      - {{ address: \"{plain}\" }}
",
        ca = ca("ca.pem"),
        client = client_cert("client"),
        secure = secure.addr,
        plain = plain.addr,
    );
    let _s = Sluice::start(&yaml);
    // Round robin: both endpoints answer, each over its own transport.
    let mut bodies: Vec<String> = (0..4).map(|_| get(http).text()).collect();
    bodies.sort();
    bodies.dedup();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert_eq!(bodies[0], "plaintext", "{bodies:?}");
    assert!(
        bodies[1].starts_with("sni= proto=TLSv1.3") && bodies[1].contains("client=CN="),
        "{bodies:?}"
    );
    // tcp_proxy too: plaintext in, TLS (with the client certificate) or not, per endpoint.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let mut stream = connect(tcp);
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        seen.push(if reply.contains("proto=TLSv1.3") {
            "tls"
        } else {
            "plain"
        });
    }
    seen.sort();
    assert_eq!(seen, vec!["plain", "tls"]);
}

// ---------------------------------------------------------------------------------------------
// gRPC over TLS on both sides
// ---------------------------------------------------------------------------------------------

fn grpc_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/grpc/{name}"))
}

/// tests/grpc/server.py serving over TLS with server.pem. Killed on drop.
struct GrpcTlsServer {
    child: Child,
    addr: SocketAddr,
}

impl GrpcTlsServer {
    fn start(name: &str) -> GrpcTlsServer {
        let addr = local(free_port());
        let child = Command::new("python3")
            .arg(grpc_script("server.py"))
            .arg(addr.port().to_string())
            .arg(name)
            .env("GRPC_TLS_CERT", cert("server.pem"))
            .env("GRPC_TLS_KEY", cert("server.key"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 must be installed (with `pip install grpcio`)");
        let mut server = GrpcTlsServer { child, addr };
        wait_for_ready_line(&mut server.child, "grpc server");
        server
    }
}

impl Drop for GrpcTlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tests/grpc/client.py over TLS (trusting ca.pem, verifying `name`): its stdout or error.
fn grpc_tls_client(target: SocketAddr, name: &str, scenario: &str) -> Result<String, String> {
    let out = Command::new("timeout")
        .arg("30")
        .arg("python3")
        .arg(grpc_script("client.py"))
        .arg(target.to_string())
        .arg(scenario)
        .env("GRPC_TLS_CA", cert("ca.pem"))
        .env("GRPC_TLS_NAME", name)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn grpc_over_tls_downstream_and_upstream_with_alpn_h2() {
    let server = GrpcTlsServer::start("tls-up");
    assert_eq!(
        grpc_tls_client(server.addr, "a.example.com", "unary").as_deref(),
        Ok("unary: hello grpc\n"),
        "baseline (no sluice)"
    );
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: grpc
    address: \"{addr}\"
    tls:
      certificates: [{{ cert_chain: \"{chain}\", private_key: \"{key}\" }}]
      alpn: [h2]
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: grpc_up }} }}] }}
clusters:
  - name: grpc_up
    protocol: http2
    tls: {{ sni: a.example.com, {ca} }}
    endpoints: [{{ address: \"{up}\" }}]
",
        chain = cert("server.pem"),
        key = cert("server.key"),
        ca = ca("ca.pem"),
        up = server.addr
    );
    let s = Sluice::start(&yaml);
    for scenario in ["unary", "server_stream", "bidi"] {
        let through = grpc_tls_client(addr, "a.example.com", scenario);
        let direct = grpc_tls_client(server.addr, "a.example.com", scenario);
        assert!(through.is_ok(), "{scenario}: {through:?}\n{}", s.log());
        assert_eq!(through, direct, "{scenario}");
    }
    assert!(
        s.log().contains("upstream tls handshake done") && s.log().contains("alpn=\"h2\""),
        "{}",
        s.log()
    );
}

#[test]
fn an_alpn_choice_against_the_cluster_protocol_fails_the_connection() {
    // An HTTP/1.1 cluster offering only h2 to a server that takes it: the connection is
    // refused by Sluice, not misread as HTTP/1.1.
    let server = GrpcTlsServer::start("h2-only");
    let (s, addr) = sluice_to(
        server.addr,
        &format!("{{ sni: a.example.com, alpn: [h2], {} }}", ca("ca.pem")),
        "",
    );
    assert_eq!(get(addr).status, 503);
    log_has(&s, "the server chose ALPN \\\"h2\\\"");
}

// ---------------------------------------------------------------------------------------------
// Sidecar to sidecar
// ---------------------------------------------------------------------------------------------

/// Sluice "B": TLS listeners requiring a client certificate from ca.pem, in front of `web`
/// (HTTP) and `bolt` (a Bolt server). Returns it with its HTTP and Bolt addresses.
fn sidecar_b(web: SocketAddr, bolt: SocketAddr) -> (Sluice, SocketAddr, SocketAddr) {
    let (http_addr, bolt_addr) = (local(free_port()), local(free_port()));
    let tls = format!(
        "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}], client_ca: \"{}\", require_client_certificate: true }}",
        cert("server.pem"),
        cert("server.key"),
        cert("ca.pem")
    );
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: http_in
    address: \"{http_addr}\"
    tls: {tls}
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: web }} }}] }}
  - name: bolt_in
    address: \"{bolt_addr}\"
    tls: {tls}
    filters:
      - rpc_proxy: {{ protocol: bolt, route_config: rpc }}
route_configs:
  - name: rpc
    virtual_hosts:
      - name: all
        domains: [\"*\"]
        routes: [{{ match: {{ prefix: / }}, route: {{ cluster: bolt }} }}]
clusters:
  - name: web
    endpoints: [{{ address: \"{web}\" }}]
  - name: bolt
    endpoints: [{{ address: \"{bolt}\" }}]
"
    );
    (Sluice::start(&yaml), http_addr, bolt_addr)
}

/// Sluice "A": plaintext listeners sending HTTP and Bolt to B with `tls`. Returns it with
/// its HTTP and Bolt addresses.
fn sidecar_a(
    b_http: SocketAddr,
    b_bolt: SocketAddr,
    tls: &str,
) -> (Sluice, SocketAddr, SocketAddr) {
    let (http_addr, bolt_addr) = (local(free_port()), local(free_port()));
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: http_out
    address: \"{http_addr}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: b_http }} }}] }}
  - name: bolt_out
    address: \"{bolt_addr}\"
    filters:
      - rpc_proxy: {{ protocol: bolt, route_config: rpc }}
route_configs:
  - name: rpc
    virtual_hosts:
      - name: all
        domains: [\"*\"]
        routes: [{{ match: {{ prefix: / }}, route: {{ cluster: b_bolt }} }}]
clusters:
  - name: b_http
    connect_timeout: 2s
    tls: {tls}
    endpoints: [{{ address: \"{b_http}\" }}]
  - name: b_bolt
    connect_timeout: 2s
    tls: {tls}
    endpoints: [{{ address: \"{b_bolt}\" }}]
"
    );
    (Sluice::start(&yaml), http_addr, bolt_addr)
}

#[test]
fn sidecar_to_sidecar_mtls_carries_http_and_bolt() {
    let web = Nginx::serving(r#"location / { return 200 "from the app"; }"#);
    let bolt = BoltServer::start("app");
    let (b, b_http, b_bolt) = sidecar_b(web.addr, bolt.addr);

    let with_cert = format!(
        "{{ {}, {}, verify_san: [a.example.com] }}",
        ca("ca.pem"),
        client_cert("client")
    );
    let (a, a_http, a_bolt) = sidecar_a(b_http, b_bolt, &with_cert);
    let reply = get(a_http);
    assert_eq!(reply.status, 200, "{}\nA:\n{}", reply.text(), a.log());
    assert_eq!(reply.text(), "from the app");
    let run = BoltClient::new(a_bolt).count(20).concurrency(4).run();
    assert_eq!(
        (run.ok, run.errors),
        (20, 0),
        "{}\nA:\n{}",
        run.raw,
        a.log()
    );
    assert_eq!(run.tags.get("app"), Some(&20), "{}", run.raw);
    // B saw A's client certificate: its SPIFFE ID is the peer identity of both connections.
    log_has(&b, "spiffe://cluster.local/ns/default/sa/client");

    // Negative control: the same sidecar without a client certificate is refused by B.
    let (a2, a2_http, a2_bolt) = sidecar_a(b_http, b_bolt, &format!("{{ {} }}", ca("ca.pem")));
    assert_eq!(get(a2_http).status, 503, "A2:\n{}", a2.log());
    let run = BoltClient::new(a2_bolt).run();
    assert_eq!((run.ok, run.errors), (0, 1), "{}", run.raw);
    // And B with no TLS at all from the client: nothing gets through either.
    let mut plain = TcpStream::connect(b_http).unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("from the app"),
        "a plaintext client got through"
    );
}

// ---------------------------------------------------------------------------------------------
// Start-up errors
// ---------------------------------------------------------------------------------------------

#[test]
fn a_client_key_that_does_not_match_its_certificate_fails_the_start() {
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: tcp
    address: \"{}\"
    filters: [{{ tcp_proxy: {{ cluster: secure }} }}]
clusters:
  - name: secure
    tls: {{ {}, cert_chain: \"{}\", private_key: \"{}\" }}
    endpoints: [{{ address: \"127.0.0.1:9\" }}]
",
        local(free_port()),
        ca("ca.pem"),
        cert("client.pem"),
        cert("server.key")
    );
    let mut s = Sluice::spawn(&yaml, &[]);
    assert!(!s.wait_exit().success());
    let log = s.log();
    assert!(log.contains("cluster \"secure\": tls:"), "{log}");
    assert!(
        log.contains("the key does not match the certificate"),
        "{log}"
    );
    assert!(
        log.contains("client.pem") && log.contains("server.key"),
        "{log}"
    );
    assert!(!log.contains("BEGIN"), "no key material in messages: {log}");
}

#[test]
fn sluice_check_reports_tls_file_errors_with_their_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "clusters:
  - name: secure
    tls: {{ ca: \"{}\", cert_chain: \"{}\" }}
    endpoints: [{{ address: \"127.0.0.1:9\" }}]
  - name: unix
    tls: {{ {} }}
    endpoints: [{{ address: \"unix:/tmp/sluice-nowhere.sock\" }}]
",
            dir.path().join("missing.pem").display(),
            cert("client.pem"),
            ca("ca.pem")
        ),
    )
    .unwrap();
    let (code, _, stderr) = sluice_cmd(&["check", "-c", config.to_str().unwrap()], dir.path());
    assert_ne!(code, 0);
    assert!(
        stderr.contains("clusters[0].tls.ca: cannot read"),
        "{stderr}"
    );
    assert!(stderr.contains("missing.pem"), "{stderr}");
    assert!(
        stderr.contains("clusters[0].tls: cert_chain needs private_key"),
        "{stderr}"
    );
    assert!(
        stderr.contains("clusters[1].tls.sni: needed with Unix socket endpoints"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Rotation: the cluster's `ca` and client certificate are secrets, as a listener's are
// ---------------------------------------------------------------------------------------------

/// Replaces `to` by a copy of `from`, atomically (write beside it, then rename over).
fn replace_file(from: &str, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[test]
fn the_cluster_ca_and_client_certificate_rotate_from_files() {
    // A connection per request: rotation applies to new connections, and a kept-alive one
    // would keep the certificate it was made with.
    let extra = format!(
        "ssl_verify_client on; ssl_client_certificate {}; keepalive_timeout 0;",
        cert("ca.pem")
    );
    let nginx = nginx_echoing_tls("server", &extra);
    // At first the wrong CA and a client certificate nginx does not trust.
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, chain, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("client.pem"),
        dir.path().join("client.key"),
    );
    replace_file(&cert("other-ca.pem"), &ca_file);
    replace_file(&cert("other-client.pem"), &chain);
    replace_file(&cert("other-client.key"), &key);
    let (s, addr) = sluice_to(
        nginx.addr,
        &format!(
            "{{ ca: \"{}\", cert_chain: \"{}\", private_key: \"{}\" }}",
            ca_file.display(),
            chain.display(),
            key.display()
        ),
        "",
    );
    assert_eq!(get(addr).status, 503);
    // The right CA: the server is trusted now, but its request for a client certificate
    // gets one from the other CA.
    replace_file(&cert("ca.pem"), &ca_file);
    let reply = s.poll("a handshake with the rotated CA", || {
        let r = get(addr);
        (r.status != 503).then_some(r)
    });
    assert_eq!(reply.status, 400, "{}", reply.text());
    // The right client certificate: nginx accepts it on the next connection.
    replace_file(&cert("client.pem"), &chain);
    replace_file(&cert("client.key"), &key);
    let reply = s.poll("the rotated client certificate", || {
        let r = get(addr);
        (r.status == 200).then_some(r)
    });
    assert!(
        reply.text().contains("client=CN=client,O=Sluice test"),
        "{}",
        reply.text()
    );
    log_has(&s, "certificate rotated");
}

#[test]
fn the_cluster_ca_and_client_certificate_come_from_sds() {
    let extra = format!(
        "ssl_verify_client on; ssl_client_certificate {};",
        cert("ca.pem")
    );
    let nginx = nginx_echoing_tls("server", &extra);
    let dir = tempfile::tempdir().unwrap();
    let secret = |name: &str| {
        let d = dir.path().join("secrets").join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let ca_dir = secret("upstream-ca");
    std::fs::copy(cert("ca.pem"), ca_dir.join("trusted_ca.pem")).unwrap();
    let cert_dir = secret("client-cert");
    std::fs::copy(cert("client.pem"), cert_dir.join("cert_chain.pem")).unwrap();
    std::fs::copy(cert("client.key"), cert_dir.join("private_key.pem")).unwrap();
    let port = free_port();
    let cp = common::control_plane::ControlPlane::start(dir.path(), &format!("127.0.0.1:{port}"));
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
sds: {{ address: \"{}\" }}
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: secure }} }}] }}
clusters:
  - name: secure
    tls: {{ ca: {{ sds: upstream-ca }}, certificate: {{ sds: client-cert }} }}
    endpoints: [{{ address: \"{}\" }}]
",
        cp.address, nginx.addr
    );
    // The start waits for the cluster's secrets (`/ready` says LIVE only then), so the very
    // first request has them.
    let _s = Sluice::start(&yaml);
    let reply = get(addr);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.text().contains("client=CN=client,O=Sluice test"),
        "{}",
        reply.text()
    );
    let log = cp.log();
    assert!(
        log.contains("upstream-ca") && log.contains("client-cert"),
        "{log}"
    );
}

#[test]
fn a_dns_cluster_sends_and_verifies_the_endpoint_name() {
    // a.example.com and c.example.com resolve (by dnsmasq) to 127.0.0.1, where nginx serves a
    // certificate for a.example.com only. The cluster names no `sni`, so the endpoint's DNS
    // name is both sent and verified.
    let nginx = nginx_echoing_tls("server", "");
    let dns = common::dnsmasq::Dnsmasq::start(&[
        ("127.0.0.1", "a.example.com"),
        ("127.0.0.1", "c.example.com"),
    ]);
    let start = |host: &str| {
        let addr = local(free_port());
        let yaml = format!(
            "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: secure }} }}] }}
clusters:
  - name: secure
    connect_timeout: 2s
    type: strict_dns
    dns_refresh_rate: 200ms
    dns_resolvers: [\"{}\"]
    tls: {{ {} }}
    endpoints: [{{ address: \"{host}:{}\" }}]
",
            dns.addr,
            ca("ca.pem"),
            nginx.addr.port()
        );
        (Sluice::start(&yaml), addr)
    };
    let (s, web) = start("a.example.com");
    let reply = s.poll("a request to the resolved host", || {
        let r = get(web);
        (r.status == 200).then_some(r)
    });
    assert!(
        reply.text().contains("sni=a.example.com"),
        "{}",
        reply.text()
    );
    // A name the certificate does not carry is refused, though it is the same server.
    let (s2, web2) = start("c.example.com");
    s2.poll("the resolved host", || {
        let (_, body) = http_get(s2.admin, "/clusters").unwrap();
        body.contains("secure::127.0.0.1:").then_some(())
    });
    assert_eq!(get(web2).status, 503);
    log_has(&s2, "certificate not valid for name");
}
