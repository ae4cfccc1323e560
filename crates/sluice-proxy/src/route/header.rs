//! Header matchers.
//!
//! A header sent several times (`x-a: 1` and `x-a: 2`) is tested as its values joined by `,`
//! (`1,2`), as Envoy does and as RFC 9110 5.3 defines the combined field value. That is the
//! one allocation routing may make for headers: only when a matched header really is repeated
//! and the rule needs its value (`present`/`absent` never do). Joining is what makes the
//! answer independent of how the header was framed: RFC 9110 lets any hop fold repeated
//! lines into one, so `x-a: 1,2` and two lines must route the same. Rules meant for one value
//! (`exact: prod`) therefore do not match a repeated header (`prod,prod`); write a regex such
//! as `prod(,prod)*` when a client may repeat it.
//!
//! `:method`, `:scheme`, `:authority` and `:path` match the request's method, scheme, authority
//! and path with query, so HTTP/1 and HTTP/2 requests route alike (these are the pseudo-headers
//! config validation accepts); `host` is the same as `:authority`
//! (HTTP/2 clients send no `Host`, and HTTP/1 `Host` is what fills the authority).

use http::header::HeaderName;
use sluice_config::route::HeaderMatch;

use super::error::CompileError;
use super::request::RequestView;
use super::value::ValueMatcher;

/// A compiled [`HeaderMatch`]; also RBAC's `header` permission and principal.
#[derive(Debug)]
pub struct HeaderMatcher {
    source: Source,
    value: ValueMatcher,
    invert: bool,
}

#[derive(Debug)]
enum Source {
    Header(HeaderName),
    Method,
    Scheme,
    Authority,
    Path,
}

impl HeaderMatcher {
    /// `route` names the route in errors.
    pub fn compile(m: &HeaderMatch, route: &str) -> Result<Self, CompileError> {
        let bad_name = || CompileError::InvalidHeaderName {
            route: route.to_string(),
            name: m.name.clone(),
        };
        let source = match m.name.as_str() {
            ":method" => Source::Method,
            ":scheme" => Source::Scheme,
            ":authority" | "host" => Source::Authority,
            ":path" => Source::Path,
            name if name.starts_with(':') => return Err(bad_name()),
            name => {
                Source::Header(HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad_name())?)
            }
        };
        let value = ValueMatcher::compile(&m.value).map_err(|(pattern, source)| {
            CompileError::InvalidRegex {
                route: route.to_string(),
                what: format!("header {:?}", m.name),
                pattern,
                source: Box::new(source),
            }
        })?;
        Ok(HeaderMatcher {
            source,
            value,
            invert: m.invert,
        })
    }

    pub fn matches(&self, req: &RequestView<'_>) -> bool {
        let matched = match &self.source {
            Source::Method => self.value.matches(Some(req.method().as_bytes())),
            Source::Scheme => self.value.matches(req.scheme().map(str::as_bytes)),
            Source::Authority => self.value.matches(Some(req.authority().as_bytes())),
            Source::Path => self.value.matches(Some(req.path_and_query().as_bytes())),
            Source::Header(name) => {
                // Envoy: a rule on the value never matches a request without the header,
                // inverted or not (only `present` inverts into "absent").
                if self.value.needs_value() && !req.headers().contains_key(name) {
                    return false;
                }
                self.matches_header(req, name)
            }
        };
        matched != self.invert
    }

    fn matches_header(&self, req: &RequestView<'_>, name: &HeaderName) -> bool {
        let mut values = req.headers().get_all(name).iter();
        let Some(first) = values.next() else {
            return self.value.matches(None);
        };
        let Some(second) = values.next() else {
            return self.value.matches(Some(first.as_bytes()));
        };
        if !self.value.needs_value() {
            return self.value.matches(Some(first.as_bytes()));
        }
        let mut joined = Vec::with_capacity(first.len() + 1 + second.len());
        joined.extend_from_slice(first.as_bytes());
        for v in std::iter::once(second).chain(values) {
            joined.push(b',');
            joined.extend_from_slice(v.as_bytes());
        }
        self.value.matches(Some(&joined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};
    use sluice_config::route::ValueMatch;

    fn matcher(name: &str, value: ValueMatch, invert: bool) -> HeaderMatcher {
        let m = HeaderMatch {
            name: name.into(),
            value,
            invert,
        };
        HeaderMatcher::compile(&m, "r").unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn check(m: &HeaderMatcher, h: &HeaderMap) -> bool {
        m.matches(&RequestView::new("GET", "a.example:80", "/p?q=1", h))
    }

    #[test]
    fn every_value_kind() {
        let h = headers(&[("x-a", "hello-world")]);
        let cases = [
            (ValueMatch::Exact("hello-world".into()), true),
            (ValueMatch::Exact("hello".into()), false),
            (ValueMatch::Prefix("hello".into()), true),
            (ValueMatch::Prefix("world".into()), false),
            (ValueMatch::Suffix("world".into()), true),
            (ValueMatch::Suffix("hello".into()), false),
            (ValueMatch::Contains("o-w".into()), true),
            (ValueMatch::Contains("xyz".into()), false),
            (ValueMatch::Regex("hel+o-.*".into()), true),
            (ValueMatch::Regex("hello".into()), false),
            (ValueMatch::Present, true),
            (ValueMatch::Absent, false),
        ];
        for (value, expected) in cases {
            let m = matcher("x-a", value.clone(), false);
            assert_eq!(check(&m, &h), expected, "{value:?}");
            let inverted = matcher("x-a", value.clone(), true);
            assert_eq!(check(&inverted, &h), !expected, "inverted {value:?}");
        }
    }

    #[test]
    fn missing_header() {
        let h = HeaderMap::new();
        assert!(!check(
            &matcher("x-a", ValueMatch::Exact("v".into()), false),
            &h
        ));
        assert!(!check(&matcher("x-a", ValueMatch::Present, false), &h));
        assert!(check(&matcher("x-a", ValueMatch::Absent, false), &h));
        // Inverted, a rule on the value still needs the header (Envoy's rule): "not equal
        // to v" does not hold for a request without it.
        assert!(!check(
            &matcher("x-a", ValueMatch::Exact("v".into()), true),
            &h
        ));
        assert!(check(&matcher("x-a", ValueMatch::Present, true), &h));
        assert!(!check(&matcher("x-a", ValueMatch::Absent, true), &h));
    }

    #[test]
    fn repeated_header_is_joined_with_commas() {
        let h = headers(&[("x-a", "1"), ("x-b", "z"), ("x-a", "2"), ("x-a", "3")]);
        assert!(check(
            &matcher("x-a", ValueMatch::Exact("1,2,3".into()), false),
            &h
        ));
        assert!(!check(
            &matcher("x-a", ValueMatch::Exact("1".into()), false),
            &h
        ));
        assert!(check(
            &matcher("x-a", ValueMatch::Regex("[0-9](,[0-9])*".into()), false),
            &h
        ));
        assert!(check(&matcher("x-a", ValueMatch::Present, false), &h));
        assert!(!check(&matcher("x-a", ValueMatch::Absent, false), &h));
        // The same answer as the folded single line.
        let folded = headers(&[("x-a", "1,2,3")]);
        assert!(check(
            &matcher("x-a", ValueMatch::Exact("1,2,3".into()), false),
            &folded
        ));
        // No single value is tested on its own.
        let h = headers(&[("x-env", "prod"), ("x-env", "test")]);
        assert!(!check(
            &matcher("x-env", ValueMatch::Exact("test".into()), false),
            &h
        ));
        assert!(check(
            &matcher("x-env", ValueMatch::Suffix(",test".into()), false),
            &h
        ));
    }

    #[test]
    fn empty_header_value() {
        let h = headers(&[("x-a", "")]);
        assert!(check(&matcher("x-a", ValueMatch::Present, false), &h));
        assert!(check(
            &matcher("x-a", ValueMatch::Exact("".into()), false),
            &h
        ));
        assert!(!check(
            &matcher("x-a", ValueMatch::Prefix("a".into()), false),
            &h
        ));
    }

    #[test]
    fn values_are_case_sensitive() {
        let h = headers(&[("x-a", "Value")]);
        assert!(!check(
            &matcher("x-a", ValueMatch::Exact("value".into()), false),
            &h
        ));
    }

    #[test]
    fn pseudo_headers() {
        let h = HeaderMap::new();
        assert!(check(
            &matcher(":method", ValueMatch::Exact("GET".into()), false),
            &h
        ));
        assert!(check(
            &matcher(
                ":authority",
                ValueMatch::Exact("a.example:80".into()),
                false
            ),
            &h
        ));
        assert!(check(
            &matcher("host", ValueMatch::Prefix("a.example".into()), false),
            &h
        ));
        assert!(check(
            &matcher(":path", ValueMatch::Exact("/p?q=1".into()), false),
            &h
        ));
    }

    #[test]
    fn scheme_pseudo_header() {
        let h = HeaderMap::new();
        let https = matcher(":scheme", ValueMatch::Exact("https".into()), false);
        let req = RequestView::new("GET", "a", "/", &h);
        // Not set: absent.
        assert!(!https.matches(&req));
        assert!(matcher(":scheme", ValueMatch::Absent, false).matches(&req));
        assert!(https.matches(&req.with_scheme("https")));
        assert!(!https.matches(&req.with_scheme("http")));
    }

    #[test]
    fn invalid_names_are_errors() {
        for name in [":status", ":protocol", "bad name", "", "x\u{e9}"] {
            let m = HeaderMatch {
                name: name.into(),
                value: ValueMatch::Present,
                invert: false,
            };
            assert!(
                matches!(
                    HeaderMatcher::compile(&m, "r"),
                    Err(CompileError::InvalidHeaderName { .. })
                ),
                "{name:?}"
            );
        }
    }

    #[test]
    fn invalid_regex_names_route_and_header() {
        let m = HeaderMatch {
            name: "x-a".into(),
            value: ValueMatch::Regex("(".into()),
            invert: false,
        };
        let e = HeaderMatcher::compile(&m, "main/api/users (line 9)").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("main/api/users (line 9)"), "{text}");
        assert!(text.contains("header \"x-a\""), "{text}");
    }
}
