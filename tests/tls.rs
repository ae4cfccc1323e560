//! Downstream TLS, end to end: the real binary with certificates made at run time by
//! `examples/certs/gen.sh`, driven by curl and `openssl s_client`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use common::curl::curl;
use common::nginx::Nginx;
use common::*;

fn certs() -> &'static Path {
    common::certs::dir()
}

fn cert(name: &str) -> String {
    common::certs::file(name)
}

fn local(port: u16) -> SocketAddr {
    format!("127.0.0.1:{port}").parse().unwrap()
}

/// A `direct_response` http_proxy answering `body` everywhere.
fn answer(body: &str) -> String {
    format!(
        "{{ http_proxy: {{ routes: [{{ match: {{ prefix: / }}, direct_response: {{ status: 200, body: \"{body}\" }} }}] }} }}"
    )
}

/// Starts sluice with one listener in short form: `tls` (a flow mapping) and `filter`.
fn start_tls(tls: &str, filter: &str, rest: &str) -> (Sluice, SocketAddr) {
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
listeners:
  - name: edge
    address: \"{addr}\"
    tls: {tls}
    filters: [{filter}]
{rest}"
    );
    (Sluice::start(&yaml), addr)
}

fn server_cert() -> String {
    format!(
        "{{ cert_chain: \"{}\", private_key: \"{}\" }}",
        cert("server.pem"),
        cert("server.key")
    )
}

/// curl over HTTPS to `host` (resolved to `addr`) trusting the test CA; `extra` adds options.
fn https(addr: SocketAddr, host: &str, extra: &[&str]) -> common::curl::Reply {
    let ca = cert("ca.pem");
    let resolve = format!("{host}:{}:127.0.0.1", addr.port());
    let url = format!("https://{host}:{}/", addr.port());
    let mut args = vec!["--cacert", ca.as_str(), "--resolve", resolve.as_str()];
    args.extend_from_slice(extra);
    args.push(url.as_str());
    curl(&args)
}

/// Like [`https`] but for requests expected to fail: curl's exit code and stderr.
fn https_fails(addr: SocketAddr, host: &str, extra: &[&str]) -> String {
    let ca = cert("ca.pem");
    let resolve = format!("{host}:{}:127.0.0.1", addr.port());
    let url = format!("https://{host}:{}/", addr.port());
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
        ])
        .args(extra)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "curl {extra:?} should have failed, got {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `openssl s_client -brief` against `addr`; returns what it printed (stdout and stderr).
fn s_client(addr: SocketAddr, args: &[&str]) -> String {
    let mut all = vec!["-brief"];
    all.extend_from_slice(args);
    s_client_full(addr, &all)
}

/// `openssl s_client` with its full report (which names the ALPN protocol; `-brief` does not).
fn s_client_full(addr: SocketAddr, args: &[&str]) -> String {
    let connect = addr.to_string();
    let ca = cert("ca.pem");
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-CAfile", &ca])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The `listener.<addr>.` prefix of a listener's counters.
fn listener_stat(addr: SocketAddr, name: &str) -> String {
    format!("listener.127.0.0.1_{}.{name}", addr.port())
}

/// A client certificate from the test CA that expired in 2020 (`openssl ca` can set dates
/// in the past; `x509 -req` cannot).
fn expired_client() -> (String, String) {
    static MADE: OnceLock<()> = OnceLock::new();
    MADE.get_or_init(|| {
        let dir = certs();
        std::fs::write(
            dir.join("expired.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndatabase = expired.db\nnew_certs_dir = .\nserial = expired.srl\npolicy = p\ndefault_md = sha256\ncopy_extensions = copy\n[p]\ncommonName = supplied\n",
        )
        .unwrap();
        std::fs::write(dir.join("expired.db"), "").unwrap();
        std::fs::write(dir.join("expired.srl"), "01\n").unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
            "/CN=expired", "-keyout", "expired.key", "-out", "expired.csr", "-addext",
            "subjectAltName=URI:spiffe://cluster.local/ns/default/sa/expired", "-addext",
            "extendedKeyUsage=clientAuth",
        ]);
        run(&[
            "ca", "-batch", "-config", "expired.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
            "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-in",
            "expired.csr", "-out", "expired.pem", "-notext",
        ]);
    });
    (cert("expired.pem"), cert("expired.key"))
}

#[test]
fn terminates_tls_and_proxies_http1_and_h2_by_alpn() {
    let nginx =
        Nginx::serving(r#"location / { return 200 "from nginx, $http_x_forwarded_proto"; }"#);
    let (_s, addr) = start_tls(
        &format!("{{ certificates: [{}], alpn: [h2, http/1.1] }}", server_cert()),
        "{ http_proxy: { route_config: main } }",
        &format!(
            "route_configs:
  - name: main
    virtual_hosts: [{{ name: all, domains: [\"*\"], routes: [{{ match: {{ prefix: / }}, route: {{ cluster: web }} }}] }}]
clusters:
  - name: web
    endpoints: [{{ address: \"{}\" }}]
",
            nginx.addr
        ),
    );
    // curl offers h2 and http/1.1 by ALPN; h2 wins.
    let r = https(addr, "a.example.com", &[]);
    assert_eq!((r.status, r.version.as_str()), (200, "HTTP/2"));
    assert_eq!(r.text(), "from nginx, https");
    let r = https(addr, "localhost", &["--http1.1"]);
    assert_eq!((r.status, r.version.as_str()), (200, "HTTP/1.1"));
    assert_eq!(r.text(), "from nginx, https");
    let out = s_client_full(addr, &["-servername", "a.example.com", "-alpn", "h2"]);
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    let out = s_client_full(addr, &["-servername", "a.example.com", "-alpn", "http/1.1"]);
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
}

#[test]
fn without_alpn_the_codec_is_detected() {
    let (_s, addr) = start_tls(
        &format!("{{ certificates: [{}] }}", server_cert()),
        &answer("no alpn"),
        "",
    );
    let r = https(addr, "a.example.com", &[]);
    assert_eq!((r.status, r.version.as_str()), (200, "HTTP/1.1"));
    assert_eq!(r.text(), "no alpn");
}

#[test]
fn sni_selects_the_certificate() {
    // b.pem covers b.example.com only and comes first, so it is also the default.
    let (_s, addr) = start_tls(
        &format!(
            "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}, {}] }}",
            cert("b.pem"),
            cert("b.key"),
            server_cert()
        ),
        &answer("sni"),
        "",
    );
    let out = s_client(addr, &["-servername", "b.example.com"]);
    assert!(
        out.contains("Peer certificate: CN = b.example.com"),
        "{out}"
    );
    assert!(out.contains("Verification: OK"), "{out}");
    let out = s_client(addr, &["-servername", "a.example.com"]);
    assert!(
        out.contains("Peer certificate: CN = a.example.com"),
        "{out}"
    );
    let out = s_client(addr, &["-noservername"]);
    assert!(
        out.contains("Peer certificate: CN = b.example.com"),
        "{out}"
    );
    // And real clients that check the name succeed on both.
    assert_eq!(https(addr, "a.example.com", &[]).text(), "sni");
    assert_eq!(https(addr, "b.example.com", &[]).text(), "sni");
    assert_eq!(https(addr, "localhost", &[]).text(), "sni");
}

#[test]
fn tls_1_2_and_1_3_and_min_version() {
    let (_s, addr) = start_tls(
        &format!("{{ certificates: [{}] }}", server_cert()),
        &answer("v"),
        "",
    );
    let out = s_client(addr, &["-servername", "a.example.com", "-tls1_2"]);
    assert!(out.contains("Protocol version: TLSv1.2"), "{out}");
    let out = s_client(addr, &["-servername", "a.example.com", "-tls1_3"]);
    assert!(out.contains("Protocol version: TLSv1.3"), "{out}");

    let (_s13, addr13) = start_tls(
        &format!(
            "{{ certificates: [{}], min_version: TLS1_3 }}",
            server_cert()
        ),
        &answer("v13"),
        "",
    );
    let out = s_client(addr13, &["-servername", "a.example.com", "-tls1_3"]);
    assert!(out.contains("Protocol version: TLSv1.3"), "{out}");
    https_fails(addr13, "a.example.com", &["--tls-max", "1.2"]);
    assert_eq!(https(addr13, "a.example.com", &["--tlsv1.3"]).text(), "v13");
}

#[test]
fn cipher_suites_limit_what_is_negotiated() {
    let (_s, addr) = start_tls(
        &format!(
            "{{ certificates: [{}], cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS13_CHACHA20_POLY1305_SHA256] }}",
            server_cert()
        ),
        &answer("c"),
        "",
    );
    let out = s_client(addr, &["-servername", "a.example.com", "-tls1_2"]);
    assert!(out.contains("ECDHE-ECDSA-CHACHA20-POLY1305"), "{out}");
    let out = s_client(addr, &["-servername", "a.example.com", "-tls1_3"]);
    assert!(out.contains("TLS_CHACHA20_POLY1305_SHA256"), "{out}");
    // A client that only offers a suite left out is refused.
    let out = s_client(
        addr,
        &[
            "-servername",
            "a.example.com",
            "-tls1_2",
            "-cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ],
    );
    assert!(!out.contains("CONNECTION ESTABLISHED"), "{out}");
}

#[test]
fn mtls_requires_a_client_certificate_from_the_ca() {
    let (s, addr) = start_tls(
        &format!(
            "{{ certificates: [{}], client_ca: \"{}\", require_client_certificate: true }}",
            server_cert(),
            cert("ca.pem")
        ),
        &answer("mtls"),
        "",
    );
    let (c, k) = (cert("client.pem"), cert("client.key"));
    let r = https(addr, "a.example.com", &["--cert", &c, "--key", &k]);
    assert_eq!(r.text(), "mtls");
    // The verified identity reaches the connection's info (logged at debug for now).
    s.poll("the peer identity in the log", || {
        s.log()
            .contains("peer_identity=\"spiffe://cluster.local/ns/default/sa/client\"")
            .then_some(())
    });
    // No certificate: refused (TLS 1.3 reports it after the handshake, on the first read).
    https_fails(addr, "a.example.com", &[]);
    https_fails(addr, "a.example.com", &["--tls-max", "1.2"]);
    // A certificate from another CA: refused.
    let (oc, ok) = (cert("other-client.pem"), cert("other-client.key"));
    https_fails(addr, "a.example.com", &["--cert", &oc, "--key", &ok]);
    let out = s_client(
        addr,
        &[
            "-servername",
            "a.example.com",
            "-tls1_2",
            "-cert",
            &oc,
            "-key",
            &ok,
        ],
    );
    assert!(!out.contains("CONNECTION ESTABLISHED"), "{out}");
    // Good clients still get through afterwards.
    let r = https(addr, "a.example.com", &["--cert", &c, "--key", &k]);
    assert_eq!(r.text(), "mtls");
}

#[test]
fn optional_client_certificate_is_verified_when_sent() {
    let (_s, addr) = start_tls(
        &format!(
            "{{ certificates: [{}], client_ca: \"{}\" }}",
            server_cert(),
            cert("ca.pem")
        ),
        &answer("opt"),
        "",
    );
    assert_eq!(https(addr, "a.example.com", &[]).text(), "opt");
    let (c, k) = (cert("client.pem"), cert("client.key"));
    assert_eq!(
        https(addr, "a.example.com", &["--cert", &c, "--key", &k]).text(),
        "opt"
    );
    let (oc, ok) = (cert("other-client.pem"), cert("other-client.key"));
    https_fails(addr, "a.example.com", &["--cert", &oc, "--key", &ok]);
}

#[test]
fn filter_chains_match_on_sni_and_transport() {
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: edge
    address: \"{addr}\"
    listener_filters: [tls_inspector]
    filter_chains:
      - match: {{ server_names: [a.example.com], transport_protocol: tls }}
        tls: {{ certificates: [{server}], alpn: [h2, http/1.1] }}
        filters: [{a}]
      - match: {{ transport_protocol: tls }}
        tls: {{ certificates: [{{ cert_chain: \"{b}\", private_key: \"{bk}\" }}] }}
        filters: [{other}]
      - match: {{ transport_protocol: raw_buffer }}
        filters: [{plain}]
",
        server = server_cert(),
        a = answer("chain a"),
        b = cert("b.pem"),
        bk = cert("b.key"),
        other = answer("chain tls"),
        plain = answer("chain plain"),
    );
    let _s = Sluice::start(&yaml);
    let r = https(addr, "a.example.com", &[]);
    assert_eq!(
        (r.text().as_str(), r.version.as_str()),
        ("chain a", "HTTP/2")
    );
    let r = https(addr, "b.example.com", &[]);
    assert_eq!(
        (r.text().as_str(), r.version.as_str()),
        ("chain tls", "HTTP/1.1")
    );
    let r = curl(&[&format!("http://{addr}/")]);
    assert_eq!(r.text(), "chain plain");
    let out = s_client(addr, &["-servername", "b.example.com"]);
    assert!(
        out.contains("Peer certificate: CN = b.example.com"),
        "{out}"
    );
}

#[test]
fn tcp_proxy_behind_tls() {
    let echo = echo_server();
    let (_s, addr) = start_tls(
        &format!("{{ certificates: [{}] }}", server_cert()),
        "{ tcp_proxy: { cluster: echo } }",
        &format!("clusters:\n  - name: echo\n    endpoints: [{{ address: \"{echo}\" }}]\n"),
    );
    let connect = addr.to_string();
    let ca = cert("ca.pem");
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", &connect, "-CAfile", &ca])
        .args(["-servername", "a.example.com"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello through tls\n").unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = vec![0u8; 18];
    stdout.read_exact(&mut got).unwrap();
    assert_eq!(got, b"hello through tls\n");
    // A larger transfer both ways: every byte comes back, flushed through TLS.
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&big).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin
    });
    let mut back = vec![0u8; 200_001];
    stdout.read_exact(&mut back).unwrap();
    assert!(back[..200_000]
        .iter()
        .enumerate()
        .all(|(i, b)| *b == b'a' + (i % 26) as u8));
    drop(writer.join().unwrap());
    // s_client -quiet ignores the end of its input: stop it.
    let _ = child.kill();
    let _ = child.wait();
}

/// Bad input on a TLS-only port: each connection is closed with a log line, and clients
/// around it are served.
#[test]
fn bad_input_is_closed_and_others_unaffected() {
    let (s, addr) = start_tls(
        &format!(
            "{{ certificates: [{}], handshake_timeout: 1s }}",
            server_cert()
        ),
        &answer("fine"),
        "",
    );
    // Plain HTTP on the TLS port.
    let mut c = connect(addr);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert!(!got.starts_with(b"HTTP"), "answered plaintext: {got:?}");
    // A ClientHello cut short: a record header that promises 512 bytes, then a few, then EOF.
    let mut c = connect(addr);
    c.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    // A client that stalls mid-handshake: closed by handshake_timeout, while another client
    // is served in the meantime.
    let mut stalled = connect(addr);
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    assert_eq!(https(addr, "a.example.com", &[]).text(), "fine");
    let mut buf = [0u8; 64];
    match stalled.read(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the stalled handshake was not closed: {e}"),
    }
    s.poll("the handshake timeout in the log", || {
        s.log()
            .contains("handshake_timeout passed before the handshake finished")
            .then_some(())
    });
    // An oversized handshake: a ClientHello that claims 16 MiB, sent in full-size records
    // until Sluice closes the connection (it must not buffer it all).
    let mut big = connect(addr);
    let mut record = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff];
    record.resize(5 + 0x4000, 0x41);
    let mut sent = 0usize;
    while sent < 16 << 20 {
        match big.write_all(&record) {
            Ok(()) => sent += record.len(),
            Err(_) => break,
        }
        if sent == record.len() {
            // Later records carry no header of their own in this stream of junk.
            record.truncate(5);
            record[..5].copy_from_slice(&[0x16, 0x03, 0x01, 0x40, 0x00]);
            record.resize(5 + 0x4000, 0x41);
        }
    }
    assert!(sent < 16 << 20, "16 MiB of ClientHello were all taken in");
    let log = s.log();
    assert!(log.contains("not a TLS ClientHello"), "{log}");
    assert_eq!(https(addr, "a.example.com", &[]).text(), "fine");
    // Each refusal was counted, under Envoy's names where Envoy has one.
    assert!(stat(&s, &listener_stat(addr, "ssl.client_hello_error")) >= 2);
    assert!(stat(&s, &listener_stat(addr, "ssl.connection_error")) >= 2);
    assert!(
        stat(
            &s,
            &listener_stat(addr, "downstream_cx_transport_socket_connect_timeout")
        ) >= 1
    );
    assert!(stat(&s, &listener_stat(addr, "ssl.handshake")) >= 2);
}

#[test]
fn refused_client_certificates_get_the_right_alert_and_are_counted() {
    let (s, addr) = start_tls(
        &format!(
            "{{ certificates: [{}], client_ca: \"{}\", require_client_certificate: true }}",
            server_cert(),
            cert("ca.pem")
        ),
        &answer("mtls"),
        "",
    );
    // s_client waits for the server (-ign_eof), so a TLS 1.3 refusal, which comes after the
    // client's Finished, is read and reported too.
    let refused = |version: &str, cert: Option<(&str, &str)>| {
        let mut args = vec!["-servername", "a.example.com", "-ign_eof", version];
        if let Some((c, k)) = cert {
            args.extend_from_slice(&["-cert", c, "-key", k]);
        }
        s_client(addr, &args)
    };
    let (oc, ok) = (cert("other-client.pem"), cert("other-client.key"));
    let (ec, ek) = expired_client();
    for version in ["-tls1_2", "-tls1_3"] {
        let out = refused(version, None);
        assert!(
            out.contains("alert certificate required"),
            "{version}: {out}"
        );
        let out = refused(version, Some((&oc, &ok)));
        assert!(out.contains("alert unknown ca"), "{version}: {out}");
        let out = refused(version, Some((&ec, &ek)));
        assert!(
            out.contains("alert certificate expired"),
            "{version}: {out}"
        );
    }
    let (c, k) = (cert("client.pem"), cert("client.key"));
    assert_eq!(
        https(addr, "a.example.com", &["--cert", &c, "--key", &k]).text(),
        "mtls"
    );
    assert_eq!(stat(&s, &listener_stat(addr, "ssl.fail_verify_no_cert")), 2);
    assert_eq!(stat(&s, &listener_stat(addr, "ssl.fail_verify_error")), 4);
    assert_eq!(stat(&s, &listener_stat(addr, "ssl.connection_error")), 6);
    assert_eq!(stat(&s, &listener_stat(addr, "ssl.handshake")), 1);
    // A refusal is logged at info with its reason (the first in each second).
    let log = s.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
}

#[test]
fn chains_match_on_alpn_and_source_address() {
    let addr = local(free_port());
    let chain = |m: &str, body: &str| {
        format!(
            "      - match: {m}\n        tls: {{ certificates: [{}], alpn: [h2, http/1.1] }}\n        filters: [{}]\n",
            server_cert(),
            answer(body)
        )
    };
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: edge
    address: \"{addr}\"
    listener_filters: [tls_inspector]
    filter_chains:
{}{}{}",
        chain("{}", "any"),
        chain("{ application_protocols: [h2] }", "h2-chain"),
        chain("{ source_prefix_ranges: [127.0.0.2/32] }", "from-2"),
    );
    let s = Sluice::start(&yaml);
    assert_eq!(https(addr, "a.example.com", &["--http1.1"]).text(), "any");
    assert_eq!(
        https(addr, "a.example.com", &["--http2"]).text(),
        "h2-chain"
    );
    // The source address is looked at after ALPN: an h2 client from 127.0.0.2 gets the h2
    // chain, an HTTP/1.1 one the chain for its address.
    assert_eq!(
        https(
            addr,
            "a.example.com",
            &["--http1.1", "--interface", "127.0.0.2"]
        )
        .text(),
        "from-2"
    );
    assert_eq!(
        https(
            addr,
            "a.example.com",
            &["--http2", "--interface", "127.0.0.2"]
        )
        .text(),
        "h2-chain"
    );
    assert_eq!(stat(&s, &listener_stat(addr, "tls_inspector.tls_found")), 4);
}

#[test]
fn a_server_first_protocol_passes_the_inspector_on_its_timeout() {
    // An upstream that speaks first, as SMTP or MySQL do: its client sends nothing before
    // the greeting, so the inspector has nothing to look at.
    let upstream = spawn_server(|mut c| {
        c.write_all(b"220 hello\r\n").unwrap();
        let mut buf = [0u8; 64];
        while let Ok(n) = c.read(&mut buf) {
            if n == 0 || c.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let listener = |name: &str, addr: SocketAddr, go_on: bool| {
        format!(
            "  - name: {name}
    address: \"{addr}\"
    listener_filters: [tls_inspector]
    listener_filters_timeout: 300ms
    continue_on_listener_filters_timeout: {go_on}
    filter_chains:
      - match: {{ transport_protocol: raw_buffer }}
        filters: [{{ tcp_proxy: {{ cluster: up }} }}]
      - match: {{ transport_protocol: tls }}
        tls: {{ certificates: [{}] }}
        filters: [{answer}]
",
            server_cert(),
            answer = answer("tls")
        )
    };
    let (on, off) = (local(free_port()), local(free_port()));
    let s = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
{}{}clusters: [{{ name: up, endpoints: [{{ address: \"{upstream}\" }}] }}]
",
        listener("on", on, true),
        listener("off", off, false)
    ));
    let mut c = connect(on);
    let mut greeting = [0u8; 11];
    c.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"220 hello\r\n");
    roundtrip(&mut c, b"EHLO me\r\n");
    // TLS clients of the same port are still told apart.
    assert_eq!(https(on, "a.example.com", &[]).text(), "tls");
    // Without continue_on_listener_filters_timeout the silent client is closed.
    let mut c = connect(off);
    assert_closed(&mut c, "a client silent past listener_filters_timeout");
    assert!(
        stat(
            &s,
            &listener_stat(off, "downstream_cx_transport_socket_connect_timeout")
        ) >= 1
    );
}

/// `openssl s_client` sending one `Connection: close` request (so it reads to the end,
/// session tickets included), with `args`; everything it printed.
fn s_client_request(addr: SocketAddr, args: &[&str]) -> String {
    let connect = addr.to_string();
    let ca = cert("ca.pem");
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-CAfile", &ca, "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET / HTTP/1.1\r\nHost: a.example.com\r\nConnection: close\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn sessions_resume_with_tickets_unless_turned_off() {
    let (_s, addr) = start_tls(
        &format!("{{ certificates: [{}] }}", server_cert()),
        &answer("t"),
        "",
    );
    let (_s2, no_tickets) = start_tls(
        &format!(
            "{{ certificates: [{}], session_tickets: false }}",
            server_cert()
        ),
        &answer("t"),
        "",
    );
    let dir = tempfile::tempdir().unwrap();
    for version in ["-tls1_2", "-tls1_3"] {
        let session = dir.path().join(format!("session{version}"));
        let session = session.to_str().unwrap();
        let base = ["-servername", "a.example.com", version];
        let first = s_client_request(addr, &[&base[..], &["-sess_out", session]].concat());
        assert!(first.contains("\nNew, "), "{version}: {first}");
        assert!(
            first.contains("TLS session ticket lifetime hint"),
            "{version}: {first}"
        );
        let again = s_client_request(addr, &[&base[..], &["-sess_in", session]].concat());
        assert!(again.contains("\nReused, "), "{version}: {again}");
        assert!(again.contains("HTTP/1.1 200"), "{version}: {again}");
    }
    // Without tickets, TLS 1.2 gets none (resumption by session id, kept in memory, stays).
    let out = s_client_request(no_tickets, &["-servername", "a.example.com", "-tls1_2"]);
    assert!(out.contains("HTTP/1.1 200"), "{out}");
    assert!(!out.contains("TLS session ticket lifetime hint"), "{out}");
}

#[test]
fn an_ocsp_response_is_stapled_for_clients_that_ask() {
    // A response for the server certificate, signed by the CA itself as responder.
    let dir = certs();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("ocsp-index.txt"), "").unwrap();
    run(&[
        "ocsp",
        "-issuer",
        "ca.pem",
        "-cert",
        "server.pem",
        "-no_nonce",
        "-reqout",
        "ocsp-req.der",
    ]);
    run(&[
        "ocsp",
        "-index",
        "ocsp-index.txt",
        "-CA",
        "ca.pem",
        "-rsigner",
        "ca.pem",
        "-rkey",
        "ca.key",
        "-reqin",
        "ocsp-req.der",
        "-respout",
        "server.ocsp",
        "-ndays",
        "1",
    ]);
    let (_s, addr) = start_tls(
        &format!(
            "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\", ocsp_staple: \"{}\" }}] }}",
            cert("server.pem"),
            cert("server.key"),
            cert("server.ocsp")
        ),
        &answer("ocsp"),
        "",
    );
    for version in ["-tls1_2", "-tls1_3"] {
        let out = s_client_request(addr, &["-servername", "a.example.com", "-status", version]);
        assert!(
            out.contains("OCSP Response Status: successful"),
            "{version}: {out}"
        );
        assert!(out.contains("HTTP/1.1 200"), "{version}: {out}");
    }
    // Without a staple configured, none is sent.
    let (_s2, plain) = start_tls(
        &format!("{{ certificates: [{}] }}", server_cert()),
        &answer("x"),
        "",
    );
    let out = s_client_request(plain, &["-servername", "a.example.com", "-status"]);
    assert!(out.contains("OCSP response: no response sent"), "{out}");
}

#[test]
fn tls_passes_through_by_sni_to_a_backend_that_terminates_it() {
    // nginx terminates b.example.com itself; Sluice only reads the SNI and relays the bytes.
    let nginx = Nginx::serving_tls(&format!(
        r#"ssl_certificate {}; ssl_certificate_key {}; location / {{ return 200 "nginx terminated $ssl_server_name"; }}"#,
        cert("b.pem"),
        cert("b.key")
    ));
    let addr = local(free_port());
    let s = Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: edge
    address: \"{addr}\"
    listener_filters: [tls_inspector]
    filter_chains:
      - match: {{ server_names: [b.example.com] }}
        filters: [{{ tcp_proxy: {{ cluster: b }} }}]
      - match: {{ server_names: [a.example.com] }}
        tls: {{ certificates: [{}] }}
        filters: [{}]
clusters: [{{ name: b, endpoints: [{{ address: \"{}\" }}] }}]
",
        server_cert(),
        answer("sluice terminated"),
        nginx.addr
    ));
    assert_eq!(
        https(addr, "b.example.com", &[]).text(),
        "nginx terminated b.example.com"
    );
    assert_eq!(
        https(addr, "a.example.com", &[]).text(),
        "sluice terminated"
    );
    // The certificate the passed-through client saw is nginx's (b.pem names only b).
    let out = s_client(addr, &["-servername", "b.example.com"]);
    assert!(
        out.contains("CN = b.example.com") || out.contains("CN=b.example.com"),
        "{out}"
    );
    // A name no chain has is closed and counted.
    https_fails(addr, "c.example.com", &[]);
    assert_eq!(stat(&s, &listener_stat(addr, "no_filter_chain_match")), 1);
}

fn check(yaml: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sluice.yaml");
    std::fs::write(&file, yaml).unwrap();
    let (code, out, err) = sluice_cmd(&["check", "-c", file.to_str().unwrap()], dir.path());
    (code, format!("{out}{err}"))
}

#[test]
fn config_errors_name_the_path_and_file_but_never_key_bytes() {
    let missing = certs().join("nope.pem").display().to_string();
    let (code, out) = check(&format!(
        "listeners:
  - name: edge
    address: 127.0.0.1:1
    tls:
      certificates: [{{ cert_chain: \"{missing}\", private_key: \"{}\" }}]
      min_verison: TLS1_2
    filters: [{{ tcp_proxy: {{ cluster: c }} }}]
clusters: [{{ name: c, endpoints: [{{ address: \"127.0.0.1:2\" }}] }}]
",
        cert("server.key")
    ));
    assert_ne!(code, 0);
    assert!(
        out.contains(":5: listeners[0].tls.certificates[0].cert_chain: cannot read"),
        "{out}"
    );
    assert!(out.contains(&missing), "{out}");
    assert!(out.contains("did you mean \"min_version\""), "{out}");

    // A key file that holds no key (here: a certificate) and a certificate file holding a
    // key: named, and the key's bytes appear nowhere.
    let key_text = std::fs::read_to_string(certs().join("server.key")).unwrap();
    let key_line = key_text.lines().nth(1).unwrap().to_string();
    let (code, out) = check(&format!(
        "listeners:
  - name: edge
    address: 127.0.0.1:1
    tls:
      certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}]
      require_client_certificate: true
      cipher_suites: [TLS_RSA_WITH_RC4]
    filters: [{{ tcp_proxy: {{ cluster: c }} }}]
clusters: [{{ name: c, endpoints: [{{ address: \"127.0.0.1:2\" }}] }}]
",
        cert("server.key"),
        cert("server.pem"),
    ));
    assert_ne!(code, 0);
    assert!(
        out.contains("listeners[0].tls.certificates[0].cert_chain")
            && out.contains("no PEM certificate"),
        "{out}"
    );
    assert!(
        out.contains("listeners[0].tls.certificates[0].private_key")
            && out.contains("no usable PEM private key"),
        "{out}"
    );
    assert!(out.contains("needs client_ca"), "{out}");
    assert!(
        out.contains("unknown cipher suite \"TLS_RSA_WITH_RC4\""),
        "{out}"
    );
    assert!(
        !out.contains(&key_line),
        "key material in the output: {out}"
    );

    // Chains that match on TLS need the inspector.
    let (code, out) = check(&format!(
        "listeners:
  - name: edge
    address: 127.0.0.1:1
    filter_chains:
      - match: {{ server_names: [a.example.com] }}
        tls: {{ certificates: [{}] }}
        filters: [{{ tcp_proxy: {{ cluster: c }} }}]
clusters: [{{ name: c, endpoints: [{{ address: \"127.0.0.1:2\" }}] }}]
",
        server_cert()
    ));
    assert_ne!(code, 0);
    assert!(
        out.contains("listeners[0].filter_chains[0].match: matching on server_names, transport_protocol or application_protocols needs listener_filters: [tls_inspector]"),
        "{out}"
    );

    // Without the inspector, a TLS chain and a plaintext one cannot be told apart.
    let (code, out) = check(&format!(
        "listeners:
  - name: edge
    address: 127.0.0.1:1
    filter_chains:
      - tls: {{ certificates: [{}] }}
        filters: [{{ tcp_proxy: {{ cluster: c }} }}]
      - filters: [{{ tcp_proxy: {{ cluster: c }} }}]
      - match: {{ transport_protocol: raw_buffer }}
        tls: {{ certificates: [{}] }}
        filters: [{{ tcp_proxy: {{ cluster: c }} }}]
    tls: {{ certificates: [] }}
clusters: [{{ name: c, endpoints: [{{ address: \"127.0.0.1:2\" }}] }}]
",
        server_cert(),
        server_cert()
    ));
    assert_ne!(code, 0);
    assert!(
        out.contains(
            "listeners[0].filter_chains[1]: matches the same connections as filter_chains[0]"
        ),
        "{out}"
    );
    assert!(
        out.contains("listeners[0].filter_chains[2].tls: a raw_buffer chain cannot terminate TLS"),
        "{out}"
    );
    assert!(
        out.contains(
            "listeners[0].tls: with filter_chains, put tls: inside the chain it applies to"
        ),
        "{out}"
    );
}

#[test]
fn listener_filter_timeouts_need_listener_filters() {
    let (code, out) = check(
        "listeners:
  - name: l
    address: 127.0.0.1:1
    listener_filters_timeout: 1s
    filters: [{ tcp_proxy: { cluster: c } }]
clusters: [{ name: c, endpoints: [{ address: \"127.0.0.1:2\" }] }]
",
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("listeners[0].listener_filters_timeout: applies only with listener_filters"),
        "{out}"
    );
}

#[test]
fn chain_matches_and_ocsp_staples_that_cannot_work_are_config_errors() {
    // server_names come from a ClientHello, which a raw_buffer chain never sees.
    let (code, out) = check(
        "listeners:
  - name: l
    address: 127.0.0.1:1
    listener_filters: [tls_inspector]
    filter_chains:
      - match: { transport_protocol: raw_buffer, server_names: [a.example.com] }
        filters: [{ tcp_proxy: { cluster: c } }]
clusters: [{ name: c, endpoints: [{ address: \"127.0.0.1:2\" }] }]
",
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("listeners[0].filter_chains[0].match: server_names and application_protocols come from a TLS ClientHello"),
        "{out}"
    );
    // An OCSP staple file that is missing, or empty.
    let empty = certs().join("empty.ocsp");
    std::fs::write(&empty, b"").unwrap();
    for (file, message) in [
        (cert("missing.ocsp"), "cannot read"),
        (
            empty.display().to_string(),
            "is empty (expected a DER OCSP response)",
        ),
    ] {
        let (code, out) = check(&format!(
            "listeners:
  - name: l
    address: 127.0.0.1:1
    tls: {{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\", ocsp_staple: \"{file}\" }}] }}
    filters: [{{ tcp_proxy: {{ cluster: c }} }}]
clusters: [{{ name: c, endpoints: [{{ address: \"127.0.0.1:2\" }}] }}]
",
            cert("server.pem"),
            cert("server.key")
        ));
        assert_ne!(code, 0);
        assert!(
            out.contains("listeners[0].tls.certificates[0].ocsp_staple:") && out.contains(message),
            "{out}"
        );
    }
}

#[test]
fn a_key_that_does_not_match_its_certificate_fails_the_start() {
    let addr = local(free_port());
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: edge
    address: \"{addr}\"
    tls: {{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}] }}
    filters: [{}]
",
        cert("server.pem"),
        cert("b.key"),
        answer("x")
    );
    let mut s = Sluice::spawn(&yaml, &[]);
    let status = s.wait_exit();
    assert!(!status.success());
    let log = s.log();
    assert!(
        log.contains("the key does not match the certificate"),
        "{log}"
    );
    assert!(log.contains("b.key"), "{log}");
}

#[test]
fn a_key_readable_by_others_is_warned_about_without_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("open.key");
    std::fs::copy(certs().join("server.key"), &key).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (s, addr) = start_tls(
        &format!(
            "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}] }}",
            cert("server.pem"),
            key.display()
        ),
        &answer("open"),
        "",
    );
    assert_eq!(https(addr, "a.example.com", &[]).text(), "open");
    let log = s.log();
    assert!(
        log.contains("private key file is readable by group or others"),
        "{log}"
    );
    let key_text = std::fs::read_to_string(&key).unwrap();
    for line in key_text.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!log.contains(line), "key material in the log");
    }
}
