//! `/clusters`: what each cluster holds, in Envoy's text format
//! (`web::127.0.0.1:9001::health_flags::healthy`), so tooling written for Envoy's admin reads
//! it unchanged. Cluster metrics are in the stats store, with the rest.

use std::fmt::Write as _;

use sluice_upstream::host::health;
use sluice_upstream::ClusterManager;

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
