//! The parts of a request that routing looks at, borrowed from wherever the request lives.
//!
//! Routing needs only the method, authority, path, query and headers. Borrowing them (rather
//! than taking `http::Request`) lets the HTTP/1 and HTTP/2 codecs, and tests, route a request
//! without building one; the path/query split is done once here, not per matcher.

use http::header::HOST;
use http::request::Parts;
use http::HeaderMap;

#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    method: &'a str,
    scheme: Option<&'a str>,
    authority: &'a str,
    path_and_query: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a HeaderMap,
}

impl<'a> RequestView<'a> {
    /// `path_and_query` is the request target as received (`/a/b?x=1`). A `#fragment` is not
    /// part of what a client should send; if one arrives it is cut from both path and query,
    /// so it cannot make a path regex or a query value match by accident.
    pub fn new(
        method: &'a str,
        authority: &'a str,
        path_and_query: &'a str,
        headers: &'a HeaderMap,
    ) -> Self {
        let without_fragment = path_and_query
            .split_once('#')
            .map_or(path_and_query, |(before, _)| before);
        let (path, query) = match without_fragment.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (without_fragment, None),
        };
        RequestView {
            method,
            scheme: None,
            authority,
            path_and_query,
            path,
            query,
            headers,
        }
    }

    /// From a parsed request head. The authority is the URI's (HTTP/2 `:authority`, or an
    /// HTTP/1 absolute-form target, which RFC 9112 says takes precedence over `Host`), else
    /// the `Host` header; a `Host` that is not visible ASCII counts as absent, so such a
    /// request can only reach a `*` virtual host.
    pub fn from_parts(parts: &'a Parts) -> Self {
        let authority = match parts.uri.authority() {
            Some(authority) => authority.as_str(),
            None => parts
                .headers
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        };
        let path_and_query = match parts.uri.path_and_query() {
            Some(pq) => pq.as_str(),
            // `http://a.example` has an empty path, which means `/`; an authority-form CONNECT
            // target has no path at all.
            None if parts.uri.scheme().is_some() => "/",
            None => "",
        };
        let view = RequestView::new(
            parts.method.as_str(),
            authority,
            path_and_query,
            &parts.headers,
        );
        match parts.uri.scheme_str() {
            Some(scheme) => view.with_scheme(scheme),
            None => view,
        }
    }

    /// Sets the scheme (the `:scheme` pseudo-header). An HTTP/1 origin-form request does not
    /// carry one, so the HTTP layer sets it from the listener (`http`, or `https` behind
    /// TLS); without it a `:scheme` rule sees the header as absent.
    pub fn with_scheme(mut self, scheme: &'a str) -> Self {
        self.scheme = Some(scheme);
        self
    }

    pub fn method(&self) -> &'a str {
        self.method
    }

    pub fn scheme(&self) -> Option<&'a str> {
        self.scheme
    }

    /// As received: may carry a port, may be in any case.
    pub fn authority(&self) -> &'a str {
        self.authority
    }

    /// The request target as received, query string included (the `:path` pseudo-header).
    pub fn path_and_query(&self) -> &'a str {
        self.path_and_query
    }

    /// The path alone, without `?query` (what path matchers see).
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The raw query string after `?`, not decoded; `None` when there is no `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.query
    }

    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    #[test]
    fn splits_path_and_query() {
        let h = HeaderMap::new();
        let r = RequestView::new("GET", "a", "/x/y?q=1&r", &h);
        assert_eq!(r.path(), "/x/y");
        assert_eq!(r.query(), Some("q=1&r"));
        assert_eq!(r.path_and_query(), "/x/y?q=1&r");

        let r = RequestView::new("GET", "a", "/x", &h);
        assert_eq!((r.path(), r.query()), ("/x", None));

        let r = RequestView::new("GET", "a", "/x?", &h);
        assert_eq!((r.path(), r.query()), ("/x", Some("")));

        let r = RequestView::new("GET", "a", "/x?a=1#frag?b=2", &h);
        assert_eq!((r.path(), r.query()), ("/x", Some("a=1")));

        let r = RequestView::new("GET", "a", "", &h);
        assert_eq!((r.path(), r.query()), ("", None));
    }

    #[test]
    fn from_parts_prefers_uri_authority_over_host() {
        let (parts, ()) = Request::get("http://uri.example:81/p?q")
            .header("host", "header.example")
            .body(())
            .unwrap()
            .into_parts();
        let r = RequestView::from_parts(&parts);
        assert_eq!(r.authority(), "uri.example:81");
        assert_eq!(r.path(), "/p");
        assert_eq!(r.query(), Some("q"));
        assert_eq!(r.method(), "GET");
        assert_eq!(r.scheme(), Some("http"));
    }

    #[test]
    fn from_parts_falls_back_to_host_header() {
        let (parts, ()) = Request::post("/p")
            .header("host", "Header.Example:8080")
            .body(())
            .unwrap()
            .into_parts();
        let r = RequestView::from_parts(&parts);
        assert_eq!(r.authority(), "Header.Example:8080");
        assert_eq!(r.method(), "POST");
        assert_eq!(r.scheme(), None);
        assert_eq!(r.with_scheme("https").scheme(), Some("https"));
    }

    #[test]
    fn from_parts_without_host_or_path() {
        let (parts, ()) = Request::get("/").body(()).unwrap().into_parts();
        assert_eq!(RequestView::from_parts(&parts).authority(), "");

        let (parts, ()) = Request::get("http://a.example")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(RequestView::from_parts(&parts).path(), "/");

        let (parts, ()) = Request::connect("a.example:443")
            .body(())
            .unwrap()
            .into_parts();
        let r = RequestView::from_parts(&parts);
        assert_eq!((r.authority(), r.path()), ("a.example:443", ""));
    }

    #[test]
    fn non_ascii_host_header_counts_as_absent() {
        let mut parts = Request::get("/").body(()).unwrap().into_parts().0;
        parts.headers.insert(
            HOST,
            http::HeaderValue::from_bytes(b"caf\xe9.example").unwrap(),
        );
        assert_eq!(RequestView::from_parts(&parts).authority(), "");
    }
}
