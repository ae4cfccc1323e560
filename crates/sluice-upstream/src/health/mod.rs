//! Active health checking: probes that ask one host whether it is well, and a task per cluster
//! that runs them on a timer and turns their answers into the hosts' health flags.
//!
//! The [`Probe`] trait is the seam: HTTP, TCP and gRPC probes are built in, and the heartbeat
//! probe serves every RPC protocol through its `Protocol::heartbeat` hook.

mod checker;
mod counted;
mod grpc;
mod heartbeat;
mod http;
mod probe;
mod registry;
mod state;
mod tcp;

pub use checker::{spawn, HealthTarget};

use std::sync::{Arc, Weak};

use crate::cluster::Cluster;

impl HealthTarget for Cluster {
    fn hosts(&self) -> Vec<Arc<crate::host::Host>> {
        Cluster::hosts(self)
    }

    fn health_changed(&self) {
        Cluster::health_changed(self)
    }
}

/// Starts the cluster's health checker on the current tokio runtime, if it has one
/// configured; it stops when the cluster is dropped.
pub fn spawn_for(cluster: &Arc<Cluster>) {
    let Some(config) = cluster.config.health_check.clone() else {
        return;
    };
    if tokio::runtime::Handle::try_current().is_err() {
        return;
    }
    let probe = Arc::new(counted::Counted {
        inner: probe_for(&config, &cluster.name, cluster.tls.clone()),
        stats: cluster.stats.clone(),
    });
    let weak: Weak<Cluster> = Arc::downgrade(cluster);
    let target: Weak<dyn HealthTarget> = weak;
    spawn(&cluster.name, config, probe, target);
}
pub use grpc::GrpcProbe;
pub use heartbeat::HeartbeatProbe;
pub use http::HttpProbe;
pub use probe::{Probe, ProbeError, ProbeFuture};
pub use registry::probe_for;
pub use tcp::TcpProbe;

/// A TCP check every second with the given thresholds and timeout, for the module's tests.
#[cfg(test)]
pub(crate) fn test_config(
    unhealthy_threshold: u32,
    healthy_threshold: u32,
    timeout: std::time::Duration,
) -> sluice_config::HealthCheckConfig {
    sluice_config::HealthCheckConfig {
        probe: sluice_config::ProbeConfig::Tcp(sluice_config::TcpCheck::default()),
        interval: std::time::Duration::from_secs(1),
        interval_jitter: std::time::Duration::ZERO,
        unhealthy_interval: None,
        timeout,
        unhealthy_threshold,
        healthy_threshold,
        line: 1,
    }
}
