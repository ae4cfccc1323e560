//! Text a record keeps (method, authority, path): a handle on the request's own bytes where
//! there is one, so recording a request adds a reference count, not an allocation and a copy.

use std::sync::Arc;

use http::uri::{Authority, PathAndQuery};
use http::HeaderValue;

#[derive(Debug, Clone, Default)]
pub enum Text {
    #[default]
    Empty,
    Static(&'static str),
    Shared(Arc<str>),
    Owned(String),
    /// The request target's path and query.
    Path(PathAndQuery),
    /// The request target's authority.
    Authority(Authority),
    /// A header value (`Host`); one that is not visible ASCII reads as empty.
    Header(HeaderValue),
}

impl Text {
    pub fn as_str(&self) -> &str {
        match self {
            Text::Empty => "",
            Text::Static(s) => s,
            Text::Shared(s) => s,
            Text::Owned(s) => s,
            Text::Path(p) => p.as_str(),
            Text::Authority(a) => a.as_str(),
            Text::Header(h) => h.to_str().unwrap_or(""),
        }
    }

    /// A method's name: the standard ones without allocating.
    pub fn method(method: &http::Method) -> Text {
        use http::Method;
        let known = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::HEAD,
            Method::OPTIONS,
            Method::CONNECT,
            Method::PATCH,
            Method::TRACE,
        ];
        const NAMES: [&str; 9] = [
            "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "CONNECT", "PATCH", "TRACE",
        ];
        match known.iter().position(|m| m == method) {
            Some(i) => Text::Static(NAMES[i]),
            None => Text::Owned(method.as_str().to_string()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Text {
        Text::Static(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::Owned(s)
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Text {
        Text::Shared(s)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_every_kind() {
        assert_eq!(Text::method(&http::Method::GET), "GET");
        assert!(matches!(
            Text::method(&http::Method::GET),
            Text::Static("GET")
        ));
        let odd = http::Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(Text::method(&odd), "PURGE");
        let uri: http::Uri = "http://a.example:81/p?q=1".parse().unwrap();
        assert_eq!(Text::Path(uri.path_and_query().unwrap().clone()), "/p?q=1");
        assert_eq!(
            Text::Authority(uri.authority().unwrap().clone()),
            "a.example:81"
        );
        assert_eq!(
            Text::Header(HeaderValue::from_static("h.example")),
            "h.example"
        );
        assert_eq!(
            Text::Header(HeaderValue::from_bytes(b"\xffbad").unwrap()),
            ""
        );
        assert!(Text::default().is_empty());
        assert_eq!(Text::from(String::from("x")).to_string(), "x");
    }
}
