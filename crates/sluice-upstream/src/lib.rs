//! Upstream side: clusters of hosts, how one host is chosen, and how a connection to it is made.

pub mod breakers;
mod clock;
pub mod cluster;
pub mod connect;
pub mod dns;
pub mod group;
pub mod health;
pub mod host;
pub mod lb;
pub mod manager;
pub mod outlier;
pub mod snapshot;
pub mod stats;

pub use cluster::{Cluster, NoHost};
pub use connect::ConnectError;
pub use group::HostGroup;
pub use host::Host;
pub use lb::LbContext;
pub use manager::ClusterManager;
pub use snapshot::ClusterSnapshot;

#[cfg(test)]
pub(crate) mod testing {
    use sluice_config::ClusterConfig;

    /// One cluster from its YAML flow mapping (`{ name: c, endpoints: [...] }`).
    pub fn cluster_config(yaml: &str) -> ClusterConfig {
        let src = format!("clusters:\n  - {yaml}\n");
        let config =
            sluice_config::load_str(&src, "test.yaml", &sluice_config::Registry::default())
                .unwrap_or_else(|e| panic!("{e}"));
        config.clusters.into_iter().next().expect("one cluster")
    }
}
