//! What the checker remembers of one host address between rounds, and how a result moves it:
//! the first result decides at once; afterwards it takes `unhealthy_threshold` failures in a
//! row to fail a host and `healthy_threshold` successes in a row to restore it.

use std::sync::Arc;

use sluice_config::HealthCheckConfig;
use tokio::time::Instant;

use crate::host::{health, Host};

pub(super) struct HostState {
    /// The members with this address (normally one); they all get the same flags.
    hosts: Vec<Arc<Host>>,
    /// Some result has come in.
    checked: bool,
    /// The checks' verdict: FAILED_ACTIVE_HC is set on the hosts.
    failing: bool,
    successes: u32,
    failures: u32,
    /// When this address is next checked.
    pub(super) next_due: Instant,
}

/// What one result did.
pub(super) struct Recorded {
    /// The verdict flipped: `Some(true)` now failing, `Some(false)` passing again.
    pub(super) flipped: Option<bool>,
    /// Some host's [`Host::is_healthy`] changed.
    pub(super) health_changed: bool,
}

impl HostState {
    /// A newly seen address, due at once.
    pub(super) fn new(now: Instant) -> HostState {
        HostState {
            hosts: Vec::new(),
            checked: false,
            failing: false,
            successes: 0,
            failures: 0,
            next_due: now,
        }
    }

    /// The DNS name the members' address was resolved from, if any.
    pub(super) fn hostname(&self) -> Option<&std::sync::Arc<str>> {
        self.hosts.iter().find_map(|h| h.hostname.as_ref())
    }

    pub(super) fn failing(&self) -> bool {
        self.failing
    }

    /// Makes `members` the hosts this state speaks for. One not seen before gets the current
    /// verdict, or PENDING_ACTIVE_HC while there is none. Returns whether any host's
    /// healthiness changed.
    pub(super) fn set_members(&mut self, members: Vec<Arc<Host>>) -> bool {
        let mut changed = false;
        for host in &members {
            if !self.hosts.iter().any(|h| Arc::ptr_eq(h, host)) {
                changed |= host.set_health_flag(health::PENDING_ACTIVE_HC, !self.checked);
                if self.checked {
                    changed |= host.set_health_flag(health::FAILED_ACTIVE_HC, self.failing);
                }
            }
        }
        self.hosts = members;
        changed
    }

    /// Counts one result and sets the hosts' flags to match.
    pub(super) fn record(&mut self, passed: bool, config: &HealthCheckConfig) -> Recorded {
        if passed {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let was_failing = self.failing;
        self.failing = if !self.checked {
            !passed
        } else if passed {
            was_failing && self.successes < config.healthy_threshold
        } else {
            was_failing || self.failures >= config.unhealthy_threshold
        };
        self.checked = true;
        let mut health_changed = false;
        for host in &self.hosts {
            health_changed |= host.set_health_flag(health::PENDING_ACTIVE_HC, false);
            health_changed |= host.set_health_flag(health::FAILED_ACTIVE_HC, self.failing);
        }
        Recorded {
            flipped: (was_failing != self.failing).then_some(self.failing),
            health_changed,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_config::Address;

    use super::*;

    fn config(unhealthy: u32, healthy: u32) -> HealthCheckConfig {
        crate::health::test_config(unhealthy, healthy, Duration::from_secs(1))
    }

    fn state_with_host() -> (HostState, Arc<Host>) {
        let host = Arc::new(Host::plain(Address::parse("127.0.0.1:1").unwrap()));
        let mut state = HostState::new(Instant::now());
        assert!(!state.set_members(vec![host.clone()]));
        (state, host)
    }

    #[test]
    fn pending_until_the_first_result_which_decides() {
        let (mut state, host) = state_with_host();
        assert_eq!(host.health_flags(), health::PENDING_ACTIVE_HC);
        let r = state.record(false, &config(3, 3));
        assert_eq!((r.flipped, r.health_changed), (Some(true), true));
        assert_eq!(host.health_flags(), health::FAILED_ACTIVE_HC);

        let (mut state, host) = state_with_host();
        let r = state.record(true, &config(3, 3));
        assert_eq!((r.flipped, r.health_changed), (None, false));
        assert_eq!(host.health_flags(), 0);
    }

    #[test]
    fn thresholds_count_results_in_a_row() {
        let (mut state, host) = state_with_host();
        let c = config(2, 3);
        let flips: Vec<Option<bool>> = [
            true, false, true, false, false, true, true, false, true, true, true,
        ]
        .into_iter()
        .map(|passed| state.record(passed, &c).flipped)
        .collect();
        let (down, up) = (Some(true), Some(false));
        assert_eq!(
            flips,
            [None, None, None, None, down, None, None, None, None, None, up]
        );
        assert!(host.is_healthy());
    }

    #[test]
    fn a_new_member_at_a_known_address_gets_the_verdict() {
        let (mut state, host) = state_with_host();
        state.record(false, &config(1, 1));
        let twin = Arc::new(Host::plain(host.address.clone()));
        assert!(state.set_members(vec![host.clone(), twin.clone()]));
        assert!(!twin.is_healthy());
        state.record(true, &config(1, 1));
        assert!(host.is_healthy() && twin.is_healthy());
    }
}
