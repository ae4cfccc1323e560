//! The clusters `rpc_proxy` forwards to, and each host's multiplexed connection.
//!
//! A host gets one connection per protocol, shared by every downstream connection and worker:
//! RPC protocols multiplex by request id, so one socket carries thousands of calls, and a
//! second would only split the batching. The connection lives in the host (its `slot`), so it
//! follows the host out of the cluster: when the last handle goes, it finishes what is in flight
//! and closes.

mod conn;

use std::io;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sluice_config::Address;
use sluice_upstream::{Cluster, Host};
use sluice_xprotocol::Protocol;

pub use conn::{Conn, Heartbeat, Lost};

/// Why no connection could be had.
#[derive(Debug)]
pub enum ConnectError {
    /// `max_connections` is reached.
    Overflow,
    /// The dial failed or timed out.
    Failed(io::Error),
    /// The host already carries another protocol's connection (a cluster shared by two
    /// protocols' listeners).
    WrongProtocol(&'static str),
}

/// A host's connection, made on first use and remade when it closes.
pub struct HostConn {
    address: Address,
    /// The DNS name the address was resolved from: the TLS server name without `sni`.
    hostname: Option<Arc<str>>,
    /// Its `transport_socket_match` labels: which TLS the cluster dials it with.
    transport: sluice_upstream::host::Metadata,
    /// The host's connection counters (`/clusters`).
    connections: Arc<sluice_upstream::host::HostConnections>,
    protocol: Arc<dyn Protocol>,
    current: ArcSwapOption<Conn>,
    /// One dial at a time: callers that find no open connection wait for it.
    dialing: tokio::sync::Mutex<()>,
}

impl HostConn {
    /// The connection of `host` for `protocol`.
    pub fn of<'h>(
        host: &'h Host,
        protocol: &Arc<dyn Protocol>,
    ) -> Result<&'h HostConn, ConnectError> {
        let conn = host
            .slot(|| HostConn {
                address: host.address.clone(),
                hostname: host.hostname.clone(),
                transport: host.transport.clone(),
                connections: host.connections().clone(),
                protocol: protocol.clone(),
                current: ArcSwapOption::empty(),
                dialing: tokio::sync::Mutex::new(()),
            })
            .ok_or(ConnectError::WrongProtocol("no free pool slot on the host"))?;
        if conn.protocol.name() != protocol.name() {
            return Err(ConnectError::WrongProtocol(conn.protocol.name()));
        }
        Ok(conn)
    }

    /// An open connection: the current one, or a new one dialed under `cluster`'s
    /// `connect_timeout`, TCP keepalive and `max_connections`. The settings of the listener
    /// that dials apply for the connection's life, whichever listener's calls it carries.
    pub async fn get(
        &self,
        cluster: &Cluster,
        max_frame_size: usize,
        heartbeat: Option<Heartbeat>,
    ) -> Result<Arc<Conn>, ConnectError> {
        if let Some(conn) = self.current.load_full().filter(|c| c.is_open()) {
            return Ok(conn);
        }
        let _dialing = self.dialing.lock().await;
        if let Some(conn) = self.current.load_full().filter(|c| c.is_open()) {
            return Ok(conn);
        }
        let mut permit = cluster
            .breakers
            .connection()
            .ok_or(ConnectError::Overflow)?;
        let tls = sluice_upstream::connect::DialTls::with(
            cluster.tls_for_labels(&self.transport).map(|t| &**t),
            self.hostname.as_deref(),
            sluice_net::AppProtocol::Opaque,
        );
        let started = std::time::Instant::now();
        let result = sluice_upstream::connect::dial(
            &self.address,
            cluster.config.connect_timeout,
            cluster.config.tcp_keepalive.as_ref(),
            tls,
        )
        .await;
        cluster.stats.connected(started, &result);
        permit.hold(self.connections.dialed(&result));
        let stream = result.map_err(ConnectError::Failed)?;
        let conn = Conn::spawn(
            stream,
            self.protocol.clone(),
            max_frame_size,
            heartbeat,
            permit,
        );
        self.current.store(Some(conn.clone()));
        Ok(conn)
    }
}
