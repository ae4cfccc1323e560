//! What the route table sees of an RPC request.
//!
//! The same compiled route tables serve HTTP and RPC. An RPC request is presented as: the
//! service as authority (so `domains` can name services), `/<service>/<method>` as path (as
//! gRPC does, so `prefix: /com.example.Echo/` works), the method as method, and a header map
//! of the protocol's own headers plus `service` and `method`, the names every protocol
//! exposes for matching.

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use sluice_xprotocol::Frame;

/// The routing inputs of one request, owned (the frame moves on to the upstream).
pub struct RouteInputs {
    pub path: String,
    pub headers: HeaderMap,
}

static SERVICE: HeaderName = HeaderName::from_static("service");
static METHOD: HeaderName = HeaderName::from_static("method");

impl RouteInputs {
    pub fn of(frame: &Frame) -> RouteInputs {
        let service = frame.service_str();
        let method = frame.method_str();
        let mut headers = HeaderMap::with_capacity(frame.headers().len() + 2);
        // Keys or values HTTP cannot carry (spaces, control bytes) cannot be matched on and
        // are left out; the frame itself goes upstream unchanged.
        for (name, value) in frame.headers().iter() {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
                headers.append(n, v);
            }
        }
        if let Ok(v) = HeaderValue::from_str(service) {
            headers.insert(SERVICE.clone(), v);
        }
        if let Ok(v) = HeaderValue::from_str(method) {
            headers.insert(METHOD.clone(), v);
        }
        let mut path = String::with_capacity(service.len() + method.len() + 2);
        path.push('/');
        path.push_str(service);
        path.push('/');
        path.push_str(method);
        RouteInputs { path, headers }
    }
}
