//! Picks the certificate for a handshake by the client's SNI.
//!
//! Names come from the certificates themselves (DNS SANs, else the subject CN), so a config
//! lists files, not names. An exact name beats a wildcard (`*.example.com` covers one label);
//! no SNI, or an SNI nothing covers, gets the first certificate: a client that asked for a
//! name we lack then fails its own name check, which says more than a refused handshake.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, Default)]
pub(crate) struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the part after `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl SniResolver {
    /// Adds a certificate under its names; the first one added is the default. A name two
    /// certificates share goes to the first.
    pub(crate) fn add(&mut self, names: Vec<String>, key: Arc<CertifiedKey>) {
        for name in names {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(suffix) => self.wildcard.entry(suffix.to_string()),
                None => self.exact.entry(name),
            }
            .or_insert_with(|| key.clone());
        }
        self.default.get_or_insert(key);
    }

    fn lookup(&self, sni: &str) -> Option<&Arc<CertifiedKey>> {
        if let Some(k) = self.exact.get(sni) {
            return Some(k);
        }
        let (_, parent) = sni.split_once('.')?;
        self.wildcard.get(parent)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // rustls hands the SNI over lower-cased already.
        hello
            .server_name()
            .and_then(|sni| self.lookup(sni))
            .or(self.default.as_ref())
            .cloned()
    }
}
