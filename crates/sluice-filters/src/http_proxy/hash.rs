//! A request's hash for `ring_hash` and `maglev` clusters, from the route's `hash_policy`.
//!
//! Policies are tried in order; each that finds its value mixes that value's hash in, and a
//! `terminal` one that found its value ends the list. Nothing is computed for clusters whose
//! policy does not hash. A cookie policy with a `ttl` whose cookie is absent makes one up,
//! hashes it, and has the response set it, so the client's next requests stick to the host.

use std::net::IpAddr;

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use sluice_config::route::{HashPolicy, HashSource};
use sluice_upstream::lb::{hash_ip, hash_key};

/// The outcome: the hash, and the cookie to set if one was made up.
#[derive(Debug, Default)]
pub struct RequestHash {
    pub hash: Option<u64>,
    pub set_cookie: Option<HeaderValue>,
}

impl RequestHash {
    /// Adds the made-up cookie, if any, to the response.
    pub fn apply(self, response: &mut HeaderMap) {
        if let Some(cookie) = self.set_cookie {
            response.append(SET_COOKIE, cookie);
        }
    }
}

pub fn compute(
    policies: &[HashPolicy],
    headers: &HeaderMap,
    path_and_query: &str,
    client: Option<IpAddr>,
) -> RequestHash {
    let mut out = RequestHash::default();
    for policy in policies {
        let value = match &policy.source {
            HashSource::Header(name) => header_hash(headers, name),
            HashSource::Cookie { name, ttl, path } => match cookie(headers, name) {
                Some(v) => Some(hash_key(v.as_bytes())),
                None => match ttl {
                    None => None,
                    Some(ttl) => {
                        let value = format!("{:016x}", fastrand::u64(..));
                        let mut set = format!("{name}={value}; Max-Age={}", ttl.as_secs().max(1));
                        if let Some(p) = path {
                            set.push_str("; Path=");
                            set.push_str(p);
                        }
                        set.push_str("; HttpOnly");
                        out.set_cookie = HeaderValue::from_str(&set).ok();
                        Some(hash_key(value.as_bytes()))
                    }
                },
            },
            HashSource::SourceIp => client.map(hash_ip),
            HashSource::QueryParameter(name) => {
                query_value(path_and_query, name).map(|v| hash_key(v.as_bytes()))
            }
        };
        if let Some(h) = value {
            out.hash = Some(match out.hash {
                None => h,
                Some(before) => before.rotate_left(1) ^ h,
            });
            if policy.terminal {
                break;
            }
        }
    }
    out
}

/// The hash of a header's values in order (a repeated header hashes all of them).
fn header_hash(headers: &HeaderMap, name: &str) -> Option<u64> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut h = hash_key(first.as_bytes());
    for v in values {
        h = h.rotate_left(1) ^ hash_key(v.as_bytes());
    }
    Some(h)
}

/// The value of cookie `name` in the request's `Cookie` fields.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The raw value of the first `name=` parameter of the query.
fn query_value<'q>(path_and_query: &'q str, name: &str) -> Option<&'q str> {
    let (_, query) = path_and_query.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn policy(source: HashSource, terminal: bool) -> HashPolicy {
        HashPolicy { source, terminal }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn header_policy_is_stable_and_absent_means_none() {
        let p = [policy(HashSource::Header("x-user".into()), false)];
        let a = compute(&p, &headers(&[("x-user", "alice")]), "/", None);
        let b = compute(&p, &headers(&[("x-user", "alice")]), "/", None);
        let c = compute(&p, &headers(&[("x-user", "bob")]), "/", None);
        assert_eq!(a.hash, b.hash);
        assert_ne!(a.hash, c.hash);
        assert!(compute(&p, &headers(&[]), "/", None).hash.is_none());
    }

    #[test]
    fn cookie_query_and_source_ip() {
        let cookie = [policy(
            HashSource::Cookie {
                name: "sid".into(),
                ttl: None,
                path: None,
            },
            false,
        )];
        let h = headers(&[("cookie", "a=1; sid=xyz")]);
        assert_eq!(compute(&cookie, &h, "/", None).hash, Some(hash_key(b"xyz")));
        let q = [policy(HashSource::QueryParameter("u".into()), false)];
        assert_eq!(
            compute(&q, &HeaderMap::new(), "/p?x=1&u=42", None).hash,
            Some(hash_key(b"42"))
        );
        assert!(compute(&q, &HeaderMap::new(), "/p?x=1", None)
            .hash
            .is_none());
        let ip = [policy(HashSource::SourceIp, false)];
        let client: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(
            compute(&ip, &HeaderMap::new(), "/", Some(client)).hash,
            Some(hash_key(&[10, 0, 0, 1]))
        );
    }

    #[test]
    fn a_missing_cookie_with_ttl_is_made_up_and_set() {
        let p = [policy(
            HashSource::Cookie {
                name: "sid".into(),
                ttl: Some(Duration::from_secs(3600)),
                path: Some("/".into()),
            },
            false,
        )];
        let out = compute(&p, &HeaderMap::new(), "/", None);
        let set = out.set_cookie.clone().unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("sid="), "{set}");
        assert!(set.contains("; Max-Age=3600; Path=/; HttpOnly"), "{set}");
        // The client sending it back gets the same hash.
        let value = set["sid=".len()..].split(';').next().unwrap();
        let back = headers(&[("cookie", &format!("sid={value}"))]);
        assert_eq!(compute(&p, &back, "/", None).hash, out.hash);
        assert!(compute(&p, &back, "/", None).set_cookie.is_none());
    }

    #[test]
    fn terminal_stops_after_a_value() {
        let p = [
            policy(HashSource::Header("x-a".into()), true),
            policy(HashSource::Header("x-b".into()), false),
        ];
        let only_a = compute(&p, &headers(&[("x-a", "1"), ("x-b", "2")]), "/", None);
        assert_eq!(only_a.hash, Some(hash_key(b"1")));
        // `x-a` absent: the next policy applies.
        let b = compute(&p, &headers(&[("x-b", "2")]), "/", None);
        assert_eq!(b.hash, Some(hash_key(b"2")));
    }
}
