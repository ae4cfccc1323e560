//! `rbac` as a stream filter (`http_filters` of `http_proxy`, `stream_filters` of
//! `rpc_proxy`): decides per request, on the request's head as well as the connection.
//! A denied request gets 403 `RBAC: access denied` (HTTP) or the protocol's error reply.

use std::any::Any;
use std::sync::Arc;

use http::StatusCode;
use sluice_net::ConnectionInfo;
use sluice_proxy::route::RequestView;
use sluice_stats::Scope;

use super::check::Rbac;
use super::config::RbacConfig;
use super::engine::Input;
use crate::stream::{Denial, FilterStatus, StreamFilter};

/// Envoy's body for a denied request.
pub const DENIED: &str = "RBAC: access denied";

pub struct RbacStreamFilter(Rbac);

impl StreamFilter for RbacStreamFilter {
    fn on_request(&self, request: &RequestView<'_>, conn: &ConnectionInfo) -> FilterStatus {
        let input = Input {
            conn,
            request: Some(request),
        };
        if self.0.allows(&input) {
            FilterStatus::Continue
        } else {
            FilterStatus::Deny(Denial {
                status: StatusCode::FORBIDDEN,
                message: DENIED,
            })
        }
    }
}

/// Counters go under `<proxy scope>rbac.` (`http.<listener>.rbac.`), or with a
/// `stat_prefix`, `<proxy scope><stat_prefix>.rbac.` (two rbac filters in one list keep
/// apart).
pub fn build(config: &dyn Any, scope: &Scope) -> Result<Arc<dyn StreamFilter>, String> {
    let config = config
        .downcast_ref::<RbacConfig>()
        .ok_or("config of another filter type")?;
    let scope = match &config.stat_prefix {
        Some(p) => Scope::new(&format!("{}{}", scope.prefix(), p)),
        None => scope.clone(),
    };
    Ok(Arc::new(RbacStreamFilter(Rbac::build(config, &scope)?)))
}
