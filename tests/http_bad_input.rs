//! The `http_proxy` filter against hostile or broken clients, end to end: the real binary
//! between raw sockets (HTTP/1.1 bytes and HTTP/2 frames written by hand, so nothing tidies the
//! input up first) and small std upstreams that record what reached them. Every abuse runs
//! while a well-behaved client keeps making requests on other connections, and each of those
//! must succeed. Ends with the h2spec conformance run (see docs/conformance.md).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Cursor, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::http1::{get, read_body, read_head, Headers};
use common::*;

// ---------------------------------------------------------------------------------------------
// Starting sluice
// ---------------------------------------------------------------------------------------------

fn local(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// Starts sluice with one listener `web` (`http_proxy: <filter>`, a YAML flow mapping) whose
/// route config `main` answers `/healthz` itself and sends everything else to `upstream`.
fn start_web(filter: &str, upstream: SocketAddr) -> (Sluice, SocketAddr) {
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {filter}
route_configs:
  - name: main
    virtual_hosts:
      - name: any
        domains: [\"*\"]
        routes:
          - match: {{ path: /healthz }}
            direct_response: {{ status: 200, body: \"ok\" }}
          - match: {{ path: /empty431 }}
            direct_response: {{ status: 431 }}
          - match: {{ prefix: / }}
            route: {{ cluster: up, timeout: 15s }}
clusters:
  - name: up
    connect_timeout: 2s
    endpoints: [{{ address: \"{upstream}\" }}]
"
    );
    (Sluice::start(&yaml), addr)
}

/// The default listener: `codec: auto`, with the given `http_proxy` settings added.
fn start_default(extra: &str, upstream: SocketAddr) -> (Sluice, SocketAddr) {
    start_web(&format!("{{ route_config: main{extra} }}"), upstream)
}

// ---------------------------------------------------------------------------------------------
// Minimal HTTP/1.1 message reading
// ---------------------------------------------------------------------------------------------

// (the helpers live in tests/common/http1.rs)

/// A response: status, headers, body.
type Response = (u16, Headers, Vec<u8>);

/// Splits everything a connection sent into complete responses (a trailing partial one is
/// ignored).
fn parse_responses(raw: &[u8]) -> Vec<Response> {
    let mut r = Cursor::new(raw);
    let mut out = Vec::new();
    while let Ok(Some((line, headers))) = read_head(&mut r) {
        let Some(status) = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()) else {
            break;
        };
        let Ok(body) = read_body(&mut r, &headers) else {
            break;
        };
        out.push((status, headers, body));
    }
    out
}

/// Writes `request` on a new connection and reads until the proxy closes it (EOF or reset).
/// Write errors are ignored (the proxy may close before reading everything); a proxy that
/// neither answers-and-closes nor closes within the deadline fails the test.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    let _ = s.write_all(request);
    read_to_close(&mut s)
}

fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut resp = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return resp,
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return resp,
            Err(e) => panic!(
                "connection neither answered-and-closed nor closed: {e} (got so far {:?})",
                String::from_utf8_lossy(&resp)
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Upstreams
// ---------------------------------------------------------------------------------------------

/// What a [`RecordingUpstream`] read: the request line and headers of each request, and any
/// bytes it could not parse as a request.
#[derive(Debug, Clone)]
struct Recorded {
    line: String,
    headers: Headers,
    body: Vec<u8>,
}

/// An HTTP/1.1 keep-alive upstream that answers every request `200` with the request line as
/// body, and records every request head it reads.
struct RecordingUpstream {
    addr: SocketAddr,
    events: Receiver<Event>,
}

/// What a [`RecordingUpstream`] connection reports.
enum Event {
    Request(Recorded),
    /// Bytes that do not parse as a request.
    Garbage(String),
}

impl RecordingUpstream {
    fn start() -> RecordingUpstream {
        let (tx, events) = channel::<Event>();
        let addr = spawn_server(move |conn| {
            let mut w = conn.try_clone().unwrap();
            let mut r = BufReader::new(conn);
            loop {
                let (line, headers) = match read_head(&mut r) {
                    Ok(Some(h)) => h,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Event::Garbage(e.to_string()));
                        return;
                    }
                };
                let body = match read_body(&mut r, &headers) {
                    Ok(b) => b,
                    Err(e) => {
                        let _ = tx.send(Event::Garbage(format!("{line}: {e}")));
                        return;
                    }
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{line}",
                    line.len()
                );
                let _ = tx.send(Event::Request(Recorded {
                    line,
                    headers,
                    body,
                }));
                if w.write_all(resp.as_bytes()).is_err() {
                    return;
                }
            }
        });
        RecordingUpstream { addr, events }
    }

    /// Sends `GET /marker` through the proxy on a new connection and waits for its answer,
    /// then returns every other request the upstream recorded. Anything a bad request had
    /// smuggled through the proxy reached the upstream before the marker did.
    fn requests_after_marker(&self, proxy: SocketAddr) -> Vec<Recorded> {
        let out = exchange(
            proxy,
            b"GET /marker HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        let r = parse_responses(&out);
        assert_eq!(r.len(), 1, "{:?}", String::from_utf8_lossy(&out));
        assert_eq!(r[0].0, 200, "{:?}", String::from_utf8_lossy(&out));
        // Each request is reported before its answer is written, so the marker's is in.
        let mut requests = Vec::new();
        for event in self.events.try_iter() {
            match event {
                Event::Request(r) if r.line == "GET /marker HTTP/1.1" => {}
                Event::Request(r) => requests.push(r),
                Event::Garbage(g) => {
                    panic!("the upstream read bytes that are not a request: {g}")
                }
            }
        }
        requests
    }
}

// ---------------------------------------------------------------------------------------------
// A well-behaved client running alongside the abuse
// ---------------------------------------------------------------------------------------------

/// A keep-alive HTTP/1.1 client that sends `GET /healthz` over and over (a new connection every
/// 10 requests) on its own thread until [`Bystander::finish`], recording every failure.
struct Bystander {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    thread: thread::JoinHandle<Vec<String>>,
}

impl Bystander {
    /// Starts the client and returns once its first request has succeeded.
    fn start(addr: SocketAddr) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let (stop2, done2) = (stop.clone(), done.clone());
        let thread = thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                let s = connect(addr);
                s.set_nodelay(true).unwrap();
                let mut r = BufReader::new(s);
                for _ in 0..10 {
                    match Self::one(&mut r) {
                        Ok(()) => {
                            done2.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => {
                            failures.push(e);
                            break;
                        }
                    }
                }
                if failures.len() > 5 {
                    break;
                }
            }
            failures
        });
        let b = Bystander { stop, done, thread };
        b.wait_for_more(0);
        b
    }

    fn one(r: &mut BufReader<TcpStream>) -> Result<(), String> {
        let req = b"GET /healthz HTTP/1.1\r\nHost: bystander\r\n\r\n";
        r.get_mut()
            .write_all(req)
            .map_err(|e| format!("write: {e}"))?;
        let (line, headers) = read_head(r)
            .map_err(|e| format!("read: {e}"))?
            .ok_or("the proxy closed a keep-alive connection")?;
        let body = read_body(r, &headers).map_err(|e| format!("body: {e}"))?;
        if line.starts_with("HTTP/1.1 200") && body == b"ok" {
            Ok(())
        } else {
            Err(format!("{line} {:?}", String::from_utf8_lossy(&body)))
        }
    }

    /// Waits (bounded) until more than `n` requests have succeeded.
    fn wait_for_more(&self, n: usize) {
        let start = Instant::now();
        while self.done.load(Ordering::SeqCst) <= n {
            assert!(
                !self.thread.is_finished(),
                "the well-behaved client stopped early"
            );
            assert!(
                start.elapsed() < DEADLINE,
                "the well-behaved client made no progress"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets at least one more request succeed (so the client ran across the whole abuse), then
    /// stops it and asserts that every request succeeded.
    fn finish(self) {
        let n = self.done.load(Ordering::SeqCst);
        self.wait_for_more(n);
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.thread.join().unwrap();
        assert!(
            failures.is_empty(),
            "well-behaved requests failed during the abuse: {failures:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1: smuggling and malformed requests
// ---------------------------------------------------------------------------------------------

/// Sends `request` (which must be rejected before anything is forwarded) while a bystander
/// runs; asserts a single 400 and that nothing reached the upstream.
fn assert_rejected_with_400(request: &[u8]) {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default("", up.addr);
    let bystander = Bystander::start(addr);
    let out = exchange(addr, request);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400"), "{text:?}");
    let responses = parse_responses(&out);
    assert_eq!(responses.len(), 1, "one answer, then close: {text:?}");
    let body = String::from_utf8_lossy(&responses[0].2);
    assert!(
        body.starts_with("bad request: listener \"web\""),
        "the 400 names its cause and listener: {text:?}"
    );
    let reached = up.requests_after_marker(addr);
    assert!(
        reached.is_empty(),
        "a rejected request reached the upstream: {reached:?}"
    );
    bystander.finish();
}

/// A request with both framings: per RFC 9112 §6.3 a proxy must not forward both headers, and
/// must close the connection after answering. Sluice may refuse it (400) or forward it framed
/// by `Transfer-Encoding` alone; either way the bytes after the chunked body never become a
/// second request upstream.
fn assert_not_smuggled(request: &[u8], chunked_body: &[u8]) {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default("", up.addr);
    let bystander = Bystander::start(addr);
    let out = exchange(addr, request);
    let text = String::from_utf8_lossy(&out);
    let responses = parse_responses(&out);
    assert_eq!(
        responses.len(),
        1,
        "one answer, then the connection closed: {text:?}"
    );
    let status = responses[0].0;
    let reached = up.requests_after_marker(addr);
    match status {
        400 => assert!(reached.is_empty(), "{reached:?}"),
        200 => {
            assert_eq!(reached.len(), 1, "{reached:?}");
            let r = &reached[0];
            assert_eq!(r.line, "POST /a HTTP/1.1", "{r:?}");
            let cl = get(&r.headers, "content-length").is_some();
            let te = get(&r.headers, "transfer-encoding").is_some();
            assert!(
                !(cl && te),
                "forwarded with both Content-Length and Transfer-Encoding: {r:?}"
            );
            assert_eq!(
                r.body, chunked_body,
                "not framed by Transfer-Encoding: {r:?}"
            );
        }
        other => panic!("unexpected status {other}: {text:?}"),
    }
    assert!(
        !reached.iter().any(|r| r.line.contains("smuggled")),
        "a smuggled request reached the upstream: {reached:?}"
    );
    bystander.finish();
}

#[test]
fn content_length_then_transfer_encoding_is_not_smuggled() {
    // CL.TE: by Content-Length the body is `0\r\n\r\nG`; by chunked coding it is empty and
    // `GET /smuggled` follows.
    assert_not_smuggled(
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        b"",
    );
}

#[test]
fn transfer_encoding_then_content_length_is_not_smuggled() {
    // TE.CL: by Content-Length the body is `7\r\n` and `payload...` starts the next request; by
    // chunked coding the body is `payload` and `GET /smuggled` follows.
    assert_not_smuggled(
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n7\r\npayload\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        b"payload",
    );
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_400() {
    assert_rejected_with_400(
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    );
}

#[test]
fn duplicate_differing_content_length_is_400() {
    assert_rejected_with_400(
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    );
}

#[test]
fn a_transfer_coding_under_chunked_is_501() {
    // `gzip, chunked` is well formed, but the gzip coding would reach the upstream undeclared
    // once the hop-by-hop Transfer-Encoding is dropped.
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default("", up.addr);
    let out = exchange(
        addr,
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    );
    let responses = parse_responses(&out);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(responses[0].0, 501);
    let body = String::from_utf8_lossy(&responses[0].2);
    assert!(
        body.starts_with("not implemented: listener \"web\"") && body.contains("gzip"),
        "{body:?}"
    );
    assert!(up.requests_after_marker(addr).is_empty());
}

#[test]
fn a_malformed_chunked_request_body_is_400() {
    // The head is fine, so the request goes upstream; the body breaks on the way. The client
    // is told its body was at fault (not that the upstream reset).
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default("", up.addr);
    let bystander = Bystander::start(addr);
    let out = exchange(
        addr,
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    );
    let responses = parse_responses(&out);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(responses[0].0, 400);
    let body = String::from_utf8_lossy(&responses[0].2);
    assert!(
        body.starts_with("bad request body: listener \"web\"") && body.contains("chunked"),
        "{body:?}"
    );
    bystander.finish();
}

#[test]
fn more_than_one_host_is_400() {
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n");
}

#[test]
fn obs_fold_is_400() {
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n two\r\n\r\n");
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Folded: one\r\n\ttwo\r\n\r\n");
}

#[test]
fn bare_cr_and_nul_in_a_header_value_are_400() {
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Cr: a\rb\r\n\r\n");
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n");
}

#[test]
fn invalid_header_names_are_400() {
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n");
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\nX\x01: y\r\n\r\n");
    assert_rejected_with_400(b"GET /a HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n");
    // Whitespace before the colon hides a framing header from lenient parsers.
    assert_rejected_with_400(
        b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    );
}

#[test]
fn pipelined_requests_get_their_responses_in_order() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default("", up.addr);
    let out = exchange(
        addr,
        b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let responses = parse_responses(&out);
    let got: Vec<(u16, String)> = responses
        .iter()
        .map(|(s, _, b)| (*s, String::from_utf8_lossy(b).into_owned()))
        .collect();
    assert_eq!(
        got,
        [
            (200, "GET /p1 HTTP/1.1".to_string()),
            (200, "ok".to_string()),
            (200, "GET /p3 HTTP/1.1".to_string()),
        ],
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP/1: oversized heads and slow clients
// ---------------------------------------------------------------------------------------------

/// Sends an oversized head (written on its own thread: the proxy answers before reading it
/// all) and returns the status of the answer, or `None` when the proxy closed without one.
/// A 431 must say why, naming the listener and the limit.
fn oversized_http1(addr: SocketAddr, request: Vec<u8>) -> Option<u16> {
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let _ = w.write_all(&request);
    });
    let out = read_to_close(&mut s);
    writer.join().unwrap();
    let responses = parse_responses(&out);
    assert!(responses.len() <= 1, "{:?}", String::from_utf8_lossy(&out));
    let (status, _, body) = responses.first()?;
    if *status == 431 {
        assert_431_body(&String::from_utf8_lossy(body), 60);
    }
    Some(*status)
}

fn assert_431_body(body: &str, kb: u32) {
    assert!(
        body.starts_with("request headers too large: listener \"web\"")
            && body.contains(&format!("at most {kb} KiB"))
            && body.contains("max_request_headers_kb"),
        "{body:?}"
    );
}

#[test]
fn a_request_target_too_long_to_parse_is_414_with_a_body() {
    // hyper parses request targets up to 64 KiB; with a head limit above that, a longer target
    // gets hyper's 414, which Sluice answers with a body of its own.
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", max_request_headers_kb: 200", up.addr);
    let request = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70 * 1024));
    let out = exchange(addr, request.as_bytes());
    let responses = parse_responses(&out);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(responses[0].0, 414);
    let body = String::from_utf8_lossy(&responses[0].2);
    assert!(
        body.starts_with("URI too long: listener \"web\""),
        "{body:?}"
    );
    assert!(up.requests_after_marker(addr).is_empty());
}

#[test]
fn oversized_http1_header_and_request_line_are_431() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", max_request_headers_kb: 60", up.addr);
    let bystander = Bystander::start(addr);
    let big = "a".repeat(100 * 1024);

    // Under the limit: forwarded.
    let fits = format!(
        "GET /fits HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        &big[..30 * 1024]
    );
    let out = exchange(addr, fits.as_bytes());
    let r = parse_responses(&out);
    assert_eq!(r.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(r[0].0, 200);

    let header = format!("GET /big-header HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    assert_eq!(oversized_http1(addr, header.into_bytes()), Some(431));
    let line = format!("GET /{big} HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(oversized_http1(addr, line.into_bytes()), Some(431));
    // Many small headers add up the same way.
    let many: String = (0..4000).map(|i| format!("X-H{i}: {i:020}\r\n")).collect();
    let many = format!("GET /many HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert_eq!(oversized_http1(addr, many.into_bytes()), Some(431));

    let reached = up.requests_after_marker(addr);
    let lines: Vec<&str> = reached.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(lines, ["GET /fits HTTP/1.1"]);
    bystander.finish();
}

#[test]
fn an_oversized_head_after_a_keep_alive_exchange_gets_the_431_with_its_body() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", max_request_headers_kb: 8", up.addr);
    let mut s = connect(addr);
    let big = "a".repeat(16 * 1024);
    // A forwarded request, a local reply, a local empty 431 (ours, passed as it is), then an
    // oversized head: only the last is hyper's, rewritten with a body.
    let requests = format!(
        "GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /empty431 HTTP/1.1\r\nHost: x\r\n\r\nGET /big HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"
    );
    let mut w = s.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let _ = w.write_all(requests.as_bytes());
    });
    let out = read_to_close(&mut s);
    writer.join().unwrap();
    let responses = parse_responses(&out);
    let statuses: Vec<u16> = responses.iter().map(|r| r.0).collect();
    assert_eq!(
        statuses,
        [200, 200, 431, 431],
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert!(
        responses[2].2.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_431_body(&String::from_utf8_lossy(&responses[3].2), 8);
    let close = responses[3].1.iter().find(|(n, _)| n == "connection");
    assert_eq!(close.map(|(_, v)| v.as_str()), Some("close"));
}

/// Asserts that the proxy closes `s` while a thread dribbles `dribble` one byte every 200ms;
/// an answer before the close may only be a 408.
fn assert_closed_while_dribbling(mut s: TcpStream, dribble: &'static [u8]) {
    let mut w = s.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = thread::spawn(move || {
        for b in dribble.iter().cycle() {
            if stop2.load(Ordering::SeqCst) || w.write_all(&[*b]).is_err() {
                return;
            }
            // Pacing of the slow client, not a wait for readiness.
            thread::sleep(Duration::from_millis(200));
        }
    });
    let out = read_to_close(&mut s);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        out.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
}

#[test]
fn slowloris_headers_are_cut_off_after_request_headers_timeout() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", request_headers_timeout: 1s", up.addr);
    let bystander = Bystander::start(addr);
    let mut s = connect(addr);
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n").unwrap();
    assert_closed_while_dribbling(s, b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    let reached = up.requests_after_marker(addr);
    assert!(reached.is_empty(), "{reached:?}");
    bystander.finish();
}

#[test]
fn slowloris_on_the_request_line_is_cut_off_too() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", request_headers_timeout: 1s", up.addr);
    let bystander = Bystander::start(addr);
    let s = connect(addr);
    assert_closed_while_dribbling(s, b"GET /slooooooooooooooooooooooooooooooooooooooow");
    bystander.finish();
}

#[test]
fn a_head_cut_off_by_request_headers_timeout_gets_a_408_that_says_why() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", request_headers_timeout: 1s", up.addr);
    let mut s = connect(addr);
    s.write_all(b"GET /partial HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let out = read_to_close(&mut s);
    let responses = parse_responses(&out);
    assert_eq!(responses.len(), 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(responses[0].0, 408);
    let body = String::from_utf8_lossy(&responses[0].2);
    assert!(
        body.starts_with("request timeout: listener \"web\"")
            && body.contains("request_headers_timeout"),
        "{body:?}"
    );
}

/// Connects to a listener with `request_headers_timeout: 1s`, writes `first` and then nothing:
/// the proxy must close the connection (an answer before may only be a 408).
fn assert_idle_client_is_closed(codec: &str, first: &[u8]) {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_web(
        &format!("{{ codec: {codec}, route_config: main, request_headers_timeout: 1s }}"),
        up.addr,
    );
    let mut s = connect(addr);
    s.write_all(first).unwrap();
    let out = read_to_close(&mut s);
    let text = String::from_utf8_lossy(&out);
    assert!(
        out.is_empty() || text.starts_with("HTTP/1.1 408"),
        "codec {codec}: {text:?}"
    );
}

#[test]
fn a_client_stalled_after_its_first_bytes_is_closed() {
    assert_idle_client_is_closed("http1", b"G");
    assert_idle_client_is_closed("auto", b"GET /");
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_request_headers_timeout() {
    assert_idle_client_is_closed("http1", b"");
    assert_idle_client_is_closed("auto", b"");
}

#[test]
fn a_partial_h2_preface_is_closed_after_request_headers_timeout() {
    assert_idle_client_is_closed("auto", b"PRI * HTTP/2.0\r\n");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_request_headers_timeout() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", request_headers_timeout: 1s", up.addr);
    let mut s = connect(addr);
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    let (line, headers) = read_head(&mut r).unwrap().unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    assert_eq!(read_body(&mut r, &headers).unwrap(), b"ok");
    let out = read_to_close(r.get_mut());
    let text = String::from_utf8_lossy(&out);
    assert!(
        out.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 frames by hand
// ---------------------------------------------------------------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const NO_ERROR: u32 = 0x0;
const PROTOCOL_ERROR: u32 = 0x1;
const CANCEL: u32 = 0x8;
const REFUSED_STREAM: u32 = 0x7;
const ENHANCE_YOUR_CALM: u32 = 0xb;

#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    fn error_code(&self) -> u32 {
        let at = if self.kind == GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    /// The `:status` of a response HEADERS frame (see [`decode_status`]).
    fn status(&self) -> Option<u16> {
        decode_status(&self.payload)
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// HPACK integer with an `n`-bit prefix; `first` holds the bits above the prefix.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | u8::try_from(v).unwrap());
        return;
    }
    out.push(first | u8::try_from(max).unwrap());
    v -= max;
    while v >= 128 {
        out.push(u8::try_from(v % 128).unwrap() | 0x80);
        v /= 128;
    }
    out.push(u8::try_from(v).unwrap());
}

/// HPACK string literal, not Huffman-coded.
fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// A GET request header block: static-table `:method GET` and `:scheme http`, the rest as
/// literals without indexing (so the server's decoder state never matters).
fn request_block(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut b = vec![0x82, 0x86];
    hpack_int(&mut b, 0, 4, 4); // :path, literal value
    hpack_str(&mut b, path.as_bytes());
    hpack_int(&mut b, 0, 4, 1); // :authority
    hpack_str(&mut b, b"h2.test");
    for (n, v) in extra {
        b.push(0);
        hpack_str(&mut b, n.as_bytes());
        hpack_str(&mut b, v.as_bytes());
    }
    b
}

/// The `:status` of a response header block, which servers put first: an indexed static entry
/// (200, 204, 206, 304, 400, 404, 500) or a literal with the `:status` name and a plain or
/// Huffman-coded (digits only) value.
fn decode_status(block: &[u8]) -> Option<u16> {
    const STATIC: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    let first = *block.first()?;
    if first & 0x80 != 0 {
        return STATIC
            .get(usize::from(first & 0x7f).checked_sub(8)?)
            .copied();
    }
    let index = if first & 0x40 != 0 {
        first & 0x3f
    } else {
        first & 0x0f
    };
    if !(8..=14).contains(&index) {
        return None;
    }
    let len_byte = *block.get(1)?;
    let len = usize::from(len_byte & 0x7f);
    let value = block.get(2..2 + len)?;
    let digits = if len_byte & 0x80 == 0 {
        String::from_utf8(value.to_vec()).ok()?
    } else {
        huffman_digits(value)?
    };
    digits.parse().ok()
}

/// Decodes a Huffman-coded string of ASCII digits (RFC 7541 Appendix B: `0`-`2` have 5-bit
/// codes `00000`-`00010`, `3`-`9` 6-bit codes `011001`-`011111`).
fn huffman_digits(bytes: &[u8]) -> Option<String> {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let mut out = String::new();
    let mut i = 0;
    while i < bits.len() {
        let rest = &bits[i..];
        if rest.iter().all(|b| *b == 1) && rest.len() < 8 {
            break; // EOS padding
        }
        let code5 = rest.get(..5)?.iter().fold(0u8, |a, b| a << 1 | b);
        if code5 <= 2 {
            out.push(char::from(b'0' + code5));
            i += 5;
            continue;
        }
        let code6 = rest.get(..6)?.iter().fold(0u8, |a, b| a << 1 | b);
        if !(0b011001..=0b011111).contains(&code6) {
            return None;
        }
        out.push(char::from(b'0' + 3 + code6 - 0b011001));
        i += 6;
    }
    Some(out)
}

/// A raw HTTP/2 client connection (prior knowledge, cleartext).
struct H2 {
    s: TcpStream,
    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS, when it advertised one.
    max_concurrent_streams: Option<u32>,
}

impl H2 {
    /// Connects, exchanges SETTINGS (our empty one, the server's acknowledged).
    fn connect(addr: SocketAddr) -> H2 {
        Self::handshake(connect(addr))
    }

    fn handshake(s: TcpStream) -> H2 {
        s.set_nodelay(true).unwrap();
        let mut c = H2 {
            s,
            max_concurrent_streams: None,
        };
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        c.s.write_all(&hello).unwrap();
        let f = c.read().unwrap();
        assert_eq!((f.kind, f.flags & ACK), (SETTINGS, 0), "{f:?}");
        for setting in f.payload.chunks(6) {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            let value = u32::from_be_bytes(setting[2..6].try_into().unwrap());
            if id == SETTINGS_MAX_CONCURRENT_STREAMS {
                c.max_concurrent_streams = Some(value);
            }
        }
        c.s.write_all(&frame(SETTINGS, ACK, 0, &[])).unwrap();
        c
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads one frame; `Err` on EOF, reset or the read deadline.
    fn read(&mut self) -> std::io::Result<Frame> {
        let mut head = [0u8; 9];
        self.s.read_exact(&mut head)?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        self.s.read_exact(&mut payload)?;
        Ok(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
            payload,
        })
    }

    /// Sends a header block on `stream`, split into HEADERS + CONTINUATION frames of at most
    /// 16 KiB (the default SETTINGS_MAX_FRAME_SIZE).
    fn send_headers(&mut self, stream: u32, block: &[u8], end_stream: bool) {
        let chunks: Vec<&[u8]> = block.chunks(16 * 1024).collect();
        let mut bytes = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut flags = 0;
            if i + 1 == chunks.len() {
                flags |= END_HEADERS;
            }
            let kind = if i == 0 {
                if end_stream {
                    flags |= END_STREAM;
                }
                HEADERS
            } else {
                CONTINUATION
            };
            bytes.extend(frame(kind, flags, stream, chunk));
        }
        let _ = self.s.write_all(&bytes);
    }

    /// Sends a PING and reads frames until its ACK; returns the frames before it. Fails the
    /// test if the connection ends first.
    fn ping_roundtrip(&mut self) -> Vec<Frame> {
        self.send(&frame(PING, 0, 0, b"sluice!!"));
        let mut seen = Vec::new();
        loop {
            let f = self
                .read()
                .unwrap_or_else(|e| panic!("connection ended before the PING ACK: {e}; {seen:?}"));
            if f.kind == PING && f.flags & ACK != 0 && f.payload == b"sluice!!" {
                return seen;
            }
            seen.push(f);
        }
    }

    /// Reads until a GOAWAY (returned), the end of the connection (`None`), or a frame for
    /// which `stop` returns true (`None`). Every frame before a GOAWAY is passed to `stop`.
    fn read_until(&mut self, mut stop: impl FnMut(&Frame) -> bool) -> Option<Frame> {
        loop {
            match self.read() {
                Ok(f) if f.kind == GOAWAY => return Some(f),
                Ok(f) => {
                    if stop(&f) {
                        return None;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset
                    ) =>
                {
                    return None
                }
                Err(e) => panic!("neither GOAWAY nor close: {e}"),
            }
        }
    }
}

/// One `GET /healthz` on a new HTTP/2 connection: the server still serves HTTP/2.
fn assert_h2_healthz(addr: SocketAddr) {
    let mut c = H2::connect(addr);
    c.send_headers(1, &request_block("/healthz", &[]), true);
    loop {
        let f = c.read().unwrap();
        if f.kind == HEADERS && f.stream == 1 {
            assert_eq!(f.status(), Some(200), "{f:?}");
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 abuse
// ---------------------------------------------------------------------------------------------

#[test]
fn hand_written_h2_client_works() {
    // The frame writer and status decoder used below, against a normal request.
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default("", up.addr);
    assert_h2_healthz(addr);
    let mut c = H2::connect(addr);
    c.send_headers(3, &request_block("/up", &[("x-test", "1")]), true);
    let mut status = None;
    let mut body = Vec::new();
    loop {
        let f = c.read().unwrap();
        if f.kind == HEADERS && f.stream == 3 {
            status = f.status();
        }
        if f.kind == DATA && f.stream == 3 {
            body.extend_from_slice(&f.payload);
            if f.flags & END_STREAM != 0 {
                break;
            }
        }
    }
    assert_eq!(status, Some(200));
    assert_eq!(String::from_utf8_lossy(&body), "GET /up HTTP/1.1");
    assert_eq!(huffman_digits(&[0x64, 0x02]).as_deref(), Some("302"));
}

/// Sends a request with an `x-big` header of `size` bytes on stream 1 and collects what comes
/// back for it: frames, and the response body.
fn oversized_h2_answer(c: &mut H2, size: usize) -> (Vec<Frame>, Vec<u8>) {
    c.send_headers(
        1,
        &request_block("/big", &[("x-big", &"a".repeat(size))]),
        true,
    );
    let mut answer = Vec::new();
    let mut body = Vec::new();
    loop {
        let f = c
            .read()
            .unwrap_or_else(|e| panic!("no answer to the oversized stream: {e}; {answer:?}"));
        let done = f.kind == GOAWAY
            || (f.stream == 1 && (f.kind == RST_STREAM || f.flags & END_STREAM != 0));
        if f.stream == 1 && f.kind == DATA {
            body.extend_from_slice(&f.payload);
        }
        if f.stream == 1 || f.kind == GOAWAY {
            answer.push(f);
        }
        if done {
            return (answer, body);
        }
    }
}

#[test]
fn oversized_h2_header_list_is_431_or_refused() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default(", max_request_headers_kb: 60", up.addr);
    let bystander = Bystander::start(addr);

    // Over the limit, under twice it: the proxy answers 431 with a body that says why.
    let mut c = H2::connect(addr);
    let (answer, body) = oversized_h2_answer(&mut c, 100 * 1024);
    assert_eq!(answer[0].kind, HEADERS, "{answer:?}");
    assert_eq!(answer[0].status(), Some(431), "{answer:?}");
    assert_431_body(&String::from_utf8_lossy(&body), 60);

    // Far over: h2 refuses the stream (a bare 431 and/or a reset, or a GOAWAY).
    let mut c = H2::connect(addr);
    let (answer, _) = oversized_h2_answer(&mut c, 200 * 1024);
    for f in &answer {
        match f.kind {
            HEADERS => assert_eq!(f.status(), Some(431), "{answer:?}"),
            RST_STREAM => assert!(
                [PROTOCOL_ERROR, REFUSED_STREAM, NO_ERROR].contains(&f.error_code()),
                "{answer:?}"
            ),
            GOAWAY => {}
            _ => panic!("unexpected frame for the oversized stream: {answer:?}"),
        }
    }
    // A normal request on the same connection still works unless it was closed.
    if answer.iter().all(|f| f.kind != GOAWAY) {
        c.send_headers(3, &request_block("/healthz", &[]), true);
        loop {
            let f = c.read().unwrap();
            if f.kind == HEADERS && f.stream == 3 {
                assert_eq!(f.status(), Some(200), "{f:?}");
                break;
            }
        }
    }
    let reached = up.requests_after_marker(addr);
    assert!(reached.is_empty(), "{reached:?}");
    assert_h2_healthz(addr);
    bystander.finish();
}

#[test]
fn h2_rapid_reset_flood_gets_goaway() {
    let up = RecordingUpstream::start();
    let (_s, addr) = start_default("", up.addr);
    let bystander = Bystander::start(addr);
    let mut c = H2::connect(addr);
    let block = request_block("/up", &[]);
    let mut w = c.s.try_clone().unwrap();
    // Thousands of streams, each opened and cancelled at once, written from another thread
    // while this one reads (the server's answers must not block it).
    let writer = thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..10_000u32 {
            let id = 2 * i + 1;
            batch.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block));
            batch.extend(rst_stream(id, CANCEL));
            if batch.len() > 16 * 1024 {
                if w.write_all(&batch).is_err() {
                    return;
                }
                batch.clear();
            }
        }
        let _ = w.write_all(&batch);
        let _ = w.write_all(&frame(PING, 0, 0, b"flooded!"));
    });
    let mut ping_ack = false;
    let goaway = c.read_until(|f| {
        ping_ack = f.kind == PING && f.flags & ACK != 0;
        ping_ack
    });
    writer.join().unwrap();
    assert!(
        !ping_ack,
        "the server read all 10000 opened-and-reset streams and answered the PING after them \
         without a GOAWAY"
    );
    if let Some(g) = goaway {
        assert_eq!(g.error_code(), ENHANCE_YOUR_CALM, "{g:?}");
    }
    assert_h2_healthz(addr);
    bystander.finish();
}

#[test]
fn h2_settings_flood_is_bounded() {
    let up = RecordingUpstream::start();
    let (sluice, addr) = start_default("", up.addr);
    let bystander = Bystander::start(addr);
    // A client that floods SETTINGS and never reads the ACKs, with a small receive buffer so
    // unread ACKs back up into the server quickly.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut c = H2::handshake(s);
    let rss_before = sluice.rss_kib();
    let mut w = c.s.try_clone().unwrap();
    // A write that cannot complete for this long means the server stopped reading.
    w.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
    let settings = frame(SETTINGS, 0, 0, &[0, 0x2, 0, 0, 0, 0]); // ENABLE_PUSH = 0
    const FRAMES: usize = 2_000_000; // 30 MB: more than all the socket buffers on the way
    let writer = thread::spawn(move || {
        let batch: Vec<u8> = (0..1000).flat_map(|_| settings.clone()).collect();
        for _ in 0..FRAMES / 1000 {
            if let Err(e) = w.write_all(&batch) {
                return Some(e.kind());
            }
        }
        let _ = w.write_all(&frame(PING, 0, 0, b"flooded!"));
        None
    });
    let stopped = writer.join().unwrap();
    let rss_after = sluice.rss_kib();
    eprintln!("SETTINGS flood: writer stopped by {stopped:?}; RSS {rss_before} -> {rss_after} KiB");
    match stopped {
        // The server closed the connection (GOAWAY then close, or reset).
        Some(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {}
        // The server stopped reading while its ACKs were unread: back-pressure, the flood costs
        // it no memory.
        Some(ErrorKind::WouldBlock | ErrorKind::TimedOut) => assert!(
            rss_after < rss_before + 32 * 1024,
            "memory grew from {rss_before} KiB to {rss_after} KiB during the SETTINGS flood"
        ),
        Some(other) => panic!("unexpected write error {other:?}"),
        None => {
            // Everything was written: the server must have given up on the connection.
            let mut ping_ack = false;
            let goaway = c.read_until(|f| {
                ping_ack = f.kind == PING && f.flags & ACK != 0;
                ping_ack
            });
            assert!(
                !ping_ack,
                "the server read {FRAMES} SETTINGS and answered the PING after them"
            );
            if let Some(g) = goaway {
                assert_eq!(g.error_code(), ENHANCE_YOUR_CALM, "{g:?}");
            }
        }
    }
    drop(c);
    assert_h2_healthz(addr);
    bystander.finish();
}

#[test]
fn h2_streams_over_max_concurrent_streams_are_refused() {
    let silent = silent_server();
    let (_s, addr) = start_default("", silent);
    let bystander = Bystander::start(addr);
    let mut c = H2::connect(addr);
    let max = c
        .max_concurrent_streams
        .expect("the server advertises SETTINGS_MAX_CONCURRENT_STREAMS");
    assert!((1..=1000).contains(&max), "{max}");
    // `max` streams held open by an upstream that never answers, then 10 more.
    let excess = 10;
    let block = request_block("/hold", &[]);
    let mut bytes = Vec::new();
    for i in 0..max + excess {
        bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 2 * i + 1, &block));
    }
    c.send(&bytes);
    let first_excess = 2 * max + 1;
    let mut refused = Vec::new();
    let mut goaway = None;
    while refused.len() < excess as usize && goaway.is_none() {
        let f = c
            .read()
            .unwrap_or_else(|e| panic!("connection ended: {e}; refused so far {refused:?}"));
        match f.kind {
            RST_STREAM => {
                assert!(
                    f.stream >= first_excess,
                    "stream {} within the limit of {max} was reset ({})",
                    f.stream,
                    f.error_code()
                );
                assert!(
                    [REFUSED_STREAM, PROTOCOL_ERROR].contains(&f.error_code()),
                    "{f:?}"
                );
                refused.push(f.stream);
            }
            GOAWAY => goaway = Some(f),
            HEADERS => panic!("stream {} answered by a never-answering upstream", f.stream),
            _ => {}
        }
    }
    if let Some(g) = goaway {
        assert_eq!(g.error_code(), PROTOCOL_ERROR, "{g:?}");
    }
    // The streams within the limit are still open: the connection answers a PING.
    if refused.len() == excess as usize {
        c.ping_roundtrip();
    }
    assert_h2_healthz(addr);
    bystander.finish();
}

// ---------------------------------------------------------------------------------------------
// h2spec
// ---------------------------------------------------------------------------------------------

/// h2spec cases Sluice is known to fail, each with its reason (and listed in
/// docs/conformance.md). An allowed case may pass; any other failure fails the test.
const H2SPEC_KNOWN_FAILURES: &[(&str, &str)] = &[(
    "http2/5.1/8",
    "racy in the h2 crate: when the response (END_STREAM) went out before the client's \
         RST_STREAM was read, a later DATA on that closed stream is ignored, not answered with \
         STREAM_CLOSED",
)];

fn h2spec_bin() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(p) = std::env::var_os("H2SPEC") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(out) = Command::new("go").args(["env", "GOPATH"]).output() {
        let gopath = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !gopath.is_empty() {
            candidates.push(PathBuf::from(gopath).join("bin/h2spec"));
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join("go/bin/h2spec"));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "h2spec not found (tried $H2SPEC, $(go env GOPATH)/bin/h2spec, ~/go/bin/h2spec: \
                 {candidates:?}); .ci/run installs h2spec"
            )
        })
}

/// One h2spec case from its JUnit report: id (`http2/5.1/8`), title, outcome.
#[derive(Debug)]
struct H2specCase {
    id: String,
    title: String,
    failed: Option<String>,
    skipped: bool,
}

/// Parses h2spec's JUnit report. h2spec numbers cases by position inside their section
/// (`<testsuite package="http2/5.1">`), which is how its ids and `h2spec http2/5.1/8` work.
fn parse_junit(xml: &str) -> Vec<H2specCase> {
    fn attr(s: &str, name: &str) -> String {
        let key = format!("{name}=\"");
        s.split_once(&key)
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(v, _)| v.to_string())
            .unwrap_or_default()
    }
    let mut cases = Vec::new();
    let mut last_package = String::new();
    let mut n = 0;
    for chunk in xml.split("<testcase ").skip(1) {
        let package = attr(chunk, "package");
        if package != last_package {
            n = 0;
            last_package.clone_from(&package);
        }
        n += 1;
        let body = chunk.split("</testcase>").next().unwrap_or("");
        let failed = ["<error>", "<failure>", "<error ", "<failure "]
            .iter()
            .find_map(|tag| body.split_once(tag))
            .map(|(_, rest)| rest.split('<').next().unwrap_or("").trim().to_string());
        cases.push(H2specCase {
            id: format!("{package}/{n}"),
            title: attr(chunk, "classname"),
            failed,
            skipped: body.contains("<skipped"),
        });
    }
    cases
}

/// Runs h2spec against `addr` (bounded), returns its cases.
fn run_h2spec(addr: SocketAddr, dir: &std::path::Path, name: &str) -> Vec<H2specCase> {
    let report = dir.join(format!("{name}.xml"));
    let log = dir.join(format!("{name}.log"));
    let mut child = Command::new(h2spec_bin())
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &addr.port().to_string(),
            "-o",
            "5",
            "-j",
        ])
        .arg(&report)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "h2spec did not finish in 120s; output:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
    let xml = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no h2spec report ({e}); output:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    let cases = parse_junit(&xml);
    assert!(cases.len() > 100, "too few h2spec cases: {cases:?}");
    cases
}

#[test]
fn h2spec_conformance() {
    let up = RecordingUpstream::start();
    // h2c proxying to an upstream, which answers once the request has ended. (A listener
    // answering from a direct_response at once races h2spec: a server may answer before the
    // request ends, and h2spec then reads the answer where it waits for the error it tests.)
    let proxied = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
listeners:
  - name: proxied
    address: \"{proxied}\"
    filters:
      - http_proxy: {{ codec: http2, routes: [{{ match: {{ prefix: / }}, route: {{ cluster: up }} }}] }}
clusters:
  - name: up
    endpoints: [{{ address: \"{}\" }}]
",
        up.addr
    );
    let s = Sluice::start(&yaml);
    let mut unexpected = Vec::new();
    let mut summary = Vec::new();
    let cases = run_h2spec(proxied, s.dir.path(), "proxied");
    let passed = cases
        .iter()
        .filter(|c| c.failed.is_none() && !c.skipped)
        .count();
    let skipped = cases.iter().filter(|c| c.skipped).count();
    summary.push(format!(
        "{passed}/{} passed, {skipped} skipped",
        cases.len()
    ));
    for c in cases.iter().filter(|c| c.failed.is_some()) {
        if !H2SPEC_KNOWN_FAILURES.iter().any(|(id, _)| *id == c.id) {
            unexpected.push(format!("{} {} -> {:?}", c.id, c.title, c.failed));
        }
    }
    eprintln!("h2spec: {}", summary.join("; "));
    assert!(
        unexpected.is_empty(),
        "h2spec failures not in H2SPEC_KNOWN_FAILURES ({}):\n{}",
        summary.join("; "),
        unexpected.join("\n")
    );
}
