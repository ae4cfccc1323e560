//! A listener's filter chains, and what happens between accept and a chain: the TLS
//! inspector, chain matching, and the TLS handshake.
//!
//! ```text
//! accept -> [tls_inspector: first byte 0x16 => TLS, read the ClientHello (SNI, ALPN)]
//!        -> choose a chain (server_names, transport_protocol)
//!        -> chain has tls: handshake under handshake_timeout -> Stream::Tls
//!        -> the chain's network filters and terminal handler
//! ```
//! A listener with one plaintext chain and no listener filter (every listener before TLS)
//! skips all of it: [`ListenerChains::plain`] hands the chain to the accept loop, which runs it
//! exactly as before.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use sluice_config::{FilterChainMatch, TransportProtocol, DEFAULT_HANDSHAKE_TIMEOUT};
use tokio_rustls::LazyConfigAcceptor;
use tracing::debug;

use crate::filter::{ConnectionInfo, FilterChain};
use crate::stream::Stream;
use crate::tls::{TlsInfo, TlsServer};

/// The first byte of a TLS record carrying a handshake message (RFC 8446 section 5.1).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// One chain: which connections it takes, the TLS it terminates, and its filters.
pub struct Chain {
    pub matcher: FilterChainMatch,
    pub tls: Option<Arc<TlsServer>>,
    pub filters: FilterChain,
}

/// Every chain of a listener, and its listener filters.
pub struct ListenerChains {
    chains: Vec<Chain>,
    inspector: bool,
    /// Bounds reading the ClientHello, before a chain (and its own timeout) is known: the
    /// longest `handshake_timeout` of the listener's chains.
    hello_timeout: Duration,
}

/// Why a connection was closed before reaching a chain (logged at debug).
#[derive(Debug)]
enum Refused {
    Timeout,
    Closed,
    NotTls(io::Error),
    Handshake(io::Error),
    NoChain,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Timeout => {
                f.write_str("handshake_timeout passed before the handshake finished")
            }
            Refused::Closed => f.write_str("the client closed before its ClientHello"),
            Refused::NotTls(e) => write!(f, "not a TLS ClientHello: {e}"),
            Refused::Handshake(e) => write!(f, "TLS handshake failed: {e}"),
            Refused::NoChain => f.write_str("no filter chain matches"),
        }
    }
}

impl ListenerChains {
    /// Resolves once every chain's TLS secrets have a value (listener warming).
    pub async fn ready(&self) {
        for tls in self.chains.iter().filter_map(|c| c.tls.as_ref()) {
            tls.ready().await;
        }
    }

    /// The secrets still without a value, for a warning when warming gives up.
    pub fn missing_secrets(&self) -> Vec<String> {
        self.chains
            .iter()
            .filter_map(|c| c.tls.as_ref())
            .flat_map(|t| t.missing())
            .collect()
    }

    pub fn new(chains: Vec<Chain>, tls_inspector: bool) -> ListenerChains {
        let hello_timeout = chains
            .iter()
            .filter_map(|c| c.tls.as_ref().map(|t| t.handshake_timeout))
            .max()
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        ListenerChains {
            chains,
            inspector: tls_inspector,
            hello_timeout,
        }
    }

    /// A listener of one plaintext chain, the common case before TLS.
    pub fn single(filters: FilterChain) -> ListenerChains {
        ListenerChains::new(
            vec![Chain {
                matcher: FilterChainMatch::default(),
                tls: None,
                filters,
            }],
            false,
        )
    }

    /// The chain every connection goes to when nothing needs to be looked at first.
    pub fn plain(&self) -> Option<&FilterChain> {
        match self.chains.as_slice() {
            [only] if only.tls.is_none() && !self.inspector => Some(&only.filters),
            _ => None,
        }
    }

    /// Inspects, matches and handshakes, then serves the connection on its chain.
    pub async fn serve(self: Arc<Self>, stream: Stream, mut info: ConnectionInfo) {
        let started = tokio::time::Instant::now();
        let is_tls = if self.inspector {
            match tokio::time::timeout(self.hello_timeout, first_byte(&stream)).await {
                Ok(Ok(Some(b))) => b == TLS_HANDSHAKE_RECORD,
                Ok(Ok(None) | Err(_)) => return refused(&info, Refused::Closed),
                Err(_) => return refused(&info, Refused::Timeout),
            }
        } else {
            // Without the inspector there is one chain (config validation sees to it).
            self.chains.first().is_some_and(|c| c.tls.is_some())
        };
        if !is_tls {
            let Some(chain) = self.select(false, None) else {
                return refused(&info, Refused::NoChain);
            };
            if let Some(fut) = chain.filters.accept(stream, info) {
                fut.await;
            }
            return;
        }
        let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
        let start = match tokio::time::timeout(self.hello_timeout, hello).await {
            Ok(Ok(start)) => start,
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return refused(&info, Refused::Closed)
            }
            Ok(Err(e)) => return refused(&info, Refused::NotTls(e)),
            Err(_) => return refused(&info, Refused::Timeout),
        };
        let sni = start
            .client_hello()
            .server_name()
            .map(str::to_ascii_lowercase);
        let Some(chain) = self.select(true, sni.as_deref()) else {
            return refused(&info, Refused::NoChain);
        };
        let Some(tls) = &chain.tls else {
            return refused(&info, Refused::NoChain);
        };
        let left = tls.handshake_timeout.saturating_sub(started.elapsed());
        let accept = start.into_stream(tls.config.clone());
        let stream = match tokio::time::timeout(left, accept).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return refused(&info, Refused::Handshake(e)),
            Err(_) => return refused(&info, Refused::Timeout),
        };
        let tls_info = TlsInfo::from_connection(stream.get_ref().1);
        debug!(
            listener = %info.listener,
            sni = tls_info.server_name.as_deref().unwrap_or(""),
            alpn = %String::from_utf8_lossy(tls_info.alpn.as_deref().unwrap_or_default()),
            version = tls_info.version,
            peer_identity = tls_info.peer.as_ref().and_then(|p| p.spiffe_id()).unwrap_or(""),
            "tls handshake done"
        );
        info.tls = Some(Arc::new(tls_info));
        if let Some(fut) = chain.filters.accept(Stream::Tls(Box::new(stream)), info) {
            fut.await;
        }
    }

    /// The most specific chain for this connection: an exact server name beats a wildcard
    /// (the longer the better), which beats a chain without names; then a chain that names
    /// its transport beats one that does not; then the first in config order. A TLS client
    /// only gets a chain with `tls:`, a plaintext one only a chain without.
    fn select(&self, tls: bool, sni: Option<&str>) -> Option<&Chain> {
        let mut best: Option<(&Chain, (usize, bool))> = None;
        for chain in &self.chains {
            if chain.tls.is_some() != tls && self.inspector {
                continue;
            }
            let m = &chain.matcher;
            let transport = if tls {
                TransportProtocol::Tls
            } else {
                TransportProtocol::RawBuffer
            };
            if m.transport_protocol.is_some_and(|t| t != transport) {
                continue;
            }
            let name_rank = if m.server_names.is_empty() {
                Some(0)
            } else {
                sni.and_then(|sni| name_rank(&m.server_names, sni))
            };
            let Some(name_rank) = name_rank else { continue };
            let rank = (name_rank, m.transport_protocol.is_some());
            if best.is_none_or(|(_, r)| rank > r) {
                best = Some((chain, rank));
            }
        }
        best.map(|(c, _)| c)
    }
}

/// How well `names` match `sni`: `usize::MAX` exactly, the wildcard's length for a
/// `*.suffix` covering it, `None` otherwise.
fn name_rank(names: &[String], sni: &str) -> Option<usize> {
    let mut best = None;
    for n in names {
        let rank = if n == sni {
            Some(usize::MAX)
        } else if let Some(suffix) = n.strip_prefix('*') {
            // `*.example.com` covers `a.example.com` and `a.b.example.com` (Envoy's rule).
            (sni.len() > suffix.len() && sni.ends_with(suffix)).then_some(n.len())
        } else {
            None
        };
        best = best.max(rank);
    }
    best
}

/// Waits for the first byte without consuming it; `None` if the peer closed first.
async fn first_byte(stream: &Stream) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    let n = match stream {
        Stream::Tcp(s) => s.peek(&mut b).await?,
        Stream::Unix(s) => loop {
            s.readable().await?;
            match s.try_io(tokio::io::Interest::READABLE, || {
                rustix::net::recv(s, &mut b, rustix::net::RecvFlags::PEEK)
                    .map(|(n, _)| n)
                    .map_err(io::Error::from)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        },
        Stream::Tls(_) => return Err(io::ErrorKind::Unsupported.into()),
    };
    Ok((n == 1).then_some(b[0]))
}

fn refused(info: &ConnectionInfo, why: Refused) {
    // Bad input from a client is the client's problem: debug, not warn, so a scanner
    // hammering a TLS port cannot flood the log.
    debug!(listener = %info.listener, peer = %info.peer, reason = %why, "connection closed before its filter chain");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{BoxFuture, ConnectionHandler};

    struct Nothing;
    impl ConnectionHandler for Nothing {
        fn serve(&self, _: Stream, _: ConnectionInfo) -> BoxFuture {
            Box::pin(async {})
        }
    }

    fn chain(names: &[&str], transport: Option<TransportProtocol>, tls: bool) -> Chain {
        let tls = tls.then(|| {
            // A config is never used by `select`; any will do.
            let config = rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(crate::tls::NoCert));
            Arc::new(TlsServer {
                config: Arc::new(config),
                handshake_timeout: Duration::from_secs(1),
                certificates: Vec::new(),
                client_ca: None,
            })
        });
        Chain {
            matcher: FilterChainMatch {
                server_names: names.iter().map(|n| n.to_string()).collect(),
                transport_protocol: transport,
            },
            tls,
            filters: FilterChain {
                filters: Vec::new(),
                handler: Arc::new(Nothing),
            },
        }
    }

    fn index_of(chains: &ListenerChains, tls: bool, sni: Option<&str>) -> Option<usize> {
        let picked = chains.select(tls, sni)?;
        chains.chains.iter().position(|c| std::ptr::eq(c, picked))
    }

    #[test]
    fn the_most_specific_chain_wins() {
        use TransportProtocol::*;
        let chains = ListenerChains::new(
            vec![
                chain(&[], None, true),                     // 0: any TLS
                chain(&["*.example.com"], Some(Tls), true), // 1
                chain(&["*.b.example.com"], None, true),    // 2
                chain(&["a.example.com"], None, true),      // 3
                chain(&[], Some(RawBuffer), false),         // 4
                chain(&[], Some(Tls), true),                // 5: any TLS, named transport
            ],
            true,
        );
        assert_eq!(index_of(&chains, true, Some("a.example.com")), Some(3));
        assert_eq!(index_of(&chains, true, Some("x.b.example.com")), Some(2));
        assert_eq!(index_of(&chains, true, Some("c.example.com")), Some(1));
        assert_eq!(index_of(&chains, true, Some("example.com")), Some(5));
        assert_eq!(index_of(&chains, true, None), Some(5));
        assert_eq!(index_of(&chains, false, None), Some(4));
    }

    #[test]
    fn no_chain_for_the_other_transport() {
        let chains = ListenerChains::new(
            vec![chain(
                &["a.example.com"],
                Some(TransportProtocol::Tls),
                true,
            )],
            true,
        );
        assert_eq!(index_of(&chains, false, None), None);
        assert_eq!(index_of(&chains, true, Some("b.example.com")), None);
        assert!(chains.plain().is_none());
    }

    #[test]
    fn a_single_plain_chain_is_the_fast_path() {
        let chains = ListenerChains::new(vec![chain(&[], None, false)], false);
        assert!(chains.plain().is_some());
    }
}
