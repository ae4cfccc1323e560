//! The Prometheus text exposition format, version 0.0.4, as Envoy's `/stats/prometheus`
//! writes it: `envoy_` + the tag-extracted name with `.` made `_`, the tags as labels, one
//! `# TYPE` per family and the family's series together.
//!
//! Written here rather than with the `prometheus-client` crate: its encoder writes
//! OpenMetrics and appends `_total` to counters, which would rename Envoy's metrics
//! (`envoy_cluster_upstream_rq_total` would become `..._total_total`) and break dashboards
//! made for Envoy.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::name::Name;
use crate::{Snapshot, BOUNDS};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

struct Family {
    kind: Kind,
    body: String,
}

/// The snapshot in the text format. `used_only` leaves out counters and gauges at zero and
/// histograms without samples.
pub fn render(snapshot: &Snapshot, used_only: bool) -> String {
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut add = |name: &Name, kind: Kind, write: &mut dyn FnMut(&mut String, &str, &str)| {
        let metric = metric_name(&name.extracted);
        let family = families.entry(metric.clone()).or_insert_with(|| Family {
            kind,
            body: String::new(),
        });
        // A name used for two kinds would make the output unparsable: the first kind keeps it.
        if family.kind == kind {
            write(&mut family.body, &metric, &labels(name));
        }
    };
    for (name, value) in &snapshot.counters {
        if used_only && *value == 0 {
            continue;
        }
        add(name, Kind::Counter, &mut |out, metric, labels| {
            let _ = writeln!(out, "{metric}{} {value}", braced(labels));
        });
    }
    for (name, value) in &snapshot.gauges {
        if used_only && *value == 0 {
            continue;
        }
        add(name, Kind::Gauge, &mut |out, metric, labels| {
            let _ = writeln!(out, "{metric}{} {value}", braced(labels));
        });
    }
    for h in &snapshot.histograms {
        let data = &h.cumulative;
        if used_only && data.count() == 0 {
            continue;
        }
        add(&h.name, Kind::Histogram, &mut |out, metric, labels| {
            let sep = if labels.is_empty() { "" } else { "," };
            let cumulative = data.cumulative_buckets();
            for (bound, n) in BOUNDS.iter().zip(cumulative) {
                let _ = writeln!(out, "{metric}_bucket{{{labels}{sep}le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "{metric}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
                data.count()
            );
            let _ = writeln!(out, "{metric}_sum{} {}", braced(labels), data.sum_units());
            let _ = writeln!(out, "{metric}_count{} {}", braced(labels), data.count());
        });
    }
    let mut out = String::new();
    for (metric, family) in families {
        let _ = writeln!(out, "# TYPE {metric} {}", family.kind.as_str());
        out.push_str(&family.body);
    }
    out
}

fn braced(labels: &str) -> String {
    if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    }
}

/// `envoy_` + the name with every character Prometheus does not allow made `_`.
fn metric_name(extracted: &str) -> String {
    format!("envoy_{}", sanitize(extracted))
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `envoy_cluster_name="backend",...`: tag names sanitized (`:` is not allowed in a label
/// name either), values escaped.
fn labels(name: &Name) -> String {
    let mut out = String::new();
    for (i, t) in name.tags.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&sanitize(t.name).replace(':', "_"));
        out.push_str("=\"");
        for c in t.value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{tag, Scope, Store};

    #[test]
    fn families_are_grouped_and_typed() {
        let store = Store::default();
        for cluster in ["backend", "other"] {
            let scope = Scope::cluster(cluster);
            store.counter_named(scope.name("upstream_rq_total")).add(3);
            store
                .counter_named(scope.name_tagged(
                    "upstream_rq_200",
                    "upstream_rq",
                    tag::RESPONSE_CODE,
                    "200",
                ))
                .add(2);
        }
        store
            .gauge_named(Scope::listener("127.0.0.1:8080").name("downstream_cx_active"))
            .set(2);
        let h = store.histogram_named(Scope::cluster("backend").name("upstream_rq_time"));
        h.record(3);
        h.record(700);
        store.counter_named(Name::plain("weird.na-me")).inc();
        store
            .counter_named(Scope::cluster("q\"\\\n").name("upstream_rq_total"))
            .inc();
        let text = render(&store.snapshot(), false);
        let expected_start = "\
# TYPE envoy_cluster_upstream_rq counter
envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"backend\"} 2
envoy_cluster_upstream_rq{envoy_response_code=\"200\",envoy_cluster_name=\"other\"} 2
# TYPE envoy_cluster_upstream_rq_time histogram
envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"backend\",le=\"0.5\"} 0
";
        assert!(text.starts_with(expected_start), "{text}");
        for line in [
            "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"backend\",le=\"5\"} 1\n",
            "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"backend\",le=\"1000\"} 2\n",
            "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"backend\",le=\"3600000\"} 2\n",
            "envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name=\"backend\",le=\"+Inf\"} 2\n",
            "envoy_cluster_upstream_rq_time_sum{envoy_cluster_name=\"backend\"} 703\n",
            "envoy_cluster_upstream_rq_time_count{envoy_cluster_name=\"backend\"} 2\n",
            "# TYPE envoy_cluster_upstream_rq_total counter\n",
            "envoy_cluster_upstream_rq_total{envoy_cluster_name=\"q\\\"\\\\\\n\"} 1\n",
            "# TYPE envoy_listener_downstream_cx_active gauge\nenvoy_listener_downstream_cx_active{envoy_listener_address=\"127.0.0.1_8080\"} 2\n",
            "# TYPE envoy_weird_na_me counter\nenvoy_weird_na_me 1\n",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE envoy_cluster_upstream_rq_total ")
                .count(),
            1
        );
        store.counter_named(Name::plain("zero.counter"));
        assert!(render(&store.snapshot(), false).contains("\nenvoy_zero_counter 0\n"));
        let used = render(&store.snapshot(), true);
        assert!(!used.contains("envoy_zero_counter"), "{used}");
        assert!(used.contains("envoy_weird_na_me 1"), "{used}");
    }
}
