//! Active health checks of a cluster's hosts: what one check does (an HTTP request, a TCP
//! exchange, a gRPC `Health/Check` or an RPC protocol's heartbeat), how often it runs, and how many results in a row change
//! a host's health. The block is small and only clusters use it, so its decoding lives here too.

use std::time::Duration;

use crate::decode::{did_you_mean, join, keyword, Cx, Decode, Fields};
use crate::yaml::{Node, NodeKind};

/// A cluster's `health_check` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// What one check of one host does.
    pub probe: ProbeConfig,
    /// Time between checks of a host.
    pub interval: Duration,
    /// Up to this much is added at random to each wait, so hosts (and proxies) do not all
    /// check at the same instant.
    pub interval_jitter: Duration,
    /// The interval for hosts that are failing checks; `interval` when absent.
    pub unhealthy_interval: Option<Duration>,
    /// A check that has not succeeded by then has failed.
    pub timeout: Duration,
    /// Failures in a row that mark a healthy host unhealthy.
    pub unhealthy_threshold: u32,
    /// Successes in a row that mark an unhealthy host healthy.
    pub healthy_threshold: u32,
    pub line: usize,
}

impl HealthCheckConfig {
    /// How long to wait before checking again a host that is (or is not) healthy.
    pub fn interval_for(&self, healthy: bool) -> Duration {
        match self.unhealthy_interval {
            Some(d) if !healthy => d,
            _ => self.interval,
        }
    }
}

/// Exactly one of `http`, `tcp`, `grpc` or `heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeConfig {
    Http(HttpCheck),
    Tcp(TcpCheck),
    Grpc(GrpcCheck),
    Heartbeat(HeartbeatCheck),
}

impl ProbeConfig {
    pub const NAMES: [&'static str; 4] = ["http", "tcp", "grpc", "heartbeat"];

    pub fn name(&self) -> &'static str {
        match self {
            ProbeConfig::Http(_) => "http",
            ProbeConfig::Tcp(_) => "tcp",
            ProbeConfig::Grpc(_) => "grpc",
            ProbeConfig::Heartbeat(_) => "heartbeat",
        }
    }
}

/// An HTTP/1.1 request whose response status must be one of `expected_statuses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// The request target, such as `/healthz`.
    pub path: String,
    /// The `Host` header; the cluster's name when absent.
    pub host: Option<String>,
    pub method: HttpCheckMethod,
    /// Non-empty; a status passes when any range holds it.
    pub expected_statuses: Vec<StatusRange>,
}

/// The methods a health check may send (every standard one but CONNECT, which opens a tunnel
/// rather than asking for a status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpCheckMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Trace,
    Patch,
}

impl HttpCheckMethod {
    pub const NAMES: [&'static str; 8] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH",
    ];

    pub fn from_name(name: &str) -> Option<HttpCheckMethod> {
        let all = [
            HttpCheckMethod::Get,
            HttpCheckMethod::Head,
            HttpCheckMethod::Post,
            HttpCheckMethod::Put,
            HttpCheckMethod::Delete,
            HttpCheckMethod::Options,
            HttpCheckMethod::Trace,
            HttpCheckMethod::Patch,
        ];
        all.into_iter().find(|m| m.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Status codes `start..end` (end exclusive); a single code `200` is `200..201`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub start: u16,
    pub end: u16,
}

impl StatusRange {
    /// `200..300`: the default, any 2xx.
    pub const SUCCESS: StatusRange = StatusRange {
        start: 200,
        end: 300,
    };

    pub fn contains(&self, status: u16) -> bool {
        (self.start..self.end).contains(&status)
    }
}

/// Connect, optionally write `send`, then find every `receive` block in the reply, in order.
/// Both empty: a check that the connection opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TcpCheck {
    pub send: Vec<u8>,
    pub receive: Vec<Vec<u8>>,
}

/// `grpc.health.v1.Health/Check` over HTTP/2 without TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrpcCheck {
    /// The service asked about; empty asks about the server as a whole.
    pub service_name: String,
    /// The `:authority`; the cluster's name when absent.
    pub authority: Option<String>,
}

/// A multiplexed RPC protocol's own heartbeat (Bolt's, Dubbo's heartbeat event): the host is
/// healthy when it answers one with success. Checks the RPC server itself, not just its port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatCheck {
    /// A registered protocol that has a heartbeat (`bolt`, `dubbo`).
    pub protocol: String,
}

impl Decode for HealthCheckConfig {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let http = f.optional::<HttpCheck>("http", cx);
        let tcp = f.optional::<TcpCheck>("tcp", cx);
        let grpc = f.optional::<GrpcCheck>("grpc", cx);
        let heartbeat = f.optional::<HeartbeatCheck>("heartbeat", cx);
        let mut timing = |key, default: Option<Duration>, cx: &mut Cx| {
            let line = f.line_of(key);
            let value = match default {
                Some(d) => f.or(key, d, cx).map(Some),
                None => f.optional::<Duration>(key, cx).ok(),
            };
            (value, line)
        };
        let (interval, interval_line) = timing("interval", Some(Duration::from_secs(5)), cx);
        let (jitter, _) = timing("interval_jitter", Some(Duration::ZERO), cx);
        let (unhealthy_interval, unhealthy_line) = timing("unhealthy_interval", None, cx);
        let (timeout, timeout_line) = timing("timeout", Some(Duration::from_secs(1)), cx);
        let unhealthy = f.or("unhealthy_threshold", 3u32, cx);
        let unhealthy_threshold_line = f.line_of("unhealthy_threshold");
        let healthy = f.or("healthy_threshold", 2u32, cx);
        let healthy_threshold_line = f.line_of("healthy_threshold");
        f.finish(cx);

        let at = |key| join(path, key);
        let interval = at_least_1ms(interval, interval_line, &at("interval"), cx);
        let timeout = at_least_1ms(timeout, timeout_line, &at("timeout"), cx);
        let unhealthy_interval = at_least_1ms(
            unhealthy_interval,
            unhealthy_line,
            &at("unhealthy_interval"),
            cx,
        );
        let unhealthy = at_least_one(
            unhealthy,
            unhealthy_threshold_line,
            &at("unhealthy_threshold"),
            cx,
        );
        let healthy = at_least_one(
            healthy,
            healthy_threshold_line,
            &at("healthy_threshold"),
            cx,
        );
        let probe = one_probe(node, path, http, tcp, grpc, heartbeat, cx);
        Some(HealthCheckConfig {
            probe: probe?,
            interval: interval??,
            interval_jitter: jitter??,
            unhealthy_interval: unhealthy_interval?,
            timeout: timeout??,
            unhealthy_threshold: unhealthy?,
            healthy_threshold: healthy?,
            line: node.line,
        })
    }
}

type Decoded<T> = Result<Option<T>, crate::decode::Reported>;

/// The one probe written; an error when there are none or several.
fn one_probe(
    node: &Node,
    path: &str,
    http: Decoded<HttpCheck>,
    tcp: Decoded<TcpCheck>,
    grpc: Decoded<GrpcCheck>,
    heartbeat: Decoded<HeartbeatCheck>,
    cx: &mut Cx,
) -> Option<ProbeConfig> {
    let written: Vec<&str> = [
        is_written(&http),
        is_written(&tcp),
        is_written(&grpc),
        is_written(&heartbeat),
    ]
    .iter()
    .zip(ProbeConfig::NAMES)
    .filter(|(p, _)| **p)
    .map(|(_, name)| name)
    .collect();
    match written.len() {
        0 => {
            cx.error(
                node.line,
                path,
                "needs one of http, tcp, grpc or heartbeat (`tcp: {}` checks only that a connection opens)",
            );
            None
        }
        1 => match (http, tcp, grpc, heartbeat) {
            (Ok(Some(h)), _, _, _) => Some(ProbeConfig::Http(h)),
            (_, Ok(Some(t)), _, _) => Some(ProbeConfig::Tcp(t)),
            (_, _, Ok(Some(g)), _) => Some(ProbeConfig::Grpc(g)),
            (_, _, _, Ok(Some(b))) => Some(ProbeConfig::Heartbeat(b)),
            // Written but invalid: already reported.
            _ => None,
        },
        _ => {
            cx.error(
                node.line,
                path,
                format!(
                    "has {}; a health check is exactly one of http, tcp, grpc or heartbeat",
                    written.join(" and ")
                ),
            );
            None
        }
    }
}

/// Present, valid or not.
fn is_written<T>(decoded: &Decoded<T>) -> bool {
    !matches!(decoded, Ok(None))
}

/// Zero would check in a busy loop (interval) or fail every check (timeout).
fn at_least_1ms(
    value: Option<Option<Duration>>,
    line: usize,
    path: &str,
    cx: &mut Cx,
) -> Option<Option<Duration>> {
    match value? {
        Some(d) if d < Duration::from_millis(1) => {
            cx.error(line, path, format!("must be at least 1ms, found {d:?}"));
            None
        }
        v => Some(v),
    }
}

fn at_least_one(value: Option<u32>, line: usize, path: &str, cx: &mut Cx) -> Option<u32> {
    match value? {
        0 => {
            cx.error(line, path, "must be at least 1, found 0");
            None
        }
        n => Some(n),
    }
}

impl Decode for HttpCheck {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let target_line = f.line_of("path");
        let target = f.required::<String>("path", cx);
        let host_line = f.line_of("host");
        let host = f.optional::<String>("host", cx).ok();
        let method = f.or("method", HttpCheckMethod::Get, cx);
        let statuses_line = f.line_of("expected_statuses");
        let statuses = f.or("expected_statuses", vec![StatusRange::SUCCESS], cx);
        f.finish(cx);
        let target = target.filter(|t| {
            let ok = t.starts_with('/') && t.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                cx.error(
                    target_line,
                    &join(path, "path"),
                    format!("must be a path such as /healthz: starting with /, in ASCII, without spaces or control characters; found \"{t}\""),
                );
            }
            ok
        });
        let host = host.filter(|h| {
            h.as_deref()
                .is_none_or(|h| header_token(h, host_line, &join(path, "host"), cx))
        });
        let statuses = statuses.filter(|s| {
            if s.is_empty() {
                cx.error(
                    statuses_line,
                    &join(path, "expected_statuses"),
                    "must list at least one status (leave it out for any 2xx)",
                );
            }
            !s.is_empty()
        });
        Some(HttpCheck {
            path: target?,
            host: host?,
            method: method?,
            expected_statuses: statuses?,
        })
    }
}

/// A `Host` or `:authority` value: non-empty, visible ASCII (it goes into a request as is).
fn header_token(value: &str, line: usize, path: &str, cx: &mut Cx) -> bool {
    let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic());
    if !ok {
        cx.error(
            line,
            path,
            format!("must be a host name such as backend.local, in ASCII, without spaces or control characters; found \"{value}\""),
        );
    }
    ok
}

impl Decode for HttpCheckMethod {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        keyword(
            node,
            path,
            cx,
            "health check method",
            &HttpCheckMethod::NAMES,
            HttpCheckMethod::from_name,
        )
    }
}

impl Decode for StatusRange {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        if let NodeKind::Map(_) = node.kind {
            let mut f = Fields::new(node, path, cx)?;
            let start = f.required::<u16>("start", cx);
            let end = f.required::<u16>("end", cx);
            f.finish(cx);
            let (start, end) = (start?, end?);
            if 100 <= start && start < end && end <= 600 {
                return Some(StatusRange { start, end });
            }
            cx.error(
                node.line,
                path,
                format!("needs 100 <= start < end <= 600 (end is exclusive), found start {start} and end {end}"),
            );
            return None;
        }
        let code = u16::decode(node, path, cx)?;
        if (100..=599).contains(&code) {
            return Some(StatusRange {
                start: code,
                end: code + 1,
            });
        }
        cx.error(
            node.line,
            path,
            format!("must be a status code from 100 to 599, or {{ start: 200, end: 300 }}; found {code}"),
        );
        None
    }
}

impl Decode for TcpCheck {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let send = f.optional::<Payload>("send", cx).ok();
        let receive = f.or("receive", Vec::<Payload>::new(), cx);
        f.finish(cx);
        Some(TcpCheck {
            send: send?.map(|p| p.0).unwrap_or_default(),
            receive: receive?.into_iter().map(|p| p.0).collect(),
        })
    }
}

/// `{ text: "50494e47" }` (hex bytes) or `{ string: "PING" }` (the text itself).
struct Payload(Vec<u8>);

impl Decode for Payload {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let text_line = f.line_of("text");
        let text = f.optional::<String>("text", cx);
        let string = f.optional::<String>("string", cx);
        f.finish(cx);
        let bytes = match (text.ok()?, string.ok()?) {
            (Some(hex), None) => match decode_hex(&hex) {
                Some(bytes) => bytes,
                None => {
                    cx.error(
                        text_line,
                        &join(path, "text"),
                        format!("must be bytes in hex, two digits each (\"50494e47\" is PING); found \"{hex}\""),
                    );
                    return None;
                }
            },
            (None, Some(s)) => s.into_bytes(),
            (Some(_), Some(_)) | (None, None) => {
                cx.error(
                    node.line,
                    path,
                    "needs exactly one of text (hex bytes) or string (the bytes as written)",
                );
                return None;
            }
        };
        if bytes.is_empty() {
            cx.error(node.line, path, "must not be empty");
            return None;
        }
        Some(Payload(bytes))
    }
}

/// Hex digit pairs, either case; `None` on an odd length or a non-hex character.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16);
    digits
        .chunks_exact(2)
        .map(|pair| Some((nibble(pair[0])? * 16 + nibble(pair[1])?) as u8))
        .collect()
}

impl Decode for GrpcCheck {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let service_name = f.or("service_name", String::new(), cx);
        let authority_line = f.line_of("authority");
        let authority = f.optional::<String>("authority", cx).ok();
        f.finish(cx);
        let authority = authority.filter(|a| {
            a.as_deref()
                .is_none_or(|a| header_token(a, authority_line, &join(path, "authority"), cx))
        });
        Some(GrpcCheck {
            service_name: service_name?,
            authority: authority?,
        })
    }
}

impl Decode for HeartbeatCheck {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let protocol_line = f.line_of("protocol");
        let protocol = f.required::<String>("protocol", cx);
        f.finish(cx);
        let protocol = protocol?;
        let at = join(path, "protocol");
        let registry = sluice_xprotocol::protocols();
        match registry.get(&protocol) {
            Some(p) if p.heartbeat(1).is_some() => Some(HeartbeatCheck { protocol }),
            Some(_) => {
                cx.error(
                    protocol_line,
                    &at,
                    format!("protocol \"{protocol}\" has no heartbeat; use tcp: {{}} to check that the port opens"),
                );
                None
            }
            None => {
                let names: Vec<&str> = registry
                    .all()
                    .iter()
                    .filter(|p| p.heartbeat(1).is_some())
                    .map(|p| p.name())
                    .collect();
                let hint = did_you_mean(&protocol, names.iter().copied());
                cx.error(
                    protocol_line,
                    &at,
                    format!(
                        "unknown protocol \"{protocol}\"{hint}; expected one of: {}",
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    const PATH: &str = "clusters[0].health_check";

    fn decode(yaml: &str) -> Result<HealthCheckConfig, Vec<String>> {
        let doc = parse(yaml).unwrap();
        let mut cx = Cx::default();
        let config = HealthCheckConfig::decode(&doc, PATH, &mut cx);
        match config {
            Some(c) if !cx.has_errors() => Ok(c),
            _ => Err(cx.diagnostics.iter().map(|d| d.to_string()).collect()),
        }
    }

    fn error(yaml: &str) -> String {
        let errors = decode(yaml).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn the_contract_line() {
        let c = decode(
            "{ http: { path: /healthz, expected_statuses: [200] }, interval: 1s, timeout: 500ms, unhealthy_threshold: 2, healthy_threshold: 1 }",
        )
        .unwrap();
        assert_eq!(
            c.probe,
            ProbeConfig::Http(HttpCheck {
                path: "/healthz".into(),
                host: None,
                method: HttpCheckMethod::Get,
                expected_statuses: vec![StatusRange {
                    start: 200,
                    end: 201
                }],
            })
        );
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!((c.unhealthy_threshold, c.healthy_threshold), (2, 1));
        assert_eq!(c.interval_jitter, Duration::ZERO);
        assert_eq!(c.unhealthy_interval, None);
    }

    #[test]
    fn in_a_cluster() {
        let src = "clusters:\n  - name: api\n    endpoints: [{ address: 127.0.0.1:80 }]\n    health_check: { http: { path: /healthz, expected_statuses: [200] }, interval: 1s, timeout: 500ms, unhealthy_threshold: 2, healthy_threshold: 1 }\n";
        let config = crate::load_str(src, "t.yaml", &crate::Registry::default()).unwrap();
        let hc = config.clusters[0].health_check.as_ref().unwrap();
        assert_eq!(hc.probe.name(), "http");
        let src = "clusters:\n  - name: api\n    health_check: { tcp: {}, interval: 0s }\n";
        let err = crate::load_str(src, "t.yaml", &crate::Registry::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml:3: clusters[0].health_check.interval: must be at least 1ms, found 0ns"
        );
    }

    #[test]
    fn defaults() {
        let c = decode("{ http: { path: /, method: HEAD, host: api.local } }").unwrap();
        assert_eq!(c.interval, Duration::from_secs(5));
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!((c.unhealthy_threshold, c.healthy_threshold), (3, 2));
        assert_eq!(c.interval_for(false), Duration::from_secs(5));
        let ProbeConfig::Http(http) = c.probe else {
            panic!()
        };
        assert_eq!(http.expected_statuses, vec![StatusRange::SUCCESS]);
        assert_eq!(http.method, HttpCheckMethod::Head);
        assert_eq!(http.host.as_deref(), Some("api.local"));
    }

    #[test]
    fn timing() {
        let c =
            decode("{ tcp: {}, interval: 2s, interval_jitter: 100ms, unhealthy_interval: 10s }")
                .unwrap();
        assert_eq!(c.interval_jitter, Duration::from_millis(100));
        assert_eq!(c.interval_for(true), Duration::from_secs(2));
        assert_eq!(c.interval_for(false), Duration::from_secs(10));
        assert_eq!(c.probe, ProbeConfig::Tcp(TcpCheck::default()));
    }

    #[test]
    fn status_ranges() {
        let c =
            decode("{ http: { path: /x, expected_statuses: [204, { start: 300, end: 400 }] } }")
                .unwrap();
        let ProbeConfig::Http(http) = c.probe else {
            panic!()
        };
        let r = &http.expected_statuses;
        assert!(r[0].contains(204) && !r[0].contains(205));
        assert!(r[1].contains(300) && r[1].contains(399) && !r[1].contains(400));
    }

    #[test]
    fn tcp_payloads() {
        let c = decode(
            "{ tcp: { send: { text: 50494E470d0a }, receive: [{ string: PO }, { text: '4e47' }] } }",
        )
        .unwrap();
        assert_eq!(
            c.probe,
            ProbeConfig::Tcp(TcpCheck {
                send: b"PING\r\n".to_vec(),
                receive: vec![b"PO".to_vec(), b"NG".to_vec()],
            })
        );
        let c = decode("{ tcp: { send: { string: \"PING\\r\\n\" } } }").unwrap();
        let ProbeConfig::Tcp(tcp) = c.probe else {
            panic!()
        };
        assert_eq!(tcp.send, b"PING\r\n");
    }

    #[test]
    fn grpc() {
        let c = decode("{ grpc: {} }").unwrap();
        assert_eq!(c.probe, ProbeConfig::Grpc(GrpcCheck::default()));
        let c = decode("{ grpc: { service_name: pkg.Svc, authority: api } }").unwrap();
        assert_eq!(
            c.probe,
            ProbeConfig::Grpc(GrpcCheck {
                service_name: "pkg.Svc".into(),
                authority: Some("api".into()),
            })
        );
    }

    #[test]
    fn heartbeat() {
        for protocol in ["bolt", "dubbo"] {
            let c = decode(&format!("{{ heartbeat: {{ protocol: {protocol} }} }}")).unwrap();
            assert_eq!(
                c.probe,
                ProbeConfig::Heartbeat(HeartbeatCheck {
                    protocol: protocol.into()
                })
            );
        }
        assert_eq!(
            error("{ heartbeat: { protocol: blot } }"),
            "1: clusters[0].health_check.heartbeat.protocol: unknown protocol \"blot\" (did you mean \"bolt\"?); expected one of: bolt, dubbo"
        );
        assert_eq!(
            error("{ heartbeat: {} }"),
            "1: clusters[0].health_check.heartbeat: missing required field \"protocol\""
        );
        assert_eq!(
            error("{ heartbeat: { protocol: bolt }, tcp: {} }"),
            "1: clusters[0].health_check: has tcp and heartbeat; a health check is exactly one of http, tcp, grpc or heartbeat"
        );
    }

    #[test]
    fn probe_kind_errors() {
        assert_eq!(
            error("{ interval: 1s }"),
            "1: clusters[0].health_check: needs one of http, tcp, grpc or heartbeat (`tcp: {}` checks only that a connection opens)"
        );
        assert_eq!(
            error("{ tcp: {}, grpc: {} }"),
            "1: clusters[0].health_check: has tcp and grpc; a health check is exactly one of http, tcp, grpc or heartbeat"
        );
        assert_eq!(
            error("{ htp: { path: /x }, tcp: {} }"),
            "1: clusters[0].health_check.htp: unknown field \"htp\" (did you mean \"http\"?)"
        );
    }

    #[test]
    fn http_errors() {
        assert_eq!(
            error("{ http: {} }"),
            "1: clusters[0].health_check.http: missing required field \"path\""
        );
        assert_eq!(
            error("{ http: { path: healthz } }"),
            "1: clusters[0].health_check.http.path: must be a path such as /healthz: starting with /, in ASCII, without spaces or control characters; found \"healthz\""
        );
        assert_eq!(
            error("{ http: { path: '/a b' } }"),
            "1: clusters[0].health_check.http.path: must be a path such as /healthz: starting with /, in ASCII, without spaces or control characters; found \"/a b\""
        );
        assert_eq!(
            error("{ http: { path: /, method: GETT } }"),
            "1: clusters[0].health_check.http.method: unknown health check method \"GETT\" (did you mean \"GET\"?); expected one of: GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH"
        );
        assert_eq!(
            error("{ http: { path: /, host: 'a b' } }"),
            "1: clusters[0].health_check.http.host: must be a host name such as backend.local, in ASCII, without spaces or control characters; found \"a b\""
        );
        assert_eq!(
            error("{ http: { path: /, expected_statuses: [] } }"),
            "1: clusters[0].health_check.http.expected_statuses: must list at least one status (leave it out for any 2xx)"
        );
    }

    #[test]
    fn status_errors() {
        assert_eq!(
            error("{ http: { path: /, expected_statuses: [600] } }"),
            "1: clusters[0].health_check.http.expected_statuses[0]: must be a status code from 100 to 599, or { start: 200, end: 300 }; found 600"
        );
        assert_eq!(
            error("{ http: { path: /, expected_statuses: [200, { start: 300, end: 300 }] } }"),
            "1: clusters[0].health_check.http.expected_statuses[1]: needs 100 <= start < end <= 600 (end is exclusive), found start 300 and end 300"
        );
        assert_eq!(
            error("{ http: { path: /, expected_statuses: [{ start: 200 }] } }"),
            "1: clusters[0].health_check.http.expected_statuses[0]: missing required field \"end\""
        );
        assert_eq!(
            error("{ http: { path: /, expected_statuses: [ok] } }"),
            "1: clusters[0].health_check.http.expected_statuses[0]: expected a whole number from 0 to 65535, found \"ok\""
        );
    }

    #[test]
    fn payload_errors() {
        assert_eq!(
            error("{ tcp: { send: { text: 'abc' } } }"),
            "1: clusters[0].health_check.tcp.send.text: must be bytes in hex, two digits each (\"50494e47\" is PING); found \"abc\""
        );
        assert_eq!(
            error("{ tcp: { send: { text: zz } } }"),
            "1: clusters[0].health_check.tcp.send.text: must be bytes in hex, two digits each (\"50494e47\" is PING); found \"zz\""
        );
        assert_eq!(
            error("{ tcp: { receive: [{ text: '00', string: x }] } }"),
            "1: clusters[0].health_check.tcp.receive[0]: needs exactly one of text (hex bytes) or string (the bytes as written)"
        );
        assert_eq!(
            error("{ tcp: { send: { string: '' } } }"),
            "1: clusters[0].health_check.tcp.send: must not be empty"
        );
        assert_eq!(
            error("{ tcp: { receive: { string: x } } }"),
            "1: clusters[0].health_check.tcp.receive: expected a list, found a mapping"
        );
    }

    #[test]
    fn timing_errors() {
        let yaml = "tcp: {}\ninterval: 0s\ntimeout: 0ms\nunhealthy_interval: 0s\nunhealthy_threshold: 0\nhealthy_threshold: 0\ninterval_jitter: soon\n";
        assert_eq!(
            decode(yaml).unwrap_err(),
            vec![
                "7: clusters[0].health_check.interval_jitter: invalid duration \"soon\": expected a number and a unit (ms, s, m, h), e.g. 250ms, 5s, 1m",
                "2: clusters[0].health_check.interval: must be at least 1ms, found 0ns",
                "3: clusters[0].health_check.timeout: must be at least 1ms, found 0ns",
                "4: clusters[0].health_check.unhealthy_interval: must be at least 1ms, found 0ns",
                "5: clusters[0].health_check.unhealthy_threshold: must be at least 1, found 0",
                "6: clusters[0].health_check.healthy_threshold: must be at least 1, found 0",
            ]
        );
    }
}
