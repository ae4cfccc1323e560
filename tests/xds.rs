//! Sluice as an xDS client of go-control-plane (tests/control-plane): listeners, route
//! configs, clusters and endpoints arrive over ADS or separate streams, state of the world
//! or delta, and change while traffic flows.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use common::control_plane::ControlPlane;
use common::curl::curl;
use common::mesh::Mesh;
use common::nginx::Nginx;
use common::{free_port, http_get, stat, Sluice};

fn upstream(name: &str) -> Nginx {
    Nginx::serving(&format!(r#"location / {{ return 200 "{name}\n"; }}"#))
}

fn sluice_config(cp: &ControlPlane, ads: bool, delta: bool) -> String {
    format!(
        r#"admin: {{ address: "{{admin}}" }}
drain_timeout: 2s
node: {{ id: test-node, cluster: test, locality: {{ zone: z1 }} }}
xds: {{ address: "{}", ads: {ads}, delta: {delta}, initial_fetch_timeout: 10s }}
"#,
        cp.address
    )
}

fn get(port: u16) -> String {
    let reply = curl(&[
        "-s",
        "--max-time",
        "5",
        &format!("http://127.0.0.1:{port}/"),
    ]);
    reply.text().to_string()
}

/// Starts a control plane serving `mesh`, and Sluice on it; returns once Sluice is ready
/// (which it is only once the resources are in force).
fn start(mesh: &Mesh, ads: bool, delta: bool) -> (tempfile::TempDir, ControlPlane, Sluice) {
    start_on(mesh, ads, delta, None)
}

/// `start`, with the control plane on a Unix socket in `unix`'s folder when given.
fn start_on(
    mesh: &Mesh,
    ads: bool,
    delta: bool,
    unix: Option<&Path>,
) -> (tempfile::TempDir, ControlPlane, Sluice) {
    let dir = tempfile::tempdir().unwrap();
    mesh.write(dir.path());
    let listen = match unix {
        Some(folder) => format!("unix:{}", folder.join("xds.sock").display()),
        None => "127.0.0.1:0".to_string(),
    };
    let cp = ControlPlane::start(dir.path(), &listen);
    let sluice = Sluice::start(&sluice_config(&cp, ads, delta));
    (dir, cp, sluice)
}

fn traffic_flows(ads: bool, delta: bool, unix: bool) {
    let (a, b) = (upstream("a"), upstream("b"));
    let mesh = Mesh {
        port: free_port(),
        cluster: "a".into(),
        a: vec![a.addr],
        b: vec![b.addr],
    };
    let socket_dir = tempfile::tempdir().unwrap();
    let (_dir, cp, sluice) = start_on(&mesh, ads, delta, unix.then_some(socket_dir.path()));
    assert_eq!(get(mesh.port), "a\n");
    for kind in ["lds", "rds", "cds", "eds"] {
        assert!(
            stat(&sluice, &format!("xds.{kind}.update_success")) >= 1,
            "{kind}: {}",
            sluice.log()
        );
        assert_eq!(stat(&sluice, &format!("xds.{kind}.update_rejected")), 0);
    }
    assert!(stat(&sluice, "listener_manager.lds.update_success") >= 1);
    // The node's identity reached the control plane.
    let log = cp.log();
    assert!(log.contains("node=\"test-node\""), "{log}");
    // The dump shows the resources as dynamic, with the control plane's version.
    let (code, body) = http_get(sluice.admin, "/config_dump?resource=dynamic_listeners").unwrap();
    assert_eq!(code, 200, "{body}");
    let dump: serde_json::Value = serde_json::from_str(&body).unwrap();
    let first = &dump["configs"][0];
    assert_eq!(first["name"], "web", "{body}");
    if delta {
        assert!(
            first["active_state"]["version_info"].as_str().is_some(),
            "{body}"
        );
    } else {
        assert_eq!(first["active_state"]["version_info"], "1", "{body}");
    }
    assert!(
        first["active_state"]["last_updated"].as_str().is_some(),
        "{body}"
    );
    let (_, clusters) = http_get(
        sluice.admin,
        "/config_dump?resource=dynamic_active_clusters",
    )
    .unwrap();
    let clusters: serde_json::Value = serde_json::from_str(&clusters).unwrap();
    let names: Vec<&str> = clusters["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["cluster"]["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "{clusters}");
    // With include_eds, the endpoints too, each cluster's as its EDS resource.
    let (code, body) = http_get(sluice.admin, "/config_dump?include_eds").unwrap();
    assert_eq!(code, 200, "{body}");
    let dump: serde_json::Value = serde_json::from_str(&body).unwrap();
    let eds = dump["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["@type"] == "type.googleapis.com/envoy.admin.v3.EndpointsConfigDump")
        .unwrap_or_else(|| panic!("no EndpointsConfigDump: {body}"));
    let dynamic = eds["dynamic_endpoint_configs"].as_array().unwrap();
    assert_eq!(dynamic.len(), 2, "{eds}");
    assert_eq!(dynamic[0]["endpoint_config"]["cluster_name"], "a", "{eds}");
    assert!(dynamic[0]["version_info"].as_str().is_some(), "{eds}");
    assert!(
        dynamic[0]["endpoint_config"]["endpoints"][0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{eds}"
    );
}

#[test]
fn ads_state_of_the_world_brings_a_listener_routes_clusters_and_endpoints() {
    traffic_flows(true, false, false);
}

#[test]
fn ads_delta_brings_a_listener_routes_clusters_and_endpoints() {
    traffic_flows(true, true, false);
}

#[test]
fn separate_streams_bring_a_listener_routes_clusters_and_endpoints() {
    traffic_flows(false, false, false);
}

/// Over a Unix socket, too.
#[test]
fn separate_delta_streams_over_a_unix_socket_bring_a_listener_routes_clusters_and_endpoints() {
    traffic_flows(false, true, true);
}

/// A client loops requests the whole time while EDS moves cluster `a` from one upstream to
/// the other and back: no request fails. Then a route change sends the next request to `b`.
fn endpoints_and_routes_change_under_load(delta: bool) {
    let (a1, a2, b) = (upstream("a1"), upstream("a2"), upstream("b"));
    let mut mesh = Mesh {
        port: free_port(),
        cluster: "a".into(),
        a: vec![a1.addr],
        b: vec![b.addr],
    };
    let (dir, mut cp, sluice) = start(&mesh, true, delta);
    let port = mesh.port;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed, seen_a2) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let client = {
        let (stop, ok, failed, seen_a2) =
            (stop.clone(), ok.clone(), failed.clone(), seen_a2.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match http_get(format!("127.0.0.1:{port}").parse().unwrap(), "/") {
                    Ok((200, body)) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                        if body == "a2\n" {
                            seen_a2.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    other => {
                        eprintln!("request failed: {other:?}");
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        })
    };
    let eds_success = |n: u64| {
        sluice.poll("the EDS update", || {
            (stat(&sluice, "xds.eds.update_success") >= n).then_some(())
        })
    };
    let mut expected = stat(&sluice, "xds.eds.update_success");
    for round in 1..=4 {
        mesh.a = vec![if round % 2 == 1 { a2.addr } else { a1.addr }];
        mesh.write(dir.path());
        cp.push();
        expected += 1;
        eds_success(expected);
        let after = ok.load(Ordering::SeqCst) + 20;
        sluice.poll("requests after the change", || {
            (ok.load(Ordering::SeqCst) >= after).then_some(())
        });
    }
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();
    assert_eq!(failed.load(Ordering::SeqCst), 0, "{}", sluice.log());
    assert!(
        seen_a2.load(Ordering::SeqCst) > 0,
        "the endpoint change took effect"
    );
    // Only endpoints changed: the listener was never replaced (state of the world sends
    // it again with each version; unchanged, it changes nothing).
    assert!(
        !sluice.log().contains("listener config replaced"),
        "{}",
        sluice.log()
    );

    // A route change: the next request goes to `b`.
    mesh.cluster = "b".into();
    mesh.write(dir.path());
    let before = stat(&sluice, "xds.rds.update_success");
    cp.push();
    sluice.poll("the RDS update", || {
        (stat(&sluice, "xds.rds.update_success") > before).then_some(())
    });
    assert_eq!(get(port), "b\n");
}

#[test]
fn endpoints_and_routes_change_under_load_state_of_the_world() {
    endpoints_and_routes_change_under_load(false);
}

#[test]
fn endpoints_and_routes_change_under_load_delta() {
    endpoints_and_routes_change_under_load(true);
}

/// A listener Sluice cannot honour is NACKed with the resource and field named, and the
/// proxy goes on serving with what it had.
#[test]
fn an_invalid_resource_is_nacked_and_the_old_config_stays() {
    let a = upstream("a");
    let mesh = Mesh {
        port: free_port(),
        cluster: "a".into(),
        a: vec![a.addr],
        b: vec![a.addr],
    };
    let (dir, mut cp, sluice) = start(&mesh, true, false);
    assert_eq!(get(mesh.port), "a\n");
    std::fs::write(
        dir.path().join("listeners/bad.yaml"),
        format!(
            r#"name: bad
address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }}
transparent: true
filter_chains:
- filters:
  - name: tcp
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
      stat_prefix: t
      cluster: a
"#,
            free_port()
        ),
    )
    .unwrap();
    cp.push();
    let nack = cp.wait_line("the NACK", |l| {
        l.starts_with("NACK") && l.contains("type=Listener")
    });
    assert!(
        nack.contains("listener \"bad\": transparent: is not supported by Sluice"),
        "{nack}"
    );
    // The version NACKed is not the one held: the client says it still has version 1.
    assert!(nack.contains("version=\"1\""), "{nack}");
    sluice.poll("the rejection counted", || {
        (stat(&sluice, "xds.lds.update_rejected") == 1).then_some(())
    });
    assert_eq!(get(mesh.port), "a\n");

    // A resource that translates but that the loader refuses (a bad regex): NACKed with the
    // loader's message, naming the route configuration.
    std::fs::remove_file(dir.path().join("listeners/bad.yaml")).unwrap();
    std::fs::write(
        dir.path().join("routes/routes.yaml"),
        r#"name: routes
virtual_hosts:
- name: all
  domains: ["*"]
  routes:
  - match: { safe_regex: { regex: "/(unclosed" } }
    route: { cluster: a }
"#,
    )
    .unwrap();
    cp.push();
    let nack = cp.wait_line("the RDS NACK", |l| {
        l.starts_with("NACK") && l.contains("type=RouteConfiguration")
    });
    assert!(nack.contains("route configuration \"routes\""), "{nack}");
    assert_eq!(get(mesh.port), "a\n");
    assert!(stat(&sluice, "xds.rds.update_rejected") >= 1);
}

/// The same over the delta protocol: the NACK names the resource and field, the resources
/// held stay, and the next good push is taken.
#[test]
fn an_invalid_resource_is_nacked_over_delta_too() {
    let (a, b) = (upstream("a"), upstream("b"));
    let mut mesh = Mesh {
        port: free_port(),
        cluster: "a".into(),
        a: vec![a.addr],
        b: vec![b.addr],
    };
    let (dir, mut cp, sluice) = start(&mesh, true, true);
    assert_eq!(get(mesh.port), "a\n");
    std::fs::write(
        dir.path().join("clusters/bad.yaml"),
        "name: bad\ntype: STATIC\nconnect_timeout: 1s\nlb_policy: CLUSTER_PROVIDED\n",
    )
    .unwrap();
    cp.push();
    let nack = cp.wait_line("the delta NACK", |l| {
        l.starts_with("NACK delta") && l.contains("type=Cluster")
    });
    assert!(
        nack.contains("cluster \"bad\": lb_policy: CLUSTER_PROVIDED is not supported by Sluice"),
        "{nack}"
    );
    sluice.poll("the rejection counted", || {
        (stat(&sluice, "xds.cds.update_rejected") >= 1).then_some(())
    });
    assert_eq!(get(mesh.port), "a\n");
    // Fixed, with a route change: taken.
    std::fs::remove_file(dir.path().join("clusters/bad.yaml")).unwrap();
    mesh.cluster = "b".into();
    mesh.write(dir.path());
    cp.push();
    sluice.poll("the route to b", || (get(mesh.port) == "b\n").then_some(()));
    // One NACK per bad push, not a loop of re-sends.
    let nacks = cp.log().lines().filter(|l| l.starts_with("NACK")).count();
    assert!(nacks <= 2, "NACKs: {nacks}\n{}", cp.log());
}

/// The control plane goes away and comes back on the same address with new resources: the
/// proxy keeps serving meanwhile, reconnects, tells the versions it holds, and takes the
/// new ones.
#[test]
fn the_control_plane_restarts_and_the_proxy_reconnects_and_resumes() {
    let (a, b) = (upstream("a"), upstream("b"));
    let mut mesh = Mesh {
        port: free_port(),
        cluster: "a".into(),
        a: vec![a.addr],
        b: vec![b.addr],
    };
    let dir = tempfile::tempdir().unwrap();
    mesh.write(dir.path());
    let cp_port = free_port();
    let listen = format!("127.0.0.1:{cp_port}");
    let cp = ControlPlane::start(dir.path(), &listen);
    let sluice = Sluice::start(&sluice_config(&cp, true, false));
    assert_eq!(get(mesh.port), "a\n");
    drop(cp);
    sluice.poll("the stream failure", || {
        (stat(&sluice, "xds.lds.update_failure") >= 1).then_some(())
    });
    assert_eq!(
        get(mesh.port),
        "a\n",
        "the proxy serves while the control plane is away"
    );

    mesh.cluster = "b".into();
    mesh.write(dir.path());
    let mut cp = ControlPlane::start(dir.path(), &listen);
    // The new process starts at version 1 again; a second push makes version 2, which
    // differs from what the proxy holds.
    let request = cp.wait_line("the resumed request", |l| {
        l.starts_with("REQUEST") && l.contains("type=Listener")
    });
    assert!(
        request.contains("version=\"1\""),
        "resumed with the version held: {request}"
    );
    cp.push();
    sluice.poll("the route from the new control plane", || {
        (get(mesh.port) == "b\n").then_some(())
    });
}

/// 10,000 endpoints (100 EDS clusters of 100) and 1,000 routes pushed at once are applied,
/// and traffic keeps flowing on the route to the real upstream. The resources are the ones
/// `bench/xds.sh` measures (made by `bench/xds_resources.py`); the time it takes is in
/// bench/RESULTS.md, not asserted here.
#[test]
fn ten_thousand_endpoints_and_a_thousand_routes_at_once() {
    let app = upstream("app");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/xds_resources.py");
    let generate = |big: &str, seed: &str| {
        let out = std::process::Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .arg(port.to_string())
            .arg(app.addr.to_string())
            .args([big, seed])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    generate("0", "0");
    let mut cp = ControlPlane::start(dir.path(), "127.0.0.1:0");
    let sluice = Sluice::start(&sluice_config(&cp, true, false));
    assert_eq!(get(port), "app\n");

    generate("1", "1");
    cp.push();
    sluice.poll("every cluster with its 100 endpoints", || {
        let (_, stats) = http_get(sluice.admin, "/stats").unwrap();
        let full = (0..100)
            .filter(|c| stats.contains(&format!("cluster.c{c}.membership_total: 100\n")))
            .count();
        (full == 100).then_some(())
    });
    assert_eq!(
        stat(&sluice, "xds.rds.update_rejected") + stat(&sluice, "xds.eds.update_rejected"),
        0
    );
    // The 1,000 routes are in force: /r57/ goes to c57, whose endpoints listen nowhere
    // (503 after the connect failures), and / still reaches the real upstream.
    let (code, _) = http_get(format!("127.0.0.1:{port}").parse().unwrap(), "/r57/x").unwrap();
    assert_eq!(code, 503);
    assert_eq!(get(port), "app\n");

    // Every endpoint changes (another port): applied in place, the listener untouched.
    generate("1", "2");
    let before = stat(&sluice, "xds.eds.update_success");
    cp.push();
    sluice.poll("the endpoint-only update", || {
        (stat(&sluice, "xds.eds.update_success") > before).then_some(())
    });
    assert_eq!(get(port), "app\n");
    assert!(!sluice.log().contains("listener config replaced"));
}

/// SIGHUP reloads the file and keeps what the control plane sent: the file's own listener
/// changes, the xDS listener serves on.
#[test]
fn a_file_reload_keeps_the_resources_from_the_control_plane() {
    let (a, b) = (upstream("a"), upstream("b"));
    let mesh = Mesh {
        port: free_port(),
        cluster: "a".into(),
        a: vec![a.addr],
        b: vec![b.addr],
    };
    let dir = tempfile::tempdir().unwrap();
    mesh.write(dir.path());
    let cp = ControlPlane::start(dir.path(), "127.0.0.1:0");
    let static_port = free_port();
    // A listener of the file's own, to a cluster of the file's own (`direct`); its answer
    // changes with the file.
    let file = |body: &str| {
        format!(
            r#"{}listeners:
  - name: local
    address: "127.0.0.1:{static_port}"
    filters:
      - http_proxy:
          routes: [{{ match: {{ prefix: / }}, direct_response: {{ status: 200, body: "{body}" }} }}]
"#,
            sluice_config(&cp, true, false)
        )
    };
    let sluice = Sluice::start(&file("one"));
    assert_eq!(get(static_port), "one");
    assert_eq!(get(mesh.port), "a\n");
    std::fs::write(
        &sluice.config,
        file("two").replace("{admin}", &sluice.admin.to_string()),
    )
    .unwrap();
    sluice.signal("HUP");
    sluice.poll("the reload", || {
        (stat(&sluice, "config_reload.update_success") >= 1 && get(static_port) == "two")
            .then_some(())
    });
    assert_eq!(get(mesh.port), "a\n", "the xDS listener is still there");
    assert_eq!(
        stat(&sluice, "config_reload.update_rejected"),
        0,
        "{}",
        sluice.log()
    );
}

/// Envoy's RBAC filters over LDS, as Istio writes them: a network one that lets local
/// clients connect, an HTTP DENY filter on a header, then an HTTP ALLOW filter for GETs under
/// /ok/ from web's SPIFFE ID or 127.0.0.1. They become native `rbac` filters: allowed
/// requests reach the upstream, denied ones get Envoy's 403, and the counters carry Envoy's
/// names (`rules_stat_prefix` as a level of its own).
#[test]
fn rbac_filters_from_the_control_plane_allow_and_deny() {
    let a = upstream("a");
    let mesh = Mesh {
        port: free_port(),
        cluster: "a".into(),
        a: vec![a.addr],
        b: vec![a.addr],
    };
    let dir = tempfile::tempdir().unwrap();
    mesh.write(dir.path());
    std::fs::write(
        dir.path().join("listeners/web.yaml"),
        format!(
            r#"name: web
address: {{ socket_address: {{ address: 127.0.0.1, port_value: {} }} }}
filter_chains:
- filters:
  - name: envoy.filters.network.rbac
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
      stat_prefix: tcp.
      rules:
        action: ALLOW
        policies:
          local:
            permissions: [ {{ any: true }} ]
            principals: [ {{ remote_ip: {{ address_prefix: 127.0.0.0, prefix_len: 8 }} }} ]
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: ingress_http
      rds: {{ route_config_name: routes, config_source: {{ ads: {{}}, resource_api_version: V3 }} }}
      http_filters:
      - name: envoy.filters.http.rbac
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
          rules:
            action: DENY
            policies:
              blocked:
                permissions: [ {{ header: {{ name: x-blocked, string_match: {{ exact: "yes" }} }} }} ]
                principals: [ {{ any: true }} ]
      - name: envoy.filters.http.rbac
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
          rules_stat_prefix: allow_
          rules:
            action: ALLOW
            policies:
              "ns[default]-policy[web-reads-ok]-rule[0]":
                permissions:
                - and_rules:
                    rules:
                    - or_rules: {{ rules: [ {{ header: {{ name: ":method", string_match: {{ exact: GET }} }} }} ] }}
                    - or_rules: {{ rules: [ {{ url_path: {{ path: {{ prefix: /ok/ }} }} }} ] }}
                principals:
                - or_ids:
                    ids:
                    - authenticated: {{ principal_name: {{ exact: "spiffe://cluster.local/ns/default/sa/web" }} }}
                    - direct_remote_ip: {{ address_prefix: 127.0.0.1, prefix_len: 32 }}
      - name: envoy.filters.http.router
        typed_config: {{ "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }}
"#,
            mesh.port
        ),
    )
    .unwrap();
    let cp = ControlPlane::start(dir.path(), "127.0.0.1:0");
    let sluice = Sluice::start(&sluice_config(&cp, true, false));
    assert_eq!(
        stat(&sluice, "xds.lds.update_rejected"),
        0,
        "{}\n{}",
        cp.log(),
        sluice.log()
    );
    let request = |path: &str, extra: &[&str]| {
        let url = format!("http://127.0.0.1:{}{path}", mesh.port);
        let mut args = vec![url.as_str()];
        args.extend_from_slice(extra);
        curl(&args)
    };
    let ok = request("/ok/page", &[]);
    assert_eq!((ok.status, ok.text().as_str()), (200, "a\n"));
    for (path, extra) in [
        ("/ok/page", &["-H", "x-blocked: yes"][..]),
        ("/elsewhere", &[][..]),
        ("/ok/page", &["-X", "DELETE"][..]),
    ] {
        let denied = request(path, extra);
        assert_eq!(
            (denied.status, denied.text().as_str()),
            (403, "RBAC: access denied"),
            "{path} {extra:?}"
        );
    }
    // The DENY filter stopped one request and let three on; the ALLOW filter (under its
    // prefix) took one of those and refused two.
    assert_eq!(stat(&sluice, "http.ingress_http.rbac.denied"), 1);
    assert_eq!(stat(&sluice, "http.ingress_http.rbac.allowed"), 3);
    assert_eq!(stat(&sluice, "http.ingress_http.allow.rbac.allowed"), 1);
    assert_eq!(stat(&sluice, "http.ingress_http.allow.rbac.denied"), 2);
    // One decision per connection, each allowed.
    assert!(stat(&sluice, "tcp.rbac.allowed") >= 4, "{}", sluice.log());
    assert_eq!(stat(&sluice, "tcp.rbac.denied"), 0);
}
