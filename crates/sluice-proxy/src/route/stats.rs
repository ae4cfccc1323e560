//! A route's own counters, for routes with a `stat_prefix` (Envoy's route stats):
//! `vhost.<virtual host>.route.<stat_prefix>.upstream_rq_2xx`, tags `envoy.virtual_host` and
//! `envoy.route`. Routes without one cost nothing.

use std::sync::Arc;

use sluice_stats::{CodeClasses, Counter, Histogram, Scope};

#[derive(Debug)]
pub struct RouteStats {
    pub rq_total: Arc<Counter>,
    pub rq_completed: Arc<Counter>,
    pub rq_codes: CodeClasses,
    pub rq_timeout: Arc<Counter>,
    pub rq_retry: Arc<Counter>,
    /// To the response head.
    pub rq_time: Arc<Histogram>,
}

impl RouteStats {
    pub fn new(vhost: &str, stat_prefix: &str) -> RouteStats {
        let scope = Scope::root()
            .tagged("vhost", "envoy.virtual_host", vhost)
            .tagged("route", "envoy.route", stat_prefix);
        RouteStats {
            rq_total: scope.counter("upstream_rq_total"),
            rq_completed: scope.counter("upstream_rq_completed"),
            rq_codes: CodeClasses::new(&scope, "upstream_rq"),
            rq_timeout: scope.counter("upstream_rq_timeout"),
            rq_retry: scope.counter("upstream_rq_retry"),
            rq_time: scope.histogram("upstream_rq_time"),
        }
    }
}
