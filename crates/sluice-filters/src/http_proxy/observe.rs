//! The end of a request, as stats and the listener's observers (access logs, tracing) see
//! it: the record is started with the request, filled as it is routed and forwarded, and
//! handed over, with `downstream_rq_time` recorded, when the response body ends.
//!
//! No record is made on a listener without observers: `start` returns `None` and the
//! record's steps are skipped; the timing costs one clock read and, for a streamed response
//! body, one small wrapper.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use sluice_net::ConnectionInfo;
use sluice_observe::{Observers, Protocol, RequestRecord, ResponseFlags, Text};
use sluice_stats::GaugeGuard;
use std::time::Instant;

use super::body::{Body, BoxError};
use super::headers::X_REQUEST_ID;
use super::stats::HttpStats;

/// A record in the making. It lives in the `Arc` its observers will share from the start
/// (which also keeps a request's future small), and is changed through [`get`] while the
/// request owns it alone.
/// rpc_proxy keeps its calls' records the same way.
pub(crate) type Record = Option<Arc<RequestRecord>>;

/// The record to fill, when there is one.
pub(crate) fn get(record: &mut Record) -> Option<&mut RequestRecord> {
    record.as_mut().and_then(Arc::get_mut)
}

/// What every record of a connection shares, made once per connection.
pub(super) struct ConnectionFacts {
    pub listener: Arc<str>,
    pub local: Option<std::net::SocketAddr>,
    pub scheme: &'static str,
    pub server_name: Option<Arc<str>>,
    pub peer_uri_san: Option<Arc<str>>,
}

impl ConnectionFacts {
    pub fn new(info: &ConnectionInfo) -> ConnectionFacts {
        let tls = info.tls.as_deref();
        ConnectionFacts {
            listener: info.listener.clone(),
            local: info.local,
            scheme: if tls.is_some() { "https" } else { "http" },
            server_name: tls.and_then(|t| t.server_name.as_deref()).map(Arc::from),
            peer_uri_san: tls
                .and_then(|t| t.peer.as_ref())
                .and_then(|p| p.uri_sans.first())
                .map(|s| Arc::from(s.as_str())),
        }
    }
    /// A record of a request on this connection from `client`, started at `started`.
    fn record(
        &self,
        started: Instant,
        protocol: Protocol,
        client: Option<std::net::SocketAddr>,
    ) -> RequestRecord {
        let mut r = RequestRecord::started_at(started, protocol, self.listener.clone());
        r.downstream_remote = client;
        r.downstream_local = self.local;
        r.scheme = Some(self.scheme);
        r.requested_server_name = self.server_name.clone();
        r.downstream_peer_uri_san = self.peer_uri_san.clone();
        r
    }
}

/// Starts the record of a request, or `None` when nobody observes this listener (whose
/// connections then have no `ConnectionFacts` either).
pub(super) fn start(
    started: Instant,
    observers: &Observers,
    conn: Option<&ConnectionFacts>,
    parts: &http::request::Parts,
    authority: &Text,
    path_and_query: Option<&http::uri::PathAndQuery>,
    client: Option<std::net::SocketAddr>,
) -> Record {
    let conn = conn.filter(|_| !observers.is_empty())?;
    let mut r = conn.record(started, Protocol::from_http(parts.version), client);
    r.method = Text::method(&parts.method);
    r.authority = authority.clone();
    r.path = path_and_query.map_or(Text::Static("/"), |p| Text::Path(p.clone()));
    r.capture_request(&parts.headers, observers.request_headers());
    Some(Arc::new(r))
}

/// A request our HTTP/1 codec answered before it became a request (a refused or timed-out
/// head): its record, as Envoy logs a codec error, with no method or path.
pub(super) fn refused(
    observers: &Observers,
    conn: Option<&ConnectionFacts>,
    client: Option<std::net::SocketAddr>,
    status: u16,
    details: &'static str,
    flags: ResponseFlags,
) {
    let Some(conn) = conn.filter(|_| !observers.is_empty()) else {
        return;
    };
    let mut r = conn.record(Instant::now(), Protocol::Http11, client);
    r.response_code = Some(status);
    r.flag(flags, details);
    observers.complete(Arc::new(r));
}

/// What the end of the response needs from the request's handling: the record, and the
/// count of request-body bytes (the body streams on while the response is made).
#[derive(Default)]
pub(super) struct Trail {
    pub record: Record,
    pub request_bytes: Option<Arc<AtomicU64>>,
}

/// Marks why the proxy answered itself (or how the upstream failed).
pub(super) fn flag(record: &mut Record, flags: ResponseFlags, details: &'static str) {
    if let Some(r) = get(record) {
        r.flag(flags, details);
    }
}

/// An upstream try failed with `error`: the flag, and the reason for
/// `%UPSTREAM_TRANSPORT_FAILURE_REASON%`.
pub(super) fn failed(
    record: &mut Record,
    flags: ResponseFlags,
    details: &'static str,
    error: &(dyn std::error::Error + 'static),
) {
    if let Some(r) = get(record) {
        r.flag(flags, details);
        r.upstream_failure_reason = Some(super::service::error_chain(error));
    }
}

/// After routing: the route's name, and the request id as it goes upstream.
pub(super) fn routed(record: &mut Record, route: Option<&Arc<str>>, headers: &http::HeaderMap) {
    if let Some(r) = get(record) {
        r.route_name = route.cloned();
        r.request_id = headers.get(&X_REQUEST_ID).cloned();
    }
}

/// Counts the request body's bytes into `counter` (read back when the record completes).
pub(super) fn count_request_body(record: &Record, body: Body) -> (Body, Option<Arc<AtomicU64>>) {
    if record.is_none() || body.is_end_stream() {
        return (body, None);
    }
    let counter = Arc::new(AtomicU64::new(0));
    let bytes = counter.clone();
    let counted = body
        .map_frame(move |frame| {
            if let Some(data) = frame.data_ref() {
                bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            frame
        })
        .boxed();
    (counted, Some(counter))
}

/// The response is ready: counted by class; its status and headers go into the record, and
/// the record and the request's timing travel with the body, finished when the body ends (or
/// is dropped unfinished: the client went away, `DC`).
pub(super) fn respond(
    stats: &Arc<HttpStats>,
    active: GaugeGuard,
    started: Instant,
    observers: &Arc<Observers>,
    trail: Trail,
    resp: Response<Body>,
) -> Response<Body> {
    let Trail {
        record,
        request_bytes,
    } = trail;
    stats.rq_codes.record(resp.status().as_u16());
    let record = record.map(|mut record| {
        if let Some(r) = Arc::get_mut(&mut record) {
            r.response_code = Some(resp.status().as_u16());
            if r.response_code_details.is_empty() {
                r.response_code_details = "via_upstream".into();
            }
            r.response_started = Some(r.started.elapsed());
            r.capture_response(resp.headers(), observers.response_headers());
        }
        record
    });
    let pending = Pending {
        record,
        request_bytes,
        observers: observers.clone(),
        stats: stats.clone(),
        started,
        _active: active,
        done: false,
    };
    let (parts, body) = resp.into_parts();
    if body.is_end_stream() {
        drop(pending);
        return Response::from_parts(parts, body);
    }
    Response::from_parts(
        parts,
        Observed {
            inner: body,
            pending,
        }
        .boxed(),
    )
}

/// A request waiting for its response body to end; finishes when dropped.
struct Pending {
    record: Record,
    request_bytes: Option<Arc<AtomicU64>>,
    observers: Arc<Observers>,
    stats: Arc<HttpStats>,
    started: Instant,
    _active: GaugeGuard,
    /// The timing was recorded.
    done: bool,
}

impl Pending {
    fn complete(&mut self, client_gone: bool) {
        if self.stats_pending() {
            self.stats.rq_completed.inc();
            self.stats.rq_time.record_duration(self.started.elapsed());
            if client_gone {
                self.stats.rq_rx_reset.inc();
            }
        }
        let Some(mut record) = self.record.take() else {
            return;
        };
        if let Some(r) = Arc::get_mut(&mut record) {
            if client_gone {
                r.response_flags
                    .insert(ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION);
            }
            if let Some(bytes) = &self.request_bytes {
                r.bytes_received = bytes.load(Ordering::Relaxed);
            }
        }
        self.observers.complete(record);
    }

    /// True the first time only: the timing is recorded once.
    fn stats_pending(&mut self) -> bool {
        !std::mem::replace(&mut self.done, true)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.complete(false);
    }
}

struct Observed {
    inner: Body,
    pending: Pending,
}

impl http_body::Body for Observed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(r)) = (f.data_ref(), get(&mut this.pending.record)) {
                    r.bytes_sent += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.pending.complete(false);
                }
            }
            Some(Err(_)) => {
                // The upstream body broke off mid-way.
                if let Some(r) = get(&mut this.pending.record) {
                    r.response_flags
                        .insert(ResponseFlags::UPSTREAM_CONNECTION_TERMINATION);
                }
                this.pending.complete(false);
            }
            None => this.pending.complete(false),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        // Dropped before its end: the client went away (or the connection was reset).
        let unfinished = !self.pending.done && !self.inner.is_end_stream();
        self.pending.complete(unfinished);
    }
}
