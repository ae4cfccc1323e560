//! Choosing a cluster's probe: the built-in kinds from config, and named probes that other
//! protocols register.

use std::sync::Arc;

use sluice_config::{HealthCheckConfig, ProbeConfig};

use super::grpc::GrpcProbe;
use super::http::HttpProbe;
use super::probe::Probe;
use super::tcp::TcpProbe;

/// Builds the configured probe; `cluster_name` is the default `Host` (HTTP) or `:authority`
/// (gRPC).
pub fn probe_for(config: &HealthCheckConfig, cluster_name: &str) -> Arc<dyn Probe> {
    match &config.probe {
        ProbeConfig::Http(check) => Arc::new(HttpProbe::new(check, cluster_name)),
        ProbeConfig::Tcp(check) => Arc::new(TcpProbe::new(check)),
        ProbeConfig::Grpc(check) => Arc::new(GrpcProbe::new(check, cluster_name)),
    }
}

/// Makes a protocol's probe for one cluster (its health check settings and name).
pub type ProbeBuilder = fn(&HealthCheckConfig, &str) -> Arc<dyn Probe>;

/// Probes supplied by protocols rather than built in: an RPC protocol registers its heartbeat
/// here under its own name, and the cluster builds it by that name instead of calling
/// [`probe_for`]. Like `sluice_config::Registry`, it is a value filled at startup and passed
/// down, so tests can make their own.
#[derive(Default, Clone)]
pub struct ProbeRegistry {
    probes: Vec<(&'static str, ProbeBuilder)>,
}

impl ProbeRegistry {
    /// Adds `build` under `name`, replacing an earlier one of that name.
    pub fn register(&mut self, name: &'static str, build: ProbeBuilder) {
        self.probes.retain(|(n, _)| *n != name);
        self.probes.push((name, build));
    }

    pub fn get(&self, name: &str) -> Option<ProbeBuilder> {
        self.probes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, b)| *b)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.probes.iter().map(|(n, _)| *n)
    }

    /// The probe registered as `name`, built for one cluster.
    pub fn build(
        &self,
        name: &str,
        config: &HealthCheckConfig,
        cluster_name: &str,
    ) -> Option<Arc<dyn Probe>> {
        self.get(name).map(|build| build(config, cluster_name))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_config::Address;

    use super::*;
    use crate::health::probe::{ProbeError, ProbeFuture};

    struct Heartbeat;

    impl Probe for Heartbeat {
        fn check<'a>(&'a self, _: &'a Address) -> ProbeFuture<'a> {
            Box::pin(async { Err(ProbeError::Protocol("no heartbeat".into())) })
        }
    }

    fn config() -> HealthCheckConfig {
        crate::health::test_config(1, 1, Duration::from_secs(1))
    }

    #[tokio::test]
    async fn a_registered_probe_is_built_by_name() {
        let mut registry = ProbeRegistry::default();
        registry.register("rpc", |_, _| Arc::new(Heartbeat));
        assert_eq!(registry.names().collect::<Vec<_>>(), ["rpc"]);
        assert!(registry.build("other", &config(), "c").is_none());
        let probe = registry.build("rpc", &config(), "c").unwrap();
        let address = Address::parse("127.0.0.1:1").unwrap();
        let err = probe.check(&address).await.unwrap_err();
        assert_eq!(err.to_string(), "protocol error: no heartbeat");
    }
}
