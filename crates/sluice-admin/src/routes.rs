//! Admin endpoints. Plain text where Envoy's admin answers text (readable from `curl` as is),
//! JSON where it answers JSON or on `?format=json`; the list is [`index::ENDPOINTS`].

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};

use crate::index::{self, Methods};
use crate::{AdminState, Phase};

pub fn handle<B>(req: &Request<B>, state: &AdminState) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let Some(endpoint) = index::find(path) else {
        return text(
            StatusCode::NOT_FOUND,
            "no such admin endpoint; see /\n".into(),
        );
    };
    let method = req.method();
    let read = method == Method::GET || method == Method::HEAD;
    let allowed = match endpoint.methods {
        Methods::Get => read,
        Methods::Post => method == Method::POST,
        Methods::GetPost => read || method == Method::POST,
    };
    if !allowed {
        let (body, allow) = match endpoint.methods {
            Methods::Post => ("method not allowed: use POST\n", "POST"),
            Methods::GetPost => ("method not allowed: use GET or POST\n", "GET, HEAD, POST"),
            Methods::Get => ("method not allowed: use GET\n", "GET, HEAD"),
        };
        let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, body.into());
        resp.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static(allow),
        );
        return resp;
    }
    let query = Query::parse(req.uri().query());
    match path {
        "/ready" => match state_name(state) {
            "LIVE" => text(StatusCode::OK, "LIVE\n".into()),
            // `/ready` has said STARTING since the first release (scripts wait on it);
            // `/server_info` uses Envoy's INITIALIZING.
            "INITIALIZING" => text(StatusCode::SERVICE_UNAVAILABLE, "STARTING\n".into()),
            other => text(StatusCode::SERVICE_UNAVAILABLE, format!("{other}\n")),
        },
        "/server_info" => json(StatusCode::OK, &server_info(state)),
        "/listeners" => {
            let listeners = state.listeners.load();
            match query.get("format") {
                None | Some("text") => text(
                    StatusCode::OK,
                    listeners
                        .iter()
                        .map(|(name, addr)| format!("{name}::{addr}\n"))
                        .collect(),
                ),
                Some("json") => json(StatusCode::OK, &listeners_json(&listeners)),
                Some(other) => bad_format(other),
            }
        }
        "/clusters" => {
            let clusters = state.clusters.load();
            match query.get("format") {
                None | Some("text") => text(
                    StatusCode::OK,
                    clusters
                        .as_deref()
                        .map(crate::clusters::clusters)
                        .unwrap_or_default(),
                ),
                Some("json") => json(
                    StatusCode::OK,
                    &clusters.as_deref().map_or_else(
                        || serde_json::json!({ "cluster_statuses": [] }),
                        crate::clusters::clusters_json,
                    ),
                ),
                Some(other) => bad_format(other),
            }
        }
        "/config_dump" => {
            let name_regex = match query.get("name_regex").map(regex::Regex::new) {
                Some(Ok(re)) => Some(re),
                Some(Err(e)) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("name_regex is not a valid regular expression: {e}\n"),
                    )
                }
                None => None,
            };
            match crate::config_dump::dump(
                &state.config(),
                query.get("resource"),
                name_regex.as_ref(),
                &state.missing_secrets(),
                &|kind, name| state.version_of(kind, name),
                // Envoy's flag: present (any value but false) includes the endpoints.
                query.get("include_eds").is_some_and(|v| v != "false"),
            ) {
                Ok(body) => json(StatusCode::OK, &body),
                Err(e) => text(StatusCode::BAD_REQUEST, format!("{e}\n")),
            }
        }
        "/healthcheck/fail" => {
            state.set_health_check_failed(true);
            tracing::info!("admin /healthcheck/fail: health checks fail from now on");
            text(StatusCode::OK, "OK\n".into())
        }
        "/healthcheck/ok" => {
            state.set_health_check_failed(false);
            tracing::info!("admin /healthcheck/ok: health checks pass again");
            text(StatusCode::OK, "OK\n".into())
        }
        "/dashboard" => html(include_str!("dashboard.html").into()),
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
        "/" => html(index::html()),
        _ => text(
            StatusCode::NOT_FOUND,
            "no such admin endpoint; see /\n".into(),
        ),
    }
}

/// Envoy's server state: `LIVE` turns `DRAINING` on a drain and while `/healthcheck/fail`
/// is in force (Envoy reports a failed health check as draining too).
fn state_name(state: &AdminState) -> &'static str {
    match state.phase() {
        Phase::Starting => "INITIALIZING",
        Phase::Live if state.health_check_failed() => "DRAINING",
        Phase::Live => "LIVE",
        Phase::Draining => "DRAINING",
    }
}

/// Envoy's `ServerInfo`.
fn server_info(state: &AdminState) -> serde_json::Value {
    let info = state.server_info();
    let uptime = format!("{}s", state.uptime().as_secs());
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "state": state_name(state),
        "uptime_current_epoch": uptime,
        "uptime_all_epochs": uptime,
        "hot_restart_version": "disabled",
        "command_line_options": {
            "restart_epoch": info.restart_epoch,
            "concurrency": info.concurrency,
            "config_path": info.config_path,
            "drain_time": format!("{}s", info.drain_time.as_secs()),
            "mode": "Serve",
        },
        "node": { "id": info.node_id, "cluster": info.node_cluster },
    })
}

/// Envoy's `Listeners`: `listener_statuses` with each bound address.
fn listeners_json(listeners: &[(String, String)]) -> serde_json::Value {
    let statuses: Vec<serde_json::Value> = listeners
        .iter()
        .map(|(name, addr)| {
            let local = match addr.parse::<std::net::SocketAddr>() {
                Ok(a) => serde_json::json!({ "socket_address": { "address": a.ip().to_string(), "port_value": a.port() } }),
                Err(_) => serde_json::json!({ "pipe": { "path": addr.strip_prefix("unix:").unwrap_or(addr) } }),
            };
            serde_json::json!({ "name": name, "local_address": local })
        })
        .collect();
    serde_json::json!({ "listener_statuses": statuses })
}

fn bad_format(other: &str) -> Response<Full<Bytes>> {
    text(
        StatusCode::BAD_REQUEST,
        format!("unknown format \"{other}\": text or json\n"),
    )
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

fn html(body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
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
