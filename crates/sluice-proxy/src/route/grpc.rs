//! gRPC matching: is this a gRPC call, and optionally to which service and method.
//!
//! A gRPC request carries `content-type: application/grpc`, optionally with a `+codec`
//! (`application/grpc+proto`) or parameters (`;charset=...`); media types compare
//! case-insensitively. `application/grpc-web*` deliberately does not count although it starts
//! with the same letters: gRPC-Web is a different wire format that needs translating before a
//! gRPC upstream can read it, so routing it as gRPC would be wrong.
//!
//! The call goes to `/package.Service/Method`. Service and method names compare exactly (they
//! are case-sensitive in protobuf); a path of another shape matches only a rule that names
//! neither.

use http::header::CONTENT_TYPE;
use sluice_config::route::GrpcMatch;

use super::request::RequestView;

const GRPC: &[u8] = b"application/grpc";

#[derive(Debug)]
pub(crate) struct GrpcMatcher {
    service: Option<String>,
    method: Option<String>,
}

impl GrpcMatcher {
    pub(crate) fn compile(m: &GrpcMatch) -> Self {
        GrpcMatcher {
            service: m.service.clone(),
            method: m.method.clone(),
        }
    }

    pub(crate) fn matches(&self, req: &RequestView<'_>) -> bool {
        if !is_grpc(req) {
            return false;
        }
        if self.service.is_none() && self.method.is_none() {
            return true;
        }
        let Some((service, method)) = service_and_method(req.path()) else {
            return false;
        };
        self.service.as_deref().is_none_or(|s| s == service)
            && self.method.as_deref().is_none_or(|m| m == method)
    }
}

/// Whether the request's (first) `content-type` is gRPC's.
pub(crate) fn is_grpc(req: &RequestView<'_>) -> bool {
    let Some(content_type) = req.headers().get(CONTENT_TYPE) else {
        return false;
    };
    let value = content_type.as_bytes();
    let Some(head) = value.get(..GRPC.len()) else {
        return false;
    };
    head.eq_ignore_ascii_case(GRPC)
        && matches!(
            value.get(GRPC.len()),
            None | Some(b'+' | b';' | b' ' | b'\t')
        )
}

/// `/svc/method` -> `("svc", "method")`; `None` unless there are exactly two non-empty
/// segments.
fn service_and_method(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/'))
        .then_some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn req_matches(m: &GrpcMatcher, content_type: Option<&'static str>, path: &str) -> bool {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        m.matches(&RequestView::new("POST", "a", path, &h))
    }

    fn grpc(service: Option<&str>, method: Option<&str>) -> GrpcMatcher {
        GrpcMatcher::compile(&GrpcMatch {
            service: service.map(str::to_string),
            method: method.map(str::to_string),
        })
    }

    #[test]
    fn content_type_decides() {
        let any = grpc(None, None);
        let path = "/pkg.Svc/Get";
        assert!(req_matches(&any, Some("application/grpc"), path));
        assert!(req_matches(&any, Some("application/grpc+proto"), path));
        assert!(req_matches(
            &any,
            Some("application/grpc; charset=utf-8"),
            path
        ));
        assert!(req_matches(&any, Some("Application/GRPC"), path));
        assert!(!req_matches(&any, Some("application/grpc-web"), path));
        assert!(!req_matches(&any, Some("application/grpc-web+proto"), path));
        assert!(!req_matches(&any, Some("application/grpcx"), path));
        assert!(!req_matches(&any, Some("application/json"), path));
        assert!(!req_matches(&any, Some("application/grp"), path));
        assert!(!req_matches(&any, None, path));
    }

    #[test]
    fn without_service_or_method_any_path_matches() {
        let any = grpc(None, None);
        assert!(req_matches(&any, Some("application/grpc"), "/"));
        assert!(req_matches(
            &any,
            Some("application/grpc"),
            "/odd/shaped/path"
        ));
    }

    #[test]
    fn service_and_method_rules() {
        let ct = Some("application/grpc");
        let both = grpc(Some("pkg.Svc"), Some("Get"));
        assert!(req_matches(&both, ct, "/pkg.Svc/Get"));
        assert!(req_matches(&both, ct, "/pkg.Svc/Get?x=1"));
        assert!(!req_matches(&both, ct, "/pkg.Svc/Put"));
        assert!(!req_matches(&both, ct, "/pkg.svc/Get"));
        assert!(!req_matches(&both, ct, "/other.Svc/Get"));
        assert!(!req_matches(&both, ct, "/pkg.Svc/Get/extra"));
        assert!(!req_matches(&both, ct, "pkg.Svc/Get"));

        let service = grpc(Some("pkg.Svc"), None);
        assert!(req_matches(&service, ct, "/pkg.Svc/Anything"));
        assert!(!req_matches(&service, ct, "/pkg.Svc"));
        assert!(!req_matches(&service, ct, "/pkg.Svc/"));

        let method = grpc(None, Some("Get"));
        assert!(req_matches(&method, ct, "/a.B/Get"));
        assert!(!req_matches(&method, ct, "//Get"));
    }

    #[test]
    fn path_shapes() {
        assert_eq!(service_and_method("/a/b"), Some(("a", "b")));
        assert_eq!(service_and_method("/a/b/c"), None);
        assert_eq!(service_and_method("/a"), None);
        assert_eq!(service_and_method(""), None);
        assert_eq!(service_and_method("/"), None);
    }
}
