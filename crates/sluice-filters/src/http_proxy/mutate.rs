//! Header add/remove from route, virtual host and route config (Envoy's `*_headers_to_add`
//! and `*_headers_to_remove`), with `%VARIABLE%` values rendered per request.

use std::net::SocketAddr;
use std::sync::OnceLock;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Version;
use sluice_config::route::{AppendAction, FormatPart, HeaderFormat, HeaderMutations, HeaderToAdd};
use sluice_config::Address;

/// What variables can refer to.
pub struct Vars<'a> {
    pub client: Option<SocketAddr>,
    /// `%PROTOCOL%`: `HTTP/1.1`, `HTTP/2`, or an RPC protocol's name.
    pub protocol: &'a str,
    /// The request as the client sent it (for `%REQ(name)%`).
    pub request: &'a HeaderMap,
    pub upstream: Option<&'a Address>,
}

/// The upstream host that served a response, carried on it for `%UPSTREAM_REMOTE_ADDRESS%`.
#[derive(Clone)]
pub struct UpstreamHost(pub Address);

/// A set of headers the mutations can change: an HTTP head's `HeaderMap`, or an RPC
/// frame's headers (`rpc_proxy`).
pub trait MutableHeaders {
    /// Removes every value of `name` (lower case, as the config holds names).
    fn remove_all(&mut self, name: &str) -> bool;
    fn contains(&self, name: &str) -> bool;
    /// Adds a value for `header`'s key (kept if the key or value cannot be a header).
    fn append(&mut self, header: &HeaderToAdd, value: String);
}

impl MutableHeaders for HeaderMap {
    fn remove_all(&mut self, name: &str) -> bool {
        let mut removed = false;
        while self.remove(name).is_some() {
            removed = true;
        }
        removed
    }

    fn contains(&self, name: &str) -> bool {
        self.contains_key(name)
    }

    fn append(&mut self, header: &HeaderToAdd, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            HeaderMap::append(self, name, value);
        }
    }
}

/// Applies each level's mutations in order (route, then virtual host, then route config):
/// removals first, then additions, as Envoy does.
pub fn apply_request(
    headers: &mut impl MutableHeaders,
    levels: &[&HeaderMutations],
    vars: &Vars<'_>,
) {
    for m in levels {
        apply(
            headers,
            &m.request_headers_to_add,
            &m.request_headers_to_remove,
            vars,
        );
    }
}

pub fn apply_response(
    headers: &mut impl MutableHeaders,
    levels: &[&HeaderMutations],
    vars: &Vars<'_>,
) {
    for m in levels {
        apply(
            headers,
            &m.response_headers_to_add,
            &m.response_headers_to_remove,
            vars,
        );
    }
}

fn apply(
    headers: &mut impl MutableHeaders,
    add: &[HeaderToAdd],
    remove: &[String],
    vars: &Vars<'_>,
) {
    for name in remove {
        headers.remove_all(name);
    }
    for h in add {
        let value = render(&h.value, vars);
        // An empty value is skipped (Envoy's default), e.g. %REQ(x)% of an absent header.
        if value.is_empty() {
            continue;
        }
        match h.append_action {
            AppendAction::AppendIfExistsOrAdd => headers.append(h, value),
            AppendAction::AddIfAbsent => {
                if !headers.contains(&h.key) {
                    headers.append(h, value);
                }
            }
            AppendAction::OverwriteIfExistsOrAdd => {
                headers.remove_all(&h.key);
                headers.append(h, value);
            }
            AppendAction::OverwriteIfExists => {
                if headers.remove_all(&h.key) {
                    headers.append(h, value);
                }
            }
        }
    }
}

/// `%PROTOCOL%` of an HTTP request.
pub fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_10 => "HTTP/1.0",
        _ => "HTTP/1.1",
    }
}

/// A value with its variables filled in.
pub fn render(format: &HeaderFormat, vars: &Vars<'_>) -> String {
    let mut out = String::new();
    for part in &format.0 {
        match part {
            FormatPart::Literal(s) => out.push_str(s),
            FormatPart::DownstreamRemoteAddress => {
                if let Some(a) = vars.client {
                    out.push_str(&a.to_string());
                }
            }
            FormatPart::DownstreamRemoteAddressWithoutPort => {
                if let Some(a) = vars.client {
                    out.push_str(&a.ip().to_string());
                }
            }
            FormatPart::Protocol => out.push_str(vars.protocol),
            FormatPart::Hostname => out.push_str(hostname()),
            FormatPart::UpstreamRemoteAddress => {
                if let Some(a) = vars.upstream {
                    out.push_str(&a.to_string());
                }
            }
            FormatPart::RequestHeader(name) => {
                if let Some(v) = vars
                    .request
                    .get(name.as_str())
                    .and_then(|v| v.to_str().ok())
                {
                    out.push_str(v);
                }
            }
        }
    }
    out
}

/// Read once: the kernel's host name.
fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_config::route::HeaderMutations;

    fn add(key: &str, value: &str, action: AppendAction) -> HeaderToAdd {
        HeaderToAdd {
            key: key.into(),
            key_as_written: key.into(),
            value: sluice_config::route_format(value).unwrap(),
            append_action: action,
        }
    }

    #[test]
    fn actions_and_variables() {
        let req = HeaderMap::new();
        let vars = Vars {
            client: Some("10.1.2.3:4567".parse().unwrap()),
            protocol: protocol_name(Version::HTTP_2),
            request: &req,
            upstream: None,
        };
        let m = HeaderMutations {
            request_headers_to_add: vec![
                add("x-a", "1", AppendAction::AppendIfExistsOrAdd),
                add("x-b", "new", AppendAction::OverwriteIfExistsOrAdd),
                add("x-c", "new", AppendAction::AddIfAbsent),
                add("x-d", "new", AppendAction::OverwriteIfExists),
                add(
                    "x-ip",
                    "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% %PROTOCOL%",
                    AppendAction::AppendIfExistsOrAdd,
                ),
                add(
                    "x-empty",
                    "%REQ(absent)%",
                    AppendAction::AppendIfExistsOrAdd,
                ),
            ],
            request_headers_to_remove: vec!["x-gone".into()],
            ..Default::default()
        };
        let mut h = HeaderMap::new();
        h.insert("x-a", HeaderValue::from_static("0"));
        h.insert("x-b", HeaderValue::from_static("old"));
        h.insert("x-c", HeaderValue::from_static("old"));
        h.insert("x-gone", HeaderValue::from_static("1"));
        apply_request(&mut h, &[&m], &vars);
        assert_eq!(h.get_all("x-a").iter().collect::<Vec<_>>(), vec!["0", "1"]);
        assert_eq!(h["x-b"], "new");
        assert_eq!(h["x-c"], "old");
        assert!(h.get("x-d").is_none());
        assert_eq!(h["x-ip"], "10.1.2.3 HTTP/2");
        assert!(h.get("x-empty").is_none() && h.get("x-gone").is_none());
    }
}
