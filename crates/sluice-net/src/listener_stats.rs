//! A listener's metrics under Envoy's names: its connections (`listener.<address>.
//! downstream_cx_total`, `..._active`, `..._destroy`, `..._length_ms`), what happens before a
//! filter chain takes one (`ssl.handshake`, `no_filter_chain_match`), and the rate limit on
//! the log lines of refused connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sluice_stats::{Counter, Gauge, Histogram, Scope};

/// The connection metrics, shared by every connection's [`Open`] guard.
pub struct CxStats {
    pub downstream_cx_total: Arc<Counter>,
    pub downstream_cx_active: Arc<Gauge>,
    pub downstream_cx_destroy: Arc<Counter>,
    pub downstream_cx_length_ms: Arc<Histogram>,
}

impl CxStats {
    /// Counts a connection accepted; the guard counts it closed when dropped.
    pub fn open(self: &Arc<Self>) -> Open {
        self.downstream_cx_total.inc();
        self.downstream_cx_active.inc();
        Open {
            stats: self.clone(),
            started: std::time::Instant::now(),
        }
    }
}

/// One accepted connection, until its task ends (however it ends).
pub struct Open {
    stats: Arc<CxStats>,
    started: std::time::Instant,
}

impl Drop for Open {
    fn drop(&mut self) {
        let s = &self.stats;
        s.downstream_cx_active.dec();
        s.downstream_cx_destroy.inc();
        s.downstream_cx_length_ms
            .record_duration(self.started.elapsed());
    }
}

pub struct ListenerStats {
    pub cx: Arc<CxStats>,
    /// No chain matched the connection (Envoy's `no_filter_chain_match`).
    pub no_filter_chain_match: Arc<Counter>,
    /// The TLS handshake (or reading the ClientHello) outlived `handshake_timeout`.
    pub handshake_timeout: Arc<Counter>,
    /// The inspector saw a TLS ClientHello / something else.
    pub tls_found: Arc<Counter>,
    pub tls_not_found: Arc<Counter>,
    /// What came was not a ClientHello rustls could read (plaintext on a TLS port, a
    /// malformed or oversized ClientHello). Also counted in `ssl_connection_error`.
    pub client_hello_error: Arc<Counter>,
    /// Handshakes completed.
    pub ssl_handshake: Arc<Counter>,
    /// Handshakes failed, for any reason (the two below are also counted here).
    pub ssl_connection_error: Arc<Counter>,
    /// A client certificate was required and none came.
    pub ssl_fail_verify_no_cert: Arc<Counter>,
    /// The client's certificate did not verify (unknown CA, expired, bad signature).
    pub ssl_fail_verify_error: Arc<Counter>,
    log: LogLimit,
}

impl ListenerStats {
    /// Counters under `scope`; the inspector's only when the listener has one (the others
    /// are kept off the store, so `/stats` shows what the listener really does).
    pub fn new(scope: &Scope, inspector: bool) -> ListenerStats {
        let ssl = scope.scope("ssl");
        let inspector_scope = scope.scope("tls_inspector");
        let inspected = |name: &str| {
            if inspector {
                inspector_scope.counter(name)
            } else {
                Arc::new(Counter::default())
            }
        };
        ListenerStats {
            cx: Arc::new(CxStats {
                downstream_cx_total: scope.counter("downstream_cx_total"),
                downstream_cx_active: scope.gauge("downstream_cx_active"),
                downstream_cx_destroy: scope.counter("downstream_cx_destroy"),
                downstream_cx_length_ms: scope.histogram("downstream_cx_length_ms"),
            }),
            no_filter_chain_match: scope.counter("no_filter_chain_match"),
            handshake_timeout: scope.counter("downstream_cx_transport_socket_connect_timeout"),
            tls_found: inspected("tls_found"),
            tls_not_found: inspected("tls_not_found"),
            client_hello_error: ssl.counter("client_hello_error"),
            ssl_handshake: ssl.counter("handshake"),
            ssl_connection_error: ssl.counter("connection_error"),
            ssl_fail_verify_no_cert: ssl.counter("fail_verify_no_cert"),
            ssl_fail_verify_error: ssl.counter("fail_verify_error"),
            log: LogLimit::default(),
        }
    }

    /// Whether a refused connection may be logged at info now: the first in each second is,
    /// the rest go to debug, so a scanner hammering the port cannot flood the log.
    pub fn log_now(&self) -> bool {
        self.log.allow()
    }
}

/// At most one pass per second.
#[derive(Default)]
struct LogLimit {
    last: AtomicU64,
}

impl LogLimit {
    fn allow(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.allow_at(now)
    }

    fn allow_at(&self, now: u64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        last != now
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_log_line_a_second() {
        let limit = LogLimit::default();
        assert!(limit.allow_at(5));
        assert!(!limit.allow_at(5));
        assert!(limit.allow_at(6));
    }
}
