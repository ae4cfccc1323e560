//! A cluster's metrics, named as Envoy names them (`cluster.<name>.upstream_rq_total`, tag
//! `envoy.cluster_name`), so existing dashboards read them unchanged. Counters and
//! histograms live in the process's stats store, by name, so a cluster rebuilt on reload
//! keeps counting; gauges that are a view of the cluster (members, requests in flight) are
//! computed at each scrape by [`gauges`].

use std::sync::Arc;

use sluice_stats::{Counter, Histogram, Name, ResponseCodes, Scope, Store};

use crate::host::health;
use crate::Cluster;

macro_rules! counters {
    ($($field:ident => $name:literal),* $(,)?) => {
        #[derive(Debug)]
        pub struct ClusterStats {
            $(pub $field: Arc<Counter>,)*
            /// Time to connect (TCP, and TLS when the cluster has it), successful connects.
            pub upstream_cx_connect_ms: Arc<Histogram>,
            /// Time from sending a request to its complete response head (HTTP) or response
            /// (RPC).
            pub upstream_rq_time: Arc<Histogram>,
            /// `upstream_rq_<code>` and `upstream_rq_<N>xx`.
            pub upstream_rq: ResponseCodes,
        }

        impl ClusterStats {
            fn in_store(scope: &Scope, store: &Store) -> ClusterStats {
                ClusterStats {
                    $($field: store.counter_named(scope.name($name)),)*
                    upstream_cx_connect_ms: store
                        .histogram_named(scope.name("upstream_cx_connect_ms")),
                    upstream_rq_time: store.histogram_named(scope.name("upstream_rq_time")),
                    upstream_rq: ResponseCodes::new(scope, "upstream_rq"),
                }
            }
        }
    };
}

counters! {
    upstream_rq_total => "upstream_rq_total",
    upstream_rq_pending_overflow => "upstream_rq_pending_overflow",
    upstream_rq_retry => "upstream_rq_retry",
    upstream_rq_retry_overflow => "upstream_rq_retry_overflow",
    upstream_rq_timeout => "upstream_rq_timeout",
    upstream_rq_per_try_timeout => "upstream_rq_per_try_timeout",
    upstream_cx_total => "upstream_cx_total",
    upstream_cx_connect_fail => "upstream_cx_connect_fail",
    upstream_cx_connect_timeout => "upstream_cx_connect_timeout",
    upstream_cx_overflow => "upstream_cx_overflow",
    outlier_ejections_total => "outlier_detection.ejections_total",
    outlier_ejections_consecutive_5xx => "outlier_detection.ejections_consecutive_5xx",
    outlier_ejections_gateway_failure => "outlier_detection.ejections_consecutive_gateway_failure",
    outlier_ejections_success_rate => "outlier_detection.ejections_success_rate",
    outlier_ejections_overflow => "outlier_detection.ejections_overflow",
    health_check_attempt => "health_check.attempt",
    health_check_success => "health_check.success",
    health_check_failure => "health_check.failure",
    membership_change => "membership_change",
    dns_resolve_failure => "dns.resolve_failure",
}

impl ClusterStats {
    /// The metrics of cluster `name` in the process's store.
    pub fn new(name: &str) -> ClusterStats {
        Self::in_store(&Scope::cluster(name), sluice_stats::store())
    }

    /// Metrics of their own, in no store: unit tests, which make many clusters of one name
    /// at once, count apart.
    pub fn detached(name: &str) -> ClusterStats {
        Self::in_store(&Scope::cluster(name), &Store::default())
    }

    pub fn add(counter: &Counter) {
        counter.inc();
    }

    /// Counts a connection attempt's outcome: `upstream_cx_total` always, then its time in
    /// `upstream_cx_connect_ms`, or `upstream_cx_connect_fail` (and `_timeout`, also a
    /// failure, as Envoy counts both).
    pub fn connected<T>(&self, started: std::time::Instant, result: &std::io::Result<T>) {
        self.upstream_cx_total.inc();
        match result {
            Ok(_) => self
                .upstream_cx_connect_ms
                .record_duration(started.elapsed()),
            Err(e) => {
                self.upstream_cx_connect_fail.inc();
                if e.kind() == std::io::ErrorKind::TimedOut {
                    self.upstream_cx_connect_timeout.inc();
                }
            }
        }
    }
}

/// The gauges that are views of `c` now: members by health, requests and connections in
/// flight (from its circuit breakers, which count them anyway).
pub fn gauges(c: &Cluster, out: &mut Vec<(Name, i64)>) {
    let scope = Scope::cluster(&c.name);
    let snapshot = c.snapshot();
    let hosts = snapshot.hosts();
    let count = |f: &dyn Fn(u8) -> bool| hosts.iter().filter(|h| f(h.health_flags())).count();
    let (requests, pending, retries, connections) = c.breakers.active();
    for (name, value) in [
        ("membership_total", hosts.len()),
        (
            "membership_healthy",
            count(&|f| f & (health::FAILED_ACTIVE_HC | health::FAILED_OUTLIER) == 0),
        ),
        // No degraded state (Envoy's from health checks answering "degraded") exists yet.
        ("membership_degraded", 0),
        (
            "outlier_detection.ejections_active",
            count(&|f| f & health::FAILED_OUTLIER != 0),
        ),
        ("upstream_rq_active", requests as usize),
        ("upstream_rq_pending_active", pending as usize),
        ("upstream_rq_retry_active", retries as usize),
        ("upstream_cx_active", connections as usize),
    ] {
        out.push((scope.name(name), i64::try_from(value).unwrap_or(i64::MAX)));
    }
}
