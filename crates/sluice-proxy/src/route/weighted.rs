//! Which cluster a forwarded request goes to: a fixed one, or one drawn per request in
//! proportion to `weighted_clusters` weights.
//!
//! A draw is a binary search over running totals computed once at compile time, so picking
//! costs O(log n) and no state changes per request (no lock, no atomics). Weights sum in
//! `u64`, so any number of `u32` weights fits. Zero-weight entries are dropped when compiling:
//! they can never be picked, and keeping them would leave duplicate running totals.

use sluice_config::route::{ClusterTarget, WeightedCluster};
use sluice_config::MetadataMatch;

/// A weighted entry is also the shape of a single target (its weight unused): a cluster and
/// the metadata its hosts must match.
#[derive(Debug)]
pub enum ClusterChoice {
    Single(WeightedCluster),
    Weighted(WeightedClusters),
}

impl ClusterChoice {
    /// `None` for weighted clusters whose weights are all zero (or that are empty).
    pub(crate) fn compile(target: &ClusterTarget, metadata_match: &MetadataMatch) -> Option<Self> {
        match target {
            ClusterTarget::Cluster(cluster) => Some(ClusterChoice::Single(WeightedCluster {
                cluster: cluster.clone(),
                weight: 1,
                metadata_match: metadata_match.clone(),
            })),
            ClusterTarget::Weighted(clusters) => {
                WeightedClusters::new(clusters).map(ClusterChoice::Weighted)
            }
        }
    }

    /// The cluster for this request, drawing with `fastrand` if weighted.
    pub fn choose(&self) -> &WeightedCluster {
        match self {
            ClusterChoice::Single(cluster) => cluster,
            ClusterChoice::Weighted(weighted) => weighted.choose(),
        }
    }
}

#[derive(Debug)]
pub struct WeightedClusters {
    /// Only entries with a non-zero weight, in config order.
    clusters: Vec<WeightedCluster>,
    /// `cumulative[i]` is the sum of the weights of `clusters[..=i]`; strictly increasing.
    cumulative: Vec<u64>,
}

impl WeightedClusters {
    /// `None` if no entry has a non-zero weight: there would be nothing to pick.
    pub fn new(entries: &[WeightedCluster]) -> Option<Self> {
        let mut clusters = Vec::with_capacity(entries.len());
        let mut cumulative = Vec::with_capacity(entries.len());
        let mut total = 0u64;
        for entry in entries.iter().filter(|e| e.weight > 0) {
            total += u64::from(entry.weight);
            clusters.push(entry.clone());
            cumulative.push(total);
        }
        (!clusters.is_empty()).then_some(WeightedClusters {
            clusters,
            cumulative,
        })
    }

    /// The sum of the weights (never 0).
    pub fn total_weight(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The cluster owning point `r` of `0..total_weight()`: entry `i` owns the `weight_i`
    /// points after the entries before it. Deterministic, for tests and for callers that
    /// bring their own randomness (e.g. a hash for sticky choice). An `r` past the total
    /// wraps around rather than panicking.
    pub fn pick(&self, r: u64) -> &WeightedCluster {
        let total = self.total_weight().max(1);
        let r = r % total;
        let i = self.cumulative.partition_point(|&c| c <= r);
        // `r < total`, the last running total, so `i < len`; `new` never builds an empty list.
        &self.clusters[i]
    }

    /// A uniform draw over the weights.
    pub fn choose(&self) -> &WeightedCluster {
        self.pick(fastrand::u64(..self.total_weight().max(1)))
    }

    /// The clusters that can be picked (non-zero weight), in config order.
    pub fn clusters(&self) -> &[WeightedCluster] {
        &self.clusters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_config::model::ClusterRef;

    fn cluster(name: &str) -> ClusterRef {
        ClusterRef {
            name: name.into(),
            path: String::new(),
            line: 0,
        }
    }

    fn weighted(entries: &[(&str, u32)]) -> Option<WeightedClusters> {
        let entries: Vec<_> = entries
            .iter()
            .map(|(name, weight)| WeightedCluster {
                cluster: cluster(name),
                weight: *weight,
                metadata_match: Default::default(),
            })
            .collect();
        WeightedClusters::new(&entries)
    }

    fn counts(w: &WeightedClusters) -> Vec<(String, u64)> {
        let mut counts: Vec<(String, u64)> = Vec::new();
        for r in 0..w.total_weight() {
            let name = &w.pick(r).cluster.name;
            match counts.iter_mut().find(|(n, _)| n == name) {
                Some((_, c)) => *c += 1,
                None => counts.push((name.clone(), 1)),
            }
        }
        counts
    }

    #[test]
    fn every_point_is_owned_in_proportion() {
        let w = weighted(&[("a", 3), ("b", 1), ("c", 6)]).unwrap();
        assert_eq!(w.total_weight(), 10);
        assert_eq!(
            counts(&w),
            [("a".into(), 3), ("b".into(), 1), ("c".into(), 6)]
        );
        // Contiguous ranges in config order.
        let order: Vec<_> = (0..10).map(|r| w.pick(r).cluster.name.clone()).collect();
        assert_eq!(order, ["a", "a", "a", "b", "c", "c", "c", "c", "c", "c"]);
    }

    #[test]
    fn zero_weight_is_never_picked() {
        let w = weighted(&[("zero", 0), ("a", 2), ("also-zero", 0), ("b", 1), ("z", 0)]).unwrap();
        assert_eq!(counts(&w), [("a".into(), 2), ("b".into(), 1)]);
        assert_eq!(w.clusters().len(), 2);
    }

    #[test]
    fn all_zero_or_empty_is_refused() {
        assert!(weighted(&[("a", 0), ("b", 0)]).is_none());
        assert!(weighted(&[]).is_none());
    }

    #[test]
    fn out_of_range_wraps() {
        let w = weighted(&[("a", 1), ("b", 1)]).unwrap();
        assert_eq!(w.pick(2).cluster.name, "a");
        assert_eq!(w.pick(3).cluster.name, "b");
        assert_eq!(w.pick(u64::MAX).cluster.name, "b");
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let w = weighted(&[("a", u32::MAX), ("b", u32::MAX), ("c", 1)]).unwrap();
        assert_eq!(w.total_weight(), 2 * u64::from(u32::MAX) + 1);
        assert_eq!(w.pick(u64::from(u32::MAX) - 1).cluster.name, "a");
        assert_eq!(w.pick(u64::from(u32::MAX)).cluster.name, "b");
        assert_eq!(w.pick(w.total_weight() - 1).cluster.name, "c");
    }

    #[test]
    fn random_choice_follows_weights() {
        fastrand::seed(11);
        let w = weighted(&[("a", 1), ("b", 3)]).unwrap();
        let b = (0..40_000)
            .filter(|_| w.choose().cluster.name == "b")
            .count();
        // Expected 30,000; a fixed seed keeps this deterministic.
        assert!((29_000..31_000).contains(&b), "{b}");
    }

    #[test]
    fn single_cluster() {
        let target = ClusterTarget::Cluster(cluster("only"));
        let choice = ClusterChoice::compile(&target, &Default::default()).unwrap();
        assert_eq!(choice.choose().cluster.name, "only");
    }
}
