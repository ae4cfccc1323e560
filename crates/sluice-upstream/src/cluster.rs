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
}
