//! A listener's tracer: it reads the client's trace context when a request starts, writes the
//! proxy's upstream, and hands recorded requests to the exporter when they end.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use super::ids::{new_span_id, new_trace_id};
use super::propagation::{Format, Outgoing};
use super::sampling::Sampling;
use crate::{Observer, RequestRecord, TraceContext};

/// Where recorded requests go to become spans: the exporter, which converts and sends them
/// on its own thread. `push` runs on a worker, so it only queues (or drops, and counts).
pub trait SpanSink: Send + Sync + 'static {
    fn push(&self, record: &Arc<RequestRecord>);
}

/// The request headers a span reads (`user_agent`, the span's `trace_state`, the scheme of
/// `http.url`).
static SPAN_HEADERS: [HeaderName; 3] = [
    http::header::USER_AGENT,
    super::w3c::TRACESTATE,
    HeaderName::from_static("x-forwarded-proto"),
];

pub struct Tracer {
    /// Read in this order (the first valid context wins); all are written.
    formats: Vec<Format>,
    sampling: Sampling,
    /// The `service_name` (SkyWalking's parent service).
    service: Arc<str>,
    /// The node id (SkyWalking's parent service instance).
    instance: Arc<str>,
    sink: Arc<dyn SpanSink>,
}

impl Tracer {
    pub fn new(
        formats: Vec<Format>,
        sampling: Sampling,
        service: Arc<str>,
        instance: Arc<str>,
        sink: Arc<dyn SpanSink>,
    ) -> Tracer {
        Tracer {
            formats,
            sampling,
            service,
            instance,
            sink,
        }
    }

    /// The proxy's span for a request with these headers: a child of the client's span when
    /// the headers carry a valid one (malformed ones are ignored: a new trace starts),
    /// recorded as the client decided or, without a decision, by `random_sampling`.
    pub fn start(&self, headers: &HeaderMap) -> TraceContext {
        let incoming = self.formats.iter().find_map(|f| f.extract(headers));
        let (ids, sampled, foreign_trace_id) = match incoming {
            Some(i) => (i.ids, i.sampled, i.foreign_trace_id),
            None => (None, None, None),
        };
        TraceContext {
            trace_id: ids.map_or_else(new_trace_id, |i| i.trace_id),
            span_id: new_span_id(),
            parent_span_id: ids.map(|i| i.span_id),
            sampled: self.sampling.decide(sampled),
            foreign_trace_id,
        }
    }

    /// The request headers a recorded span reads: captured by the proxy only for sampled
    /// requests (not declared as an observer's headers, which every request would copy).
    pub fn span_headers(&self) -> &[HeaderName] {
        &SPAN_HEADERS
    }

    /// Every header the configured formats read or write.
    pub fn header_names(&self) -> impl Iterator<Item = &'static HeaderName> + '_ {
        self.formats.iter().flat_map(|f| f.header_names())
    }

    /// Writes the proxy's span into the upstream request's headers, in every configured
    /// format. `endpoint` is the request path, `peer` the upstream host (for `sw8`).
    pub fn inject(&self, ctx: &TraceContext, endpoint: &str, peer: &str, headers: &mut HeaderMap) {
        let out = Outgoing {
            ctx,
            service: &self.service,
            instance: &self.instance,
            endpoint,
            peer,
        };
        for f in &self.formats {
            f.inject(&out, headers);
        }
    }
}

impl Observer for Tracer {
    fn on_complete(&self, record: &Arc<RequestRecord>) {
        if record.trace.as_ref().is_some_and(|t| t.sampled) {
            self.sink.push(record);
        }
    }
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("formats", &self.formats)
            .field("sampling", &self.sampling)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use parking_lot::Mutex;

    use super::super::ids::hex;
    use super::*;
    use crate::Protocol;

    #[derive(Default)]
    struct Collect(Mutex<Vec<Arc<RequestRecord>>>);
    impl SpanSink for Collect {
        fn push(&self, record: &Arc<RequestRecord>) {
            self.0.lock().push(record.clone());
        }
    }

    fn tracer(formats: Vec<Format>, percent: f64) -> (Tracer, Arc<Collect>) {
        let sink = Arc::new(Collect::default());
        let t = Tracer::new(
            formats,
            Sampling::percent(percent),
            "sluice".into(),
            "node".into(),
            sink.clone(),
        );
        (t, sink)
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn continues_the_clients_trace_and_writes_every_format() {
        let (t, _) = tracer(vec![Format::W3c, Format::B3, Format::B3Single], 0.0);
        let mut h = headers(&[
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]);
        let ctx = t.start(&h);
        assert_eq!(hex(&ctx.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&ctx.parent_span_id.unwrap()), "00f067aa0ba902b7");
        assert!(ctx.sampled, "the client's decision beats random_sampling 0");
        t.inject(&ctx, "/", "up:80", &mut h);
        let span = hex(&ctx.span_id);
        assert_eq!(
            h["traceparent"],
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-{span}-01").as_str()
        );
        assert_eq!(h["tracestate"], "congo=t61rcWkgMzE");
        assert_eq!(h["x-b3-traceid"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(h["x-b3-spanid"], span.as_str());
        assert_eq!(h["x-b3-parentspanid"], "00f067aa0ba902b7");
        assert_eq!(h["x-b3-sampled"], "1");
        assert_eq!(
            h["b3"],
            format!("4bf92f3577b34da6a3ce929d0e0e4736-{span}-1-00f067aa0ba902b7").as_str()
        );
    }

    #[test]
    fn malformed_context_starts_a_new_trace_and_drops_tracestate() {
        let (t, _) = tracer(vec![Format::W3c], 100.0);
        let mut h = headers(&[("traceparent", "garbage"), ("tracestate", "a=b")]);
        let ctx = t.start(&h);
        assert_eq!(ctx.parent_span_id, None);
        assert!(ctx.sampled);
        t.inject(&ctx, "/", "up:80", &mut h);
        assert!(h.get("tracestate").is_none());
        assert!(h["traceparent"].to_str().unwrap().ends_with("-01"));
    }

    #[test]
    fn the_first_valid_format_in_order_wins() {
        let (t, _) = tracer(vec![Format::B3Single, Format::B3], 0.0);
        let h = headers(&[
            ("b3", "not-valid"),
            ("x-b3-traceid", "463ac35c9f6413ad"),
            ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ]);
        let ctx = t.start(&h);
        assert_eq!(hex(&ctx.parent_span_id.unwrap()), "a2fb4a1d1a96d312");
        assert!(
            !ctx.sampled,
            "no decision came in: random_sampling 0 decides"
        );
        let mut out = HeaderMap::new();
        t.inject(&ctx, "/", "up:80", &mut out);
        assert_eq!(out["x-b3-traceid"], "463ac35c9f6413ad", "64 bits stay 64");
    }

    #[test]
    fn only_sampled_requests_reach_the_sink() {
        let (t, sink) = tracer(vec![Format::W3c], 0.0);
        let mut r = RequestRecord::new(Protocol::Http11, "l".into());
        t.on_complete(&Arc::new(r.clone()));
        r.trace = Some(t.start(&HeaderMap::new()));
        t.on_complete(&Arc::new(r.clone()));
        assert!(sink.0.lock().is_empty());
        r.trace.as_mut().unwrap().sampled = true;
        t.on_complete(&Arc::new(r));
        assert_eq!(sink.0.lock().len(), 1);
    }
}
