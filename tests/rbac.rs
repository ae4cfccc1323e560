//! RBAC and x-forwarded-client-cert, end to end: the real binary with certificates made by
//! `examples/certs/gen.sh`, driven by curl (client certificates, `--interface 127.0.0.2` for
//! a second source address), nginx as the upstream that echoes what it received, and the
//! sofa-rpc-node Bolt client for RPC (`npm ci` in tests/bolt).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::bolt::{BoltClient, BoltServer};
use common::curl::Reply;
use common::nginx::Nginx;
use common::rpc::{self, cluster};
use common::*;

const CLIENT_ID: &str = "spiffe://cluster.local/ns/default/sa/client";

fn cert(name: &str) -> String {
    common::certs::file(name)
}

/// The `tls:` of an mTLS chain; `required` refuses clients without a certificate.
fn mtls(required: bool) -> String {
    format!(
        "{{ certificates: [{{ cert_chain: \"{}\", private_key: \"{}\" }}], client_ca: \"{}\", require_client_certificate: {required} }}",
        cert("server.pem"),
        cert("server.key"),
        cert("ca.pem")
    )
}

/// An http_proxy answering 200 `ok` everywhere, with `extra` keys (a flow-mapping tail).
fn answering(extra: &str) -> String {
    format!(
        "{{ http_proxy: {{ routes: [{{ match: {{ prefix: / }}, direct_response: {{ status: 200, body: ok }} }}]{extra} }} }}"
    )
}

/// Sluice with one listener `edge` on a free port.
fn start(tls: Option<&str>, filters: &str, rest: &str) -> (Sluice, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let tls = tls.map(|t| format!("    tls: {t}\n")).unwrap_or_default();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
listeners:
  - name: edge
    address: \"{addr}\"
{tls}    filters: [{filters}]
{rest}"
    );
    (Sluice::start(&yaml), addr)
}

/// curl over HTTPS (or plain HTTP when `https` is false) to `path`, with `extra` options.
fn request(addr: SocketAddr, https: bool, path: &str, extra: &[&str]) -> Result<Reply, String> {
    let ca = cert("ca.pem");
    let resolve = format!("a.example.com:{}:127.0.0.1", addr.port());
    let url = if https {
        format!("https://a.example.com:{}{path}", addr.port())
    } else {
        format!("http://127.0.0.1:{}{path}", addr.port())
    };
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-D",
            "-",
            "--cacert",
            &ca,
            "--resolve",
            &resolve,
        ])
        .args(extra)
        .arg(&url)
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(common::curl::parse_curl_output(&out.stdout).unwrap())
}

fn with_client_cert() -> Vec<String> {
    vec![
        "--cert".into(),
        cert("client.pem"),
        "--key".into(),
        cert("client.key"),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn http_rbac_allows_the_spiffe_id_on_its_path_only() {
    let rbac = format!(
        ", http_filters: [ {{ rbac: {{ rules: {{ action: ALLOW, policies: {{ client-on-allowed: {{
            permissions: [ {{ url_path: {{ path: {{ prefix: /allowed }} }} }} ],
            principals: [ {{ authenticated: {{ principal_name: {{ exact: \"{CLIENT_ID}\" }} }} }} ] }} }} }} }} }} ]"
    );
    let (s, addr) = start(Some(&mtls(true)), &answering(&rbac), "");
    let c = with_client_cert();
    let r = request(addr, true, "/allowed/x?q=1", &args(&c)).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    let r = request(addr, true, "/elsewhere", &args(&c)).unwrap();
    assert_eq!((r.status, r.text().as_str()), (403, "RBAC: access denied"));
    // A client of another CA never gets as far as RBAC.
    let other = [
        "--cert".to_string(),
        cert("other-client.pem"),
        "--key".into(),
        cert("other-client.key"),
    ];
    assert!(request(addr, true, "/allowed", &args(&other)).is_err());
    assert_eq!(stat(&s, "http.edge.rbac.allowed"), 1);
    assert_eq!(stat(&s, "http.edge.rbac.denied"), 1);
    // Enforced denials log at debug, naming the policy set's verdict.
    assert!(s.log().contains("rbac denied"), "{}", s.log());
}

#[test]
fn http_rbac_denies_by_header_and_source_ip() {
    let rbac = ", http_filters: [ { rbac: { rules: { action: DENY, policies: {
            forbidden-header: { permissions: [ { header: { name: x-forbidden, present: true } } ], principals: [ { any: true } ] },
            second-address: { permissions: [ { any: true } ], principals: [ { source_ip: 127.0.0.2/32 } ] } } } } } ]";
    let (s, addr) = start(None, &answering(rbac), "");
    assert_eq!(request(addr, false, "/", &[]).unwrap().status, 200);
    let r = request(addr, false, "/", &["-H", "x-forbidden: yes"]).unwrap();
    assert_eq!((r.status, r.text().as_str()), (403, "RBAC: access denied"));
    let r = request(addr, false, "/", &["--interface", "127.0.0.2"]).unwrap();
    assert_eq!(r.status, 403);
    assert_eq!(stat(&s, "http.edge.rbac.allowed"), 1);
    assert_eq!(stat(&s, "http.edge.rbac.denied"), 2);
}

#[test]
fn shadow_rules_log_and_count_but_never_deny() {
    let rbac = ", http_filters: [ { rbac: { shadow_rules: { action: DENY, policies: {
            audited: { permissions: [ { url_path: { path: { prefix: /audited } } } ], principals: [ { any: true } ] } } } } } ]";
    let (s, addr) = start(None, &answering(rbac), "");
    let r = request(addr, false, "/audited", &[]).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "ok"));
    assert_eq!(request(addr, false, "/", &[]).unwrap().status, 200);
    assert_eq!(stat(&s, "http.edge.rbac.shadow_denied"), 1);
    assert_eq!(stat(&s, "http.edge.rbac.shadow_allowed"), 1);
    // No enforced rules: nothing counted as allowed or denied.
    assert_eq!(stat(&s, "http.edge.rbac.denied"), 0);
    let log = s.log();
    let line = log
        .lines()
        .find(|l| {
            l.contains("rbac shadow rules evaluated") && l.contains("shadow_verdict=\"denied\"")
        })
        .unwrap_or_else(|| panic!("no shadow line: {log}"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(line.contains("shadow_policy=\"audited\""), "{line}");
}

#[test]
fn network_rbac_closes_connections_from_a_denied_source() {
    let filters = format!(
        "{{ rbac: {{ rules: {{ action: DENY, policies: {{ second-address: {{ permissions: [ {{ any: true }} ], principals: [ {{ source_ip: 127.0.0.2 }} ] }} }} }} }} }}, {}",
        answering("")
    );
    let (s, addr) = start(None, &filters, "");
    assert_eq!(request(addr, false, "/", &[]).unwrap().status, 200);
    let err = request(addr, false, "/", &["--interface", "127.0.0.2"]).unwrap_err();
    assert!(
        err.contains("Empty reply") || err.contains("reset"),
        "{err}"
    );
    assert_eq!(stat(&s, "edge.rbac.allowed"), 1);
    assert_eq!(stat(&s, "edge.rbac.denied"), 1);
}

#[test]
fn network_rbac_denies_an_authenticated_principal_on_a_tls_chain() {
    let filters = format!(
        "{{ rbac: {{ stat_prefix: mtls_edge, rules: {{ action: DENY, policies: {{ no-client: {{ permissions: [ {{ requested_server_name: {{ exact: a.example.com }} }} ], principals: [ {{ authenticated: {{ principal_name: {{ suffix: /sa/client }} }} }} ] }} }} }} }} }}, {}",
        answering("")
    );
    let (s, addr) = start(Some(&mtls(false)), &filters, "");
    // Without a certificate: allowed.
    assert_eq!(request(addr, true, "/", &[]).unwrap().status, 200);
    // With the client's certificate: the connection is closed after the handshake.
    let c = with_client_cert();
    assert!(request(addr, true, "/", &args(&c)).is_err());
    assert_eq!(stat(&s, "mtls_edge.rbac.denied"), 1);
    assert_eq!(stat(&s, "mtls_edge.rbac.allowed"), 1);
}

#[test]
fn rpc_rbac_answers_a_denied_bolt_call_with_a_bolt_error() {
    let server = BoltServer::start("up");
    let extra = "          stream_filters:
            - rbac:
                rules:
                  action: ALLOW
                  policies:
                    echo-only:
                      permissions:
                        - and_rules:
                            rules:
                              - header: { name: service, prefix: com.example.Echo }
                              - header: { name: method, exact: echo }
                      principals: [ { source_ip: 127.0.0.1 } ]
";
    let (s, addr) = rpc::start(
        "bolt",
        extra,
        &rpc::all_to("up"),
        &cluster("up", &[server.addr]),
    );
    let run = BoltClient::new(addr).count(2).run();
    assert_eq!((run.ok, run.errors), (2, 0), "{}", run.raw);
    assert!(
        run.results.iter().all(|r| r.starts_with("up:")),
        "{}",
        run.raw
    );
    let run = BoltClient::new(addr).method("connections").run();
    assert_eq!((run.ok, run.errors), (0, 1), "{}", run.raw);
    assert!(run.has_error("RBAC: access denied"), "{}", run.raw);
    assert_eq!(stat(&s, "rpc.rpc.rbac.allowed"), 2);
    assert_eq!(stat(&s, "rpc.rpc.rbac.denied"), 1);
}

/// The SHA-256 of `client.pem`'s DER, by openssl, in lower-case hex.
fn client_cert_hash() -> String {
    let der = Command::new("openssl")
        .args(["x509", "-in", &cert("client.pem"), "-outform", "DER"])
        .output()
        .unwrap()
        .stdout;
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&der).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn xfcc_is_sanitized_set_or_appended() {
    let nginx = Nginx::serving(r#"location / { return 200 "[$http_x_forwarded_client_cert]"; }"#);
    let forward = |mode: &str, details: &str| {
        format!(
            "{{ http_proxy: {{ forward_client_cert_details: {mode}{details}, routes: [{{ match: {{ prefix: / }}, route: {{ cluster: nginx }} }}] }} }}"
        )
    };
    let clusters = format!(
        "clusters:\n  - name: nginx\n    endpoints: [{{ address: \"{}\" }}]\n",
        nginx.addr
    );
    let forged = ["-H", "x-forwarded-client-cert: By=forged;Hash=00"];
    let c = with_client_cert();
    let mut with_cert = args(&c);
    with_cert.extend_from_slice(&forged);
    let hash = client_cert_hash();

    // sanitize (the default): gone, with or without a certificate, over TLS or not.
    let (_s, addr) = start(Some(&mtls(false)), &forward("sanitize", ""), &clusters);
    assert_eq!(request(addr, true, "/", &with_cert).unwrap().text(), "[]");
    assert_eq!(request(addr, true, "/", &forged).unwrap().text(), "[]");
    let (_s, addr) = start(
        None,
        &answering("").replace(
            "http_proxy: {",
            "http_proxy: { forward_client_cert_details: sanitize_set,",
        ),
        "",
    );
    assert_eq!(request(addr, false, "/", &forged).unwrap().status, 200);

    // sanitize_set: this hop's element replaces the forged one; without a certificate, none.
    let details = ", set_current_client_cert_details: { subject: true, uri: true, dns: true }";
    let (_s, addr) = start(
        Some(&mtls(false)),
        &forward("sanitize_set", details),
        &clusters,
    );
    let expected = format!(
        "[By=spiffe://cluster.local/ns/default/sa/sluice;Hash={hash};Subject=\"CN=client,O=Sluice test\";URI={CLIENT_ID};DNS=client.local]"
    );
    assert_eq!(
        request(addr, true, "/", &with_cert).unwrap().text(),
        expected
    );
    assert_eq!(request(addr, true, "/", &forged).unwrap().text(), "[]");

    // append_forward: the incoming elements stay, this hop's follows.
    let (_s, addr) = start(
        Some(&mtls(false)),
        &forward(
            "append_forward",
            ", set_current_client_cert_details: { cert: true }",
        ),
        &clusters,
    );
    let body = request(addr, true, "/", &with_cert).unwrap().text();
    let prefix = format!("[By=forged;Hash=00,By=spiffe://cluster.local/ns/default/sa/sluice;Hash={hash};Cert=\"-----BEGIN%20CERTIFICATE-----%0A");
    assert!(body.starts_with(&prefix), "{body}");
    assert!(
        body.ends_with("-----END%20CERTIFICATE-----%0A\"]"),
        "{body}"
    );
    // forward_only keeps the incoming header on mTLS connections only.
    let (_s, addr) = start(Some(&mtls(false)), &forward("forward_only", ""), &clusters);
    assert_eq!(
        request(addr, true, "/", &with_cert).unwrap().text(),
        "[By=forged;Hash=00]"
    );
    assert_eq!(request(addr, true, "/", &forged).unwrap().text(), "[]");
}

#[test]
fn config_errors_name_the_yaml_path() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = "listeners:
  - name: edge
    address: 127.0.0.1:1
    filters:
      - rbac:
          rules:
            policies:
              p:
                permissions: [ { url_path: { path: { prefix: / } } } ]
                principals: [ { source_ip: 10.0.0.0/99 } ]
      - http_proxy:
          routes: [ { match: { prefix: / }, direct_response: { status: 200 } } ]
          http_filters: [ { rbca: {} } ]
          forward_client_cert_details: sanitise
";
    std::fs::write(dir.path().join("c.yaml"), yaml).unwrap();
    let (code, _out, err) = sluice_cmd(&["check", "-c", "c.yaml"], dir.path());
    assert_ne!(code, 0);
    for needle in [
        "listeners[0].filters[0].rbac.rules.policies.p.permissions[0].url_path: \"url_path\" needs a request",
        "listeners[0].filters[0].rbac.rules.policies.p.principals[0].source_ip: \"10.0.0.0/99\" is not an IP range",
        "listeners[0].filters[1].http_proxy.http_filters[0]: unknown stream filter \"rbca\" (did you mean \"rbac\"?)",
        "listeners[0].filters[1].http_proxy.forward_client_cert_details: unknown forward_client_cert_details mode \"sanitise\" (did you mean \"sanitize\"?)",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
}

#[test]
fn http_rbac_works_on_http2_too() {
    let tls = mtls(true).replace(", client_ca", ", alpn: [h2, http/1.1], client_ca");
    let rbac = ", http_filters: [ { rbac: { rules: { action: DENY, policies: { no-post: {
            permissions: [ { header: { name: \":method\", exact: POST } } ], principals: [ { authenticated: {} } ] } } } } } ]";
    let (s, addr) = start(Some(&tls), &answering(rbac), "");
    let c = with_client_cert();
    let mut get = args(&c);
    get.push("--http2");
    let r = request(addr, true, "/", &get).unwrap();
    assert_eq!((r.version.as_str(), r.status), ("HTTP/2", 200));
    let mut post = get.clone();
    post.extend_from_slice(&["-X", "POST"]);
    let r = request(addr, true, "/", &post).unwrap();
    assert_eq!((r.version.as_str(), r.status), ("HTTP/2", 403));
    assert_eq!(r.text(), "RBAC: access denied");
    assert_eq!(stat(&s, "http.edge.rbac.denied"), 1);
}

#[test]
fn rpc_stream_filters_also_guard_http_on_an_auto_listener() {
    let extra = "          stream_filters:
            - rbac: { rules: { action: DENY, policies: { p: { permissions: [ { header: { name: x-forbidden, present: true } } ], principals: [ { any: true } ] } } } }
";
    let routes = "          - match: { prefix: / }\n            direct_response: { status: 200, body: ok }\n";
    let (s, addr) = rpc::start("auto", extra, routes, "  []\n");
    assert_eq!(request(addr, false, "/", &[]).unwrap().status, 200);
    let r = request(addr, false, "/", &["-H", "x-forbidden: 1"]).unwrap();
    assert_eq!((r.status, r.text().as_str()), (403, "RBAC: access denied"));
    assert_eq!(stat(&s, "rpc.rpc.rbac.denied"), 1);
}
