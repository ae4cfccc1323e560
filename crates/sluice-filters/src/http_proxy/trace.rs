//! `tracing` on an `http_proxy`: the listener's tracer, made from its block and the
//! process's exporter, reads the client's context when a request starts and writes the
//! proxy's span into each try sent upstream. It is also one of the listener's observers,
//! which is how recorded requests reach the exporter.

use std::sync::Arc;

use http::HeaderMap;
use sluice_config::Propagation;
use sluice_observe::trace::{Format, Sampling, Tracer};
use sluice_observe::Observers;

use super::observe::{self, Record};
use crate::registry::BuildContext;

/// The listener's observers (with the tracer when it traces) and its tracer, from a proxy's
/// `tracing` block (`http_proxy`'s or `rpc_proxy`'s).
pub(crate) fn build(
    tracing: Option<&sluice_config::ListenerTracing>,
    ctx: &BuildContext,
) -> Result<(Arc<Observers>, Option<Arc<Tracer>>), String> {
    let (Some(tracing), Some(exporter)) = (tracing, &ctx.config.tracing) else {
        return Ok((ctx.observers.clone(), None));
    };
    let sink = ctx
        .spans
        .clone()
        .ok_or("tracing is on, but the span exporter was not started")?;
    let formats = tracing
        .propagation
        .iter()
        .map(|p| match p {
            Propagation::W3c => Format::W3c,
            Propagation::B3 => Format::B3,
            Propagation::B3Single => Format::B3Single,
            Propagation::Sw8 => Format::Sw8,
        })
        .collect();
    let tracer = Arc::new(Tracer::new(
        formats,
        Sampling::percent(tracing.random_sampling),
        Arc::from(exporter.service_name.as_str()),
        Arc::from(ctx.config.node.id.as_str()),
        sink,
    ));
    Ok((Arc::new(ctx.observers.with(tracer.clone())), Some(tracer)))
}

/// The request's place in its trace, from the client's headers (a record exists whenever
/// the listener traces: the tracer is one of its observers).
pub(crate) fn start(tracer: Option<&Tracer>, record: &mut Record, headers: &HeaderMap) {
    if let (Some(tracer), Some(r)) = (tracer, observe::get(record)) {
        let ctx = tracer.start(headers);
        if ctx.sampled {
            // Only a recorded span reads these: unsampled requests do not copy them.
            r.capture_request(headers, tracer.span_headers());
        }
        r.trace = Some(ctx);
    }
}

/// Writes the proxy's span into a try's headers; `peer` is the host it goes to.
pub(super) fn inject(
    tracer: Option<&Tracer>,
    record: &Record,
    peer: &str,
    headers: &mut HeaderMap,
) {
    let (Some(tracer), Some(r)) = (tracer, record.as_ref()) else {
        return;
    };
    let Some(ctx) = &r.trace else {
        return;
    };
    let endpoint = r.path.as_str().split('?').next().unwrap_or_default();
    tracer.inject(ctx, endpoint, peer, headers);
}
