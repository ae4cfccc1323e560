//! Opening a connection to some host of a cluster, moving on to another host when one fails.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use sluice_config::{Address, TcpKeepalive};
use sluice_net::{AppProtocol, Stream, TlsClient};
use tracing::debug;

use crate::cluster::Cluster;
use crate::host::{Host, OpenConnection};
use crate::lb::LbContext;
use crate::outlier::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cluster \"{0}\" has no endpoints")]
    NoHosts(Arc<str>),
    #[error(
        "cluster \"{cluster}\": {attempts} connect attempt(s) failed, last to {host}: {source}"
    )]
    Failed {
        cluster: Arc<str>,
        attempts: usize,
        host: String,
        #[source]
        source: io::Error,
    },
}

/// The TLS of one dial: the cluster's client settings, the DNS name the host was resolved
/// from (the server name when the cluster sets no `sni`), and what the connection will carry
/// (which decides the ALPN offered and accepted).
#[derive(Debug, Clone, Copy)]
pub struct DialTls<'a> {
    pub client: &'a TlsClient,
    pub hostname: Option<&'a str>,
    pub protocol: AppProtocol,
}

impl<'a> DialTls<'a> {
    /// The TLS for a connection of `protocol` to `host` of `cluster`, if the cluster has any.
    pub fn of(cluster: &'a Cluster, host: &'a Host, protocol: AppProtocol) -> Option<Self> {
        Self::with(
            cluster.tls_for(host).map(|t| &**t),
            host.hostname.as_deref(),
            protocol,
        )
    }

    pub fn with(
        client: Option<&'a TlsClient>,
        hostname: Option<&'a str>,
        protocol: AppProtocol,
    ) -> Option<Self> {
        client.map(|client| DialTls {
            client,
            hostname,
            protocol,
        })
    }
}

/// A connection to `address` within `timeout` (an error of kind `TimedOut` past it), with the
/// cluster's TCP keepalive turned on if it has one, and its TLS handshake done if it has TLS
/// (within the same `timeout`): how every upstream connection is made, by `tcp_proxy`, the
/// HTTP pools and `rpc_proxy` alike. A failed handshake is a failed connect.
pub async fn dial(
    address: &Address,
    timeout: Duration,
    keepalive: Option<&TcpKeepalive>,
    tls: Option<DialTls<'_>>,
) -> io::Result<Stream> {
    let connect = async {
        let stream = sluice_net::connect(address).await?;
        if let Some(k) = keepalive {
            if let Err(e) = sluice_net::set_keepalive(
                &stream,
                k.keepalive_time,
                k.keepalive_interval,
                k.keepalive_probes,
            ) {
                debug!(host = %address, error = %e, "cannot set TCP keepalive");
            }
        }
        match tls {
            Some(tls) => {
                tls.client
                    .connect(stream, address, tls.hostname, tls.protocol)
                    .await
            }
            None => Ok(stream),
        }
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            match tls {
                Some(_) => format!("connect and TLS handshake timed out after {timeout:?}"),
                None => format!("connect timed out after {timeout:?}"),
            },
        )),
    }
}

impl Cluster {
    /// Connects to a host chosen by the load balancer. A refused, failed or timed-out attempt
    /// moves on to a host not tried yet, up to `max_attempts` (or every host once when `None`).
    /// The connection counts in the host's `cx_active` while the returned guard is held.
    pub async fn connect(
        &self,
        max_attempts: Option<usize>,
        ctx: &LbContext,
    ) -> Result<(Stream, Arc<Host>, OpenConnection), ConnectError> {
        let n = self.snapshot().hosts().len();
        let max = max_attempts.unwrap_or(n).clamp(1, n.max(1));
        let mut tried: Vec<Arc<Host>> = Vec::new();
        let mut last: Option<(String, io::Error)> = None;
        let timeout = self.config.connect_timeout;
        for attempt in 0..max {
            let host = {
                let snapshot = self.snapshot();
                let group = &snapshot.all;
                let host = if tried.is_empty() {
                    group.choose(ctx)
                } else {
                    group.choose_untried(&tried)
                };
                match host {
                    Some(h) => h.clone(),
                    None => break,
                }
            };
            tried.push(host.clone());
            let tls = DialTls::of(self, &host, AppProtocol::Opaque);
            let keepalive = self.config.tcp_keepalive.as_ref();
            let started = std::time::Instant::now();
            let result = dial(&host.address, timeout, keepalive, tls).await;
            self.stats.connected(started, &result);
            let err = match result {
                Ok(stream) => {
                    // A connection made counts as a success for outlier detection.
                    self.report(&host, Outcome::Status(200));
                    let open = host.connections().opened();
                    return Ok((stream, host, open));
                }
                Err(e) => e,
            };
            debug!(cluster = %self.name, host = %host.address, attempt, error = %err, "upstream connect failed");
            self.report(&host, Outcome::ConnectFailure);
            host.connections().failed();
            last = Some((host.address.to_string(), err));
        }
        match last {
            None => Err(ConnectError::NoHosts(self.name.clone())),
            Some((host, source)) => Err(ConnectError::Failed {
                cluster: self.name.clone(),
                attempts: tried.len(),
                host,
                source,
            }),
        }
    }
}
