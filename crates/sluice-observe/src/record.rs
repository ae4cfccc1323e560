//! One request's story, as access logs and traces tell it (Envoy's `StreamInfo`).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{ResponseFlags, Text};

/// The protocol the client spoke, as `%PROTOCOL%` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    Http10,
    Http11,
    Http2,
    /// A TCP proxy connection (one record per connection).
    Tcp,
    /// An RPC protocol by its registered name (`bolt`, `dubbo`).
    Rpc(Arc<str>),
}

impl Protocol {
    pub fn from_http(version: http::Version) -> Protocol {
        match version {
            http::Version::HTTP_2 => Protocol::Http2,
            http::Version::HTTP_10 | http::Version::HTTP_09 => Protocol::Http10,
            _ => Protocol::Http11,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
            Protocol::Tcp => "TCP",
            Protocol::Rpc(name) => name,
        }
    }
}

/// Everything known about one request when it ends. Filled by the protocol handler as the
/// request moves along; read by access logs (`%VARIABLE%`s) and tracing (span tags).
///
/// For RPC protocols `method` is the RPC method and `path` is `/<service>/<method>`, as gRPC
/// spells it, so one access-log format reads for both.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Wall-clock start, for `%START_TIME%`.
    pub start_time: SystemTime,
    /// Monotonic start, for durations.
    pub started: Instant,
    pub protocol: Protocol,
    /// The listener's name.
    pub listener: Arc<str>,
    pub downstream_remote: Option<SocketAddr>,
    pub downstream_local: Option<SocketAddr>,
    /// The TLS SNI the client sent (`%REQUESTED_SERVER_NAME%`).
    pub requested_server_name: Option<Arc<str>>,
    /// The client certificate's first URI SAN (`%DOWNSTREAM_PEER_URI_SAN%`).
    pub downstream_peer_uri_san: Option<Arc<str>>,
    pub method: Text,
    /// `http` or `https` (`:scheme`); `None` for protocols without one.
    pub scheme: Option<&'static str>,
    pub authority: Text,
    /// Path and query as the client sent them (`:path`).
    pub path: Text,
    /// The RPC service, for RPC protocols.
    pub service: Option<Arc<str>>,
    /// The request headers some consumer asked for (see [`RequestRecord::capture_request`]).
    pub request_headers: Headers,
    /// `x-request-id` as sent upstream (made by the proxy when the client sent none).
    pub request_id: Option<HeaderValue>,
    pub route_name: Option<Arc<str>>,
    pub upstream_cluster: Option<Arc<str>>,
    /// The last upstream host tried, as `host:port`.
    pub upstream_host: Option<Arc<str>>,
    /// How many tries were sent upstream (retries included).
    pub upstream_attempts: u32,
    /// Why the last upstream try failed, when it did.
    pub upstream_failure_reason: Option<String>,
    /// The status sent to the client; `None` when none was (client gone, connection reset).
    pub response_code: Option<u16>,
    /// The response reports a failure in the protocol's own terms (an RPC status other than
    /// success); HTTP's is read from `response_code` instead.
    pub failed: bool,
    /// Why that status (`via_upstream`, `route_not_found`, ...), Envoy's
    /// `%RESPONSE_CODE_DETAILS%`.
    pub response_code_details: Cow<'static, str>,
    pub response_flags: ResponseFlags,
    /// The response headers some consumer asked for.
    pub response_headers: Headers,
    /// Request body bytes read from the client.
    pub bytes_received: u64,
    /// Response body bytes sent to the client.
    pub bytes_sent: u64,
    /// From the start to the response head (`%RESPONSE_DURATION%`).
    pub response_started: Option<Duration>,
    /// From the start to the last response byte or the end (`%DURATION%`).
    pub duration: Option<Duration>,
    /// The trace this request belongs to (`%TRACE_ID%`), set by the tracer when the request
    /// starts: the incoming context's trace with the proxy's own span.
    pub trace: Option<TraceContext>,
}

/// Captured headers (allocated only when one of the wanted headers is present).
pub type Headers = Vec<(HeaderName, HeaderValue)>;

/// The proxy's span in a trace, as propagated upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    /// The proxy's own span.
    pub span_id: [u8; 8],
    /// The span the client sent, when it sent one.
    pub parent_span_id: Option<[u8; 8]>,
    /// Whether this trace is recorded (and so exported).
    pub sampled: bool,
    /// The trace id as the client wrote it when it is not 128-bit hex (SkyWalking's are
    /// free-form strings): `trace_id` is then its hash, and `sw8` goes upstream with this.
    pub foreign_trace_id: Option<Arc<str>>,
}

impl RequestRecord {
    /// A record started now.
    pub fn new(protocol: Protocol, listener: Arc<str>) -> RequestRecord {
        RequestRecord::started_at(Instant::now(), protocol, listener)
    }

    /// A record of a request that started at `started` (read by the caller for its own
    /// timing: one clock read less).
    pub fn started_at(started: Instant, protocol: Protocol, listener: Arc<str>) -> RequestRecord {
        RequestRecord {
            start_time: SystemTime::now(),
            started,
            protocol,
            listener,
            downstream_remote: None,
            downstream_local: None,
            requested_server_name: None,
            downstream_peer_uri_san: None,
            method: Text::Empty,
            scheme: None,
            authority: Text::Empty,
            path: Text::Empty,
            service: None,
            request_headers: Headers::new(),
            request_id: None,
            route_name: None,
            upstream_cluster: None,
            upstream_host: None,
            upstream_attempts: 0,
            upstream_failure_reason: None,
            response_code: None,
            failed: false,
            response_code_details: Cow::Borrowed(""),
            response_flags: ResponseFlags::empty(),
            response_headers: Headers::new(),
            bytes_received: 0,
            bytes_sent: 0,
            response_started: None,
            duration: None,
            trace: None,
        }
    }

    /// Keeps the values of the `wanted` headers (every value of a repeated one).
    pub fn capture_request(&mut self, headers: &HeaderMap, wanted: &[HeaderName]) {
        capture(&mut self.request_headers, headers, wanted);
    }

    /// Keeps the values of the `wanted` response headers.
    pub fn capture_response(&mut self, headers: &HeaderMap, wanted: &[HeaderName]) {
        capture(&mut self.response_headers, headers, wanted);
    }

    /// The first captured value of request header `name`.
    pub fn request_header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        find(&self.request_headers, name)
    }

    /// The first captured value of response header `name`.
    pub fn response_header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        find(&self.response_headers, name)
    }

    /// Why the request ended as it did: `flags` join those already set, `details` replaces
    /// the previous reason (`%RESPONSE_CODE_DETAILS%`).
    pub fn flag(&mut self, flags: ResponseFlags, details: &'static str) {
        self.response_flags.insert(flags);
        self.response_code_details = details.into();
    }

    /// Marks the end: the duration is fixed from now.
    pub fn finish(&mut self) {
        if self.duration.is_none() {
            self.duration = Some(self.started.elapsed());
        }
    }
}

/// One pass over the headers, comparing names (cheap for well-known ones), rather than one
/// hashed lookup per wanted name: a request has few headers, and most are not wanted.
fn capture(into: &mut Headers, headers: &HeaderMap, wanted: &[HeaderName]) {
    if wanted.is_empty() {
        return;
    }
    // A second capture (the tracer's, once a request is sampled) skips what the first took.
    let before = into.len();
    for (name, value) in headers {
        if wanted.contains(name) && !into[..before].iter().any(|(n, _)| n == name) {
            into.push((name.clone(), value.clone()));
        }
    }
}

fn find<'a>(list: &'a [(HeaderName, HeaderValue)], name: &HeaderName) -> Option<&'a HeaderValue> {
    list.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn captures_only_the_wanted_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("user-agent", HeaderValue::from_static("curl/8"));
        headers.insert("x-other", HeaderValue::from_static("no"));
        let mut r = RequestRecord::new(Protocol::Http11, "web".into());
        r.capture_request(&headers, &[HeaderName::from_static("user-agent")]);
        assert_eq!(r.request_headers.len(), 1);
        assert_eq!(
            r.request_header(&HeaderName::from_static("user-agent"))
                .unwrap(),
            "curl/8"
        );
        assert_eq!(
            Protocol::from_http(http::Version::HTTP_2).as_str(),
            "HTTP/2"
        );
        r.finish();
        assert!(r.duration.is_some());
    }
}
