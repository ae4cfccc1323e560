//! `health_check`'s YAML: `{ pass_through_mode: false, headers: [{ name: ":path", exact: /healthz }] }`.

use std::sync::Arc;

use sluice_config::decode::{join, Cx, Fields};
use sluice_config::route::HeaderMatch;
use sluice_config::Node;

use crate::stream::StreamFilterConfig;

#[derive(Debug, Clone)]
pub struct HealthCheckConfig {
    /// Pass probes on to the routes when healthy, instead of answering 200 locally.
    pub pass_through_mode: bool,
    /// What makes a request a probe: every matcher must match (route `headers` syntax).
    pub headers: Vec<HeaderMatch>,
}

impl StreamFilterConfig for HealthCheckConfig {}

pub fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Arc<dyn StreamFilterConfig>> {
    let mut f = Fields::new(node, path, cx)?;
    let pass_through_mode = f.or("pass_through_mode", false, cx);
    let line = f.line_of("headers");
    let headers = f.required::<Vec<HeaderMatch>>("headers", cx);
    f.finish(cx);
    let headers = headers?;
    if headers.is_empty() {
        cx.error(
            line,
            &join(path, "headers"),
            "needs at least one matcher (e.g. { name: \":path\", exact: /healthz })",
        );
        return None;
    }
    Some(Arc::new(HealthCheckConfig {
        pass_through_mode: pass_through_mode?,
        headers,
    }))
}
