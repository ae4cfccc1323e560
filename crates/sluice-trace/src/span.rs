//! A finished request as an OTLP span, tagged the way Envoy tags its spans so dashboards and
//! queries written for Envoy find the same attributes.
//!
//! The span's name is `<authority><path>` (query left out). Envoy names a span after the
//! route's `decorator` when there is one and otherwise after the direction (`ingress`, or
//! `egress <host>`); routes here have no decorator, and a span named `ingress` says nothing
//! in a trace view, so the name is what Envoy users usually get from Istio's decorator: where
//! the request went.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderName;
use sluice_observe::{Protocol, RequestRecord};

use crate::proto::{KeyValue, Span, SpanKind, Status, StatusCode};

/// Envoy's `max_path_tag_length` default: longer `http.url` values are cut.
const MAX_URL: usize = 256;

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

fn header(record: &RequestRecord, name: &'static str) -> Option<String> {
    record
        .request_header(&HeaderName::from_static(name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The span of a recorded request; `None` when the record has no trace.
pub fn span(record: &RequestRecord, node_id: &str) -> Option<Span> {
    let trace = record.trace.as_ref()?;
    let start = nanos(record.start_time);
    let end = start.saturating_add(
        u64::try_from(record.duration.unwrap_or(Duration::ZERO).as_nanos()).unwrap_or(u64::MAX),
    );
    let rpc = match &record.protocol {
        Protocol::Rpc(name) => Some(name),
        _ => None,
    };
    let error = match rpc {
        Some(_) => record.response_code.is_none() || record.failed,
        None => record.response_code.is_none_or(|c| c >= 500),
    } || !record.response_flags.is_empty();
    let (name, mut attributes) = match rpc {
        Some(system) => rpc_span(record, system),
        None => http_span(record),
    };
    attributes.splice(
        0..0,
        [
            KeyValue::new("component", "proxy"),
            KeyValue::new("node_id", node_id),
        ],
    );
    attributes.extend([
        KeyValue::new("request_size", record.bytes_received.to_string()),
        KeyValue::new("response_size", record.bytes_sent.to_string()),
        KeyValue::new("response_flags", record.response_flags.to_string()),
    ]);
    if let Some(id) = record.request_id.as_ref().and_then(|v| v.to_str().ok()) {
        attributes.push(KeyValue::new("guid:x-request-id", id));
    }
    if let Some(cluster) = &record.upstream_cluster {
        attributes.push(KeyValue::new("upstream_cluster", &**cluster));
        attributes.push(KeyValue::new("upstream_cluster.name", &**cluster));
    }
    if let Some(host) = &record.upstream_host {
        attributes.push(KeyValue::new("upstream_address", &**host));
    }
    if let Some(peer) = record.downstream_remote {
        attributes.push(KeyValue::new("peer.address", peer.to_string()));
    }
    if error {
        attributes.push(KeyValue::new("error", "true"));
    }
    Some(Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: trace.span_id.to_vec(),
        trace_state: header(record, "tracestate").unwrap_or_default(),
        parent_span_id: trace.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        status: Some(Status {
            message: if error {
                record.response_code_details.to_string()
            } else {
                String::new()
            },
            code: if error {
                StatusCode::Error
            } else {
                StatusCode::Unset
            } as i32,
        }),
    })
}

/// An RPC call's span: named `/<service>/<method>` and tagged with OpenTelemetry's `rpc.*`
/// names (Envoy traces no RPC protocol, so there is no Envoy naming to follow).
fn rpc_span(record: &RequestRecord, system: &str) -> (String, Vec<KeyValue>) {
    let mut name = record.path.to_string();
    cut(&mut name, MAX_URL);
    let mut attributes = vec![
        KeyValue::new("rpc.system", system),
        KeyValue::new("rpc.service", record.service.as_deref().unwrap_or_default()),
        KeyValue::new("rpc.method", record.method.as_str()),
    ];
    if let Some(code) = record.response_code {
        attributes.push(KeyValue::new("rpc.status_code", code.to_string()));
    }
    (name, attributes)
}

/// An HTTP request's span: named `<authority><path>` (query left out), with Envoy's tags.
fn http_span(record: &RequestRecord) -> (String, Vec<KeyValue>) {
    let path = record.path.split('?').next().unwrap_or_default();
    let mut name = format!("{}{path}", record.authority);
    cut(&mut name, MAX_URL);
    let scheme = header(record, "x-forwarded-proto").unwrap_or_else(|| "http".to_string());
    let mut url = format!("{scheme}://{}{}", record.authority, record.path);
    cut(&mut url, MAX_URL);
    let attributes = vec![
        KeyValue::new("http.url", url),
        KeyValue::new("http.method", record.method.as_str()),
        KeyValue::new("http.protocol", record.protocol.as_str()),
        KeyValue::new(
            "user_agent",
            header(record, "user-agent").unwrap_or_else(|| "-".to_string()),
        ),
        KeyValue::new(
            "http.status_code",
            record.response_code.unwrap_or(0).to_string(),
        ),
    ];
    (name, attributes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::Arc;

    use sluice_observe::{Protocol, ResponseFlags, TraceContext};

    use super::*;
    use crate::proto::any_value::Value;

    fn attr<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Value::StringValue(s) => Some(s.as_str()),
            })
    }

    fn record() -> RequestRecord {
        let mut r = RequestRecord::new(Protocol::Http11, Arc::from("web"));
        r.method = "GET".into();
        r.authority = "example.com".into();
        r.path = "/a/b?x=1".into();
        r.response_code = Some(200);
        r.duration = Some(Duration::from_millis(5));
        r.upstream_cluster = Some(Arc::from("backend"));
        r.upstream_host = Some("10.0.0.1:80".into());
        r.downstream_remote = Some("127.0.0.1:5000".parse().unwrap());
        r.request_id = Some(http::HeaderValue::from_static("abc"));
        r.request_headers
            .push((http::header::USER_AGENT, "curl/8".parse().unwrap()));
        r.trace = Some(TraceContext {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            sampled: true,
            foreign_trace_id: None,
        });
        r
    }

    #[test]
    fn tags_like_envoy() {
        let s = span(&record(), "node-1").unwrap();
        assert_eq!(s.name, "example.com/a/b");
        assert_eq!(s.trace_id, vec![1; 16]);
        assert_eq!(s.parent_span_id, vec![3; 8]);
        assert_eq!(s.kind, SpanKind::Server as i32);
        assert_eq!(s.end_time_unix_nano - s.start_time_unix_nano, 5_000_000);
        assert_eq!(attr(&s, "component"), Some("proxy"));
        assert_eq!(attr(&s, "node_id"), Some("node-1"));
        assert_eq!(attr(&s, "http.url"), Some("http://example.com/a/b?x=1"));
        assert_eq!(attr(&s, "http.status_code"), Some("200"));
        assert_eq!(attr(&s, "response_flags"), Some("-"));
        assert_eq!(attr(&s, "user_agent"), Some("curl/8"));
        assert_eq!(attr(&s, "guid:x-request-id"), Some("abc"));
        assert_eq!(attr(&s, "upstream_cluster"), Some("backend"));
        assert_eq!(attr(&s, "upstream_address"), Some("10.0.0.1:80"));
        assert_eq!(attr(&s, "peer.address"), Some("127.0.0.1:5000"));
        assert_eq!(attr(&s, "error"), None);
        assert_eq!(s.status.unwrap().code, StatusCode::Unset as i32);
    }

    #[test]
    fn errors_are_5xx_flags_or_no_response() {
        let mut r = record();
        r.response_code = Some(503);
        assert_eq!(attr(&span(&r, "n").unwrap(), "error"), Some("true"));
        r.response_code = Some(200);
        r.response_flags = ResponseFlags::UPSTREAM_CONNECTION_FAILURE;
        let s = span(&r, "n").unwrap();
        assert_eq!(attr(&s, "response_flags"), Some("UF"));
        assert_eq!(s.status.unwrap().code, StatusCode::Error as i32);
        r.response_flags = ResponseFlags::empty();
        r.response_code = None;
        assert_eq!(attr(&span(&r, "n").unwrap(), "error"), Some("true"));
        r.trace = None;
        assert!(span(&r, "n").is_none());
    }
}
