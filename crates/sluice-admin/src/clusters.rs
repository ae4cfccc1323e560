//! `/clusters` and `/stats`: what each cluster holds and has counted, in Envoy's text formats
//! (`web::127.0.0.1:9001::health_flags::healthy`, `cluster.web.upstream_rq_total: 37`), so
//! tooling written for Envoy's admin reads them unchanged.

use std::fmt::Write as _;

use sluice_upstream::host::health;
use sluice_upstream::{Cluster, ClusterManager};

/// One line per host attribute, then the cluster's breaker limits.
pub fn clusters(manager: &ClusterManager) -> String {
    let mut out = String::new();
    for c in manager.all() {
        let name = &c.name;
        let limits = c.breakers.limits;
        for (key, value) in [
            ("max_connections", limits.max_connections),
            ("max_pending_requests", limits.max_pending_requests),
            ("max_requests", limits.max_requests),
            ("max_retries", limits.max_retries),
        ] {
            let _ = writeln!(out, "{name}::default_priority::{key}::{value}");
        }
        let snapshot = c.snapshot();
        for subset in snapshot.subset_names() {
            let _ = writeln!(out, "{name}::subset::{subset}");
        }
        for h in snapshot.hosts() {
            let a = &h.address;
            let _ = writeln!(
                out,
                "{name}::{a}::health_flags::{}",
                flags(h.health_flags())
            );
            let _ = writeln!(out, "{name}::{a}::weight::{}", h.weight);
            let _ = writeln!(out, "{name}::{a}::region::{}", h.locality.region);
            let _ = writeln!(out, "{name}::{a}::zone::{}", h.locality.zone);
            let _ = writeln!(out, "{name}::{a}::sub_zone::{}", h.locality.sub_zone);
            let _ = writeln!(out, "{name}::{a}::priority::{}", h.priority);
            let _ = writeln!(out, "{name}::{a}::rq_active::{}", h.active_requests());
            let metadata: Vec<String> =
                h.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "{name}::{a}::metadata::{}", metadata.join(","));
        }
    }
    out
}

/// `healthy`, or Envoy's failure flags joined: `/failed_active_hc/failed_outlier_check`.
fn flags(bits: u8) -> String {
    let mut s = String::new();
    for (bit, name) in [
        (health::FAILED_ACTIVE_HC, "/failed_active_hc"),
        (health::FAILED_OUTLIER, "/failed_outlier_check"),
        (health::PENDING_ACTIVE_HC, "/pending_active_hc"),
    ] {
        if bits & bit != 0 {
            s.push_str(name);
        }
    }
    if s.is_empty() {
        "healthy".into()
    } else {
        s
    }
}

/// `cluster.<name>.<stat>: value` lines, sorted.
pub fn stats(manager: &ClusterManager) -> Vec<(String, u64)> {
    let mut lines = Vec::new();
    for c in manager.all() {
        for (stat, value) in cluster_stats(&c) {
            lines.push((format!("cluster.{}.{stat}", c.name), value));
        }
    }
    lines.sort();
    lines
}

fn cluster_stats(c: &Cluster) -> Vec<(&'static str, u64)> {
    let mut v = c.stats.counters();
    let snapshot = c.snapshot();
    let hosts = snapshot.hosts();
    let count =
        |f: &dyn Fn(u8) -> bool| hosts.iter().filter(|h| f(h.health_flags())).count() as u64;
    let (requests, pending, retries, connections) = c.breakers.active();
    v.extend([
        ("membership_total", hosts.len() as u64),
        (
            "membership_healthy",
            count(&|f| f & (health::FAILED_ACTIVE_HC | health::FAILED_OUTLIER) == 0),
        ),
        (
            "outlier_detection.ejections_active",
            count(&|f| f & health::FAILED_OUTLIER != 0),
        ),
        ("upstream_rq_active", u64::from(requests)),
        ("upstream_rq_pending_active", u64::from(pending)),
        ("upstream_rq_retry_active", u64::from(retries)),
        ("upstream_cx_active", u64::from(connections)),
    ]);
    v
}
