//! A route's whole match: path, gRPC, headers and query parameters, all of which must hold.
//!
//! The parts are tested cheapest and most selective first (path, then the gRPC content-type,
//! headers, query), and stop at the first that fails, since most routes tried for a request
//! fail on the path.

use sluice_config::route::{PathMatch, RouteMatch};

use super::error::CompileError;
use super::grpc::GrpcMatcher;
use super::header::HeaderMatcher;
use super::path::PathMatcher;
use super::query::QueryMatcher;
use super::request::RequestView;

#[derive(Debug)]
pub(crate) struct RouteMatcher {
    path: PathMatcher,
    grpc: Option<GrpcMatcher>,
    headers: Vec<HeaderMatcher>,
    query: Vec<QueryMatcher>,
}

impl RouteMatcher {
    /// `route` names the route in errors.
    pub(crate) fn compile(m: &RouteMatch, route: &str) -> Result<Self, CompileError> {
        let path = PathMatcher::compile(&m.path, m.case_sensitive).map_err(|source| {
            let pattern = match &m.path {
                PathMatch::Regex(p) => p.clone(),
                other => format!("{other:?}"),
            };
            CompileError::InvalidRegex {
                route: route.to_string(),
                what: "path".to_string(),
                pattern,
                source: Box::new(source),
            }
        })?;
        let headers = m
            .headers
            .iter()
            .map(|h| HeaderMatcher::compile(h, route))
            .collect::<Result<_, _>>()?;
        let query = m
            .query_parameters
            .iter()
            .map(|q| QueryMatcher::compile(q, route))
            .collect::<Result<_, _>>()?;
        Ok(RouteMatcher {
            path,
            grpc: m.grpc.as_ref().map(GrpcMatcher::compile),
            headers,
            query,
        })
    }

    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        self.path.matches(req.path())
            && self.grpc.as_ref().is_none_or(|g| g.matches(req))
            && self.headers.iter().all(|h| h.matches(req))
            && self.query.iter().all(|q| q.matches(req.query()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use sluice_config::route::{
        GrpcMatch, HeaderMatch, PathMatch, QueryParameterMatch, ValueMatch,
    };

    fn route_match(path: PathMatch) -> RouteMatch {
        RouteMatch {
            path,
            case_sensitive: true,
            headers: vec![],
            query_parameters: vec![],
            grpc: None,
        }
    }

    #[test]
    fn all_parts_must_hold() {
        let mut m = route_match(PathMatch::Prefix("/api".into()));
        m.headers.push(HeaderMatch {
            name: "x-tenant".into(),
            value: ValueMatch::Exact("a".into()),
            invert: false,
        });
        m.query_parameters.push(QueryParameterMatch {
            name: "v".into(),
            value: ValueMatch::Exact("2".into()),
        });
        m.grpc = Some(GrpcMatch::default());
        let m = RouteMatcher::compile(&m, "r").unwrap();

        let mut h = HeaderMap::new();
        h.insert("x-tenant", HeaderValue::from_static("a"));
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        let ok = |h: &HeaderMap, pq: &str| m.matches(&RequestView::new("POST", "x", pq, h));

        assert!(ok(&h, "/api/x?v=2"));
        assert!(!ok(&h, "/other?v=2"), "path");
        assert!(!ok(&h, "/api/x?v=3"), "query");
        assert!(!ok(&h, "/api/x"), "no query");
        let mut wrong_tenant = h.clone();
        wrong_tenant.insert("x-tenant", HeaderValue::from_static("b"));
        assert!(!ok(&wrong_tenant, "/api/x?v=2"), "header");
        let mut not_grpc = h.clone();
        not_grpc.insert("content-type", HeaderValue::from_static("application/json"));
        assert!(!ok(&not_grpc, "/api/x?v=2"), "grpc");
    }

    #[test]
    fn path_ignores_query_string() {
        let m = RouteMatcher::compile(&route_match(PathMatch::Exact("/a".into())), "r").unwrap();
        let h = HeaderMap::new();
        assert!(m.matches(&RequestView::new("GET", "x", "/a?b=c", &h)));
        let m = RouteMatcher::compile(&route_match(PathMatch::Regex("/a".into())), "r").unwrap();
        assert!(m.matches(&RequestView::new("GET", "x", "/a?b=c", &h)));
    }

    #[test]
    fn invalid_path_regex_names_the_route() {
        let e = RouteMatcher::compile(&route_match(PathMatch::Regex("a(".into())), "cfg/vh/r1")
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("cfg/vh/r1") && text.contains("path"),
            "{text}"
        );
    }
}
