//! Sluice's own HTTP/1.1 upstream client, end to end: curl in front, scripted upstreams behind
//! that send what real servers send (chunked bodies with trailers, close-delimited bodies,
//! interim responses) and what broken or hostile ones send (ambiguous framing, extra bytes,
//! truncated bodies, keep-alive connections closed under a request).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use common::curl::{curl, curl_raw, Reply};
use common::http1::{read_body, read_head, scripted, Headers};
use common::*;

/// Sluice with one HTTP/1 listener routing everything to one HTTP/1 cluster at `up`.
fn start(up: SocketAddr) -> (Sluice, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 1
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: up }} }}] }}
clusters:
  - name: up
    protocol: http1
    connect_timeout: 2s
    endpoints: [{{ address: \"{up}\" }}]
"
    );
    (Sluice::start(&yaml), addr)
}

fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// Runs curl without requiring success: (exit code, the parsed reply if any).
fn curl_status(args: &[&str]) -> (i32, Option<Reply>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        common::curl::parse_curl_output(&out.stdout),
    )
}

#[test]
fn chunked_close_delimited_interim_and_bodiless_responses_pass_through() {
    let (up, accepted) = scripted(|line, _, _| {
        let answer: &[u8] = match line.split(' ').nth(1).unwrap_or("") {
            "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: t\r\n\r\n",
            "/interim" => b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
            "/head" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            "/nocontent" => b"HTTP/1.1 204 No Content\r\n\r\n",
            "/notmodified" => b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        };
        Some(answer.to_vec())
    });
    let (_s, addr) = start(up);

    let r = curl(&[&url(addr, "/chunked")]);
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"), "{r:?}");
    let r = curl(&[&url(addr, "/interim")]);
    assert_eq!((r.status, r.text().as_str()), (200, "final"), "{r:?}");
    let r = curl(&["-I", &url(addr, "/head")]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("content-length"), Some("5"), "{r:?}");
    let r = curl(&[&url(addr, "/nocontent")]);
    assert_eq!((r.status, r.body.len()), (204, 0), "{r:?}");
    let r = curl(&[&url(addr, "/notmodified")]);
    assert_eq!((r.status, r.body.len()), (304, 0), "{r:?}");
    // Every response so far was delimited: one upstream connection carried them all.
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[test]
fn a_close_delimited_body_ends_with_the_connection() {
    let (up, accepted) = {
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let addr = spawn_server(move |mut conn| {
            count.fetch_add(1, Ordering::SeqCst);
            let mut r = BufReader::new(conn.try_clone().unwrap());
            if let Ok(Some(_)) = read_head(&mut r) {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\n\r\nuntil the end");
            }
            // Dropping the stream closes it: that ends the body.
        });
        (addr, accepted)
    };
    let (_s, addr) = start(up);
    for _ in 0..2 {
        let r = curl(&[&url(addr, "/")]);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "until the end"),
            "{r:?}"
        );
    }
    // Such a connection cannot carry another request.
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[test]
fn a_kept_alive_connection_closed_under_a_request_costs_a_get_nothing_and_a_post_a_503() {
    // Each connection answers its first request, then reads the next one and closes without
    // a word: what a server that times out an idle connection just as a request arrives does.
    let posts = Arc::new(AtomicUsize::new(0));
    let seen = posts.clone();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let up = spawn_server(move |conn| {
        count.fetch_add(1, Ordering::SeqCst);
        let mut r = BufReader::new(conn);
        let mut answered = false;
        while let Ok(Some((line, headers))) = read_head(&mut r) {
            let _ = read_body(&mut r, &headers);
            if line.starts_with("POST") {
                seen.fetch_add(1, Ordering::SeqCst);
            }
            if answered {
                return;
            }
            answered = true;
            let _ = r
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let (_s, addr) = start(up);
    // First GET: connection 1. Second GET: sent on connection 1, which closes; it goes out
    // again on connection 2, transparently.
    for i in 0..2 {
        let r = curl(&[&url(addr, &format!("/get/{i}"))]);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "GET {i}: {r:?}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    // A POST with a body on connection 2 meets the same fate; it may have been acted on, so it
    // is not sent again.
    let (code, r) = curl_status(&["--data-binary", "payload", &url(addr, "/post")]);
    assert_eq!(code, 0);
    let r = r.unwrap();
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text().contains("cluster \"up\""), "{}", r.text());
    assert_eq!(posts.load(Ordering::SeqCst), 1, "the POST was sent twice");
}

#[test]
fn ambiguous_or_broken_responses_are_502_and_never_reused() {
    let (up, accepted) = scripted(|line, _, _| {
        let answer: &[u8] = match line.split(' ').nth(1).unwrap_or("") {
            "/two-lengths" => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
            }
            "/gzip-chunked" => {
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
            }
            "/bad-field" => b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n",
            "/huge-head" => {
                return Some(
                    format!("HTTP/1.1 200 OK\r\nx-big: {}\r\n\r\n", "a".repeat(70_000))
                        .into_bytes(),
                )
            }
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        };
        Some(answer.to_vec())
    });
    let (_s, addr) = start(up);
    for path in ["/two-lengths", "/gzip-chunked", "/bad-field", "/huge-head"] {
        let r = curl(&[&url(addr, path)]);
        assert_eq!(r.status, 502, "{path}: {r:?}");
        assert!(
            r.text().contains("upstream protocol error") && r.text().contains("cluster \"up\""),
            "{path}: {}",
            r.text()
        );
        // The listener and the cluster keep working.
        let ok = curl(&[&url(addr, "/fine")]);
        assert_eq!((ok.status, ok.text().as_str()), (200, "ok"), "after {path}");
    }
    // Each broken response took its connection with it: the good request after each went out
    // on a fresh connection, which the next broken response took in turn.
    assert_eq!(accepted.load(Ordering::SeqCst), 5);
}

#[test]
fn framing_the_upstream_overrides_or_overruns_costs_the_connection() {
    let (up, accepted) = scripted(|line, _, _| {
        let answer: &[u8] = match line.split(' ').nth(1).unwrap_or("") {
            // Both framing headers: read as chunked, then the connection is not trusted again.
            "/both" => b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
            // Bytes past the declared length: a desynchronised connection.
            "/extra" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsmuggl",
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext",
        };
        Some(answer.to_vec())
    });
    let (_s, addr) = start(up);
    for (i, path) in ["/both", "/extra"].into_iter().enumerate() {
        let r = curl(&[&url(addr, path)]);
        assert_eq!((r.status, r.text().as_str()), (200, "ok"), "{path}: {r:?}");
        let r = curl(&[&url(addr, "/next")]);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "next"),
            "after {path}: {r:?}"
        );
        assert_eq!(accepted.load(Ordering::SeqCst), i + 2, "after {path}");
    }
}

#[test]
fn a_truncated_response_body_fails_the_client_transfer() {
    let up = spawn_server(|mut conn| {
        let mut r = BufReader::new(conn.try_clone().unwrap());
        if let Ok(Some(_)) = read_head(&mut r) {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf!");
        }
    });
    let (_s, addr) = start(up);
    let (code, reply) = curl_status(&[&url(addr, "/")]);
    // curl: 18 "transfer closed with outstanding read data remaining", or 52 "empty reply"
    // when the connection is cut before the head went out; never a complete response.
    assert!(code == 18 || code == 52, "curl exit {code}: {reply:?}");
}

#[test]
fn request_bodies_reach_the_upstream_with_their_framing() {
    let (tx, rx) = mpsc::channel::<(Headers, Vec<u8>)>();
    let (up, _) = scripted(move |_, headers, body| {
        let _ = tx.send((headers.clone(), body.to_vec()));
        Some(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
    });
    let (_s, addr) = start(up);
    let target = url(addr, "/upload");
    curl_raw(&["--data-binary", "known length", &target]);
    curl_raw(&[
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        "streamed",
        &target,
    ]);
    curl_raw(&["-X", "POST", &target]);
    let seen: Vec<_> = rx.try_iter().collect();
    let framing = |h: &Headers| {
        (
            common::http1::get(h, "content-length").map(str::to_string),
            common::http1::get(h, "transfer-encoding").map(str::to_string),
        )
    };
    assert_eq!(seen.len(), 3);
    assert_eq!(framing(&seen[0].0), (Some("12".into()), None));
    assert_eq!(seen[0].1, b"known length");
    assert_eq!(framing(&seen[1].0), (None, Some("chunked".into())));
    assert_eq!(seen[1].1, b"streamed");
    // A bodiless POST still says so.
    assert_eq!(framing(&seen[2].0), (Some("0".into()), None));
}

#[test]
fn bytes_sent_right_after_a_101_reach_the_client() {
    // The upstream switches protocols and speaks first, in the same write as its 101.
    let up = spawn_server(|mut conn| {
        let mut r = BufReader::new(conn.try_clone().unwrap());
        if let Ok(Some(_)) = read_head(&mut r) {
            let _ = conn.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: chat\r\nConnection: upgrade\r\n\r\nhello from upstream\n",
            );
            // Then it echoes.
            let mut buf = [0u8; 64];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    });
    let (_s, addr) = start(up);
    let mut c = connect(addr);
    c.write_all(b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: chat\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let (status, _) = read_head(&mut r).unwrap().unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert_eq!(line, "hello from upstream\n");
    c.write_all(b"ping\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut r, &mut line).unwrap();
    assert_eq!(line, "ping\n");
}

#[test]
fn the_upstream_gets_the_clients_host_or_the_absolute_targets_authority() {
    // The upstream answers with the `Host` it received (and how many it received).
    let (up, _) = scripted(|_, headers: &Headers, _| {
        let hosts: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == "host")
            .map(|(_, v)| v.as_str())
            .collect();
        let body = hosts.join(",");
        Some(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    });
    let (_s, addr) = start(up);
    let r = curl(&[&url(addr, "/plain")]);
    assert_eq!((r.status, r.text()), (200, addr.to_string()), "{r:?}");
    let r = curl(&["-H", "Host: api.example", &url(addr, "/named")]);
    assert_eq!((r.status, r.text().as_str()), (200, "api.example"), "{r:?}");
    // RFC 9112 section 3.2.2: with an absolute target, its authority replaces `Host`.
    let r = curl(&[
        "--request-target",
        "http://absolute.example/abs",
        "-H",
        "Host: other.example",
        &url(addr, "/"),
    ]);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "absolute.example"),
        "{r:?}"
    );
}
