//! A cluster: a named set of interchangeable hosts and the policy that picks among them.

use std::sync::Arc;
use std::time::Duration;

use sluice_config::{Address, ClusterConfig};

use crate::lb::{self, LoadBalancer};

/// One upstream endpoint.
#[derive(Debug)]
pub struct Host {
    pub address: Address,
    pub weight: u32,
}

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
            .map(|e| {
                Arc::new(Host {
                    address: e.address.clone(),
                    weight: e.weight,
                })
            })
            .collect();
        let weights: Vec<u32> = hosts.iter().map(|h| h.weight).collect();
        Cluster {
            name: config.name.as_str().into(),
            connect_timeout: config.connect_timeout,
            lb: lb::build(config.lb_policy, &weights),
            hosts,
        }
    }

    /// Index of the next host the load balancer picks, if the cluster has any.
    pub fn choose(&self) -> Option<usize> {
        if self.hosts.is_empty() {
            None
        } else {
            Some(self.lb.choose() % self.hosts.len())
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
    use sluice_config::{EndpointConfig, LbPolicy, UpstreamProtocol};

    fn cluster(n: u16, lb_policy: LbPolicy) -> Cluster {
        Cluster::from_config(&ClusterConfig {
            name: "c".into(),
            protocol: UpstreamProtocol::Http1,
            http2_protocol_options: Default::default(),
            common_http_protocol_options: Default::default(),
            connect_timeout: Duration::from_secs(1),
            lb_policy,
            endpoints: (0..n)
                .map(|i| EndpointConfig {
                    address: Address::parse(&format!("127.0.0.1:{}", 9000 + i)).unwrap(),
                    weight: 1,
                })
                .collect(),
            line: 1,
        })
    }

    #[test]
    fn choose_untried_skips_tried_hosts_and_ends() {
        for policy in [LbPolicy::RoundRobin, LbPolicy::Random] {
            let c = cluster(3, policy);
            for _ in 0..20 {
                assert_eq!(c.choose_untried(|i| i != 2), Some(2));
            }
            assert_eq!(c.choose_untried(|_| true), None);
            assert!(c.choose_untried(|_| false).is_some_and(|i| i < 3));
        }
        assert_eq!(
            cluster(0, LbPolicy::RoundRobin).choose_untried(|_| false),
            None
        );
    }
}
