//! Downstream TLS termination (rustls with the aws-lc-rs provider).
//!
//! A [`TlsServer`] is built once per filter chain from its validated `tls:` block: the
//! certificates with their names (for SNI), ALPN, client verification, versions and cipher
//! suites. The handshake itself runs in [`crate::chains`], before the chain's network filters
//! see the connection; they get a [`crate::Stream::Tls`] and a [`TlsInfo`] in the connection's
//! info, and need not know TLS is there.
//!
//! Certificates and CA bundles are [secrets](secret): fed by watched files or by SDS, read at
//! each handshake, so they rotate without a restart and without touching open connections.

mod bound;
mod client;
mod identity;
mod local_uri;
mod resolver;
pub mod secret;
mod secrets;
mod sessions;
pub mod verify;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use rustls::server::ServerConnection;
#[cfg(test)]
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use sluice_config::{TlsConfig, TlsVersion};

pub use client::{AppProtocol, TlsClient};
pub use identity::PeerIdentity;
pub(crate) use local_uri::LocalUris;
pub(crate) use resolver::SecretResolver;
pub use secret::{CaSecret, CertSecret, SecretOrigin};
pub use secrets::Secrets;
use verify::SecretClientVerifier;
pub use watch::DEFAULT_POLL_INTERVAL;

/// What the handshake settled, for filters, logs and (later) RBAC and XFCC.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The SNI the client sent (lower case).
    pub server_name: Option<String>,
    /// The negotiated ALPN protocol (`h2`, `http/1.1`), if any.
    pub alpn: Option<Vec<u8>>,
    /// `TLSv1_2` or `TLSv1_3`.
    pub version: &'static str,
    /// IANA name of the cipher suite.
    pub cipher_suite: String,
    /// The client certificate's identity, when the client presented one (it was verified).
    pub peer: Option<PeerIdentity>,
    /// The client's certificate chain, leaf first (empty without one), for
    /// `x-forwarded-client-cert` (`Hash`, `Cert`, `Chain`).
    pub peer_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    /// The URI SAN of the certificate Sluice presented (`By` in `x-forwarded-client-cert`).
    pub local_uri_san: Option<String>,
}

impl TlsInfo {
    pub(crate) fn from_connection(conn: &ServerConnection) -> TlsInfo {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1_3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1_2",
            _ => "unknown",
        };
        TlsInfo {
            server_name: conn.server_name().map(str::to_string),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            version,
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_default(),
            peer: conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|leaf| PeerIdentity::from_der(leaf.as_ref())),
            peer_chain: conn
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                .unwrap_or_default(),
            local_uri_san: None,
        }
    }

    /// Whether the client and Sluice agreed on HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.alpn.as_deref() == Some(b"h2")
    }
}

/// A filter chain's TLS settings, ready for handshakes.
#[derive(Debug)]
pub struct TlsServer {
    pub config: Arc<ServerConfig>,
    pub handshake_timeout: Duration,
    /// The secrets the resolver and verifier read, for warming.
    pub certificates: Vec<Arc<CertSecret>>,
    pub client_ca: Option<Arc<CaSecret>>,
    /// The certificate resolver, also asked for `By=` of `x-forwarded-client-cert`.
    pub(crate) resolver: Arc<SecretResolver>,
}

impl TlsServer {
    /// The URI SAN of the certificate presented for `sni` (the current one, if rotated).
    pub fn local_uri_san(&self, sni: Option<&str>) -> Option<String> {
        self.resolver.local_uri(sni)
    }
}

impl TlsServer {
    /// Builds the rustls server config over the chain's secrets, registered in `secrets`
    /// (files are checked now: a key that does not match fails the build; SDS secrets may
    /// arrive later). Errors name the file at fault, never key bytes.
    pub fn build(tls: &TlsConfig, secrets: &Secrets) -> Result<TlsServer, String> {
        let (provider, versions) = provider_for(&tls.cipher_suites, tls.min_version)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("cipher_suites and min_version do not fit together: {e}"))?;
        let mut client_ca = None;
        let builder = match &tls.client_ca {
            Some(source) => {
                let ca = secrets.ca(source)?;
                client_ca = Some(ca.clone());
                builder.with_client_cert_verifier(Arc::new(SecretClientVerifier::new(
                    ca,
                    provider.clone(),
                    tls.require_client_certificate,
                )))
            }
            None => builder.with_no_client_auth(),
        };
        let certificates = tls
            .certificates
            .iter()
            .map(|c| secrets.cert(c))
            .collect::<Result<Vec<_>, _>>()?;
        let resolver = Arc::new(SecretResolver::new(certificates.clone()));
        let mut config = builder.with_cert_resolver(resolver.clone());
        if let Some(ca) = &client_ca {
            config.session_storage = Arc::new(sessions::CaBoundSessions::new(ca.clone()));
        }
        if tls.session_tickets {
            config.ticketer = match &client_ca {
                Some(ca) => Arc::new(sessions::CaBoundTicketer::new(ca.clone())?),
                None => new_ticketer()?,
            };
        }
        config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(TlsServer {
            config: Arc::new(config),
            handshake_timeout: tls.handshake_timeout,
            certificates,
            client_ca,
            resolver,
        })
    }

    /// Resolves once every secret of the chain has a value (SDS secrets may come later than
    /// the listener is built; files are there from the start).
    pub async fn ready(&self) {
        for c in &self.certificates {
            c.ready().await;
        }
        if let Some(ca) = &self.client_ca {
            ca.ready().await;
        }
    }

    /// The secrets that have no value yet, for a warning.
    pub fn missing(&self) -> Vec<String> {
        let certs = self
            .certificates
            .iter()
            .filter(|c| c.current().is_none())
            .map(|c| c.origin().to_string());
        let ca = self
            .client_ca
            .iter()
            .filter(|c| c.current().is_none())
            .map(|c| c.origin().to_string());
        certs.chain(ca).collect()
    }
}

/// The aws-lc-rs provider limited to `cipher_suites` (IANA names; empty: all of its
/// defaults), and the protocol versions from `min_version`: what listener and cluster TLS
/// blocks share.
pub(crate) fn provider_for(
    cipher_suites: &[String],
    min_version: TlsVersion,
) -> Result<
    (
        Arc<rustls::crypto::CryptoProvider>,
        &'static [&'static rustls::SupportedProtocolVersion],
    ),
    String,
> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if !cipher_suites.is_empty() {
        provider
            .cipher_suites
            .retain(|s| cipher_suites.contains(&format!("{:?}", s.suite())));
        if provider.cipher_suites.is_empty() {
            return Err("none of cipher_suites is available".into());
        }
    }
    const FROM_TLS12: &[&rustls::SupportedProtocolVersion] =
        &[&rustls::version::TLS13, &rustls::version::TLS12];
    const FROM_TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    let versions = match min_version {
        TlsVersion::Tls12 => FROM_TLS12,
        TlsVersion::Tls13 => FROM_TLS13,
    };
    Ok((Arc::new(provider), versions))
}

/// Ticket keys made in-process (AES-256 + HMAC-SHA256), rotated every 6 hours, the previous key still
/// accepted: rustls' ticketer.
pub(crate) fn new_ticketer() -> Result<Arc<dyn rustls::server::ProducesTickets>, String> {
    rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| format!("cannot make session ticket keys: {e}"))
}

/// A private key file anyone but its owner may read is worth a warning (not an error: a
/// container may mount secrets with wide modes on purpose).
pub(crate) fn warn_if_readable_by_others(file: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(file) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                file = %file.display(),
                mode = format!("{:o}", mode & 0o777),
                "private key file is readable by group or others; chmod 600 it"
            );
        }
    }
}

/// A resolver with no certificate, for tests that need a config they never handshake with.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct NoCert;

#[cfg(test)]
impl rustls::server::ResolvesServerCert for NoCert {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        None
    }
}
