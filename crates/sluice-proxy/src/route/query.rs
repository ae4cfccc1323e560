//! Query parameter matchers, reading the raw query string.
//!
//! Parsing: the query is split on `&`; empty pieces (`&&`, a trailing `&`) are skipped; each
//! piece splits at its first `=` into name and value, so `a` and `a=` are both `a` with an
//! empty value (present), `=x` is a parameter with an empty name, and `a=1=2` has value `1=2`.
//!
//! Decoding: names and values are percent-decoded before comparing (`q=a%20b` matches
//! `exact: "a b"`) because the config is written in plain text and clients encode
//! differently. A malformed escape (`%zz`, a trailing `%`) is kept literally rather than
//! rejected. `+` stays `+`: it means a space only in HTML form encoding, which the proxy
//! cannot assume. Decoding allocates only for a piece that contains `%`.
//!
//! When a name repeats (`a=1&a=2`), value tests see the first occurrence, as in Envoy.
//! The query string is re-scanned per matcher instead of parsed into a map once: routes
//! have a handful of query matchers at most, and a scan allocates nothing.

use std::borrow::Cow;

use sluice_config::route::QueryParameterMatch;

use super::error::CompileError;
use super::value::ValueMatcher;

#[derive(Debug)]
pub(crate) struct QueryMatcher {
    name: Box<[u8]>,
    value: ValueMatcher,
}

impl QueryMatcher {
    /// `route` names the route in errors.
    pub(crate) fn compile(m: &QueryParameterMatch, route: &str) -> Result<Self, CompileError> {
        let value = ValueMatcher::compile(&m.value).map_err(|(pattern, source)| {
            CompileError::InvalidRegex {
                route: route.to_string(),
                what: format!("query parameter {:?}", m.name),
                pattern,
                source: Box::new(source),
            }
        })?;
        Ok(QueryMatcher {
            name: m.name.as_bytes().into(),
            value,
        })
    }

    /// `query` is the raw query string after `?`, `None` without one.
    pub(crate) fn matches(&self, query: Option<&str>) -> bool {
        let first = query
            .and_then(|q| pairs(q).find(|(name, _)| percent_decode(name).as_ref() == &*self.name));
        match first {
            None => self.value.matches(None),
            Some(_) if !self.value.needs_value() => self.value.matches(Some(b"")),
            Some((_, value)) => self.value.matches(Some(&percent_decode(value))),
        }
    }
}

/// The raw `(name, value)` pieces of a query string, in order (see the module docs).
pub(crate) fn pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| piece.split_once('=').unwrap_or((piece, "")))
}

/// `%XX` to the byte it encodes; anything else, malformed escapes included, as is.
pub(crate) fn percent_decode(s: &str) -> Cow<'_, [u8]> {
    let bytes = s.as_bytes();
    if !bytes.contains(&b'%') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let escaped = match (b, bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&hi), Some(&lo)) => char::from(hi)
                .to_digit(16)
                .zip(char::from(lo).to_digit(16))
                .and_then(|(hi, lo)| u8::try_from((hi << 4) | lo).ok()),
            _ => None,
        };
        match escaped {
            Some(decoded) => {
                out.push(decoded);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_config::route::ValueMatch;

    fn matcher(name: &str, value: ValueMatch) -> QueryMatcher {
        QueryMatcher::compile(
            &QueryParameterMatch {
                name: name.into(),
                value,
            },
            "r",
        )
        .unwrap()
    }

    fn all(q: &str) -> Vec<(&str, &str)> {
        pairs(q).collect()
    }

    #[test]
    fn parsing_edge_cases() {
        assert_eq!(all("a=1&b=2"), [("a", "1"), ("b", "2")]);
        assert_eq!(all("a"), [("a", "")]);
        assert_eq!(all("a="), [("a", "")]);
        assert_eq!(all("=x"), [("", "x")]);
        assert_eq!(all("a=1&&b=2&"), [("a", "1"), ("b", "2")]);
        assert_eq!(all("&&"), []);
        assert_eq!(all(""), []);
        assert_eq!(all("a=1=2"), [("a", "1=2")]);
        assert_eq!(all("="), [("", "")]);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(&*percent_decode("a%20b"), b"a b");
        assert_eq!(&*percent_decode("%2f%2F"), b"//");
        assert_eq!(&*percent_decode("a+b"), b"a+b");
        assert_eq!(&*percent_decode("%zz%4"), b"%zz%4");
        assert_eq!(&*percent_decode("%"), b"%");
        assert_eq!(&*percent_decode("%%41"), b"%A");
        assert_eq!(&*percent_decode("%ff"), b"\xff");
        assert_eq!(&*percent_decode("%C3%A9"), "\u{e9}".as_bytes());
        assert!(matches!(percent_decode("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn value_kinds() {
        let q = Some("debug=1&user=al%69ce&empty=&flag");
        assert!(matcher("user", ValueMatch::Exact("alice".into())).matches(q));
        assert!(!matcher("user", ValueMatch::Exact("al%69ce".into())).matches(q));
        assert!(matcher("user", ValueMatch::Prefix("al".into())).matches(q));
        assert!(matcher("user", ValueMatch::Suffix("ice".into())).matches(q));
        assert!(matcher("user", ValueMatch::Contains("lic".into())).matches(q));
        assert!(matcher("user", ValueMatch::Regex("a[a-z]+".into())).matches(q));
        assert!(!matcher("user", ValueMatch::Regex("lic".into())).matches(q));
        assert!(matcher("debug", ValueMatch::Present).matches(q));
        assert!(!matcher("debug", ValueMatch::Absent).matches(q));
        assert!(matcher("nope", ValueMatch::Absent).matches(q));
        assert!(!matcher("nope", ValueMatch::Present).matches(q));
        assert!(!matcher("nope", ValueMatch::Exact("".into())).matches(q));
    }

    #[test]
    fn valueless_parameters_are_present_and_empty() {
        let q = Some("flag&empty=");
        for name in ["flag", "empty"] {
            assert!(matcher(name, ValueMatch::Present).matches(q));
            assert!(matcher(name, ValueMatch::Exact("".into())).matches(q));
            assert!(!matcher(name, ValueMatch::Prefix("x".into())).matches(q));
        }
    }

    #[test]
    fn empty_name_only_matches_an_empty_name() {
        assert!(matcher("", ValueMatch::Exact("x".into())).matches(Some("=x")));
        assert!(!matcher("x", ValueMatch::Present).matches(Some("=x")));
    }

    #[test]
    fn no_query_at_all() {
        assert!(matcher("a", ValueMatch::Absent).matches(None));
        assert!(!matcher("a", ValueMatch::Present).matches(None));
        assert!(matcher("a", ValueMatch::Absent).matches(Some("")));
        assert!(matcher("a", ValueMatch::Absent).matches(Some("&&")));
    }

    #[test]
    fn first_occurrence_wins() {
        let q = Some("a=1&a=2");
        assert!(matcher("a", ValueMatch::Exact("1".into())).matches(q));
        assert!(!matcher("a", ValueMatch::Exact("2".into())).matches(q));
    }

    #[test]
    fn names_are_decoded_and_case_sensitive() {
        assert!(matcher("user id", ValueMatch::Present).matches(Some("user%20id=1")));
        assert!(!matcher("a", ValueMatch::Present).matches(Some("A=1")));
    }

    #[test]
    fn decoded_value_may_be_non_utf8() {
        let q = Some("b=%ff%fe");
        assert!(matcher("b", ValueMatch::Exact("\u{ff}".into())).matches(Some("b=%C3%BF")));
        assert!(!matcher("b", ValueMatch::Regex(".*".into())).matches(q));
        assert!(matcher("b", ValueMatch::Present).matches(q));
    }
}
