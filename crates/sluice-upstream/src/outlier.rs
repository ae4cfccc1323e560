//! Outlier detection: hosts that fail the requests sent to them are ejected for a while.
//!
//! Two ways in, as Envoy has them:
//! - consecutive failures, counted as results arrive: the request path reports each result
//!   ([`Cluster::report`]), and the host is ejected the moment its run of 5xx (or of gateway
//!   failures: 502/503/504, connect failures, resets, timeouts) reaches the threshold;
//! - success rate, judged once per `interval` by the cluster's sweep task: hosts far below the
//!   mean (mean − factor × stdev) are ejected.
//!
//! An ejection lasts `base_ejection_time` × the host's recent ejection count (capped at
//! `max_ejection_time`); the count falls by one for each interval the host spends back in
//! service, so a host that keeps failing stays out longer each time. Ejecting never takes
//! more than `max_ejection_percent` of the hosts out (but one host can always go).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use sluice_config::OutlierDetection;
use tracing::info;

use crate::clock::now_nanos;
use crate::cluster::Cluster;
use crate::host::{health, Host};
use crate::stats::ClusterStats;

/// How a request to a host ended, as outlier detection sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response head with this status.
    Status(u16),
    /// No connection could be made.
    ConnectFailure,
    /// The connection failed before a response head.
    Reset,
    /// No response head in time.
    Timeout,
}

impl Outcome {
    fn is_5xx(self) -> bool {
        !matches!(self, Outcome::Status(s) if s < 500)
    }

    fn is_gateway_failure(self) -> bool {
        !matches!(self, Outcome::Status(s) if !(502..=504).contains(&s))
    }
}

/// Per-host counters, kept in the host.
#[derive(Debug, Default)]
pub struct OutlierState {
    consecutive_5xx: AtomicU32,
    consecutive_gateway: AtomicU32,
    /// This interval's requests and successes (for success-rate ejection).
    total: AtomicU64,
    success: AtomicU64,
    /// Recent ejections: the multiplier of the next ejection's length.
    ejections: AtomicU32,
    /// When the current ejection ends ([`now_nanos`]); 0 when not ejected.
    ejected_until: AtomicU64,
}

impl OutlierState {
    pub fn is_ejected(&self) -> bool {
        self.ejected_until.load(Ordering::Relaxed) != 0
    }

    /// The time left of the current ejection (`None`: not ejected; zero: due back at the
    /// next sweep), and the recent ejection count.
    pub fn status(&self) -> (Option<Duration>, u32) {
        let until = self.ejected_until.load(Ordering::Relaxed);
        let left = (until != 0).then(|| Duration::from_nanos(until.saturating_sub(now_nanos())));
        (left, self.ejections.load(Ordering::Relaxed))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Consecutive5xx,
    ConsecutiveGatewayFailure,
    SuccessRate,
}

impl Cluster {
    /// Records how a request to `host` ended; may eject it at once.
    pub fn report(&self, host: &Arc<Host>, outcome: Outcome) {
        if outcome.is_5xx() {
            host.count_failure(outcome == Outcome::Timeout);
        }
        let Some(od) = &self.config.outlier_detection else {
            return;
        };
        let st = &host.outlier;
        st.total.fetch_add(1, Ordering::Relaxed);
        if !outcome.is_5xx() {
            st.success.fetch_add(1, Ordering::Relaxed);
            // Plain loads first: most results change nothing, and a store dirties the line.
            if st.consecutive_5xx.load(Ordering::Relaxed) != 0 {
                st.consecutive_5xx.store(0, Ordering::Relaxed);
            }
            if st.consecutive_gateway.load(Ordering::Relaxed) != 0 {
                st.consecutive_gateway.store(0, Ordering::Relaxed);
            }
            return;
        }
        let run_5xx = st.consecutive_5xx.fetch_add(1, Ordering::Relaxed) + 1;
        let run_gateway = if outcome.is_gateway_failure() {
            st.consecutive_gateway.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            st.consecutive_gateway.store(0, Ordering::Relaxed);
            0
        };
        let reason = if od.consecutive_5xx > 0 && run_5xx >= od.consecutive_5xx {
            Some(Reason::Consecutive5xx)
        } else if od.consecutive_gateway_failure > 0
            && run_gateway >= od.consecutive_gateway_failure
        {
            Some(Reason::ConsecutiveGatewayFailure)
        } else {
            None
        };
        if let Some(reason) = reason {
            if self.eject(host, od, reason, &self.hosts()) {
                self.health_changed_soon();
            }
        }
    }

    /// Ejects `host` unless it already is or the ejection cap forbids; whether it was.
    fn eject(
        &self,
        host: &Arc<Host>,
        od: &OutlierDetection,
        reason: Reason,
        members: &[Arc<Host>],
    ) -> bool {
        let st = &host.outlier;
        st.consecutive_5xx.store(0, Ordering::Relaxed);
        st.consecutive_gateway.store(0, Ordering::Relaxed);
        if st.is_ejected() {
            return false;
        }
        let ejected = members.iter().filter(|h| h.outlier.is_ejected()).count();
        let allowed = (members.len() * od.max_ejection_percent as usize) / 100;
        if ejected > 0 && ejected + 1 > allowed {
            ClusterStats::add(&self.stats.outlier_ejections_overflow);
            return false;
        }
        let times = st.ejections.fetch_add(1, Ordering::Relaxed) + 1;
        let length = od
            .base_ejection_time
            .saturating_mul(times)
            .min(od.max_ejection_time);
        let until =
            now_nanos().saturating_add(u64::try_from(length.as_nanos()).unwrap_or(u64::MAX));
        if st
            .ejected_until
            .compare_exchange(0, until, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // Another thread ejected it first.
            return false;
        }
        ClusterStats::add(&self.stats.outlier_ejections_total);
        ClusterStats::add(match reason {
            Reason::Consecutive5xx => &self.stats.outlier_ejections_consecutive_5xx,
            Reason::ConsecutiveGatewayFailure => &self.stats.outlier_ejections_gateway_failure,
            Reason::SuccessRate => &self.stats.outlier_ejections_success_rate,
        });
        info!(cluster = %self.name, host = %host.address, ?reason, duration = ?length, "host ejected");
        host.set_health_flag(health::FAILED_OUTLIER, true)
    }

    /// One interval's work: ends ejections whose time is up, lowers the ejection count of
    /// hosts in service, and applies success-rate ejection. Whether health changed.
    fn sweep(&self, od: &OutlierDetection) -> bool {
        let members = self.hosts();
        let now = now_nanos();
        let mut changed = false;
        for host in &members {
            let st = &host.outlier;
            let until = st.ejected_until.load(Ordering::Relaxed);
            if until != 0 && now >= until {
                st.ejected_until.store(0, Ordering::Relaxed);
                info!(cluster = %self.name, host = %host.address, "host returned from ejection");
                changed |= host.set_health_flag(health::FAILED_OUTLIER, false);
            } else if until == 0 {
                let _ = st
                    .ejections
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            }
        }
        // Success rates over the interval just ended.
        let rates: Vec<(usize, f64)> = members
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let total = h.outlier.total.swap(0, Ordering::Relaxed);
                let success = h.outlier.success.swap(0, Ordering::Relaxed);
                (total >= u64::from(od.success_rate_request_volume) && !h.outlier.is_ejected())
                    .then(|| (i, success as f64 / total as f64))
            })
            .collect();
        if od.success_rate_minimum_hosts > 0
            && rates.len() >= od.success_rate_minimum_hosts as usize
        {
            let n = rates.len() as f64;
            let mean = rates.iter().map(|(_, r)| r).sum::<f64>() / n;
            let variance = rates.iter().map(|(_, r)| (r - mean).powi(2)).sum::<f64>() / n;
            let threshold =
                mean - f64::from(od.success_rate_stdev_factor) / 1000.0 * variance.sqrt();
            for (i, rate) in rates {
                if rate < threshold {
                    changed |= self.eject(&members[i], od, Reason::SuccessRate, &members);
                }
            }
        }
        changed
    }
}

/// Starts the cluster's outlier sweep on the current tokio runtime, if it has outlier
/// detection; the task ends when the cluster is dropped.
pub fn spawn_sweep(cluster: &Arc<Cluster>) {
    let Some(od) = cluster.config.outlier_detection.clone() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    runtime.spawn(async move {
        let mut tick = tokio::time::interval(od.interval.max(Duration::from_millis(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(cluster) = weak.upgrade() else {
                return;
            };
            if cluster.sweep(&od) {
                cluster.health_changed();
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::LbContext;

    fn cluster(hosts: u16, outlier: &str) -> Arc<Cluster> {
        let endpoints: String = (0..hosts)
            .map(|i| format!("{{ address: \"127.0.0.1:{}\" }}, ", 9000 + i))
            .collect();
        Arc::new(
            Cluster::from_config(&crate::testing::cluster_config(&format!(
                "{{ name: c, outlier_detection: {outlier}, endpoints: [{endpoints}] }}"
            )))
            .unwrap(),
        )
    }

    fn chosen(c: &Cluster) -> std::collections::BTreeSet<u16> {
        (0..50)
            .map(|_| {
                let snap = c.snapshot();
                snap.all
                    .choose(&LbContext::default())
                    .unwrap()
                    .address
                    .as_tcp()
                    .unwrap()
                    .port()
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_5xx_ejects_and_the_sweep_brings_back() {
        let c = cluster(
            4,
            "{ consecutive_5xx: 3, interval: 1s, base_ejection_time: 10s, max_ejection_percent: 50 }",
        );
        let od = c.config.outlier_detection.clone().unwrap();
        let bad = c.hosts()[0].clone();
        c.report(&bad, Outcome::Status(500));
        c.report(&bad, Outcome::Status(503));
        // A success in between resets the run.
        c.report(&bad, Outcome::Status(200));
        c.report(&bad, Outcome::Status(500));
        c.report(&bad, Outcome::Reset);
        assert!(bad.is_healthy());
        c.report(&bad, Outcome::ConnectFailure);
        assert!(!bad.is_healthy());
        assert_eq!(
            bad.outlier_status(),
            (Some(Duration::from_secs(10)), 1),
            "ejected for base_ejection_time, first ejection"
        );
        assert_eq!(bad.requests_failed(), (5, 0));
        assert!(!chosen(&c).contains(&9000));
        assert_eq!(c.stats.outlier_ejections_consecutive_5xx.get(), 1);

        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(!c.sweep(&od));
        assert_eq!(bad.outlier_status().0, Some(Duration::from_secs(1)));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(c.sweep(&od));
        c.health_changed();
        assert!(bad.is_healthy());
        assert_eq!(bad.outlier_status(), (None, 1));
        assert!(chosen(&c).contains(&9000));

        // Ejected again at once: twice as long this time.
        for _ in 0..3 {
            c.report(&bad, Outcome::Status(502));
        }
        assert!(!bad.is_healthy());
        tokio::time::advance(Duration::from_secs(19)).await;
        assert!(!c.sweep(&od));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(c.sweep(&od));
    }

    #[tokio::test(start_paused = true)]
    async fn max_ejection_percent_caps_ejections() {
        let c = cluster(4, "{ consecutive_5xx: 1, max_ejection_percent: 50 }");
        let hosts = c.hosts();
        for h in &hosts {
            c.report(h, Outcome::Status(500));
        }
        let ejected = hosts.iter().filter(|h| !h.is_healthy()).count();
        assert_eq!(ejected, 2);
        assert_eq!(c.stats.outlier_ejections_overflow.get(), 2);
        // One host can always go, even at 0%.
        let c = cluster(3, "{ consecutive_5xx: 1, max_ejection_percent: 0 }");
        let hosts = c.hosts();
        for h in &hosts {
            c.report(h, Outcome::Status(500));
        }
        assert_eq!(hosts.iter().filter(|h| !h.is_healthy()).count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gateway_failures_count_only_502_to_504_and_failures() {
        let c = cluster(
            2,
            "{ consecutive_5xx: 0, consecutive_gateway_failure: 2, max_ejection_percent: 50 }",
        );
        let h = c.hosts()[0].clone();
        c.report(&h, Outcome::Status(500));
        c.report(&h, Outcome::Status(502));
        c.report(&h, Outcome::Status(500));
        c.report(&h, Outcome::Timeout);
        assert!(h.is_healthy());
        c.report(&h, Outcome::Status(504));
        assert!(!h.is_healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn success_rate_ejects_the_outlier() {
        let c = cluster(
            5,
            "{ consecutive_5xx: 0, success_rate_minimum_hosts: 5, success_rate_request_volume: 10, max_ejection_percent: 50 }",
        );
        let od = c.config.outlier_detection.clone().unwrap();
        let hosts = c.hosts();
        for (i, h) in hosts.iter().enumerate() {
            for n in 0..100 {
                // Host 0 fails half its requests, the others 1%.
                let fail = if i == 0 { n % 2 == 0 } else { n == 0 };
                c.report(h, Outcome::Status(if fail { 500 } else { 200 }));
            }
        }
        assert!(c.sweep(&od));
        assert!(!hosts[0].is_healthy());
        assert!(hosts[1..].iter().all(|h| h.is_healthy()));
        // Too few requests in the next interval: no verdict.
        assert!(!c.sweep(&od));
    }
}
