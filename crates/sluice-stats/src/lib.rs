//! Named counters, registered once and bumped lock-free on the hot path.
//!
//! A component asks its [`Scope`] for a counter when it is built (`listener.127.0.0.1_8443.` +
//! `ssl.handshake`) and keeps the returned [`Counter`]; bumping it is one relaxed atomic add.
//! The [`Store`] only holds the names, for the admin server to read on a scrape. Names follow
//! Envoy's, so dashboards made for Envoy read them unchanged.
//!
//! Cluster counters predate this store and live in `sluice_upstream::stats`; the admin server
//! merges both.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::RwLock;

/// A counter: only ever goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every counter by its full name. Asking twice for one name gives the same counter, so a
/// listener rebuilt on reload keeps counting where the old one stopped, as Envoy's do.
#[derive(Debug, Default)]
pub struct Store {
    counters: RwLock<BTreeMap<String, Arc<Counter>>>,
}

impl Store {
    /// The counter named `name`, made at zero the first time.
    pub fn counter(&self, name: &str) -> Arc<Counter> {
        if let Some(c) = self.counters.read().get(name) {
            return c.clone();
        }
        self.counters
            .write()
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Every counter as (name, value), sorted by name.
    pub fn counters(&self) -> Vec<(String, u64)> {
        self.counters
            .read()
            .iter()
            .map(|(name, c)| (name.clone(), c.get()))
            .collect()
    }

    /// The value of one counter, if it exists (for tests and the admin server).
    pub fn value(&self, name: &str) -> Option<u64> {
        self.counters.read().get(name).map(|c| c.get())
    }
}

/// The process's store: one per process, as the admin server shows one `/stats`.
pub fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(Store::default)
}

/// A name prefix (`listener.127.0.0.1_8443.`), for a component's counters.
#[derive(Debug, Clone)]
pub struct Scope {
    prefix: String,
}

impl Scope {
    /// A scope under `prefix`; a trailing dot is added when missing.
    pub fn new(prefix: &str) -> Scope {
        let mut prefix = prefix.to_string();
        if !prefix.is_empty() && !prefix.ends_with('.') {
            prefix.push('.');
        }
        Scope { prefix }
    }

    /// Envoy's scope for a listener: `listener.<address>.`, with `:` in the address made `_`
    /// (`listener.127.0.0.1_8443.`), so the name stays one token for StatsD and Prometheus.
    pub fn listener(address: &str) -> Scope {
        Scope::new(&format!("listener.{}", address.replace(':', "_")))
    }

    /// A nested scope: `self.prefix` + `name` + `.`.
    pub fn scope(&self, name: &str) -> Scope {
        Scope::new(&format!("{}{name}", self.prefix))
    }

    /// The counter `prefix + name` in the process's store.
    pub fn counter(&self, name: &str) -> Arc<Counter> {
        store().counter(&format!("{}{name}", self.prefix))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_name_one_counter() {
        let store = Store::default();
        store.counter("a.b").inc();
        store.counter("a.b").add(2);
        store.counter("a.a").inc();
        assert_eq!(store.value("a.b"), Some(3));
        assert_eq!(
            store.counters(),
            vec![("a.a".to_string(), 1), ("a.b".to_string(), 3)]
        );
    }

    #[test]
    fn listener_scope_names_read_like_envoys() {
        let s = Scope::listener("127.0.0.1:8443").scope("ssl");
        assert_eq!(s.prefix(), "listener.127.0.0.1_8443.ssl.");
        s.counter("handshake").inc();
        assert_eq!(
            store().value("listener.127.0.0.1_8443.ssl.handshake"),
            Some(1)
        );
    }
}
