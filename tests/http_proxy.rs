//! The `http_proxy` filter, end to end: the real binary between `curl` (HTTP/1.1 and h2c with
//! prior knowledge) and real upstreams (small std servers below, and nginx).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::curl::{curl, curl_h2, curl_raw, find};
use common::http1::{get, read_body, read_head, Headers};
use common::nginx::Nginx;
use common::*;

// ---------------------------------------------------------------------------------------------
// Starting sluice
// ---------------------------------------------------------------------------------------------

/// Starts sluice with one listener named `web` whose only filter is `http_proxy: <filter>`
/// (`filter` is a YAML flow mapping). `rest` is appended as top-level YAML (route_configs,
/// clusters). Returns the process and the listener's address.
fn start_web(filter: &str, rest: &str) -> (Sluice, SocketAddr) {
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {filter}
{rest}"
    );
    (Sluice::start(&yaml), addr)
}

/// One `clusters[]` entry (block style, indented for a top-level `clusters:` list).
fn cluster(name: &str, endpoint: SocketAddr) -> String {
    format!("  - name: {name}\n    connect_timeout: 2s\n    endpoints: [{{ address: \"{endpoint}\" }}]\n")
}

fn local(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 message reading (used by the upstreams and the in-process client)
// ---------------------------------------------------------------------------------------------

// (the helpers live in tests/common/http1.rs)

// ---------------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------------

/// An HTTP/1.1 upstream that answers every request with 200, `content-type: text/plain`,
/// `x-upstream: <name>`, and a body echoing what it received (see [`Echoed`]).
struct EchoUpstream {
    addr: SocketAddr,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
}

/// Starts an [`EchoUpstream`]: one thread per connection, keep-alive (many requests per
/// connection until the peer closes or sends `connection: close`).
fn echo_head_server(name: &str) -> EchoUpstream {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let name = name.to_string();
    let addr = spawn_server(move |conn| {
        count.fetch_add(1, Ordering::SeqCst);
        let _ = serve_echo(conn, &name);
    });
    EchoUpstream { addr, accepted }
}

fn serve_echo(conn: TcpStream, name: &str) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut r = BufReader::new(conn);
    while let Some((line, headers)) = read_head(&mut r)? {
        let body = read_body(&mut r, &headers)?;
        let mut echo = format!("{line}\n");
        for (n, v) in &headers {
            echo += &format!("{n}: {v}\n");
        }
        echo += "\n";
        let mut echo = echo.into_bytes();
        echo.extend_from_slice(&body);
        let close =
            get(&headers, "connection").is_some_and(|c| c.to_ascii_lowercase().contains("close"));
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-upstream: {name}\r\ncontent-length: {}\r\n\r\n",
            echo.len()
        );
        // One write: a head and body in separate small segments would meet Nagle's algorithm.
        let mut resp = head.into_bytes();
        resp.extend_from_slice(&echo);
        r.get_mut().write_all(&resp)?;
        if close {
            break;
        }
    }
    Ok(())
}

/// What an [`EchoUpstream`] received: its request line, headers (lowercased names, in order)
/// and body. The echo body is `<request line>\n<name>: <value>\n...\n\n<body>`.
#[derive(Debug)]
struct Echoed {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Echoed {
    fn parse(echo: &[u8]) -> Echoed {
        let end = find(echo, b"\n\n").unwrap_or_else(|| {
            panic!(
                "not an echo from the test upstream: {:?}",
                String::from_utf8_lossy(echo)
            )
        });
        let head = String::from_utf8_lossy(&echo[..end]).into_owned();
        let mut lines = head.lines();
        let request_line = lines.next().unwrap().to_string();
        let headers = lines
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap_or((l, ""));
                (n.to_string(), v.to_string())
            })
            .collect();
        Echoed {
            request_line,
            headers,
            body: echo[end + 2..].to_vec(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        get(&self.headers, name)
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// An upstream that reads a request's head and then closes the connection without answering.
fn closing_server() -> SocketAddr {
    spawn_server(|conn| {
        let _ = read_head(&mut BufReader::new(conn));
    })
}

// ---------------------------------------------------------------------------------------------
// In-process HTTP/1.1 keep-alive client (for bulk traffic; curl covers the protocol itself)
// ---------------------------------------------------------------------------------------------

struct Client {
    r: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = connect(addr);
        s.set_nodelay(true).unwrap();
        Client {
            r: BufReader::new(s),
        }
    }

    /// GET `path` on the open connection: (status, headers, body).
    fn get(&mut self, host: &str, path: &str) -> (u16, Headers, Vec<u8>) {
        // Formatted first, then one write (write! on a socket may send it in pieces).
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-test\r\n\r\n");
        self.r.get_mut().write_all(req.as_bytes()).unwrap();
        let (status_line, headers) = read_head(&mut self.r)
            .unwrap()
            .expect("proxy closed the keep-alive connection");
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let body = read_body(&mut self.r, &headers).unwrap();
        (status, headers, body)
    }
}

/// FNV-1a, to compare large bodies without printing them.
fn fnv(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Deterministic pseudo-random bytes (xorshift).
fn payload(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

const HEALTH_ROUTES: &str = "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: { path: /healthz }
            direct_response: { status: 200, body: \"ok\" }
";

#[test]
fn direct_response_over_http1_and_h2c() {
    let (_s, addr) = start_web("{ route_config: main }", HEALTH_ROUTES);
    let u = url(addr, "/healthz");

    let r = curl(&[&u]);
    assert_eq!(r.version, "HTTP/1.1");
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{r:?}"
    );

    let r = curl_h2(&[&u]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{r:?}"
    );

    // The same with the short `-s -o - -w` form: body then status.
    let out = curl_raw(&["-o", "-", "-w", "%{http_code}", &u]);
    assert_eq!(String::from_utf8_lossy(&out), "ok200");
}

#[test]
fn explicit_codecs_serve_their_protocol() {
    for (codec, h2) in [("http1", false), ("http2", true)] {
        let (_s, addr) = start_web(
            &format!("{{ codec: {codec}, route_config: main }}"),
            HEALTH_ROUTES,
        );
        let u = url(addr, "/healthz");
        let r = if h2 { curl_h2(&[&u]) } else { curl(&[&u]) };
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "ok"),
            "codec {codec}: {r:?}"
        );
    }
}

#[test]
fn no_route_and_unknown_host_are_404() {
    let (_s, addr) = start_web(
        "{ route_config: main }",
        "route_configs:
  - name: main
    virtual_hosts:
      - name: known
        domains: [\"known.test\"]
        routes:
          - match: { path: /only }
            direct_response: { status: 200, body: \"only\" }
",
    );
    let r = curl(&["-H", "Host: known.test", &url(addr, "/only")]);
    assert_eq!((r.status, r.text().as_str()), (200, "only"), "{r:?}");

    for (host, path) in [("known.test", "/other"), ("unknown.test", "/only")] {
        for h2 in [false, true] {
            let args = ["-H", &format!("Host: {host}"), &url(addr, path)];
            let r = if h2 { curl_h2(&args) } else { curl(&args) };
            let body = r.text();
            assert_eq!(r.status, 404, "Host {host} {path} (h2: {h2}): {r:?}");
            assert!(
                body.contains("no route") && body.contains("web"),
                "Host {host} {path} (h2: {h2}): body {body:?} should name the cause and the listener"
            );
            assert!(
                r.header("content-type")
                    .is_some_and(|c| c.starts_with("text/plain")),
                "{r:?}"
            );
        }
    }
}

#[test]
fn redirect_builds_the_location_from_the_request() {
    let (_s, addr) = start_web(
        "{ route_config: main }",
        "route_configs:
  - name: main
    virtual_hosts:
      - name: r
        domains: [\"*\"]
        routes:
          - match: { regex: \"^/old/(.*)$\" }
            redirect: { path_redirect: /new, response_code: 301 }
          - match: { prefix: /tmp/ }
            redirect: { host_redirect: elsewhere.test, response_code: 307, strip_query: true }
",
    );
    let r = curl(&["-H", "Host: redir.test", &url(addr, "/old/page")]);
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(r.header("location"), Some("http://redir.test/new"), "{r:?}");

    // The query is kept unless strip_query.
    let r = curl(&["-H", "Host: redir.test", &url(addr, "/old/page?a=1")]);
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("http://redir.test/new?a=1"),
        "{r:?}"
    );

    let r = curl(&["-H", "Host: redir.test", &url(addr, "/tmp/x?a=1")]);
    assert_eq!(r.status, 307, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("http://elsewhere.test/tmp/x"),
        "{r:?}"
    );

    // Over h2c the host comes from :authority.
    let r = curl_h2(&["-H", "Host: redir.test", &url(addr, "/old/page")]);
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(r.header("location"), Some("http://redir.test/new"), "{r:?}");
}

fn is_request_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn forward_config(up: SocketAddr) -> String {
    format!(
        "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: / }}
            route: {{ cluster: echo }}
clusters:
{}",
        cluster("echo", up)
    )
}

#[test]
fn forwarding_adds_proxy_headers_and_drops_hop_by_hop_ones() {
    let up = echo_head_server("e1");
    let (_s, addr) = start_web("{ route_config: main }", &forward_config(up.addr));

    // Plain request: path, Host, x-forwarded-*, a generated request id echoed on the response.
    let r = curl(&[&url(addr, "/some/path?x=1")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-upstream"), Some("e1"), "{r:?}");
    let seen = Echoed::parse(&r.body);
    assert_eq!(seen.request_line, "GET /some/path?x=1 HTTP/1.1", "{seen:?}");
    assert_eq!(seen.all("host"), vec![addr.to_string()], "{seen:?}");
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1"], "{seen:?}");
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http"], "{seen:?}");
    let id = seen.header("x-request-id").unwrap_or_default().to_string();
    assert!(
        is_request_id(&id),
        "upstream got x-request-id {id:?}: {seen:?}"
    );
    assert_eq!(r.header("x-request-id"), Some(id.as_str()), "{r:?}");

    // Another request gets another id.
    let r2 = curl(&[&url(addr, "/some/path")]);
    let id2 = Echoed::parse(&r2.body)
        .header("x-request-id")
        .unwrap_or_default()
        .to_string();
    assert!(is_request_id(&id2) && id2 != id, "ids {id:?} then {id2:?}");

    // A client's request id passes through unchanged and comes back.
    let r = curl(&["-H", "x-request-id: abc", &url(addr, "/")]);
    let seen = Echoed::parse(&r.body);
    assert_eq!(seen.all("x-request-id"), vec!["abc"], "{seen:?}");
    assert_eq!(r.header("x-request-id"), Some("abc"), "{r:?}");

    // An existing x-forwarded-for gets the client appended.
    let r = curl(&["-H", "x-forwarded-for: 10.0.0.1", &url(addr, "/")]);
    let seen = Echoed::parse(&r.body);
    let xff = seen.all("x-forwarded-for");
    assert_eq!(xff.len(), 1, "{seen:?}");
    let parts: Vec<&str> = xff[0].split(',').map(str::trim).collect();
    assert_eq!(parts, vec!["10.0.0.1", "127.0.0.1"], "{seen:?}");

    // Hop-by-hop headers, and those named in Connection, stop at the proxy.
    let r = curl(&[
        "-H",
        "Connection: keep-alive, x-drop",
        "-H",
        "Keep-Alive: timeout=5",
        "-H",
        "x-drop: 1",
        "-H",
        "Proxy-Connection: keep-alive",
        "-H",
        "x-keep: yes",
        &url(addr, "/hop"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = Echoed::parse(&r.body);
    assert!(seen.header("x-drop").is_none(), "x-drop leaked: {seen:?}");
    assert!(
        seen.header("keep-alive").is_none(),
        "keep-alive leaked: {seen:?}"
    );
    assert!(
        seen.header("proxy-connection").is_none(),
        "proxy-connection leaked: {seen:?}"
    );
    assert!(
        seen.all("connection").iter().all(|c| !c.contains("x-drop")),
        "the client's Connection header leaked: {seen:?}"
    );
    assert_eq!(seen.all("x-keep"), vec!["yes"], "{seen:?}");
}

#[test]
fn h2c_request_ids_and_forwarded_headers_too() {
    let up = echo_head_server("e1");
    let (_s, addr) = start_web("{ route_config: main }", &forward_config(up.addr));
    let r = curl_h2(&[&url(addr, "/h2/path?y=2")]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = Echoed::parse(&r.body);
    assert_eq!(seen.request_line, "GET /h2/path?y=2 HTTP/1.1", "{seen:?}");
    // :authority becomes host for an HTTP/1 upstream.
    assert_eq!(seen.all("host"), vec![addr.to_string()], "{seen:?}");
    assert_eq!(seen.all("x-forwarded-for"), vec!["127.0.0.1"], "{seen:?}");
    assert_eq!(seen.all("x-forwarded-proto"), vec!["http"], "{seen:?}");
    let id = seen.header("x-request-id").unwrap_or_default();
    assert!(is_request_id(id), "{seen:?}");
    assert_eq!(r.header("x-request-id"), Some(id), "{r:?}");
}

#[test]
fn prefix_rewrite_and_host_rewrite_literal() {
    let up = echo_head_server("app");
    // Inline route config (a mapping instead of a name).
    let (_s, addr) = start_web(
        "{ route_config: { virtual_hosts: [{ name: any, domains: [\"*\"], routes: [{ match: { prefix: /app/ }, route: { cluster: v1, prefix_rewrite: /, host_rewrite_literal: backend.internal } }] }] } }",
        &format!("clusters:\n{}", cluster("v1", up.addr)),
    );
    let r = curl(&["-H", "Host: front.test", &url(addr, "/app/items?q=1")]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = Echoed::parse(&r.body);
    assert_eq!(seen.request_line, "GET /items?q=1 HTTP/1.1", "{seen:?}");
    assert_eq!(seen.all("host"), vec!["backend.internal"], "{seen:?}");

    let r = curl_h2(&[&url(addr, "/app/deep/er")]);
    let seen = Echoed::parse(&r.body);
    assert_eq!(seen.request_line, "GET /deep/er HTTP/1.1", "{seen:?}");
    assert_eq!(seen.all("host"), vec!["backend.internal"], "{seen:?}");
}

/// After a `path` or regex match, `prefix_rewrite` swaps the whole path (Envoy's rule), for
/// forwarding and for redirects alike; the query stays.
#[test]
fn prefix_rewrite_after_a_path_or_regex_match_replaces_the_whole_path() {
    let up = echo_head_server("app");
    let (_s, addr) = start_web(
        "{ route_config: { virtual_hosts: [{ name: any, domains: [\"*\"], routes: [\
         { match: { path: /old/page }, route: { cluster: v1, prefix_rewrite: /new } },\
         { match: { regex: \"/v[0-9]+/items\" }, route: { cluster: v1, prefix_rewrite: /items } },\
         { match: { path: /moved }, redirect: { prefix_rewrite: /here } }] }] } }",
        &format!("clusters:\n{}", cluster("v1", up.addr)),
    );
    let r = curl(&[&url(addr, "/old/page?q=1")]);
    assert_eq!(
        Echoed::parse(&r.body).request_line,
        "GET /new?q=1 HTTP/1.1",
        "{r:?}"
    );
    let r = curl(&[&url(addr, "/v2/items")]);
    assert_eq!(
        Echoed::parse(&r.body).request_line,
        "GET /items HTTP/1.1",
        "{r:?}"
    );
    let r = curl(&["-H", "Host: front.test", &url(addr, "/moved?x=2")]);
    assert_eq!(r.status, 301, "{r:?}");
    assert_eq!(
        r.header("location"),
        Some("http://front.test/here?x=2"),
        "{r:?}"
    );
}

#[test]
fn virtual_host_precedence_by_host() {
    let vhost = |name: &str, domain: &str| {
        format!(
            "      - name: {name}
        domains: [\"{domain}\"]
        routes: [{{ match: {{ prefix: / }}, direct_response: {{ status: 200, body: \"{name}\" }} }}]
"
        )
    };
    let rest = format!(
        "route_configs:\n  - name: main\n    virtual_hosts:\n{}{}{}{}{}{}",
        vhost("any", "*"),
        vhost("prefix-short", "www.*"),
        vhost("prefix-long", "www.example.*"),
        vhost("suffix-short", "*.example.com"),
        vhost("suffix-long", "*.b.example.com"),
        vhost("exact", "www.example.com"),
    );
    let (_s, addr) = start_web("{ route_config: main }", &rest);
    let cases = [
        ("www.example.com", "exact"),
        ("WWW.Example.COM:8080", "exact"),
        ("www.example.com:80", "exact"),
        ("a.b.example.com", "suffix-long"),
        ("www.b.example.com", "suffix-long"),
        ("x.example.com", "suffix-short"),
        ("X.EXAMPLE.com:9", "suffix-short"),
        ("www.example.org", "prefix-long"),
        ("www.other.net", "prefix-short"),
        ("other.net", "any"),
        ("example.com", "any"),
    ];
    let u = url(addr, "/");
    for (host, want) in cases {
        let r = curl(&["-H", &format!("Host: {host}"), &u]);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, want),
            "HTTP/1.1 Host: {host}"
        );
    }
    for (host, want) in [
        ("a.b.example.com", "suffix-long"),
        ("www.example.org", "prefix-long"),
        ("WWW.EXAMPLE.COM", "exact"),
    ] {
        let r = curl_h2(&["-H", &format!("Host: {host}"), &u]);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, want),
            "h2c :authority {host}"
        );
    }
}

#[test]
fn header_query_and_regex_matching() {
    // Inline routes: one virtual host for any domain.
    let (_s, addr) = start_web(
        "
          routes:
            - match: { prefix: /, headers: [{ name: x-canary, exact: \"1\" }] }
              direct_response: { status: 200, body: canary }
            - match: { prefix: /, headers: [{ name: x-version, regex: \"v[0-9]+\" }] }
              direct_response: { status: 200, body: versioned }
            - match: { prefix: /, query_parameters: [{ name: mode, exact: fast }] }
              direct_response: { status: 200, body: fast }
            - match: { regex: \"^/items/[0-9]+$\" }
              direct_response: { status: 200, body: item }
            - match: { path: /exact }
              direct_response: { status: 201, body: exact }
            - match: { prefix: / }
              direct_response: { status: 200, body: fallback }",
        "",
    );
    let cases: &[(&str, &[&str], u16, &str)] = &[
        ("/x", &["x-canary: 1"], 200, "canary"),
        ("/x", &["x-canary: 2"], 200, "fallback"),
        ("/x", &["x-version: v12"], 200, "versioned"),
        ("/x", &["x-version: v12a"], 200, "fallback"),
        ("/x?mode=fast", &[], 200, "fast"),
        ("/x?a=b&mode=fast", &[], 200, "fast"),
        ("/x?mode=slow", &[], 200, "fallback"),
        ("/items/42", &[], 200, "item"),
        ("/items/42?z=1", &[], 200, "item"),
        ("/items/42/more", &[], 200, "fallback"),
        ("/items/abc", &[], 200, "fallback"),
        ("/items/42", &["x-canary: 1"], 200, "canary"),
        ("/exact", &[], 201, "exact"),
        ("/exact/", &[], 200, "fallback"),
        ("/exactly", &[], 200, "fallback"),
    ];
    for h2 in [false, true] {
        for (path, headers, status, want) in cases {
            let u = url(addr, path);
            let mut args: Vec<String> = headers
                .iter()
                .flat_map(|h| ["-H".to_string(), h.to_string()])
                .collect();
            args.push(u);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let r = if h2 { curl_h2(&args) } else { curl(&args) };
            assert_eq!(
                (r.status, r.text().as_str()),
                (*status, *want),
                "{path} with {headers:?} (h2: {h2})"
            );
        }
    }
}

#[test]
fn weighted_clusters_split_by_weight() {
    let a = echo_head_server("a");
    let b = echo_head_server("b");
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &format!(
            "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: / }}
            route: {{ weighted_clusters: [{{ cluster: a, weight: 90 }}, {{ cluster: b, weight: 10 }}] }}
clusters:
{}{}",
            cluster("a", a.addr),
            cluster("b", b.addr)
        ),
    );
    // A few through curl, both protocols.
    for h2 in [false, true] {
        for _ in 0..5 {
            let u = url(addr, "/w");
            let r = if h2 { curl_h2(&[&u]) } else { curl(&[&u]) };
            assert_eq!(r.status, 200, "{r:?}");
            assert!(matches!(r.header("x-upstream"), Some("a" | "b")), "{r:?}");
        }
    }
    // The bulk from in-process keep-alive clients.
    const THREADS: usize = 4;
    const PER_THREAD: usize = 250;
    let counts: Vec<(usize, usize)> = (0..THREADS)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(addr);
                let (mut na, mut nb) = (0, 0);
                for i in 0..PER_THREAD {
                    let (status, headers, _) = c.get("weights.test", &format!("/w/{i}"));
                    assert_eq!(status, 200);
                    match get(&headers, "x-upstream") {
                        Some("a") => na += 1,
                        Some("b") => nb += 1,
                        other => panic!("x-upstream {other:?}"),
                    }
                }
                (na, nb)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    let na: usize = counts.iter().map(|c| c.0).sum();
    let nb: usize = counts.iter().map(|c| c.1).sum();
    assert_eq!(na + nb, THREADS * PER_THREAD);
    assert!(
        (850..=950).contains(&na),
        "weights 90/10 gave a={na}, b={nb} of {}",
        na + nb
    );
}

#[test]
fn h2c_upload_of_5_mib_reaches_an_http1_upstream() {
    const SIZE: usize = 5 << 20;
    let up = echo_head_server("big");
    let (_s, addr) = start_web("{ route_config: main }", &forward_config(up.addr));
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("upload.bin");
    let data = payload(SIZE);
    std::fs::write(&file, &data).unwrap();
    let at_file = format!("@{}", file.display());
    let r = curl_h2(&[
        "-H",
        "content-type: application/octet-stream",
        "--data-binary",
        &at_file,
        &url(addr, "/upload"),
    ]);
    assert_eq!(r.status, 200, "status {} headers {:?}", r.status, r.headers);
    let seen = Echoed::parse(&r.body);
    assert_eq!(
        seen.request_line, "POST /upload HTTP/1.1",
        "{:?}",
        seen.headers
    );
    assert_eq!(
        seen.all("host"),
        vec![addr.to_string()],
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.body.len(), SIZE, "uploaded bytes seen by the upstream");
    assert_eq!(fnv(&seen.body), fnv(&data), "the upload arrived corrupted");

    // And the same over HTTP/1.1.
    let r = curl(&["--data-binary", &at_file, &url(addr, "/upload1")]);
    assert_eq!(r.status, 200, "status {} headers {:?}", r.status, r.headers);
    let seen = Echoed::parse(&r.body);
    assert_eq!(
        seen.request_line, "POST /upload1 HTTP/1.1",
        "{:?}",
        seen.headers
    );
    assert_eq!(seen.body.len(), SIZE);
    assert_eq!(fnv(&seen.body), fnv(&data), "the upload arrived corrupted");
}

/// Whether `data` equals `pattern` repeated, starting `offset` bytes into the repetition
/// (slice comparisons, fast even in a debug build).
fn matches_pattern(pattern: &[u8], offset: usize, mut data: &[u8]) -> bool {
    let mut at = offset % pattern.len();
    while !data.is_empty() {
        let n = data.len().min(pattern.len() - at);
        if data[..n] != pattern[at..at + n] {
            return false;
        }
        data = &data[n..];
        at = 0;
    }
    true
}

/// An HTTP/1.1 upstream that reads each request body as it streams (Content-Length or chunked),
/// checks it against `pattern` repeated, and answers `<bytes> <intact>`; a `GET /download/N`
/// gets N bytes of `pattern` repeated. It never holds more than 64 KiB of a body.
fn streaming_check_server(pattern: Arc<Vec<u8>>) -> SocketAddr {
    let addr = spawn_server(move |conn| {
        let mut r = BufReader::new(conn);
        while let Ok(Some((line, headers))) = read_head(&mut r) {
            if let Some(n) = line
                .strip_prefix("GET /download/")
                .and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            {
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {n}\r\n\r\n");
                if r.get_mut().write_all(head.as_bytes()).is_err() {
                    return;
                }
                let mut left = n;
                while left > 0 {
                    let chunk = &pattern[..left.min(pattern.len())];
                    if r.get_mut().write_all(chunk).is_err() {
                        return;
                    }
                    left -= chunk.len();
                }
                continue;
            }
            let mut seen = 0usize;
            let mut intact = true;
            let mut take = |r: &mut BufReader<TcpStream>, mut n: usize| -> std::io::Result<()> {
                let mut buf = vec![0u8; 64 * 1024];
                while n > 0 {
                    let want = n.min(buf.len());
                    r.read_exact(&mut buf[..want])?;
                    intact &= matches_pattern(&pattern, seen, &buf[..want]);
                    seen += want;
                    n -= want;
                }
                Ok(())
            };
            let read = if let Some(len) = get(&headers, "content-length") {
                take(&mut r, len.parse().unwrap_or(0))
            } else {
                // Chunked: size line, data, CRLF; a zero size ends it (no trailers).
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).is_err() {
                        break Err(ErrorKind::UnexpectedEof.into());
                    }
                    let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                    if size == 0 {
                        let mut end = String::new();
                        let _ = r.read_line(&mut end);
                        break Ok(());
                    }
                    if let Err(e) = take(&mut r, size) {
                        break Err(e);
                    }
                    let mut crlf = [0u8; 2];
                    if let Err(e) = r.read_exact(&mut crlf) {
                        break Err(e);
                    }
                }
            };
            if read.is_err() {
                return;
            }
            let body = format!("{seen} {intact}");
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            if r.get_mut().write_all(resp.as_bytes()).is_err() {
                return;
            }
        }
    });
    addr
}

#[test]
fn bodies_of_64_mib_stream_through_http1_and_http2_hops_in_bounded_memory() {
    const SIZE: usize = 64 << 20;
    let pattern = Arc::new(payload(1 << 20));
    let up = streaming_check_server(pattern.clone());
    // Listener `web` (HTTP/1.1 or h2c) -> cluster over HTTP/2 -> listener `inner` (h2c) ->
    // the checking upstream over HTTP/1.1: both of Sluice's upstream clients and both of its
    // server sides carry the body.
    let inner = local(free_port());
    let (s, addr) = start_web(
        "{ routes: [{ match: { prefix: / }, route: { cluster: via_h2, timeout: 120s } }] }",
        &format!(
            "  - name: inner
    address: \"{inner}\"
    filters:
      - http_proxy: {{ codec: http2, routes: [{{ match: {{ prefix: / }}, route: {{ cluster: check, timeout: 120s }} }}] }}
clusters:
  - name: via_h2
    protocol: http2
    endpoints: [{{ address: \"{inner}\" }}]
{}",
            cluster("check", up)
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("upload.bin");
    {
        let mut f = std::fs::File::create(&file).unwrap();
        for _ in 0..SIZE / pattern.len() {
            f.write_all(&pattern).unwrap();
        }
    }
    let at_file = format!("@{}", file.display());
    let before = s.peak_rss_kib();
    for h2 in [false, true] {
        let mut args = vec!["--max-time", "120", "--data-binary", &at_file];
        if h2 {
            args.push("--http2-prior-knowledge");
        }
        let u = url(addr, "/upload");
        args.push(&u);
        let out = Command::new("curl")
            .arg("-sS")
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "curl (h2: {h2}): {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{SIZE} true"),
            "(h2: {h2}) bytes the upstream saw, and whether they were intact"
        );
    }
    // And the other way: downloads, compared as they arrive.
    for h2 in [false, true] {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "120"]);
        if h2 {
            cmd.arg("--http2-prior-knowledge");
        }
        let mut child = cmd
            .arg(url(addr, &format!("/download/{SIZE}")))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let (mut seen, mut buf) = (0usize, vec![0u8; 64 * 1024]);
        loop {
            let n = out.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(
                matches_pattern(&pattern, seen, &buf[..n]),
                "(h2: {h2}) bytes {seen}.. differ"
            );
            seen += n;
        }
        assert!(child.wait().unwrap().success());
        assert_eq!(seen, SIZE, "(h2: {h2}) bytes downloaded");
    }
    let peak = s.peak_rss_kib();
    eprintln!("peak RSS {before} KiB before, {peak} KiB after 64 MiB up and down, twice each");
    // Holding one whole body would take 64 MiB (twice, across the two hops).
    assert!(
        peak < before + 32 * 1024,
        "peak RSS went from {before} KiB to {peak} KiB while 4 x 64 MiB streamed through"
    );
}

#[test]
fn refused_or_closing_upstream_is_503() {
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &format!(
            "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: /refused }}
            route: {{ cluster: deadend }}
          - match: {{ prefix: /closed }}
            route: {{ cluster: hangup }}
clusters:
{}{}",
            cluster("deadend", refused_addr()),
            cluster("hangup", closing_server())
        ),
    );
    for (path, name) in [("/refused", "deadend"), ("/closed", "hangup")] {
        for h2 in [false, true] {
            let u = url(addr, path);
            let r = if h2 { curl_h2(&[&u]) } else { curl(&[&u]) };
            let body = r.text();
            assert_eq!(r.status, 503, "{path} (h2: {h2}): {r:?}");
            assert!(
                body.contains("upstream") && body.contains(name),
                "{path} (h2: {h2}): body {body:?} should mention the upstream and cluster {name:?}"
            );
        }
    }
}

/// `route_configs` with one route config `main` sending every path to cluster `name` at
/// `endpoint`, with `route_extra` (e.g. `, timeout: 500ms`) added to the route action.
fn one_route(name: &str, endpoint: SocketAddr, route_extra: &str) -> String {
    format!(
        "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: / }}
            route: {{ cluster: {name}{route_extra} }}
clusters:
{}",
        cluster(name, endpoint)
    )
}

#[test]
fn silent_upstream_past_the_route_timeout_is_504() {
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &one_route("sleepy", silent_server(), ", timeout: 500ms"),
    );
    for h2 in [false, true] {
        let u = url(addr, "/slow");
        let r = if h2 { curl_h2(&[&u]) } else { curl(&[&u]) };
        assert_eq!(r.status, 504, "(h2: {h2}) {r:?}");
        assert!(
            r.text().contains("timeout"),
            "(h2: {h2}) body {:?}",
            r.text()
        );
    }
}

#[test]
fn the_grpc_timeout_header_bounds_a_request_when_the_route_says_so() {
    // No route timeout (Istio's routes): only the header can end the wait.
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &one_route(
            "sleepy",
            silent_server(),
            ", timeout: 0, grpc_timeout_header_max: 0",
        ),
    );
    let u = url(addr, "/slow");
    let r = curl(&["-H", "grpc-timeout: 300m", &u]);
    assert_eq!(r.status, 504, "{r:?}");
    // Capped by the route's maximum.
    let (_s2, addr) = start_web(
        "{ route_config: main }",
        &one_route(
            "sleepy",
            silent_server(),
            ", timeout: 0, grpc_timeout_header_max: 300ms",
        ),
    );
    let r = curl_h2(&["-H", "grpc-timeout: 1H", &url(addr, "/slow")]);
    assert_eq!(r.status, 504, "{r:?}");
    // Without the key the header is not read: the request waits (here until curl gives up).
    let (_s3, addr) = start_web(
        "{ route_config: main }",
        &one_route("sleepy", silent_server(), ", timeout: 0"),
    );
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "1",
            "-H",
            "grpc-timeout: 100m",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(url(addr, "/slow"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "000",
        "answered though the header is not honoured"
    );
}

/// An upstream that answers each request's head at once with `Content-Length: 100` and the
/// first 10 body bytes, then holds the connection without sending the rest.
fn stalling_body_server() -> SocketAddr {
    spawn_server(|conn| {
        let mut r = BufReader::new(conn);
        if let Ok(Some(_)) = read_head(&mut r) {
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
            // Hold the connection open, reading whatever comes, until the peer goes.
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
    })
}

#[test]
fn the_route_timeout_cuts_off_a_response_body_that_stalls() {
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &one_route("stalls", stalling_body_server(), ", timeout: 500ms"),
    );
    // HTTP/1.1: the head and the first bytes arrive, then the connection is closed with the
    // body incomplete (the read deadline of `connect` would fail the test if it stayed open).
    let mut c = connect(addr);
    c.write_all(b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(c);
    let (line, headers) = read_head(&mut r).unwrap().unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK");
    assert_eq!(get(&headers, "content-length"), Some("100"));
    let mut body = Vec::new();
    let end = r.read_to_end(&mut body);
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::ConnectionReset),
        "{end:?}"
    );
    assert_eq!(body, b"0123456789");
    // HTTP/2: the stream is reset; curl reports the transfer as failed, not complete.
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(url(addr, "/stall"))
        .output()
        .unwrap();
    let code = out.status.code();
    assert!(
        matches!(code, Some(18 | 92 | 56)),
        "curl exit {code:?} (18 partial, 92 stream error, 56 recv failure; 28 would be curl's own timeout): {out:?}"
    );
}

#[test]
fn nginx_as_the_upstream() {
    let nginx = Nginx::start();
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &format!(
            "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: / }}
            route: {{ cluster: nginx }}
clusters:
{}",
            cluster("nginx", nginx.addr)
        ),
    );
    let u = url(addr, "/anything");
    let r = curl(&[&u]);
    assert_eq!((r.status, r.text().as_str()), (200, "from nginx"), "{r:?}");
    assert!(
        r.header("server").is_some_and(|s| s.starts_with("nginx")),
        "{r:?}"
    );
    assert!(r.header("x-request-id").is_some_and(is_request_id), "{r:?}");
    let r = curl_h2(&[&u]);
    assert_eq!((r.status, r.text().as_str()), (200, "from nginx"), "{r:?}");
    // Several on one client connection.
    let out = curl_raw(&[&u, &u, &u]);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "from nginxfrom nginxfrom nginx"
    );
}

#[test]
fn upstream_connections_are_kept_alive_and_reused() {
    let up = echo_head_server("ka");
    // Inline routes again.
    let (_s, addr) = start_web(
        "{ routes: [{ match: { prefix: / }, route: { cluster: echo } }] }",
        &format!("clusters:\n{}", cluster("echo", up.addr)),
    );
    let urls: Vec<String> = (0..20).map(|i| url(addr, &format!("/ka/{i}"))).collect();
    let mut args: Vec<&str> = vec!["-w", "[%{http_code} %{num_connects}]"];
    args.extend(urls.iter().map(String::as_str));
    let out = String::from_utf8_lossy(&curl_raw(&args)).into_owned();
    assert_eq!(out.matches("GET /ka/").count(), 20, "{out}");
    assert_eq!(out.matches("[200 ").count(), 20, "{out}");
    // curl itself opened one client connection and reused it (a test precondition).
    let client_connects: usize = out
        .split("[200 ")
        .skip(1)
        .filter_map(|s| s.split(']').next()?.parse::<usize>().ok())
        .sum();
    assert_eq!(
        client_connects, 1,
        "curl did not reuse its connection: {out}"
    );
    let accepted = up.accepted.load(Ordering::SeqCst);
    assert!(
        accepted <= 2,
        "20 sequential requests opened {accepted} upstream connections"
    );
}

/// A keep-alive upstream answering `200 ok` that counts connections accepted and closed by
/// the peer.
struct CountingUpstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
}

fn counting_upstream() -> CountingUpstream {
    counting_upstream_answering_after(Duration::ZERO)
}

/// A [`CountingUpstream`] that waits `delay` before each answer (so concurrent requests need
/// as many connections).
fn counting_upstream_answering_after(delay: Duration) -> CountingUpstream {
    let accepted = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (a, c) = (accepted.clone(), closed.clone());
    let addr = spawn_server(move |conn| {
        a.fetch_add(1, Ordering::SeqCst);
        let mut r = BufReader::new(conn);
        while let Ok(Some((_, headers))) = read_head(&mut r) {
            if read_body(&mut r, &headers).is_err() {
                break;
            }
            thread::sleep(delay);
            if r.get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .is_err()
            {
                break;
            }
        }
        c.fetch_add(1, Ordering::SeqCst);
    });
    CountingUpstream {
        addr,
        accepted,
        closed,
    }
}

/// Waits (bounded by `DEADLINE`) until `count` reaches `want`.
fn wait_for_count(count: &AtomicUsize, want: usize, what: &str) {
    let start = Instant::now();
    while count.load(Ordering::SeqCst) < want {
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: {} after {DEADLINE:?}, expected {want}",
            count.load(Ordering::SeqCst)
        );
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_connection_closes_after_max_requests_per_connection() {
    let up = counting_upstream();
    let (_s, addr) = start_web(
        "{ routes: [{ match: { prefix: / }, route: { cluster: c } }] }",
        &format!(
            "clusters:\n{}    common_http_protocol_options: {{ max_requests_per_connection: 2 }}\n",
            cluster("c", up.addr)
        ),
    );
    for i in 0..5 {
        let r = curl(&[&url(addr, &format!("/{i}"))]);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    }
    // Two requests each on the first two connections, the fifth on a third.
    assert_eq!(up.accepted.load(Ordering::SeqCst), 3);
    wait_for_count(&up.closed, 2, "worn-out connections closed");
}

#[test]
fn idle_connections_beyond_max_idle_connections_are_closed() {
    let up = counting_upstream_answering_after(Duration::from_millis(300));
    let (_s, addr) = start_web(
        "{ routes: [{ match: { prefix: / }, route: { cluster: c } }] }",
        &format!(
            "clusters:\n{}    common_http_protocol_options: {{ max_idle_connections: 1 }}\n",
            cluster("c", up.addr)
        ),
    );
    // Five at once: as many upstream connections, since each answer takes a while.
    let urls: Vec<String> = (0..5).map(|i| url(addr, &format!("/{i}"))).collect();
    let mut args: Vec<&str> = vec![
        "-Z",
        "--parallel-immediate",
        "--parallel-max",
        "5",
        "-w",
        "[%{http_code}]",
    ];
    args.extend(urls.iter().map(String::as_str));
    let out = String::from_utf8_lossy(&curl_raw(&args)).into_owned();
    assert_eq!(out.matches("[200]").count(), 5, "{out}");
    let opened = up.accepted.load(Ordering::SeqCst);
    assert!(
        opened >= 3,
        "only {opened} upstream connections for 5 concurrent requests"
    );
    // One stays pooled; the others are closed as they come free.
    wait_for_count(
        &up.closed,
        opened - 1,
        "connections closed beyond the idle limit",
    );
    let r = curl(&[&url(addr, "/again")]);
    assert_eq!(r.status, 200);
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        opened,
        "the kept connection was reused"
    );
    assert_eq!(up.closed.load(Ordering::SeqCst), opened - 1);
}

#[test]
fn idle_upstream_connections_close_after_the_clusters_idle_timeout() {
    let up = counting_upstream();
    let (_s, addr) = start_web(
        "{ routes: [{ match: { prefix: / }, route: { cluster: idle } }] }",
        &format!(
            "clusters:\n{}    common_http_protocol_options: {{ idle_timeout: 1s }}\n",
            cluster("idle", up.addr)
        ),
    );
    for path in ["/a", "/b"] {
        let r = curl(&[&url(addr, path)]);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    }
    let used = Instant::now();
    assert_eq!(
        up.accepted.load(Ordering::SeqCst),
        1,
        "both requests on one pooled connection"
    );
    // The pool closes it once idle for the timeout (never before); the upstream sees EOF.
    wait_for_count(&up.closed, 1, "idle connection closed");
    assert!(
        used.elapsed() >= Duration::from_millis(900),
        "closed too early: {:?}",
        used.elapsed()
    );
    // A new request opens a new connection.
    let r = curl(&[&url(addr, "/c")]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{r:?}");
    assert_eq!(up.accepted.load(Ordering::SeqCst), 2);
}

/// Writes `yaml` to `cfg.yaml` in a temp dir and runs `sluice check` on it.
fn check(yaml: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cfg.yaml"), yaml).unwrap();
    sluice_cmd(&["check", "-c", "cfg.yaml"], dir.path())
}

fn check_yaml(filter: &str, cluster_extra: &str) -> String {
    format!(
        "listeners:
  - name: web
    address: 127.0.0.1:8080
    filters:
      - http_proxy: {filter}
route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes: [{{ match: {{ prefix: / }}, route: {{ cluster: v1 }} }}]
clusters:
  - name: v1
{cluster_extra}    endpoints: [{{ address: 127.0.0.1:9001 }}]
"
    )
}

#[test]
fn config_errors_are_reported_by_check() {
    // The good variants pass.
    for filter in [
        "{ route_config: main }",
        "{ codec: auto, route_config: main, max_request_headers_kb: 60, request_headers_timeout: 10s }",
        "{ codec: http1, route_config: main }",
        "{ codec: http2, route_config: main }",
        "{ routes: [{ match: { prefix: / }, route: { cluster: v1 } }] }",
    ] {
        let (code, out, err) = check(&check_yaml(filter, ""));
        assert_eq!(code, 0, "{filter}: {out}{err}");
        assert!(out.starts_with("ok: 1 listener, 1 cluster"), "{filter}: {out}");
    }
    for protocol in ["http1", "http2", "same_as_downstream"] {
        let (code, out, err) = check(&check_yaml(
            "{ route_config: main }",
            &format!("    protocol: {protocol}\n"),
        ));
        assert_eq!(code, 0, "protocol {protocol}: {out}{err}");
    }

    let (code, out, err) = check(&check_yaml("{ route_config: nope }", ""));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.lines().any(|l| l.starts_with("cfg.yaml:5: ")
            && l.contains("http_proxy.route_config")
            && l.contains("unknown route config \"nope\"")),
        "{err}"
    );

    let (code, out, err) = check(&check_yaml("{ codec: http3, route_config: main }", ""));
    assert_eq!(code, 1, "{out}{err}");
    let line = err
        .lines()
        .find(|l| l.contains("http_proxy.codec"))
        .unwrap_or_else(|| panic!("no error about the codec: {err}"));
    assert!(
        line.starts_with("cfg.yaml:5: ")
            && line.contains("\"http3\"")
            && ["http1", "http2", "auto"].iter().all(|v| line.contains(v)),
        "the codec error should name the allowed values: {line}"
    );

    let (code, out, err) = check(&check_yaml(
        "{ route_config: main }",
        "    protocol: http3\n",
    ));
    assert_eq!(code, 1, "{out}{err}");
    let line = err
        .lines()
        .find(|l| l.contains("clusters[0].protocol"))
        .unwrap_or_else(|| panic!("no error about the cluster protocol: {err}"));
    assert!(
        line.starts_with("cfg.yaml:14: ")
            && line.contains("\"http3\"")
            && line.contains("http1, http2, same_as_downstream"),
        "{line}"
    );
}

#[test]
fn a_malformed_request_gets_400_and_the_listener_keeps_serving() {
    let (_s, addr) = start_web("{ route_config: main }", HEALTH_ROUTES);
    let mut c = connect(addr);
    c.write_all(b"GARBAGE\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    // Read until the proxy closes (or resets after its answer).
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the 400: {e} (got so far {resp:?})"),
        }
    }
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp:?}");

    // New connections are still served, by both protocols.
    let u = url(addr, "/healthz");
    let r = curl(&[&u]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = curl_h2(&[&u]);
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
}

// ---------------------------------------------------------------------------------------------
// Request mirroring
// ---------------------------------------------------------------------------------------------

/// A request as a recording upstream saw it.
struct Seen {
    line: String,
    host: String,
    body_len: usize,
    body_fnv: u64,
}

/// An upstream that answers `200 shadow-ok` and reports every request it read on a channel.
fn recording_server() -> (SocketAddr, std::sync::mpsc::Receiver<Seen>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = spawn_server(move |conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        while let Ok(Some((line, headers))) = read_head(&mut r) {
            let Ok(body) = read_body(&mut r, &headers) else {
                return;
            };
            let seen = Seen {
                line,
                host: get(&headers, "host").unwrap_or("").to_string(),
                body_len: body.len(),
                body_fnv: fnv(&body),
            };
            let _ = tx.send(seen);
            let _ = w.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshadow-ok");
        }
    });
    (addr, rx)
}

fn mirror_config(primary: SocketAddr, shadow: SocketAddr, percent: &str) -> String {
    format!(
        "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: /never }}
            route: {{ cluster: primary, request_mirror: {{ cluster: shadow, percent: 0 }} }}
          - match: {{ prefix: / }}
            route: {{ cluster: primary, request_mirror: {{ cluster: shadow, percent: {percent} }} }}
clusters:
{}{}",
        cluster("primary", primary),
        cluster("shadow", shadow)
    )
}

#[test]
fn mirrored_requests_reach_the_shadow_with_their_body() {
    let primary = echo_head_server("primary");
    let (shadow, seen) = recording_server();
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &mirror_config(primary.addr, shadow, "100"),
    );

    let r = curl(&["-H", "Host: mirror.test", &url(addr, "/get?x=1")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text().contains("GET /get?x=1 HTTP/1.1"), "{r:?}");
    let s = seen.recv_timeout(DEADLINE).expect("no mirrored GET");
    assert_eq!(s.line, "GET /get?x=1 HTTP/1.1");
    assert_eq!(s.host, "mirror.test-shadow");

    // A body is copied as it streams to the primary.
    let body = payload(300 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let r = curl(&[
        "-H",
        "Host: mirror.test:8080",
        "--data-binary",
        &data,
        &url(addr, "/post"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    let s = seen.recv_timeout(DEADLINE).expect("no mirrored POST");
    assert_eq!(s.line, "POST /post HTTP/1.1");
    assert_eq!(s.host, "mirror.test-shadow:8080");
    assert_eq!((s.body_len, s.body_fnv), (body.len(), fnv(&body)));
}

#[test]
fn a_dead_shadow_never_fails_the_primary() {
    let primary = echo_head_server("primary");
    let dead = local(free_port());
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &mirror_config(primary.addr, dead, "100"),
    );
    for i in 0..20 {
        let r = curl(&[&url(addr, &format!("/r/{i}"))]);
        assert_eq!(r.status, 200, "request {i}: {r:?}");
        assert!(r.text().contains(&format!("GET /r/{i} HTTP/1.1")), "{r:?}");
    }
    let r = curl_h2(&["--data-binary", "abc", &url(addr, "/h2")]);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn mirror_percent_zero_sends_nothing() {
    let primary = echo_head_server("primary");
    let (shadow, seen) = recording_server();
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &mirror_config(primary.addr, shadow, "100"),
    );
    // 30 requests on the percent: 0 route, then one on the percent: 100 route.
    let urls: Vec<String> = (0..30).map(|i| url(addr, &format!("/never/{i}"))).collect();
    let mut args: Vec<&str> = urls.iter().map(String::as_str).collect();
    let last = url(addr, "/marker");
    args.push(&last);
    let out = String::from_utf8_lossy(&curl_raw(&args)).into_owned();
    assert_eq!(out.matches("GET /never/").count(), 30, "{out}");
    // The marker's mirror arrives; none of the others ever did.
    let s = seen.recv_timeout(DEADLINE).expect("marker not mirrored");
    assert_eq!(s.line, "GET /marker HTTP/1.1");
    assert!(
        seen.try_recv().is_err(),
        "a percent: 0 request was mirrored"
    );
}

#[test]
fn a_shadow_that_stops_reading_is_cut_off_not_the_primary() {
    // The shadow accepts and never reads: once its buffers fill, the mirror copy falls
    // behind and is abandoned, while the 16 MiB upload still reaches the primary whole.
    let primary = echo_head_server("primary");
    let stalled = silent_server();
    let (s, addr) = start_web(
        "{ route_config: main }",
        &mirror_config(primary.addr, stalled, "100"),
    );
    let body = payload(16 << 20);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let r = curl(&["--data-binary", &data, &url(addr, "/big")]);
    assert_eq!(r.status, 200, "{}", s.log());
    let echoed = r.body;
    let tail = &echoed[echoed.len().saturating_sub(body.len())..];
    assert_eq!((tail.len(), fnv(tail)), (body.len(), fnv(&body)));
}

// ---------------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------------

/// An upstream that answers every request with `status` (keep-alive) and counts requests.
fn status_server(status: u16) -> (SocketAddr, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let addr = spawn_server(move |conn| {
        let mut w = conn.try_clone().unwrap();
        let mut r = BufReader::new(conn);
        while let Ok(Some((_, headers))) = read_head(&mut r) {
            if read_body(&mut r, &headers).is_err() {
                return;
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let reply = format!("HTTP/1.1 {status} Status\r\ncontent-length: 6\r\n\r\nstatus");
            if w.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
    (addr, count)
}

/// One route to a round-robin cluster of `endpoints`, with `route_extra` in the route action.
fn retry_config(endpoints: &[SocketAddr], route_extra: &str) -> String {
    let eps: Vec<String> = endpoints
        .iter()
        .map(|e| format!("{{ address: \"{e}\" }}"))
        .collect();
    format!(
        "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: / }}
            route: {{ cluster: pair{route_extra} }}
clusters:
  - name: pair
    connect_timeout: 2s
    lb_policy: round_robin
    endpoints: [{}]
",
        eps.join(", ")
    )
}

/// Statuses of `n` sequential requests (one curl process each).
fn statuses(addr: SocketAddr, n: usize, extra: &[&str]) -> Vec<u16> {
    (0..n)
        .map(|i| {
            let u = url(addr, &format!("/try/{i}"));
            let mut args: Vec<&str> = extra.to_vec();
            args.push(&u);
            curl(&args).status
        })
        .collect()
}

#[test]
fn retries_move_past_a_failing_host() {
    let (bad, bad_count) = status_server(503);
    let good = echo_head_server("good");
    // Without a retry policy, strict round robin sends every other request to the 503 host.
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &retry_config(&[bad, good.addr], ""),
    );
    let got = statuses(addr, 6, &[]);
    assert_eq!(got.iter().filter(|s| **s == 503).count(), 3, "{got:?}");
    // With one, every request ends on the good host.
    let (_s2, addr) = start_web(
        "{ route_config: main }",
        &retry_config(
            &[bad, good.addr],
            ", retry_policy: { retry_on: \"5xx\", num_retries: 2 }",
        ),
    );
    let before = bad_count.load(Ordering::SeqCst);
    assert_eq!(statuses(addr, 6, &[]), vec![200; 6]);
    assert_eq!(
        statuses(addr, 2, &["--http2-prior-knowledge"]),
        vec![200; 2]
    );
    assert!(
        bad_count.load(Ordering::SeqCst) > before,
        "the failing host was never tried"
    );
}

#[test]
fn attempt_counts_go_upstream_and_back_when_the_virtual_host_asks() {
    let (bad, _) = status_server(503);
    let good = echo_head_server("good");
    let config = format!(
        "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        include_request_attempt_count: true
        include_attempt_count_in_response: true
        routes:
          - match: {{ prefix: /good }}
            route: {{ cluster: good }}
          - match: {{ prefix: /bad }}
            route: {{ cluster: bad, retry_policy: {{ retry_on: \"5xx\", num_retries: 1 }} }}
clusters:
{}{}",
        cluster("good", good.addr),
        cluster("bad", bad)
    );
    let (_s, addr) = start_web("{ route_config: main }", &config);
    // One attempt: the upstream saw 1, and the response says 1.
    let reply = curl(&[&url(addr, "/good")]);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        reply.text().contains("x-envoy-attempt-count: 1\n"),
        "{}",
        reply.text()
    );
    assert_eq!(
        reply.header("x-envoy-attempt-count"),
        Some("1"),
        "{reply:?}"
    );
    // The first try and its retry both answer 503: the response counts two attempts.
    let reply = curl(&[&url(addr, "/bad")]);
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.header("x-envoy-attempt-count"),
        Some("2"),
        "{reply:?}"
    );
    // Without the keys, neither header.
    let (_s2, addr) = start_web("{ route_config: main }", &retry_config(&[good.addr], ""));
    let reply = curl(&[&url(addr, "/plain")]);
    assert!(
        !reply.text().contains("x-envoy-attempt-count"),
        "{}",
        reply.text()
    );
    assert_eq!(reply.header("x-envoy-attempt-count"), None);
}

#[test]
fn retries_on_reset_and_connect_failure() {
    let good = echo_head_server("good");
    let (_a, addr) = start_web(
        "{ route_config: main }",
        &retry_config(
            &[closing_server(), good.addr],
            ", retry_policy: { retry_on: reset, num_retries: 1 }",
        ),
    );
    assert_eq!(statuses(addr, 6, &[]), vec![200; 6]);
    let (_b, addr) = start_web(
        "{ route_config: main }",
        &retry_config(
            &[local(free_port()), good.addr],
            ", retry_policy: { retry_on: connect-failure, num_retries: 1 }",
        ),
    );
    assert_eq!(statuses(addr, 6, &[]), vec![200; 6]);
}

#[test]
fn a_per_try_timeout_moves_on_to_another_host() {
    let good = echo_head_server("good");
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &retry_config(
            &[silent_server(), good.addr],
            ", timeout: 10s, retry_policy: { retry_on: 5xx, num_retries: 1, per_try_timeout: 300ms }",
        ),
    );
    assert_eq!(statuses(addr, 4, &[]), vec![200; 4]);
}

#[test]
fn bodies_over_the_replay_buffer_are_not_retried() {
    let (bad, _) = status_server(503);
    let good = echo_head_server("good");
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &retry_config(
            &[bad, good.addr],
            ", retry_policy: { retry_on: 5xx, num_retries: 2 }",
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, payload(16 * 1024)).unwrap();
    let big = dir.path().join("big");
    std::fs::write(&big, payload(256 * 1024)).unwrap();
    let small_arg = format!("@{}", small.display());
    let big_arg = format!("@{}", big.display());
    // Small bodies are kept and replayed: every POST succeeds.
    assert_eq!(
        statuses(addr, 4, &["--data-binary", &small_arg]),
        vec![200; 4]
    );
    // A 256 KiB body is too large to keep: each POST gets one try, so the ones that land on
    // the 503 host (every other one, round robin) fail.
    let got = statuses(addr, 4, &["--data-binary", &big_arg]);
    assert_eq!(got.iter().filter(|s| **s == 503).count(), 2, "{got:?}");
    assert_eq!(got.iter().filter(|s| **s == 200).count(), 2, "{got:?}");
}

#[test]
fn retries_stop_after_num_retries() {
    let (a, a_count) = status_server(503);
    let (b, b_count) = status_server(503);
    let (_s, addr) = start_web(
        "{ route_config: main }",
        &retry_config(&[a, b], ", retry_policy: { retry_on: 5xx, num_retries: 2 }"),
    );
    assert_eq!(statuses(addr, 1, &[]), vec![503]);
    // One try plus two retries, spread over both hosts.
    let total = a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst);
    assert_eq!(total, 3);
    assert!(a_count.load(Ordering::SeqCst) >= 1 && b_count.load(Ordering::SeqCst) >= 1);
}

// ---------------------------------------------------------------------------------------------
// WebSocket (HTTP/1.1 Upgrade)
// ---------------------------------------------------------------------------------------------

/// A WebSocket echo server (tungstenite, a real implementation): every message comes back.
fn websocket_echo_server() -> SocketAddr {
    spawn_server(|conn| {
        let Ok(mut ws) = tungstenite::accept(conn) else {
            return;
        };
        while let Ok(msg) = ws.read() {
            if msg.is_close() {
                break;
            }
            if (msg.is_text() || msg.is_binary()) && ws.send(msg).is_err() {
                break;
            }
        }
    })
}

#[test]
fn websocket_upgrades_are_tunnelled() {
    let up = websocket_echo_server();
    let (_s, addr) = start_web(
        "{ routes: [{ match: { prefix: /ws }, route: { cluster: ws, timeout: 5s } }, { match: { prefix: /plain }, direct_response: { status: 200, body: plain } }] }",
        &format!("clusters:\n{}", cluster("ws", up)),
    );
    let stream = connect(addr);
    let (mut ws, resp) = tungstenite::client(format!("ws://{addr}/ws/chat"), stream)
        .expect("handshake through sluice");
    assert_eq!(resp.status(), 101);
    for i in 0..20 {
        let text = format!("message {i}");
        ws.send(tungstenite::Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), tungstenite::Message::text(text));
    }
    let blob = payload(200 * 1024);
    ws.send(tungstenite::Message::binary(blob.clone())).unwrap();
    assert_eq!(ws.read().unwrap().into_data().as_ref(), blob.as_slice());
    ws.close(None).unwrap();
    // Plain requests on the same listener and connection pool are unaffected.
    let r = curl(&[&url(addr, "/plain")]);
    assert_eq!((r.status, r.text().as_str()), (200, "plain"), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Header mutations
// ---------------------------------------------------------------------------------------------

#[test]
fn headers_are_added_and_removed_at_route_virtual_host_and_table_level() {
    let up = echo_head_server("echo");
    let rest = format!(
        "route_configs:
  - name: main
    request_headers_to_add:
      - header: {{ key: x-copied, value: \"%REQ(x-trace)%\" }}
    response_headers_to_remove: [x-upstream]
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        request_headers_to_add:
          - header: {{ key: x-client, value: \"%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% via %PROTOCOL%\" }}
            append_action: OVERWRITE_IF_EXISTS_OR_ADD
        response_headers_to_add:
          - header: {{ key: x-vhost, value: v }}
        routes:
          - match: {{ path: /direct }}
            direct_response: {{ status: 200, body: direct }}
            response_headers_to_add:
              - header: {{ key: x-direct, value: \"yes\" }}
          - match: {{ prefix: / }}
            route: {{ cluster: echo }}
            request_headers_to_add:
              - header: {{ key: x-route, value: r }}
                append: true
            request_headers_to_remove: [x-secret]
            response_headers_to_add:
              - header: {{ key: x-served-by, value: \"%UPSTREAM_REMOTE_ADDRESS%\" }}
clusters:
{}",
        cluster("echo", up.addr)
    );
    let (_s, addr) = start_web("{ route_config: main }", &rest);
    let r = curl(&[
        "-H",
        "x-trace: abc",
        "-H",
        "x-secret: hunter2",
        "-H",
        "x-client: spoofed",
        "-H",
        "x-route: client",
        &url(addr, "/api"),
    ]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = r.text();
    assert!(seen.contains("x-copied: abc\n"), "{seen}");
    assert!(
        seen.contains("x-client: 127.0.0.1 via HTTP/1.1\n"),
        "{seen}"
    );
    assert!(!seen.contains("spoofed"), "{seen}");
    assert!(
        seen.contains("x-route: client\n") && seen.contains("x-route: r\n"),
        "{seen}"
    );
    assert!(!seen.contains("hunter2"), "{seen}");
    assert_eq!(
        r.header("x-served-by"),
        Some(up.addr.to_string().as_str()),
        "{r:?}"
    );
    assert_eq!(r.header("x-vhost"), Some("v"), "{r:?}");
    assert_eq!(r.header("x-upstream"), None, "{r:?}");

    let r = curl_h2(&[&url(addr, "/direct")]);
    assert_eq!((r.status, r.text().as_str()), (200, "direct"), "{r:?}");
    assert_eq!(r.header("x-direct"), Some("yes"), "{r:?}");
    assert_eq!(r.header("x-vhost"), Some("v"), "{r:?}");
}

#[test]
fn header_mutation_mistakes_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: { prefix: / }
            direct_response: { status: 200 }
            response_headers_to_add:
              - header: { key: x-a, value: \"%NOPE%\" }
              - header: { key: x-b, value: b }
                append_action: OVERWRITE_IF_EXIST
            request_headers_to_remove: [\"bad header\"]
";
    std::fs::write(dir.path().join("cfg.yaml"), yaml).unwrap();
    let (code, _, err) = sluice_cmd(&["check", "-c", "cfg.yaml"], dir.path());
    assert_eq!(code, 1);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("cfg.yaml:10: route_configs[0].virtual_hosts[0].routes[0].response_headers_to_add[0].header.value: unknown variable %NOPE%"), "{err}");
    assert!(lines[1].starts_with("cfg.yaml:12: route_configs[0].virtual_hosts[0].routes[0].response_headers_to_add[1].append_action: unknown append_action \"OVERWRITE_IF_EXIST\" (did you mean \"OVERWRITE_IF_EXISTS\"?)"), "{err}");
    assert_eq!(lines[2], "cfg.yaml:13: route_configs[0].virtual_hosts[0].routes[0].request_headers_to_remove[0]: invalid header name \"bad header\"", "{err}");
}

// ---------------------------------------------------------------------------------------------
// Request body limit
// ---------------------------------------------------------------------------------------------

#[test]
fn bodies_over_max_request_body_get_413() {
    let up = echo_head_server("echo");
    let rest = format!(
        "route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ prefix: /retry }}
            route: {{ cluster: echo, retry_policy: {{ retry_on: 5xx, num_retries: 1 }} }}
          - match: {{ prefix: / }}
            route: {{ cluster: echo }}
clusters:
{}",
        cluster("echo", up.addr)
    );
    let (_s, addr) = start_web("{ route_config: main, max_request_body: 1KiB }", &rest);
    let small = "x".repeat(100);
    let big = "x".repeat(4096);
    // Under the limit: forwarded.
    let r = curl(&["--data-binary", &small, &url(addr, "/ok")]);
    assert_eq!(r.status, 200, "{r:?}");
    // Declared too large: refused before anything is forwarded.
    let r = curl(&["--data-binary", &big, &url(addr, "/declared")]);
    assert_eq!(r.status, 413, "{r:?}");
    assert!(
        r.text().contains("too large") && r.text().contains("web"),
        "{r:?}"
    );
    // Streamed without a length (chunked, and HTTP/2 without content-length): cut off at the limit.
    let r = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &big,
        &url(addr, "/chunked"),
    ]);
    assert_eq!(r.status, 413, "{r:?}");
    let r = curl(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &big,
        &url(addr, "/retry"),
    ]);
    assert_eq!(
        r.status, 413,
        "with a retry policy the body is read ahead: {r:?}"
    );
    let r = curl_h2(&["--data-binary", &big, &url(addr, "/h2")]);
    assert_eq!(r.status, 413, "{r:?}");
    // The listener keeps serving.
    let r = curl(&["--data-binary", &small, &url(addr, "/after")]);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn via_is_appended_when_configured() {
    let up = echo_head_server("echo");
    let (_s, addr) = start_web(
        "{ via: \"1.1 sluice\", routes: [{ match: { prefix: / }, route: { cluster: echo } }] }",
        &format!("clusters:\n{}", cluster("echo", up.addr)),
    );
    let r = curl(&["-H", "via: 1.0 edge", &url(addr, "/v")]);
    assert_eq!(r.status, 200, "{r:?}");
    let seen = r.text();
    assert!(
        seen.contains("via: 1.0 edge\n") && seen.contains("via: 1.1 sluice\n"),
        "{seen}"
    );
    assert_eq!(r.header("via"), Some("1.1 sluice"), "{r:?}");
}

#[test]
fn h2load_completes_every_request() {
    // h2load (nghttp2's load generator, a real HTTP/2 client): 10 connections x 10 concurrent
    // streams, to a local answer and through to an HTTP/1 upstream.
    let up = echo_head_server("echo");
    let (_s, addr) = start_web(
        "{ routes: [{ match: { prefix: /direct }, direct_response: { status: 200, body: ok } }, { match: { prefix: / }, route: { cluster: echo } }] }",
        &format!("clusters:\n{}", cluster("echo", up.addr)),
    );
    for path in ["/direct", "/proxied"] {
        let out = std::process::Command::new("timeout")
            .args([
                "60",
                "h2load",
                "-n",
                "2000",
                "-c",
                "10",
                "-m",
                "10",
                &url(addr, path),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "h2load failed (.ci/run installs nghttp2-client): {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored"),
            "{path}: {text}"
        );
        assert!(text.contains("status codes: 2000 2xx"), "{path}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Expect: 100-continue
// ---------------------------------------------------------------------------------------------

/// Sends the head of a 5-byte POST with `Expect: 100-continue`, holding the body back; returns
/// the connection and a reader on it.
fn post_expecting_continue(addr: SocketAddr, path: &str) -> (TcpStream, BufReader<TcpStream>) {
    let mut c = connect(addr);
    let r = BufReader::new(c.try_clone().unwrap());
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    (c, r)
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let up = echo_head_server("e1");
    let (_s, addr) = start_web("{ route_config: main }", &forward_config(up.addr));
    let (mut c, mut r) = post_expecting_continue(addr, "/upload");
    // The client holds its body back until the interim answer: a proxy that never sends
    // it would leave this read to time out.
    let (line, headers) = read_head(&mut r).unwrap().unwrap();
    assert_eq!(line, "HTTP/1.1 100 Continue", "{headers:?}");
    c.write_all(b"hello").unwrap();
    let (line, headers) = read_head(&mut r).unwrap().unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK");
    let echoed = Echoed::parse(&read_body(&mut r, &headers).unwrap());
    assert_eq!(echoed.request_line, "POST /upload HTTP/1.1");
    assert_eq!(echoed.body, b"hello");
    // The proxy answered the expectation itself; the upstream got the body outright.
    assert_eq!(echoed.header("expect"), None, "{echoed:?}");

    // curl's own Expect handling (it waits up to a second for the 100 before sending anyway).
    let body = payload(2 * 1024 * 1024);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body");
    std::fs::write(&file, &body).unwrap();
    let data = format!("@{}", file.display());
    let reply = curl(&[
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "30",
        "--data-binary",
        &data,
        &url(addr, "/big"),
    ]);
    assert_eq!(reply.status, 200);
    assert_eq!(Echoed::parse(&reply.body).body, body);
}

#[test]
fn expect_100_continue_on_a_local_reply_gets_the_final_answer_only() {
    let (_s, addr) = start_web("{ route_config: main }", HEALTH_ROUTES);
    let (_c, mut r) = post_expecting_continue(addr, "/healthz");
    let (line, headers) = read_head(&mut r).unwrap().unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK", "no 100 for a body nobody reads");
    assert_eq!(read_body(&mut r, &headers).unwrap(), b"ok");
}
