//! Distributed tracing, black box: curl sends requests with trace context through Sluice to
//! an upstream in this test that reports the headers it received, and an OTLP collector stub
//! (tests/tracing/collector.py: the `opentelemetry-proto` package's messages, served over
//! grpcio or http.server) writes every span it receives as a JSON line the test polls.
//!
//! "Not exported" is checked without waiting for time to pass: the exporter keeps order, so
//! once a later, sampled marker request's span has arrived, an earlier span would have too.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use base64::Engine as _;
use common::*;
use serde_json::Value;

const PARENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

// ---------------------------------------------------------------------------------------------
// The collector
// ---------------------------------------------------------------------------------------------

/// A running tests/tracing/collector.py; killed on drop.
struct Collector {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Collector {
    fn start(mode: &str) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("spans.jsonl");
        let port = free_port();
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/tracing/collector.py");
        let child = Command::new("python3")
            .arg(script)
            .arg(mode)
            .arg(port.to_string())
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with opentelemetry-proto and grpcio (see .ci/run)");
        let mut collector = Collector {
            child,
            port,
            out,
            _dir: dir,
        };
        wait_for_ready_line(&mut collector.child, &format!("collector ({mode})"));
        collector
    }

    fn spans(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits for the span with this span id.
    fn span(&self, sluice: &Sluice, span_id: &str) -> Value {
        sluice.poll(&format!("span {span_id} at the collector"), || {
            self.spans().into_iter().find(|s| s["span_id"] == span_id)
        })
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The upstream: answers 200 and reports each request's path and headers
// ---------------------------------------------------------------------------------------------

type Seen = (String, HashMap<String, String>);

struct Upstream {
    addr: SocketAddr,
    seen: mpsc::Receiver<Seen>,
    pending: Vec<Seen>,
}

impl Upstream {
    fn start() -> Upstream {
        let (tx, rx) = mpsc::channel::<Seen>();
        let addr = spawn_server(move |conn| serve(conn, &tx.clone()));
        Upstream {
            addr,
            seen: rx,
            pending: Vec::new(),
        }
    }

    /// The headers of the request for `path`, waiting for it.
    fn headers(&mut self, path: &str) -> HashMap<String, String> {
        let start = Instant::now();
        loop {
            if let Some(i) = self.pending.iter().position(|(p, _)| p == path) {
                return self.pending.swap_remove(i).1;
            }
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.seen.recv_timeout(left) {
                Ok(seen) => self.pending.push(seen),
                Err(_) => panic!("the upstream never got {path}"),
            }
        }
    }
}

/// Keep-alive HTTP/1.1 for bodiless requests: enough for what Sluice sends here.
fn serve(mut conn: TcpStream, tx: &mpsc::Sender<Seen>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let mut lines = head.split("\r\n");
        let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let _ = tx.send((path, headers));
        if conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sluice and curl
// ---------------------------------------------------------------------------------------------

/// Sluice with listener `traced` (every format, random_sampling 100) and `quiet`
/// (random_sampling 0, w3c), exporting to `otlp`.
fn start(otlp: &str, upstream: SocketAddr) -> (Sluice, SocketAddr, SocketAddr) {
    let traced: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let quiet: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let routes = "routes: [{ match: { prefix: /down }, route: { cluster: down } }, { match: { prefix: / }, route: { cluster: backend } }]";
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
node: {{ id: edge-1, cluster: edge }}
tracing:
  otlp: {otlp}
  flush_interval: 50ms
listeners:
  - name: traced
    address: \"{traced}\"
    filters:
      - http_proxy:
          tracing: {{ propagation: [w3c, b3, b3_single, sw8] }}
          {routes}
  - name: quiet
    address: \"{quiet}\"
    filters:
      - http_proxy:
          tracing: {{ random_sampling: 0 }}
          {routes}
clusters:
  - name: backend
    endpoints: [{{ address: \"{upstream}\" }}]
  - name: down
    endpoints: [{{ address: \"{down}\" }}]
",
        down = refused_addr()
    );
    (Sluice::start(&yaml), traced, quiet)
}

/// `curl` with these headers; the status code.
fn curl(addr: SocketAddr, path: &str, headers: &[&str]) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-A",
        "curl-trace-test",
    ]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(format!("http://{addr}{path}")).output().unwrap();
    String::from_utf8_lossy(&out.stdout).parse().unwrap()
}

fn traceparent(h: &HashMap<String, String>) -> (String, String, String) {
    let v = &h["traceparent"];
    let f: Vec<&str> = v.split('-').collect();
    assert_eq!(f.len(), 4, "{v}");
    assert_eq!(f[0], "00");
    (f[1].to_string(), f[2].to_string(), f[3].to_string())
}

fn attr<'v>(span: &'v Value, key: &str) -> &'v str {
    span["attributes"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no attribute {key} in {span}"))
}

fn python_ready() {
    let ok = Command::new("python3")
        .args(["-c", "import grpc, opentelemetry.proto"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 needs grpcio and opentelemetry-proto (see .ci/run)"
    );
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn w3c_context_is_continued_propagated_and_exported_over_grpc() {
    python_ready();
    let collector = Collector::start("grpc");
    let mut up = Upstream::start();
    let (sluice, traced, _) = start(
        &format!("{{ grpc: \"127.0.0.1:{}\" }}", collector.port),
        up.addr,
    );
    let incoming = format!("traceparent: 00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    assert_eq!(
        curl(
            traced,
            "/w3c?q=1",
            &[&incoming, "tracestate: congo=t61rcWkgMzE"]
        ),
        200
    );
    let h = up.headers("/w3c?q=1");
    let (trace, span, flags) = traceparent(&h);
    assert_eq!(trace, PARENT_TRACE);
    assert_ne!(span, PARENT_SPAN, "the proxy's own span goes upstream");
    assert_eq!(flags, "01");
    assert_eq!(
        h["tracestate"], "congo=t61rcWkgMzE",
        "tracestate passes unchanged"
    );
    // Every configured format carries the same span.
    assert_eq!(h["x-b3-traceid"], PARENT_TRACE);
    assert_eq!(h["x-b3-spanid"], span);
    assert_eq!(h["x-b3-parentspanid"], PARENT_SPAN);
    assert_eq!(h["x-b3-sampled"], "1");
    assert_eq!(h["b3"], format!("{PARENT_TRACE}-{span}-1-{PARENT_SPAN}"));
    assert!(h.contains_key("sw8"));

    let s = collector.span(&sluice, &span);
    assert_eq!(s["transport"], "grpc");
    assert_eq!(s["trace_id"], PARENT_TRACE);
    assert_eq!(s["parent_span_id"], PARENT_SPAN);
    assert_eq!(s["trace_state"], "congo=t61rcWkgMzE");
    assert_eq!(s["name"], format!("{traced}/w3c"));
    assert_eq!(s["kind"], 2, "SERVER");
    assert_eq!(s["status"], 0, "unset: no error");
    assert!(s["end"].as_u64().unwrap() >= s["start"].as_u64().unwrap());
    assert_eq!(
        s["resource"]["service.name"], "edge",
        "the node cluster by default"
    );
    assert_eq!(s["resource"]["service.instance.id"], "edge-1");
    assert_eq!(attr(&s, "component"), "proxy");
    assert_eq!(attr(&s, "node_id"), "edge-1");
    assert_eq!(attr(&s, "http.method"), "GET");
    assert_eq!(attr(&s, "http.url"), format!("http://{traced}/w3c?q=1"));
    assert_eq!(attr(&s, "http.protocol"), "HTTP/1.1");
    assert_eq!(attr(&s, "http.status_code"), "200");
    assert_eq!(attr(&s, "upstream_cluster"), "backend");
    assert_eq!(attr(&s, "upstream_address"), up.addr.to_string());
    assert_eq!(attr(&s, "response_flags"), "-");
    assert_eq!(attr(&s, "response_size"), "2");
    assert_eq!(attr(&s, "request_size"), "0");
    assert_eq!(attr(&s, "user_agent"), "curl-trace-test");
    assert_eq!(attr(&s, "guid:x-request-id"), h["x-request-id"]);
    assert!(attr(&s, "peer.address").starts_with("127.0.0.1:"));
    assert!(s["attributes"].get("error").is_none());

    let stats = http_get(sluice.admin, "/stats?filter=tracing").unwrap().1;
    assert!(
        stats.contains("tracing.opentelemetry.spans_sent"),
        "{stats}"
    );
}

#[test]
fn b3_and_sw8_in_and_out_and_what_is_not_exported() {
    python_ready();
    let collector = Collector::start("grpc");
    let mut up = Upstream::start();
    let (sluice, traced, quiet) = start(
        &format!("{{ grpc: \"127.0.0.1:{}\" }}", collector.port),
        up.addr,
    );

    // B3, one header per field, 64-bit trace id.
    let b3 = [
        "x-b3-traceid: 463ac35c9f6413ad",
        "x-b3-spanid: a2fb4a1d1a96d312",
        "x-b3-sampled: 1",
    ];
    assert_eq!(curl(traced, "/b3", &b3), 200);
    let h = up.headers("/b3");
    assert_eq!(h["x-b3-traceid"], "463ac35c9f6413ad", "64 bits stay 64");
    assert_eq!(h["x-b3-parentspanid"], "a2fb4a1d1a96d312");
    let span = h["x-b3-spanid"].clone();
    let (trace, tp_span, _) = traceparent(&h);
    assert_eq!(trace, "0000000000000000463ac35c9f6413ad");
    assert_eq!(tp_span, span);
    let s = collector.span(&sluice, &span);
    assert_eq!(s["trace_id"], "0000000000000000463ac35c9f6413ad");
    assert_eq!(s["parent_span_id"], "a2fb4a1d1a96d312");

    // B3, single header.
    let single = "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90";
    assert_eq!(curl(traced, "/b3single", &[single]), 200);
    let h = up.headers("/b3single");
    let (trace, span, _) = traceparent(&h);
    assert_eq!(trace, "80f198ee56343ba864fe8b2a57d3eff7");
    assert_eq!(
        h["b3"],
        format!("80f198ee56343ba864fe8b2a57d3eff7-{span}-1-e457b5a2e4d86bd1")
    );
    let s = collector.span(&sluice, &span);
    assert_eq!(s["parent_span_id"], "e457b5a2e4d86bd1");

    // SkyWalking sw8: the caller's free-form trace id goes on; the proxy is the parent.
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let sw_trace = "a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550009";
    let sw8 = format!(
        "sw8: 1-{}-{}-2-{}-{}-{}-{}",
        b64(sw_trace),
        b64("a4ec6fc8ccab4bb4b682064698cc97e6.74.16218381104550008"),
        b64("caller"),
        b64("caller-1@10.0.0.1"),
        b64("/call"),
        b64(&traced.to_string()),
    );
    assert_eq!(curl(traced, "/sw8", &[&sw8]), 200);
    let h = up.headers("/sw8");
    let f: Vec<String> = h["sw8"].split('-').map(str::to_string).collect();
    let text = |s: &str| {
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
    };
    assert_eq!(f.len(), 8, "{:?}", h["sw8"]);
    assert_eq!(f[0], "1");
    assert_eq!(text(&f[1]), sw_trace);
    let (_, span, _) = traceparent(&h);
    assert_eq!(text(&f[2]), span, "the segment is the proxy's span");
    assert_eq!(f[3], "0");
    assert_eq!(text(&f[4]), "edge");
    assert_eq!(text(&f[5]), "edge-1");
    assert_eq!(text(&f[6]), "/sw8");
    assert_eq!(text(&f[7]), up.addr.to_string());
    let s = collector.span(&sluice, &span);
    assert_eq!(s["name"], format!("{traced}/sw8"));

    // A client that decided not to sample: propagated as such, not exported.
    let unsampled = "traceparent: 00-11111111111111111111111111111111-2222222222222222-00";
    assert_eq!(curl(traced, "/unsampled", &[unsampled]), 200);
    let (trace, _, flags) = traceparent(&up.headers("/unsampled"));
    assert_eq!(trace, "11111111111111111111111111111111");
    assert_eq!(flags, "00");
    // random_sampling 0 and no context: a new trace, propagated unsampled, not exported.
    assert_eq!(curl(quiet, "/quiet", &[]), 200);
    let (quiet_trace, _, flags) = traceparent(&up.headers("/quiet"));
    assert_eq!(flags, "00");
    // A malformed context is ignored: a new trace, recorded (random_sampling 100).
    let bad = "traceparent: 00-zzzz-1-01";
    assert_eq!(curl(traced, "/malformed", &[bad]), 200);
    let h = up.headers("/malformed");
    let (bad_trace, bad_span, flags) = traceparent(&h);
    assert_eq!(flags, "01");
    assert_ne!(bad_trace, "0".repeat(32));
    // The markers: sampled requests after the others, on both listeners.
    let marker = format!("traceparent: 00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    assert_eq!(curl(quiet, "/marker", &[&marker]), 200);
    let (_, marker_span, _) = traceparent(&up.headers("/marker"));
    let s = collector.span(&sluice, &marker_span);
    assert_eq!(
        s["parent_span_id"], PARENT_SPAN,
        "a client's decision beats random_sampling 0"
    );
    let s = collector.span(&sluice, &bad_span);
    assert_eq!(s["trace_id"], bad_trace);
    assert_eq!(s["parent_span_id"], "", "a new trace has no parent");
    let spans = collector.spans();
    for t in ["11111111111111111111111111111111", quiet_trace.as_str()] {
        assert!(
            !spans.iter().any(|s| s["trace_id"] == t),
            "trace {t} was exported: {spans:?}"
        );
    }
}

#[test]
fn spans_go_over_otlp_http_and_errors_are_marked() {
    python_ready();
    let collector = Collector::start("http");
    let mut up = Upstream::start();
    let (sluice, traced, _) = start(
        &format!(
            "{{ http: \"http://127.0.0.1:{}/v1/traces\" }}",
            collector.port
        ),
        up.addr,
    );
    let incoming = format!("traceparent: 00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    assert_eq!(curl(traced, "/over-http", &[&incoming]), 200);
    let (_, span, _) = traceparent(&up.headers("/over-http"));
    let s = collector.span(&sluice, &span);
    assert_eq!(s["transport"], "http");
    assert_eq!(s["trace_id"], PARENT_TRACE);
    assert_eq!(s["parent_span_id"], PARENT_SPAN);
    assert_eq!(attr(&s, "http.status_code"), "200");

    // An upstream that refuses connections: a 503 whose span is an error.
    assert_eq!(curl(traced, "/down", &[&incoming]), 503);
    let name = format!("{traced}/down");
    let s = sluice.poll("the /down span", || {
        collector
            .spans()
            .into_iter()
            .find(|s| s["name"] == name.as_str())
    });
    assert_eq!(s["status"], 2, "ERROR");
    assert_eq!(attr(&s, "error"), "true");
    assert_eq!(attr(&s, "http.status_code"), "503");
    assert!(attr(&s, "response_flags").contains("UF"), "{s}");
    assert_eq!(attr(&s, "upstream_cluster"), "down");
}

#[test]
fn tracing_on_a_listener_needs_the_exporter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfg.yaml"),
        "listeners:
  - name: l
    address: \"127.0.0.1:1\"
    filters:
      - http_proxy:
          tracing: { random_sampling: 1 }
          routes: [{ match: { prefix: / }, direct_response: { status: 200 } }]
",
    )
    .unwrap();
    let (code, _, err) = sluice_cmd(&["check", "-c", "cfg.yaml"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cfg.yaml:6: listeners[0].filters[0].http_proxy.tracing: tracing is on here, but there is no top-level tracing"),
        "{err}"
    );
    // rpc_proxy's block, the same.
    std::fs::write(
        dir.path().join("rpc.yaml"),
        "listeners:
  - name: r
    address: \"127.0.0.1:1\"
    filters:
      - rpc_proxy:
          protocol: bolt
          tracing: { propagation: [w3c, zipkin] }
          route_config: { virtual_hosts: [{ name: a, domains: [\"*\"], routes: [] }] }
",
    )
    .unwrap();
    let (code, _, err) = sluice_cmd(&["check", "-c", "rpc.yaml"], dir.path());
    assert_eq!(code, 1, "{err}");
    for want in [
        "rpc.yaml:7: listeners[0].filters[0].rpc_proxy.tracing: tracing is on here, but there is no top-level tracing",
        "listeners[0].filters[0].rpc_proxy.tracing.propagation[1]: unknown propagation format \"zipkin\"",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
}

// ---------------------------------------------------------------------------------------------
// RPC: Bolt calls through an rpc_proxy with `tracing`
// ---------------------------------------------------------------------------------------------

/// An upstream that decodes each Bolt request with Sluice's codec, reports its headers and
/// hangs up (so the call fails): shows what went upstream, which the echo server cannot.
fn bolt_capture() -> (SocketAddr, mpsc::Receiver<HashMap<String, String>>) {
    use sluice_xprotocol::{bolt::Bolt, FrameKind, Protocol};
    let (tx, rx) = mpsc::channel();
    let addr = spawn_server(move |mut conn| {
        let mut buf = bytes::BytesMut::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            while let Ok(Some(frame)) = Bolt.decode(&mut buf, 1 << 20) {
                if frame.kind == FrameKind::Request {
                    let headers = frame
                        .headers()
                        .iter()
                        .map(|(k, v)| {
                            (
                                String::from_utf8_lossy(k).into_owned(),
                                String::from_utf8_lossy(v).into_owned(),
                            )
                        })
                        .collect();
                    let _ = tx.send(headers);
                    return;
                }
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    });
    (addr, rx)
}

#[test]
fn bolt_calls_and_http_on_an_auto_listener_are_traced() {
    use common::bolt::{BoltClient, BoltServer};
    python_ready();
    let collector = Collector::start("http");
    let echo = BoltServer::start("traced");
    let (capture, seen) = bolt_capture();
    let mut web = Upstream::start();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
node: {{ id: edge-1, cluster: edge }}
tracing:
  otlp: {{ http: \"http://127.0.0.1:{port}/v1/traces\" }}
  flush_interval: 50ms
listeners:
  - name: rpc
    address: \"{addr}\"
    filters:
      - rpc_proxy:
          protocol: auto
          tracing: {{ propagation: [w3c, b3] }}
          route_config:
            virtual_hosts:
              - name: all
                domains: [\"*\"]
                routes:
                  - {{ match: {{ prefix: /com.example.Capture }}, route: {{ cluster: capture }} }}
                  - {{ match: {{ prefix: /http }}, route: {{ cluster: web }} }}
                  - {{ match: {{ prefix: / }}, route: {{ cluster: echo }} }}
clusters:
  - name: echo
    endpoints: [{{ address: \"{echo}\" }}]
  - name: capture
    endpoints: [{{ address: \"{capture}\" }}]
  - name: web
    endpoints: [{{ address: \"{web}\" }}]
",
        web = web.addr,
        port = collector.port,
        echo = echo.addr,
    );
    let sluice = Sluice::start(&yaml);
    let incoming = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");

    // A call answered by the real echo server: its frame was rebuilt with the context, and
    // the call still succeeds; the span continues the client's trace.
    let run = BoltClient::new(addr)
        .header("traceparent", &incoming)
        .header("tracestate", "congo=t61rcWkgMzE")
        .count(1)
        .run();
    assert_eq!((run.ok, run.errors), (1, 0), "{}", run.raw);
    let s = sluice.poll("the echo call's span", || {
        collector
            .spans()
            .into_iter()
            .find(|s| s["parent_span_id"] == PARENT_SPAN && attr(s, "upstream_cluster") == "echo")
    });
    assert_eq!(s["trace_id"], PARENT_TRACE);
    assert_eq!(s["trace_state"], "congo=t61rcWkgMzE");
    assert!(
        s["name"].as_str().unwrap().starts_with("/com.example.Echo"),
        "{s}"
    );
    assert_eq!(s["kind"], 2, "SERVER");
    assert_eq!(s["status"], 0, "unset: no error");
    assert_eq!(attr(&s, "rpc.system"), "bolt");
    assert_eq!(attr(&s, "rpc.method"), "echo");
    assert!(
        attr(&s, "rpc.service").starts_with("com.example.Echo"),
        "{s}"
    );
    assert_eq!(attr(&s, "rpc.status_code"), "0");
    assert_eq!(attr(&s, "upstream_address"), echo.addr.to_string());
    assert_eq!(attr(&s, "node_id"), "edge-1");

    // What goes upstream: the proxy's span, in every configured format, as the child of the
    // client's; the call fails (the capture hangs up) and its span says so.
    let run = BoltClient::new(addr)
        .service("com.example.Capture")
        .header("traceparent", &incoming)
        .header("tracestate", "congo=t61rcWkgMzE")
        .count(1)
        .run();
    assert_eq!(run.ok, 0, "{}", run.raw);
    let h = seen
        .recv_timeout(DEADLINE)
        .expect("the capture got the call");
    let (trace, span, flags) = traceparent(&h);
    assert_eq!(trace, PARENT_TRACE);
    assert_ne!(span, PARENT_SPAN, "the proxy's own span goes upstream");
    assert_eq!(flags, "01");
    assert_eq!(h["tracestate"], "congo=t61rcWkgMzE");
    assert_eq!(h["x-b3-traceid"], PARENT_TRACE);
    assert_eq!(h["x-b3-spanid"], span);
    assert_eq!(h["x-b3-parentspanid"], PARENT_SPAN);
    assert_eq!(h["x-b3-sampled"], "1");
    let s = collector.span(&sluice, &span);
    assert_eq!(s["parent_span_id"], PARENT_SPAN);
    assert_eq!(s["status"], 2, "ERROR");
    assert_eq!(attr(&s, "error"), "true");
    assert_eq!(attr(&s, "upstream_cluster"), "capture");
    assert_ne!(attr(&s, "response_flags"), "-", "{s}");

    // The listener is `auto`: HTTP on the same port is traced by the same block.
    let incoming = format!("traceparent: 00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    assert_eq!(curl(addr, "/http/x", &[&incoming]), 200);
    let (trace, span, _) = traceparent(&web.headers("/http/x"));
    assert_eq!(trace, PARENT_TRACE);
    let s = collector.span(&sluice, &span);
    assert_eq!(s["parent_span_id"], PARENT_SPAN);
    assert_eq!(attr(&s, "http.method"), "GET");
    assert_eq!(attr(&s, "upstream_cluster"), "web");
}

#[test]
fn dubbo_calls_carry_the_context_in_attachments() {
    use common::dubbo::{Consumer, Provider};
    python_ready();
    let collector = Collector::start("http");
    let provider = Provider::start("traced");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let sluice = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
node: {{ id: edge-1, cluster: edge }}
tracing:
  otlp: {{ http: \"http://127.0.0.1:{port}/v1/traces\" }}
  flush_interval: 50ms
listeners:
  - name: rpc
    address: \"{addr}\"
    filters:
      - rpc_proxy:
          protocol: dubbo
          tracing: {{ propagation: [w3c] }}
          route_config:
            virtual_hosts:
              - name: all
                domains: [\"*\"]
                routes: [{{ match: {{ prefix: / }}, route: {{ cluster: p }} }}]
clusters:
  - name: p
    endpoints: [{{ address: \"{provider}\" }}]
",
        port = collector.port,
        provider = provider.addr,
    ));
    let incoming = format!("00-{PARENT_TRACE}-{PARENT_SPAN}-01");
    let steps = Consumer::new(addr)
        // 0: the provider answers the `traceparent` attachment it received: the proxy's span,
        // not the one sent (so the consumer counts it as a mismatch, and shows it).
        .method("attachment")
        .arg("traceparent")
        .attachment("traceparent", &incoming)
        .count(1)
        // 1: an echo call with the context: the rebuilt frame is one Dubbo accepts.
        .then()
        .attachment("traceparent", &incoming)
        .count(1)
        .run_steps();
    assert_eq!(
        (steps[0].ok, steps[0].mismatches),
        (0, 1),
        "{}",
        steps[0].raw
    );
    let got = steps[0].mismatch_examples[0]
        .strip_prefix("call 0 got ")
        .unwrap_or_else(|| panic!("{}", steps[0].raw))
        .to_string();
    let (trace, span, flags) = traceparent(&HashMap::from([("traceparent".to_string(), got)]));
    assert_eq!(trace, PARENT_TRACE);
    assert_ne!(span, PARENT_SPAN);
    assert_eq!(flags, "01");
    assert_eq!((steps[1].ok, steps[1].errors), (1, 0), "{}", steps[1].raw);

    let s = collector.span(&sluice, &span);
    assert_eq!(s["trace_id"], PARENT_TRACE);
    assert_eq!(s["parent_span_id"], PARENT_SPAN);
    assert_eq!(s["status"], 0, "{s}");
    assert_eq!(attr(&s, "rpc.system"), "dubbo");
    assert_eq!(attr(&s, "rpc.method"), "attachment");
    assert_eq!(attr(&s, "upstream_cluster"), "p");
    assert_eq!(s["resource"]["service.name"], "edge");
}

#[test]
fn queued_spans_and_access_log_lines_are_written_at_exit() {
    python_ready();
    let collector = Collector::start("http");
    let mut up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    // Nothing would be exported or written for an hour: only the exit flushes them.
    let mut sluice = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
tracing:
  otlp: {{ http: \"http://127.0.0.1:{port}/v1/traces\" }}
  flush_interval: 1h
listeners:
  - name: web
    address: \"{addr}\"
    access_log: [{{ path: {log}, format: \"%REQ(:PATH)% %RESPONSE_CODE%\\n\" }}]
    filters:
      - http_proxy:
          tracing: {{}}
          routes: [{{ match: {{ prefix: / }}, route: {{ cluster: backend }} }}]
clusters:
  - name: backend
    endpoints: [{{ address: \"{backend}\" }}]
",
        port = collector.port,
        log = log.display(),
        backend = up.addr,
    ));
    assert_eq!(curl(addr, "/last", &[]), 200);
    let (_, span, _) = traceparent(&up.headers("/last"));
    sluice.signal("TERM");
    assert!(sluice.wait_exit().success());
    assert!(
        collector
            .spans()
            .iter()
            .any(|s| s["span_id"] == span.as_str()),
        "the span queued at exit was not exported: {:?}",
        collector.spans()
    );
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "/last 200\n");
}
