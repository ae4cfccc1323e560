//! A listener's `DownstreamTlsContext` as a native `tls:` block.
//!
//! Certificates come from files (`filename` data sources: the native side reads and watches
//! them) or from SDS (`{ sds: NAME }`, served by the top-level `sds:` server). Inline key
//! material is refused: the native config names files, and a key in a resource would be
//! echoed by `/config_dump`.

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::core::v3::DataSource;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::common_tls_context::ValidationContextType;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::tls_parameters::TlsProtocol;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{
    CertificateValidationContext, CommonTlsContext, DownstreamTlsContext, TlsParameters,
};
use sluice_config::yaml::Node;

use super::tree::{boolean, ignored, index, join, list, single, text, texts, unsupported, Map};
use super::{Error, Result};

pub const DOWNSTREAM_TLS_CONTEXT: &str =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

/// The native `tls:` of a chain; `handshake_timeout` is the chain's
/// `transport_socket_connect_timeout`, already translated.
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
    if let Some(p) = &common.tls_params {
        params(p, &join(&cpath, "tls_params"), &mut m)?;
    }
    let vpath = join(&cpath, "validation_context");
    match &common.validation_context_type {
        None => {}
        Some(ValidationContextType::ValidationContext(v)) => {
            m.set("client_ca", trusted_ca(v, &vpath)?);
        }
        Some(ValidationContextType::ValidationContextSdsSecretConfig(s)) => {
            m.set("client_ca", single("sds", text(&s.name)));
        }
        Some(ValidationContextType::CombinedValidationContext(c)) => {
            let path = join(&cpath, "combined_validation_context");
            if let Some(v) = &c.default_validation_context {
                let default_path = join(&path, "default_validation_context");
                let mut only_trust = v.clone();
                only_trust.trusted_ca = None;
                unsupported(
                    only_trust != CertificateValidationContext::default(),
                    &default_path,
                )?;
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
            m.set("client_ca", single("sds", text(&s.name)));
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
    unsupported(
        ctx.session_ticket_keys_type.is_some(),
        &join(field, "session_ticket_keys"),
    )?;
    if ctx.disable_stateful_session_resumption {
        // Tickets are stateless resumption; the native switch is the closest: refusing
        // both kinds is not offered.
        ignored(true, field, "disable_stateful_session_resumption");
    }
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

#[allow(deprecated)] // the certificate provider fields are refused whichever is used
/// `certificates:` from `tls_certificates` (files) and `tls_certificate_sds_secret_configs`.
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
        unsupported(
            c.watched_directory.is_some(),
            &join(&p, "watched_directory"),
        )?;
        let mut cert = Map::new();
        cert.set(
            "cert_chain",
            file(c.certificate_chain.as_ref(), &join(&p, "certificate_chain"))?,
        );
        cert.set(
            "private_key",
            file(c.private_key.as_ref(), &join(&p, "private_key"))?,
        );
        if let Some(ocsp) = &c.ocsp_staple {
            cert.set("ocsp_staple", file(Some(ocsp), &join(&p, "ocsp_staple"))?);
        }
        out.push(cert.build());
    }
    for s in &common.tls_certificate_sds_secret_configs {
        out.push(single("sds", text(&s.name)));
    }
    unsupported(
        common.tls_certificate_provider_instance.is_some()
            || common.tls_certificate_certificate_provider.is_some()
            || common
                .tls_certificate_certificate_provider_instance
                .is_some(),
        &join(path, "tls_certificate_provider_instance"),
    )?;
    unsupported(
        common.custom_tls_certificate_selector.is_some(),
        &join(path, "custom_tls_certificate_selector"),
    )?;
    unsupported(
        common.custom_handshaker.is_some(),
        &join(path, "custom_handshaker"),
    )?;
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

/// `min_version` and `cipher_suites`.
fn params(p: &TlsParameters, path: &str, m: &mut Map) -> Result<()> {
    let min = TlsProtocol::try_from(p.tls_minimum_protocol_version).unwrap_or(TlsProtocol::TlsAuto);
    match min {
        TlsProtocol::TlsAuto | TlsProtocol::TlSv10 | TlsProtocol::TlSv11 => {
            // TLS 1.0 and 1.1 are not offered at all: 1.2 is the floor either way.
        }
        TlsProtocol::TlSv12 => {
            m.set("min_version", text("TLS1_2"));
        }
        TlsProtocol::TlSv13 => {
            m.set("min_version", text("TLS1_3"));
        }
    }
    let max = TlsProtocol::try_from(p.tls_maximum_protocol_version).unwrap_or(TlsProtocol::TlsAuto);
    if matches!(
        max,
        TlsProtocol::TlSv10 | TlsProtocol::TlSv11 | TlsProtocol::TlSv12
    ) {
        return Err(Error::new(
            join(path, "tls_maximum_protocol_version"),
            "a maximum below TLSv1_3 is not supported by Sluice",
        ));
    }
    if !p.cipher_suites.is_empty() {
        m.set("cipher_suites", texts(&p.cipher_suites));
    }
    ignored(!p.ecdh_curves.is_empty(), path, "ecdh_curves");
    ignored(
        !p.signature_algorithms.is_empty(),
        path,
        "signature_algorithms",
    );
    Ok(())
}

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
    file(v.trusted_ca.as_ref(), &join(path, "trusted_ca"))
}

/// A data source that names a file.
fn file(source: Option<&DataSource>, path: &str) -> Result<Node> {
    match source.and_then(|s| s.specifier.as_ref()) {
        Some(Specifier::Filename(f)) => Ok(text(f)),
        None => Err(Error::new(path, "is required")),
        Some(_) => Err(Error::new(
            path,
            "only filename is supported for key material in listeners (inline bytes, strings and environment variables are not; use SDS)",
        )),
    }
}
