//! Upstream side: clusters of hosts, how one host is chosen, and how a connection to it is made.

pub mod cluster;
pub mod connect;
pub mod lb;
pub mod manager;

pub use cluster::{Cluster, Host};
pub use connect::ConnectError;
pub use manager::ClusterManager;
