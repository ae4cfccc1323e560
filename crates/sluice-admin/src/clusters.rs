//! `/clusters`: what each cluster holds, in Envoy's formats
//! (`web::127.0.0.1:9001::health_flags::healthy`, and `/clusters?format=json` as Envoy's
//! `ClusterStatuses`), so tooling written for Envoy's admin reads it unchanged. Cluster
//! metrics are in the stats store, with the rest.

use std::fmt::Write as _;

use serde_json::{json, Value};
use sluice_config::Address;
use sluice_upstream::host::health;
use sluice_upstream::{Cluster, ClusterManager, Host};

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
            let (rq_error, rq_timeout) = h.requests_failed();
            let cx = h.connections();
            let _ = writeln!(out, "{name}::{a}::cx_active::{}", cx.active());
            let _ = writeln!(out, "{name}::{a}::cx_total::{}", cx.total());
            let _ = writeln!(out, "{name}::{a}::cx_connect_fail::{}", cx.connect_fail());
            let _ = writeln!(out, "{name}::{a}::rq_active::{}", h.active_requests());
            let _ = writeln!(out, "{name}::{a}::rq_total::{}", h.requests_total());
            let _ = writeln!(out, "{name}::{a}::rq_error::{rq_error}");
            let _ = writeln!(out, "{name}::{a}::rq_timeout::{rq_timeout}");
            if let Some(hostname) = &h.hostname {
                let _ = writeln!(out, "{name}::{a}::hostname::{hostname}");
            }
            if c.config.outlier_detection.is_some() {
                let (left, ejections) = h.outlier_status();
                let _ = writeln!(out, "{name}::{a}::outlier_ejections::{ejections}");
                if let Some(left) = left {
                    let _ = writeln!(
                        out,
                        "{name}::{a}::outlier_ejection_remaining::{:.3}s",
                        left.as_secs_f64()
                    );
                }
            }
            let metadata: Vec<String> =
                h.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(out, "{name}::{a}::metadata::{}", metadata.join(","));
        }
    }
    out
}

/// Envoy's `ClusterStatuses`: each cluster with its hosts' address, counters, health flags,
/// weight, locality and priority; plus `outlier_detection` (ejected for how long, recent
/// ejections) for clusters that have it. Counters are JSON numbers.
pub fn clusters_json(manager: &ClusterManager) -> Value {
    let statuses: Vec<Value> = manager
        .all()
        .iter()
        .map(|c| {
            let snapshot = c.snapshot();
            let hosts: Vec<Value> = snapshot.hosts().iter().map(|h| host_json(c, h)).collect();
            json!({ "name": &*c.name, "added_via_api": false, "host_statuses": hosts })
        })
        .collect();
    json!({ "cluster_statuses": statuses })
}

fn host_json(c: &Cluster, h: &Host) -> Value {
    let bits = h.health_flags();
    let (rq_error, rq_timeout) = h.requests_failed();
    let stat =
        |name: &str, kind: &str, value: u64| json!({ "name": name, "type": kind, "value": value });
    let address = match &h.address {
        Address::Tcp(a) => {
            json!({ "socket_address": { "address": a.ip().to_string(), "port_value": a.port() } })
        }
        Address::Unix(p) => json!({ "pipe": { "path": p.display().to_string() } }),
    };
    let mut v = json!({
        "address": address,
        "stats": [
            stat("cx_active", "GAUGE", u64::from(h.connections().active())),
            stat("cx_total", "COUNTER", h.connections().total()),
            stat("cx_connect_fail", "COUNTER", h.connections().connect_fail()),
            stat("rq_active", "GAUGE", u64::from(h.active_requests())),
            stat("rq_total", "COUNTER", h.requests_total()),
            stat("rq_error", "COUNTER", rq_error),
            stat("rq_timeout", "COUNTER", rq_timeout),
        ],
        "health_status": {
            "eds_health_status": if h.is_healthy() { "HEALTHY" } else { "UNHEALTHY" },
            "failed_active_health_check": bits & health::FAILED_ACTIVE_HC != 0,
            "failed_outlier_check": bits & health::FAILED_OUTLIER != 0,
            "pending_active_hc": bits & health::PENDING_ACTIVE_HC != 0,
        },
        "weight": h.weight,
        "locality": {
            "region": &*h.locality.region,
            "zone": &*h.locality.zone,
            "sub_zone": &*h.locality.sub_zone,
        },
        "priority": h.priority,
        "metadata": h
            .metadata
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect::<serde_json::Map<String, Value>>(),
    });
    if let Some(hostname) = &h.hostname {
        v["hostname"] = json!(&**hostname);
    }
    if c.config.outlier_detection.is_some() {
        let (left, ejections) = h.outlier_status();
        v["outlier_detection"] = json!({
            "ejected": left.is_some(),
            "ejection_remaining": left.map(|d| format!("{:.3}s", d.as_secs_f64())),
            "recent_ejections": ejections,
        });
    }
    v
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
