//! Stream filters: checks that run on each request of `http_proxy` (`http_filters`) and
//! `rpc_proxy` (`stream_filters`), after the request's head is read and before routing.
//!
//! A filter sees the request as the route table does ([`RequestView`]: for HTTP the method,
//! authority, path and headers; for RPC the method, the service as authority,
//! `/service/method` as path and the frame's headers plus `service` and `method`) and the
//! connection's [`ConnectionInfo`] (peer, local address, TLS identity). It lets the request
//! go on or answers it locally: the proxy turns a [`Denial`] or a [`LocalReply`] into its
//! protocol's reply (an HTTP status with a body and headers, or the RPC protocol's error
//! frame). A listener without filters pays one emptiness check per request.

mod registry;

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use sluice_net::ConnectionInfo;
use sluice_proxy::route::RequestView;

pub use registry::{
    build_list, decode_list, StreamFilterConfig, StreamFilterKind, StreamFilterSpec, STREAM_FILTERS,
};

/// A request refused by a filter: HTTP answers `status` with `message` as the body; RPC
/// answers the protocol's `Forbidden` error carrying `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub status: StatusCode,
    pub message: &'static str,
}

/// An answer a filter gives in the upstream's place (the `health_check` filter's probe
/// replies): HTTP answers `status` with `message` as the body and `headers` added.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: StatusCode,
    pub message: &'static str,
    pub headers: HeaderMap,
    /// Why, for access logs (`%RESPONSE_CODE_DETAILS%`, `%RESPONSE_FLAGS%`).
    pub details: &'static str,
    pub flags: sluice_observe::ResponseFlags,
}

impl From<Denial> for LocalReply {
    fn from(d: Denial) -> LocalReply {
        LocalReply {
            status: d.status,
            message: d.message,
            headers: HeaderMap::new(),
            details: "rbac_access_denied",
            flags: sluice_observe::ResponseFlags::UNAUTHORIZED_EXTERNAL_SERVICE,
        }
    }
}

/// What a filter decides about one request.
#[derive(Debug, Clone)]
pub enum FilterStatus {
    Continue,
    Deny(Denial),
    Respond(LocalReply),
}

/// One per-request check.
pub trait StreamFilter: Send + Sync + 'static {
    fn on_request(&self, request: &RequestView<'_>, conn: &ConnectionInfo) -> FilterStatus;
}

/// A listener's stream filters, in config order; cheap to clone (one `Arc`).
#[derive(Clone, Default)]
pub struct StreamFilters(Arc<[Arc<dyn StreamFilter>]>);

impl StreamFilters {
    pub fn new(filters: Vec<Arc<dyn StreamFilter>>) -> StreamFilters {
        StreamFilters(filters.into())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs the filters in order; the first local answer (a denial or a reply) ends the walk.
    pub fn on_request(
        &self,
        request: &RequestView<'_>,
        conn: &ConnectionInfo,
    ) -> Option<LocalReply> {
        self.0
            .iter()
            .find_map(|f| match f.on_request(request, conn) {
                FilterStatus::Continue => None,
                FilterStatus::Deny(d) => Some(d.into()),
                FilterStatus::Respond(r) => Some(r),
            })
    }
}
