//! The session store of an upstream TLS client: emptied when the cluster's CA bundle or client
//! certificate changes. A resumed TLS session skips both the server's verification and the
//! client's certificate, so without this a rotated client certificate would not reach the
//! server (it keeps seeing the identity of the first handshake) and a server verified under an
//! old CA could be resumed after the bundle stopped trusting it.

use std::sync::Arc;

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue,
};
use rustls::NamedGroup;
use rustls_pki_types::ServerName;

use super::bound::Bound;
use super::secret::{CaMaterial, CaSecret, CertMaterial, CertSecret};

/// As many sessions as rustls keeps by default.
const SESSIONS: usize = 256;

/// The CA bundle and certificate the sessions were made with.
type Made = (Option<Arc<CaMaterial>>, Option<Arc<CertMaterial>>);

#[derive(Debug)]
pub(crate) struct SecretBoundSessions {
    ca: Option<Arc<CaSecret>>,
    cert: Option<Arc<CertSecret>>,
    current: Bound<Made, Arc<ClientSessionMemoryCache>>,
}

fn fresh() -> Arc<ClientSessionMemoryCache> {
    Arc::new(ClientSessionMemoryCache::new(SESSIONS))
}

impl SecretBoundSessions {
    pub(crate) fn new(ca: Option<Arc<CaSecret>>, cert: Option<Arc<CertSecret>>) -> Self {
        let made = (
            ca.as_ref().and_then(|c| c.current()),
            cert.as_ref().and_then(|c| c.current()),
        );
        SecretBoundSessions {
            current: Bound::new(made, fresh()),
            ca,
            cert,
        }
    }

    fn material(&self) -> Made {
        (
            self.ca.as_ref().and_then(|c| c.current()),
            self.cert.as_ref().and_then(|c| c.current()),
        )
    }

    /// The sessions made with the current material; a fresh, empty store once it changed.
    fn sessions(&self) -> Arc<ClientSessionMemoryCache> {
        self.current
            .get(self.material(), || Some(fresh()))
            .unwrap_or_else(fresh)
    }
}

impl ClientSessionStore for SecretBoundSessions {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.sessions().set_kx_hint(server_name, group)
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.sessions().kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.sessions().set_tls12_session(server_name, value)
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.sessions().tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.sessions().remove_tls12_session(server_name)
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        self.sessions().insert_tls13_ticket(server_name, value)
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        self.sessions().take_tls13_ticket(server_name)
    }
}
