//! The stats flush: every `stats_flush_interval` the histograms close an interval (the
//! `interval` quantiles of `/stats`) and each StatsD / DogStatsD sink is sent the metrics over
//! UDP. It runs on the control runtime, never on a worker.
//!
//! What a sink receives each flush:
//! - counters that moved, as the increase since the last flush: `name:3|c`;
//! - every gauge, as its level: `name:2|g` (never negative: StatsD would read `-1` as a
//!   decrement);
//! - histograms that had samples in the interval, summarized, since sending each sample would
//!   cost a datagram per request: `name.count:N|c` and the interval's quantiles in the
//!   histogram's unit (ms) as gauges `name.p50`, `.p90`, `.p95`, `.p99`, `.p100`.
//!
//! StatsD gets flat names (`envoy.cluster.backend.upstream_rq_total`); DogStatsD the
//! tag-extracted name with the tags (`envoy.cluster.upstream_rq_total:3|c|#envoy.cluster_name:backend`).
//! Lines are batched into datagrams of at most 1400 bytes (8 KiB to a loopback address),
//! which no path MTU fragments.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use crate::name::Name;
use crate::{Snapshot, Store};

/// A sink's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Statsd,
    DogStatsd,
}

/// The quantiles a histogram is summarized by, and their suffixes.
const SUMMARY: [(f64, &str); 5] = [
    (0.5, "p50"),
    (0.9, "p90"),
    (0.95, "p95"),
    (0.99, "p99"),
    (1.0, "p100"),
];

/// One StatsD or DogStatsD destination.
pub struct StatsdSink {
    format: Format,
    prefix: String,
    target: SocketAddr,
    /// Each counter's value at the last flush, for the deltas.
    last: HashMap<Box<str>, u64>,
}

impl StatsdSink {
    pub fn new(format: Format, target: SocketAddr, prefix: &str) -> StatsdSink {
        StatsdSink {
            format,
            prefix: prefix.trim_end_matches('.').to_string(),
            target,
            last: HashMap::new(),
        }
    }

    fn datagram_limit(&self) -> usize {
        if self.target.ip().is_loopback() {
            8192
        } else {
            1400
        }
    }

    /// The lines for one flush (and the counters' values remembered for the next).
    pub fn lines(&mut self, s: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for (name, value) in &s.counters {
            let last = match self.last.get_mut(&*name.flat) {
                Some(last) => last,
                None => self.last.entry(name.flat.clone()).or_insert(0),
            };
            let delta = value.saturating_sub(*last);
            *last = *value;
            if delta > 0 {
                out.push(self.line(name, "", &delta.to_string(), "c"));
            }
        }
        for (name, value) in &s.gauges {
            out.push(self.line(name, "", &(*value).max(0).to_string(), "g"));
        }
        for h in &s.histograms {
            let count = h.interval.count();
            if count == 0 {
                continue;
            }
            out.push(self.line(&h.name, ".count", &count.to_string(), "c"));
            for (q, suffix) in SUMMARY {
                let v = h.interval.quantile(q);
                out.push(self.line(&h.name, &format!(".{suffix}"), &format!("{v}"), "g"));
            }
        }
        out
    }

    fn line(&self, name: &Name, suffix: &str, value: &str, kind: &str) -> String {
        let mut line = String::with_capacity(64);
        let base = match self.format {
            Format::Statsd => &name.flat,
            Format::DogStatsd => &name.extracted,
        };
        if !self.prefix.is_empty() {
            line.push_str(&self.prefix);
            line.push('.');
        }
        push_clean(&mut line, base);
        line.push_str(suffix);
        let _ = write!(line, ":{value}|{kind}");
        if self.format == Format::DogStatsd && !name.tags.is_empty() {
            line.push_str("|#");
            for (i, t) in name.tags.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                push_clean(&mut line, t.name);
                line.push(':');
                push_clean(&mut line, &t.value);
            }
        }
        line
    }

    /// The lines packed into datagrams of at most the size limit (a longer line alone).
    pub fn datagrams(&self, lines: &[String]) -> Vec<String> {
        let limit = self.datagram_limit();
        let mut out: Vec<String> = Vec::new();
        let mut current = String::new();
        for line in lines {
            if !current.is_empty() && current.len() + 1 + line.len() > limit {
                out.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line);
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

/// Characters with a meaning in the StatsD line (`:`, `|`, `@`, `,`, `#`, blanks) made `_`.
fn push_clean(out: &mut String, s: &str) {
    out.extend(s.chars().map(|c| match c {
        ':' | '|' | '@' | ',' | '#' | '\n' | ' ' => '_',
        c => c,
    }));
}

/// Flushes every `interval` until the runtime stops: closes the histograms' interval, then
/// sends each sink its lines. Send errors (nobody listening) are logged at debug and dropped,
/// as metrics over UDP are.
pub async fn run(store: &'static Store, interval: Duration, mut sinks: Vec<StatsdSink>) {
    let socket = if sinks.is_empty() {
        None
    } else {
        let any: SocketAddr = if sinks.iter().all(|s| s.target.is_ipv6()) {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        match tokio::net::UdpSocket::bind(any).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "stats sinks: cannot open a UDP socket; nothing is sent");
                None
            }
        }
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        store.flush_histograms();
        let Some(socket) = &socket else { continue };
        let snapshot = store.snapshot();
        for sink in &mut sinks {
            let lines = sink.lines(&snapshot);
            for datagram in sink.datagrams(&lines) {
                if let Err(e) = socket.send_to(datagram.as_bytes(), sink.target).await {
                    tracing::debug!(target_addr = %sink.target, error = %e, "stats sink send failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{tag, Scope};

    #[test]
    fn lines_carry_deltas_levels_and_summaries() {
        let store = Store::default();
        let scope = Scope::cluster("backend");
        let c = store.counter_named(scope.name_tagged(
            "upstream_rq_200",
            "upstream_rq",
            tag::RESPONSE_CODE,
            "200",
        ));
        store.gauge_named(scope.name("upstream_cx_active")).set(2);
        let h = store.histogram_named(scope.name("upstream_rq_time"));
        c.add(3);
        h.record(10);
        store.flush_histograms();
        let target: SocketAddr = "127.0.0.1:8125".parse().unwrap();
        let mut statsd = StatsdSink::new(Format::Statsd, target, "sluice");
        let mut dog = StatsdSink::new(Format::DogStatsd, target, "sluice");
        let lines = statsd.lines(&store.snapshot());
        assert_eq!(
            lines,
            [
                "sluice.cluster.backend.upstream_rq_200:3|c",
                "sluice.cluster.backend.upstream_cx_active:2|g",
                "sluice.cluster.backend.upstream_rq_time.count:1|c",
                "sluice.cluster.backend.upstream_rq_time.p50:10|g",
                "sluice.cluster.backend.upstream_rq_time.p90:10|g",
                "sluice.cluster.backend.upstream_rq_time.p95:10|g",
                "sluice.cluster.backend.upstream_rq_time.p99:10|g",
                "sluice.cluster.backend.upstream_rq_time.p100:10|g",
            ]
        );
        let lines = dog.lines(&store.snapshot());
        assert_eq!(
            lines[0],
            "sluice.cluster.upstream_rq:3|c|#envoy.response_code:200,envoy.cluster_name:backend"
        );
        // Only what moved since the last flush.
        c.add(2);
        store.flush_histograms();
        let lines = statsd.lines(&store.snapshot());
        assert_eq!(
            lines,
            [
                "sluice.cluster.backend.upstream_rq_200:2|c",
                "sluice.cluster.backend.upstream_cx_active:2|g",
            ]
        );
    }

    #[test]
    fn datagrams_stay_under_the_limit() {
        let target: SocketAddr = "10.0.0.1:8125".parse().unwrap();
        let sink = StatsdSink::new(Format::Statsd, target, "");
        let lines: Vec<String> = (0..100).map(|i| format!("metric.{i:03}:1|c")).collect();
        let grams = sink.datagrams(&lines);
        assert!(grams.len() > 1);
        assert!(grams.iter().all(|g| g.len() <= 1400));
        let joined: Vec<&str> = grams.iter().flat_map(|g| g.split('\n')).collect();
        assert_eq!(joined.len(), 100);
    }
}
