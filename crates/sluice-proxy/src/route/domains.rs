//! Choosing the virtual host for a request's authority.
//!
//! Precedence follows Envoy, so configs translated from xDS behave the same:
//! 1. an exact domain (`api.example.com`);
//! 2. a suffix wildcard (`*.example.com`, `*-bar.example.com`), the longest suffix winning;
//! 3. a prefix wildcard (`api.*`), the longest prefix winning;
//! 4. `*`.
//!
//! A wildcard stands for at least one character, so `*.example.com` does not match
//! `example.com`. Hosts compare ASCII case-insensitively (domains are lower-cased once when
//! compiled) and without the port. An edge proxy may carry thousands of virtual hosts, so no
//! step scans them: exact domains are a hash map, wildcards two byte tries walked once over
//! the host (see `trie.rs`).

use std::borrow::Cow;
use std::collections::HashMap;

use super::trie::LongestPrefixTrie;

/// Index of virtual hosts (by their position in the config) by domain.
#[derive(Debug, Default)]
pub(crate) struct DomainIndex {
    exact: HashMap<String, usize>,
    /// Suffix wildcards without the `*`, stored reversed.
    suffixes: LongestPrefixTrie,
    /// Prefix wildcards without the `*`.
    prefixes: LongestPrefixTrie,
    any: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DomainError {
    Invalid(&'static str),
    /// The domain already belongs to this virtual host.
    Taken(usize),
}

impl DomainIndex {
    /// Adds one of virtual host `vhost`'s domains. Repeating a domain within the same virtual
    /// host is harmless and accepted; claiming another virtual host's domain is an error.
    pub(crate) fn insert(&mut self, domain: &str, vhost: usize) -> Result<(), DomainError> {
        let domain = domain.to_ascii_lowercase();
        let taken = |owner: usize| {
            if owner == vhost {
                Ok(())
            } else {
                Err(DomainError::Taken(owner))
            }
        };
        if domain.is_empty() {
            return Err(DomainError::Invalid("a domain cannot be empty"));
        }
        if domain == "*" {
            return match self.any {
                Some(owner) => taken(owner),
                None => {
                    self.any = Some(vhost);
                    Ok(())
                }
            };
        }
        if let Some(suffix) = domain.strip_prefix('*') {
            check_no_star(suffix)?;
            return self
                .suffixes
                .insert(suffix.bytes().rev(), vhost)
                .or_else(taken);
        }
        if let Some(prefix) = domain.strip_suffix('*') {
            check_no_star(prefix)?;
            return self.prefixes.insert(prefix.bytes(), vhost).or_else(taken);
        }
        check_no_star(&domain)?;
        match self.exact.get(&domain) {
            Some(&owner) => taken(owner),
            None => {
                self.exact.insert(domain, vhost);
                Ok(())
            }
        }
    }

    /// The virtual host for a request authority (`Host` or `:authority`, port and all).
    pub(crate) fn find(&self, authority: &str) -> Option<usize> {
        let host = host_of(authority);
        if !self.exact.is_empty() {
            // Allocates only for a host that has upper-case letters, which clients rarely
            // send; the common lower-case host is looked up borrowed.
            let key = if host.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(host.to_ascii_lowercase())
            } else {
                Cow::Borrowed(host)
            };
            if let Some(&vhost) = self.exact.get(key.as_ref()) {
                return Some(vhost);
            }
        }
        let lower = host.bytes().map(|b| b.to_ascii_lowercase());
        let suffix = || {
            (!self.suffixes.is_empty())
                .then(|| self.suffixes.longest_proper_prefix(lower.clone().rev()))
                .flatten()
        };
        let prefix = || {
            (!self.prefixes.is_empty())
                .then(|| self.prefixes.longest_proper_prefix(lower.clone()))
                .flatten()
        };
        suffix().or_else(prefix).or(self.any)
    }
}

fn check_no_star(rest: &str) -> Result<(), DomainError> {
    if rest.contains('*') {
        Err(DomainError::Invalid(
            "`*` may only be the whole domain, its first or its last character",
        ))
    } else {
        Ok(())
    }
}

/// The host part of an authority: without userinfo (allowed in an absolute URI, deprecated)
/// and without a numeric port. An IPv6 literal keeps its brackets (`[::1]:8080` -> `[::1]`),
/// so a domain names it as `[::1]`. Anything that does not parse as host-and-port is returned
/// whole: it will simply not match an ordinary domain, which is safer than guessing.
pub(crate) fn host_of(authority: &str) -> &str {
    // Byte scans rather than `rsplit_once`: its searcher cost more than the domain lookup
    // on every request. `@` and `:` are ASCII, so the slices fall on character boundaries.
    let authority = match authority.bytes().rposition(|b| b == b'@') {
        Some(at) => authority.get(at + 1..).unwrap_or(authority),
        None => authority,
    };
    if authority.starts_with('[') {
        return match authority.split_once(']') {
            Some((inside, rest))
                if rest.is_empty() || rest.strip_prefix(':').is_some_and(is_port) =>
            {
                // `inside` starts with `[`; add back the `]` that split_once removed.
                authority.get(..inside.len() + 1).unwrap_or(authority)
            }
            _ => authority,
        };
    }
    let Some(colon) = authority.bytes().rposition(|b| b == b':') else {
        return authority;
    };
    match (authority.get(..colon), authority.get(colon + 1..)) {
        // A second `:` means an unbracketed IPv6 address, whose last group is not a port.
        (Some(host), Some(port)) if !host.bytes().any(|b| b == b':') && is_port(port) => host,
        _ => authority,
    }
}

/// What follows the host's `:`: digits, or nothing (RFC 3986 allows an empty port).
fn is_port(port: &str) -> bool {
    port.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(domains: &[&str]) -> DomainIndex {
        let mut ix = DomainIndex::default();
        for (i, d) in domains.iter().enumerate() {
            ix.insert(d, i).unwrap();
        }
        ix
    }

    #[test]
    fn host_of_strips_port_and_userinfo() {
        assert_eq!(host_of("example.com"), "example.com");
        assert_eq!(host_of("example.com:8080"), "example.com");
        assert_eq!(host_of("example.com:"), "example.com");
        assert_eq!(host_of("user:pw@example.com:80"), "example.com");
        assert_eq!(host_of("example.com:http"), "example.com:http");
        assert_eq!(host_of(""), "");
        assert_eq!(host_of(":80"), "");
    }

    #[test]
    fn host_of_ipv6() {
        assert_eq!(host_of("[::1]:8080"), "[::1]");
        assert_eq!(host_of("[::1]"), "[::1]");
        assert_eq!(host_of("[2001:db8::1]:"), "[2001:db8::1]");
        // Unbracketed: the last group is not a port.
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of("2001:db8::1"), "2001:db8::1");
        // Malformed literals are kept whole.
        assert_eq!(host_of("[::1"), "[::1");
        assert_eq!(host_of("[::1]x"), "[::1]x");
        assert_eq!(host_of("[::1]:x"), "[::1]:x");
        assert_eq!(host_of("[::1]8080"), "[::1]8080");
    }

    #[test]
    fn precedence_exact_suffix_prefix_any() {
        let ix = index(&["api.example.com", "*.example.com", "api.*", "*"]);
        assert_eq!(ix.find("api.example.com"), Some(0));
        assert_eq!(ix.find("www.example.com"), Some(1));
        // Suffix beats prefix even when the prefix would also match.
        assert_eq!(ix.find("api.v1.example.com"), Some(1));
        assert_eq!(ix.find("api.example.com.evil"), Some(2));
        assert_eq!(ix.find("api.other.org"), Some(2));
        assert_eq!(ix.find("other.org"), Some(3));
        assert_eq!(ix.find(""), Some(3));
    }

    #[test]
    fn longest_suffix_wins() {
        let ix = index(&[
            "*.com",
            "*.example.com",
            "*-bar.example.com",
            "*.b.example.com",
        ]);
        assert_eq!(ix.find("x.org.com"), Some(0));
        assert_eq!(ix.find("foo.example.com"), Some(1));
        assert_eq!(ix.find("baz-bar.example.com"), Some(2));
        assert_eq!(ix.find("a.b.example.com"), Some(3));
        assert_eq!(ix.find("a.x.b.example.com"), Some(3));
    }

    #[test]
    fn longest_prefix_wins() {
        let ix = index(&["api.*", "api.v2.*", "api-*"]);
        assert_eq!(ix.find("api.com"), Some(0));
        assert_eq!(ix.find("api.v2.com"), Some(1));
        assert_eq!(ix.find("api-eu.net"), Some(2));
        assert_eq!(ix.find("apix.com"), None);
    }

    #[test]
    fn wildcard_needs_at_least_one_character() {
        let ix = index(&["*.example.com", "example.*", "*-bar.example.com"]);
        assert_eq!(ix.find("example.com"), Some(1)); // the prefix wildcard, not the suffix
        assert_eq!(ix.find(".example.com"), None);
        assert_eq!(ix.find("example."), None);
        // `-bar.example.com` is the suffix with nothing before it; `*.example.com` still
        // matches it with `-bar` as the wildcard part.
        assert_eq!(ix.find("-bar.example.com"), Some(0));
    }

    #[test]
    fn case_insensitive_both_ways() {
        let ix = index(&["API.Example.com", "*.Wild.ORG", "Pre.*"]);
        assert_eq!(ix.find("api.example.COM"), Some(0));
        assert_eq!(ix.find("X.WILD.org"), Some(1));
        assert_eq!(ix.find("PRE.net"), Some(2));
    }

    #[test]
    fn port_is_ignored() {
        let ix = index(&["example.com", "*.example.com", "[::1]", "10.0.0.1"]);
        assert_eq!(ix.find("example.com:443"), Some(0));
        assert_eq!(ix.find("a.example.com:8080"), Some(1));
        assert_eq!(ix.find("[::1]:8080"), Some(2));
        assert_eq!(ix.find("[::1]"), Some(2));
        assert_eq!(ix.find("[::2]:8080"), None);
        assert_eq!(ix.find("10.0.0.1:80"), Some(3));
    }

    #[test]
    fn no_virtual_host() {
        let ix = index(&["a.example.com"]);
        assert_eq!(ix.find("b.example.com"), None);
        assert_eq!(ix.find(""), None);
        assert_eq!(DomainIndex::default().find("a"), None);
    }

    #[test]
    fn invalid_domains() {
        let mut ix = DomainIndex::default();
        for bad in ["", "**", "*.a.*", "a.*.com", "*a*"] {
            assert!(
                matches!(ix.insert(bad, 0), Err(DomainError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn duplicates() {
        let mut ix = index(&["a.com", "*.b.com", "c.*", "*"]);
        assert_eq!(ix.insert("A.com", 7), Err(DomainError::Taken(0)));
        assert_eq!(ix.insert("*.b.com", 7), Err(DomainError::Taken(1)));
        assert_eq!(ix.insert("c.*", 7), Err(DomainError::Taken(2)));
        assert_eq!(ix.insert("*", 7), Err(DomainError::Taken(3)));
        // The same virtual host naming a domain twice is fine.
        assert_eq!(ix.insert("a.com", 0), Ok(()));
        assert_eq!(ix.insert("*", 3), Ok(()));
        assert_eq!(ix.find("a.com"), Some(0));
    }
}
