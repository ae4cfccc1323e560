//! The process's secrets by origin, so every chain (and later every cluster) that names the
//! same files or the same SDS secret shares one [`CertSecret`] or [`CaSecret`], and the file
//! watcher and the SDS client each know what to feed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use rustls::crypto::CryptoProvider;
use rustls_pki_types::CertificateDer;
use sluice_config::{CaSource, CertificateSource, TlsCertificate};

use super::secret::{CaSecret, CertSecret, SecretOrigin};
use super::watch::{FileEntry, FileSecret};

/// Every secret Sluice uses, registered while listeners are built.
#[derive(Debug)]
pub struct Secrets {
    provider: Arc<CryptoProvider>,
    pub(super) inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
pub(super) struct Inner {
    /// Secrets backed by files, with what the watcher last saw of them.
    pub(super) files: Vec<FileEntry>,
    sds_certs: HashMap<String, Arc<CertSecret>>,
    sds_cas: HashMap<String, Arc<CaSecret>>,
}

impl Default for Secrets {
    fn default() -> Self {
        Secrets {
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl Secrets {
    pub fn new() -> Arc<Secrets> {
        Arc::new(Secrets::default())
    }

    /// The certificate of a `{ cert_chain, private_key }` entry, read when the config loaded;
    /// checked (key loads and matches) the first time these files are named.
    pub fn file_cert(&self, cert: &TlsCertificate) -> Result<Arc<CertSecret>, String> {
        let mut files = vec![cert.cert_chain_file.clone(), cert.private_key_file.clone()];
        files.extend(cert.ocsp_staple_file.clone());
        let origin = SecretOrigin::Files(files);
        let mut inner = self.inner.lock();
        if let Some(FileSecret::Cert(s)) = inner.find(&origin) {
            return Ok(s);
        }
        super::warn_if_readable_by_others(&cert.private_key_file);
        let secret = CertSecret::new(origin.clone(), self.provider.clone());
        secret
            .update(
                cert.chain.clone(),
                &cert.private_key.der(),
                cert.ocsp_staple.clone(),
            )
            .map_err(|e| format!("{origin}: {e}"))?;
        inner
            .files
            .push(FileEntry::new(origin, FileSecret::Cert(secret.clone())));
        Ok(secret)
    }

    /// The CA bundle of a `client_ca` (or, later, a cluster's `ca`) file.
    pub fn file_ca(
        &self,
        file: &std::path::Path,
        certs: &[CertificateDer<'static>],
    ) -> Result<Arc<CaSecret>, String> {
        let origin = SecretOrigin::Files(vec![PathBuf::from(file)]);
        let mut inner = self.inner.lock();
        if let Some(FileSecret::Ca(s)) = inner.find(&origin) {
            return Ok(s);
        }
        let secret = CaSecret::new(origin.clone());
        secret.update(certs).map_err(|e| format!("{origin}: {e}"))?;
        inner
            .files
            .push(FileEntry::new(origin, FileSecret::Ca(secret.clone())));
        Ok(secret)
    }

    /// A certificate the SDS server supplies by name; empty until it arrives.
    pub fn sds_cert(&self, name: &str) -> Arc<CertSecret> {
        let provider = self.provider.clone();
        self.inner
            .lock()
            .sds_certs
            .entry(name.to_string())
            .or_insert_with(|| CertSecret::new(SecretOrigin::Sds(name.to_string()), provider))
            .clone()
    }

    /// A CA bundle (validation context) the SDS server supplies by name.
    pub fn sds_ca(&self, name: &str) -> Arc<CaSecret> {
        self.inner
            .lock()
            .sds_cas
            .entry(name.to_string())
            .or_insert_with(|| CaSecret::new(SecretOrigin::Sds(name.to_string())))
            .clone()
    }

    /// Resolves once every SDS secret registered so far has a value: the start waits on it
    /// (up to `initial_fetch_timeout`) so clusters' secrets are there before traffic, as
    /// Envoy warms clusters before listeners.
    pub async fn sds_ready(&self) {
        let (certs, cas): (Vec<_>, Vec<_>) = {
            let inner = self.inner.lock();
            (
                inner.sds_certs.values().cloned().collect(),
                inner.sds_cas.values().cloned().collect(),
            )
        };
        for c in certs {
            c.ready().await;
        }
        for c in cas {
            c.ready().await;
        }
    }

    /// The SDS secrets still without a value, sorted, for a warning.
    pub fn sds_missing(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let mut missing: Vec<String> = inner
            .sds_certs
            .iter()
            .filter(|(_, s)| s.current().is_none())
            .map(|(n, _)| n.clone())
            .chain(
                inner
                    .sds_cas
                    .iter()
                    .filter(|(_, s)| s.current().is_none())
                    .map(|(n, _)| n.clone()),
            )
            .collect();
        missing.sort();
        missing.dedup();
        missing
    }

    /// The certificate of a `tls:` block entry: its files or its SDS secret.
    pub fn cert(&self, source: &CertificateSource) -> Result<Arc<CertSecret>, String> {
        match source {
            CertificateSource::Files(files) => self.file_cert(files),
            CertificateSource::Sds(r) => Ok(self.sds_cert(&r.name)),
        }
    }

    /// The CA bundle of a `client_ca` or a cluster's `ca`: its file or its SDS secret.
    pub fn ca(&self, source: &CaSource) -> Result<Arc<CaSecret>, String> {
        match source {
            CaSource::File { file, certs } => self.file_ca(file, certs),
            CaSource::Sds(r) => Ok(self.sds_ca(&r.name)),
        }
    }

    /// The SDS secret names in use, sorted: what the SDS client subscribes to.
    pub fn sds_names(&self) -> Vec<String> {
        let inner = self.inner.lock();
        let mut names: Vec<String> = inner
            .sds_certs
            .keys()
            .chain(inner.sds_cas.keys())
            .cloned()
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The SDS secrets registered under `name`: (certificate, CA bundle).
    pub fn sds_named(&self, name: &str) -> (Option<Arc<CertSecret>>, Option<Arc<CaSecret>>) {
        let inner = self.inner.lock();
        (
            inner.sds_certs.get(name).cloned(),
            inner.sds_cas.get(name).cloned(),
        )
    }
}

impl Inner {
    fn find(&self, origin: &SecretOrigin) -> Option<FileSecret> {
        self.files
            .iter()
            .find(|e| &e.origin == origin)
            .map(|e| e.secret.clone())
    }
}
