//! DNS clusters end to end: dnsmasq as the name server, nginx instances on distinct loopback
//! addresses sharing one port as the hosts a name resolves to, curl as the client. The tests
//! rewrite dnsmasq's hosts file and watch traffic and `/clusters` follow.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;

use common::curl::curl;
use common::dnsmasq::Dnsmasq;
use common::http1::{read_body, read_head};
use common::nginx::Nginx;
use common::*;

/// Sluice routing everything on one HTTP listener to the cluster `backend` described by
/// `cluster` (its YAML fields after the name).
fn start(cluster: &str) -> (Sluice, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let yaml = format!(
        "admin: {{ address: \"{{admin}}\" }}
workers: 1
listeners:
  - name: web
    address: \"{addr}\"
    filters:
      - http_proxy: {{ routes: [{{ match: {{ prefix: / }}, route: {{ cluster: backend }} }}] }}
clusters:
  - name: backend
    protocol: http1
    connect_timeout: 2s
{cluster}"
    );
    (Sluice::start(&yaml), addr)
}

/// A DNS cluster of one name, refreshed every 200ms from `dns`.
fn dns_cluster(kind: &str, dns: &Dnsmasq, endpoint: &str) -> String {
    format!(
        "    type: {kind}
    dns_refresh_rate: 200ms
    dns_resolvers: [\"{}\"]
    endpoints: [{{ address: \"{endpoint}\" }}]
",
        dns.addr
    )
}

/// nginx answering `body` everywhere, on `ip:port`.
fn answering(ip: &str, port: u16, body: &str) -> Nginx {
    Nginx::serving_on(
        format!("{ip}:{port}").parse().unwrap(),
        &format!(r#"location / {{ return 200 "{body}"; }}"#),
    )
}

/// The body of one request through sluice, or its status when that is not 200.
fn fetch(addr: SocketAddr) -> String {
    let r = curl(&[&format!("http://{addr}/")]);
    if r.status == 200 {
        r.text()
    } else {
        format!("{} {}", r.status, r.text().trim_end())
    }
}

/// The host addresses `/clusters` lists for `backend`.
fn members(s: &Sluice) -> BTreeSet<String> {
    let (status, body) = http_get(s.admin, "/clusters").unwrap();
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter_map(|l| l.strip_prefix("backend::"))
        .filter_map(|l| l.split_once("::health_flags::"))
        .map(|(address, _)| address.to_string())
        .collect()
}

/// The value `/stats` shows for `cluster.backend.<name>`.
fn stat(s: &Sluice, name: &str) -> u64 {
    let (status, body) = http_get(s.admin, "/stats").unwrap();
    assert_eq!(status, 200, "{body}");
    let key = format!("cluster.backend.{name}: ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /stats:\n{body}"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn strict_dns_follows_the_names_addresses() {
    let port = free_port();
    let (a, b) = (
        answering("127.0.0.2", port, "A"),
        answering("127.0.0.3", port, "B"),
    );
    let dns = Dnsmasq::start(&[("127.0.0.2", "backend.test")]);
    let (s, addr) = start(&dns_cluster(
        "strict_dns",
        &dns,
        &format!("backend.test:{port}"),
    ));

    // Ready does not wait for DNS; the first answer arrives without a refresh interval.
    s.poll("the first resolution", || {
        (fetch(addr) == "A").then_some(())
    });
    for _ in 0..10 {
        assert_eq!(fetch(addr), "A");
    }
    assert_eq!(members(&s), set(&[&a.addr.to_string()]));

    dns.set_hosts(&[("127.0.0.2", "backend.test"), ("127.0.0.3", "backend.test")]);
    let mut seen = BTreeSet::new();
    s.poll("both hosts answering", || {
        seen.insert(fetch(addr));
        (seen == set(&["A", "B"])).then_some(())
    });
    assert_eq!(
        members(&s),
        set(&[&a.addr.to_string(), &b.addr.to_string()])
    );

    dns.set_hosts(&[("127.0.0.3", "backend.test")]);
    s.poll("A to leave /clusters", || {
        (members(&s) == set(&[&b.addr.to_string()])).then_some(())
    });
    for _ in 0..10 {
        assert_eq!(fetch(addr), "B");
    }
    assert_eq!(stat(&s, "membership_change"), 3);
    assert!(
        s.log().contains("cluster membership changed"),
        "{}",
        s.log()
    );
}

/// An upstream on `addr` answering "A", except that `/slow` waits for the test: it reports
/// the request on `arrived`, then answers "slow done" once the test also waits on `release`.
fn gated(addr: SocketAddr, arrived: mpsc::Sender<()>, release: Arc<Barrier>) {
    let listener = TcpListener::bind(addr).unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let (arrived, release) = (arrived.clone(), release.clone());
            thread::spawn(move || {
                let mut r = BufReader::new(conn);
                while let Ok(Some((line, headers))) = read_head(&mut r) {
                    if read_body(&mut r, &headers).is_err() {
                        return;
                    }
                    let body = if line.contains(" /slow ") {
                        let _ = arrived.send(());
                        release.wait();
                        "slow done"
                    } else {
                        "A"
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if r.get_mut().write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

#[test]
fn logical_dns_moves_new_requests_and_lets_old_ones_finish() {
    let port = free_port();
    let a: SocketAddr = format!("127.0.0.4:{port}").parse().unwrap();
    let (arrived_tx, arrived) = mpsc::channel();
    let release = Arc::new(Barrier::new(2));
    gated(a, arrived_tx, release.clone());
    let b = answering("127.0.0.5", port, "B");
    let dns = Dnsmasq::start(&[("127.0.0.4", "app.test")]);
    let (s, addr) = start(&dns_cluster(
        "logical_dns",
        &dns,
        &format!("app.test:{port}"),
    ));

    s.poll("the first resolution", || {
        (fetch(addr) == "A").then_some(())
    });
    // A request in flight to the host that is about to be replaced.
    let in_flight = thread::spawn(move || curl(&[&format!("http://{addr}/slow")]));
    arrived.recv_timeout(DEADLINE).expect("/slow reached A");

    dns.set_hosts(&[("127.0.0.5", "app.test")]);
    s.poll("new requests to reach B", || {
        (fetch(addr) == "B").then_some(())
    });
    assert_eq!(members(&s), set(&[&b.addr.to_string()]));

    // A is waiting at the barrier already, so this returns at once.
    release.wait();
    let r = in_flight.join().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "slow done"), "{r:?}");
    assert_eq!(fetch(addr), "B");
}

#[test]
fn a_name_without_addresses_answers_503_and_the_process_stays_up() {
    let dns = Dnsmasq::start(&[("127.0.0.2", "other.test")]);
    let (mut s, addr) = start(&dns_cluster("strict_dns", &dns, "nope.test:80"));

    // Wait until a second A query: the first answer (NXDOMAIN) has been taken in by then.
    s.poll("two refreshes", || {
        (dns.log().matches("query[A] nope.test").count() >= 2).then_some(())
    });
    let r = curl(&[&format!("http://{addr}/")]);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text().contains("has no endpoints"), "{r:?}");
    assert!(members(&s).is_empty());

    assert!(s.child.as_mut().unwrap().try_wait().unwrap().is_none());
    assert_eq!(http_get(s.admin, "/ready").unwrap().0, 200);
}

#[test]
fn a_silent_name_server_counts_failures_and_the_process_stays_up() {
    // Nothing listens there: every lookup fails.
    let resolver = refused_addr();
    let (mut s, addr) = start(&format!(
        "    type: strict_dns
    dns_refresh_rate: 200ms
    dns_resolvers: [\"{resolver}\"]
    endpoints: [{{ address: \"backend.test:80\" }}]
"
    ));
    s.poll("a counted failure", || {
        (stat(&s, "dns.resolve_failure") > 0).then_some(())
    });
    let r = curl(&[&format!("http://{addr}/")]);
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.text().contains("has no endpoints"), "{r:?}");
    assert!(s.log().contains("DNS resolution failed"), "{}", s.log());
    assert!(s.child.as_mut().unwrap().try_wait().unwrap().is_none());
    assert_eq!(http_get(s.admin, "/ready").unwrap().0, 200);
}
