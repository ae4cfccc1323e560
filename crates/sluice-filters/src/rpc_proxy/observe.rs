//! A call's record for the listener's observers (access logs): one per call, started when
//! the request frame is decoded, handed over when its response frame is ready.
//!
//! `%PROTOCOL%` is the protocol's name, `%REQ(:PATH)%` is `/<service>/<method>` and
//! `%RESPONSE_CODE%` the protocol's own status, so one format reads for HTTP and RPC.

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use sluice_observe::{Protocol, RequestRecord, ResponseFlags, Text};
use sluice_xprotocol::Frame;

use super::call::Shared;

use crate::http_proxy::observe::get;
/// A record in the making, in the `Arc` its observers will share (as http_proxy's); `None`
/// when nobody observes the listener.
pub(super) use crate::http_proxy::observe::Record;

pub(super) fn start(shared: &Shared, client: Option<SocketAddr>, request: &Frame) -> Record {
    if shared.observers.is_empty() {
        return None;
    }
    let name = shared.protocol.name();
    let mut r = RequestRecord::new(Protocol::Rpc(Arc::from(name)), shared.listener.clone());
    r.downstream_remote = client;
    r.downstream_local = shared.local;
    r.requested_server_name = shared.server_name.clone();
    r.bytes_received = request.raw.len() as u64;
    Some(Arc::new(r))
}

/// The call's routing inputs: service, method, path and the captured headers.
pub(super) fn request(
    record: &mut Record,
    shared: &Shared,
    service: &str,
    method: &str,
    path: &str,
    headers: &HeaderMap,
) {
    if let Some(r) = get(record) {
        let service: Arc<str> = Arc::from(service);
        r.authority = Text::Shared(service.clone());
        r.service = Some(service);
        r.method = Text::Owned(method.to_string());
        r.path = Text::Owned(path.to_string());
        r.capture_request(headers, shared.observers.request_headers());
    }
}

pub(super) fn flag(record: &mut Record, flags: ResponseFlags, details: &'static str) {
    if let Some(r) = get(record) {
        r.flag(flags, details);
    }
}

/// A try goes to `host`.
pub(super) fn attempt(record: &mut Record, cluster: &str, host: &Arc<str>, tries: u32) {
    if let Some(r) = get(record) {
        if r.upstream_cluster.as_deref() != Some(cluster) {
            r.upstream_cluster = Some(Arc::from(cluster));
        }
        r.upstream_host = Some(host.clone());
        r.upstream_attempts = tries;
    }
}

pub(super) fn routed(record: &mut Record, route: Option<&Arc<str>>) {
    if let Some(r) = get(record) {
        r.route_name = route.cloned();
    }
}

pub(super) fn failure_reason(record: &mut Record, why: &str) {
    if let Some(r) = get(record) {
        r.upstream_failure_reason = Some(why.to_string());
    }
}

/// A call's record until it completes: a call dropped unfinished (its client went away with
/// the call in flight) is still handed to the observers, flagged `DC`.
pub(super) struct Unfinished<'s> {
    record: Record,
    shared: &'s Shared,
}

impl<'s> Unfinished<'s> {
    /// The record of a call starting now (see [`start`]).
    pub fn start(shared: &'s Shared, client: Option<SocketAddr>, request: &Frame) -> Self {
        Unfinished {
            record: start(shared, client, request),
            shared,
        }
    }

    /// The record, to fill while the call goes on.
    pub fn record(&mut self) -> &mut Record {
        &mut self.record
    }

    /// The call is answered (see [`complete`]).
    pub fn complete(mut self, response: Option<&Frame>, failed: bool) {
        complete(self.shared, self.record.take(), response, failed);
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        if let Some(r) = Arc::get_mut(&mut record) {
            r.flag(
                ResponseFlags::DOWNSTREAM_CONNECTION_TERMINATION,
                "downstream_remote_disconnect",
            );
        }
        self.shared.observers.complete(record);
    }
}

/// The call is answered (or was one-way): the response's status and size, then the observers.
pub(super) fn complete(shared: &Shared, record: Record, response: Option<&Frame>, failed: bool) {
    let Some(mut record) = record else { return };
    if let (Some(f), Some(r)) = (response, Arc::get_mut(&mut record)) {
        r.failed = failed;
        r.response_code = Some(u16::try_from(f.status).unwrap_or(u16::MAX));
        r.bytes_sent = f.raw.len() as u64;
        r.response_started = Some(r.started.elapsed());
        if r.response_code_details.is_empty() {
            r.response_code_details = "via_upstream".into();
        }
    }
    shared.observers.complete(record);
}
