//! Histograms: per-shard bucket counts over Envoy's default bounds, merged on read, with
//! quantiles estimated by interpolating within a bucket.
//!
//! Values are kept in thousandths of the histogram's unit (microseconds for a histogram in
//! milliseconds), so a 0.3 ms sample lands below the 0.5 bound and sums keep sub-unit
//! precision. Recording is a bucket search over 19 bounds and four relaxed atomics on the
//! worker's own cache lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::shard::{mine, slots, Padded};

/// Envoy's default bucket upper bounds, in the histogram's unit (ms for durations).
pub const BOUNDS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The quantiles `/stats` shows, as Envoy's `supported_quantiles` (in percent).
pub const QUANTILES: [f64; 10] = [0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 100.0];

/// The bounds in thousandths, as recorded.
const MILLI_BOUNDS: [u64; 19] = {
    let mut out = [0u64; 19];
    let mut i = 0;
    while i < 19 {
        // Every bound is a multiple of 0.5, so this is exact.
        out[i] = (BOUNDS[i] * 2.0) as u64 * 500;
        i += 1;
    }
    out
};

/// Buckets: one per bound plus the overflow (`+Inf`).
pub const BUCKETS: usize = 20;

#[derive(Debug)]
struct Cells {
    buckets: [AtomicU64; BUCKETS],
    sum: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
}

impl Default for Cells {
    fn default() -> Self {
        Cells {
            buckets: Default::default(),
            sum: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
        }
    }
}

/// A distribution of values (latencies in ms, mostly).
#[derive(Debug)]
pub struct Histogram {
    cells: Box<[Padded<Cells>]>,
    /// The totals at the last flush, and what came in between the two flushes before.
    flushed: Mutex<(Data, Data)>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            cells: slots(),
            flushed: Mutex::new((Data::default(), Data::default())),
        }
    }
}

impl Histogram {
    /// Records a duration, in milliseconds.
    #[inline]
    pub fn record_duration(&self, d: Duration) {
        self.record_milli(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// Records a value in the histogram's unit.
    #[inline]
    pub fn record(&self, value: u64) {
        self.record_milli(value.saturating_mul(1000));
    }

    #[inline]
    fn record_milli(&self, v: u64) {
        let cells = mine(&self.cells);
        let i = MILLI_BOUNDS.partition_point(|&b| b < v);
        if let Some(b) = cells.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        cells.sum.fetch_add(v, Ordering::Relaxed);
        if v < cells.min.load(Ordering::Relaxed) {
            cells.min.fetch_min(v, Ordering::Relaxed);
        }
        if v > cells.max.load(Ordering::Relaxed) {
            cells.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// Everything recorded so far, merged over the shards.
    pub fn cumulative(&self) -> Data {
        let mut d = Data::default();
        for c in self.cells.iter() {
            let c = &c.0;
            for (sum, b) in d.buckets.iter_mut().zip(&c.buckets) {
                *sum += b.load(Ordering::Relaxed);
            }
            d.sum = d.sum.wrapping_add(c.sum.load(Ordering::Relaxed));
            d.min = d.min.min(c.min.load(Ordering::Relaxed));
            d.max = d.max.max(c.max.load(Ordering::Relaxed));
        }
        d
    }

    /// What was recorded between the last two [`Histogram::flush`]es (Envoy's "interval").
    pub fn interval(&self) -> Data {
        self.flushed.lock().1.clone()
    }

    /// Closes an interval: called by the stats flush every `stats_flush_interval`. Returns
    /// the interval just closed.
    pub fn flush(&self) -> Data {
        let now = self.cumulative();
        let mut flushed = self.flushed.lock();
        let interval = now.since(&flushed.0);
        *flushed = (now, interval.clone());
        interval
    }
}

/// A histogram's contents at one moment: per-bucket (not cumulative) counts, and the sum,
/// least and greatest value, all in thousandths of the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    pub buckets: [u64; BUCKETS],
    pub sum: u64,
    pub min: u64,
    pub max: u64,
}

impl Default for Data {
    fn default() -> Self {
        Data {
            buckets: [0; BUCKETS],
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl Data {
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The sum in the histogram's unit.
    pub fn sum_units(&self) -> f64 {
        self.sum as f64 / 1000.0
    }

    /// Counts at or below each bound, then the total (Prometheus' `le` buckets).
    pub fn cumulative_buckets(&self) -> [u64; BUCKETS] {
        let mut out = self.buckets;
        for i in 1..BUCKETS {
            out[i] += out[i - 1];
        }
        out
    }

    /// The values recorded since `earlier` (an older state of the same histogram). The
    /// least and greatest values of the difference are only known to within their buckets
    /// and the whole's least and greatest.
    fn since(&self, earlier: &Data) -> Data {
        let mut d = Data::default();
        for i in 0..BUCKETS {
            d.buckets[i] = self.buckets[i].saturating_sub(earlier.buckets[i]);
        }
        d.sum = self.sum.wrapping_sub(earlier.sum);
        if let Some(first) = d.buckets.iter().position(|&b| b > 0) {
            let lower = first.checked_sub(1).map_or(0, |i| MILLI_BOUNDS[i]);
            d.min = lower.max(self.min);
        }
        if let Some(last) = d.buckets.iter().rposition(|&b| b > 0) {
            d.max = MILLI_BOUNDS
                .get(last)
                .map_or(self.max, |&b| b.min(self.max));
        }
        d
    }

    /// The `q`-quantile (0.0..=1.0) in the histogram's unit, interpolated linearly within
    /// its bucket and kept within the least and greatest value seen; NaN when empty.
    pub fn quantile(&self, q: f64) -> f64 {
        let count = self.count();
        if count == 0 {
            return f64::NAN;
        }
        let rank = q.clamp(0.0, 1.0) * count as f64;
        let (min, max) = (self.min as f64, self.max as f64);
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            if (below + n) as f64 >= rank {
                let lower = i.checked_sub(1).map_or(0.0, |j| MILLI_BOUNDS[j] as f64);
                let upper = MILLI_BOUNDS.get(i).map_or(max, |&b| b as f64);
                let frac = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                let v = lower + frac * (upper - lower);
                return v.clamp(min, max.max(min)) / 1000.0;
            }
            below += n;
        }
        max / 1000.0
    }

    /// [`QUANTILES`], in order.
    pub fn quantiles(&self) -> [f64; 10] {
        QUANTILES.map(|p| self.quantile(p / 100.0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buckets_use_le_bounds() {
        let h = Histogram::default();
        h.record_duration(Duration::from_micros(300));
        h.record(1);
        h.record(3);
        h.record(7_000_000);
        let d = h.cumulative();
        assert_eq!(d.buckets[0], 1); // 0.3 <= 0.5
        assert_eq!(d.buckets[1], 1); // 1 <= 1
        assert_eq!(d.buckets[2], 1); // 3 <= 5
        assert_eq!(d.buckets[19], 1); // overflow
        assert_eq!(d.count(), 4);
        assert_eq!(d.cumulative_buckets()[19], 4);
        assert!((d.sum_units() - 7_000_004.3).abs() < 1e-6);
        assert_eq!(d.min, 300);
        assert_eq!(d.max, 7_000_000_000);
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let h = Histogram::default();
        // 100 samples of 10..=100 ms spread over the (5,10], (10,25], (25,50], (50,100] buckets.
        for v in 1..=100u64 {
            h.record(v.max(6));
        }
        let d = h.cumulative();
        assert_eq!(d.quantile(0.0), 6.0);
        assert_eq!(d.quantile(1.0), 100.0);
        // The median lies in (25,50] with 25 below it out of its 25: its top.
        assert_eq!(d.quantile(0.5), 50.0);
        // P75 is the top of (50,100]'s first half.
        assert_eq!(d.quantile(0.75), 75.0);
        assert!(Data::default().quantile(0.5).is_nan());
        let q = d.quantiles();
        assert!(q.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn an_interval_is_what_came_between_flushes() {
        let h = Histogram::default();
        h.record(3);
        assert_eq!(h.flush().count(), 1);
        h.record(20);
        h.record(20);
        let i = h.flush();
        assert_eq!(i.count(), 2);
        assert_eq!(i.sum_units(), 40.0);
        assert_eq!(h.interval(), i);
        // Within (10,25], and no greater than anything ever seen.
        assert_eq!(i.quantile(1.0), 20.0);
        assert_eq!(i.quantile(0.0), 10.0);
        assert_eq!(h.cumulative().count(), 3);
        assert_eq!(h.flush().count(), 0);
    }
}
