//! Path matching: prefix, exact or regex, always on the path without the query string.
//!
//! `case_sensitive: false` makes prefix and exact compare ASCII case-insensitively (paths are
//! ASCII on the wire; anything else arrives percent-encoded). As in Envoy it does not apply to
//! a regex, whose author can write `(?i)`. No normalisation happens here (`/a/../b`, `%2F`):
//! that is the HTTP layer's decision, made once before routing.

use regex::Regex;
use sluice_config::route::PathMatch;

use super::value::anchored;

#[derive(Debug)]
pub(crate) enum PathMatcher {
    Prefix {
        prefix: String,
        case_sensitive: bool,
    },
    Exact {
        path: String,
        case_sensitive: bool,
    },
    /// Anchored at compile time to match the whole path.
    Regex(Regex),
}

impl PathMatcher {
    /// Fails only on a regex that does not compile.
    pub(crate) fn compile(path: &PathMatch, case_sensitive: bool) -> Result<Self, regex::Error> {
        Ok(match path {
            PathMatch::Prefix(prefix) => PathMatcher::Prefix {
                prefix: prefix.clone(),
                case_sensitive,
            },
            PathMatch::Exact(path) => PathMatcher::Exact {
                path: path.clone(),
                case_sensitive,
            },
            PathMatch::Regex(pattern) => PathMatcher::Regex(Regex::new(&anchored(pattern))?),
        })
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Prefix {
                prefix,
                case_sensitive: true,
            } => path.starts_with(prefix.as_str()),
            PathMatcher::Prefix {
                prefix,
                case_sensitive: false,
            } => {
                // Compared as bytes: slicing a `str` at `prefix.len()` could fall inside a
                // multi-byte character and panic.
                let (path, prefix) = (path.as_bytes(), prefix.as_bytes());
                path.get(..prefix.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
            }
            PathMatcher::Exact {
                path: exact,
                case_sensitive: true,
            } => path == exact,
            PathMatcher::Exact {
                path: exact,
                case_sensitive: false,
            } => path.eq_ignore_ascii_case(exact),
            PathMatcher::Regex(re) => re.is_match(path),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(path: PathMatch, case_sensitive: bool) -> PathMatcher {
        PathMatcher::compile(&path, case_sensitive).unwrap()
    }

    #[test]
    fn prefix() {
        let p = m(PathMatch::Prefix("/api".into()), true);
        assert!(p.matches("/api"));
        assert!(p.matches("/api/v1"));
        assert!(p.matches("/apix")); // a prefix is a string prefix, not a segment prefix
        assert!(!p.matches("/ap"));
        assert!(!p.matches("/API/v1"));
        assert!(m(PathMatch::Prefix("".into()), true).matches(""));
        assert!(m(PathMatch::Prefix("/".into()), true).matches("/anything"));
    }

    #[test]
    fn prefix_case_insensitive() {
        let p = m(PathMatch::Prefix("/Api".into()), false);
        assert!(p.matches("/api/v1"));
        assert!(p.matches("/API"));
        assert!(!p.matches("/ap"));
        // A multi-byte character straddling the prefix length must not panic.
        let p = m(PathMatch::Prefix("/ab".into()), false);
        assert!(!p.matches("/aé"));
        assert!(!m(PathMatch::Prefix("/é".into()), false).matches("/e"));
    }

    #[test]
    fn exact() {
        let p = m(PathMatch::Exact("/health".into()), true);
        assert!(p.matches("/health"));
        assert!(!p.matches("/health/"));
        assert!(!p.matches("/Health"));
        let p = m(PathMatch::Exact("/health".into()), false);
        assert!(p.matches("/HEALTH"));
        assert!(!p.matches("/healthz"));
    }

    #[test]
    fn regex_is_whole_path_and_ignores_case_sensitive() {
        let p = m(PathMatch::Regex("/users/[0-9]+".into()), false);
        assert!(p.matches("/users/42"));
        assert!(!p.matches("/users/42/posts"));
        assert!(!p.matches("/v1/users/42"));
        assert!(!p.matches("/USERS/42"));
        let p = m(PathMatch::Regex("/a|/b".into()), true);
        assert!(p.matches("/b"));
        assert!(!p.matches("/b/c"));
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(PathMatcher::compile(&PathMatch::Regex("[".into()), true).is_err());
    }
}
