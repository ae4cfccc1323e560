//! A secret: named TLS material that can change while Sluice runs.
//!
//! A [`CertSecret`] holds a certificate chain with its key, a [`CaSecret`] a CA bundle. Either
//! is fed by files (the watcher in `watch.rs`) or by SDS (`sluice-xds`), and read by the rustls
//! adapters (`resolver.rs`, `verify.rs`) at each handshake through `arc-swap`: a handshake
//! takes whatever is current when it starts, connections already established keep what they
//! negotiated, and nobody waits on a lock. New material is validated before it is published,
//! so a broken update leaves the old material in place. Nothing here prints key bytes.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::PeerIdentity;

/// A validated certificate and key, with what the SNI resolver and logs need from it.
#[derive(Debug)]
pub struct CertMaterial {
    pub key: Arc<CertifiedKey>,
    /// The names the leaf answers for (DNS SANs, else its CN), for SNI.
    pub names: Vec<String>,
    /// The leaf's serial number (hex) and expiry, for log lines.
    pub serial: String,
    pub not_after: String,
}

/// A validated CA bundle.
#[derive(Debug)]
pub struct CaMaterial {
    pub roots: Arc<RootCertStore>,
}

/// Where a secret comes from, for messages: `files "a.pem" + "a.key"`, `sds "NAME"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretOrigin {
    Files(Vec<std::path::PathBuf>),
    Sds(String),
}

impl std::fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretOrigin::Files(files) => {
                f.write_str("files")?;
                for (i, file) in files.iter().enumerate() {
                    let sep = if i == 0 { " " } else { " + " };
                    write!(f, "{sep}\"{}\"", file.display())?;
                }
                Ok(())
            }
            SecretOrigin::Sds(name) => write!(f, "sds secret \"{name}\""),
        }
    }
}

/// The current value of a secret, swapped whole; `None` until the first value arrives (an SDS
/// secret before the server sent it).
#[derive(Debug)]
struct Slot<T> {
    origin: SecretOrigin,
    current: ArcSwapOption<T>,
    /// Bumped on each change, so waiters (listener warming) wake up.
    changes: watch::Sender<u64>,
}

impl<T> Slot<T> {
    fn new(origin: SecretOrigin) -> Slot<T> {
        Slot {
            origin,
            current: ArcSwapOption::empty(),
            changes: watch::channel(0).0,
        }
    }

    fn publish(&self, value: Arc<T>) {
        self.current.store(Some(value));
        self.changes.send_modify(|n| *n += 1);
    }

    async fn ready(&self) {
        let mut rx = self.changes.subscribe();
        // The sender lives in self, so the channel cannot close while we wait.
        let _ = rx.wait_for(|_| self.current.load().is_some()).await;
    }
}

/// A certificate with its private key.
#[derive(Debug)]
pub struct CertSecret {
    slot: Slot<CertMaterial>,
    provider: Arc<CryptoProvider>,
}

impl CertSecret {
    pub fn new(origin: SecretOrigin, provider: Arc<CryptoProvider>) -> Arc<CertSecret> {
        Arc::new(CertSecret {
            slot: Slot::new(origin),
            provider,
        })
    }

    pub fn origin(&self) -> &SecretOrigin {
        &self.slot.origin
    }

    /// The material new handshakes use.
    pub fn current(&self) -> Option<Arc<CertMaterial>> {
        self.slot.current.load_full()
    }

    /// Checks a chain and key (the key loads, it belongs to the leaf) and publishes them.
    /// On error nothing changes; the message never quotes key bytes.
    pub fn update(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: &PrivateKeyDer<'static>,
        ocsp: Option<Vec<u8>>,
    ) -> Result<Arc<CertMaterial>, String> {
        let material = Arc::new(certified(&self.provider, chain, key, ocsp)?);
        self.slot.publish(material.clone());
        Ok(material)
    }

    /// Resolves once the secret has a value.
    pub async fn ready(&self) {
        self.slot.ready().await;
    }
}

/// Builds the rustls key for a chain and key, checking they belong together.
pub fn certified(
    provider: &CryptoProvider,
    chain: Vec<CertificateDer<'static>>,
    key: &PrivateKeyDer<'static>,
    ocsp: Option<Vec<u8>>,
) -> Result<CertMaterial, String> {
    let leaf = chain
        .first()
        .ok_or("the certificate chain is empty")?
        .clone();
    let signing = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| format!("unusable private key: {e}"))?;
    let mut key = CertifiedKey::new(chain, signing);
    // rustls staples it to handshakes of clients that send status_request; it is not
    // checked against the leaf (a stale response is the operator's to refresh).
    key.ocsp = ocsp;
    key.keys_match()
        .map_err(|e| format!("the key does not match the certificate ({e})"))?;
    let (serial, not_after) = match X509Certificate::from_der(leaf.as_ref()) {
        Ok((_, cert)) => (
            cert.raw_serial_as_string().replace(':', ""),
            cert.validity().not_after.to_string(),
        ),
        Err(_) => return Err("the leaf certificate cannot be parsed".into()),
    };
    Ok(CertMaterial {
        key: Arc::new(key),
        names: PeerIdentity::from_der(leaf.as_ref()).server_names(),
        serial,
        not_after,
    })
}

/// A bundle of CA certificates peers are verified against.
#[derive(Debug)]
pub struct CaSecret {
    slot: Slot<CaMaterial>,
}

impl CaSecret {
    pub fn new(origin: SecretOrigin) -> Arc<CaSecret> {
        Arc::new(CaSecret {
            slot: Slot::new(origin),
        })
    }

    pub fn origin(&self) -> &SecretOrigin {
        &self.slot.origin
    }

    pub fn current(&self) -> Option<Arc<CaMaterial>> {
        self.slot.current.load_full()
    }

    /// Checks every certificate is a usable trust anchor and publishes the bundle.
    pub fn update(&self, certs: &[CertificateDer<'static>]) -> Result<usize, String> {
        if certs.is_empty() {
            return Err("no CA certificate".into());
        }
        let mut roots = RootCertStore::empty();
        for ca in certs {
            roots
                .add(ca.clone())
                .map_err(|e| format!("unusable CA certificate: {e}"))?;
        }
        let n = roots.len();
        self.slot.publish(Arc::new(CaMaterial {
            roots: Arc::new(roots),
        }));
        Ok(n)
    }

    pub async fn ready(&self) {
        self.slot.ready().await;
    }
}
