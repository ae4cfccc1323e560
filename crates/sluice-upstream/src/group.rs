//! A group of hosts (a whole cluster, or one subset of it) arranged for picking: split into
//! priority levels, each level into locality tiers, each tier with its own balancer over the
//! hosts it uses. Built whenever membership or health changes, never per request.
//!
//! Traffic goes to level 0 as far as its health allows, the rest spills to the next level:
//! a level's capacity is `healthy / total × overprovisioning_factor`, capped at 100%. Within a
//! level, the tiers (the caller's own sub-zone, zone, region, then everything else) share the
//! level's traffic by the same rule. A level with fewer healthy hosts than
//! `healthy_panic_threshold` is in panic and uses all its hosts, healthy or not.

use std::sync::Arc;

use sluice_config::{LbConfig, LbPolicy, LocalLocality};

use crate::host::Host;
use crate::lb::{self, LbContext, LoadBalancer};

/// Shares are parts of this whole.
const WHOLE: u32 = 10_000;

/// What a group's arrangement depends on, besides its hosts (from the cluster's config).
#[derive(Debug, Clone)]
pub struct GroupParams {
    pub policy: LbPolicy,
    pub lb_config: LbConfig,
    pub local: Option<LocalLocality>,
    /// Percent, at least 100.
    pub overprovisioning_factor: u32,
    /// Percent.
    pub healthy_panic_threshold: u32,
}

impl GroupParams {
    pub fn new(policy: LbPolicy) -> Self {
        GroupParams {
            policy,
            lb_config: LbConfig::default(),
            local: None,
            overprovisioning_factor: 140,
            healthy_panic_threshold: 50,
        }
    }
}

/// Hosts arranged for picking.
pub struct HostGroup {
    /// Every host of the group, in membership order.
    pub hosts: Vec<Arc<Host>>,
    levels: Vec<Level>,
    /// Cumulative shares of the levels; the last is [`WHOLE`] unless the group is empty.
    level_shares: Vec<u32>,
}

struct Level {
    priority: u32,
    panic: bool,
    tiers: Vec<Tier>,
    tier_shares: Vec<u32>,
}

struct Tier {
    /// The hosts this tier picks from (its healthy ones, or all in panic).
    hosts: Vec<Arc<Host>>,
    lb: Box<dyn LoadBalancer>,
}

impl HostGroup {
    pub fn new(hosts: Vec<Arc<Host>>, params: &GroupParams) -> HostGroup {
        let mut priorities: Vec<u32> = hosts.iter().map(|h| h.priority).collect();
        priorities.sort_unstable();
        priorities.dedup();
        let mut levels = Vec::with_capacity(priorities.len());
        let mut capacities = Vec::with_capacity(priorities.len());
        for priority in priorities {
            let members: Vec<&Arc<Host>> =
                hosts.iter().filter(|h| h.priority == priority).collect();
            let healthy = members.iter().filter(|h| h.is_healthy()).count();
            let panic = healthy * 100 < members.len() * params.healthy_panic_threshold as usize;
            capacities.push(capacity(
                if panic { members.len() } else { healthy },
                members.len(),
                params.overprovisioning_factor,
            ));
            levels.push(Level::new(priority, &members, panic, params));
        }
        let level_shares = spill(&capacities);
        HostGroup {
            hosts,
            levels,
            level_shares,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// A host for this request.
    pub fn choose(&self, ctx: &LbContext) -> Option<&Arc<Host>> {
        let level = match self.levels.len() {
            0 => return None,
            1 => &self.levels[0],
            _ => &self.levels[pick(&self.level_shares, draw(ctx, 0))?],
        };
        let tier = match level.tiers.len() {
            0 => return None,
            1 => &level.tiers[0],
            _ => &level.tiers[pick(&level.tier_shares, draw(ctx, 1))?],
        };
        let host = tier.lb.choose(ctx).and_then(|i| tier.hosts.get(i))?;
        if level.panic || host.is_healthy() {
            return Some(host);
        }
        // Flagged since this arrangement was built (an ejection whose rebuild is still on its
        // way): the flag is honoured at once, with a fresh draw or two from the same tier.
        for _ in 0..2 {
            let again = tier.lb.choose(&LbContext { hash: None })?;
            let again = tier.hosts.get(again)?;
            if again.is_healthy() {
                return Some(again);
            }
        }
        Some(host)
    }

    /// A host for a retry: preferably one `tried` does not hold. A few balancer draws first
    /// (so random policies still spread retries), then the first untried healthy host in
    /// preference order, then any untried host; `None` once every host was tried.
    pub fn choose_untried(&self, tried: &[Arc<Host>]) -> Option<&Arc<Host>> {
        let is_tried = |h: &Arc<Host>| tried.iter().any(|t| Arc::ptr_eq(t, h));
        for _ in 0..self.hosts.len().min(4) {
            // A hash would give the same host every time: draw at random instead.
            let host = self.choose(&LbContext { hash: None })?;
            if !is_tried(host) {
                return Some(host);
            }
        }
        self.levels
            .iter()
            .flat_map(|l| l.tiers.iter().flat_map(|t| t.hosts.iter()))
            .find(|h| !is_tried(h))
            .or_else(|| self.hosts.iter().find(|h| !is_tried(h)))
    }

    /// Per level: its priority, whether it is in panic, and its share of traffic in percent.
    pub fn level_loads(&self) -> Vec<(u32, bool, f64)> {
        let mut before = 0;
        self.levels
            .iter()
            .zip(&self.level_shares)
            .map(|(l, &cum)| {
                let share = f64::from(cum - before) * 100.0 / f64::from(WHOLE);
                before = cum;
                (l.priority, l.panic, share)
            })
            .collect()
    }
}

impl Level {
    fn new(priority: u32, members: &[&Arc<Host>], panic: bool, params: &GroupParams) -> Level {
        let usable = |h: &Arc<Host>| panic || h.is_healthy();
        // Tiers from the narrowest locality match to none; only those the config names.
        let scopes: Vec<Scope> = match &params.local {
            None => Vec::new(),
            Some(local) => [
                (local.sub_zone.is_some(), Scope::SubZone),
                (local.zone.is_some(), Scope::Zone),
                (local.region.is_some(), Scope::Region),
            ]
            .into_iter()
            .filter_map(|(named, scope)| named.then_some(scope))
            .collect(),
        };
        let mut placed = vec![false; members.len()];
        let mut groups: Vec<Vec<&Arc<Host>>> = Vec::with_capacity(4);
        for scope in scopes {
            let mut tier = Vec::new();
            for (i, h) in members.iter().enumerate() {
                if !placed[i] && params.local.as_ref().is_some_and(|l| scope.holds(l, h)) {
                    placed[i] = true;
                    tier.push(*h);
                }
            }
            groups.push(tier);
        }
        groups.push(
            members
                .iter()
                .zip(&placed)
                .filter(|(_, p)| !**p)
                .map(|(h, _)| *h)
                .collect(),
        );
        groups.retain(|g| !g.is_empty());
        let capacities: Vec<u32> = groups
            .iter()
            .map(|g| {
                let up = g.iter().filter(|h| usable(h)).count();
                capacity(up, g.len(), params.overprovisioning_factor)
            })
            .collect();
        let tiers: Vec<Tier> = groups
            .into_iter()
            .map(|g| {
                let hosts: Vec<Arc<Host>> = g.into_iter().filter(|h| usable(h)).cloned().collect();
                Tier {
                    lb: lb::build(params.policy, &hosts, &params.lb_config),
                    hosts,
                }
            })
            .collect();
        Level {
            priority,
            panic,
            tier_shares: spill(&capacities),
            tiers,
        }
    }
}

/// How much of the caller's locality a tier shares; each includes the ones after it.
#[derive(Debug, Clone, Copy)]
enum Scope {
    SubZone,
    Zone,
    Region,
}

impl Scope {
    /// Whether `h` lies within this scope of `local` (a part `local` leaves out matches all).
    fn holds(self, local: &LocalLocality, h: &Host) -> bool {
        let same =
            |mine: &Option<String>, theirs: &str| mine.as_deref().is_none_or(|m| m == theirs);
        let region = same(&local.region, &h.locality.region);
        let zone = region && same(&local.zone, &h.locality.zone);
        match self {
            Scope::Region => region,
            Scope::Zone => zone,
            Scope::SubZone => zone && same(&local.sub_zone, &h.locality.sub_zone),
        }
    }
}

/// `up / total × factor`, in parts of [`WHOLE`], capped at the whole.
fn capacity(up: usize, total: usize, factor_percent: u32) -> u32 {
    if total == 0 {
        return 0;
    }
    let c = (up as u64 * u64::from(factor_percent) * u64::from(WHOLE)) / (total as u64 * 100);
    c.min(u64::from(WHOLE)) as u32
}

/// Cumulative shares: each entry takes what its capacity allows of what is left, in order.
/// When the capacities fall short of the whole, the shares are scaled up in proportion to
/// them; when all are zero, everything goes to the first.
fn spill(capacities: &[u32]) -> Vec<u32> {
    let mut left = WHOLE;
    let mut shares: Vec<u32> = capacities
        .iter()
        .map(|&c| {
            let s = c.min(left);
            left -= s;
            s
        })
        .collect();
    let total: u32 = shares.iter().sum();
    if total == 0 {
        if let Some(first) = shares.first_mut() {
            *first = WHOLE;
        }
    } else if total < WHOLE {
        for s in &mut shares {
            *s = (u64::from(*s) * u64::from(WHOLE) / u64::from(total)) as u32;
        }
    }
    let mut cumulative = 0;
    let mut out: Vec<u32> = shares
        .into_iter()
        .map(|s| {
            cumulative += s;
            cumulative
        })
        .collect();
    // Rounding must not leave a gap at the top.
    if let Some(last) = out.iter_mut().rev().find(|c| **c > 0) {
        *last = WHOLE;
    }
    out
}

/// The entry whose cumulative share covers `r` (in `0..WHOLE`).
fn pick(cumulative: &[u32], r: u32) -> Option<usize> {
    let i = cumulative.partition_point(|&c| c <= r);
    (i < cumulative.len()).then_some(i)
}

/// A number in `0..WHOLE`: from the request's hash (so a key keeps its level and tier), or
/// random. `round` keeps level and tier draws independent.
fn draw(ctx: &LbContext, round: u32) -> u32 {
    match ctx.hash {
        Some(h) => (h.rotate_left(17 * round + 7) % u64::from(WHOLE)) as u32,
        None => fastrand::u32(..WHOLE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{health, Locality, Metadata};
    use sluice_config::Address;
    use std::collections::HashMap;

    fn host(port: u16, priority: u32, zone: &str) -> Arc<Host> {
        Arc::new(Host::new(
            Address::parse(&format!("127.0.0.1:{port}")).unwrap(),
            1,
            Metadata::default(),
            Locality {
                region: "r1".into(),
                zone: zone.into(),
                sub_zone: "".into(),
            },
            priority,
        ))
    }

    fn counts(group: &HostGroup, n: usize) -> std::collections::HashMap<u16, usize> {
        let mut c = std::collections::HashMap::new();
        for _ in 0..n {
            let h = group.choose(&LbContext::default()).unwrap();
            *c.entry(h.address.as_tcp().unwrap().port()).or_default() += 1;
        }
        c
    }

    #[test]
    fn spill_shares() {
        assert_eq!(spill(&[10_000, 10_000]), vec![10_000, 10_000]);
        assert_eq!(spill(&[7_000, 10_000]), vec![7_000, 10_000]);
        // Short of the whole: scaled up in proportion.
        assert_eq!(spill(&[2_000, 2_000]), vec![5_000, 10_000]);
        assert_eq!(spill(&[0, 0]), vec![10_000, 10_000]);
        assert_eq!(spill(&[0, 3_000]), vec![0, 10_000]);
        assert_eq!(spill(&[]), Vec::<u32>::new());
    }

    #[test]
    fn priority_failover_follows_overprovisioned_health() {
        fastrand::seed(11);
        let hosts: Vec<_> = (0..4)
            .map(|i| host(9000 + i, 0, "z"))
            .chain((0..4).map(|i| host(9100 + i, 1, "z")))
            .collect();
        let params = GroupParams::new(LbPolicy::RoundRobin);
        // All healthy: level 0 takes everything.
        let g = HostGroup::new(hosts.clone(), &params);
        assert_eq!(g.level_loads(), vec![(0, false, 100.0), (1, false, 0.0)]);
        // Half of level 0 down: 50% × 1.4 = 70% stays, 30% spills to level 1.
        hosts[0].set_health_flag(health::FAILED_OUTLIER, true);
        hosts[1].set_health_flag(health::FAILED_ACTIVE_HC, true);
        let g = HostGroup::new(hosts.clone(), &params);
        assert_eq!(g.level_loads(), vec![(0, false, 70.0), (1, false, 30.0)]);
        let c = counts(&g, 20_000);
        let level0: usize = (9000..9004).map(|p| c.get(&p).copied().unwrap_or(0)).sum();
        assert!((13_500..14_500).contains(&level0), "{c:?}");
        assert!(!c.contains_key(&9000) && !c.contains_key(&9001), "{c:?}");
    }

    #[test]
    fn a_level_in_panic_uses_all_its_hosts() {
        let hosts: Vec<_> = (0..4).map(|i| host(9000 + i, 0, "z")).collect();
        for h in &hosts[..3] {
            h.set_health_flag(health::FAILED_OUTLIER, true);
        }
        let g = HostGroup::new(hosts, &GroupParams::new(LbPolicy::RoundRobin));
        assert_eq!(g.level_loads(), vec![(0, true, 100.0)]);
        assert_eq!(counts(&g, 400).len(), 4);
    }

    #[test]
    fn zone_aware_prefers_the_local_zone_and_spills_in_proportion() {
        fastrand::seed(5);
        let hosts: Vec<_> = (0..4)
            .map(|i| host(9000 + i, 0, "z1"))
            .chain((0..4).map(|i| host(9100 + i, 0, "z2")))
            .collect();
        let mut params = GroupParams::new(LbPolicy::RoundRobin);
        params.local = Some(LocalLocality {
            region: None,
            zone: Some("z1".into()),
            sub_zone: None,
        });
        let g = HostGroup::new(hosts.clone(), &params);
        let c = counts(&g, 1000);
        assert!(c.keys().all(|p| *p < 9100), "all local: {c:?}");
        // One of four local hosts down: 75% × 1.4 ≥ 100%: still all local.
        hosts[0].set_health_flag(health::FAILED_OUTLIER, true);
        let g = HostGroup::new(hosts.clone(), &params);
        assert!(counts(&g, 1000).keys().all(|p| *p < 9100 && *p != 9000));
        // Two down: 50% × 1.4 = 70% local, 30% spills to z2.
        hosts[1].set_health_flag(health::FAILED_OUTLIER, true);
        let g = HostGroup::new(hosts.clone(), &params);
        let c = counts(&g, 20_000);
        let remote: usize = (9100..9104).map(|p| c.get(&p).copied().unwrap_or(0)).sum();
        assert!((5_500..6_500).contains(&remote), "{c:?}");
    }

    #[test]
    fn untried_hosts_first_then_none() {
        let hosts: Vec<_> = (0..3).map(|i| host(9000 + i, 0, "z")).collect();
        let g = HostGroup::new(hosts.clone(), &GroupParams::new(LbPolicy::Random));
        for _ in 0..20 {
            let h = g.choose_untried(&hosts[..2]).unwrap();
            assert!(Arc::ptr_eq(h, &hosts[2]));
        }
        assert!(g.choose_untried(&hosts).is_none());
    }

    #[test]
    fn a_host_flagged_after_the_build_is_avoided_at_once() {
        let hosts: Vec<_> = (0..2).map(|i| host(9000 + i, 0, "z")).collect();
        let g = HostGroup::new(hosts.clone(), &GroupParams::new(LbPolicy::RoundRobin));
        hosts[0].set_health_flag(health::FAILED_OUTLIER, true);
        // Not rebuilt; still only the healthy host comes out.
        assert_eq!(counts(&g, 50), HashMap::from([(9001, 50)]));
    }

    #[test]
    fn empty_group_chooses_nothing() {
        let g = HostGroup::new(Vec::new(), &GroupParams::new(LbPolicy::RoundRobin));
        assert!(g.choose(&LbContext::default()).is_none());
        assert!(g.is_empty());
    }
}
