//! rustls adapters that read a secret's current material at each handshake: a client
//! certificate verifier over a [`CaSecret`] (downstream mTLS), and, for upstream TLS, a client
//! certificate resolver over a [`CertSecret`] (the upstream server verifier, which also checks
//! `verify_san`, is in `client.rs`).
//!
//! The webpki verifier for a CA bundle is built once per bundle (kept beside the bundle it was
//! built from) and rebuilt when the bundle changes, not per handshake. Without a bundle yet (an
//! SDS secret that has not arrived) every peer certificate is refused.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::secret::{CaMaterial, CaSecret, CertSecret};

/// A verifier built from one CA bundle, kept with the bundle so a change is noticed by
/// pointer comparison.
#[derive(Debug)]
struct Built<V: ?Sized> {
    from: Arc<CaMaterial>,
    verifier: Arc<V>,
}

/// The verifier for the CA secret's current bundle, built on first use after a change.
fn current<V: ?Sized>(
    ca: &CaSecret,
    cache: &ArcSwapOption<Built<V>>,
    build: impl FnOnce(&CaMaterial) -> Result<Arc<V>, Error>,
) -> Result<Arc<V>, Error> {
    let Some(material) = ca.current() else {
        return Err(Error::General(format!("{}: not received yet", ca.origin())));
    };
    if let Some(built) = cache.load().as_ref() {
        if Arc::ptr_eq(&built.from, &material) {
            return Ok(built.verifier.clone());
        }
    }
    let verifier = build(&material)?;
    cache.store(Some(Arc::new(Built {
        from: material,
        verifier: verifier.clone(),
    })));
    Ok(verifier)
}

/// Verifies client certificates against a [`CaSecret`]'s current bundle.
///
/// It sends no CA names in its certificate request (the list would have to change with the
/// bundle while rustls borrows it from the verifier); an empty list means "any", and clients
/// send their certificate all the same.
#[derive(Debug)]
pub struct SecretClientVerifier {
    ca: Arc<CaSecret>,
    provider: Arc<CryptoProvider>,
    mandatory: bool,
    cache: ArcSwapOption<Built<dyn ClientCertVerifier>>,
}

impl SecretClientVerifier {
    pub fn new(ca: Arc<CaSecret>, provider: Arc<CryptoProvider>, mandatory: bool) -> Self {
        SecretClientVerifier {
            ca,
            provider,
            mandatory,
            cache: ArcSwapOption::empty(),
        }
    }
}

impl ClientCertVerifier for SecretClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verifier = current(&self.ca, &self.cache, |m| {
            WebPkiClientVerifier::builder_with_provider(m.roots.clone(), self.provider.clone())
                .build()
                .map_err(|e| Error::General(format!("{}: {e}", self.ca.origin())))
        })?;
        verifier.verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Presents a [`CertSecret`]'s current certificate as the client certificate (upstream mTLS).
#[derive(Debug)]
pub struct SecretClientCert(pub Arc<CertSecret>);

impl ResolvesClientCert for SecretClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let m = self.0.current()?;
        m.key
            .key
            .choose_scheme(sigschemes)
            .is_some()
            .then(|| m.key.clone())
    }

    fn has_certs(&self) -> bool {
        self.0.current().is_some()
    }
}
