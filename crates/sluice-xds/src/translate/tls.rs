//! A listener's `DownstreamTlsContext` as a native `tls:` block, and the TLS pieces the
//! upstream side (`cluster.rs`) shares with it: key files, SDS references and cipher suites.
//!
//! Certificates come from files (`filename` data sources: the native side reads and watches
//! them) or from SDS (`{ sds: NAME }`, served by the top-level `sds:` server). Inline key
//! material is refused: the native config names files, and a key in a resource would be
//! echoed by `/config_dump`.

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::core::v3::DataSource;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::downstream_tls_context::SessionTicketKeysType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::tls_parameters::TlsProtocol;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, SdsSecretConfig,
    TlsParameters,
};
use sluice_config::yaml::Node;

use super::tree::{boolean, ignored, index, join, list, single, text, texts, unsupported, Map};
use super::{Error, Result};

/// The native `tls:` of a chain; `handshake_timeout` is the chain's
/// `transport_socket_connect_timeout`, already translated.
#[allow(deprecated)] // the certificate provider fields, matched to be refused
pub fn downstream(
    ctx: &DownstreamTlsContext,
    field: &str,
    handshake_timeout: Option<Node>,
) -> Result<Node> {
    let mut m = Map::new();
    let common = ctx
        .common_tls_context
        .as_ref()
        .ok_or_else(|| Error::new(join(field, "common_tls_context"), "is required"))?;
    let cpath = join(field, "common_tls_context");
    certificates(common, &cpath, &mut m)?;
    if !common.alpn_protocols.is_empty() {
        m.set("alpn", texts(&common.alpn_protocols));
    }
    let default = TlsParameters::default();
    params(
        common.tls_params.as_ref().unwrap_or(&default),
        &join(&cpath, "tls_params"),
        &mut m,
    )?;
    match &common.validation_context_type {
        None => {}
        Some(ValidationContextType::ValidationContext(v)) => {
            m.set(
                "client_ca",
                trusted_ca(v, &join(&cpath, "validation_context"))?,
            );
        }
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => {
            m.set(
                "client_ca",
                sds_ref(s, &join(&cpath, "validation_context_sds_secret_config"))?,
            );
        }
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            let path = join(&cpath, "combined_validation_context");
            if c.validation_context_certificate_provider.is_some()
                || c.validation_context_certificate_provider_instance.is_some()
            {
                return Err(Error::new(
                    path,
                    "certificate providers are not supported by Sluice (use SDS)",
                ));
            }
            if let Some(v) = &c.default_validation_context {
                // The secret's CA replaces this one; anything else would add checks.
                let mut only_trust = v.clone();
                only_trust.trusted_ca = None;
                if only_trust != CertificateValidationContext::default() {
                    return Err(Error::new(
                        join(&path, "default_validation_context"),
                        "only trusted_ca is supported for client certificates (no SAN, hash, SPKI or CRL checks)",
                    ));
                }
            }
            let s = c
                .validation_context_sds_secret_config
                .as_ref()
                .ok_or_else(|| {
                    Error::new(
                        join(&path, "validation_context_sds_secret_config"),
                        "is required",
                    )
                })?;
            m.set(
                "client_ca",
                sds_ref(s, &join(&path, "validation_context_sds_secret_config"))?,
            );
        }
        Some(_) => {
            return Err(Error::new(
                join(&cpath, "validation_context_certificate_provider"),
                "is not supported by Sluice",
            ))
        }
    }
    if let Some(require) = ctx.require_client_certificate {
        m.set("require_client_certificate", boolean(require.value));
    }
    unsupported(
        ctx.require_sni.is_some_and(|b| b.value),
        &join(field, "require_sni"),
    )?;
    match &ctx.session_ticket_keys_type {
        None | Some(SessionTicketKeysType::DisableStatelessSessionResumption(false)) => {}
        Some(SessionTicketKeysType::DisableStatelessSessionResumption(true)) => {
            m.set("session_tickets", boolean(false));
        }
        // Tickets sealed with the control plane's keys resume across proxies; the native
        // keys are made in-process, so such a ticket would not resume here.
        Some(SessionTicketKeysType::SessionTicketKeys(_)) => {
            unsupported(true, &join(field, "session_ticket_keys"))?;
        }
        Some(SessionTicketKeysType::SessionTicketKeysSdsSecretConfig(_)) => {
            unsupported(true, &join(field, "session_ticket_keys_sds_secret_config"))?;
        }
    }
    // The session id cache has no native switch; a client it would have resumed makes a
    // full handshake instead, which it cannot tell apart.
    ignored(
        ctx.disable_stateful_session_resumption,
        field,
        "disable_stateful_session_resumption",
    );
    ignored(ctx.session_timeout.is_some(), field, "session_timeout");
    ignored(ctx.ocsp_staple_policy != 0, field, "ocsp_staple_policy");
    ignored(ctx.prefer_client_ciphers, field, "prefer_client_ciphers");
    ignored(
        ctx.full_scan_certs_on_sni_mismatch.is_some(),
        field,
        "full_scan_certs_on_sni_mismatch",
    );
    m.opt("handshake_timeout", handshake_timeout);
    Ok(m.build())
}

/// `certificates:` from `tls_certificates` (files) and `tls_certificate_sds_secret_configs`.
#[allow(deprecated)] // the certificate provider fields are refused whichever is used
fn certificates(common: &CommonTlsContext, path: &str, m: &mut Map) -> Result<()> {
    let mut out = Vec::new();
    for (i, c) in common.tls_certificates.iter().enumerate() {
        let p = index(&join(path, "tls_certificates"), i);
        unsupported(c.pkcs12.is_some(), &join(&p, "pkcs12"))?;
        unsupported(
            c.private_key_provider.is_some(),
            &join(&p, "private_key_provider"),
        )?;
        unsupported(c.password.is_some(), &join(&p, "password"))?;
        unsupported(c.tls_params.is_some(), &join(&p, "tls_params"))?;
        unsupported(
            c.watched_directory.is_some(),
            &join(&p, "watched_directory"),
        )?;
        ignored(
            !c.signed_certificate_timestamp.is_empty(),
            &p,
            "signed_certificate_timestamp",
        );
        let mut cert = Map::new();
        cert.set(
            "cert_chain",
            text(&file(
                c.certificate_chain.as_ref(),
                &join(&p, "certificate_chain"),
            )?),
        );
        cert.set(
            "private_key",
            text(&file(c.private_key.as_ref(), &join(&p, "private_key"))?),
        );
        if let Some(ocsp) = &c.ocsp_staple {
            cert.set(
                "ocsp_staple",
                text(&file(Some(ocsp), &join(&p, "ocsp_staple"))?),
            );
        }
        out.push(cert.build());
    }
    for (i, s) in common.tls_certificate_sds_secret_configs.iter().enumerate() {
        out.push(sds_ref(
            s,
            &index(&join(path, "tls_certificate_sds_secret_configs"), i),
        )?);
    }
    refuse_providers(common, path)?;
    unsupported(common.key_log.is_some(), &join(path, "key_log"))?;
    if out.is_empty() {
        return Err(Error::new(
            join(path, "tls_certificates"),
            "a listener's TLS needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)",
        ));
    }
    m.set("certificates", list(out));
    Ok(())
}

/// Refuses what neither side of Sluice's TLS does: certificates from providers or a custom
/// selector, and custom handshakers.
#[allow(deprecated)] // the certificate provider fields are refused whichever is used
pub(crate) fn refuse_providers(common: &CommonTlsContext, path: &str) -> Result<()> {
    for (set, field) in [
        (
            common.tls_certificate_provider_instance.is_some(),
            "tls_certificate_provider_instance",
        ),
        (
            common.tls_certificate_certificate_provider.is_some(),
            "tls_certificate_certificate_provider",
        ),
        (
            common
                .tls_certificate_certificate_provider_instance
                .is_some(),
            "tls_certificate_certificate_provider_instance",
        ),
        (
            common.custom_tls_certificate_selector.is_some(),
            "custom_tls_certificate_selector",
        ),
        (common.custom_handshaker.is_some(), "custom_handshaker"),
    ] {
        unsupported(set, &join(path, field))?;
    }
    Ok(())
}

/// `min_version` and `cipher_suites` of a server, whose highest version is TLS 1.3 unless
/// `tls_maximum_protocol_version` says less.
fn params(p: &TlsParameters, path: &str, m: &mut Map) -> Result<()> {
    let (min, tls13) = versions(p, path, true)?;
    match min {
        TlsProtocol::TlSv13 => {
            m.set("min_version", text("TLS1_3"));
        }
        // TLS 1.2 is the native floor: clients that speak only 1.0 or 1.1 are refused.
        TlsProtocol::TlSv10 | TlsProtocol::TlSv11 => {
            ignored(true, path, "tls_minimum_protocol_version");
        }
        TlsProtocol::TlsAuto | TlsProtocol::TlSv12 => {}
    }
    let suites = cipher_suites(&p.cipher_suites, &join(path, "cipher_suites"), tls13)?;
    if !suites.is_empty() {
        m.set("cipher_suites", texts(&suites));
    }
    unsupported(
        !p.compliance_policies.is_empty(),
        &join(path, "compliance_policies"),
    )?;
    // The provider's curves and signature schemes cover Envoy's defaults.
    ignored(!p.ecdh_curves.is_empty(), path, "ecdh_curves");
    ignored(
        !p.signature_algorithms.is_empty(),
        path,
        "signature_algorithms",
    );
    Ok(())
}

/// The lowest version of `p` and whether TLS 1.3 is offered; `server` picks Envoy's default
/// highest version (TLS 1.3 for a server, 1.2 for a client). Versions below TLS 1.2 as the
/// highest, and a lowest above the highest, are errors.
pub(crate) fn versions(p: &TlsParameters, path: &str, server: bool) -> Result<(TlsProtocol, bool)> {
    let version = |v: i32, field: &str| {
        TlsProtocol::try_from(v)
            .map_err(|_| Error::new(join(path, field), format!("unknown TLS version {v}")))
    };
    let min = version(
        p.tls_minimum_protocol_version,
        "tls_minimum_protocol_version",
    )?;
    let max = version(
        p.tls_maximum_protocol_version,
        "tls_maximum_protocol_version",
    )?;
    let tls13 = match max {
        TlsProtocol::TlsAuto => server,
        TlsProtocol::TlSv12 => false,
        TlsProtocol::TlSv13 => true,
        TlsProtocol::TlSv10 | TlsProtocol::TlSv11 => {
            return Err(Error::new(
                join(path, "tls_maximum_protocol_version"),
                "below TLSv1_2 is not supported by Sluice (TLS 1.2 and 1.3 only)",
            ))
        }
    };
    if min == TlsProtocol::TlSv13 && !tls13 {
        let why = if server {
            "TLSv1_3 needs tls_maximum_protocol_version TLSv1_3"
        } else {
            "TLSv1_3 needs tls_maximum_protocol_version TLSv1_3 (an upstream's default maximum is TLSv1_2)"
        };
        return Err(Error::new(join(path, "tls_minimum_protocol_version"), why));
    }
    Ok((min, tls13))
}

/// Envoy's (BoringSSL's) names of the TLS 1.2 suites the native side has, in Envoy's
/// default order, with their IANA names.
const TLS12_SUITES: [(&str, &str); 6] = [
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
];

/// TLS 1.3 suites: not configurable in Envoy, all offered.
const TLS13_SUITES: [&str; 3] = [
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_CHACHA20_POLY1305_SHA256",
];

/// The native `cipher_suites` (IANA names) for Envoy's `cipher_suites` at `field`; `tls13`
/// when TLS 1.3 is offered. Envoy's list governs TLS 1.2 only, while the native list covers
/// both versions and offers no TLS 1.3 without a `TLS13_` suite: so every TLS 1.3 suite is
/// added to a given list, and TLS 1.3 is left out by listing the TLS 1.2 suites alone. Empty:
/// the provider's defaults, which are Envoy's. An `[A|B]` group of equally preferred suites
/// keeps its order.
pub(crate) fn cipher_suites(
    names: &[String],
    field: &str,
    tls13: bool,
) -> Result<Vec<&'static str>> {
    let mut suites: Vec<&'static str> = Vec::new();
    if names.is_empty() {
        if !tls13 {
            suites.extend(TLS12_SUITES.iter().map(|(_, iana)| *iana));
        }
        return Ok(suites);
    }
    if tls13 {
        suites.extend(TLS13_SUITES);
    }
    let mut skipped = false;
    for (i, entry) in names.iter().enumerate() {
        let group = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry);
        for name in group.split('|') {
            if WITHOUT_FORWARD_SECRECY_OR_AEAD.contains(&name) {
                // Envoy's defaults (and Istio's lists) still name them; rustls has none of
                // them. Skipped: what remains is the stronger part of the same list.
                tracing::debug!(field = %index(field, i), suite = name, "xDS: cipher suite skipped (not offered by Sluice)");
                skipped = true;
                continue;
            }
            let iana = TLS12_SUITES
                .iter()
                .find(|(envoy, _)| *envoy == name)
                .map(|(_, iana)| *iana)
                .ok_or_else(|| {
                    Error::new(
                        index(field, i),
                        format!(
                            "\"{name}\" is not supported by Sluice; supported: {}",
                            TLS12_SUITES
                                .iter()
                                .map(|(envoy, _)| *envoy)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
            if !suites.contains(&iana) {
                suites.push(iana);
            }
        }
    }
    if skipped && suites.iter().all(|s| s.starts_with("TLS13_")) {
        return Err(Error::new(
            field,
            "none of these TLS 1.2 suites is supported by Sluice (it offers ECDHE key exchange with AES-GCM or CHACHA20-POLY1305 only)",
        ));
    }
    Ok(suites)
}

/// BoringSSL's TLS 1.2 suites without ECDHE or without an AEAD cipher (RSA key exchange,
/// CBC, 3DES, PSK): Envoy accepts them in `cipher_suites`; rustls implements none.
const WITHOUT_FORWARD_SECRECY_OR_AEAD: &[&str] = &[
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "AES256-SHA",
    "DES-CBC3-SHA",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-PSK-AES256-CBC-SHA",
    "ECDHE-PSK-CHACHA20-POLY1305",
    "PSK-AES128-CBC-SHA",
    "PSK-AES256-CBC-SHA",
];

/// A `CertificateValidationContext` with only `trusted_ca` (a file) as the native path.
fn trusted_ca(v: &CertificateValidationContext, path: &str) -> Result<Node> {
    let mut rest = v.clone();
    rest.trusted_ca = None;
    if rest != CertificateValidationContext::default() {
        return Err(Error::new(
            path,
            "only trusted_ca is supported for client certificates (no SAN, hash, SPKI or CRL checks)",
        ));
    }
    Ok(text(&file(
        v.trusted_ca.as_ref(),
        &join(path, "trusted_ca"),
    )?))
}

/// `{ sds: NAME }`; the secret comes from the top-level `sds:` server.
pub(crate) fn sds_ref(s: &SdsSecretConfig, path: &str) -> Result<Node> {
    if s.name.is_empty() {
        return Err(Error::new(join(path, "name"), "is required"));
    }
    // Where Envoy would fetch it: the native config has one SDS server.
    ignored(s.sds_config.is_some(), path, "sds_config");
    Ok(single("sds", text(&s.name)))
}

/// A data source naming a file: the native side reads (and watches) key material from files.
pub(crate) fn file(source: Option<&DataSource>, path: &str) -> Result<String> {
    match source.and_then(|s| s.specifier.as_ref()) {
        Some(Specifier::Filename(f)) if !f.is_empty() => Ok(f.clone()),
        Some(Specifier::Filename(_)) | None => Err(Error::new(path, "is required")),
        Some(Specifier::InlineBytes(_)) | Some(Specifier::InlineString(_)) => Err(Error::new(
            path,
            "inline certificate material is not supported by Sluice: give a filename, or use SDS",
        )),
        Some(Specifier::EnvironmentVariable(_)) => Err(Error::new(
            path,
            "environment variables are not supported by Sluice: give a filename, or use SDS",
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::translate::endpoint::tests::{assert_yaml, show};
    use crate::translate::listener::tests::{
        chain, envoy_listener, hcm, hcm_filter, load, refused, tls_inspector, tls_socket, Get,
    };
    use crate::translate::listener::{listener, Listener};
    use envoy_types::pb::envoy::config::core::v3::DataSource;
    use envoy_types::pb::envoy::config::listener::v3::{FilterChain, FilterChainMatch};
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::CombinedCertificateValidationContext;
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
        SubjectAltNameMatcher, TlsCertificate, TlsSessionTicketKeys,
    };
    use envoy_types::pb::google::protobuf::{BoolValue, Duration};
    use sluice_config::{CaSource, CertificateSource, TlsVersion};

    fn filename(f: &str) -> Option<DataSource> {
        Some(DataSource {
            specifier: Some(Specifier::Filename(f.into())),
            ..Default::default()
        })
    }

    fn pair(cert: &str, key: &str) -> TlsCertificate {
        TlsCertificate {
            certificate_chain: filename(cert),
            private_key: filename(key),
            ..Default::default()
        }
    }

    fn sds(name: &str) -> SdsSecretConfig {
        SdsSecretConfig {
            name: name.into(),
            ..Default::default()
        }
    }

    fn with_certs(certs: Vec<TlsCertificate>) -> CommonTlsContext {
        CommonTlsContext {
            tls_certificates: certs,
            ..Default::default()
        }
    }

    fn context(common: CommonTlsContext) -> DownstreamTlsContext {
        DownstreamTlsContext {
            common_tls_context: Some(common),
            ..Default::default()
        }
    }

    fn translate(ctx: &DownstreamTlsContext) -> Result<Node> {
        downstream(ctx, "typed_config", None)
    }

    /// Asserts translating `ctx` fails at `field` (within `typed_config`).
    #[track_caller]
    fn fails_at(ctx: &DownstreamTlsContext, field: &str) -> Error {
        match translate(ctx) {
            Ok(n) => panic!("expected an error at {field}, got {}", show(&n)),
            Err(e) => {
                assert_eq!(e.field, format!("typed_config.{field}"), "{e}");
                e
            }
        }
    }

    /// A listener with one HTTP chain terminating TLS with `ctx`.
    fn tls_listener(ctx: &DownstreamTlsContext, connect_timeout: Option<Duration>) -> Listener {
        let l = envoy_listener(
            "tls",
            8443,
            vec![FilterChain {
                transport_socket: tls_socket(ctx),
                transport_socket_connect_timeout: connect_timeout,
                ..chain(vec![hcm_filter(&hcm("rc"))])
            }],
        );
        listener(&l).unwrap()
    }

    fn route_config() -> Node {
        let mut rc = Map::new();
        rc.set("name", text("rc"));
        rc.set("virtual_hosts", list(vec![]));
        rc.build()
    }

    /// PEM files the loader can read (it checks their form, not that they make a real key
    /// pair), removed when dropped.
    struct Files(std::path::PathBuf);

    impl Files {
        fn new(test: &str) -> Files {
            let dir =
                std::env::temp_dir().join(format!("sluice-xds-tls-{test}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let cert = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
            let key = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
            for (name, body) in [("ca.pem", cert), ("c.pem", cert), ("c.key", key)] {
                std::fs::write(dir.join(name), body).unwrap();
            }
            std::fs::write(dir.join("ocsp.der"), [0x30, 0x00]).unwrap();
            Files(dir)
        }

        fn path(&self, name: &str) -> String {
            self.0.join(name).display().to_string()
        }
    }

    impl Drop for Files {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_client_certificates_alpn_and_versions() {
        let files = Files::new("files");
        let mut cert = pair(&files.path("c.pem"), &files.path("c.key"));
        cert.ocsp_staple = filename(&files.path("ocsp.der"));
        let ctx = DownstreamTlsContext {
            require_client_certificate: Some(BoolValue { value: true }),
            ..context(CommonTlsContext {
                alpn_protocols: vec!["h2".into(), "http/1.1".into()],
                tls_params: Some(TlsParameters {
                    tls_minimum_protocol_version: TlsProtocol::TlSv13 as i32,
                    ..Default::default()
                }),
                validation_context_type: Some(ValidationContextType::ValidationContext(
                    CertificateValidationContext {
                        trusted_ca: filename(&files.path("ca.pem")),
                        ..Default::default()
                    },
                )),
                ..with_certs(vec![cert])
            })
        };
        let t = tls_listener(
            &ctx,
            Some(Duration {
                seconds: 3,
                nanos: 0,
            }),
        );
        let chain = match &t.node.get("filter_chains").unwrap().kind {
            sluice_config::yaml::NodeKind::Seq(c) => c[0].clone(),
            _ => panic!("{}", show(&t.node)),
        };
        let want = format!(
            r#"
certificates:
  - cert_chain: "{c}"
    private_key: "{k}"
    ocsp_staple: "{o}"
alpn: ["h2", "http/1.1"]
min_version: "TLS1_3"
client_ca: "{ca}"
require_client_certificate: true
handshake_timeout: 3s
"#,
            c = files.path("c.pem"),
            k = files.path("c.key"),
            o = files.path("ocsp.der"),
            ca = files.path("ca.pem"),
        );
        assert_yaml(chain.get("tls").unwrap(), &want);
        let config = load(vec![t.node], vec![route_config()], false);
        let tls = config.listeners[0].filter_chains[0].tls.clone().unwrap();
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        assert!(tls.require_client_certificate);
        assert_eq!(tls.alpn, vec!["h2", "http/1.1"]);
        assert_eq!(tls.handshake_timeout, std::time::Duration::from_secs(3));
        assert!(matches!(tls.client_ca, Some(CaSource::File { .. })));
        assert!(matches!(
            tls.certificates[0],
            CertificateSource::Files(ref f) if f.ocsp_staple.is_some()
        ));
    }

    #[test]
    fn sds_certificates_and_validation_contexts() {
        let ctx = context(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds("server-cert"), sds("other-cert")],
            validation_context_type: Some(ValidationContextType::ValidationContextSdsSecretConfig(
                sds("client-ca"),
            )),
            ..Default::default()
        });
        assert_yaml(
            &translate(&ctx).unwrap(),
            r#"
certificates: [{ sds: "server-cert" }, { sds: "other-cert" }]
client_ca: { sds: "client-ca" }
"#,
        );
        let t = tls_listener(&ctx, None);
        let config = load(vec![t.node], vec![route_config()], true);
        let tls = config.listeners[0].filter_chains[0].tls.clone().unwrap();
        assert_eq!(
            tls.sds_refs().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["server-cert", "other-cert", "client-ca"]
        );

        // Combined: the secret is the CA, and a default context may only repeat trust.
        let combined = |default: CertificateValidationContext| {
            context(CommonTlsContext {
                tls_certificate_sds_secret_configs: vec![sds("server-cert")],
                validation_context_type: Some(ValidationContextType::CombinedValidationContext(
                    CombinedCertificateValidationContext {
                        default_validation_context: Some(default),
                        validation_context_sds_secret_config: Some(sds("client-ca")),
                        ..Default::default()
                    },
                )),
                ..Default::default()
            })
        };
        assert_yaml(
            &translate(&combined(CertificateValidationContext::default())).unwrap(),
            r#"{ certificates: [{ sds: "server-cert" }], client_ca: { sds: "client-ca" } }"#,
        );
        let sans = CertificateValidationContext {
            match_typed_subject_alt_names: vec![SubjectAltNameMatcher::default()],
            ..Default::default()
        };
        fails_at(
            &combined(sans.clone()),
            "common_tls_context.combined_validation_context.default_validation_context",
        );
        // Only trusted_ca is taken for client certificates: SAN checks are refused.
        let e = fails_at(
            &context(CommonTlsContext {
                tls_certificate_sds_secret_configs: vec![sds("server-cert")],
                validation_context_type: Some(ValidationContextType::ValidationContext(sans)),
                ..Default::default()
            }),
            "common_tls_context.validation_context",
        );
        assert!(e.message.starts_with("only trusted_ca"), "{e}");
        fails_at(
            &context(CommonTlsContext {
                tls_certificate_sds_secret_configs: vec![sds("")],
                ..Default::default()
            }),
            "common_tls_context.tls_certificate_sds_secret_configs[0].name",
        );
    }

    #[test]
    fn key_material_must_be_files() {
        let inline = |specifier: Specifier| DataSource {
            specifier: Some(specifier),
            ..Default::default()
        };
        for (source, says) in [
            (
                inline(Specifier::InlineString("-----BEGIN PRIVATE KEY-----".into())),
                "inline certificate material is not supported by Sluice: give a filename, or use SDS",
            ),
            (
                inline(Specifier::InlineBytes(b"-----BEGIN".to_vec())),
                "inline certificate material is not supported by Sluice: give a filename, or use SDS",
            ),
            (
                inline(Specifier::EnvironmentVariable("KEY".into())),
                "environment variables are not supported by Sluice: give a filename, or use SDS",
            ),
            (inline(Specifier::Filename(String::new())), "is required"),
        ] {
            let mut cert = pair("/etc/c.pem", "/etc/c.key");
            cert.private_key = Some(source);
            let e = fails_at(
                &context(with_certs(vec![cert])),
                "common_tls_context.tls_certificates[0].private_key",
            );
            assert_eq!(e.message, says);
        }
        // And the error carries the whole Envoy path from the listener.
        let mut cert = pair("/etc/c.pem", "/etc/c.key");
        cert.certificate_chain = Some(inline(Specifier::InlineString("PEM".into())));
        let l = envoy_listener(
            "tls",
            8443,
            vec![FilterChain {
                transport_socket: tls_socket(&context(with_certs(vec![cert]))),
                ..chain(vec![hcm_filter(&hcm("rc"))])
            }],
        );
        refused(
            &l,
            "filter_chains[0].transport_socket.typed_config.common_tls_context.tls_certificates[0].certificate_chain",
        );
        let e = fails_at(
            &context(CommonTlsContext::default()),
            "common_tls_context.tls_certificates",
        );
        assert!(e.message.contains("needs a certificate"), "{e}");
        fails_at(&DownstreamTlsContext::default(), "common_tls_context");
    }

    fn with_params(p: TlsParameters) -> DownstreamTlsContext {
        context(CommonTlsContext {
            tls_params: Some(p),
            ..with_certs(vec![pair("/etc/c.pem", "/etc/c.key")])
        })
    }

    fn suites_of(p: TlsParameters) -> Vec<String> {
        let node = translate(&with_params(p)).unwrap();
        match node.get("cipher_suites").map(|n| &n.kind) {
            None => Vec::new(),
            Some(sluice_config::yaml::NodeKind::Seq(items)) => items
                .iter()
                .map(|n| n.as_scalar().unwrap().to_string())
                .collect(),
            Some(_) => panic!("{}", show(&node)),
        }
    }

    #[test]
    fn cipher_suites_are_mapped_to_iana_names() {
        // Envoy's names govern TLS 1.2; TLS 1.3 (a server's default maximum) keeps all its
        // suites.
        let suites = suites_of(TlsParameters {
            cipher_suites: vec![
                "[ECDHE-ECDSA-AES128-GCM-SHA256|ECDHE-ECDSA-CHACHA20-POLY1305]".into(),
                "ECDHE-RSA-AES256-GCM-SHA384".into(),
            ],
            ..Default::default()
        });
        assert_eq!(
            suites,
            [
                "TLS13_AES_128_GCM_SHA256",
                "TLS13_AES_256_GCM_SHA384",
                "TLS13_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            ]
        );
        // None given: the provider's defaults, which are Envoy's server defaults.
        assert!(suites_of(TlsParameters::default()).is_empty());
        // A TLS 1.2 server: its suites alone, which leaves TLS 1.3 out natively.
        let tls12 = suites_of(TlsParameters {
            tls_maximum_protocol_version: TlsProtocol::TlSv12 as i32,
            ..Default::default()
        });
        assert_eq!(tls12.len(), 6);
        assert!(tls12.iter().all(|s| !s.starts_with("TLS13_")), "{tls12:?}");
        assert!(tls12
            .iter()
            .all(|s| sluice_config::CIPHER_SUITES.contains(&s.as_str())));

        let p = "common_tls_context.tls_params";
        let e = fails_at(
            &with_params(TlsParameters {
                cipher_suites: vec![
                    "ECDHE-RSA-AES128-GCM-SHA256".into(),
                    "[ECDHE-RSA-CHACHA20-POLY1305|AES128-SHA-X]".into(),
                ],
                ..Default::default()
            }),
            &format!("{p}.cipher_suites[1]"),
        );
        assert!(
            e.message.starts_with("\"AES128-SHA-X\" is not supported by Sluice; supported: ECDHE-ECDSA-AES128-GCM-SHA256,"),
            "{e}"
        );
        // Istio's list: the suites rustls lacks are skipped, the others kept.
        let istio: Vec<String> = [
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256",
            "AES256-GCM-SHA384",
            "AES128-GCM-SHA256",
        ]
        .map(String::from)
        .to_vec();
        let kept = cipher_suites(&istio, "c", false).unwrap();
        assert_eq!(kept.len(), 4, "{kept:?}");
        // Nothing left: refused.
        let e = cipher_suites(&["AES128-GCM-SHA256".to_string()], "c", true).unwrap_err();
        assert_eq!(e.field, "c");
        fails_at(
            &with_params(TlsParameters {
                tls_maximum_protocol_version: TlsProtocol::TlSv11 as i32,
                ..Default::default()
            }),
            &format!("{p}.tls_maximum_protocol_version"),
        );
        fails_at(
            &with_params(TlsParameters {
                tls_minimum_protocol_version: TlsProtocol::TlSv13 as i32,
                tls_maximum_protocol_version: TlsProtocol::TlSv12 as i32,
                ..Default::default()
            }),
            &format!("{p}.tls_minimum_protocol_version"),
        );
        fails_at(
            &with_params(TlsParameters {
                compliance_policies: vec![1],
                ..Default::default()
            }),
            &format!("{p}.compliance_policies"),
        );
    }

    #[test]
    fn mapped_suites_load_with_every_minimum_version() {
        for (min, max) in [
            (TlsProtocol::TlsAuto, TlsProtocol::TlsAuto),
            (TlsProtocol::TlSv13, TlsProtocol::TlsAuto),
            (TlsProtocol::TlSv12, TlsProtocol::TlSv12),
            (TlsProtocol::TlSv10, TlsProtocol::TlSv13),
        ] {
            let ctx = context(CommonTlsContext {
                tls_certificate_sds_secret_configs: vec![sds("cert")],
                tls_params: Some(TlsParameters {
                    tls_minimum_protocol_version: min as i32,
                    tls_maximum_protocol_version: max as i32,
                    cipher_suites: vec!["ECDHE-RSA-AES128-GCM-SHA256".into()],
                    ..Default::default()
                }),
                ..Default::default()
            });
            load(
                vec![tls_listener(&ctx, None).node],
                vec![route_config()],
                true,
            );
        }
    }

    #[test]
    fn session_resumption_and_refused_server_fields() {
        let ctx = |t: Option<SessionTicketKeysType>| DownstreamTlsContext {
            session_ticket_keys_type: t,
            ..with_params(TlsParameters::default())
        };
        let node = translate(&ctx(Some(
            SessionTicketKeysType::DisableStatelessSessionResumption(true),
        )))
        .unwrap();
        assert_eq!(
            node.get("session_tickets").unwrap().as_scalar(),
            Some("false")
        );
        let node = translate(&ctx(Some(
            SessionTicketKeysType::DisableStatelessSessionResumption(false),
        )))
        .unwrap();
        assert!(node.get("session_tickets").is_none());
        fails_at(
            &ctx(Some(SessionTicketKeysType::SessionTicketKeys(
                TlsSessionTicketKeys::default(),
            ))),
            "session_ticket_keys",
        );
        fails_at(
            &ctx(Some(
                SessionTicketKeysType::SessionTicketKeysSdsSecretConfig(sds("keys")),
            )),
            "session_ticket_keys_sds_secret_config",
        );
        fails_at(
            &DownstreamTlsContext {
                require_sni: Some(BoolValue { value: true }),
                ..ctx(None)
            },
            "require_sni",
        );
        let mut cert = pair("/etc/c.pem", "/etc/c.key");
        cert.password = filename("/etc/pass");
        fails_at(
            &context(with_certs(vec![cert])),
            "common_tls_context.tls_certificates[0].password",
        );
    }

    #[test]
    fn a_tls_chain_and_a_plaintext_chain_behind_the_inspector() {
        let ctx = context(CommonTlsContext {
            tls_certificate_sds_secret_configs: vec![sds("cert")],
            ..Default::default()
        });
        let l = envoy_types::pb::envoy::config::listener::v3::Listener {
            listener_filters: vec![tls_inspector()],
            ..envoy_listener(
                "mixed",
                8443,
                vec![
                    FilterChain {
                        filter_chain_match: Some(FilterChainMatch {
                            transport_protocol: "tls".into(),
                            ..Default::default()
                        }),
                        transport_socket: tls_socket(&ctx),
                        ..chain(vec![hcm_filter(&hcm("rc"))])
                    },
                    chain(vec![hcm_filter(&hcm("rc"))]),
                ],
            )
        };
        let t = listener(&l).unwrap();
        assert_eq!(t.rds, ["rc", "rc"]);
        let config = load(vec![t.node], vec![route_config()], true);
        let chains = &config.listeners[0].filter_chains;
        assert!(chains[0].tls.is_some() && chains[1].tls.is_none());
    }
}
