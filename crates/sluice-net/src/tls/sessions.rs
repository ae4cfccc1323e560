//! The TLS session cache and ticket keys of a chain that verifies clients: both start afresh
//! when the client CA bundle changes, so a client verified under the old bundle cannot resume
//! its session (which skips verification) after the bundle stopped trusting it.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};

use super::secret::{CaMaterial, CaSecret};

/// As many sessions as rustls keeps by default.
const SESSIONS: usize = 256;

#[derive(Debug)]
pub(crate) struct CaBoundSessions {
    ca: Arc<CaSecret>,
    current: ArcSwap<Generation>,
}

#[derive(Debug)]
struct Generation {
    /// The bundle the sessions were verified against.
    ca: Option<Arc<CaMaterial>>,
    sessions: Arc<ServerSessionMemoryCache>,
}

impl CaBoundSessions {
    pub(crate) fn new(ca: Arc<CaSecret>) -> CaBoundSessions {
        let current = ArcSwap::from_pointee(Generation {
            ca: ca.current(),
            sessions: ServerSessionMemoryCache::new(SESSIONS),
        });
        CaBoundSessions { ca, current }
    }

    /// The sessions of the current bundle; a fresh, empty cache once the bundle changed.
    fn sessions(&self) -> Arc<ServerSessionMemoryCache> {
        let now = self.ca.current();
        let generation = self.current.load();
        let same = match (&generation.ca, &now) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return generation.sessions.clone();
        }
        let fresh = Arc::new(Generation {
            ca: now,
            sessions: ServerSessionMemoryCache::new(SESSIONS),
        });
        self.current.store(fresh.clone());
        fresh.sessions.clone()
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
    current: ArcSwap<TicketGeneration>,
}

#[derive(Debug)]
struct TicketGeneration {
    ca: Option<Arc<CaMaterial>>,
    ticketer: Arc<dyn ProducesTickets>,
}

impl CaBoundTicketer {
    pub(crate) fn new(ca: Arc<CaSecret>) -> Result<CaBoundTicketer, String> {
        let current = ArcSwap::from_pointee(TicketGeneration {
            ca: ca.current(),
            ticketer: super::new_ticketer()?,
        });
        Ok(CaBoundTicketer { ca, current })
    }

    /// The ticketer of the current bundle; `None` if new keys cannot be made, when tickets
    /// are neither issued nor accepted (clients then do full handshakes).
    fn ticketer(&self) -> Option<Arc<dyn ProducesTickets>> {
        let now = self.ca.current();
        let generation = self.current.load();
        let same = match (&generation.ca, &now) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if same {
            return Some(generation.ticketer.clone());
        }
        let ticketer = super::new_ticketer().ok()?;
        self.current.store(Arc::new(TicketGeneration {
            ca: now,
            ticketer: ticketer.clone(),
        }));
        Some(ticketer)
    }
}

impl ProducesTickets for CaBoundTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.current.load().ticketer.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.ticketer()?.encrypt(plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.ticketer()?.decrypt(cipher)
    }
}
