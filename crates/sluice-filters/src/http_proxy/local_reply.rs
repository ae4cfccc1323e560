//! Responses Sluice makes itself: errors naming their cause, direct responses, redirects.

use http::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use http::{Response, StatusCode};
use sluice_config::route::Redirect;

use super::body::{full, Body};

/// A plain-text response; the body says what happened and where, for whoever reads the logs
/// or the curl output.
pub fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The body of every 431 we send, HTTP/1 or HTTP/2.
pub fn headers_too_large(listener: &str, kb: u32, count: usize) -> String {
    format!(
        "request headers too large: listener \"{listener}\" accepts at most {kb} KiB of request head and {count} headers (max_request_headers_kb, max_headers_count)\n"
    )
}

/// `redirect` action: the request's own URL with the configured parts replaced.
pub fn redirect(
    r: &Redirect,
    authority: &str,
    path: &str,
    query: Option<&str>,
    matched_prefix: Option<&str>,
) -> Response<Body> {
    let scheme = r.scheme_redirect.as_deref().unwrap_or("http");
    let (host, port) = split_port(authority);
    let host = r.host_redirect.as_deref().unwrap_or(host);
    let port = match (r.port_redirect, port) {
        (Some(p), _) => format!(":{p}"),
        (None, Some(p)) if r.host_redirect.is_none() => format!(":{p}"),
        _ => String::new(),
    };
    let new_path = match (&r.path_redirect, &r.prefix_rewrite, matched_prefix) {
        (Some(p), _, _) => p.clone(),
        (None, Some(rewrite), Some(prefix)) => {
            format!("{rewrite}{}", path.get(prefix.len()..).unwrap_or(""))
        }
        _ => path.to_string(),
    };
    let query = match query {
        Some(q) if !r.strip_query && !q.is_empty() => format!("?{q}"),
        _ => String::new(),
    };
    let location = format!("{scheme}://{host}{port}{new_path}{query}");
    let status = StatusCode::from_u16(r.response_code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
    let mut resp = text(status, format!("redirecting to {location}\n"));
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    resp
}

/// `host:port` -> (`host`, `port`), keeping IPv6 brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rfind(':') {
        Some(i)
            if !authority[i + 1..].is_empty()
                && authority[i + 1..].bytes().all(|b| b.is_ascii_digit())
                && (authority.starts_with('[') == authority[..i].ends_with(']')) =>
        {
            (&authority[..i], Some(&authority[i + 1..]))
        }
        _ => (authority, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r() -> Redirect {
        Redirect {
            scheme_redirect: None,
            host_redirect: None,
            port_redirect: None,
            path_redirect: None,
            prefix_rewrite: None,
            response_code: 301,
            strip_query: false,
        }
    }

    fn location(resp: &Response<Body>) -> &str {
        resp.headers()[LOCATION].to_str().unwrap()
    }

    #[test]
    fn path_redirect_keeps_host_port_and_query() {
        let red = Redirect {
            path_redirect: Some("/new".into()),
            ..r()
        };
        let resp = redirect(&red, "example.com:8080", "/old/x", Some("a=1"), None);
        assert_eq!(resp.status(), 301);
        assert_eq!(location(&resp), "http://example.com:8080/new?a=1");
    }

    #[test]
    fn https_host_and_prefix() {
        let red = Redirect {
            scheme_redirect: Some("https".into()),
            host_redirect: Some("b.com".into()),
            prefix_rewrite: Some("/v2/".into()),
            strip_query: true,
            response_code: 308,
            ..r()
        };
        let resp = redirect(&red, "a.com:80", "/v1/items", Some("q"), Some("/v1/"));
        assert_eq!(resp.status(), 308);
        assert_eq!(location(&resp), "https://b.com/v2/items");
    }

    #[test]
    fn ipv6_authority() {
        assert_eq!(split_port("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
        assert_eq!(split_port("host"), ("host", None));
    }
}
