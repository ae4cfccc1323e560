//! Metrics: counters, gauges and histograms, registered once by name and updated lock-free
//! on the hot path.
//!
//! A component asks its [`Scope`] for its metrics when it is built (`cluster.backend.` +
//! `upstream_rq_total`) and keeps the returned handles; an update is a relaxed atomic on the
//! calling worker's own shard ([`shard`]), merged when read. The [`Store`] holds them by name
//! for the admin server and the stats sinks, which read a [`Snapshot`]. Names follow Envoy's,
//! flat for `/stats` and tag-extracted ([`Name`]) for Prometheus and DogStatsD, so
//! dashboards made for Envoy read them unchanged.

mod codes;
mod counter;
mod histogram;
mod name;
pub mod prometheus;
mod scope;
mod shard;
pub mod sink;
mod store;

use std::sync::OnceLock;

pub use codes::{CodeClasses, ResponseCodes};
pub use counter::{Counter, Gauge, GaugeGuard};
pub use histogram::{Data as HistogramData, Histogram, BOUNDS, BUCKETS, QUANTILES};
pub use name::{tag, Name, Tag};
pub use scope::Scope;
pub use shard::{init, set_worker_shard, shards};
pub use store::{HistogramSnapshot, Snapshot, Source, Store};

/// The process's store: one per process, as the admin server shows one `/stats`.
pub fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(Store::default)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
