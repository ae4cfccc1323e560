//! A compiled [`ValueMatch`]: the string test shared by header and query parameter matchers.
//!
//! Values are tested as bytes, not `str`: a header value may carry obs-text (non-UTF-8
//! bytes) and a percent-decoded query value may be any bytes. Such a value can still match
//! exactly, by prefix, and so on; a regex sees it through `regex::bytes`, where `.` does not
//! match an invalid UTF-8 byte. All comparisons are case-sensitive: the model has no
//! `ignore_case` for values (a regex can use `(?i)`).

use regex::bytes::Regex;
use sluice_config::route::ValueMatch;

#[derive(Debug)]
pub enum ValueMatcher {
    Exact(Box<[u8]>),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    /// An escaped literal as a regex: the regex crate searches literals with SIMD substring
    /// search, linear in the value, where a naive window scan is value x needle and the value
    /// comes from the network.
    Contains(Regex),
    /// Anchored at compile time to match the whole value.
    Regex(Regex),
    Present,
    Absent,
}

impl ValueMatcher {
    /// Fails only on a regex that does not compile; the error is `(pattern, error)` so the
    /// caller can say which route and field it belongs to.
    pub fn compile(value: &ValueMatch) -> Result<Self, (String, regex::Error)> {
        Ok(match value {
            ValueMatch::Exact(s) => ValueMatcher::Exact(s.as_bytes().into()),
            ValueMatch::Prefix(s) => ValueMatcher::Prefix(s.as_bytes().into()),
            ValueMatch::Suffix(s) => ValueMatcher::Suffix(s.as_bytes().into()),
            ValueMatch::Contains(s) => {
                ValueMatcher::Contains(Regex::new(&regex::escape(s)).map_err(|e| (s.clone(), e))?)
            }
            ValueMatch::Regex(s) => {
                ValueMatcher::Regex(Regex::new(&anchored(s)).map_err(|e| (s.clone(), e))?)
            }
            ValueMatch::Present => ValueMatcher::Present,
            ValueMatch::Absent => ValueMatcher::Absent,
        })
    }

    /// Whether the test looks at the value at all (`present`/`absent` only ask whether there
    /// is one), so callers can skip assembling it.
    pub fn needs_value(&self) -> bool {
        !matches!(self, ValueMatcher::Present | ValueMatcher::Absent)
    }

    /// `value` is `None` when the header or parameter is not in the request at all, which
    /// only `Absent` accepts; every other kind needs a value to test.
    pub fn matches(&self, value: Option<&[u8]>) -> bool {
        let Some(v) = value else {
            return matches!(self, ValueMatcher::Absent);
        };
        match self {
            ValueMatcher::Exact(s) => v == &**s,
            ValueMatcher::Prefix(s) => v.starts_with(s),
            ValueMatcher::Suffix(s) => v.ends_with(s),
            ValueMatcher::Contains(re) | ValueMatcher::Regex(re) => re.is_match(v),
            ValueMatcher::Present => true,
            ValueMatcher::Absent => false,
        }
    }
}

/// Wraps a user pattern so it must match the whole input. The non-capturing group keeps an
/// alternation (`a|b`) from escaping the anchors, and flags set inside it stay inside it.
pub(crate) fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: ValueMatch) -> ValueMatcher {
        ValueMatcher::compile(&v).unwrap()
    }

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn exact_prefix_suffix_contains() {
        let exact = m(ValueMatch::Exact(s("abc")));
        assert!(exact.matches(Some(b"abc")));
        assert!(!exact.matches(Some(b"abcd")));
        assert!(!exact.matches(Some(b"ABC")));
        assert!(!exact.matches(None));

        let prefix = m(ValueMatch::Prefix(s("ab")));
        assert!(prefix.matches(Some(b"abc")));
        assert!(prefix.matches(Some(b"ab")));
        assert!(!prefix.matches(Some(b"a")));

        let suffix = m(ValueMatch::Suffix(s("bc")));
        assert!(suffix.matches(Some(b"abc")));
        assert!(!suffix.matches(Some(b"abcd")));

        let contains = m(ValueMatch::Contains(s("b.c")));
        assert!(contains.matches(Some(b"ab.cd")));
        // The needle is a literal, not a regex.
        assert!(!contains.matches(Some(b"abxcd")));
    }

    #[test]
    fn empty_needles_match_any_value() {
        for v in [
            ValueMatch::Prefix(s("")),
            ValueMatch::Suffix(s("")),
            ValueMatch::Contains(s("")),
        ] {
            let v = m(v);
            assert!(v.matches(Some(b"")));
            assert!(v.matches(Some(b"x")));
            assert!(!v.matches(None));
        }
        assert!(m(ValueMatch::Exact(s(""))).matches(Some(b"")));
        assert!(!m(ValueMatch::Exact(s(""))).matches(Some(b"x")));
    }

    #[test]
    fn regex_matches_whole_value() {
        let re = m(ValueMatch::Regex(s("[0-9]+")));
        assert!(re.matches(Some(b"123")));
        assert!(!re.matches(Some(b"a123")));
        assert!(!re.matches(Some(b"123a")));
        let alt = m(ValueMatch::Regex(s("a|b")));
        assert!(alt.matches(Some(b"a")));
        assert!(!alt.matches(Some(b"ab")));
        assert!(!alt.matches(Some(b"xa")));
        let ci = m(ValueMatch::Regex(s("(?i)abc")));
        assert!(ci.matches(Some(b"ABC")));
    }

    #[test]
    fn present_and_absent() {
        let present = m(ValueMatch::Present);
        assert!(present.matches(Some(b"")));
        assert!(!present.matches(None));
        let absent = m(ValueMatch::Absent);
        assert!(absent.matches(None));
        assert!(!absent.matches(Some(b"")));
    }

    #[test]
    fn non_utf8_values() {
        assert!(m(ValueMatch::Prefix(s("ab"))).matches(Some(b"ab\xff")));
        assert!(!m(ValueMatch::Regex(s(".*"))).matches(Some(b"ab\xff")));
        assert!(m(ValueMatch::Regex(s("(?-u:.)*"))).matches(Some(b"ab\xff")));
    }

    #[test]
    fn invalid_regex_is_an_error() {
        let (pattern, _) = ValueMatcher::compile(&ValueMatch::Regex(s("(unclosed"))).unwrap_err();
        assert_eq!(pattern, "(unclosed");
    }
}
