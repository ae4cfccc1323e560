#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use http::HeaderMap;
use sluice_config::decode::Cx;
use sluice_config::yaml::parse;
use sluice_net::{ConnectionInfo, PeerAddr, PeerIdentity, TlsInfo};
use sluice_proxy::route::RequestView;

use super::config::{decode, Level, RbacConfig};
use super::engine::{Engine, Input};

fn config(yaml: &str, level: Level) -> Result<RbacConfig, Vec<String>> {
    let node = parse(yaml).unwrap();
    let mut cx = Cx::default();
    let c = decode(&node, "rbac", &mut cx, level);
    if cx.has_errors() {
        return Err(cx.diagnostics.iter().map(|d| d.to_string()).collect());
    }
    Ok(c.unwrap())
}

fn engine(yaml: &str) -> Engine {
    let c = config(yaml, Level::Stream).unwrap();
    Engine::compile(c.rules.as_ref().unwrap()).unwrap()
}

fn conn(peer: &str, local: &str, identity: Option<PeerIdentity>) -> ConnectionInfo {
    ConnectionInfo {
        listener: Arc::from("l"),
        peer: PeerAddr::Tcp(peer.parse().unwrap()),
        local: Some(local.parse().unwrap()),
        drain: tokio_util::sync::CancellationToken::new(),
        tls: identity.map(|peer| {
            Arc::new(TlsInfo {
                server_name: Some("a.example.com".into()),
                alpn: None,
                version: "TLSv1_3",
                cipher_suite: String::new(),
                peer: Some(peer),
                peer_chain: Vec::new(),
                local_uri_san: None,
            })
        }),
    }
}

fn client() -> PeerIdentity {
    PeerIdentity {
        uri_sans: vec!["spiffe://cluster.local/ns/default/sa/client".into()],
        dns_sans: vec!["client.example.com".into()],
        subject: "CN=client".into(),
        common_name: Some("client".into()),
    }
}

fn allowed(e: &Engine, c: &ConnectionInfo, method: &str, path: &str, headers: &HeaderMap) -> bool {
    let view = RequestView::new(method, "a.example.com", path, headers);
    e.evaluate(&Input {
        conn: c,
        request: Some(&view),
    })
    .allowed
}

const ADMINS: &str = r#"
rules:
  action: ALLOW
  policies:
    admins:
      permissions:
        - and_rules:
            rules:
              - url_path: { path: { prefix: /admin } }
              - header: { name: ":method", exact: GET }
      principals:
        - authenticated: { principal_name: { exact: "spiffe://cluster.local/ns/default/sa/client" } }
    local:
      permissions: [ { destination_port: 8080 } ]
      principals: [ { source_ip: 10.0.0.0/8 } ]
"#;

#[test]
fn allow_policies_need_a_permission_and_a_principal() {
    let e = engine(ADMINS);
    let h = HeaderMap::new();
    let mtls = conn("127.0.0.1:5000", "127.0.0.1:8443", Some(client()));
    assert!(allowed(&e, &mtls, "GET", "/admin/x?q=1", &h));
    assert!(!allowed(&e, &mtls, "POST", "/admin/x", &h));
    assert!(!allowed(&e, &mtls, "GET", "/other", &h));
    let plain = conn("127.0.0.1:5000", "127.0.0.1:8443", None);
    assert!(!allowed(&e, &plain, "GET", "/admin", &h));
    // The second policy: by port and source range.
    assert!(allowed(
        &e,
        &conn("10.1.2.3:1", "127.0.0.1:8080", None),
        "PUT",
        "/",
        &h
    ));
    assert!(!allowed(
        &e,
        &conn("11.1.2.3:1", "127.0.0.1:8080", None),
        "PUT",
        "/",
        &h
    ));
    let d = e.evaluate(&Input {
        conn: &mtls,
        request: Some(&RequestView::new("GET", "a", "/admin", &h)),
    });
    assert_eq!(d.policy, Some("admins"));
}

#[test]
fn deny_action_and_negations() {
    let e = engine(
        r#"
rules:
  action: DENY
  policies:
    no-debug:
      permissions:
        - or_rules: { rules: [ { header: { name: x-debug, present: true } }, { url_path: { path: { exact: /DEBUG, ignore_case: true } } } ] }
      principals:
        - not_id: { authenticated: {} }
"#,
    );
    let mut h = HeaderMap::new();
    let plain = conn("127.0.0.1:1", "127.0.0.1:80", None);
    let mtls = conn("127.0.0.1:1", "127.0.0.1:80", Some(client()));
    assert!(allowed(&e, &plain, "GET", "/", &h));
    assert!(!allowed(&e, &plain, "GET", "/debug", &h));
    assert!(!allowed(&e, &plain, "GET", "/Debug?x", &h));
    assert!(allowed(&e, &mtls, "GET", "/debug", &h));
    h.insert("x-debug", "1".parse().unwrap());
    assert!(!allowed(&e, &plain, "GET", "/", &h));
    assert!(allowed(&e, &mtls, "GET", "/", &h));
}

#[test]
fn authenticated_tries_uri_then_dns_then_subject() {
    let h = HeaderMap::new();
    let c = conn("127.0.0.1:1", "127.0.0.1:80", Some(client()));
    for (matcher, expected) in [
        ("{ suffix: /sa/client }", true),
        ("{ exact: client.example.com }", true),
        ("{ exact: CN=client }", true),
        ("{ regex: \"spiffe://other/.*\" }", false),
    ] {
        let e = engine(&format!(
            "rules: {{ policies: {{ p: {{ permissions: [{{ any: true }}], principals: [{{ authenticated: {{ principal_name: {matcher} }} }}] }} }} }}"
        ));
        assert_eq!(allowed(&e, &c, "GET", "/", &h), expected, "{matcher}");
    }
}

#[test]
fn sni_and_destination_ip() {
    let e = engine(
        "rules: { policies: { p: { permissions: [ { and_rules: { rules: [ { requested_server_name: { suffix: .example.com } }, { destination_ip: 127.0.0.0/8 } ] } } ], principals: [ { any: true } ] } } }",
    );
    let h = HeaderMap::new();
    assert!(allowed(
        &e,
        &conn("127.0.0.1:1", "127.0.0.1:80", Some(client())),
        "GET",
        "/",
        &h
    ));
    assert!(!allowed(
        &e,
        &conn("127.0.0.1:1", "127.0.0.1:80", None),
        "GET",
        "/",
        &h
    ));
}

#[test]
fn config_errors_name_their_paths() {
    let errors = |yaml: &str, level| config(yaml, level).unwrap_err().join("\n");
    let e = errors(
        "rules: { policies: { p: { permissions: [ { url_path: { path: { prefix: / } } } ], principals: [ { header: { name: x, exact: y } } ] } } }",
        Level::Network,
    );
    assert!(
        e.contains("rbac.rules.policies.p.permissions[0].url_path: \"url_path\" needs a request"),
        "{e}"
    );
    assert!(
        e.contains("rbac.rules.policies.p.principals[0].header: \"header\" needs a request"),
        "{e}"
    );
    let e = errors(
        "rules: { policies: { p: { permissions: [ { destination_prot: 80 } ], principals: [ { source_ip: 10.0.0.0/33 } ] } } }",
        Level::Stream,
    );
    assert!(e.contains("rbac.rules.policies.p.permissions[0].destination_prot: unknown permission \"destination_prot\" (did you mean \"destination_port\"?)"), "{e}");
    assert!(
        e.contains(
            "rbac.rules.policies.p.principals[0].source_ip: \"10.0.0.0/33\" is not an IP range"
        ),
        "{e}"
    );
    let e = errors("rules: { action: PERMIT, policies: {} }", Level::Stream);
    assert!(
        e.contains("rbac.rules.action: unknown action \"PERMIT\""),
        "{e}"
    );
    assert!(
        e.contains("rbac.rules.policies: needs at least one policy"),
        "{e}"
    );
    let e = errors(
        "shadow_rules: { policies: { p: { permissions: [ { header: { name: x, regex: \"(\" } } ], principals: [] } } }",
        Level::Stream,
    );
    assert!(
        e.contains("rbac.shadow_rules.policies.p.permissions[0].header.regex: invalid regex"),
        "{e}"
    );
    assert!(
        e.contains("rbac.shadow_rules.policies.p.principals: needs at least one entry"),
        "{e}"
    );
    let e = errors("rules: { policies: { p: { permissions: [ { any: false } ], principals: [ { any: true } ] } } }", Level::Stream);
    assert!(
        e.contains("rbac.rules.policies.p.permissions[0].any: must be true"),
        "{e}"
    );
}

#[test]
fn no_rules_allow_everything() {
    let c = config("shadow_rules: { action: DENY, policies: { p: { permissions: [ { any: true } ], principals: [ { any: true } ] } } }", Level::Network).unwrap();
    assert!(c.rules.is_none());
    let shadow = Engine::compile(c.shadow_rules.as_ref().unwrap()).unwrap();
    let d = shadow.evaluate(&Input {
        conn: &conn("127.0.0.1:1", "127.0.0.1:80", None),
        request: None,
    });
    assert!(!d.allowed);
    assert_eq!(d.policy, Some("p"));
}
