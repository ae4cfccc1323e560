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
    /// The high-priority thresholds' own counts.
    high_requests: AtomicU32,
    high_retries: AtomicU32,
    /// Signalled when a connection closes or goes idle, for requests waiting on the cap.
    connection_freed: Notify,
}

/// Which cap a guard holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Request,
    Pending,
    Retry,
    HighRequest,
    HighRetry,
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
pub struct ConnectionPermit(Arc<Breakers>, Option<crate::host::OpenConnection>);

impl ConnectionPermit {
    /// The connection this permit is for was made: the host counts it while the permit lives.
    pub fn hold(&mut self, open: Option<crate::host::OpenConnection>) {
        self.1 = open;
    }
}

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
            high_requests: AtomicU32::new(0),
            high_retries: AtomicU32::new(0),
            connection_freed: Notify::new(),
        }
    }

    fn counter(&self, kind: Kind) -> &AtomicU32 {
        match kind {
            Kind::Request => &self.requests,
            Kind::Pending => &self.pending,
            Kind::Retry => &self.retries,
            Kind::HighRequest => &self.high_requests,
            Kind::HighRetry => &self.high_retries,
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

    /// A request in flight, if `max_requests` (of the route's priority) allows.
    pub fn request(&self, high: bool) -> Option<Permit<'_>> {
        let (counter, max, kind) = if high {
            (
                &self.high_requests,
                self.limits.high_priority.max_requests,
                Kind::HighRequest,
            )
        } else {
            (&self.requests, self.limits.max_requests, Kind::Request)
        };
        Self::take(counter, max).then(|| Permit {
            breakers: self,
            kind,
        })
    }

    /// The `max_requests` of a priority.
    pub fn max_requests(&self, high: bool) -> u32 {
        if high {
            self.limits.high_priority.max_requests
        } else {
            self.limits.max_requests
        }
    }

    /// A request waiting for a connection, if `max_pending_requests` allows.
    pub fn pending(&self) -> Option<Permit<'_>> {
        Self::take(&self.pending, self.limits.max_pending_requests).then(|| Permit {
            breakers: self,
            kind: Kind::Pending,
        })
    }

    /// A retry in flight, if `max_retries` (or the retry budget) of the priority allows.
    pub fn retry(&self, high: bool) -> Option<Permit<'_>> {
        let (budget, max, requests, retries, kind) = if high {
            let h = &self.limits.high_priority;
            (
                h.retry_budget,
                h.max_retries,
                &self.high_requests,
                &self.high_retries,
                Kind::HighRetry,
            )
        } else {
            let l = &self.limits;
            (
                l.retry_budget,
                l.max_retries,
                &self.requests,
                &self.retries,
                Kind::Retry,
            )
        };
        let max = match budget {
            None => max,
            Some(b) => {
                let active = f64::from(requests.load(Ordering::Relaxed));
                ((active * b.budget_percent / 100.0) as u32).max(b.min_retry_concurrency)
            }
        };
        Self::take(retries, max).then(|| Permit {
            breakers: self,
            kind,
        })
    }

    /// An open connection, if `max_connections` allows.
    pub fn connection(self: &Arc<Self>) -> Option<ConnectionPermit> {
        Self::take(&self.connections, self.limits.max_connections)
            .then(|| ConnectionPermit(self.clone(), None))
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

    /// (requests, pending, retries, connections) in flight now, both priorities together.
    pub fn active(&self) -> (u32, u32, u32, u32) {
        (
            self.requests.load(Ordering::Relaxed) + self.high_requests.load(Ordering::Relaxed),
            self.pending.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed) + self.high_retries.load(Ordering::Relaxed),
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
            high_priority: sluice_config::HighPriorityThresholds {
                max_requests: 1,
                max_retries: 0,
                retry_budget: None,
            },
        }
    }

    #[test]
    fn high_priority_counts_apart() {
        let b = Breakers::new(limits());
        let _d1 = b.request(false).unwrap();
        let _d2 = b.request(false).unwrap();
        assert!(b.request(false).is_none());
        // The default thresholds are full; high priority has its own.
        let h = b.request(true).unwrap();
        assert!(b.request(true).is_none());
        assert!(b.retry(true).is_none());
        drop(h);
        assert!(b.request(true).is_some());
        assert_eq!(b.active().0, 2);
    }

    #[test]
    fn caps_hold_and_come_back_on_drop() {
        let b = Arc::new(Breakers::new(limits()));
        let r1 = b.request(false).unwrap();
        let _r2 = b.request(false).unwrap();
        assert!(b.request(false).is_none());
        drop(r1);
        assert!(b.request(false).is_some());
        let c = b.connection().unwrap();
        assert!(b.connection().is_none());
        drop(c);
        assert!(b.connection().is_some());
        let _p = b.pending().unwrap();
        assert!(b.pending().is_none());
        let _t = b.retry(false).unwrap();
        assert!(b.retry(false).is_none());
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
        let held: Vec<_> = (0..10).map(|_| b.request(false).unwrap()).collect();
        // 20% of 10 requests: two retries.
        let _a = b.retry(false).unwrap();
        let _b = b.retry(false).unwrap();
        assert!(b.retry(false).is_none());
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
