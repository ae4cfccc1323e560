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
use sluice_observe::{Observers, Protocol, RequestRecord, ResponseFlags};
use sluice_stats::Scope;
use tokio_rustls::LazyConfigAcceptor;
use tracing::{debug, info};

use crate::filter::{ConnectionInfo, FilterChain};
use crate::hello_peek::peek_client_hello;
use crate::listener_stats::ListenerStats;
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

impl Chain {
    /// For TLS clients: it terminates TLS, or its match names TLS and it passes TLS through.
    fn takes_tls(&self) -> bool {
        self.tls.is_some() || self.matcher.names_tls()
    }
}

/// Every chain of a listener, and its listener filters.
pub struct ListenerChains {
    chains: Vec<Chain>,
    inspector: bool,
    /// Bounds waiting for the first byte and reading the ClientHello, before a chain (and its
    /// own timeout) is known: `listener_filters_timeout`, by default the longest
    /// `handshake_timeout` of the listener's chains.
    hello_timeout: Duration,
    /// A client silent for `hello_timeout` is served as plaintext instead of closed.
    continue_on_timeout: bool,
    /// Some chain passes TLS through: the ClientHello is peeked, not consumed, to choose.
    passthrough: bool,
    stats: ListenerStats,
    /// The listener's access logs: a connection no chain takes is logged with `NR`, as Envoy
    /// logs it.
    observers: Arc<Observers>,
}

/// Why a connection was closed before reaching a chain (logged at debug).
#[derive(Debug)]
enum Refused {
    Timeout,
    Closed,
    NotTls(io::Error),
    Handshake(io::Error),
    /// With the SNI the client sent, if any.
    NoChain(Option<String>),
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
            Refused::NoChain(_) => f.write_str("no filter chain matches"),
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

    pub fn new(chains: Vec<Chain>, tls_inspector: bool, scope: &Scope) -> ListenerChains {
        let hello_timeout = chains
            .iter()
            .filter_map(|c| c.tls.as_ref().map(|t| t.handshake_timeout))
            .max()
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        let passthrough = tls_inspector && chains.iter().any(|c| c.tls.is_none() && c.takes_tls());
        ListenerChains {
            chains,
            inspector: tls_inspector,
            hello_timeout,
            continue_on_timeout: false,
            passthrough,
            stats: ListenerStats::new(scope, tls_inspector),
            observers: Arc::default(),
        }
    }

    /// Sets the listener's observers (its access logs).
    pub fn with_observers(mut self, observers: Arc<Observers>) -> Self {
        self.observers = observers;
        self
    }

    /// The listener's connection metrics.
    pub fn cx_stats(&self) -> &Arc<crate::listener_stats::CxStats> {
        &self.stats.cx
    }

    /// Sets `listener_filters_timeout` and `continue_on_listener_filters_timeout`.
    pub fn with_inspector_timeout(mut self, timeout: Option<Duration>, continue_on: bool) -> Self {
        if let Some(t) = timeout {
            self.hello_timeout = t;
        }
        self.continue_on_timeout = continue_on;
        self
    }

    /// The chain every connection goes to when nothing needs to be looked at first.
    pub fn plain(&self) -> Option<&FilterChain> {
        match self.chains.as_slice() {
            [only] if only.tls.is_none() && !self.inspector && only.matcher.is_empty() => {
                Some(&only.filters)
            }
            _ => None,
        }
    }

    /// Inspects, matches and handshakes, then serves the connection on its chain.
    pub async fn serve(self: Arc<Self>, stream: Stream, mut info: ConnectionInfo) {
        let started = tokio::time::Instant::now();
        let mut facts = Facts {
            tls: None,
            sni: None,
            alpn: Vec::new(),
            local: info.local,
            peer: match info.peer {
                crate::PeerAddr::Tcp(a) => Some(a),
                crate::PeerAddr::Unix => None,
            },
        };
        if self.inspector {
            let is_tls = match tokio::time::timeout(self.hello_timeout, first_byte(&stream)).await {
                Ok(Ok(Some(b))) => b == TLS_HANDSHAKE_RECORD,
                Ok(Ok(None) | Err(_)) => return self.refused(&info, Refused::Closed),
                // A server-speaks-first protocol (SMTP, MySQL): the client waits for us.
                Err(_) if self.continue_on_timeout => false,
                Err(_) => return self.refused(&info, Refused::Timeout),
            };
            if is_tls {
                &self.stats.tls_found
            } else {
                &self.stats.tls_not_found
            }
            .inc();
            facts.tls = Some(is_tls);
        }
        if facts.tls != Some(true) {
            // Plaintext, or no inspector: the chain is chosen without the ClientHello, and
            // its `tls:` says whether a handshake comes (validation keeps that consistent).
            let Some(chain) = self.select(&facts) else {
                return self.refused(&info, Refused::NoChain(facts.sni.clone()));
            };
            if chain.tls.is_none() {
                if let Some(fut) = chain.filters.accept(stream, info) {
                    fut.await;
                }
                return;
            }
        }
        // With a passthrough chain, the ClientHello is peeked to choose the chain, and stays
        // in the socket for it (or for the handshake of a terminating chain).
        let mut chosen = None;
        if self.passthrough {
            let left = self.hello_timeout.saturating_sub(started.elapsed());
            let hello = match tokio::time::timeout(left, peek_client_hello(&stream)).await {
                Ok(Ok(h)) => h,
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return self.refused(&info, Refused::Closed)
                }
                Ok(Err(e)) => return self.refused(&info, Refused::NotTls(e)),
                Err(_) => return self.refused(&info, Refused::Timeout),
            };
            facts.tls = Some(true);
            facts.sni = hello.sni;
            facts.alpn = hello.alpn;
            let Some(chain) = self.select(&facts) else {
                return self.refused(&info, Refused::NoChain(facts.sni.clone()));
            };
            if chain.tls.is_none() {
                debug!(listener = %info.listener, sni = facts.sni.as_deref().unwrap_or(""), "tls passed through");
                if let Some(fut) = chain.filters.accept(stream, info) {
                    fut.await;
                }
                return;
            }
            chosen = Some(chain);
        }
        let hello = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
        let start = match tokio::time::timeout(self.hello_timeout, hello).await {
            Ok(Ok(start)) => start,
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return self.refused(&info, Refused::Closed)
            }
            Ok(Err(e)) => return self.refused(&info, Refused::NotTls(e)),
            Err(_) => return self.refused(&info, Refused::Timeout),
        };
        let chain = match chosen {
            Some(chain) => chain,
            None => {
                let hello = start.client_hello();
                facts.tls = Some(true);
                facts.sni = hello.server_name().map(str::to_ascii_lowercase);
                facts.alpn = hello
                    .alpn()
                    .map(|protocols| protocols.map(<[u8]>::to_vec).collect())
                    .unwrap_or_default();
                let Some(chain) = self.select(&facts) else {
                    return self.refused(&info, Refused::NoChain(facts.sni.clone()));
                };
                chain
            }
        };
        let Some(tls) = &chain.tls else {
            return self.refused(&info, Refused::NoChain(facts.sni.clone()));
        };
        let left = tls.handshake_timeout.saturating_sub(started.elapsed());
        let accept = start.into_stream(tls.config.clone());
        let stream = match tokio::time::timeout(left, accept).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return self.refused(&info, Refused::Handshake(e)),
            Err(_) => return self.refused(&info, Refused::Timeout),
        };
        self.stats.ssl_handshake.inc();
        let mut tls_info = TlsInfo::from_connection(stream.get_ref().1);
        tls_info.local_uri_san = tls.local_uri_san(tls_info.server_name.as_deref());
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

    /// Counts a connection closed before a chain took it, and logs it: at info for the first
    /// in a second, at debug for the rest (a scanner hammering a TLS port cannot flood the
    /// log, yet an operator sees that it happens and why).
    fn refused(&self, info: &ConnectionInfo, why: Refused) {
        let stats = &self.stats;
        match &why {
            Refused::Timeout => stats.handshake_timeout.inc(),
            Refused::Closed => {}
            Refused::NotTls(_) => {
                stats.ssl_connection_error.inc();
                stats.client_hello_error.inc()
            }
            Refused::Handshake(e) => {
                stats.ssl_connection_error.inc();
                match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
                    Some(rustls::Error::NoCertificatesPresented) => {
                        stats.ssl_fail_verify_no_cert.inc()
                    }
                    Some(rustls::Error::InvalidCertificate(_)) => stats.ssl_fail_verify_error.inc(),
                    _ => {}
                }
            }
            Refused::NoChain(sni) => {
                stats.no_filter_chain_match.inc();
                self.log_no_chain(info, sni.as_deref());
            }
        }
        if stats.log_now() {
            info!(listener = %info.listener, peer = %info.peer, reason = %why, "connection closed before its filter chain");
        } else {
            debug!(listener = %info.listener, peer = %info.peer, reason = %why, "connection closed before its filter chain");
        }
    }

    /// A listener-level access-log record for a connection no chain takes.
    fn log_no_chain(&self, info: &ConnectionInfo, sni: Option<&str>) {
        if self.observers.is_empty() {
            return;
        }
        let mut r = RequestRecord::new(Protocol::Tcp, info.listener.clone());
        r.downstream_remote = match info.peer {
            crate::PeerAddr::Tcp(a) => Some(a),
            crate::PeerAddr::Unix => None,
        };
        r.downstream_local = info.local;
        r.requested_server_name = sni.map(Arc::from);
        r.response_flags = ResponseFlags::NO_ROUTE_FOUND;
        r.response_code_details = "filter_chain_not_found".into();
        self.observers.complete(std::sync::Arc::new(r));
    }

    /// The chain for this connection, chosen as Envoy chooses: criterion by criterion, in
    /// the order destination port, destination address, server name, transport protocol,
    /// application protocols, source address, source port. At each step the chains that name
    /// a matching value most specifically stay (an exact port; the longest address prefix;
    /// an exact name, then the longest wildcard); when none does, the chains that leave the
    /// criterion out stay. Nothing backtracks: a specific match at one step that fails at a
    /// later one means no chain. Ties go to config order. With the inspector, a TLS client
    /// only gets a chain with `tls:` and a plaintext one only a chain without.
    fn select(&self, facts: &Facts) -> Option<&Chain> {
        let mut candidates: Vec<&Chain> = self
            .chains
            .iter()
            .filter(|c| facts.tls.is_none_or(|tls| c.takes_tls() == tls))
            .collect();
        let local_ip = facts.local.map(|a| a.ip());
        let peer_ip = facts.peer.map(|a| a.ip());
        narrow(&mut candidates, |m| {
            m.destination_port
                .map(|p| (facts.local.map(|a| a.port()) == Some(p)).then_some(0))
        });
        narrow(&mut candidates, |m| prefix_rank(&m.prefix_ranges, local_ip));
        narrow(&mut candidates, |m| {
            (!m.server_names.is_empty()).then(|| {
                facts
                    .sni
                    .as_deref()
                    .and_then(|sni| name_rank(&m.server_names, sni))
            })
        });
        narrow(&mut candidates, |m| {
            m.transport_protocol.map(|t| {
                let tls = facts.tls == Some(true);
                (tls == (t == TransportProtocol::Tls)).then_some(0)
            })
        });
        narrow(&mut candidates, |m| {
            (!m.application_protocols.is_empty()).then(|| {
                m.application_protocols
                    .iter()
                    .any(|p| facts.alpn.iter().any(|a| a == p.as_bytes()))
                    .then_some(0)
            })
        });
        narrow(&mut candidates, |m| {
            prefix_rank(&m.source_prefix_ranges, peer_ip)
        });
        narrow(&mut candidates, |m| {
            (!m.source_ports.is_empty()).then(|| {
                let port = facts.peer.map(|a| a.port());
                port.is_some_and(|p| m.source_ports.contains(&p))
                    .then_some(0)
            })
        });
        candidates.first().copied()
    }
}

/// What is known of a connection when its chain is chosen.
struct Facts {
    /// `None` without the inspector: not looked at.
    tls: Option<bool>,
    sni: Option<String>,
    alpn: Vec<Vec<u8>>,
    local: Option<std::net::SocketAddr>,
    peer: Option<std::net::SocketAddr>,
}

/// One step of chain selection. `rank` says, for a chain's match: `None`, the criterion is
/// not set; `Some(None)`, set and not matching; `Some(Some(r))`, matching with specificity
/// `r`. Keeps the matching chains of the highest `r`, or else the chains without the
/// criterion.
fn narrow(candidates: &mut Vec<&Chain>, rank: impl Fn(&FilterChainMatch) -> Option<Option<usize>>) {
    let ranks: Vec<Option<Option<usize>>> = candidates.iter().map(|c| rank(&c.matcher)).collect();
    let best = ranks.iter().filter_map(|r| r.flatten()).max();
    let mut i = 0;
    candidates.retain(|_| {
        let keep = match best {
            Some(b) => ranks[i] == Some(Some(b)),
            None => ranks[i].is_none(),
        };
        i += 1;
        keep
    });
}

/// The longest of `ranges` holding `ip`, as a rank for [`narrow`].
fn prefix_rank(
    ranges: &[sluice_config::Cidr],
    ip: Option<std::net::IpAddr>,
) -> Option<Option<usize>> {
    if ranges.is_empty() {
        return None;
    }
    Some(ip.and_then(|ip| {
        ranges
            .iter()
            .filter(|r| r.contains(ip))
            .map(|r| usize::from(r.prefix_len()))
            .max()
    }))
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
    let n = crate::hello_peek::peek(stream, &mut b).await?;
    Ok((n == 1).then_some(b[0]))
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
        with_match(
            FilterChainMatch {
                server_names: names.iter().map(|n| n.to_string()).collect(),
                transport_protocol: transport,
                ..Default::default()
            },
            tls,
        )
    }

    fn with_match(matcher: FilterChainMatch, tls: bool) -> Chain {
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
                resolver: Arc::new(crate::tls::SecretResolver::new(Vec::new())),
            })
        });
        Chain {
            matcher,
            tls,
            filters: FilterChain {
                filters: Vec::new(),
                handler: Arc::new(Nothing),
            },
        }
    }

    fn listener(chains: Vec<Chain>, inspector: bool) -> ListenerChains {
        ListenerChains::new(chains, inspector, &Scope::new("test"))
    }

    fn facts(tls: Option<bool>, sni: Option<&str>) -> Facts {
        Facts {
            tls,
            sni: sni.map(str::to_string),
            alpn: Vec::new(),
            local: "127.0.0.1:8443".parse().ok(),
            peer: "10.1.2.3:40000".parse().ok(),
        }
    }

    fn picked(chains: &ListenerChains, facts: &Facts) -> Option<usize> {
        let picked = chains.select(facts)?;
        chains.chains.iter().position(|c| std::ptr::eq(c, picked))
    }

    fn index_of(chains: &ListenerChains, tls: bool, sni: Option<&str>) -> Option<usize> {
        picked(chains, &facts(Some(tls), sni))
    }

    fn cidrs(list: &[&str]) -> Vec<sluice_config::Cidr> {
        list.iter()
            .map(|c| sluice_config::Cidr::parse(c).unwrap())
            .collect()
    }

    #[test]
    fn the_most_specific_chain_wins() {
        use TransportProtocol::*;
        let chains = listener(
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
        let chains = listener(
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
    fn ports_and_addresses_narrow_in_envoys_order() {
        let m = |f: fn(&mut FilterChainMatch)| {
            let mut m = FilterChainMatch::default();
            f(&mut m);
            with_match(m, false)
        };
        let chains = listener(
            vec![
                m(|_| {}),                                               // 0
                m(|m| m.source_prefix_ranges = cidrs(&["10.0.0.0/8"])),  // 1
                m(|m| m.source_prefix_ranges = cidrs(&["10.1.0.0/16"])), // 2
                m(|m| m.destination_port = Some(9000)),                  // 3
                m(|m| {
                    m.destination_port = Some(9001);
                    m.source_ports = vec![1]
                }), // 4
                m(|m| m.prefix_ranges = cidrs(&["127.0.0.2"])),          // 5
            ],
            false,
        );
        let mut f = facts(None, None);
        // The longest source prefix wins among chains without a port.
        assert_eq!(picked(&chains, &f), Some(2));
        f.peer = "10.9.9.9:1".parse().ok();
        assert_eq!(picked(&chains, &f), Some(1));
        f.peer = "192.168.0.1:1".parse().ok();
        assert_eq!(picked(&chains, &f), Some(0));
        // A port match is taken before anything else is looked at.
        f.local = "127.0.0.1:9000".parse().ok();
        assert_eq!(picked(&chains, &f), Some(3));
        // Port 9001 narrows to chain 4, whose source port then fails: no backtracking.
        f.local = "127.0.0.1:9001".parse().ok();
        f.peer = "192.168.0.1:2".parse().ok();
        assert_eq!(picked(&chains, &f), None);
        f.peer = "192.168.0.1:1".parse().ok();
        assert_eq!(picked(&chains, &f), Some(4));
        f.local = "127.0.0.2:80".parse().ok();
        assert_eq!(picked(&chains, &f), Some(5));
        assert!(chains.plain().is_none());
    }

    #[test]
    fn alpn_narrows_after_the_server_name() {
        let alpn = |names: &[&str], protocols: &[&str]| {
            with_match(
                FilterChainMatch {
                    server_names: names.iter().map(|n| n.to_string()).collect(),
                    application_protocols: protocols.iter().map(|p| p.to_string()).collect(),
                    ..Default::default()
                },
                true,
            )
        };
        let chains = listener(
            vec![
                alpn(&[], &[]),                          // 0
                alpn(&[], &["h2"]),                      // 1
                alpn(&["a.example.com"], &["http/1.1"]), // 2
            ],
            true,
        );
        let mut f = facts(Some(true), None);
        assert_eq!(picked(&chains, &f), Some(0));
        f.alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        assert_eq!(picked(&chains, &f), Some(1));
        f.sni = Some("a.example.com".into());
        assert_eq!(picked(&chains, &f), Some(2));
        f.alpn = vec![b"h2".to_vec()];
        assert_eq!(picked(&chains, &f), None);
    }

    #[test]
    fn a_single_plain_chain_is_the_fast_path() {
        let chains = listener(vec![chain(&[], None, false)], false);
        assert!(chains.plain().is_some());
    }
}
