//! `health_check`, a stream filter of `http_proxy` (`http_filters`): answers a load
//! balancer's probe for the proxy itself, as Envoy's health check filter does.
//!
//! A request matching every `headers` matcher is a probe. While the admin's
//! `POST /healthcheck/fail` is in force the probe gets 503 with
//! `x-envoy-immediate-health-check-fail: true`, so the balancer takes this proxy out before
//! it is stopped; otherwise it gets 200 from the proxy, or with `pass_through_mode` goes on to
//! the routes like any request. The failed state is process-wide, like Envoy's server flag:
//! one admin call fails every listener's probes.

mod config;

use std::any::Any;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, StatusCode};
use sluice_net::ConnectionInfo;
use sluice_proxy::route::{HeaderMatcher, RequestView};
use sluice_stats::Scope;

pub use config::HealthCheckConfig;

use crate::stream::{FilterStatus, LocalReply, StreamFilter, StreamFilterKind};

pub const STREAM_KIND: StreamFilterKind = StreamFilterKind {
    name: "health_check",
    decode: config::decode,
    build,
};

/// Envoy's header telling a probing Envoy to mark this host unhealthy at once.
pub const IMMEDIATE_FAIL: &str = "x-envoy-immediate-health-check-fail";

static FAILED: AtomicBool = AtomicBool::new(false);

/// Fails (or passes again) every `health_check` probe in the process: the admin's
/// `/healthcheck/fail` and `/healthcheck/ok`.
pub fn set_failed(failed: bool) {
    FAILED.store(failed, Ordering::Release);
}

pub fn is_failed() -> bool {
    FAILED.load(Ordering::Acquire)
}

struct HealthCheckFilter {
    headers: Vec<HeaderMatcher>,
    pass_through: bool,
}

impl StreamFilter for HealthCheckFilter {
    fn on_request(&self, request: &RequestView<'_>, _conn: &ConnectionInfo) -> FilterStatus {
        if !self.headers.iter().all(|m| m.matches(request)) {
            return FilterStatus::Continue;
        }
        if is_failed() {
            let mut headers = HeaderMap::new();
            headers.insert(IMMEDIATE_FAIL, HeaderValue::from_static("true"));
            return FilterStatus::Respond(LocalReply {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "",
                headers,
                details: "health_check_failed",
                flags: sluice_observe::ResponseFlags::FAILED_LOCAL_HEALTH_CHECK,
            });
        }
        if self.pass_through {
            FilterStatus::Continue
        } else {
            FilterStatus::Respond(LocalReply {
                status: StatusCode::OK,
                message: "",
                headers: HeaderMap::new(),
                details: "health_check_ok",
                flags: sluice_observe::ResponseFlags::empty(),
            })
        }
    }
}

fn build(config: &dyn Any, _scope: &Scope) -> Result<Arc<dyn StreamFilter>, String> {
    let config = config
        .downcast_ref::<HealthCheckConfig>()
        .ok_or("config of another filter type")?;
    let headers = config
        .headers
        .iter()
        .map(|m| HeaderMatcher::compile(m, "health_check").map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    Ok(Arc::new(HealthCheckFilter {
        headers,
        pass_through: config.pass_through_mode,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn filter(pass_through: bool) -> Arc<dyn StreamFilter> {
        let node = sluice_config::yaml::parse(&format!(
            "{{ pass_through_mode: {pass_through}, headers: [{{ name: \":path\", exact: /healthz }}] }}"
        ))
        .unwrap();
        let mut cx = sluice_config::decode::Cx::default();
        let config = config::decode(&node, "f", &mut cx).unwrap();
        let config: &dyn Any = config.as_ref();
        build(config, &Scope::new("http.t.")).unwrap()
    }

    fn status(f: &dyn StreamFilter, path: &str) -> Option<(u16, bool)> {
        let headers = HeaderMap::new();
        let view = RequestView::new("GET", "x", path, &headers);
        let conn = ConnectionInfo {
            listener: Arc::from("l"),
            peer: sluice_net::PeerAddr::Unix,
            local: None,
            drain: tokio_util::sync::CancellationToken::new(),
            tls: None,
        };
        match f.on_request(&view, &conn) {
            FilterStatus::Continue => None,
            FilterStatus::Respond(r) => {
                Some((r.status.as_u16(), r.headers.get(IMMEDIATE_FAIL).is_some()))
            }
            FilterStatus::Deny(d) => Some((d.status.as_u16(), false)),
        }
    }

    /// One test for everything that flips the process-wide flag, so tests cannot race on it.
    #[test]
    fn answers_probes_and_fails_them_on_demand() {
        let local = filter(false);
        let through = filter(true);
        assert_eq!(status(&*local, "/other"), None);
        assert_eq!(status(&*local, "/healthz"), Some((200, false)));
        assert_eq!(status(&*through, "/healthz"), None);
        set_failed(true);
        assert_eq!(status(&*local, "/healthz"), Some((503, true)));
        assert_eq!(status(&*through, "/healthz"), Some((503, true)));
        assert_eq!(status(&*local, "/other"), None);
        set_failed(false);
        assert_eq!(status(&*local, "/healthz"), Some((200, false)));
    }
}
