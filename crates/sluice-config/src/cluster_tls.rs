//! A cluster's `tls:` block: TLS from Sluice to the cluster's endpoints (the client side).
//!
//! Like the listener side (`tls.rs`), PEM files are read while the config loads, so a missing
//! or broken file is a config error naming the YAML path and the file; key bytes stay in a
//! [`PrivateKey`] whose `Debug` hides them.

use std::net::IpAddr;
use std::path::PathBuf;

use rustls_pki_types::ServerName;

use crate::decode::{index, join, keyword, seq, single_key, Cx, Decode, Fields};
use crate::tls::{read_certs, read_key, TlsCertificate, TlsVersion, CIPHER_SUITES};
use crate::yaml::{Node, NodeKind};

/// How the server's certificate is trusted.
#[derive(Debug, Clone)]
pub enum UpstreamTrust {
    /// The chain must verify against the `ca` bundle: a watched file or an SDS secret.
    Ca(crate::tls::CaSource),
    /// `insecure_skip_verify: true`: any certificate is accepted (the handshake's signatures
    /// are still checked, so the peer holds the key of the certificate it showed).
    InsecureSkipVerify,
}

/// One `verify_san` entry: a subject alternative name the server certificate may carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanMatcher {
    /// A URI SAN, compared exactly (a SPIFFE ID such as `spiffe://cluster.local/ns/x/sa/y`).
    Uri(String),
    /// A DNS SAN, compared without regard to ASCII case; a wildcard SAN in the certificate
    /// matches only the same wildcard written here.
    Dns(String),
    /// An IP address SAN.
    Ip(IpAddr),
}

impl std::fmt::Display for SanMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SanMatcher::Uri(u) => write!(f, "URI:{u}"),
            SanMatcher::Dns(d) => write!(f, "DNS:{d}"),
            SanMatcher::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// A cluster's `tls:` block.
#[derive(Debug, Clone)]
pub struct UpstreamTlsConfig {
    /// The server name sent (SNI) and, without `verify_san`, the name the certificate must be
    /// valid for. `None`: the endpoint's DNS name (DNS clusters), else its IP address.
    pub sni: Option<String>,
    pub trust: UpstreamTrust,
    /// Any of these SANs must be in the server certificate; when set, it replaces the check
    /// of the certificate against the server name.
    pub verify_san: Vec<SanMatcher>,
    /// The client certificate (mTLS): `cert_chain` and `private_key`, or `certificate:
    /// { sds: NAME }`.
    pub client_certificate: Option<crate::tls::CertificateSource>,
    /// ALPN protocols offered. `None`: each connection offers its own protocol (`h2` for
    /// HTTP/2, `http/1.1` for HTTP/1.1, nothing for `tcp_proxy`, RPC and TCP checks).
    pub alpn: Option<Vec<String>>,
    pub min_version: TlsVersion,
    /// IANA names; empty: the provider's defaults.
    pub cipher_suites: Vec<String>,
}

impl UpstreamTlsConfig {
    /// Every `{ sds: NAME }` this block refers to.
    pub fn sds_refs(&self) -> impl Iterator<Item = &crate::tls::SdsSecretRef> {
        let ca = match &self.trust {
            UpstreamTrust::Ca(crate::tls::CaSource::Sds(r)) => Some(r),
            _ => None,
        };
        let cert = match &self.client_certificate {
            Some(crate::tls::CertificateSource::Sds(r)) => Some(r),
            _ => None,
        };
        ca.into_iter().chain(cert)
    }
}

impl Decode for UpstreamTlsConfig {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let sni_line = f.line_of("sni");
        let sni = f.optional::<String>("sni", cx).ok();
        let ca_node = f.node("ca");
        let insecure = f.or("insecure_skip_verify", false, cx);
        let insecure_line = f.line_of("insecure_skip_verify");
        let verify_san = match f.node("verify_san") {
            Some(n) => seq(n, &join(path, "verify_san"), cx, decode_san),
            None => Some(Vec::new()),
        };
        let san_line = f.line_of("verify_san");
        let chain_node = f.node("cert_chain");
        let chain_file = f.optional::<String>("cert_chain", cx).ok();
        let key_node = f.node("private_key");
        let key_file = f.optional::<String>("private_key", cx).ok();
        let sds_cert = match f.node("certificate") {
            Some(n) => {
                let at = join(path, "certificate");
                match Fields::new(n, &at, cx) {
                    Some(mut c) => {
                        let r = crate::tls::decode_sds_ref(&mut c, &at, cx);
                        c.finish(cx);
                        r.map(Some)
                    }
                    None => None,
                }
            }
            None => Some(None),
        };
        let alpn = f.optional::<Vec<String>>("alpn", cx).ok();
        let alpn_line = f.line_of("alpn");
        let min_version = f.or("min_version", TlsVersion::Tls12, cx);
        let cipher_suites = match f.node("cipher_suites") {
            Some(n) => seq(n, &join(path, "cipher_suites"), cx, |n, p, cx| {
                keyword(n, p, cx, "cipher suite", &CIPHER_SUITES, |s| {
                    CIPHER_SUITES.contains(&s).then(|| s.to_string())
                })
            }),
            None => Some(Vec::new()),
        };
        f.finish(cx);

        let sni = match sni {
            Some(Some(name)) if ServerName::try_from(name.as_str()).is_err() => {
                cx.error(
                    sni_line,
                    &join(path, "sni"),
                    format!("\"{name}\" is not a DNS name or an IP address"),
                );
                None
            }
            sni => sni,
        };
        let trust = match (ca_node, insecure) {
            (Some(n), Some(insecure)) => {
                if insecure {
                    cx.error(
                        insecure_line,
                        &join(path, "insecure_skip_verify"),
                        "ca and insecure_skip_verify: true exclude each other",
                    );
                }
                crate::tls::decode_ca(n, &join(path, "ca"), cx)
                    .filter(|_| !insecure)
                    .map(UpstreamTrust::Ca)
            }
            (None, Some(true)) => Some(UpstreamTrust::InsecureSkipVerify),
            (None, Some(false)) => {
                cx.error(
                    node.line,
                    path,
                    "needs ca (the CA bundle the server's certificate must chain to), \
                     or insecure_skip_verify: true to skip verification",
                );
                None
            }
            _ => None,
        };
        if matches!(trust, Some(UpstreamTrust::InsecureSkipVerify))
            && verify_san.as_ref().is_some_and(|s| !s.is_empty())
        {
            cx.error(
                san_line,
                &join(path, "verify_san"),
                "needs ca: the SANs of a certificate nobody verified prove nothing",
            );
        }
        let client_certificate = match (chain_file, key_file) {
            (Some(Some(chain_file)), Some(Some(key_file))) => {
                let chain_file = PathBuf::from(chain_file);
                let key_file = PathBuf::from(key_file);
                let chain = chain_node
                    .and_then(|n| read_certs(&chain_file, n.line, &join(path, "cert_chain"), cx));
                let key = key_node
                    .and_then(|n| read_key(&key_file, n.line, &join(path, "private_key"), cx));
                match (chain, key) {
                    (Some(chain), Some(private_key)) => {
                        Some(Some(crate::tls::CertificateSource::Files(TlsCertificate {
                            cert_chain_file: chain_file,
                            private_key_file: key_file,
                            chain,
                            private_key,
                            ocsp_staple_file: None,
                            ocsp_staple: None,
                        })))
                    }
                    _ => None,
                }
            }
            (Some(None), Some(None)) => Some(None),
            (Some(Some(_)), Some(None)) => {
                cx.error(
                    node.line,
                    path,
                    "cert_chain needs private_key (a client certificate is both or neither)",
                );
                None
            }
            (Some(None), Some(Some(_))) => {
                cx.error(
                    node.line,
                    path,
                    "private_key needs cert_chain (a client certificate is both or neither)",
                );
                None
            }
            _ => None,
        };
        if let Some(Some(alpn)) = &alpn {
            for (i, p) in alpn.iter().enumerate() {
                if p.is_empty() || p.len() > 255 {
                    cx.error(
                        alpn_line,
                        &index(&join(path, "alpn"), i),
                        "an ALPN protocol name is 1 to 255 bytes",
                    );
                }
            }
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
        let client_certificate = match (client_certificate, sds_cert) {
            (Some(Some(_)), Some(Some(_))) => {
                cx.error(
                    node.line,
                    &join(path, "certificate"),
                    "give the client certificate as cert_chain and private_key, or as certificate: { sds: NAME }, not both",
                );
                None
            }
            (Some(files), Some(sds)) => Some(files.or(sds.map(crate::tls::CertificateSource::Sds))),
            _ => None,
        };
        Some(UpstreamTlsConfig {
            sni: sni?,
            trust: trust?,
            verify_san: verify_san?,
            client_certificate: client_certificate?,
            alpn: alpn?,
            min_version: min_version?,
            cipher_suites: cipher_suites?,
        })
    }
}

/// A `verify_san` entry: `{ uri: ... }`, `{ dns: ... }`, `{ ip: ... }`, or a bare string whose
/// kind is read from its form (`scheme://...` a URI, an IP address, else a DNS name).
fn decode_san(node: &Node, path: &str, cx: &mut Cx) -> Option<SanMatcher> {
    let (kind, text, path) = match &node.kind {
        NodeKind::Map(_) => {
            let (kind, value) = single_key(node, path, cx)?;
            let value_path = join(path, kind);
            (
                Some(kind),
                String::decode(value, &value_path, cx)?,
                value_path,
            )
        }
        _ => (None, String::decode(node, path, cx)?, path.to_string()),
    };
    let bad = |cx: &mut Cx, what: &str| {
        cx.error(node.line, &path, format!("\"{text}\" is not {what}"));
        None
    };
    match kind {
        Some("uri") if is_uri(&text) => Some(SanMatcher::Uri(text)),
        Some("uri") => bad(cx, "a URI (scheme://...)"),
        Some("ip") => match text.parse() {
            Ok(ip) => Some(SanMatcher::Ip(ip)),
            Err(_) => bad(cx, "an IP address"),
        },
        Some("dns") if is_dns_name(&text) => Some(SanMatcher::Dns(text)),
        Some("dns") => bad(cx, "a DNS name"),
        Some(other) => {
            cx.error(
                node.line,
                &path,
                format!("unknown SAN kind \"{other}\": expected uri, dns or ip"),
            );
            None
        }
        None if is_uri(&text) => Some(SanMatcher::Uri(text)),
        None => match text.parse() {
            Ok(ip) => Some(SanMatcher::Ip(ip)),
            Err(_) if is_dns_name(&text) => Some(SanMatcher::Dns(text)),
            Err(_) => bad(cx, "a URI (scheme://...), an IP address or a DNS name"),
        },
    }
}

/// `scheme://rest`, with a scheme of letters, digits, `+`, `-`, `.`, and no spaces.
fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once("://") else {
        return false;
    };
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A DNS name, possibly with a leading `*.` wildcard label.
fn is_dns_name(text: &str) -> bool {
    let name = text.strip_prefix("*.").unwrap_or(text);
    name.parse::<IpAddr>().is_err()
        && matches!(ServerName::try_from(name), Ok(ServerName::DnsName(_)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::yaml::parse;

    const PATH: &str = "clusters[0].tls";

    /// A CA file and a key file in a fresh temporary folder (contents need only parse as PEM).
    struct Files {
        dir: PathBuf,
    }

    impl Files {
        fn new(name: &str) -> Files {
            let dir = std::env::temp_dir()
                .join(format!("sluice-cluster-tls-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let cert = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
            let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
            std::fs::write(dir.join("ca.pem"), cert).unwrap();
            std::fs::write(dir.join("c.pem"), cert).unwrap();
            std::fs::write(dir.join("c.key"), key).unwrap();
            std::fs::write(dir.join("empty.pem"), "nothing here\n").unwrap();
            Files { dir }
        }

        fn yaml(&self, yaml: &str) -> String {
            yaml.replace("DIR", &self.dir.display().to_string())
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn decode(yaml: &str) -> Result<UpstreamTlsConfig, Vec<String>> {
        let doc = parse(yaml).unwrap();
        let mut cx = Cx::default();
        let config = UpstreamTlsConfig::decode(&doc, PATH, &mut cx);
        match config {
            Some(c) if !cx.has_errors() => Ok(c),
            _ => Err(cx.diagnostics.iter().map(|d| d.to_string()).collect()),
        }
    }

    fn error(yaml: &str) -> String {
        let errors = decode(yaml).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn the_contract_block() {
        let files = Files::new("contract");
        let c = decode(&files.yaml(
            "{ sni: backend.local, ca: DIR/ca.pem, cert_chain: DIR/c.pem, private_key: DIR/c.key, \
             verify_san: [\"spiffe://cluster.local/ns/default/sa/backend\"], alpn: [h2] }",
        ))
        .unwrap();
        assert_eq!(c.sni.as_deref(), Some("backend.local"));
        assert!(matches!(
            c.trust,
            UpstreamTrust::Ca(crate::tls::CaSource::File { ref certs, .. }) if certs.len() == 1
        ));
        assert_eq!(
            c.verify_san,
            vec![SanMatcher::Uri(
                "spiffe://cluster.local/ns/default/sa/backend".into()
            )]
        );
        let cert = c.client_certificate.unwrap();
        let crate::tls::CertificateSource::Files(files) = &cert else {
            panic!("files expected")
        };
        assert_eq!(files.chain.len(), 1);
        assert!(!format!("{cert:?}").contains("MAMCAQA"));
        assert_eq!(c.alpn, Some(vec!["h2".to_string()]));
        assert_eq!(c.min_version, TlsVersion::Tls12);
    }

    #[test]
    fn san_kinds_are_read_from_their_form_or_named() {
        let files = Files::new("sans");
        let c = decode(&files.yaml(
            "{ ca: DIR/ca.pem, verify_san: [a.example.com, 127.0.0.1, \"spiffe://td/x\", \
             { dns: \"*.example.com\" }, { ip: \"::1\" }, { uri: \"urn://x\" }] }",
        ))
        .unwrap();
        assert_eq!(
            c.verify_san,
            vec![
                SanMatcher::Dns("a.example.com".into()),
                SanMatcher::Ip("127.0.0.1".parse().unwrap()),
                SanMatcher::Uri("spiffe://td/x".into()),
                SanMatcher::Dns("*.example.com".into()),
                SanMatcher::Ip("::1".parse().unwrap()),
                SanMatcher::Uri("urn://x".into()),
            ]
        );
    }

    #[test]
    fn without_ca_verification_must_be_skipped_explicitly() {
        let e = error("{ sni: a.example.com }");
        assert!(e.contains("clusters[0].tls: needs ca"), "{e}");
        let c = decode("{ insecure_skip_verify: true }").unwrap();
        assert!(matches!(c.trust, UpstreamTrust::InsecureSkipVerify));
        let e = error("{ insecure_skip_verify: true, verify_san: [a.example.com] }");
        assert!(e.contains("clusters[0].tls.verify_san: needs ca"), "{e}");
        let files = Files::new("both");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, insecure_skip_verify: true }"));
        assert!(e.contains("exclude each other"), "{e}");
    }

    #[test]
    fn file_errors_name_the_path_and_the_file() {
        let files = Files::new("files");
        let e = error(&files.yaml("{ ca: DIR/missing.pem }"));
        assert!(e.contains("clusters[0].tls.ca: cannot read"), "{e}");
        assert!(e.contains("missing.pem"), "{e}");
        let e = error(&files.yaml("{ ca: DIR/empty.pem }"));
        assert!(e.contains("clusters[0].tls.ca:"), "{e}");
        assert!(e.contains("no PEM certificate"), "{e}");
        let e = error(
            &files.yaml("{ ca: DIR/ca.pem, cert_chain: DIR/c.pem, private_key: DIR/ca.pem }"),
        );
        assert!(e.contains("clusters[0].tls.private_key:"), "{e}");
        assert!(e.contains("no usable PEM private key"), "{e}");
    }

    #[test]
    fn a_client_certificate_is_both_or_neither() {
        let files = Files::new("pair");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, cert_chain: DIR/c.pem }"));
        assert!(e.contains("cert_chain needs private_key"), "{e}");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, private_key: DIR/c.key }"));
        assert!(e.contains("private_key needs cert_chain"), "{e}");
    }

    #[test]
    fn sds_forms_and_their_exclusions() {
        let files = Files::new("sds");
        let c =
            decode(&files.yaml("{ ca: { sds: ROOTCA }, certificate: { sds: default } }")).unwrap();
        assert_eq!(
            c.sds_refs().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["ROOTCA", "default"]
        );
        let err = error(&files.yaml(
            "{ ca: DIR/ca.pem, cert_chain: DIR/c.pem, private_key: DIR/c.key, certificate: { sds: x } }",
        ));
        assert!(err.contains("not both"), "{err}");
    }

    #[test]
    fn bad_values_are_refused() {
        let files = Files::new("bad");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, verify_san: [{ email: a@b.c }] }"));
        assert!(
            e.contains("clusters[0].tls.verify_san[0].email: unknown SAN kind \"email\""),
            "{e}"
        );
        let e = error(&files.yaml("{ ca: DIR/ca.pem, verify_san: [{ ip: nope }] }"));
        assert!(
            e.contains("verify_san[0].ip: \"nope\" is not an IP address"),
            "{e}"
        );
        let e = error(&files.yaml("{ ca: DIR/ca.pem, verify_san: [\"not a name\"] }"));
        assert!(e.contains("verify_san[0]: \"not a name\" is not"), "{e}");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, sni: \"bad name!\" }"));
        assert!(e.contains("clusters[0].tls.sni:"), "{e}");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, alpn: [\"\"] }"));
        assert!(e.contains("clusters[0].tls.alpn[0]:"), "{e}");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, cipher_suites: [RC4] }"));
        assert!(e.contains("cipher_suites[0]"), "{e}");
        let e = error(&files.yaml(
            "{ ca: DIR/ca.pem, min_version: TLS1_3, cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256] }",
        ));
        assert!(e.contains("needs at least one TLS13_ suite"), "{e}");
        let e = error(&files.yaml("{ ca: DIR/ca.pem, handshake_timeout: 1s }"));
        assert!(e.contains("handshake_timeout"), "{e}");
    }
}
