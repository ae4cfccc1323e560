//! The probe seam: one check of one host, and why it failed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;

use std::sync::Arc;

use sluice_config::Address;
use sluice_net::{AppProtocol, Stream, TlsClient};

/// What [`Probe::check`] returns: boxed so probes can be trait objects chosen by config.
pub type ProbeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ProbeError>> + Send + 'a>>;

/// One kind of health check. A check opens its own connection, so a probe holds only its
/// settings and can check many hosts at once.
///
/// Probes need not bound their own time: the checker drops a check that outlives the
/// configured timeout (which closes its connection) and counts it as [`ProbeError::TimedOut`].
pub trait Probe: Send + Sync + 'static {
    /// Checks the host at `address`; `hostname` is the DNS name it was resolved from, if any
    /// (the TLS server name when the cluster sets no `sni`).
    fn check<'a>(&'a self, address: &'a Address, hostname: Option<&'a str>) -> ProbeFuture<'a>;
}

/// How a probe opens its connection: plain TCP, or TLS when the cluster has a `tls:` block
/// (checks go over the same transport as traffic, so they see what traffic would see).
#[derive(Clone, Default)]
pub struct Connector {
    pub tls: Option<Arc<TlsClient>>,
}

impl Connector {
    /// A connection to `address`, with the TLS handshake done for `protocol` if any. The
    /// checker's timeout bounds it.
    pub async fn connect(
        &self,
        address: &Address,
        hostname: Option<&str>,
        protocol: AppProtocol,
    ) -> Result<Stream, ProbeError> {
        let stream = sluice_net::connect(address)
            .await
            .map_err(ProbeError::Connect)?;
        match &self.tls {
            Some(tls) => tls
                .connect(stream, address, hostname, protocol)
                .await
                .map_err(ProbeError::Connect),
            None => Ok(stream),
        }
    }
}

/// Why a host failed a check; logged when the host's health changes.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("connection failed: {0}")]
    Io(io::Error),
    #[error("unexpected HTTP status {0}")]
    BadStatus(u16),
    /// The gRPC call itself failed (`grpc-status` other than 0, OK).
    #[error("gRPC status {code}{}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    GrpcStatus { code: u32, message: String },
    /// The call succeeded but the service is not serving; `0` is UNKNOWN, `2` NOT_SERVING,
    /// `3` SERVICE_UNKNOWN.
    #[error("service status is {name} ({0}), not SERVING", name = serving_status_name(*.0))]
    NotServing(u64),
    /// The TCP reply ended, or reached the read limit, without every expected block.
    #[error("expected payload not found in {read} bytes of reply")]
    PayloadNotFound { read: usize },
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// The `grpc.health.v1.HealthCheckResponse.ServingStatus` name of a wire value.
fn serving_status_name(status: u64) -> &'static str {
    match status {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "unrecognised",
    }
}
