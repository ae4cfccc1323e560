//! Counters (only go up) and gauges (go up and down), sharded per worker.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crate::shard::{mine, slots, Padded};

/// A counter: only ever goes up. Bumping it is one relaxed add on the worker's own cache
/// line; reading it sums the shards.
#[derive(Debug)]
pub struct Counter(Box<[Padded<AtomicU64>]>);

impl Default for Counter {
    fn default() -> Self {
        Counter(slots())
    }
}

impl Counter {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        mine(&self.0).fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

/// A gauge: a level (active connections, requests in flight). `inc` and `dec` are sharded
/// like a counter's adds, so a connection opened on one worker and closed on another still
/// nets to zero; `set` is for gauges one writer owns.
#[derive(Debug)]
pub struct Gauge(Box<[Padded<AtomicI64>]>);

impl Default for Gauge {
    fn default() -> Self {
        Gauge(slots())
    }
}

impl Gauge {
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    #[inline]
    pub fn add(&self, n: i64) {
        mine(&self.0).fetch_add(n, Ordering::Relaxed);
    }

    /// Sets the level: the first shard holds it and the others are cleared. Racing `inc`s
    /// from other shards may be lost, so mix `set` with `inc`/`dec` only from one thread.
    pub fn set(&self, value: i64) {
        for (i, s) in self.0.iter().enumerate() {
            s.0.store(if i == 0 { value } else { 0 }, Ordering::Relaxed);
        }
    }

    pub fn get(&self) -> i64 {
        self.0
            .iter()
            .fold(0i64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }
}

/// Increments a gauge now and decrements it when dropped: one connection or request in
/// flight, however its handling ends.
#[derive(Debug)]
pub struct GaugeGuard(std::sync::Arc<Gauge>);

impl GaugeGuard {
    pub fn new(gauge: &std::sync::Arc<Gauge>) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[test]
    fn shards_merge_on_read() {
        let c = Arc::new(Counter::default());
        let g = Arc::new(Gauge::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, g) = (c.clone(), g.clone());
                std::thread::spawn(move || {
                    crate::set_worker_shard();
                    for _ in 0..1000 {
                        c.inc();
                        g.inc();
                    }
                    c.add(5);
                    g.add(-500);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 4 * 1005);
        assert_eq!(g.get(), 4 * 500);
        // Decrements on another shard net out.
        for _ in 0..2000 {
            g.dec();
        }
        assert_eq!(g.get(), 0);
        g.set(7);
        assert_eq!(g.get(), 7);
    }

    #[test]
    fn a_guard_gives_back_what_it_took() {
        let g = Arc::new(Gauge::default());
        let a = GaugeGuard::new(&g);
        let b = GaugeGuard::new(&g);
        assert_eq!(g.get(), 2);
        drop(a);
        drop(b);
        assert_eq!(g.get(), 0);
    }
}
