//! One upstream endpoint: what the config (or DNS, or later EDS) says about it, and the live
//! state that health checks, outlier detection and load balancers share.
//!
//! A `Host` is shared (`Arc`) between every snapshot of its cluster that contains it: when the
//! membership changes, hosts that stay keep their `Arc`, and so their health, counters and
//! connection pools. A host that leaves lives on only while requests still hold it, which is
//! how its connections drain.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use sluice_config::Address;

use crate::lb::peak_ewma::Ewma;
use crate::outlier::OutlierState;

/// Where a host runs. Empty strings mean "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Locality {
    pub region: Arc<str>,
    pub zone: Arc<str>,
    pub sub_zone: Arc<str>,
}

/// Key/value labels of an endpoint (`version: v2`), sorted by key for binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Metadata(Vec<(Arc<str>, Arc<str>)>);

impl Metadata {
    pub fn new(pairs: impl IntoIterator<Item = (Arc<str>, Arc<str>)>) -> Self {
        let mut v: Vec<_> = pairs.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup_by(|a, b| a.0 == b.0);
        Metadata(v)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A host's upstream connections as `/clusters` shows them (Envoy's per-host `cx_active`,
/// `cx_total`, `cx_connect_fail`); shared with the pools that dial the host.
#[derive(Debug, Default)]
pub struct HostConnections {
    active: AtomicU32,
    total: AtomicU64,
    connect_fail: AtomicU64,
}

impl HostConnections {
    /// A connection was made: active until the returned guard is dropped.
    pub fn opened(self: &Arc<Self>) -> OpenConnection {
        self.active.fetch_add(1, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
        OpenConnection(self.clone())
    }

    /// A connect attempt failed (refused, timed out, TLS handshake).
    pub fn failed(&self) {
        self.connect_fail.fetch_add(1, Ordering::Relaxed);
    }

    /// After a dial: counts its outcome, and the guard of a connection made.
    pub fn dialed<T>(self: &Arc<Self>, result: &std::io::Result<T>) -> Option<OpenConnection> {
        match result {
            Ok(_) => Some(self.opened()),
            Err(_) => {
                self.failed();
                None
            }
        }
    }

    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    pub fn connect_fail(&self) -> u64 {
        self.connect_fail.load(Ordering::Relaxed)
    }
}

/// One open connection to a host, counted in its `cx_active` while held.
#[derive(Debug)]
pub struct OpenConnection(Arc<HostConnections>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a host is not used (bits of [`Host::health_flags`]).
pub mod health {
    /// The last active health checks failed (past `unhealthy_threshold`).
    pub const FAILED_ACTIVE_HC: u8 = 1;
    /// Ejected by outlier detection.
    pub const FAILED_OUTLIER: u8 = 2;
    /// Health checking is on and no check has answered yet.
    pub const PENDING_ACTIVE_HC: u8 = 4;
}

/// An upstream endpoint.
pub struct Host {
    pub address: Address,
    /// `address` as text (`host:port`), made once: access logs and spans name the host of
    /// every request.
    label: Arc<str>,
    connections: Arc<HostConnections>,
    /// The DNS name the address was resolved from (DNS clusters): the default TLS server name.
    /// Not part of the endpoint's identity: two names resolving to one address make one host,
    /// which keeps the first name.
    pub hostname: Option<Arc<str>>,
    /// Relative share of traffic, at least 1.
    pub weight: u32,
    pub metadata: Metadata,
    /// The endpoint's `transport_socket_match` labels: which of the cluster's
    /// `transport_socket_matches` it connects with ([`crate::Cluster::tls_for`]).
    pub transport: Metadata,
    pub locality: Locality,
    /// 0 is the most preferred level.
    pub priority: u32,
    health: AtomicU8,
    /// Requests sent to this host and not yet answered (least_request, peak_ewma, `/clusters`).
    active_requests: AtomicU32,
    /// Requests sent, and those that failed (5xx, connect failure, reset, timeout) or timed
    /// out: Envoy's per-host `rq_total`, `rq_error`, `rq_timeout` in `/clusters`.
    rq_total: AtomicU64,
    rq_error: AtomicU64,
    rq_timeout: AtomicU64,
    /// Peak-EWMA latency estimate (see [`crate::lb::peak_ewma`]).
    pub(crate) ewma: Ewma,
    /// Outlier detection's counters (see [`crate::outlier`]).
    pub(crate) outlier: OutlierState,
    /// Protocols' per-host state (the HTTP connection pool, an RPC connection), each made on
    /// first use, one value per type.
    slots: [OnceLock<Box<dyn Any + Send + Sync>>; SLOTS],
}

/// How many kinds of per-host state one host can carry at once: a cluster may serve
/// `http_proxy` and `rpc_proxy` (an `auto` listener routes both to the same cluster).
const SLOTS: usize = 4;

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("address", &self.address)
            .field("weight", &self.weight)
            .field("priority", &self.priority)
            .field("health", &self.health_flags())
            .finish_non_exhaustive()
    }
}

impl Host {
    pub fn new(
        address: Address,
        weight: u32,
        metadata: Metadata,
        locality: Locality,
        priority: u32,
    ) -> Self {
        Host {
            label: Arc::from(address.to_string()),
            connections: Arc::default(),
            address,
            hostname: None,
            weight: weight.max(1),
            metadata,
            transport: Metadata::default(),
            locality,
            priority,
            health: AtomicU8::new(0),
            active_requests: AtomicU32::new(0),
            rq_total: AtomicU64::new(0),
            rq_error: AtomicU64::new(0),
            rq_timeout: AtomicU64::new(0),
            ewma: Ewma::default(),
            outlier: OutlierState::default(),
            slots: Default::default(),
        }
    }

    /// Its connections' counters, for the pools that dial it.
    pub fn connections(&self) -> &Arc<HostConnections> {
        &self.connections
    }

    /// The address as text, shared.
    pub fn label(&self) -> &Arc<str> {
        &self.label
    }

    /// The host, resolved from `hostname`.
    pub fn with_hostname(mut self, hostname: Option<Arc<str>>) -> Self {
        self.hostname = hostname;
        self
    }

    /// The host, with its `transport_socket_match` labels.
    pub fn with_transport(mut self, transport: Metadata) -> Self {
        self.transport = transport;
        self
    }

    /// A plain host: weight 1, no metadata or locality, priority 0 (tests and benches).
    pub fn plain(address: Address) -> Self {
        Host::new(address, 1, Metadata::default(), Locality::default(), 0)
    }

    /// Whether `other` describes the same endpoint (everything but live state).
    pub fn same_endpoint(&self, other: &Host) -> bool {
        self.address == other.address
            && self.weight == other.weight
            && self.metadata == other.metadata
            && self.transport == other.transport
            && self.locality == other.locality
            && self.priority == other.priority
    }

    pub fn health_flags(&self) -> u8 {
        self.health.load(Ordering::Acquire)
    }

    /// Neither failing health checks nor ejected. A host still waiting for its first health
    /// check counts as healthy, so a starting proxy serves at once.
    pub fn is_healthy(&self) -> bool {
        self.health_flags() & (health::FAILED_ACTIVE_HC | health::FAILED_OUTLIER) == 0
    }

    /// Sets or clears `flag`; returns whether [`Host::is_healthy`] changed.
    pub fn set_health_flag(&self, flag: u8, on: bool) -> bool {
        let before = if on {
            self.health.fetch_or(flag, Ordering::AcqRel)
        } else {
            self.health.fetch_and(!flag, Ordering::AcqRel)
        };
        let after = if on { before | flag } else { before & !flag };
        let bad = health::FAILED_ACTIVE_HC | health::FAILED_OUTLIER;
        (before & bad == 0) != (after & bad == 0)
    }

    pub fn active_requests(&self) -> u32 {
        self.active_requests.load(Ordering::Relaxed)
    }

    /// Requests sent to this host so far (`rq_total`).
    pub fn requests_total(&self) -> u64 {
        self.rq_total.load(Ordering::Relaxed)
    }

    /// Requests to this host that failed (`rq_error`) and, of those, timed out (`rq_timeout`).
    pub fn requests_failed(&self) -> (u64, u64) {
        (
            self.rq_error.load(Ordering::Relaxed),
            self.rq_timeout.load(Ordering::Relaxed),
        )
    }

    /// Counts a failed request; `timeout` also as a timeout.
    pub(crate) fn count_failure(&self, timeout: bool) {
        self.rq_error.fetch_add(1, Ordering::Relaxed);
        if timeout {
            self.rq_timeout.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How outlier detection sees this host: `Some(time left)` while ejected, and its
    /// recent ejections (the multiplier of the next one's length).
    pub fn outlier_status(&self) -> (Option<std::time::Duration>, u32) {
        self.outlier.status()
    }

    /// Counts a request as in flight until the returned guard drops.
    pub fn start_request(self: &Arc<Self>) -> ActiveRequest {
        self.active_requests.fetch_add(1, Ordering::Relaxed);
        self.rq_total.fetch_add(1, Ordering::Relaxed);
        ActiveRequest(self.clone())
    }

    /// This host's `T`, made by `init` the first time any caller asks; `None` when every
    /// slot already holds another type. Proxies keep their connection pools here, so a pool
    /// lives and dies with its host.
    pub fn slot<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Option<&T> {
        let mut init = Some(init);
        // A value made for a slot another type took meanwhile, for the next free one.
        let mut made: Option<Box<dyn Any + Send + Sync>> = None;
        for slot in &self.slots {
            if slot.get().is_none() {
                let value = made.take().or_else(|| {
                    init.take()
                        .map(|f| Box::new(f()) as Box<dyn Any + Send + Sync>)
                });
                if let Some(value) = value {
                    made = slot.set(value).err();
                }
            }
            match slot.get().map(|b| b.downcast_ref::<T>()) {
                Some(Some(value)) => return Some(value),
                Some(None) => continue,
                None => return None,
            }
        }
        None
    }
}

/// A request in flight to a host; dropping it ends the count.
pub struct ActiveRequest(Arc<Host>);

impl ActiveRequest {
    pub fn host(&self) -> &Arc<Host> {
        &self.0
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.active_requests.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Arc<Host> {
        Arc::new(Host::plain(Address::parse("127.0.0.1:1").unwrap()))
    }

    #[test]
    fn health_flags_report_changes_of_healthiness() {
        let h = host();
        assert!(h.is_healthy());
        assert!(!h.set_health_flag(health::PENDING_ACTIVE_HC, true));
        assert!(h.is_healthy());
        assert!(h.set_health_flag(health::FAILED_OUTLIER, true));
        assert!(!h.set_health_flag(health::FAILED_ACTIVE_HC, true));
        assert!(!h.set_health_flag(health::FAILED_OUTLIER, false));
        assert!(h.set_health_flag(health::FAILED_ACTIVE_HC, false));
        assert!(h.is_healthy());
    }

    #[test]
    fn active_requests_follow_guards() {
        let h = host();
        let a = h.start_request();
        let b = h.start_request();
        assert_eq!(h.active_requests(), 2);
        drop(a);
        assert_eq!(h.active_requests(), 1);
        drop(b);
        assert_eq!(h.active_requests(), 0);
    }

    #[test]
    fn metadata_is_sorted_and_searchable() {
        let m = Metadata::new([("b".into(), "2".into()), ("a".into(), "1".into())]);
        assert_eq!(m.get("a"), Some("1"));
        assert_eq!(m.get("b"), Some("2"));
        assert_eq!(m.get("c"), None);
        assert_eq!(m.iter().map(|(k, _)| k).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn slot_is_made_once_per_type() {
        let h = host();
        assert_eq!(h.slot(|| 1u32), Some(&1));
        assert_eq!(h.slot(|| 2u32), Some(&1));
        assert_eq!(h.slot(|| "a"), Some(&"a"));
        assert_eq!(h.slot(|| 3u32), Some(&1));
        assert_eq!(h.slot(|| 1u8), Some(&1));
        assert_eq!(h.slot(|| 1u16), Some(&1));
        assert_eq!(h.slot(|| 1u64), None, "four types fill the slots");
        assert_eq!(h.slot(|| "b"), Some(&"a"));
    }
}
