//! Filter chains and downstream TLS: the model and its decoding.
//!
//! A listener holds one or more filter chains; each may terminate TLS (`tls:`) before its
//! network filters see the bytes. PEM files are read and parsed here, while the config loads,
//! so a missing or broken file is a config error naming the file and the YAML path, reported by
//! `sluice check` like any other. Private key bytes are kept in [`PrivateKey`], whose `Debug`
//! never shows them, and no message built here quotes a file's content.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::decode::{join, keyword, seq, Cx, Decode, Fields};
use crate::model::NetworkFilterSpec;
use crate::yaml::Node;

/// How long a client may take from connecting to finishing its TLS handshake, by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener filter: runs on a new connection before a filter chain is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerFilter {
    /// Peeks at the first bytes: TLS or not, and for TLS the ClientHello's SNI and ALPN, so
    /// chains can match on them.
    TlsInspector,
}

impl ListenerFilter {
    pub const NAMES: [&'static str; 1] = ["tls_inspector"];

    pub fn from_name(name: &str) -> Option<ListenerFilter> {
        match name {
            "tls_inspector" => Some(ListenerFilter::TlsInspector),
            _ => None,
        }
    }
}

impl Decode for ListenerFilter {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        // Written as a bare name or as a one-key mapping with no settings (`{ tls_inspector: {} }`).
        let (name, body) = crate::decode::single_key(node, path, cx)?;
        if let Some(f) = Fields::new(body, &join(path, name), cx) {
            f.finish(cx);
        }
        let name_node = Node {
            kind: crate::yaml::NodeKind::Scalar {
                text: name.to_string(),
                quoted: false,
            },
            line: node.line,
        };
        keyword(
            &name_node,
            path,
            cx,
            "listener filter",
            &ListenerFilter::NAMES,
            ListenerFilter::from_name,
        )
    }
}

/// What the connection carries, as the TLS inspector saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportProtocol {
    Tls,
    RawBuffer,
}

impl TransportProtocol {
    pub const NAMES: [&'static str; 2] = ["tls", "raw_buffer"];

    pub fn from_name(name: &str) -> Option<TransportProtocol> {
        match name {
            "tls" => Some(TransportProtocol::Tls),
            "raw_buffer" => Some(TransportProtocol::RawBuffer),
            _ => None,
        }
    }
}

impl Decode for TransportProtocol {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "transport protocol",
            &TransportProtocol::NAMES,
            TransportProtocol::from_name,
        )
    }
}

/// Which connections a filter chain takes. Empty: any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterChainMatch {
    /// The port the client connected to.
    pub destination_port: Option<u16>,
    /// The address the client connected to.
    pub prefix_ranges: Vec<crate::Cidr>,
    /// SNI names, exact (`a.example.com`) or a leading wildcard (`*.example.com`).
    pub server_names: Vec<String>,
    pub transport_protocol: Option<TransportProtocol>,
    /// ALPN protocols the client offers (any one of them matches).
    pub application_protocols: Vec<String>,
    /// The client's address.
    pub source_prefix_ranges: Vec<crate::Cidr>,
    pub source_ports: Vec<u16>,
}

impl FilterChainMatch {
    pub fn is_empty(&self) -> bool {
        self == &FilterChainMatch::default()
    }

    /// Whether the match only takes TLS clients (a chain for them without `tls:` passes
    /// TLS through).
    pub fn names_tls(&self) -> bool {
        self.transport_protocol == Some(TransportProtocol::Tls)
            || !self.server_names.is_empty()
            || !self.application_protocols.is_empty()
    }

    /// Whether the match reads the ClientHello (and so needs the TLS inspector).
    pub fn needs_inspector(&self) -> bool {
        !self.server_names.is_empty()
            || self.transport_protocol.is_some()
            || !self.application_protocols.is_empty()
    }
}

/// One filter chain of a listener.
#[derive(Debug, Clone)]
pub struct FilterChainConfig {
    pub matcher: FilterChainMatch,
    pub tls: Option<Arc<TlsConfig>>,
    pub filters: Vec<NetworkFilterSpec>,
    /// YAML path (`listeners[0].filter_chains[1]`) and line, for messages.
    pub path: String,
    pub line: usize,
}

impl FilterChainConfig {
    /// Whether the chain is for TLS clients: it terminates TLS, or its match names TLS (then
    /// it passes TLS through to its filters, e.g. `tcp_proxy` by SNI).
    pub fn takes_tls(&self) -> bool {
        self.tls.is_some() || self.matcher.names_tls()
    }
}

/// Lowest TLS version a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    pub const NAMES: [&'static str; 2] = ["TLS1_2", "TLS1_3"];

    pub fn from_name(name: &str) -> Option<TlsVersion> {
        match name {
            "TLS1_2" => Some(TlsVersion::Tls12),
            "TLS1_3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }
}

impl Decode for TlsVersion {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "TLS version",
            &TlsVersion::NAMES,
            TlsVersion::from_name,
        )
    }
}

/// Cipher suites Sluice can offer (rustls with aws-lc-rs), by their IANA names.
pub const CIPHER_SUITES: [&str; 9] = [
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// Where a `certificates[]` entry comes from: PEM files (watched for changes at run time) or
/// a secret of the SDS server.
#[derive(Debug, Clone)]
pub enum CertificateSource {
    Files(TlsCertificate),
    Sds(SdsSecretRef),
}

/// Where `client_ca` comes from: a PEM file (watched at run time) or an SDS validation context.
#[derive(Debug, Clone)]
pub enum CaSource {
    File {
        file: PathBuf,
        certs: Vec<CertificateDer<'static>>,
    },
    Sds(SdsSecretRef),
}

/// `{ sds: NAME }`: a secret the SDS server (top-level `sds:`) supplies by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdsSecretRef {
    pub name: String,
    /// YAML path and line of the reference, for messages (a missing top-level `sds:`).
    pub path: String,
    pub line: usize,
}

/// A certificate chain and its private key, read from PEM files.
#[derive(Debug, Clone)]
pub struct TlsCertificate {
    pub cert_chain_file: PathBuf,
    pub private_key_file: PathBuf,
    /// The chain, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    pub private_key: PrivateKey,
    /// A DER OCSP response for the leaf, stapled to handshakes of clients that ask for one.
    pub ocsp_staple_file: Option<PathBuf>,
    pub ocsp_staple: Option<Vec<u8>>,
}

/// Private key bytes (DER). `Debug` prints a placeholder: keys never reach logs or messages.
#[derive(Clone)]
pub struct PrivateKey(Arc<PrivateKeyDer<'static>>);

impl PrivateKey {
    pub fn der(&self) -> PrivateKeyDer<'static> {
        self.0.clone_key()
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A chain's `tls:` block: downstream TLS termination.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// At least one; with several, the client's SNI picks the one whose names match it (the
    /// first is the default).
    pub certificates: Vec<CertificateSource>,
    /// ALPN protocols offered, in preference order (`h2`, `http/1.1`).
    pub alpn: Vec<String>,
    /// CA certificates that client certificates must chain to.
    pub client_ca: Option<CaSource>,
    pub require_client_certificate: bool,
    pub min_version: TlsVersion,
    /// IANA names; empty: the provider's defaults.
    pub cipher_suites: Vec<String>,
    pub handshake_timeout: Duration,
    /// Stateless session resumption: tickets sealed with keys made in-process and rotated.
    pub session_tickets: bool,
}

impl Decode for TlsConfig {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let certificates = match f.node("certificates") {
            Some(n) => seq(n, &join(path, "certificates"), cx, decode_certificate),
            None => {
                cx.error(f.line(), path, "missing required field \"certificates\"");
                None
            }
        };
        let certs_line = f.line_of("certificates");
        let alpn = f.or("alpn", Vec::<String>::new(), cx);
        let alpn_line = f.line_of("alpn");
        let client_ca = match f.node("client_ca") {
            Some(n) => decode_ca(n, &join(path, "client_ca"), cx).map(Some),
            None => Some(None),
        };
        let require = f.or("require_client_certificate", false, cx);
        let require_line = f.line_of("require_client_certificate");
        let min_version = f.or("min_version", TlsVersion::Tls12, cx);
        let cipher_suites = match f.node("cipher_suites") {
            Some(n) => seq(n, &join(path, "cipher_suites"), cx, |n, p, cx| {
                keyword(n, p, cx, "cipher suite", &CIPHER_SUITES, |s| {
                    CIPHER_SUITES.contains(&s).then(|| s.to_string())
                })
            }),
            None => Some(Vec::new()),
        };
        let handshake_timeout = f.or("handshake_timeout", DEFAULT_HANDSHAKE_TIMEOUT, cx);
        let timeout_line = f.line_of("handshake_timeout");
        let session_tickets = f.or("session_tickets", true, cx);
        f.finish(cx);
        if let Some(alpn) = &alpn {
            for (i, p) in alpn.iter().enumerate() {
                if p.is_empty() || p.len() > 255 {
                    cx.error(
                        alpn_line,
                        &crate::decode::index(&join(path, "alpn"), i),
                        "an ALPN protocol name is 1 to 255 bytes",
                    );
                }
            }
        }
        if let Some(certs) = &certificates {
            if certs.is_empty() {
                cx.error(
                    certs_line,
                    &join(path, "certificates"),
                    "needs at least one { cert_chain, private_key } or { sds: NAME }",
                );
            }
        }
        if require == Some(true) && matches!(client_ca, Some(None)) {
            cx.error(
                require_line,
                &join(path, "require_client_certificate"),
                "needs client_ca (the CA bundle client certificates are verified against)",
            );
        }
        if handshake_timeout == Some(Duration::ZERO) {
            cx.error(
                timeout_line,
                &join(path, "handshake_timeout"),
                "must be more than 0",
            );
        }
        if let (Some(TlsVersion::Tls13), Some(suites)) = (min_version, &cipher_suites) {
            if !suites.is_empty() && !suites.iter().any(|s| s.starts_with("TLS13_")) {
                cx.error(
                    node.line,
                    &join(path, "cipher_suites"),
                    "min_version TLS1_3 needs at least one TLS13_ suite",
                );
            }
        }
        Some(TlsConfig {
            certificates: certificates?,
            alpn: alpn?,
            client_ca: client_ca?,
            require_client_certificate: require?,
            min_version: min_version?,
            cipher_suites: cipher_suites?,
            handshake_timeout: handshake_timeout?,
            session_tickets: session_tickets?,
        })
    }
}

impl TlsConfig {
    /// Every `{ sds: NAME }` this block refers to.
    pub fn sds_refs(&self) -> impl Iterator<Item = &SdsSecretRef> {
        let certs = self.certificates.iter().filter_map(|c| match c {
            CertificateSource::Sds(r) => Some(r),
            CertificateSource::Files(_) => None,
        });
        let ca = match &self.client_ca {
            Some(CaSource::Sds(r)) => Some(r),
            _ => None,
        };
        certs.chain(ca)
    }
}

/// `{ sds: NAME }`, already known to be a mapping with an `sds` key.
pub(crate) fn decode_sds_ref(f: &mut Fields<'_>, path: &str, cx: &mut Cx) -> Option<SdsSecretRef> {
    let line = f.line_of("sds");
    let name = f.required::<String>("sds", cx)?;
    if name.is_empty() {
        cx.error(line, &join(path, "sds"), "a secret name cannot be empty");
        return None;
    }
    Some(SdsSecretRef {
        name,
        path: join(path, "sds"),
        line,
    })
}

/// `client_ca`: a PEM file's path, or `{ sds: NAME }`.
pub(crate) fn decode_ca(node: &Node, path: &str, cx: &mut Cx) -> Option<CaSource> {
    if matches!(node.kind, crate::yaml::NodeKind::Map(_)) {
        let mut f = Fields::new(node, path, cx)?;
        let r = decode_sds_ref(&mut f, path, cx);
        f.finish(cx);
        return r.map(CaSource::Sds);
    }
    let file = String::decode(node, path, cx).map(PathBuf::from)?;
    let certs = read_certs(&file, node.line, path, cx)?;
    Some(CaSource::File { file, certs })
}

fn decode_certificate(node: &Node, path: &str, cx: &mut Cx) -> Option<CertificateSource> {
    let mut f = Fields::new(node, path, cx)?;
    if f.has("sds") {
        let r = decode_sds_ref(&mut f, path, cx);
        f.finish(cx);
        return r.map(CertificateSource::Sds);
    }
    let chain_node = f.node("cert_chain");
    let key_node = f.node("private_key");
    let chain_file = f.required::<String>("cert_chain", cx).map(PathBuf::from);
    let key_file = f.required::<String>("private_key", cx).map(PathBuf::from);
    let ocsp_node = f.node("ocsp_staple");
    let ocsp_file = f
        .optional::<String>("ocsp_staple", cx)
        .map(|o| o.map(PathBuf::from));
    f.finish(cx);
    let ocsp = match (ocsp_file.as_ref().ok().and_then(Option::as_ref), ocsp_node) {
        (Some(file), Some(n)) => match read_file(file, n.line, &join(path, "ocsp_staple"), cx) {
            Some(bytes) if bytes.is_empty() => {
                cx.error(
                    n.line,
                    &join(path, "ocsp_staple"),
                    format!(
                        "\"{}\" is empty (expected a DER OCSP response)",
                        file.display()
                    ),
                );
                None
            }
            Some(bytes) => Some(Some(bytes)),
            None => None,
        },
        _ => Some(None),
    };
    let chain = match (&chain_file, chain_node) {
        (Some(file), Some(n)) => read_certs(file, n.line, &join(path, "cert_chain"), cx),
        _ => None,
    };
    let key = match (&key_file, key_node) {
        (Some(file), Some(n)) => read_key(file, n.line, &join(path, "private_key"), cx),
        _ => None,
    };
    Some(CertificateSource::Files(TlsCertificate {
        cert_chain_file: chain_file?,
        private_key_file: key_file?,
        chain: chain?,
        private_key: key?,
        ocsp_staple_file: ocsp_file.ok()?,
        ocsp_staple: ocsp?,
    }))
}

/// A PEM file's bytes; a file that cannot be read is an error naming it.
fn read_file(file: &Path, line: usize, path: &str, cx: &mut Cx) -> Option<Vec<u8>> {
    std::fs::read(file)
        .map_err(|e| {
            cx.error(
                line,
                path,
                format!("cannot read \"{}\": {e}", file.display()),
            )
        })
        .ok()
}

/// Parses every certificate of PEM bytes (`what` names their origin in the message, which
/// never quotes the bytes); none at all is an error.
pub fn parse_certs(bytes: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(bytes) {
        match item {
            Ok(c) => certs.push(c),
            Err(e) => {
                return Err(format!(
                    "{what}: invalid PEM certificate ({})",
                    pem_error(&e)
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(format!(
            "{what}: no PEM certificate (BEGIN CERTIFICATE) found"
        ));
    }
    Ok(certs)
}

/// Parses the first private key of PEM bytes (PKCS#8, PKCS#1 RSA or SEC1 EC); the message
/// names `what`, never the bytes.
pub fn parse_key(bytes: &[u8], what: &str) -> Result<PrivateKey, String> {
    PrivateKeyDer::from_pem_slice(bytes)
        .map(|k| PrivateKey(Arc::new(k)))
        .map_err(|e| {
            format!(
                "{what}: no usable PEM private key (PKCS#8, RSA or EC) found ({})",
                pem_error(&e)
            )
        })
}

/// Reads every certificate of a PEM file; none at all is an error.
pub(crate) fn read_certs(
    file: &Path,
    line: usize,
    path: &str,
    cx: &mut Cx,
) -> Option<Vec<CertificateDer<'static>>> {
    let bytes = read_file(file, line, path, cx)?;
    parse_certs(&bytes, &format!("\"{}\"", file.display()))
        .map_err(|e| cx.error(line, path, e))
        .ok()
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub(crate) fn read_key(file: &Path, line: usize, path: &str, cx: &mut Cx) -> Option<PrivateKey> {
    let bytes = read_file(file, line, path, cx)?;
    parse_key(&bytes, &format!("\"{}\"", file.display()))
        .map_err(|e| cx.error(line, path, e))
        .ok()
}

/// A PEM error in words that never quote the file's bytes.
fn pem_error(e: &rustls_pki_types::pem::Error) -> &'static str {
    use rustls_pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a section has no END line",
        Error::IllegalSectionStart { .. } => "malformed BEGIN line",
        Error::Base64Decode(_) => "invalid base64",
        Error::NoItemsFound => "nothing found",
        _ => "unreadable",
    }
}
