//! Picks the certificate for a handshake by the client's SNI.
//!
//! Names come from the certificates themselves (DNS SANs, else the subject CN), so a config
//! lists files, not names. An exact name beats a wildcard (`*.example.com` covers one label);
//! no SNI, or an SNI nothing covers, gets the first certificate: a client that asked for a
//! name we lack then fails its own name check, which says more than a refused handshake.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::bound::Material;
use super::secret::{CertMaterial, CertSecret};

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

/// An SNI resolver over secrets: the index is rebuilt when one of them changes, checked at
/// each handshake by comparing pointers (a handful of atomic loads), so the newest
/// certificates serve new handshakes without any push from the secrets.
#[derive(Debug)]
pub(crate) struct SecretResolver {
    sources: Vec<Arc<CertSecret>>,
    index: ArcSwap<Indexed>,
}

#[derive(Debug, Default)]
struct Indexed {
    /// The material the index was built from, one per source (`None`: not received yet).
    from: Vec<Option<Arc<CertMaterial>>>,
    sni: SniResolver,
    /// The URI SAN of each certificate, by the same SNI choice.
    uris: super::LocalUris,
}

impl SecretResolver {
    pub(crate) fn new(sources: Vec<Arc<CertSecret>>) -> SecretResolver {
        let index = ArcSwap::from_pointee(Indexed::build(&sources));
        SecretResolver { sources, index }
    }

    fn current(&self) -> Arc<Indexed> {
        let index = self.index.load_full();
        let unchanged = self.sources.len() == index.from.len()
            && self
                .sources
                .iter()
                .zip(&index.from)
                .all(|(s, seen)| s.current().same(seen));
        if unchanged {
            return index;
        }
        let fresh = Arc::new(Indexed::build(&self.sources));
        self.index.store(fresh.clone());
        fresh
    }
}

impl SecretResolver {
    /// The first URI SAN of the certificate a client asking for `sni` gets now.
    pub(crate) fn local_uri(&self, sni: Option<&str>) -> Option<String> {
        self.current().uris.lookup(sni)
    }
}

impl Indexed {
    fn build(sources: &[Arc<CertSecret>]) -> Indexed {
        let from: Vec<_> = sources.iter().map(|s| s.current()).collect();
        let mut sni = SniResolver::default();
        let mut uris = super::LocalUris::default();
        for m in from.iter().flatten() {
            sni.add(m.names.clone(), m.key.clone());
            if let Some(leaf) = m.key.cert.first() {
                uris.add(&super::PeerIdentity::from_der(leaf.as_ref()));
            }
        }
        Indexed { from, sni, uris }
    }
}

impl ResolvesServerCert for SecretResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current().sni.resolve(hello)
    }
}
