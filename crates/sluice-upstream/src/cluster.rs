//! A cluster: a named set of interchangeable hosts and the policy that picks among them.

use std::sync::Arc;
use std::time::Duration;

use sluice_config::ClusterConfig;

use crate::host::{Host, Locality, Metadata};
use crate::lb::{self, LbContext, LoadBalancer};

pub struct Cluster {
    pub name: Arc<str>,
    pub connect_timeout: Duration,
    pub hosts: Vec<Arc<Host>>,
    pub(crate) lb: Box<dyn LoadBalancer>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    pub fn from_config(config: &ClusterConfig) -> Cluster {
        let hosts: Vec<Arc<Host>> = config
            .endpoints
            .iter()
            .filter_map(|e| {
                Some(Arc::new(Host::new(
                    e.address.socket()?.clone(),
                    e.weight,
                    Metadata::default(),
                    Locality::default(),
                    e.priority,
                )))
            })
            .collect();
        Cluster {
            name: config.name.as_str().into(),
            connect_timeout: config.connect_timeout,
            lb: lb::build(config.lb_policy, &hosts, &config.lb_config),
            hosts,
        }
    }

    /// Index of the next host the load balancer picks, if the cluster has any.
    pub fn choose(&self) -> Option<usize> {
        if self.hosts.is_empty() {
            None
        } else {
            self.lb.choose(&LbContext::default())
        }
    }

    /// The balancer's choice if `tried` says it is new; otherwise the first host not tried yet;
    /// `None` once every host was tried. A few draws come first, so random balancing still
    /// spreads retries. Used by connect failover and HTTP retries alike.
    pub fn choose_untried(&self, tried: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.hosts.len();
        for _ in 0..n.min(4) {
            let i = self.choose()?;
            if !tried(i) {
                return Some(i);
            }
        }
        (0..n).find(|&i| !tried(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(n: u16, lb_policy: &str) -> Cluster {
        let endpoints: String = (0..n)
            .map(|i| format!("{{ address: \"127.0.0.1:{}\" }}, ", 9000 + i))
            .collect();
        Cluster::from_config(&crate::testing::cluster_config(&format!(
            "{{ name: c, lb_policy: {lb_policy}, endpoints: [{endpoints}] }}"
        )))
    }

    #[test]
    fn choose_untried_skips_tried_hosts_and_ends() {
        for policy in ["round_robin", "random"] {
            let c = cluster(3, policy);
            for _ in 0..20 {
                assert_eq!(c.choose_untried(|i| i != 2), Some(2));
            }
            assert_eq!(c.choose_untried(|_| true), None);
            assert!(c.choose_untried(|_| false).is_some_and(|i| i < 3));
        }
        assert_eq!(cluster(0, "round_robin").choose_untried(|_| false), None);
    }
}
