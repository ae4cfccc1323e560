//! `tracing` on an `rpc_proxy`: a call's trace context is read from the request frame's
//! headers, in the same formats as HTTP (`traceparent`, B3, `sw8` as header keys: Bolt carries
//! them in its header map, Dubbo in its attachments), and the proxy's span is written into
//! each try's frame. A traced frame is rebuilt rather than copied byte for byte; listeners
//! without `tracing` send their frames untouched.

use http::HeaderMap;
use sluice_observe::trace::Tracer;
use sluice_xprotocol::Frame;

use super::observe::Record;

pub(super) use crate::http_proxy::trace::start;

/// Writes the proxy's span into a try's frame; `peer` is the host it goes to, `incoming` the
/// call's headers as routing saw them.
pub(super) fn inject(
    tracer: Option<&Tracer>,
    record: &Record,
    peer: &str,
    incoming: &HeaderMap,
    frame: &mut Frame,
) {
    let (Some(tracer), Some(r)) = (tracer, record.as_deref()) else {
        return;
    };
    let Some(ctx) = &r.trace else {
        return;
    };
    // The formats write into an HTTP header map: it starts from the call's own trace headers
    // (a continued trace keeps its `tracestate`), and then replaces them in the frame.
    let mut out = HeaderMap::new();
    for name in tracer.header_names() {
        for v in incoming.get_all(name) {
            out.append(name.clone(), v.clone());
        }
    }
    tracer.inject(ctx, r.path.as_str(), peer, &mut out);
    let headers = frame.headers_mut();
    for name in tracer.header_names() {
        headers.remove_ignore_case(name.as_str());
    }
    for (name, value) in &out {
        headers.push(name.as_str().to_string(), value.as_bytes().to_vec());
    }
}
