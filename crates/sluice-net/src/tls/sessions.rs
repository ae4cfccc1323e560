//! The TLS session cache and ticket keys of a chain that verifies clients: both start afresh
//! when the client CA bundle changes, so a client verified under the old bundle cannot resume
//! its session (which skips verification) after the bundle stopped trusting it.

use std::sync::Arc;

use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use super::bound::Bound;
use super::secret::{CaMaterial, CaSecret};

/// As many sessions as rustls keeps by default.
const SESSIONS: usize = 256;

#[derive(Debug)]
pub(crate) struct CaBoundSessions {
    ca: Arc<CaSecret>,
    /// The sessions, with the bundle they were verified against.
    current: Bound<Option<Arc<CaMaterial>>, Arc<ServerSessionMemoryCache>>,
}

impl CaBoundSessions {
    pub(crate) fn new(ca: Arc<CaSecret>) -> CaBoundSessions {
        let current = Bound::new(ca.current(), ServerSessionMemoryCache::new(SESSIONS));
        CaBoundSessions { ca, current }
    }

    /// The sessions of the current bundle; a fresh, empty cache once the bundle changed.
    fn sessions(&self) -> Arc<ServerSessionMemoryCache> {
        let fresh = || ServerSessionMemoryCache::new(SESSIONS);
        self.current
            .get(self.ca.current(), || Some(fresh()))
            .unwrap_or_else(fresh)
    }
}

impl StoresServerSessions for CaBoundSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        self.sessions().put(key, value)
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.sessions().get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.sessions().take(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// Session tickets sealed with keys of the current CA bundle: a new bundle means new keys, so
/// tickets issued before it no longer open and those clients verify again.
#[derive(Debug)]
pub(crate) struct CaBoundTicketer {
    ca: Arc<CaSecret>,
    current: Bound<Option<Arc<CaMaterial>>, Arc<dyn ProducesTickets>>,
}

impl CaBoundTicketer {
    pub(crate) fn new(ca: Arc<CaSecret>) -> Result<CaBoundTicketer, String> {
        let current = Bound::new(ca.current(), super::new_ticketer()?);
        Ok(CaBoundTicketer { ca, current })
    }

    /// The ticketer of the current bundle; `None` if new keys cannot be made, when tickets
    /// are neither issued nor accepted (clients then do full handshakes).
    fn ticketer(&self) -> Option<Arc<dyn ProducesTickets>> {
        self.current
            .get(self.ca.current(), || super::new_ticketer().ok())
    }
}

impl ProducesTickets for CaBoundTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.current.last().lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.ticketer()?.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.ticketer()?.decrypt(cipher)
    }
}
