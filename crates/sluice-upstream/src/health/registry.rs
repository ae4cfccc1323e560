//! Choosing a cluster's probe from its config.

use std::sync::Arc;

use sluice_config::{HealthCheckConfig, ProbeConfig};

use super::grpc::GrpcProbe;
use super::heartbeat::HeartbeatProbe;
use super::http::HttpProbe;
use super::probe::{Connector, Probe};
use super::tcp::TcpProbe;

/// Builds the configured probe; `cluster_name` is the default `Host` (HTTP) or `:authority`
/// (gRPC). A `heartbeat` probe finds its protocol among the registered ones
/// (`sluice_xprotocol::protocols`), so a protocol a build adds gets heartbeat checks too.
/// With `tls` (the cluster's), every probe connects over TLS as traffic does.
pub fn probe_for(
    config: &HealthCheckConfig,
    cluster_name: &str,
    tls: Option<Arc<sluice_net::TlsClient>>,
) -> Arc<dyn Probe> {
    let connector = Connector { tls };
    match &config.probe {
        ProbeConfig::Http(check) => {
            let mut probe = HttpProbe::new(check, cluster_name);
            probe.connector = connector;
            Arc::new(probe)
        }
        ProbeConfig::Tcp(check) => {
            let mut probe = TcpProbe::new(check);
            probe.connector = connector;
            Arc::new(probe)
        }
        ProbeConfig::Grpc(check) => {
            let mut probe = GrpcProbe::new(check, cluster_name);
            probe.connector = connector;
            Arc::new(probe)
        }
        ProbeConfig::Heartbeat(check) => {
            let mut probe = HeartbeatProbe::new(check);
            probe.connector = connector;
            Arc::new(probe)
        }
    }
}
