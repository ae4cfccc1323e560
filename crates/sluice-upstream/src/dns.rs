//! DNS discovery for `strict_dns` and `logical_dns` clusters: one task per cluster resolves
//! every endpoint name as soon as the cluster is built, then every `dns_refresh_rate`, and
//! republishes the members when the answers change.
//!
//! Nothing waits for it: readiness and requests go ahead, and until a name's first answer its
//! cluster simply lacks those hosts (a request then gets "has no endpoints"). A lookup that
//! gets no answer keeps the hosts the name had, so a DNS outage does not empty a cluster. A
//! host that leaves is dropped from the snapshot only; requests still holding it finish on
//! its connections, which close when the last of them lets go (see [`crate::host`]).

mod membership;
mod resolver;

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sluice_config::{Address, DiscoveryType, EndpointAddress};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{info, warn};

use crate::cluster::Cluster;
use crate::stats::ClusterStats;
use resolver::{DnsResolver, Resolve};

/// Starts the cluster's DNS refresh task on the current tokio runtime if the cluster has names
/// to resolve; it ends when the cluster is dropped.
pub fn spawn_for(cluster: &Arc<Cluster>) {
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let config = cluster.config.clone();
    spawn_with(cluster, move || DnsResolver::new(&config));
}

/// [`spawn_for`] with the resolver made by `connect` (tests pass a fake). `connect` is called
/// again on later refreshes while it fails (say, /etc/resolv.conf not there yet).
fn spawn_with<R, F>(cluster: &Arc<Cluster>, connect: F) -> Option<JoinHandle<()>>
where
    R: Resolve,
    F: FnMut() -> Result<R, String> + Send + 'static,
{
    let config = &cluster.config;
    if !config.discovery.uses_dns() {
        return None;
    }
    let names: Vec<(usize, Arc<str>)> = config
        .endpoints
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match &e.address {
            EndpointAddress::Name { host, .. } => Some((i, Arc::from(host.as_str()))),
            EndpointAddress::Socket(_) => None,
        })
        .collect();
    if names.is_empty() {
        return None;
    }
    let refresher = Refresher {
        cluster: cluster.name.clone(),
        logical: config.discovery == DiscoveryType::LogicalDns,
        refresh: config.dns_refresh_rate,
        names,
        answers: vec![None; config.endpoints.len()],
        failing: vec![false; config.endpoints.len()],
        connect,
        resolver: None,
    };
    Some(tokio::spawn(refresher.run(Arc::downgrade(cluster))))
}

/// The state of one cluster's refresh task.
struct Refresher<R, F> {
    cluster: Arc<str>,
    logical: bool,
    refresh: Duration,
    /// The endpoints to resolve: (index in the config's endpoints, name).
    names: Vec<(usize, Arc<str>)>,
    /// The addresses last resolved, by endpoint index; `None` before a name's first answer.
    answers: Vec<Option<Vec<IpAddr>>>,
    /// By endpoint index: whether its last lookup failed, so a failure streak warns once.
    failing: Vec<bool>,
    connect: F,
    resolver: Option<Arc<R>>,
}

impl<R, F> Refresher<R, F>
where
    R: Resolve,
    F: FnMut() -> Result<R, String> + Send + 'static,
{
    /// Resolves at once, then every `refresh` until the cluster is gone. The cluster is held
    /// only while answers are applied, never across a lookup.
    async fn run(mut self, cluster: Weak<Cluster>) {
        loop {
            if cluster.strong_count() == 0 {
                return;
            }
            let results = self.resolve_all().await;
            let Some(cluster) = cluster.upgrade() else {
                return;
            };
            self.record(&cluster, results);
            let change = membership::apply(&cluster, &self.answers);
            if !change.is_empty() {
                ClusterStats::add(&cluster.stats.membership_change);
                info!(
                    cluster = %self.cluster,
                    added = %list(&change.added),
                    removed = %list(&change.removed),
                    hosts = cluster.snapshot().hosts().len(),
                    "cluster membership changed"
                );
            }
            drop(cluster);
            tokio::time::sleep(self.refresh).await;
        }
    }

    /// Looks every name up at once; the answers come back in the order of `names`.
    async fn resolve_all(&mut self) -> Vec<Result<Vec<IpAddr>, String>> {
        let resolver = match &self.resolver {
            Some(r) => r.clone(),
            None => match (self.connect)() {
                Ok(r) => self.resolver.insert(Arc::new(r)).clone(),
                Err(e) => return vec![Err(e); self.names.len()],
            },
        };
        let mut results = vec![Err("the lookup task failed".to_string()); self.names.len()];
        let mut lookups = JoinSet::new();
        for (k, (_, name)) in self.names.iter().enumerate() {
            let (resolver, name) = (resolver.clone(), name.clone());
            lookups.spawn(async move { (k, resolver.resolve(&name).await) });
        }
        while let Some(joined) = lookups.join_next().await {
            if let Ok((k, result)) = joined {
                results[k] = result;
            }
        }
        results
    }

    /// Takes in one round of answers: successes replace a name's addresses, failures keep
    /// them and are counted. A `logical_dns` name answering with no address counts as a
    /// failure, since its one host cannot point nowhere.
    fn record(&mut self, cluster: &Cluster, results: Vec<Result<Vec<IpAddr>, String>>) {
        for ((i, name), result) in self.names.iter().zip(results) {
            let i = *i;
            let result = match result {
                Ok(ips) if ips.is_empty() && self.logical => {
                    Err("the name has no address".to_string())
                }
                other => other,
            };
            match result {
                Ok(ips) => {
                    if std::mem::take(&mut self.failing[i]) {
                        info!(cluster = %self.cluster, name = %name, "DNS resolution recovered");
                    }
                    self.answers[i] = Some(ips);
                }
                Err(error) => {
                    ClusterStats::add(&cluster.stats.dns_resolve_failure);
                    if !std::mem::replace(&mut self.failing[i], true) {
                        let kept = self.answers[i].as_ref().map_or(0, Vec::len);
                        warn!(
                            cluster = %self.cluster,
                            name = %name,
                            %error,
                            kept_addresses = kept,
                            "DNS resolution failed; keeping the name's previous hosts"
                        );
                    }
                }
            }
        }
    }
}

/// `a, b` for a log line; `-` when empty.
fn list(addresses: &[Address]) -> String {
    if addresses.is_empty() {
        return "-".to_string();
    }
    addresses
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicU32, Ordering};

    use arc_swap::ArcSwap;
    use tokio::time::Instant;

    use super::*;

    type Answer = Result<Vec<IpAddr>, String>;

    /// Answers from a table the test rewrites; a name not in it fails.
    #[derive(Clone, Default)]
    struct Fake(Arc<ArcSwap<HashMap<String, Answer>>>);

    impl Fake {
        fn set(&self, name: &str, answer: Result<&[&str], &str>) {
            let mut table = HashMap::clone(&self.0.load());
            let answer = answer
                .map(|ips| ips.iter().map(|ip| ip.parse().unwrap()).collect())
                .map_err(str::to_string);
            table.insert(name.to_string(), answer);
            self.0.store(Arc::new(table));
        }
    }

    impl Resolve for Fake {
        async fn resolve(&self, name: &str) -> Answer {
            self.0
                .load()
                .get(name)
                .cloned()
                .unwrap_or_else(|| Err("unknown".to_string()))
        }
    }

    fn cluster(yaml: &str) -> Arc<Cluster> {
        Arc::new(Cluster::from_config(&crate::testing::cluster_config(yaml)).unwrap())
    }

    fn addresses(c: &Cluster) -> Vec<String> {
        c.hosts().iter().map(|h| h.address.to_string()).collect()
    }

    /// Waits (on the paused clock) until `cond` holds; fails after a simulated minute.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !cond() {
            assert!(Instant::now() < deadline, "never happened: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn count(c: &Cluster, counter: fn(&ClusterStats) -> &sluice_stats::Counter) -> u64 {
        counter(&c.stats).get()
    }

    const STRICT: &str = "{ name: c, type: strict_dns, dns_refresh_rate: 1s, endpoints: [{ address: \"a.test:80\" }] }";

    #[tokio::test(start_paused = true)]
    async fn strict_dns_resolves_at_once_then_follows_the_answers() {
        let c = cluster(STRICT);
        let dns = Fake::default();
        dns.set("a.test", Ok(&["10.0.0.1"]));
        let fake = dns.clone();
        let start = Instant::now();
        spawn_with(&c, move || Ok(fake.clone())).unwrap();
        until("first answer applied", || !c.hosts().is_empty()).await;
        assert!(
            Instant::now() - start < Duration::from_secs(1),
            "waited a refresh"
        );
        assert_eq!(addresses(&c), ["10.0.0.1:80"]);
        let first = c.hosts()[0].clone();

        dns.set("a.test", Ok(&["10.0.0.1", "10.0.0.2"]));
        until("second address added", || c.hosts().len() == 2).await;
        assert!(Arc::ptr_eq(&first, &c.hosts()[0]));

        dns.set("a.test", Ok(&["10.0.0.2"]));
        until("first address removed", || c.hosts().len() == 1).await;
        assert_eq!(addresses(&c), ["10.0.0.2:80"]);
        assert_eq!(count(&c, |s| &s.membership_change), 3);
        assert_eq!(count(&c, |s| &s.dns_resolve_failure), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_lookup_keeps_the_previous_hosts_and_is_counted() {
        let c = cluster(STRICT);
        let dns = Fake::default();
        dns.set("a.test", Ok(&["10.0.0.1"]));
        let fake = dns.clone();
        spawn_with(&c, move || Ok(fake.clone())).unwrap();
        until("first answer applied", || !c.hosts().is_empty()).await;
        let host = c.hosts()[0].clone();

        dns.set("a.test", Err("timed out"));
        until("two failures", || {
            count(&c, |s| &s.dns_resolve_failure) >= 2
        })
        .await;
        assert!(Arc::ptr_eq(&host, &c.hosts()[0]));
        assert_eq!(count(&c, |s| &s.membership_change), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_resolver_that_cannot_be_set_up_is_retried() {
        let c = cluster(STRICT);
        let dns = Fake::default();
        dns.set("a.test", Ok(&["10.0.0.1"]));
        let tries = Arc::new(AtomicU32::new(0));
        let (fake, counted) = (dns.clone(), tries.clone());
        spawn_with(&c, move || {
            if counted.fetch_add(1, Ordering::Relaxed) == 0 {
                Err("no resolv.conf".to_string())
            } else {
                Ok(fake.clone())
            }
        })
        .unwrap();
        until("resolved after a retry", || !c.hosts().is_empty()).await;
        assert_eq!(tries.load(Ordering::Relaxed), 2);
        assert_eq!(count(&c, |s| &s.dns_resolve_failure), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn logical_dns_replaces_its_one_host_when_the_address_moves() {
        let c = cluster(
            "{ name: c, type: logical_dns, dns_refresh_rate: 1s, endpoints: [{ address: \"a.test:80\" }] }",
        );
        let dns = Fake::default();
        dns.set("a.test", Ok(&["10.0.0.1", "10.0.0.2"]));
        let fake = dns.clone();
        spawn_with(&c, move || Ok(fake.clone())).unwrap();
        until("first answer applied", || !c.hosts().is_empty()).await;
        assert_eq!(addresses(&c), ["10.0.0.1:80"]);

        dns.set("a.test", Ok(&[]));
        until("empty answer counted", || {
            count(&c, |s| &s.dns_resolve_failure) >= 1
        })
        .await;
        assert_eq!(addresses(&c), ["10.0.0.1:80"]);

        dns.set("a.test", Ok(&["10.0.0.3"]));
        until("moved", || addresses(&c) == ["10.0.0.3:80"]).await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_ends_with_its_cluster_and_static_clusters_have_none() {
        let c = cluster(STRICT);
        let dns = Fake::default();
        let task = spawn_with(&c, move || Ok(dns.clone())).unwrap();
        drop(c);
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("task ended")
            .unwrap();

        let s = cluster("{ name: s, endpoints: [{ address: \"127.0.0.1:1\" }] }");
        assert!(spawn_with(&s, || Ok(Fake::default())).is_none());
    }
}
