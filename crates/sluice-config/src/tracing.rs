//! `tracing:`: the top-level block names the one OTLP exporter every listener's spans go to;
//! the block of the same name on `http_proxy` turns spans on for that listener.

use std::time::Duration;

use crate::decode::{in_range, join, keyword, seq, Cx, Decode, Fields};
use crate::yaml::Node;
use crate::Address;

/// The top-level `tracing:` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracingConfig {
    pub otlp: OtlpTarget,
    /// The resource's `service.name`; defaults to the node's cluster, else `sluice`.
    pub service_name: String,
    /// An export carries at most this many spans; this many waiting trigger one at once.
    pub max_batch: u32,
    /// Waiting spans are exported at least this often.
    pub flush_interval: Duration,
    /// Spans waiting for export; more are dropped (and counted).
    pub queue_size: u32,
    /// One export's deadline.
    pub timeout: Duration,
}

pub const DEFAULT_SERVICE_NAME: &str = "sluice";
pub const DEFAULT_MAX_BATCH: u32 = 512;
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_QUEUE_SIZE: u32 = 2048;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where OTLP goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtlpTarget {
    /// OTLP/gRPC (`TraceService/Export`), plaintext HTTP/2 to `host:port` or `unix:/path`.
    Grpc(Address),
    /// OTLP/HTTP with protobuf bodies, `POST` to this URL.
    Http(HttpUrl),
}

/// A plain `http://host[:port][/path]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// The path, `/v1/traces` when the URL has none.
    pub path: String,
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, String> {
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some(("https", _)) => {
                return Err(format!(
                    "\"{text}\": https is not supported for OTLP/HTTP; use http:// or a local collector"
                ))
            }
            _ => return Err(format!("\"{text}\": expected a URL such as http://127.0.0.1:4318/v1/traces")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/v1/traces"),
        };
        let bad = || format!("\"{text}\": invalid host or port");
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            match after.strip_prefix(':') {
                Some(p) => (host, p.parse().map_err(|_| bad())?),
                None if after.is_empty() => (host, 80),
                None => return Err(bad()),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
                None => (authority, 80),
            }
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b));
        if !host_ok || port == 0 || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(bad());
        }
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// The `tracing:` block of `http_proxy`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerTracing {
    /// Envoy's `random_sampling`: the percentage of requests without a client's decision
    /// that are recorded.
    pub random_sampling: f64,
    /// Read in this order (the first valid one wins); every one is written upstream.
    pub propagation: Vec<Propagation>,
}

pub const DEFAULT_RANDOM_SAMPLING: f64 = 100.0;

/// A trace-context header format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    W3c,
    B3,
    B3Single,
    Sw8,
}

impl Propagation {
    pub const NAMES: [&'static str; 4] = ["w3c", "b3", "b3_single", "sw8"];

    fn from_name(name: &str) -> Option<Propagation> {
        match name {
            "w3c" => Some(Propagation::W3c),
            "b3" => Some(Propagation::B3),
            "b3_single" => Some(Propagation::B3Single),
            "sw8" => Some(Propagation::Sw8),
            _ => None,
        }
    }
}

/// Decodes the top-level block; `default_service` is the node's cluster or `sluice`.
pub fn decode(
    node: &Node,
    path: &str,
    default_service: &str,
    cx: &mut Cx,
) -> Option<TracingConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let otlp = match f.node("otlp") {
        Some(n) => decode_otlp(n, &join(path, "otlp"), cx),
        None => {
            cx.error(
                f.line(),
                path,
                "missing required field \"otlp\" (grpc: ADDRESS or http: URL)",
            );
            None
        }
    };
    let service_name = f.or("service_name", default_service.to_string(), cx);
    let service_line = f.line_of("service_name");
    let max_batch = f.or("max_batch", DEFAULT_MAX_BATCH, cx);
    let batch_line = f.line_of("max_batch");
    let flush_interval = f.or("flush_interval", DEFAULT_FLUSH_INTERVAL, cx);
    let flush_line = f.line_of("flush_interval");
    let queue_size = f.or("queue_size", DEFAULT_QUEUE_SIZE, cx);
    let queue_line = f.line_of("queue_size");
    let timeout = f.or("timeout", DEFAULT_TIMEOUT, cx);
    let timeout_line = f.line_of("timeout");
    f.finish(cx);
    if service_name.as_deref() == Some("") {
        cx.error(service_line, &join(path, "service_name"), "cannot be empty");
    }
    let max_batch = in_range(
        max_batch,
        1..=65_536,
        batch_line,
        &join(path, "max_batch"),
        cx,
    );
    let queue_size = in_range(
        queue_size,
        1..=1_048_576,
        queue_line,
        &join(path, "queue_size"),
        cx,
    );
    for (value, line, key) in [
        (flush_interval, flush_line, "flush_interval"),
        (timeout, timeout_line, "timeout"),
    ] {
        if value.is_some_and(|d| d.is_zero()) {
            cx.error(line, &join(path, key), "must be more than 0s");
            return None;
        }
    }
    if let (Some(batch), Some(queue)) = (max_batch, queue_size) {
        if queue < batch {
            cx.error(
                queue_line,
                &join(path, "queue_size"),
                format!("must be at least max_batch ({batch}), found {queue}"),
            );
            return None;
        }
    }
    Some(TracingConfig {
        otlp: otlp?,
        service_name: service_name.filter(|s| !s.is_empty())?,
        max_batch: max_batch?,
        flush_interval: flush_interval?,
        queue_size: queue_size?,
        timeout: timeout?,
    })
}

fn decode_otlp(node: &Node, path: &str, cx: &mut Cx) -> Option<OtlpTarget> {
    let mut f = Fields::new(node, path, cx)?;
    let grpc = f.node("grpc");
    let http = f.node("http");
    f.finish(cx);
    match (grpc, http) {
        (Some(n), None) => Address::decode(n, &join(path, "grpc"), cx).map(OtlpTarget::Grpc),
        (None, Some(n)) => {
            let text = String::decode(n, &join(path, "http"), cx)?;
            match HttpUrl::parse(&text) {
                Ok(url) => Some(OtlpTarget::Http(url)),
                Err(e) => {
                    cx.error(n.line, &join(path, "http"), e);
                    None
                }
            }
        }
        (None, None) => {
            cx.error(
                node.line,
                path,
                "needs one of: grpc (an address), http (a URL)",
            );
            None
        }
        (Some(_), Some(n)) => {
            cx.error(n.line, path, "use only one of: grpc, http");
            None
        }
    }
}

/// Decodes `http_proxy`'s block, noting its use so a config without the top-level exporter
/// is refused.
pub fn decode_listener(node: &Node, path: &str, cx: &mut Cx) -> Option<ListenerTracing> {
    cx.tracing_uses.push((node.line, path.to_string()));
    let mut f = Fields::new(node, path, cx)?;
    let sampling = match f.node("random_sampling") {
        Some(n) => crate::decode::percent(n, &join(path, "random_sampling"), cx),
        None => Some(DEFAULT_RANDOM_SAMPLING),
    };
    let propagation = match f.node("propagation") {
        Some(n) => seq(n, &join(path, "propagation"), cx, |n, p, cx| {
            keyword(
                n,
                p,
                cx,
                "propagation format",
                &Propagation::NAMES,
                Propagation::from_name,
            )
        }),
        None => Some(vec![Propagation::W3c]),
    };
    f.finish(cx);
    let mut propagation = propagation?;
    let mut seen = Vec::new();
    propagation.retain(|p| {
        let new = !seen.contains(p);
        seen.push(*p);
        new
    });
    Some(ListenerTracing {
        random_sampling: sampling?,
        propagation,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::yaml::parse;

    fn top(src: &str) -> (Option<TracingConfig>, Vec<String>) {
        let doc = parse(src).unwrap();
        let mut cx = Cx::default();
        let t = decode(&doc, "tracing", "sluice", &mut cx);
        (t, cx.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn top_level_defaults_and_both_transports() {
        let (t, errs) = top("otlp: { grpc: \"127.0.0.1:4317\" }\n");
        assert!(errs.is_empty(), "{errs:?}");
        let t = t.unwrap();
        assert_eq!(t.service_name, "sluice");
        assert_eq!(t.max_batch, 512);
        assert_eq!(t.flush_interval, Duration::from_secs(1));
        let (t, _) = top("otlp: { http: \"http://collector.local:4318\" }\nservice_name: edge\n");
        let t = t.unwrap();
        assert_eq!(
            t.otlp,
            OtlpTarget::Http(HttpUrl {
                host: "collector.local".into(),
                port: 4318,
                path: "/v1/traces".into()
            })
        );
        assert_eq!(t.service_name, "edge");
    }

    #[test]
    fn top_level_errors_name_the_path() {
        let (_, errs) = top("otlp: { grpc: \"127.0.0.1:4317\", http: \"http://a/\" }\n");
        assert_eq!(errs, ["1: tracing.otlp: use only one of: grpc, http"]);
        let (_, errs) = top("otlp: { http: \"https://a/v1/traces\" }\n");
        assert!(
            errs[0].starts_with(
                "1: tracing.otlp.http: \"https://a/v1/traces\": https is not supported"
            ),
            "{errs:?}"
        );
        let (_, errs) = top("otlp: { grpc: \"127.0.0.1:4317\" }\nmax_batch: 100\nqueue_size: 10\n");
        assert_eq!(
            errs,
            ["3: tracing.queue_size: must be at least max_batch (100), found 10"]
        );
        let (_, errs) = top("service_name: x\n");
        assert!(
            errs[0].contains("missing required field \"otlp\""),
            "{errs:?}"
        );
        let (_, errs) = top("otlp: { grpc: \"127.0.0.1:4317\" }\nflush_interval: 0s\n");
        assert_eq!(errs, ["2: tracing.flush_interval: must be more than 0s"]);
    }

    #[test]
    fn listener_block() {
        let doc = parse("random_sampling: 0.5\npropagation: [b3, w3c, b3]\n").unwrap();
        let mut cx = Cx::default();
        let t = decode_listener(&doc, "l.tracing", &mut cx).unwrap();
        assert_eq!(t.random_sampling, 0.5);
        assert_eq!(t.propagation, [Propagation::B3, Propagation::W3c]);
        assert_eq!(cx.tracing_uses, [(1, "l.tracing".to_string())]);
        let doc = parse("random_sampling: 101\npropagation: [w3d]\n").unwrap();
        let mut cx = Cx::default();
        assert!(decode_listener(&doc, "t", &mut cx).is_none());
        let errs: Vec<String> = cx.diagnostics.iter().map(|d| d.to_string()).collect();
        assert_eq!(
            errs[0],
            "1: t.random_sampling: expected a percentage from 0 to 100, found \"101\""
        );
        assert!(
            errs[1].starts_with(
                "2: t.propagation[0]: unknown propagation format \"w3d\" (did you mean \"w3c\"?)"
            ),
            "{errs:?}"
        );
        let doc = parse("{}").unwrap();
        let t = decode_listener(&doc, "t", &mut Cx::default()).unwrap();
        assert_eq!(t.random_sampling, 100.0);
        assert_eq!(t.propagation, [Propagation::W3c]);
    }

    #[test]
    fn urls() {
        assert_eq!(HttpUrl::parse("http://[::1]:4318/x").unwrap().host, "::1");
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:4318/v1/traces")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:4318/v1/traces"
        );
        for bad in [
            "127.0.0.1:4318",
            "http://:4318/",
            "http://a:0/",
            "http://a:x/",
            "http://a b/",
            "ftp://a/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
