//! The process's metrics by flat name, and the snapshot a scrape or a sink flush reads.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::histogram::Data;
use crate::name::Name;
use crate::{Counter, Gauge, Histogram};

/// Gauges computed when read (a cluster's healthy members), pushed as (names, value).
pub type Source = Box<dyn Fn(&mut Vec<(Name, i64)>) + Send + Sync>;

type Table<M> = RwLock<BTreeMap<Box<str>, (Arc<Name>, Arc<M>)>>;

/// Every metric by its flat name. Asking twice for one name gives the same metric, so a
/// listener rebuilt on reload keeps counting where the old one stopped, as Envoy's do.
#[derive(Default)]
pub struct Store {
    counters: Table<Counter>,
    gauges: Table<Gauge>,
    histograms: Table<Histogram>,
    sources: RwLock<BTreeMap<String, Source>>,
}

fn get_or_make<M: Default>(table: &Table<M>, name: Name) -> Arc<M> {
    if let Some((_, m)) = table.read().get(&name.flat) {
        return m.clone();
    }
    let mut t = table.write();
    let key = name.flat.clone();
    t.entry(key)
        .or_insert_with(|| (Arc::new(name), Arc::new(M::default())))
        .1
        .clone()
}

impl Store {
    /// The untagged counter `name`, made at zero the first time.
    pub fn counter(&self, name: &str) -> Arc<Counter> {
        self.counter_named(Name::plain(name))
    }

    /// The counter with these names (see [`crate::Scope`]); the first asker's tags stay.
    pub fn counter_named(&self, name: Name) -> Arc<Counter> {
        get_or_make(&self.counters, name)
    }

    pub fn gauge_named(&self, name: Name) -> Arc<Gauge> {
        get_or_make(&self.gauges, name)
    }

    pub fn histogram_named(&self, name: Name) -> Arc<Histogram> {
        get_or_make(&self.histograms, name)
    }

    /// Every counter as (flat name, value), sorted by name.
    pub fn counters(&self) -> Vec<(String, u64)> {
        self.counters
            .read()
            .iter()
            .map(|(name, (_, c))| (name.to_string(), c.get()))
            .collect()
    }

    /// The value of one counter, if it exists (for tests and the admin server).
    pub fn value(&self, name: &str) -> Option<u64> {
        self.counters.read().get(name).map(|(_, c)| c.get())
    }

    /// The value of one stored gauge, if it exists.
    pub fn gauge_value(&self, name: &str) -> Option<i64> {
        self.gauges.read().get(name).map(|(_, g)| g.get())
    }

    /// Adds (or, under the same `key`, replaces) gauges computed at each snapshot.
    pub fn set_source(&self, key: &str, source: Source) {
        self.sources.write().insert(key.to_string(), source);
    }

    /// Closes the histograms' interval (see [`Histogram::flush`]); the stats flush calls
    /// this every `stats_flush_interval`.
    pub fn flush_histograms(&self) {
        for (_, h) in self.histograms.read().values() {
            h.flush();
        }
    }

    /// Every metric's value now, each kind sorted by flat name.
    pub fn snapshot(&self) -> Snapshot {
        let counters = self
            .counters
            .read()
            .values()
            .map(|(n, c)| (n.clone(), c.get()))
            .collect();
        let mut gauges: Vec<(Arc<Name>, i64)> = self
            .gauges
            .read()
            .values()
            .map(|(n, g)| (n.clone(), g.get()))
            .collect();
        let mut computed = Vec::new();
        for source in self.sources.read().values() {
            source(&mut computed);
        }
        if !computed.is_empty() {
            gauges.extend(computed.into_iter().map(|(n, v)| (Arc::new(n), v)));
            gauges.sort_by(|a, b| a.0.flat.cmp(&b.0.flat));
            gauges.dedup_by(|a, b| a.0.flat == b.0.flat);
        }
        let histograms = self
            .histograms
            .read()
            .values()
            .map(|(n, h)| HistogramSnapshot {
                name: n.clone(),
                cumulative: h.cumulative(),
                interval: h.interval(),
            })
            .collect();
        Snapshot {
            counters,
            gauges,
            histograms,
        }
    }
}

/// The metrics at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub counters: Vec<(Arc<Name>, u64)>,
    pub gauges: Vec<(Arc<Name>, i64)>,
    pub histograms: Vec<HistogramSnapshot>,
}

#[derive(Debug)]
pub struct HistogramSnapshot {
    pub name: Arc<Name>,
    /// Since the start.
    pub cumulative: Data,
    /// Between the last two flushes.
    pub interval: Data,
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
    fn snapshots_hold_every_kind_and_computed_gauges() {
        let store = Store::default();
        store.gauge_named(Name::plain("g.b")).set(3);
        store.histogram_named(Name::plain("h")).record(4);
        store.set_source("test", Box::new(|out| out.push((Name::plain("g.a"), 9))));
        let s = store.snapshot();
        let gauges: Vec<_> = s.gauges.iter().map(|(n, v)| (&*n.flat, *v)).collect();
        assert_eq!(gauges, [("g.a", 9), ("g.b", 3)]);
        assert_eq!(s.histograms[0].cumulative.count(), 1);
        assert_eq!(s.histograms[0].interval.count(), 0);
        store.flush_histograms();
        assert_eq!(store.snapshot().histograms[0].interval.count(), 1);
    }
}
