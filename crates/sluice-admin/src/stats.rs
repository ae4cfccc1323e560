//! `/stats` in Envoy's text and JSON layouts: counters and gauges as `name: value`, then
//! histograms as their quantiles, `P50(interval,cumulative)`, where the interval is what came
//! in the last `stats_flush_interval` (`nan` when nothing did).

use std::fmt::Write as _;

use regex::Regex;
use sluice_stats::{HistogramData, Snapshot, QUANTILES};

/// What to show: names matching `filter`, and with `used_only` only counters and gauges
/// above zero and histograms with samples.
pub struct Select<'a> {
    pub filter: Option<&'a Regex>,
    pub used_only: bool,
}

impl Select<'_> {
    fn name(&self, name: &str) -> bool {
        self.filter.is_none_or(|re| re.is_match(name))
    }

    /// The snapshot with only what is selected.
    pub fn apply(&self, mut s: Snapshot) -> Snapshot {
        s.counters
            .retain(|(n, v)| self.name(&n.flat) && !(self.used_only && *v == 0));
        s.gauges
            .retain(|(n, v)| self.name(&n.flat) && !(self.used_only && *v == 0));
        s.histograms
            .retain(|h| self.name(&h.name.flat) && !(self.used_only && h.cumulative.count() == 0));
        s
    }
}

/// Counters and gauges sorted together, then histograms.
pub fn text(s: &Snapshot) -> String {
    let mut lines: Vec<(&str, i128)> = s
        .counters
        .iter()
        .map(|(n, v)| (&*n.flat, i128::from(*v)))
        .chain(s.gauges.iter().map(|(n, v)| (&*n.flat, i128::from(*v))))
        .collect();
    lines.sort();
    let mut out = String::new();
    for (name, value) in lines {
        let _ = writeln!(out, "{name}: {value}");
    }
    for h in &s.histograms {
        if h.cumulative.count() == 0 {
            let _ = writeln!(out, "{}: No recorded values", h.name.flat);
            continue;
        }
        let _ = write!(out, "{}:", h.name.flat);
        let interval = h.interval.quantiles();
        let cumulative = h.cumulative.quantiles();
        for ((p, i), c) in QUANTILES.iter().zip(interval).zip(cumulative) {
            let _ = write!(out, " P{p}({},{})", number(i), number(c));
        }
        out.push('\n');
    }
    out
}

/// Envoy's JSON: `{"stats": [{"name", "value"}..., {"histograms": {"supported_quantiles",
/// "computed_quantiles": [{"name", "values": [{"interval", "cumulative"}...]}]}}]}`, with
/// `null` for a quantile of no values.
pub fn json(s: &Snapshot) -> serde_json::Value {
    let mut values: Vec<(&str, serde_json::Value)> = s
        .counters
        .iter()
        .map(|(n, v)| (&*n.flat, serde_json::json!(v)))
        .chain(
            s.gauges
                .iter()
                .map(|(n, v)| (&*n.flat, serde_json::json!(v))),
        )
        .collect();
    values.sort_by(|a, b| a.0.cmp(b.0));
    let mut stats: Vec<serde_json::Value> = values
        .into_iter()
        .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
        .collect();
    if !s.histograms.is_empty() {
        let computed: Vec<serde_json::Value> = s
            .histograms
            .iter()
            .map(|h| {
                let values: Vec<serde_json::Value> = quantile_pairs(&h.interval, &h.cumulative)
                    .map(|(i, c)| serde_json::json!({ "interval": finite(i), "cumulative": finite(c) }))
                    .collect();
                serde_json::json!({ "name": &*h.name.flat, "values": values })
            })
            .collect();
        stats.push(serde_json::json!({
            "histograms": {
                "supported_quantiles": QUANTILES,
                "computed_quantiles": computed,
            }
        }));
    }
    serde_json::json!({ "stats": stats })
}

fn quantile_pairs(
    interval: &HistogramData,
    cumulative: &HistogramData,
) -> impl Iterator<Item = (f64, f64)> {
    interval.quantiles().into_iter().zip(cumulative.quantiles())
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// `nan` as Envoy writes it; otherwise the shortest form (`200`, `207.5`).
fn number(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sluice_stats::{Scope, Store};

    fn sample() -> Snapshot {
        let store = Store::default();
        let b = Scope::cluster("backend");
        store.counter_named(b.name("upstream_rq_total")).add(37);
        store.gauge_named(b.name("upstream_cx_active")).set(2);
        store.histogram_named(b.name("upstream_cx_connect_ms"));
        let h = store.histogram_named(b.name("upstream_rq_time"));
        h.record(1);
        h.record(1);
        store.snapshot()
    }

    #[test]
    fn text_reads_like_envoys() {
        let text = text(&sample());
        assert_eq!(
            text,
            "cluster.backend.upstream_cx_active: 2\n\
             cluster.backend.upstream_rq_total: 37\n\
             cluster.backend.upstream_cx_connect_ms: No recorded values\n\
             cluster.backend.upstream_rq_time: P0(nan,1) P25(nan,1) P50(nan,1) P75(nan,1) \
             P90(nan,1) P95(nan,1) P99(nan,1) P99.5(nan,1) P99.9(nan,1) P100(nan,1)\n"
        );
    }

    #[test]
    fn json_has_envoys_shape() {
        let re = Regex::new("upstream_rq").unwrap();
        let select = Select {
            filter: Some(&re),
            used_only: false,
        };
        let v = json(&select.apply(sample()));
        let stats = v["stats"].as_array().unwrap();
        assert_eq!(stats[0]["name"], "cluster.backend.upstream_rq_total");
        assert_eq!(stats[0]["value"], 37);
        let h = &stats[1]["histograms"];
        assert_eq!(h["supported_quantiles"][9], 100.0);
        let q = &h["computed_quantiles"][0];
        assert_eq!(q["name"], "cluster.backend.upstream_rq_time");
        assert_eq!(q["values"][2]["interval"], serde_json::Value::Null);
        assert_eq!(q["values"][2]["cumulative"], 1.0);
        assert_eq!(stats.len(), 2);
    }

    #[test]
    fn used_only_drops_what_never_moved() {
        let select = Select {
            filter: None,
            used_only: true,
        };
        let s = select.apply(sample());
        assert_eq!(s.histograms.len(), 1);
        assert_eq!(s.counters.len(), 1);
    }
}
