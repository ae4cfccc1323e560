//! The health-check task of one cluster. Each host address has its own due time (its interval,
//! or `unhealthy_interval` while failing, plus jitter); a round checks every due host at once,
//! each within the timeout, then sets flags and tells the cluster once if health changed.
//!
//! The task holds the cluster only weakly, so dropping the cluster ends it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sluice_config::{Address, HealthCheckConfig};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::probe::{Probe, ProbeError};
use super::state::HostState;
use crate::host::Host;

/// What a checker checks: implemented by the cluster.
pub trait HealthTarget: Send + Sync + 'static {
    /// The current members. Read every round, since membership may change (DNS, config).
    fn hosts(&self) -> Vec<Arc<Host>>;

    /// Some host's healthiness changed in the last round; rebuild what depends on it (the load
    /// balancer's healthy set). Called at most once per round.
    fn health_changed(&self);
}

/// Starts checking `target`'s hosts with `probe`; `cluster` names it in logs. The task ends
/// when `target` is dropped; abort the handle to end it sooner.
pub fn spawn(
    cluster: &str,
    config: HealthCheckConfig,
    probe: Arc<dyn Probe>,
    target: Weak<dyn HealthTarget>,
) -> JoinHandle<()> {
    let checker = Checker {
        cluster: cluster.into(),
        config,
        probe,
        states: HashMap::new(),
    };
    tokio::spawn(checker.run(target))
}

struct Checker {
    cluster: Arc<str>,
    config: HealthCheckConfig,
    probe: Arc<dyn Probe>,
    /// Keyed by address so a host keeps its counters across membership updates that rebuild
    /// its `Arc`; addresses that leave are dropped.
    states: HashMap<Address, HostState>,
}

impl Checker {
    async fn run(mut self, target: Weak<dyn HealthTarget>) {
        loop {
            // Not held across the round: the cluster may go away meanwhile.
            let Some(members) = target.upgrade().map(|t| t.hosts()) else {
                return;
            };
            let now = Instant::now();
            let mut changed = self.update_members(members, now);
            changed |= self.check_due(now).await;
            if changed {
                let Some(target) = target.upgrade() else {
                    return;
                };
                target.health_changed();
            }
            let wake = self.states.values().map(|s| s.next_due).min();
            tokio::time::sleep_until(wake.unwrap_or_else(|| Instant::now() + self.config.interval))
                .await;
        }
    }

    /// Forgets addresses that left and starts tracking new ones. Returns whether any host's
    /// healthiness changed.
    fn update_members(&mut self, members: Vec<Arc<Host>>, now: Instant) -> bool {
        let mut by_address: HashMap<Address, Vec<Arc<Host>>> = HashMap::new();
        for host in members {
            by_address
                .entry(host.address.clone())
                .or_default()
                .push(host);
        }
        self.states
            .retain(|address, _| by_address.contains_key(address));
        let mut changed = false;
        for (address, hosts) in by_address {
            let state = self
                .states
                .entry(address)
                .or_insert_with(|| HostState::new(now));
            changed |= state.set_members(hosts);
        }
        changed
    }

    /// Checks every host due by `now` at once and records the results. Returns whether any
    /// host's healthiness changed.
    async fn check_due(&mut self, now: Instant) -> bool {
        let due: Vec<Address> = self
            .states
            .iter()
            .filter(|(_, s)| s.next_due <= now)
            .map(|(a, _)| a.clone())
            .collect();
        let mut checks = JoinSet::new();
        for address in due.iter().cloned() {
            let probe = self.probe.clone();
            let timeout = self.config.timeout;
            let hostname = self
                .states
                .get(&address)
                .and_then(|s| s.hostname().cloned());
            checks.spawn(async move {
                let check = probe.check(&address, hostname.as_deref());
                let result = tokio::time::timeout(timeout, check)
                    .await
                    .unwrap_or(Err(ProbeError::TimedOut(timeout)));
                (address, result)
            });
        }
        let mut changed = false;
        while let Some(done) = checks.join_next().await {
            // A probe that panicked gives no verdict this round.
            let Ok((address, result)) = done else {
                continue;
            };
            let Some(state) = self.states.get_mut(&address) else {
                continue;
            };
            let recorded = state.record(result.is_ok(), &self.config);
            changed |= recorded.health_changed;
            self.log(&address, recorded.flipped, result.err());
        }
        let end = Instant::now();
        for address in &due {
            if let Some(state) = self.states.get_mut(address) {
                let wait = self.config.interval_for(!state.failing());
                state.next_due = end + wait + jitter(self.config.interval_jitter);
            }
        }
        changed
    }

    fn log(&self, address: &Address, flipped: Option<bool>, error: Option<ProbeError>) {
        let cluster = &*self.cluster;
        match (flipped, error) {
            (Some(true), Some(reason)) => {
                tracing::info!(cluster, host = %address, %reason, "host became unhealthy");
            }
            (Some(false), _) => tracing::info!(cluster, host = %address, "host became healthy"),
            (_, Some(reason)) => {
                tracing::debug!(cluster, host = %address, %reason, "health check failed");
            }
            (_, None) => {}
        }
    }
}

/// A random extra wait up to `max`, so checks spread out instead of moving in lockstep.
fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use arc_swap::ArcSwap;
    use tokio::sync::mpsc;

    use super::*;
    use crate::health::probe::ProbeFuture;
    use crate::host::health;

    #[derive(Clone, Copy, Debug)]
    enum Answer {
        Pass,
        Fail,
        /// Never answers: the checker's timeout must end it.
        Hang,
    }
    use Answer::*;

    /// One call of the fake probe: which host, its how-manyth call, and the host's flags then.
    #[derive(Debug)]
    struct Call {
        address: Address,
        nth: usize,
        flags: u8,
    }

    /// Answers each host from its script, repeating the script's last answer once it runs out.
    struct FakeProbe {
        scripts: Vec<(Arc<Host>, Vec<Answer>, AtomicUsize)>,
        calls: mpsc::UnboundedSender<Call>,
    }

    impl FakeProbe {
        fn new(
            scripts: Vec<(&Arc<Host>, Vec<Answer>)>,
        ) -> (Arc<FakeProbe>, mpsc::UnboundedReceiver<Call>) {
            let (tx, rx) = mpsc::unbounded_channel();
            let scripts = scripts
                .into_iter()
                .map(|(h, s)| (h.clone(), s, AtomicUsize::new(0)))
                .collect();
            (Arc::new(FakeProbe { scripts, calls: tx }), rx)
        }

        fn count(&self, host: &Arc<Host>) -> usize {
            self.scripts
                .iter()
                .find(|(h, _, _)| Arc::ptr_eq(h, host))
                .map_or(0, |(_, _, n)| n.load(Ordering::SeqCst))
        }
    }

    impl Probe for FakeProbe {
        fn check<'a>(&'a self, address: &'a Address, _: Option<&'a str>) -> ProbeFuture<'a> {
            let (host, script, count) = self
                .scripts
                .iter()
                .find(|(h, _, _)| h.address == *address)
                .expect("a scripted host");
            let n = count.fetch_add(1, Ordering::SeqCst);
            let answer = script[n.min(script.len() - 1)];
            let _ = self.calls.send(Call {
                address: address.clone(),
                nth: n + 1,
                flags: host.health_flags(),
            });
            Box::pin(async move {
                match answer {
                    Pass => Ok(()),
                    Fail => Err(ProbeError::BadStatus(503)),
                    Hang => std::future::pending().await,
                }
            })
        }
    }

    /// What the cluster saw when told health changed: each member's health and probe count.
    type Snapshot = Vec<(bool, usize)>;

    struct FakeCluster {
        hosts: ArcSwap<Vec<Arc<Host>>>,
        probe: Arc<FakeProbe>,
        changes: mpsc::UnboundedSender<Snapshot>,
    }

    impl HealthTarget for FakeCluster {
        fn hosts(&self) -> Vec<Arc<Host>> {
            self.hosts.load().to_vec()
        }

        fn health_changed(&self) {
            let snapshot = self
                .hosts
                .load()
                .iter()
                .map(|h| (h.is_healthy(), self.probe.count(h)))
                .collect();
            let _ = self.changes.send(snapshot);
        }
    }

    fn cluster(
        hosts: &[&Arc<Host>],
        probe: &Arc<FakeProbe>,
    ) -> (Arc<FakeCluster>, mpsc::UnboundedReceiver<Snapshot>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let cluster = Arc::new(FakeCluster {
            hosts: ArcSwap::from_pointee(hosts.iter().map(|h| (*h).clone()).collect()),
            probe: probe.clone(),
            changes: tx,
        });
        (cluster, rx)
    }

    fn start(cluster: &Arc<FakeCluster>, config: HealthCheckConfig) -> JoinHandle<()> {
        let target: Arc<dyn HealthTarget> = cluster.clone();
        let probe: Arc<dyn Probe> = cluster.probe.clone();
        spawn("api", config, probe, Arc::downgrade(&target))
    }

    fn host(port: u16) -> Arc<Host> {
        Arc::new(Host::plain(
            Address::parse(&format!("127.0.0.1:{port}")).unwrap(),
        ))
    }

    fn config(unhealthy: u32, healthy: u32) -> HealthCheckConfig {
        crate::health::test_config(unhealthy, healthy, Duration::from_millis(500))
    }

    /// Waits (in paused time, so only as long as the checker needs) for a message; a test
    /// whose expected event never comes fails instead of hanging.
    async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
        tokio::time::timeout(Duration::from_secs(3600), rx.recv())
            .await
            .expect("the checker went quiet")
            .expect("the checker ended")
    }

    /// Skips calls until `address`'s `nth`.
    async fn call(
        calls: &mut mpsc::UnboundedReceiver<Call>,
        address: &Address,
        nth: usize,
    ) -> Call {
        loop {
            let c = next(calls).await;
            if c.address == *address && c.nth == nth {
                return c;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_after_the_threshold_and_healthy_after_recovery() {
        let (a, b) = (host(1), host(2));
        let (probe, mut calls) = FakeProbe::new(vec![
            (&a, vec![Pass, Fail, Fail, Pass, Pass]),
            (&b, vec![Pass]),
        ]);
        let (cluster, mut changes) = cluster(&[&a, &b], &probe);
        let _task = start(&cluster, config(2, 2));

        let first = call(&mut calls, &a.address, 1).await;
        assert_eq!(first.flags, health::PENDING_ACTIVE_HC);
        // Round 1 passes, round 2's single failure is under the threshold; round 3 fails it.
        assert_eq!(next(&mut changes).await, [(false, 3), (true, 3)]);
        assert_eq!(a.health_flags(), health::FAILED_ACTIVE_HC);
        // Rounds 4 and 5 pass: healthy again at the second success.
        assert_eq!(next(&mut changes).await, [(true, 5), (true, 5)]);
        assert_eq!(a.health_flags(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_result_decides_and_a_timeout_is_a_failure() {
        let a = host(1);
        let (probe, _calls) = FakeProbe::new(vec![(&a, vec![Hang, Pass])]);
        let (cluster, mut changes) = cluster(&[&a], &probe);
        let _task = start(&cluster, config(3, 1));
        // Under an unhealthy_threshold of 3, yet failed by its first (timed-out) check.
        assert_eq!(next(&mut changes).await, [(false, 1)]);
        assert_eq!(a.health_flags(), health::FAILED_ACTIVE_HC);
        assert_eq!(next(&mut changes).await, [(true, 2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn hosts_that_leave_are_forgotten() {
        let (a, b) = (host(1), host(2));
        let (probe, mut calls) = FakeProbe::new(vec![(&a, vec![Fail, Pass]), (&b, vec![Pass])]);
        let (cluster, mut changes) = cluster(&[&a, &b], &probe);
        let _task = start(&cluster, config(1, 3));
        assert_eq!(next(&mut changes).await, [(false, 1), (true, 1)]);

        // One success of the three needed, then `a` leaves.
        call(&mut calls, &a.address, 2).await;
        cluster.hosts.store(Arc::new(vec![b.clone()]));
        // A round without `a` has begun, so its state is gone.
        call(&mut calls, &b.address, 3).await;
        cluster.hosts.store(Arc::new(vec![a.clone(), b.clone()]));

        // Back, it is new again: pending, and its first result decides (one success, not
        // the two more a remembered count would need).
        let back = call(&mut calls, &a.address, 3).await;
        assert_ne!(back.flags & health::PENDING_ACTIVE_HC, 0);
        assert_eq!(next(&mut changes).await, [(true, 3), (true, 4)]);
    }

    #[tokio::test(start_paused = true)]
    async fn failing_hosts_use_the_unhealthy_interval() {
        let (a, b) = (host(1), host(2));
        let (probe, mut calls) = FakeProbe::new(vec![(&a, vec![Fail]), (&b, vec![Pass])]);
        let (cluster, _changes) = cluster(&[&a, &b], &probe);
        let mut config = config(1, 1);
        config.interval = Duration::from_secs(60);
        config.unhealthy_interval = Some(Duration::from_secs(1));
        let _task = start(&cluster, config);
        call(&mut calls, &a.address, 5).await;
        assert_eq!(probe.count(&b), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_ends_with_its_cluster() {
        let a = host(1);
        let (probe, mut calls) = FakeProbe::new(vec![(&a, vec![Pass])]);
        let (cluster, _changes) = cluster(&[&a], &probe);
        let task = start(&cluster, config(1, 1));
        call(&mut calls, &a.address, 1).await;
        drop(cluster);
        tokio::time::timeout(Duration::from_secs(3600), task)
            .await
            .expect("the task ended")
            .unwrap();
    }
}
