//! Health checks by protocol heartbeat (`health_check: { heartbeat: { protocol } }`) against
//! the real peers: a sofa-rpc-node Bolt server and an Apache Dubbo provider. A frozen process
//! (SIGSTOP) still completes TCP handshakes from the kernel's backlog, so a TCP check would
//! call it healthy; its heartbeat goes unanswered, so the heartbeat check takes it out, and
//! calls go to the other host until it thaws.

#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use common::bolt::{BoltClient, BoltServer};
use common::dubbo::{Consumer, Provider};
use common::rpc::{self, all_to, cluster};
use common::{http_get, signal, Sluice};

/// Sluice with one `rpc_proxy` listener for `protocol`, every call routed to the cluster
/// `echo` of `hosts`, heartbeat-checked every 200ms (one missed answer takes a host out, one
/// answer brings it back).
fn start(protocol: &str, hosts: &[SocketAddr]) -> (Sluice, SocketAddr) {
    let clusters = format!(
        "{}    health_check:\n      heartbeat: {{ protocol: {protocol} }}\n      interval: 200ms\n      timeout: 1s\n      unhealthy_threshold: 2\n      healthy_threshold: 1\n",
        cluster("echo", hosts)
    );
    rpc::start(protocol, "", &all_to("echo"), &clusters)
}

/// The `/clusters` health flags of `host` in the cluster `echo`.
fn health(s: &Sluice, host: SocketAddr) -> String {
    let (status, body) = http_get(s.admin, "/clusters").unwrap();
    assert_eq!(status, 200, "{body}");
    let prefix = format!("echo::{host}::health_flags::");
    body.lines()
        .find_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .unwrap_or_default()
}

/// Waits until `host`'s flags say `healthy` (or, with `healthy` false, hold
/// `failed_active_hc`).
fn wait_health(s: &Sluice, host: SocketAddr, healthy: bool) {
    let what = if healthy {
        "healthy"
    } else {
        "failed_active_hc"
    };
    s.poll(&format!("{host} to be {what}"), || {
        let flags = health(s, host);
        let done = if healthy {
            flags == "healthy"
        } else {
            flags.contains("failed_active_hc")
        };
        done.then_some(())
    });
}

#[test]
fn a_frozen_bolt_server_fails_its_heartbeats_and_returns_when_it_answers_again() {
    let a = BoltServer::start("A");
    let b = BoltServer::start("B");
    let (s, addr) = start("bolt", &[a.addr, b.addr]);
    wait_health(&s, a.addr, true);
    wait_health(&s, b.addr, true);
    let calls = || BoltClient::new(addr).count(40).concurrency(4).run();
    let run = calls();
    assert_eq!((run.ok, run.mismatched), (40, 0), "{}", run.raw);
    assert_eq!(run.tags.len(), 2, "both hosts serve: {}", run.raw);

    let pid = b.pid().unwrap();
    signal(pid, "STOP");
    wait_health(&s, b.addr, false);
    assert_eq!(health(&s, a.addr), "healthy");
    let run = calls();
    signal(pid, "CONT");
    assert_eq!((run.ok, run.errors), (40, 0), "{}", run.raw);
    assert_eq!(run.tags.keys().collect::<Vec<_>>(), ["A"], "{}", run.raw);

    wait_health(&s, b.addr, true);
    let run = calls();
    assert_eq!((run.ok, run.tags.len()), (40, 2), "{}", run.raw);
}

#[test]
fn a_dubbo_provider_is_checked_by_its_heartbeat() {
    let a = Provider::start("A");
    let b = Provider::start("B");
    let (s, addr) = start("dubbo", &[a.addr, b.addr]);
    wait_health(&s, a.addr, true);
    wait_health(&s, b.addr, true);

    signal(b.pid(), "STOP");
    wait_health(&s, b.addr, false);
    assert_eq!(health(&s, a.addr), "healthy");
    let report = Consumer::new(addr).count(40).concurrency(4).run();
    signal(b.pid(), "CONT");
    assert_eq!((report.ok, report.errors), (40, 0), "{}", report.raw);
    assert_eq!(
        report.tags.keys().collect::<Vec<_>>(),
        ["A"],
        "{}",
        report.raw
    );
    wait_health(&s, b.addr, true);
}
