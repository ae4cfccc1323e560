//! A cluster's counters, named as Envoy names them (`cluster.<name>.upstream_rq_total`), so
//! existing dashboards read them unchanged. Gauges (active requests, healthy members) are
//! computed when read.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($field:ident => $name:literal),* $(,)?) => {
        /// Counters only ever go up.
        #[derive(Debug, Default)]
        pub struct ClusterStats {
            $(pub $field: AtomicU64,)*
        }

        impl ClusterStats {
            /// Every counter as (Envoy's name, value).
            pub fn counters(&self) -> Vec<(&'static str, u64)> {
                vec![$(($name, self.$field.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    upstream_rq_total => "upstream_rq_total",
    upstream_rq_pending_overflow => "upstream_rq_pending_overflow",
    upstream_rq_retry => "upstream_rq_retry",
    upstream_rq_retry_overflow => "upstream_rq_retry_overflow",
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
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
