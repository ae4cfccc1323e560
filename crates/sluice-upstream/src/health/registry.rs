//! Choosing a cluster's probe from its config.

use std::sync::Arc;

use sluice_config::{HealthCheckConfig, ProbeConfig};

use super::grpc::GrpcProbe;
use super::heartbeat::HeartbeatProbe;
use super::http::HttpProbe;
use super::probe::Probe;
use super::tcp::TcpProbe;

/// Builds the configured probe; `cluster_name` is the default `Host` (HTTP) or `:authority`
/// (gRPC). A `heartbeat` probe finds its protocol among the registered ones
/// (`sluice_xprotocol::protocols`), so a protocol a build adds gets heartbeat checks too.
pub fn probe_for(config: &HealthCheckConfig, cluster_name: &str) -> Arc<dyn Probe> {
    match &config.probe {
        ProbeConfig::Http(check) => Arc::new(HttpProbe::new(check, cluster_name)),
        ProbeConfig::Tcp(check) => Arc::new(TcpProbe::new(check)),
        ProbeConfig::Grpc(check) => Arc::new(GrpcProbe::new(check, cluster_name)),
        ProbeConfig::Heartbeat(check) => Arc::new(HeartbeatProbe::new(check)),
    }
}
