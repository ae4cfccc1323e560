//! File watching for secrets backed by files: one background thread polls the files'
//! metadata (modification time, size, inode and device, following symlinks) every interval
//! and re-reads a secret whose files changed.
//!
//! Polling rather than inotify: it sees every way a file gets replaced (written in place,
//! renamed over, a symlink re-pointed, Kubernetes' atomic `..data` symlink swap of a mounted
//! Secret) with no watch on parent directories to keep right, and a few `stat` calls a second
//! cost nothing. A pair caught half-written (new certificate, old key) fails validation, is
//! logged and skipped, and is tried again on the files' next change.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tracing::{info, warn};

use super::secret::{CaSecret, CertSecret, SecretOrigin};
use super::secrets::Secrets;

/// How often file-backed secrets are checked for changes.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub(super) enum FileSecret {
    Cert(Arc<CertSecret>),
    Ca(Arc<CaSecret>),
}

/// A file-backed secret and its files' last seen metadata.
#[derive(Debug)]
pub(super) struct FileEntry {
    pub(super) origin: SecretOrigin,
    pub(super) secret: FileSecret,
    seen: Vec<Option<Stamp>>,
}

impl FileEntry {
    pub(super) fn new(origin: SecretOrigin, secret: FileSecret) -> FileEntry {
        let seen = files(&origin).iter().map(|f| Stamp::of(f)).collect();
        FileEntry {
            origin,
            secret,
            seen,
        }
    }

    /// Re-reads the secret if one of its files changed since the last look.
    fn poll(&mut self) {
        let now: Vec<Option<Stamp>> = files(&self.origin).iter().map(|f| Stamp::of(f)).collect();
        if now == self.seen {
            return;
        }
        // Remembered whatever happens next: a failed read is retried on the next change.
        self.seen = now;
        let files = files(&self.origin);
        match (&self.secret, files) {
            (FileSecret::Cert(secret), [chain, key, ocsp @ ..]) => {
                match reload_cert(secret, chain, key, ocsp.first()) {
                    Ok(()) => {}
                    Err(e) => warn!(
                        cert_chain = %chain.display(),
                        private_key = %key.display(),
                        error = %e,
                        "certificate files changed but cannot be used; still serving the previous certificate"
                    ),
                }
            }
            (FileSecret::Ca(secret), [file]) => match reload_ca(secret, file) {
                Ok(n) => info!(file = %file.display(), certificates = n, "CA bundle rotated"),
                Err(e) => warn!(
                    file = %file.display(),
                    error = %e,
                    "CA file changed but cannot be used; still using the previous CA bundle"
                ),
            },
            _ => {}
        }
    }
}

fn files(origin: &SecretOrigin) -> &[PathBuf] {
    match origin {
        SecretOrigin::Files(f) => f,
        SecretOrigin::Sds(_) => &[],
    }
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read \"{}\": {e}", file.display()))
}

fn reload_cert(
    secret: &CertSecret,
    chain_file: &Path,
    key_file: &Path,
    ocsp_file: Option<&PathBuf>,
) -> Result<(), String> {
    let chain =
        sluice_config::parse_certs(&read(chain_file)?, &format!("\"{}\"", chain_file.display()))?;
    let key = sluice_config::parse_key(&read(key_file)?, &format!("\"{}\"", key_file.display()))?;
    let ocsp = ocsp_file.map(|f| read(f)).transpose()?;
    let m = secret.update(chain, &key.der(), ocsp)?;
    info!(
        cert_chain = %chain_file.display(),
        private_key = %key_file.display(),
        serial = %m.serial,
        not_after = %m.not_after,
        "certificate rotated"
    );
    Ok(())
}

fn reload_ca(secret: &CaSecret, file: &Path) -> Result<usize, String> {
    let certs = sluice_config::parse_certs(&read(file)?, &format!("\"{}\"", file.display()))?;
    secret.update(&certs)
}

/// What says a file changed. Read through symlinks, so re-pointing a link is a change.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    device: u64,
}

impl Stamp {
    fn of(file: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(file).ok()?;
        Some(Stamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            inode: meta.ino(),
            device: meta.dev(),
        })
    }
}

impl Secrets {
    /// Starts the thread that polls file-backed secrets every `interval`. It ends when the
    /// registry is dropped.
    pub fn watch_files(self: &Arc<Self>, interval: Duration) -> std::io::Result<()> {
        let weak: Weak<Secrets> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("sluice-secrets".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                let Some(secrets) = weak.upgrade() else {
                    return;
                };
                secrets.poll_files();
            })?;
        Ok(())
    }

    /// One look at every file-backed secret.
    pub fn poll_files(&self) {
        for entry in &mut self.inner.lock().files {
            entry.poll();
        }
    }
}
