//! The network filter chain: what runs on a connection between accept and the terminal handler.
//!
//! Connection-level filters (RBAC, rate limits on connections) look at the new connection and
//! may close it; exactly one terminal handler (tcp_proxy, later the L7 proxy) then owns the byte
//! stream. Byte-level inspection, when a filter needs it, wraps the stream before the handoff.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::stream::{PeerAddr, Stream};

/// What a connection-level filter decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    Close,
}

/// Facts about an accepted connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub listener: Arc<str>,
    pub peer: PeerAddr,
    /// The address the client connected to (TCP only): chain matching on destination port
    /// and RBAC's `destination_port` read it.
    pub local: Option<std::net::SocketAddr>,
    /// Fires when the process starts draining: a handler that multiplexes requests on a
    /// long-lived connection (HTTP keep-alive, HTTP/2) finishes what is in flight and closes,
    /// instead of holding the drain open until its deadline.
    pub drain: tokio_util::sync::CancellationToken,
    /// Set when the chain terminated TLS: SNI, ALPN, version, the client's identity.
    pub tls: Option<Arc<crate::tls::TlsInfo>>,
}

/// A non-terminal network filter.
pub trait NetworkFilter: Send + Sync + 'static {
    fn on_accept(&self, info: &ConnectionInfo) -> Verdict;
}

pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The terminal filter: takes the connection and serves it to the end.
pub trait ConnectionHandler: Send + Sync + 'static {
    fn serve(&self, stream: Stream, info: ConnectionInfo) -> BoxFuture;
}

/// A listener's built chain.
#[derive(Clone)]
pub struct FilterChain {
    pub filters: Vec<Arc<dyn NetworkFilter>>,
    pub handler: Arc<dyn ConnectionHandler>,
}

impl FilterChain {
    /// Runs the connection through the chain; the returned future drives it to completion.
    pub fn accept(&self, stream: Stream, info: ConnectionInfo) -> Option<BoxFuture> {
        for f in &self.filters {
            if f.on_accept(&info) == Verdict::Close {
                return None;
            }
        }
        Some(self.handler.serve(stream, info))
    }
}
