//! `stats_sinks:` and `stats_flush_interval:` (Envoy's keys): where metrics are pushed, and
//! how often.

use std::net::SocketAddr;
use std::time::Duration;

use crate::decode::{join, seq, Cx, Fields};
use crate::{Address, Node};

/// Envoy's default flush interval.
pub const DEFAULT_STATS_FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// A sink's wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsSinkKind {
    /// Plain StatsD: flat names (`prefix.cluster.backend.upstream_rq_total:3|c`).
    Statsd,
    /// DogStatsD: tag-extracted names with `|#tag:value` tags.
    DogStatsd,
}

/// One entry of `stats_sinks`: `{ statsd: { address, prefix } }` or `{ dog_statsd: ... }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSinkConfig {
    pub kind: StatsSinkKind,
    /// Where the UDP datagrams go.
    pub address: SocketAddr,
    /// Put before every name, with a dot; Envoy's default, `envoy`.
    pub prefix: String,
}

pub const DEFAULT_STATSD_PREFIX: &str = "envoy";

pub fn decode_sinks(node: &Node, path: &str, cx: &mut Cx) -> Option<Vec<StatsSinkConfig>> {
    seq(node, path, cx, decode_sink)
}

fn decode_sink(node: &Node, path: &str, cx: &mut Cx) -> Option<StatsSinkConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let statsd = f.node("statsd");
    let dog = f.node("dog_statsd");
    let line = f.line();
    f.finish(cx);
    let (kind, key, body) = match (statsd, dog) {
        (Some(n), None) => (StatsSinkKind::Statsd, "statsd", n),
        (None, Some(n)) => (StatsSinkKind::DogStatsd, "dog_statsd", n),
        _ => {
            cx.error(
                line,
                path,
                "a sink is one of: { statsd: { address, prefix } }, { dog_statsd: { address, prefix } }",
            );
            return None;
        }
    };
    let path = join(path, key);
    let mut f = Fields::new(body, &path, cx)?;
    let address = f.required::<Address>("address", cx);
    let address_line = f.line_of("address");
    let prefix = f.or("prefix", DEFAULT_STATSD_PREFIX.to_string(), cx);
    f.finish(cx);
    let address = match address?.as_tcp() {
        Some(a) => a,
        None => {
            cx.error(
                address_line,
                &join(&path, "address"),
                "must be host:port (UDP)",
            );
            return None;
        }
    };
    Some(StatsSinkConfig {
        kind,
        address,
        prefix: prefix?,
    })
}
