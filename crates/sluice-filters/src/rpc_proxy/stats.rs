//! An `rpc_proxy`'s metrics: per listener (`rpc.<stat_prefix>.downstream_rq_total`) and per
//! service called (`rpc.<stat_prefix>.service.<service>.rq_total`, tags `envoy.rpc_prefix`
//! and `sluice.rpc_service`).
//!
//! Services come from the wire, so their number is bounded: past [`MAX_SERVICES`] on one
//! listener, new ones count under `service.overflow`. A known service is found by `&str`
//! under a read lock, without allocating.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;
use sluice_stats::{tag, Counter, Gauge, Histogram, Scope};

/// Services counted apart on one listener; more go to `overflow`.
pub const MAX_SERVICES: usize = 1000;

pub struct RpcStats {
    pub downstream_rq_total: Arc<Counter>,
    pub downstream_rq_active: Arc<Gauge>,
    scope: Scope,
    services: RwLock<HashMap<Box<str>, Arc<ServiceStats>>>,
    /// Made when first needed, so `/stats` shows it only when services overflowed.
    overflow: OnceLock<Arc<ServiceStats>>,
}

/// One service's calls.
pub struct ServiceStats {
    pub rq_total: Arc<Counter>,
    /// Answered with the protocol's success status.
    pub rq_success: Arc<Counter>,
    /// Answered otherwise: an error status (the application's or the server's), or a local
    /// reply (no route, no host, timeout, overflow).
    pub rq_error: Arc<Counter>,
    /// From the request read to the response ready to write (ms).
    pub rq_time: Arc<Histogram>,
}

impl ServiceStats {
    fn new(scope: &Scope, service: &str) -> ServiceStats {
        let scope = scope.tagged("service", tag::RPC_SERVICE, service);
        ServiceStats {
            rq_total: scope.counter("rq_total"),
            rq_success: scope.counter("rq_success"),
            rq_error: scope.counter("rq_error"),
            rq_time: scope.histogram("rq_time"),
        }
    }
}

impl RpcStats {
    pub fn new(stat_prefix: &str) -> RpcStats {
        let scope = Scope::rpc(stat_prefix);
        RpcStats {
            downstream_rq_total: scope.counter("downstream_rq_total"),
            downstream_rq_active: scope.gauge("downstream_rq_active"),
            overflow: OnceLock::new(),
            scope,
            services: RwLock::new(HashMap::new()),
        }
    }

    /// The scope the listener's other metrics (its stream filters') go under.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The stats of `service` (an empty name is `unknown`).
    pub fn service(&self, service: &str) -> Arc<ServiceStats> {
        let service = if service.is_empty() {
            "unknown"
        } else {
            service
        };
        if let Some(s) = self.services.read().get(service) {
            return s.clone();
        }
        let mut services = self.services.write();
        if let Some(s) = services.get(service) {
            return s.clone();
        }
        if services.len() >= MAX_SERVICES {
            return self
                .overflow
                .get_or_init(|| Arc::new(ServiceStats::new(&self.scope, "overflow")))
                .clone();
        }
        let stats = Arc::new(ServiceStats::new(&self.scope, service));
        services.insert(service.into(), stats.clone());
        stats
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn services_are_bounded() {
        let stats = RpcStats::new("bounded_test");
        for i in 0..MAX_SERVICES + 5 {
            stats.service(&format!("svc{i}")).rq_total.inc();
        }
        stats.service("svc0").rq_total.inc();
        let v = |n: &str| sluice_stats::store().value(n);
        assert_eq!(v("rpc.bounded_test.service.svc0.rq_total"), Some(2));
        assert_eq!(v("rpc.bounded_test.service.overflow.rq_total"), Some(5));
        assert_eq!(
            v(&format!(
                "rpc.bounded_test.service.svc{MAX_SERVICES}.rq_total"
            )),
            None
        );
        assert!(Arc::ptr_eq(&stats.service("svc7"), &stats.service("svc7")));
    }
}
