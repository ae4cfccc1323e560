//! Peak-EWMA: latency-aware balancing.
//!
//! Each host keeps an estimate of its response time that jumps up to any slower sample at
//! once (the peak) and comes down toward faster ones gradually, so one slow response is
//! enough to steer traffic away and a run of fast ones to bring it back. Between samples the
//! estimate decays toward zero: a host that was slow and then left alone is tried again
//! rather than shunned for good.
//!
//! The balancer is power of two choices on a cost of `estimate × (1 + active / weight)`:
//! the time a new request can expect, its own round trip plus the queue ahead of it, which a
//! host of weight `w` works through `w` times as fast. (Dividing the whole cost by weight
//! would make the heavier of two idle, equally fast hosts win every comparison; dividing the
//! queue keeps an idle cluster's split at the weights, because candidates are drawn by weight
//! as in `least_request`.) With equal weights the cost is `estimate × (active + 1)`.
//!
//! Everything is atomics: the estimate (`f64` bits) and the time of its last update (nanos
//! since a process-wide base) are each updated by compare-exchange. A recorder first claims
//! the interval since the last update, then applies that interval's decay, so concurrent
//! samples each decay the estimate for their own interval only; a reader between the two
//! steps may see a slightly stale estimate, which costs nothing but a marginally different
//! pick.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::choices::Draw;
use super::{LbContext, LoadBalancer};
use crate::host::Host;

/// The estimate's bits before any sample (a NaN that arithmetic on real samples never
/// produces).
const NO_SAMPLE: u64 = u64::MAX;

/// `peak_ewma_lb_config.decay`'s default, until a balancer sets the cluster's.
const DEFAULT_DECAY: Duration = Duration::from_secs(10);

/// Nanoseconds since the first call in this process: a monotonic clock that fits an atomic.
fn now_nanos() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A host's peak-EWMA latency estimate.
#[derive(Debug)]
pub struct Ewma {
    /// `f64` bits of the estimate in nanoseconds as of `stamp`, or [`NO_SAMPLE`].
    estimate: AtomicU64,
    /// When `estimate` was last updated, in [`now_nanos`] time.
    stamp: AtomicU64,
    /// The decay time constant in nanoseconds. A host is made without its cluster's config,
    /// so the balancer stores the cluster's `decay` here when it is built.
    decay: AtomicU64,
}

impl Default for Ewma {
    fn default() -> Self {
        Ewma {
            estimate: AtomicU64::new(NO_SAMPLE),
            stamp: AtomicU64::new(0),
            decay: AtomicU64::new(nanos(DEFAULT_DECAY)),
        }
    }
}

impl Ewma {
    pub(crate) fn set_decay(&self, decay: Duration) {
        self.decay.store(nanos(decay).max(1), Ordering::Relaxed);
    }

    /// The weight the old estimate keeps after `elapsed` nanoseconds.
    fn keep(&self, elapsed: u64) -> f64 {
        let decay = self.decay.load(Ordering::Relaxed).max(1);
        (-(elapsed as f64) / decay as f64).exp()
    }

    /// Adds a sample taken at `now`.
    pub(crate) fn record_at(&self, rtt: Duration, now: u64) {
        let rtt = rtt.as_nanos() as f64;
        // Claim the interval since the last update; a clock read that lost a race to a later
        // one counts as simultaneous.
        let mut last = self.stamp.load(Ordering::Acquire);
        let elapsed = loop {
            let t = now.max(last);
            match self
                .stamp
                .compare_exchange_weak(last, t, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break t - last,
                Err(seen) => last = seen,
            }
        };
        let keep = self.keep(elapsed);
        let mut bits = self.estimate.load(Ordering::Acquire);
        loop {
            let next = if bits == NO_SAMPLE {
                rtt
            } else {
                let current = f64::from_bits(bits) * keep;
                if rtt >= current {
                    rtt
                } else {
                    current * keep + rtt * (1.0 - keep)
                }
            };
            match self.estimate.compare_exchange_weak(
                bits,
                next.to_bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(seen) => bits = seen,
            }
        }
    }

    /// The estimate in nanoseconds at `now`, decayed since the last sample; `None` before
    /// the first.
    pub(crate) fn estimate_at(&self, now: u64) -> Option<f64> {
        let bits = self.estimate.load(Ordering::Acquire);
        if bits == NO_SAMPLE {
            return None;
        }
        let stamp = self.stamp.load(Ordering::Acquire);
        Some(f64::from_bits(bits) * self.keep(now.saturating_sub(stamp)))
    }
}

impl Host {
    /// Feeds a response time (request sent to response headers received) into this host's
    /// latency estimate, for `peak_ewma`.
    pub fn record_latency(&self, rtt: Duration) {
        self.ewma.record_at(rtt, now_nanos());
    }

    /// The current latency estimate; `None` before the first sample.
    pub fn latency_estimate(&self) -> Option<Duration> {
        let ns = self.ewma.estimate_at(now_nanos())?;
        Some(Duration::from_nanos(ns as u64))
    }
}

pub struct PeakEwma {
    hosts: Vec<Arc<Host>>,
    draw: Draw,
    /// The estimate of a host with no sample, in nanoseconds.
    default_rtt: f64,
    /// [`now_nanos`], or a test's clock.
    clock: fn() -> u64,
}

impl PeakEwma {
    /// Also stores `decay` in every host's estimate: hosts are made without the cluster's
    /// config, and every balancer of a cluster has the same one.
    pub fn new(hosts: &[Arc<Host>], decay: Duration, default_rtt: Duration) -> Self {
        for h in hosts {
            h.ewma.set_decay(decay);
        }
        let weights: Vec<u32> = hosts.iter().map(|h| h.weight).collect();
        PeakEwma {
            hosts: hosts.to_vec(),
            draw: Draw::new(&weights),
            default_rtt: default_rtt.as_nanos() as f64,
            clock: now_nanos,
        }
    }

    fn cost(&self, i: usize, now: u64) -> f64 {
        let h = &self.hosts[i];
        let rtt = h.ewma.estimate_at(now).unwrap_or(self.default_rtt);
        rtt * (1.0 + f64::from(h.active_requests()) / f64::from(h.weight.max(1)))
    }
}

impl LoadBalancer for PeakEwma {
    fn choose(&self, _: &LbContext) -> Option<usize> {
        let first = self.draw.one()?;
        let second = self.draw.other(first);
        if second == first {
            return Some(first);
        }
        let now = (self.clock)();
        // Ties keep the first draw, which is what makes idle picks follow the weights.
        Some(if self.cost(second, now) < self.cost(first, now) {
            second
        } else {
            first
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::lb::testing::{counts, counts_under_load, hosts, near};

    const MS: u64 = 1_000_000;

    thread_local! {
        static NOW: Cell<u64> = const { Cell::new(0) };
    }

    fn test_clock() -> u64 {
        NOW.with(Cell::get)
    }

    fn set_now(t: u64) {
        NOW.with(|n| n.set(t));
    }

    fn balancer(hs: &[Arc<Host>], decay: Duration) -> PeakEwma {
        let mut lb = PeakEwma::new(hs, decay, Duration::from_millis(30));
        lb.clock = test_clock;
        lb
    }

    #[test]
    fn peaks_jump_and_lower_samples_pull_gradually() {
        let e = Ewma::default();
        e.set_decay(Duration::from_secs(1));
        assert_eq!(e.estimate_at(0), None);
        e.record_at(Duration::from_millis(100), 0);
        assert_eq!(e.estimate_at(0), Some(100.0 * MS as f64));
        // Between samples it decays toward zero: 100ms / e after one decay period.
        let at_1s = e.estimate_at(1_000 * MS).unwrap();
        assert!(
            (at_1s - 36.79 * MS as f64).abs() < 0.01 * MS as f64,
            "{at_1s}"
        );
        // A faster sample one period later: 36.79 × 1/e + 10 × (1 − 1/e) = 19.85ms.
        e.record_at(Duration::from_millis(10), 1_000 * MS);
        let pulled = e.estimate_at(1_000 * MS).unwrap();
        assert!(
            (pulled - 19.85 * MS as f64).abs() < 0.01 * MS as f64,
            "{pulled}"
        );
        // A slower one replaces it at once.
        e.record_at(Duration::from_millis(200), 1_000 * MS);
        assert_eq!(e.estimate_at(1_000 * MS), Some(200.0 * MS as f64));
    }

    #[test]
    fn idle_picks_follow_weights() {
        fastrand::seed(21);
        let hs = hosts(&[3, 1]);
        let lb = balancer(&hs, Duration::from_secs(10));
        let c = counts(&lb, 2, 40_000);
        // No samples: equal costs, so the weighted first draw decides. 30,000 / 10,000 ± 3%.
        assert!(near(c[0], 30_000.0, 0.03), "{c:?}");
    }

    #[test]
    fn loaded_picks_follow_weights() {
        fastrand::seed(22);
        let hs = hosts(&[3, 1, 2]);
        let lb = balancer(&hs, Duration::from_secs(10));
        let c = counts_under_load(&lb, &hs, 60, 60_000);
        // Expected 30,000 / 10,000 / 20,000, within 5%.
        assert!(near(c[0], 30_000.0, 0.05), "{c:?}");
        assert!(near(c[1], 10_000.0, 0.05), "{c:?}");
        assert!(near(c[2], 20_000.0, 0.05), "{c:?}");
    }

    #[test]
    fn requests_in_flight_add_to_the_cost() {
        fastrand::seed(23);
        set_now(0);
        let hs = hosts(&[1, 1]);
        let lb = balancer(&hs, Duration::from_secs(10));
        for h in &hs {
            h.ewma.record_at(Duration::from_millis(10), 0);
        }
        let _held = hs[0].start_request();
        assert_eq!(counts(&lb, 2, 1_000), [0, 1_000]);
    }

    #[test]
    fn a_slow_host_is_avoided_until_its_estimate_decays() {
        fastrand::seed(24);
        set_now(0);
        let hs = hosts(&[1, 1, 1]);
        let lb = balancer(&hs, Duration::from_secs(1));
        hs[0].ewma.record_at(Duration::from_millis(500), 0);
        hs[1].ewma.record_at(Duration::from_millis(10), 0);
        hs[2].ewma.record_at(Duration::from_millis(10), 0);
        // One pick per simulated millisecond; the hosts picked answer in 10ms. Host 0 gets
        // nothing until 500ms × exp(−t / 1s) falls under 10ms, at t = ln 50 s ≈ 3.91s.
        let mut first_return = None;
        for t in 1..=6_000u64 {
            set_now(t * MS);
            let i = lb.choose(&LbContext::default()).unwrap();
            if i == 0 {
                first_return = Some(t);
                break;
            }
            hs[i].ewma.record_at(Duration::from_millis(10), t * MS);
        }
        let t = first_return.expect("host 0 is tried again");
        assert!((3_800..=4_000).contains(&t), "returned at {t}ms");
    }

    #[test]
    fn real_clock_samples_are_kept() {
        let hs = hosts(&[1]);
        hs[0].record_latency(Duration::from_millis(20));
        let e = hs[0].latency_estimate().unwrap();
        assert!(
            e <= Duration::from_millis(20) && e > Duration::from_millis(19),
            "{e:?}"
        );
    }

    #[test]
    fn no_hosts_no_choice() {
        let lb = PeakEwma::new(&[], Duration::from_secs(10), Duration::from_millis(30));
        assert_eq!(lb.choose(&LbContext::default()), None);
    }
}
