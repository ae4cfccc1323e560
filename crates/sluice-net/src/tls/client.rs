//! Upstream TLS: the client side, one [`TlsClient`] per cluster with a `tls:` block.
//!
//! The rustls configs are built when the cluster is made, one per kind of connection
//! ([`AppProtocol`]), differing only in the ALPN list they offer, and built again (cheap clones
//! of one base) whenever the cluster's CA bundle or client certificate rotates. Each such
//! generation has its own TLS session store: a resumed session skips both the server's
//! verification and the client's certificate, so sessions must not outlive the material they
//! were made with, and a handshake that was under way during a rotation stores its tickets in
//! its own generation's store, which no later connection reads. (A store shared across
//! generations and emptied on rotation let such a late ticket, carrying the old client
//! identity, into the new generation, where every resumption renewed it.) A handshake costs a
//! material comparison and a lookup, not a config build.
//!
//! Verification: the server's chain must lead to the `ca` certificates (webpki); then either
//! the certificate must be valid for the server name (no `verify_san`), or it must carry one
//! of the `verify_san` names (the name check is skipped: a workload identity such as a SPIFFE
//! ID says who the server is better than the address we dialed).

use std::io;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, OtherError, SignatureScheme};
use sluice_config::{Address, SanMatcher, UpstreamTlsConfig, UpstreamTrust};

use super::bound::Bound;
use super::secret::{CaMaterial, CaSecret, CertMaterial, CertSecret};
use super::secrets::Secrets;
use super::verify::SecretClientCert;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::stream::Stream;

/// What a connection will carry, which decides the ALPN it offers and accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppProtocol {
    /// Anything (`tcp_proxy`, RPC, TCP and heartbeat checks): no protocol is implied.
    Opaque,
    Http1,
    Http2,
}

impl AppProtocol {
    fn alpn_id(self) -> Option<&'static [u8]> {
        match self {
            AppProtocol::Opaque => None,
            AppProtocol::Http1 => Some(b"http/1.1"),
            AppProtocol::Http2 => Some(b"h2"),
        }
    }
}

/// A cluster's TLS client settings, ready for handshakes.
pub struct TlsClient {
    /// Everything but the session store and the ALPN list.
    base: ClientConfig,
    /// The ALPN lists offered for `Opaque`, `Http1`, `Http2`.
    alpn: [Vec<Vec<u8>>; 3],
    ca: Option<Arc<CaSecret>>,
    cert: Option<Arc<CertSecret>>,
    /// The configs made for the current CA bundle and client certificate.
    configs: Bound<Material, Arc<[Arc<ClientConfig>; 3]>>,
    sni: Option<ServerName<'static>>,
}

/// The CA bundle and client certificate a generation of configs was made with.
type Material = (Option<Arc<CaMaterial>>, Option<Arc<CertMaterial>>);

/// As many sessions as rustls keeps by default.
const SESSIONS: usize = 256;

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

fn material(ca: Option<&Arc<CaSecret>>, cert: Option<&Arc<CertSecret>>) -> Material {
    (ca.and_then(|c| c.current()), cert.and_then(|c| c.current()))
}

/// One generation of configs: `base` with each ALPN list, sharing a new session store.
fn generation(base: &ClientConfig, alpn: &[Vec<Vec<u8>>; 3]) -> Arc<[Arc<ClientConfig>; 3]> {
    let store = Arc::new(rustls::client::ClientSessionMemoryCache::new(SESSIONS));
    let make = |alpn: &Vec<Vec<u8>>| {
        let mut c = base.clone();
        c.resumption = rustls::client::Resumption::store(store.clone());
        c.alpn_protocols = alpn.clone();
        Arc::new(c)
    };
    Arc::new([make(&alpn[0]), make(&alpn[1]), make(&alpn[2])])
}

impl TlsClient {
    /// Builds the rustls client configs over secrets registered in `secrets` (so the `ca`
    /// bundle and the client certificate rotate, from watched files or SDS, as a listener's
    /// do). Errors name the files at fault, never key bytes.
    pub fn build(tls: &UpstreamTlsConfig, secrets: &Secrets) -> Result<TlsClient, String> {
        let (provider, versions) = super::provider_for(&tls.cipher_suites, tls.min_version)?;
        let algorithms = provider.signature_verification_algorithms;
        let mut ca_secret = None;
        let mut cert_secret = None;
        let verifier: Arc<dyn ServerCertVerifier> = match &tls.trust {
            UpstreamTrust::Ca(source) => {
                let ca = secrets.ca(source).map_err(|e| format!("ca: {e}"))?;
                ca_secret = Some(ca.clone());
                Arc::new(Verifier {
                    ca,
                    sans: tls.verify_san.clone(),
                    algorithms,
                })
            }
            // The cluster warns about it when it builds this (it knows its own name).
            UpstreamTrust::InsecureSkipVerify => Arc::new(SkipVerify { algorithms }),
        };
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| format!("cipher_suites and min_version do not fit together: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &tls.client_certificate {
            Some(source) => {
                let cert = secrets.cert(source)?;
                cert_secret = Some(cert.clone());
                builder.with_client_cert_resolver(Arc::new(SecretClientCert(cert)))
            }
            None => builder.with_no_client_auth(),
        };
        let offered = |protocol: AppProtocol| -> Vec<Vec<u8>> {
            match (&tls.alpn, protocol.alpn_id()) {
                (Some(list), _) => list.iter().map(|p| p.as_bytes().to_vec()).collect(),
                (None, Some(id)) => vec![id.to_vec()],
                (None, None) => Vec::new(),
            }
        };
        let alpn = [
            offered(AppProtocol::Opaque),
            offered(AppProtocol::Http1),
            offered(AppProtocol::Http2),
        ];
        config.alpn_protocols = Vec::new();
        let configs = Bound::new(
            material(ca_secret.as_ref(), cert_secret.as_ref()),
            generation(&config, &alpn),
        );
        let sni = tls
            .sni
            .as_deref()
            .map(|s| ServerName::try_from(s.to_string()))
            .transpose()
            .map_err(|e| format!("sni: {e}"))?;
        Ok(TlsClient {
            base: config,
            alpn,
            ca: ca_secret,
            cert: cert_secret,
            configs,
            sni,
        })
    }

    /// The configs for the material in use now, made afresh (with an empty session store)
    /// when it changed since the last handshake.
    fn configs(&self) -> Arc<[Arc<ClientConfig>; 3]> {
        let now = material(self.ca.as_ref(), self.cert.as_ref());
        self.configs
            .get(now, || Some(generation(&self.base, &self.alpn)))
            .unwrap_or_else(|| self.configs.last())
    }

    /// The name sent and verified: `sni`, else the endpoint's DNS name, else its IP address.
    fn server_name(
        &self,
        address: &Address,
        hostname: Option<&str>,
    ) -> io::Result<ServerName<'static>> {
        if let Some(sni) = &self.sni {
            return Ok(sni.clone());
        }
        if let Some(name) = hostname {
            return ServerName::try_from(name.to_string())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
        }
        match address {
            Address::Tcp(a) => Ok(ServerName::IpAddress(a.ip().into())),
            Address::Unix(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a Unix socket endpoint needs tls.sni",
            )),
        }
    }

    /// Runs the client handshake over `stream` (connected to `address`; `hostname` is the name
    /// it was resolved from, if any). A failure is an error naming the server name and why
    /// (unknown issuer, not valid for the name, SAN mismatch, or an ALPN choice that is not
    /// `protocol`).
    pub async fn connect(
        &self,
        stream: Stream,
        address: &Address,
        hostname: Option<&str>,
        protocol: AppProtocol,
    ) -> io::Result<Stream> {
        let name = self.server_name(address, hostname)?;
        let configs = self.configs();
        let config = match protocol {
            AppProtocol::Opaque => &configs[0],
            AppProtocol::Http1 => &configs[1],
            AppProtocol::Http2 => &configs[2],
        };
        let shown = name.to_str().into_owned();
        let tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, stream)
            .await
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("TLS handshake with \"{shown}\" failed: {}", describe(&e)),
                )
            })?;
        let (_, conn) = tls.get_ref();
        let chosen = conn.alpn_protocol();
        if let (Some(chosen), Some(wanted)) = (chosen, protocol.alpn_id()) {
            if chosen != wanted {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "TLS with \"{shown}\": the server chose ALPN \"{}\", but the cluster speaks \"{}\" here",
                        String::from_utf8_lossy(chosen),
                        String::from_utf8_lossy(wanted)
                    ),
                ));
            }
        }
        tracing::debug!(
            server_name = %shown,
            address = %address,
            version = ?conn.protocol_version(),
            alpn = chosen.map(String::from_utf8_lossy).as_deref(),
            "upstream tls handshake done"
        );
        Ok(Stream::TlsClient(Box::new(tls)))
    }
}

/// A handshake error in words: rustls shows its `Other` certificate errors (our SAN
/// mismatch) by `Debug`, so those are unwrapped to their own message.
fn describe(e: &io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(CertificateError::Other(other))) => {
            format!("invalid peer certificate: {}", other.0)
        }
        _ => e.to_string(),
    }
}

/// Chain to the `ca` roots (the bundle current at the handshake), then the server name or
/// the `verify_san` names.
#[derive(Debug)]
struct Verifier {
    ca: Arc<CaSecret>,
    sans: Vec<SanMatcher>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(ca) = self.ca.current() else {
            return Err(rustls::Error::General(format!(
                "{}: not received yet",
                self.ca.origin()
            )));
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &ca.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.sans.is_empty() {
            verify_server_name(&cert, server_name)?;
        } else {
            check_sans(end_entity, &self.sans)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `insecure_skip_verify`: any certificate, but the handshake signatures still must verify.
#[derive(Debug)]
struct SkipVerify {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for SkipVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate carries none of the `verify_san` names.
#[derive(Debug)]
struct SanMismatch {
    found: Vec<String>,
    wanted: Vec<String>,
}

impl std::fmt::Display for SanMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SAN mismatch: the certificate has [{}], verify_san wants one of [{}]",
            self.found.join(", "),
            self.wanted.join(", ")
        )
    }
}

impl std::error::Error for SanMismatch {}

/// Whether the leaf carries one of `wanted` (any-of, exact; DNS names without ASCII case).
fn check_sans(leaf: &CertificateDer<'_>, wanted: &[SanMatcher]) -> Result<(), rustls::Error> {
    let bad = || rustls::Error::InvalidCertificate(CertificateError::BadEncoding);
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).map_err(|_| bad())?;
    let mut found = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            let have = match name {
                GeneralName::URI(u) => SanMatcher::Uri((*u).to_string()),
                GeneralName::DNSName(d) => SanMatcher::Dns((*d).to_string()),
                GeneralName::IPAddress(bytes) => match ip_of(bytes) {
                    Some(ip) => SanMatcher::Ip(ip),
                    None => continue,
                },
                _ => continue,
            };
            if wanted.iter().any(|w| san_matches(w, &have)) {
                return Ok(());
            }
            found.push(have.to_string());
        }
    }
    Err(rustls::Error::InvalidCertificate(CertificateError::Other(
        OtherError(Arc::new(SanMismatch {
            found,
            wanted: wanted.iter().map(ToString::to_string).collect(),
        })),
    )))
}

fn san_matches(wanted: &SanMatcher, have: &SanMatcher) -> bool {
    match (wanted, have) {
        (SanMatcher::Dns(w), SanMatcher::Dns(h)) => w.eq_ignore_ascii_case(h),
        (w, h) => w == h,
    }
}

fn ip_of(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}
