//! Circuit breakers: caps on what one cluster may have in flight, so a slow upstream makes
//! requests fail fast (503, `x-envoy-overloaded: true`) instead of piling up in the proxy.
//!
//! Each cap is an atomic count taken with a guard: a failed take leaves the count as it was,
//! and dropping the guard gives it back. Connections also wake waiters: a request that found
//! the connection cap reached waits (as a pending request, itself capped) for a connection to
//! close or come back to its pool.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use sluice_config::CircuitBreakers;
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Breakers {
    pub limits: CircuitBreakers,
    requests: AtomicU32,
    pending: AtomicU32,
    retries: AtomicU32,
    connections: AtomicU32,
    /// Signalled when a connection closes or goes idle, for requests waiting on the cap.
    connection_freed: Notify,
}

/// Which cap a guard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Pending,
    Retry,
}

/// One unit of a request-side cap, given back on drop.
#[must_use]
pub struct Permit<'a> {
    breakers: &'a Breakers,
    kind: Kind,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breakers
            .counter(self.kind)
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// One open connection, counted until dropped (it lives as long as the connection).
pub struct ConnectionPermit(Arc<Breakers>);

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
        self.0.connection_freed.notify_waiters();
    }
}

impl std::fmt::Debug for ConnectionPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionPermit")
    }
}

impl Breakers {
    pub fn new(limits: CircuitBreakers) -> Self {
        Breakers {
            limits,
            requests: AtomicU32::new(0),
            pending: AtomicU32::new(0),
            retries: AtomicU32::new(0),
            connections: AtomicU32::new(0),
            connection_freed: Notify::new(),
        }
    }

    fn counter(&self, kind: Kind) -> &AtomicU32 {
        match kind {
            Kind::Request => &self.requests,
            Kind::Pending => &self.pending,
            Kind::Retry => &self.retries,
        }
    }

    /// Takes one of `counter` if fewer than `max` are taken.
    fn take(counter: &AtomicU32, max: u32) -> bool {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// A request in flight, if `max_requests` allows.
    pub fn request(&self) -> Option<Permit<'_>> {
        Self::take(&self.requests, self.limits.max_requests).then(|| Permit {
            breakers: self,
            kind: Kind::Request,
        })
    }

    /// A request waiting for a connection, if `max_pending_requests` allows.
    pub fn pending(&self) -> Option<Permit<'_>> {
        Self::take(&self.pending, self.limits.max_pending_requests).then(|| Permit {
            breakers: self,
            kind: Kind::Pending,
        })
    }

    /// A retry in flight, if `max_retries` (or the retry budget) allows.
    pub fn retry(&self) -> Option<Permit<'_>> {
        let max = match self.limits.retry_budget {
            None => self.limits.max_retries,
            Some(b) => {
                let active = f64::from(self.requests.load(Ordering::Relaxed));
                ((active * b.budget_percent / 100.0) as u32).max(b.min_retry_concurrency)
            }
        };
        Self::take(&self.retries, max).then(|| Permit {
            breakers: self,
            kind: Kind::Retry,
        })
    }

    /// An open connection, if `max_connections` allows.
    pub fn connection(self: &Arc<Self>) -> Option<ConnectionPermit> {
        Self::take(&self.connections, self.limits.max_connections)
            .then(|| ConnectionPermit(self.clone()))
    }

    /// Resolves when a connection may have come free (closed, or back in a pool). Create it
    /// before checking, so a release between the check and the wait is not missed.
    pub fn connection_freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.connection_freed.notified()
    }

    /// Tells waiters a connection went back to its pool. Costs one load when nobody waits.
    pub fn connection_idle(&self) {
        if self.pending.load(Ordering::Relaxed) > 0 {
            self.connection_freed.notify_waiters();
        }
    }

    /// (requests, pending, retries, connections) in flight now.
    pub fn active(&self) -> (u32, u32, u32, u32) {
        (
            self.requests.load(Ordering::Relaxed),
            self.pending.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.connections.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_config::RetryBudget;

    fn limits() -> CircuitBreakers {
        CircuitBreakers {
            max_connections: 1,
            max_pending_requests: 1,
            max_requests: 2,
            max_retries: 1,
            retry_budget: None,
        }
    }

    #[test]
    fn caps_hold_and_come_back_on_drop() {
        let b = Arc::new(Breakers::new(limits()));
        let r1 = b.request().unwrap();
        let _r2 = b.request().unwrap();
        assert!(b.request().is_none());
        drop(r1);
        assert!(b.request().is_some());
        let c = b.connection().unwrap();
        assert!(b.connection().is_none());
        drop(c);
        assert!(b.connection().is_some());
        let _p = b.pending().unwrap();
        assert!(b.pending().is_none());
        let _t = b.retry().unwrap();
        assert!(b.retry().is_none());
        assert_eq!(b.active(), (1, 1, 1, 0));
    }

    #[test]
    fn retry_budget_scales_with_requests() {
        let mut l = limits();
        l.max_requests = 100;
        l.retry_budget = Some(RetryBudget {
            budget_percent: 20.0,
            min_retry_concurrency: 1,
        });
        let b = Breakers::new(l);
        let held: Vec<_> = (0..10).map(|_| b.request().unwrap()).collect();
        // 20% of 10 requests: two retries.
        let _a = b.retry().unwrap();
        let _b = b.retry().unwrap();
        assert!(b.retry().is_none());
        drop(held);
    }

    #[tokio::test]
    async fn a_closing_connection_wakes_waiters() {
        let b = Arc::new(Breakers::new(limits()));
        let c = b.connection().unwrap();
        let waiter = {
            let b = b.clone();
            tokio::spawn(async move {
                loop {
                    let freed = b.connection_freed();
                    if let Some(p) = b.connection() {
                        return p;
                    }
                    freed.await;
                }
            })
        };
        tokio::task::yield_now().await;
        drop(c);
        let permit = waiter.await.unwrap();
        drop(permit);
    }
}
