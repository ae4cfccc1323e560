//! Sluice's own HTTP/1.1 server (the client side of the proxy), end to end with raw sockets:
//! HTTP/1.0 clients, request bodies the proxy never reads, trailers, `Expect: 100-continue`
//! answered by a local reply, and a client that leaves while its request is upstream.
//! (Malformed and oversized requests are in `http_bad_input.rs`.)
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::mpsc;

use common::http1::{get, read_body, read_head, scripted, Headers};
use common::*;

/// Sluice with one listener: `/local` answered by Sluice itself, everything else sent to `up`.
fn start(up: SocketAddr) -> (Sluice, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 1
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy:
          routes:
            - {{ match: {{ path: /local }}, direct_response: {{ status: 200, body: ok }} }}
            - {{ match: {{ prefix: / }}, route: {{ cluster: up, timeout: 15s }} }}
clusters:
  - name: up
    protocol: http1
    connect_timeout: 2s
    endpoints: [{{ address: \"{up}\" }}]
"
    );
    (Sluice::start(&yaml), addr)
}

/// An upstream that answers `/chunked` with a chunked body and a trailer, and anything else
/// with the request line as a sized body.
fn upstream() -> SocketAddr {
    scripted(|line, _, _| {
        let path = line.split(' ').nth(1).unwrap_or("");
        Some(match path {
            "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n".to_vec(),
            _ => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{line}", line.len()).into_bytes(),
        })
    })
    .0
}

/// Reads one response (head and body) off `r`.
fn response(r: &mut BufReader<std::net::TcpStream>) -> (String, Headers, Vec<u8>) {
    let (line, headers) = read_head(r).unwrap().expect("a response");
    let body = read_body(r, &headers).unwrap();
    (line, headers, body)
}

/// Asserts the connection behind `r` is closed by the proxy (nothing more comes).
fn assert_eof(r: &mut BufReader<std::net::TcpStream>) {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
}

#[test]
fn http10_clients_get_the_persistence_they_ask_for() {
    let (_s, addr) = start(upstream());

    // No keep-alive asked for: the answer says close, and the connection closes.
    let mut s = connect(addr);
    s.write_all(b"GET /a HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut r = BufReader::new(s);
    let (line, headers, body) = response(&mut r);
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    assert_eq!(get(&headers, "connection"), Some("close"));
    assert!(httpdate_ok(get(&headers, "date")), "{headers:?}");
    assert_eq!(body, b"GET /a HTTP/1.1");
    assert_eof(&mut r);

    // Keep-alive asked for: granted and said so, and a second request follows.
    let mut s = connect(addr);
    let ask = b"GET /local HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n";
    s.write_all(ask).unwrap();
    let mut r = BufReader::new(s);
    let (_, headers, body) = response(&mut r);
    assert_eq!(get(&headers, "connection"), Some("keep-alive"));
    assert_eq!(body, b"ok");
    r.get_mut().write_all(ask).unwrap();
    let (_, _, body) = response(&mut r);
    assert_eq!(body, b"ok");

    // A body of unknown length cannot be chunked for HTTP/1.0: the close delimits it.
    let mut s = connect(addr);
    s.write_all(b"GET /chunked HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(!head.contains("transfer-encoding"), "{text:?}");
    assert!(head.contains("connection: close"), "{text:?}");
    assert_eq!(body, "hello world", "{text:?}");
}

fn httpdate_ok(v: Option<&str>) -> bool {
    v.is_some_and(|d| d.ends_with(" GMT") && d.len() == 29)
}

#[test]
fn a_request_body_the_proxy_did_not_read_is_skipped_and_the_connection_kept() {
    let (_s, addr) = start(upstream());
    for first in [
        &b"POST /local HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"[..],
        b"POST /local HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut s = connect(addr);
        let mut wire = first.to_vec();
        wire.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
        s.write_all(&wire).unwrap();
        let mut r = BufReader::new(s);
        let (_, headers, body) = response(&mut r);
        assert_eq!(body, b"ok");
        assert_eq!(get(&headers, "connection"), None, "{headers:?}");
        let (line, _, body) = response(&mut r);
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
        assert_eq!(body, b"GET /after HTTP/1.1");
    }
}

#[test]
fn trailers_go_only_to_clients_that_accept_them() {
    let (_s, addr) = start(upstream());
    let read_all = |request: &[u8]| {
        let mut s = connect(addr);
        s.write_all(request).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        String::from_utf8(raw).unwrap()
    };
    let with =
        read_all(b"GET /chunked HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n");
    assert!(with.ends_with("\r\n0\r\nx-trailer: t\r\n\r\n"), "{with:?}");
    let without = read_all(b"GET /chunked HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        without.ends_with("\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
        "{without:?}"
    );
}

#[test]
fn a_local_reply_to_an_expect_continue_request_closes_the_connection() {
    // The client may or may not send the body it was never asked for, so where the next
    // request would start is unknown: the answer closes the connection.
    let (_s, addr) = start(upstream());
    let mut s = connect(addr);
    s.write_all(
        b"POST /local HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let (line, headers, body) = response(&mut r);
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    assert_eq!(body, b"ok");
    assert_eq!(get(&headers, "connection"), Some("close"));
}

#[test]
fn a_client_that_leaves_cancels_its_request_upstream() {
    // The upstream reads the request and never answers; it reports when the proxy closes
    // its connection.
    let (tx, rx) = mpsc::channel::<&'static str>();
    let up = spawn_server(move |conn| {
        let tx = tx.clone();
        let mut r = BufReader::new(conn);
        if read_head(&mut r).ok().flatten().is_none() {
            return;
        }
        let _ = tx.send("request");
        let mut rest = [0u8; 64];
        if let Ok(0) = r.get_mut().read(&mut rest) {
            let _ = tx.send("closed");
        }
    });
    let (_s, addr) = start(up);
    let mut s = connect(addr);
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(rx.recv_timeout(DEADLINE), Ok("request"));
    s.shutdown(Shutdown::Both).unwrap();
    drop(s);
    // Without the cancellation the upstream would wait for the route's 15s timeout.
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(10)),
        Ok("closed")
    );
}
