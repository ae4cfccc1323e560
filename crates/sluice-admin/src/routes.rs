//! Admin endpoints. Plain text, like Envoy's admin, so `curl` output is readable as is.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};

use crate::{AdminState, Phase};

const INDEX: &[(&str, &str)] = &[
    (
        "/ready",
        "200 LIVE once every listener accepts (bound, its SDS secrets arrived or timed out); 503 while starting or draining",
    ),
    (
        "/listeners",
        "bound listeners, one `name::address` per line",
    ),
    (
        "/clusters",
        "every cluster host with health flags, weight, locality, priority, active requests",
    ),
    (
        "/stats",
        "counters and gauges, `cluster.<name>.<stat>: value`, `listener.<address>.<stat>: value` (Envoy's names)",
    ),
];

pub fn handle<B>(req: &Request<B>, state: &AdminState) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        );
    }
    match req.uri().path() {
        "/ready" => match state.phase() {
            Phase::Live => text(StatusCode::OK, "LIVE\n".into()),
            Phase::Starting => text(StatusCode::SERVICE_UNAVAILABLE, "STARTING\n".into()),
            Phase::Draining => text(StatusCode::SERVICE_UNAVAILABLE, "DRAINING\n".into()),
        },
        "/listeners" => {
            let body: String = state
                .listeners
                .load()
                .iter()
                .map(|(name, addr)| format!("{name}::{addr}\n"))
                .collect();
            text(StatusCode::OK, body)
        }
        "/clusters" => {
            let body = state
                .clusters
                .load()
                .as_deref()
                .map(crate::clusters::clusters)
                .unwrap_or_default();
            text(StatusCode::OK, body)
        }
        "/stats" => {
            let mut lines = state
                .clusters
                .load()
                .as_deref()
                .map(crate::clusters::stats)
                .unwrap_or_default();
            lines.extend(sluice_stats::store().counters());
            lines.sort();
            let body: String = lines
                .into_iter()
                .map(|(name, value)| format!("{name}: {value}\n"))
                .collect();
            text(StatusCode::OK, body)
        }
        "/" => {
            let body: String = INDEX
                .iter()
                .map(|(path, what)| format!("{path:<12} {what}\n"))
                .collect();
            text(StatusCode::OK, body)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "no such admin endpoint; see /\n".into(),
        ),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
