//! A listener's HTTP counters, under Envoy's connection-manager names
//! (`http.<stat_prefix>.downstream_rq_2xx`), so Envoy dashboards read them unchanged.

use std::sync::Arc;

use sluice_stats::{CodeClasses, Counter, Gauge, GaugeGuard, Histogram, Scope};

#[derive(Debug)]
pub struct HttpStats {
    pub cx_total: Arc<Counter>,
    pub cx_active: Arc<Gauge>,
    pub cx_http1_total: Arc<Counter>,
    pub cx_http2_total: Arc<Counter>,
    pub cx_ssl_total: Arc<Counter>,
    pub cx_destroy: Arc<Counter>,
    pub cx_length_ms: Arc<Histogram>,
    pub rq_total: Arc<Counter>,
    pub rq_http1_total: Arc<Counter>,
    pub rq_http2_total: Arc<Counter>,
    pub rq_active: Arc<Gauge>,
    pub rq_completed: Arc<Counter>,
    pub rq_time: Arc<Histogram>,
    pub rq_codes: CodeClasses,
    pub no_route: Arc<Counter>,
    pub no_cluster: Arc<Counter>,
    pub rq_direct_response: Arc<Counter>,
    pub rq_redirect: Arc<Counter>,
    pub rq_too_large: Arc<Counter>,
    pub rq_rx_reset: Arc<Counter>,
    /// Connections closed for a request head our HTTP/1 codec refused.
    pub cx_protocol_error: Arc<Counter>,
}

impl HttpStats {
    /// The counters of `Scope::http(stat_prefix)`; asking again for one prefix (a reload, a
    /// second chain) gives the same counters.
    pub fn new(scope: &Scope) -> HttpStats {
        HttpStats {
            cx_total: scope.counter("downstream_cx_total"),
            cx_active: scope.gauge("downstream_cx_active"),
            cx_http1_total: scope.counter("downstream_cx_http1_total"),
            cx_http2_total: scope.counter("downstream_cx_http2_total"),
            cx_ssl_total: scope.counter("downstream_cx_ssl_total"),
            cx_destroy: scope.counter("downstream_cx_destroy"),
            cx_length_ms: scope.histogram("downstream_cx_length_ms"),
            rq_total: scope.counter("downstream_rq_total"),
            rq_http1_total: scope.counter("downstream_rq_http1_total"),
            rq_http2_total: scope.counter("downstream_rq_http2_total"),
            rq_active: scope.gauge("downstream_rq_active"),
            rq_completed: scope.counter("downstream_rq_completed"),
            rq_time: scope.histogram("downstream_rq_time"),
            rq_codes: CodeClasses::new(scope, "downstream_rq"),
            no_route: scope.counter("no_route"),
            no_cluster: scope.counter("no_cluster"),
            rq_direct_response: scope.counter("rq_direct_response"),
            rq_redirect: scope.counter("rq_redirect"),
            rq_too_large: scope.counter("downstream_rq_too_large"),
            rq_rx_reset: scope.counter("downstream_rq_rx_reset"),
            cx_protocol_error: scope.counter("downstream_cx_protocol_error"),
        }
    }
}

/// Held for a connection's life: active while held, length and destroy counted when dropped.
pub(super) struct ConnectionGuard {
    stats: Arc<HttpStats>,
    _active: GaugeGuard,
    started: std::time::Instant,
}

impl ConnectionGuard {
    pub fn new(stats: &Arc<HttpStats>, tls: bool) -> ConnectionGuard {
        stats.cx_total.inc();
        if tls {
            stats.cx_ssl_total.inc();
        }
        ConnectionGuard {
            stats: stats.clone(),
            _active: GaugeGuard::new(&stats.cx_active),
            started: std::time::Instant::now(),
        }
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.stats.cx_destroy.inc();
        self.stats
            .cx_length_ms
            .record_duration(self.started.elapsed());
    }
}
