//! Admin endpoints. Plain text, like Envoy's admin, so `curl` output is readable as is.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};

use crate::{AdminState, Phase};

const INDEX: &[(&str, &str)] = &[
    (
        "/ready",
        "200 LIVE once every listener is bound; 503 while starting or draining",
    ),
    (
        "/server_info",
        "JSON: version, state (INITIALIZING, LIVE, DRAINING), uptime",
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
        "counters, gauges and histogram quantiles, `cluster.<name>.<stat>: value` (Envoy's names); `?filter=REGEX`, `?format=json`, `?usedonly`",
    ),
    (
        "/stats/prometheus",
        "every metric in the Prometheus text format (0.0.4), Envoy's tag-extracted names and labels; `?usedonly`",
    ),
    (
        "/logging",
        "the log filter; POST ?level=debug (everything) or ?filter=info,sluice_net=debug (per module) changes it",
    ),
    (
        "/drain_listeners",
        "POST: stop accepting on every listener (open connections finish); the process stays",
    ),
    (
        "/quitquitquit",
        "POST: drain and exit, as on SIGTERM",
    ),
];

/// Endpoints that change something: POST only, so a crawler or a stray GET cannot.
const MUTATING: &[&str] = &["/quitquitquit", "/drain_listeners"];

pub fn handle<B>(req: &Request<B>, state: &AdminState) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let mutating = MUTATING.contains(&path);
    let allowed = if path == "/logging" {
        // Read with GET, changed with POST.
        [Method::GET, Method::HEAD, Method::POST].contains(req.method())
    } else if mutating {
        req.method() == Method::POST
    } else {
        req.method() == Method::GET || req.method() == Method::HEAD
    };
    if !allowed {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            if mutating {
                "method not allowed: use POST\n".into()
            } else {
                "method not allowed: use GET\n".into()
            },
        );
        resp.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static(if mutating { "POST" } else { "GET, HEAD" }),
        );
        return resp;
    }
    let query = Query::parse(req.uri().query());
    match path {
        "/ready" => match state.phase() {
            Phase::Live => text(StatusCode::OK, "LIVE\n".into()),
            Phase::Starting => text(StatusCode::SERVICE_UNAVAILABLE, "STARTING\n".into()),
            Phase::Draining => text(StatusCode::SERVICE_UNAVAILABLE, "DRAINING\n".into()),
        },
        "/server_info" => {
            let state_name = match state.phase() {
                Phase::Starting => "INITIALIZING",
                Phase::Live => "LIVE",
                Phase::Draining => "DRAINING",
            };
            let uptime = format!("{}s", state.uptime().as_secs());
            let body = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "state": state_name,
                "uptime_current_epoch": uptime,
                "uptime_all_epochs": uptime,
                "hot_restart_version": "disabled",
            });
            json(StatusCode::OK, &body)
        }
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
        "/stats" | "/stats/prometheus" => {
            let filter = match query.get("filter").map(regex::Regex::new) {
                Some(Ok(re)) => Some(re),
                Some(Err(e)) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("filter is not a valid regular expression: {e}\n"),
                    )
                }
                None => None,
            };
            let select = crate::stats::Select {
                filter: filter.as_ref(),
                used_only: query.get("usedonly").is_some(),
            };
            let snapshot = select.apply(sluice_stats::store().snapshot());
            let format = if path == "/stats/prometheus" {
                Some("prometheus")
            } else {
                query.get("format")
            };
            match format {
                None | Some("text") => text(StatusCode::OK, crate::stats::text(&snapshot)),
                Some("json") => json(StatusCode::OK, &crate::stats::json(&snapshot)),
                Some("prometheus") => {
                    let mut resp = text(
                        StatusCode::OK,
                        sluice_stats::prometheus::render(&snapshot, false),
                    );
                    resp.headers_mut().insert(
                        hyper::header::CONTENT_TYPE,
                        hyper::header::HeaderValue::from_static(
                            sluice_stats::prometheus::CONTENT_TYPE,
                        ),
                    );
                    resp
                }
                Some(other) => text(
                    StatusCode::BAD_REQUEST,
                    format!("unknown format \"{other}\": text, json or prometheus\n"),
                ),
            }
        }
        "/logging" => {
            let Some(control) = state.log_control() else {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "logging is not set up\n".into(),
                );
            };
            let result = if req.method() == Method::POST {
                match (query.get("level"), query.get("filter")) {
                    (Some(level), None) => control.set(level),
                    (None, Some(filter)) => control.set(filter),
                    _ => {
                        return text(
                            StatusCode::BAD_REQUEST,
                            "POST /logging?level=LEVEL or ?filter=DIRECTIVES (one of them)\n"
                                .into(),
                        )
                    }
                }
            } else {
                control.current()
            };
            match result {
                Ok(filter) => text(StatusCode::OK, format!("filter: {filter}\n")),
                Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
            }
        }
        "/drain_listeners" => {
            state.request_drain_listeners();
            text(StatusCode::OK, "OK\n".into())
        }
        "/quitquitquit" => {
            state.request_quit();
            text(StatusCode::OK, "OK\n".into())
        }
        "/" => {
            let body: String = INDEX
                .iter()
                .map(|(path, what)| format!("{path:<14} {what}\n"))
                .collect();
            text(StatusCode::OK, body)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "no such admin endpoint; see /\n".into(),
        ),
    }
}

/// A query string's parameters, percent-decoded; the last of a repeated name wins.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let pairs = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `%XX` and `+` decoding; invalid escapes are kept as written.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(format!("{body:#}\n"))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        let q = Query::parse(Some("filter=%5Ecluster%5C.a+b&format=json&format=text&x"));
        assert_eq!(q.get("filter"), Some("^cluster\\.a b"));
        assert_eq!(q.get("format"), Some("text"));
        assert_eq!(q.get("x"), Some(""));
        assert_eq!(q.get("y"), None);
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
