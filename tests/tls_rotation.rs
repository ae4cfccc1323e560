//! Live certificate rotation, end to end: the real binary serving TLS while its certificate
//! files are replaced (renamed over, Kubernetes-style symlink swap) or an SDS server (the Go
//! control plane of tests/control-plane, on go-control-plane) pushes new secrets. A rustls
//! client makes new handshakes in a loop throughout: no request may fail, and new handshakes
//! must present the new certificate; `openssl s_client` confirms the served serial.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::control_plane::ControlPlane;
use common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

/// The test PKI (gen.sh) plus `server2`: same names and CA as `server`, a new key and serial,
/// as a rotation would bring.
fn certs() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        common::certs::generate(dir.path());
        let sh = r#"set -e
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=a.example.com \
  -keyout server2.key -out server2.csr 2>/dev/null
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:a.example.com,DNS:b.example.com,DNS:localhost,IP:127.0.0.1\n' > server2.ext
openssl x509 -req -in server2.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
  -extfile server2.ext -out server2.pem 2>/dev/null
rm -f server2.csr server2.ext ca.srl"#;
        let out = Command::new("bash")
            .args(["-c", sh])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "server2: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
    .path()
}

fn cert(name: &str) -> PathBuf {
    certs().join(name)
}

/// The leaf of a PEM file, as DER: what a handshake presenting it shows.
fn leaf(name: &str) -> Vec<u8> {
    CertificateDer::pem_file_iter(cert(name))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

/// `serial=...` of a PEM certificate, by openssl.
fn serial_of(name: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert(name))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The serial of the certificate `openssl s_client` is served on a new handshake.
fn served_serial(addr: SocketAddr) -> String {
    let sh = format!(
        "openssl s_client -connect {addr} -servername localhost -CAfile '{}' </dev/null 2>/dev/null | openssl x509 -noout -serial",
        cert("ca.pem").display()
    );
    let out = Command::new("bash").args(["-c", &sh]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn client_config(client_cert: Option<(&str, &str)>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client_cert {
        Some((c, k)) => {
            let chain = CertificateDer::pem_file_iter(cert(c))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let key = rustls_pki_types::PrivateKeyDer::from_pem_file(cert(k)).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A new TLS connection to `addr` (SNI `localhost`), handshake done.
fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> Result<Tls, String> {
    connect_to(addr, config, "localhost")
}

fn connect_to(
    addr: SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    sni: &str,
) -> Result<Tls, String> {
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    Ok(tls)
}

/// One GET on `tls`, reading the response by its Content-Length: the body.
fn get(tls: &mut Tls, close: bool) -> Result<String, String> {
    let conn = if close { "close" } else { "keep-alive" };
    write!(
        tls,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: {conn}\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    tls.flush().map_err(|e| format!("flush: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| format!("no content-length in {head:?}"))?;
            if buf.len() >= end + 4 + len {
                if !head.starts_with("http/1.1 200") {
                    return Err(format!("status: {head:?}"));
                }
                return Ok(String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned());
            }
        }
        let n = tls.read(&mut chunk).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {} bytes", buf.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Clients making one new handshake and one request after another until stopped (bounded
/// by count and time), reporting the leaf each handshake presented, or the failure.
struct Load {
    stop: Arc<AtomicBool>,
    results: mpsc::Receiver<Result<Vec<u8>, String>>,
    seen: Vec<Result<Vec<u8>, String>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    /// Each handshake is a full one (no session resumption), so it shows the certificate.
    fn start(addr: SocketAddr, config: Arc<rustls::ClientConfig>, clients: usize) -> Load {
        let mut config = (*config).clone();
        config.resumption = rustls::client::Resumption::disabled();
        let config = Arc::new(config);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, results) = mpsc::channel();
        let threads = (0..clients)
            .map(|_| {
                let (stop, tx, config) = (stop.clone(), tx.clone(), config.clone());
                thread::spawn(move || {
                    let started = Instant::now();
                    for _ in 0..20_000 {
                        if stop.load(Ordering::Relaxed) || started.elapsed() > DEADLINE * 3 {
                            return;
                        }
                        let r = connect(addr, &config).and_then(|mut tls| {
                            let body = get(&mut tls, true)?;
                            if body != "rotating" {
                                return Err(format!("body {body:?}"));
                            }
                            let leaf = tls.conn.peer_certificates().unwrap()[0].to_vec();
                            Ok(leaf)
                        });
                        let _ = tx.send(r);
                    }
                })
            })
            .collect();
        Load {
            stop,
            results,
            seen: Vec::new(),
            threads,
        }
    }

    fn collect(&mut self) {
        self.seen.extend(self.results.try_iter());
    }

    /// Waits until at least `n` more requests were made, so a change happens under load.
    fn wait_for_requests(&mut self, sluice: &Sluice, n: usize) {
        self.collect();
        let want = self.seen.len() + n;
        sluice.poll("requests under load", || {
            self.collect();
            (self.seen.len() >= want).then_some(())
        });
    }

    /// Waits until a handshake made from now on presents `leaf`.
    fn wait_for_leaf(&mut self, sluice: &Sluice, leaf: &[u8], what: &str) {
        self.collect();
        let from = self.seen.len();
        sluice.poll(what, || {
            self.collect();
            self.seen[from..]
                .iter()
                .any(|r| r.as_deref().ok() == Some(leaf))
                .then_some(())
        });
    }

    /// Stops the clients; asserts no request failed and returns how many were made.
    fn finish(mut self, sluice: &Sluice) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        self.collect();
        let failed: Vec<&String> = self.seen.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(
            failed.is_empty(),
            "{} of {} requests failed, first: {:?}; log:\n{}",
            failed.len(),
            self.seen.len(),
            failed.first(),
            sluice.log()
        );
        self.seen.len()
    }
}

const ANSWER: &str = "{ http_proxy: { routes: [{ match: { prefix: / }, direct_response: { status: 200, body: rotating } }] } }";

fn start_sluice(addr: SocketAddr, tls: &str, top: &str) -> Sluice {
    Sluice::start(&format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 2
{top}
listeners:
  - name: edge
    address: \"{addr}\"
    tls: {tls}
    filters: [{ANSWER}]
"
    ))
}

fn local() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// Writes `from` to `to` through a temporary file renamed over it (an atomic replacement).
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

/// The file rotation scenario: serve `server`, rotate to `server2` with `rotate` under load.
fn file_rotation(cert_path: &Path, key_path: &Path, rotate: impl FnOnce()) {
    let addr = local();
    let tls = format!(
        "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}] }}",
        cert_path.display(),
        key_path.display()
    );
    let sluice = start_sluice(addr, &tls, "");
    let config = client_config(None);
    // A keep-alive connection opened before the change, used again after it.
    let mut kept = connect(addr, &config).unwrap();
    assert_eq!(get(&mut kept, false).unwrap(), "rotating");
    assert_eq!(
        kept.conn.peer_certificates().unwrap()[0].as_ref(),
        leaf("server.pem")
    );

    let mut load = Load::start(addr, config, 2);
    load.wait_for_requests(&sluice, 20);
    assert_eq!(served_serial(addr), serial_of("server.pem"));
    rotate();
    load.wait_for_leaf(
        &sluice,
        &leaf("server2.pem"),
        "a handshake with the new certificate",
    );
    load.wait_for_requests(&sluice, 20);
    let made = load.finish(&sluice);
    assert!(made >= 40, "only {made} requests");
    assert_eq!(
        served_serial(addr),
        serial_of("server2.pem"),
        "openssl sees the new serial"
    );
    assert_eq!(
        get(&mut kept, false).unwrap(),
        "rotating",
        "the old connection still works"
    );
    let serial = serial_of("server2.pem").to_ascii_lowercase();
    let serial = serial.trim_start_matches("serial=").trim_start_matches('0');
    let rotated = sluice
        .log()
        .lines()
        .find(|l| l.contains("certificate rotated"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(
        rotated.contains(serial),
        "info line with the new serial: {rotated:?}"
    );
    assert!(
        rotated.contains(&cert_path.display().to_string()),
        "{rotated}"
    );
}

#[test]
fn file_rename_over_under_load() {
    let live = tempfile::tempdir().unwrap();
    let (c, k) = (live.path().join("tls.crt"), live.path().join("tls.key"));
    std::fs::copy(cert("server.pem"), &c).unwrap();
    std::fs::copy(cert("server.key"), &k).unwrap();
    // Certificate first, key a moment later: a poll may see the new certificate with the old
    // key, which must be refused (and retried), not served.
    file_rotation(&c, &k, || {
        replace(&cert("server2.pem"), &c);
        replace(&cert("server2.key"), &k);
    });
}

/// Kubernetes mounts a Secret as `tls.crt -> ..data/tls.crt`, `..data -> ..<timestamp>`, and
/// updates it by pointing `..data` at a new folder in one rename.
#[test]
fn file_symlink_swap_under_load() {
    let live = tempfile::tempdir().unwrap();
    let d = live.path();
    for (folder, name) in [("..v1", "server"), ("..v2", "server2")] {
        std::fs::create_dir(d.join(folder)).unwrap();
        std::fs::copy(cert(&format!("{name}.pem")), d.join(folder).join("tls.crt")).unwrap();
        std::fs::copy(cert(&format!("{name}.key")), d.join(folder).join("tls.key")).unwrap();
    }
    std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/tls.crt", d.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", d.join("tls.key")).unwrap();
    file_rotation(&d.join("tls.crt"), &d.join("tls.key"), || {
        std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    });
}

#[test]
fn a_key_that_does_not_match_keeps_the_old_certificate() {
    let live = tempfile::tempdir().unwrap();
    let (c, k) = (live.path().join("tls.crt"), live.path().join("tls.key"));
    std::fs::copy(cert("server.pem"), &c).unwrap();
    std::fs::copy(cert("server.key"), &k).unwrap();
    let addr = local();
    let tls = format!(
        "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}] }}",
        c.display(),
        k.display()
    );
    let sluice = start_sluice(addr, &tls, "");
    replace(&cert("b.key"), &k);
    let warning = sluice.poll("the warning about the broken pair", || {
        sluice
            .log()
            .lines()
            .find(|l| l.contains("WARN") && l.contains("cannot be used"))
            .map(str::to_string)
    });
    assert!(
        warning.contains(&k.display().to_string()),
        "names the key file: {warning}"
    );
    assert!(warning.contains("does not match"), "{warning}");
    // No key material in the log: not a line of the key's base64.
    let key_pem = std::fs::read_to_string(cert("b.key")).unwrap();
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!sluice.log().contains(line), "key bytes in the log");
    }
    let mut tls = connect(addr, &client_config(None)).unwrap();
    assert_eq!(get(&mut tls, true).unwrap(), "rotating");
    assert_eq!(
        tls.conn.peer_certificates().unwrap()[0].as_ref(),
        leaf("server.pem")
    );
    // The next change is tried again: the matching pair goes live.
    replace(&cert("b.pem"), &c);
    sluice.poll("the repaired pair served", || {
        // b.pem names only b.example.com.
        let tls = connect_to(addr, &client_config(None), "b.example.com").ok()?;
        (tls.conn.peer_certificates()?[0].as_ref() == leaf("b.pem").as_slice()).then_some(())
    });
}

#[test]
fn client_ca_file_rotation() {
    let live = tempfile::tempdir().unwrap();
    let ca = live.path().join("client-ca.pem");
    std::fs::copy(cert("ca.pem"), &ca).unwrap();
    let addr = local();
    let tls = format!(
        "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}], client_ca: \"{}\", require_client_certificate: true }}",
        cert("server.pem").display(),
        cert("server.key").display(),
        ca.display()
    );
    let sluice = start_sluice(addr, &tls, "");
    let ours = client_config(Some(("client.pem", "client.key")));
    let other = client_config(Some(("other-client.pem", "other-client.key")));
    let request = |config: &Arc<rustls::ClientConfig>| {
        connect(addr, config).and_then(|mut t| get(&mut t, true))
    };
    assert_eq!(request(&ours).unwrap(), "rotating");
    assert!(
        request(&other).is_err(),
        "a client of the other CA is refused"
    );
    replace(&cert("other-ca.pem"), &ca);
    sluice.poll("the other CA's client accepted", || request(&other).ok());
    assert!(
        request(&ours).is_err(),
        "the old CA's client is refused now"
    );
    assert!(sluice.log().contains("CA bundle rotated"));
}

/// One secret folder of the control plane: `cert_chain.pem` + `private_key.pem`.
fn serve_cert(dir: &Path, secret: &str, name: &str) {
    let d = dir.join("secrets").join(secret);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(cert(&format!("{name}.pem")), d.join("cert_chain.pem")).unwrap();
    std::fs::copy(cert(&format!("{name}.key")), d.join("private_key.pem")).unwrap();
}

fn sds_top(cp: &ControlPlane, timeout: &str) -> String {
    format!(
        "node: {{ id: sidecar~127.0.0.1~app.default~default.svc.cluster.local, cluster: app }}
sds: {{ address: \"{}\", initial_fetch_timeout: {timeout} }}",
        cp.address
    )
}

const SDS_TLS: &str = "{ certificates: [{ sds: server-cert }] }";

/// Serves `server-cert` from the control plane, pushes `server2` under load.
fn sds_rotation(listen: &str) -> (Sluice, ControlPlane, tempfile::TempDir, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    serve_cert(dir.path(), "server-cert", "server");
    let mut cp = ControlPlane::start(dir.path(), listen);
    let addr = local();
    let sluice = start_sluice(addr, SDS_TLS, &sds_top(&cp, "15s"));
    let request = cp.wait_line("Sluice's request", |l| l.starts_with("REQUEST"));
    assert!(
        request.contains("node=\"sidecar~127.0.0.1~app.default~default.svc.cluster.local\""),
        "{request}"
    );
    assert!(
        request.contains("cluster=\"app\"") && request.contains("names=server-cert"),
        "{request}"
    );
    cp.wait_line("the ACK of version 1", |l| {
        l.starts_with("ACK") && l.contains("version=\"1\"")
    });
    assert_eq!(served_serial(addr), serial_of("server.pem"));

    let mut load = Load::start(addr, client_config(None), 2);
    load.wait_for_requests(&sluice, 20);
    serve_cert(dir.path(), "server-cert", "server2");
    let v = cp.push();
    load.wait_for_leaf(
        &sluice,
        &leaf("server2.pem"),
        "a handshake with the SDS-pushed certificate",
    );
    cp.wait_line("the ACK of the push", |l| {
        l.starts_with("ACK") && l.contains(&format!("version=\"{v}\""))
    });
    load.wait_for_requests(&sluice, 20);
    load.finish(&sluice);
    assert_eq!(served_serial(addr), serial_of("server2.pem"));
    (sluice, cp, dir, addr)
}

#[test]
fn sds_over_tcp_rotation_nack_and_reconnect() {
    let port = free_port();
    let (sluice, mut cp, dir, addr) = sds_rotation(&format!("127.0.0.1:{port}"));

    // A secret whose key does not match its certificate: NACKed, the old one still served.
    let secret = dir.path().join("secrets/server-cert");
    std::fs::copy(cert("b.key"), secret.join("private_key.pem")).unwrap();
    let v = cp.push();
    let nack = cp.wait_line("the NACK", |l| l.starts_with("NACK"));
    assert!(
        nack.contains("secret \"server-cert\""),
        "error_detail names the secret: {nack}"
    );
    assert!(nack.contains("does not match"), "{nack}");
    assert!(
        nack.contains("version=\"2\""),
        "NACK carries the last accepted version: {nack}"
    );
    assert!(
        !nack.contains("nonce=\"\""),
        "NACK names the response's nonce: {nack}"
    );
    assert_eq!(served_serial(addr), serial_of("server2.pem"));
    let key_pem = std::fs::read_to_string(cert("b.key")).unwrap();
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !sluice.log().contains(line) && !cp.log().contains(line),
            "key bytes in a log"
        );
    }
    assert_eq!(v, 3);

    // The server goes away and comes back (versions start again at 1): Sluice reconnects,
    // takes what it serves, and later pushes still apply.
    drop(cp);
    serve_cert(dir.path(), "server-cert", "server");
    let mut cp = ControlPlane::start(dir.path(), &format!("127.0.0.1:{port}"));
    let request = cp.wait_line("the resumed request", |l| l.starts_with("REQUEST"));
    assert!(
        request.contains("version=\"2\""),
        "resumes from the version it had: {request}"
    );
    sluice.poll("the restarted server's certificate", || {
        (served_serial(addr) == serial_of("server.pem")).then_some(())
    });
    serve_cert(dir.path(), "server-cert", "server2");
    cp.push();
    sluice.poll("a push after the reconnect", || {
        (served_serial(addr) == serial_of("server2.pem")).then_some(())
    });
}

#[test]
fn sds_over_a_unix_socket() {
    let sock_dir = tempfile::tempdir().unwrap();
    let path = sock_dir.path().join("sds.sock");
    sds_rotation(&format!("unix:{}", path.display()));
}

#[test]
fn sds_client_ca_and_certificate() {
    let dir = tempfile::tempdir().unwrap();
    serve_cert(dir.path(), "server-cert", "server");
    let ca_dir = dir.path().join("secrets/ROOTCA");
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::copy(cert("ca.pem"), ca_dir.join("trusted_ca.pem")).unwrap();
    let mut cp = ControlPlane::start(dir.path(), "127.0.0.1:0");
    let addr = local();
    let tls = "{ certificates: [{ sds: server-cert }], client_ca: { sds: ROOTCA }, require_client_certificate: true }";
    let sluice = start_sluice(addr, tls, &sds_top(&cp, "15s"));
    let ours = client_config(Some(("client.pem", "client.key")));
    let other = client_config(Some(("other-client.pem", "other-client.key")));
    let request = |config: &Arc<rustls::ClientConfig>| {
        connect(addr, config).and_then(|mut t| get(&mut t, true))
    };
    assert_eq!(request(&ours).unwrap(), "rotating");
    assert!(request(&other).is_err());
    std::fs::copy(cert("other-ca.pem"), ca_dir.join("trusted_ca.pem")).unwrap();
    cp.push();
    sluice.poll("the pushed CA in use", || request(&other).ok());
    assert!(request(&ours).is_err());
}

/// A listener whose SDS certificate has not arrived does not serve, and `/ready` says so,
/// until the secret comes.
#[test]
fn a_listener_waits_for_its_first_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut cp = ControlPlane::start(dir.path(), "127.0.0.1:0");
    let addr = local();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
{}
listeners:
  - name: edge
    address: \"{addr}\"
    tls: {SDS_TLS}
    filters: [{ANSWER}]
",
        sds_top(&cp, "60s")
    );
    let mut sluice = Sluice::spawn(&yaml, &[]);
    // Sluice has asked, got version 1 without the secret, and acknowledged it: still not ready.
    cp.wait_line("the ACK of the empty version", |l| {
        l.starts_with("ACK") && l.contains("version=\"1\"")
    });
    let (status, body) = http_get(sluice.admin, "/ready").unwrap();
    assert_eq!((status, body.trim()), (503, "STARTING"));
    serve_cert(dir.path(), "server-cert", "server");
    cp.push();
    sluice.wait_ready();
    let mut tls = connect(addr, &client_config(None)).unwrap();
    assert_eq!(get(&mut tls, true).unwrap(), "rotating");
}

/// With no SDS server at all, the listener serves once initial_fetch_timeout passes, and
/// handshakes fail (no certificate) rather than hang.
#[test]
fn initial_fetch_timeout_lets_the_listener_start_without_its_secret() {
    let nobody = local();
    let addr = local();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
sds: {{ address: \"{nobody}\", initial_fetch_timeout: 1s }}
listeners:
  - name: edge
    address: \"{addr}\"
    tls: {SDS_TLS}
    filters: [{ANSWER}]
"
    );
    let mut sluice = Sluice::spawn(&yaml, &[]);
    sluice.wait_ready();
    let log = sluice.log();
    let warning = log
        .lines()
        .find(|l| l.contains("initial_fetch_timeout passed"));
    assert!(warning.is_some_and(|w| w.contains("server-cert")), "{log}");
    let err = connect(addr, &client_config(None)).err();
    assert!(err.is_some(), "a handshake without a certificate fails");
}

#[test]
fn an_sds_secret_needs_a_top_level_sds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cfg.yaml"),
        format!(
            "listeners:
  - name: edge
    address: 127.0.0.1:1
    tls: {{ certificates: [{{ sds: server-cert }}], client_ca: {{ sds: ROOTCA }} }}
    filters: [{ANSWER}]
"
        ),
    )
    .unwrap();
    let (code, _, err) = sluice_cmd(&["check", "-c", "cfg.yaml"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("listeners[0].tls.certificates[0].sds: secret \"server-cert\" comes from SDS, but there is no top-level sds:"),
        "{err}"
    );
    assert!(
        err.contains("listeners[0].tls.client_ca.sds: secret \"ROOTCA\""),
        "{err}"
    );
    // A cluster's SDS secrets need it as much.
    std::fs::write(
        dir.path().join("cluster.yaml"),
        "listeners:
  - name: web
    address: 127.0.0.1:1
    filters: [{ tcp_proxy: { cluster: c } }]
clusters:
  - name: c
    tls: { ca: { sds: ROOTCA }, certificate: { sds: default } }
    endpoints: [{ address: \"127.0.0.1:2\" }]
",
    )
    .unwrap();
    let (code, _, err) = sluice_cmd(&["check", "-c", "cluster.yaml"], dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("clusters[0].tls.ca.sds: secret \"ROOTCA\" comes from SDS, but there is no top-level sds:"),
        "{err}"
    );
    assert!(
        err.contains("clusters[0].tls.certificate.sds: secret \"default\""),
        "{err}"
    );
}
