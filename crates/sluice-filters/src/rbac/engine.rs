//! The policy engine: rules compiled once (regexes, header names), evaluated per connection
//! or request without allocating (except a case-insensitive match on a string with capitals,
//! and a header rule on a repeated header, see `sluice_proxy::route::HeaderMatcher`).

use std::net::IpAddr;

use sluice_config::route::ValueMatch;
use sluice_config::Cidr;
use sluice_net::{ConnectionInfo, PeerAddr};
use sluice_proxy::route::{HeaderMatcher, RequestView, ValueMatcher};

use super::config::{Action, Permission, Policy, Principal, Rules, StringMatch};

/// What one evaluation sees: the connection, and the request for stream filters.
pub struct Input<'a> {
    pub conn: &'a ConnectionInfo,
    pub request: Option<&'a RequestView<'a>>,
}

impl Input<'_> {
    fn peer_ip(&self) -> Option<IpAddr> {
        match self.conn.peer {
            PeerAddr::Tcp(a) => Some(a.ip()),
            PeerAddr::Unix => None,
        }
    }
}

/// The outcome of one rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'e> {
    pub allowed: bool,
    /// The policy that matched, if any (ALLOW: the one that allowed; DENY: the one that
    /// denied).
    pub policy: Option<&'e str>,
}

#[derive(Debug)]
pub struct Engine {
    action: Action,
    policies: Vec<(String, CompiledPolicy)>,
}

impl Engine {
    pub fn compile(rules: &Rules) -> Result<Engine, String> {
        let policies = rules
            .policies
            .iter()
            .map(|(name, p)| {
                CompiledPolicy::compile(p)
                    .map(|c| (name.clone(), c))
                    .map_err(|e| format!("policy \"{name}\": {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Engine {
            action: rules.action,
            policies,
        })
    }

    pub fn action(&self) -> Action {
        self.action
    }

    pub fn evaluate(&self, input: &Input<'_>) -> Decision<'_> {
        let matched = self
            .policies
            .iter()
            .find(|(_, p)| p.matches(input))
            .map(|(name, _)| name.as_str());
        Decision {
            allowed: match self.action {
                Action::Allow => matched.is_some(),
                Action::Deny => matched.is_none(),
            },
            policy: matched,
        }
    }
}

#[derive(Debug)]
struct CompiledPolicy {
    permissions: Vec<Perm>,
    principals: Vec<Id>,
}

impl CompiledPolicy {
    fn compile(p: &Policy) -> Result<Self, String> {
        Ok(CompiledPolicy {
            permissions: p
                .permissions
                .iter()
                .map(Perm::compile)
                .collect::<Result<_, _>>()?,
            principals: p
                .principals
                .iter()
                .map(Id::compile)
                .collect::<Result<_, _>>()?,
        })
    }

    fn matches(&self, input: &Input<'_>) -> bool {
        self.permissions.iter().any(|p| p.matches(input))
            && self.principals.iter().any(|p| p.matches(input))
    }
}

/// A compiled string matcher; `ignore_case` compares ASCII-lower-cased, as Envoy does
/// (regexes get `(?i)`).
#[derive(Debug)]
struct Text {
    matcher: ValueMatcher,
    ignore_case: bool,
}

impl Text {
    fn compile(m: &StringMatch) -> Result<Text, String> {
        let value = if m.ignore_case {
            match &m.value {
                ValueMatch::Exact(s) => ValueMatch::Exact(s.to_ascii_lowercase()),
                ValueMatch::Prefix(s) => ValueMatch::Prefix(s.to_ascii_lowercase()),
                ValueMatch::Suffix(s) => ValueMatch::Suffix(s.to_ascii_lowercase()),
                ValueMatch::Contains(s) => ValueMatch::Contains(s.to_ascii_lowercase()),
                ValueMatch::Regex(s) => ValueMatch::Regex(format!("(?i:{s})")),
                other => other.clone(),
            }
        } else {
            m.value.clone()
        };
        let matcher = ValueMatcher::compile(&value)
            .map_err(|(pattern, e)| format!("invalid regex {pattern:?}: {e}"))?;
        Ok(Text {
            matcher,
            ignore_case: m.ignore_case,
        })
    }

    fn matches(&self, value: &str) -> bool {
        if self.ignore_case && value.bytes().any(|b| b.is_ascii_uppercase()) {
            return self
                .matcher
                .matches(Some(value.to_ascii_lowercase().as_bytes()));
        }
        self.matcher.matches(Some(value.as_bytes()))
    }
}

fn header(m: &sluice_config::route::HeaderMatch) -> Result<HeaderMatcher, String> {
    HeaderMatcher::compile(m, "rbac").map_err(|e| e.to_string())
}

#[derive(Debug)]
enum Perm {
    Any,
    Header(HeaderMatcher),
    UrlPath(Text),
    DestinationPort(u16),
    DestinationIp(Cidr),
    ServerName(Text),
    And(Vec<Perm>),
    Or(Vec<Perm>),
    Not(Box<Perm>),
}

impl Perm {
    fn compile(p: &Permission) -> Result<Perm, String> {
        let all = |ps: &[Permission]| ps.iter().map(Perm::compile).collect::<Result<_, _>>();
        Ok(match p {
            Permission::Any => Perm::Any,
            Permission::Header(h) => Perm::Header(header(h)?),
            Permission::UrlPath(m) => Perm::UrlPath(Text::compile(m)?),
            Permission::DestinationPort(port) => Perm::DestinationPort(*port),
            Permission::DestinationIp(c) => Perm::DestinationIp(*c),
            Permission::RequestedServerName(m) => Perm::ServerName(Text::compile(m)?),
            Permission::And(ps) => Perm::And(all(ps)?),
            Permission::Or(ps) => Perm::Or(all(ps)?),
            Permission::Not(p) => Perm::Not(Box::new(Perm::compile(p)?)),
        })
    }

    fn matches(&self, input: &Input<'_>) -> bool {
        match self {
            Perm::Any => true,
            Perm::Header(h) => input.request.is_some_and(|r| h.matches(r)),
            Perm::UrlPath(t) => input.request.is_some_and(|r| t.matches(r.path())),
            Perm::DestinationPort(port) => input.conn.local.is_some_and(|a| a.port() == *port),
            Perm::DestinationIp(c) => input.conn.local.is_some_and(|a| c.contains(a.ip())),
            Perm::ServerName(t) => t.matches(
                input
                    .conn
                    .tls
                    .as_ref()
                    .and_then(|t| t.server_name.as_deref())
                    .unwrap_or(""),
            ),
            Perm::And(ps) => ps.iter().all(|p| p.matches(input)),
            Perm::Or(ps) => ps.iter().any(|p| p.matches(input)),
            Perm::Not(p) => !p.matches(input),
        }
    }
}

#[derive(Debug)]
enum Id {
    Any,
    Authenticated(Option<Text>),
    SourceIp(Cidr),
    Header(HeaderMatcher),
    And(Vec<Id>),
    Or(Vec<Id>),
    Not(Box<Id>),
}

impl Id {
    fn compile(p: &Principal) -> Result<Id, String> {
        let all = |ps: &[Principal]| ps.iter().map(Id::compile).collect::<Result<_, _>>();
        Ok(match p {
            Principal::Any => Id::Any,
            Principal::Authenticated(None) => Id::Authenticated(None),
            Principal::Authenticated(Some(m)) => Id::Authenticated(Some(Text::compile(m)?)),
            Principal::SourceIp(c) => Id::SourceIp(*c),
            Principal::Header(h) => Id::Header(header(h)?),
            Principal::And(ps) => Id::And(all(ps)?),
            Principal::Or(ps) => Id::Or(all(ps)?),
            Principal::Not(p) => Id::Not(Box::new(Id::compile(p)?)),
        })
    }

    fn matches(&self, input: &Input<'_>) -> bool {
        match self {
            Id::Any => true,
            Id::Authenticated(name) => {
                let Some(peer) = input.conn.tls.as_ref().and_then(|t| t.peer.as_ref()) else {
                    return false;
                };
                // Envoy's order: any URI SAN, then any DNS SAN, then the subject.
                name.as_ref().is_none_or(|t| {
                    peer.uri_sans.iter().any(|u| t.matches(u))
                        || peer.dns_sans.iter().any(|d| t.matches(d))
                        || t.matches(&peer.subject)
                })
            }
            Id::SourceIp(c) => input.peer_ip().is_some_and(|ip| c.contains(ip)),
            Id::Header(h) => input.request.is_some_and(|r| h.matches(r)),
            Id::And(ps) => ps.iter().all(|p| p.matches(input)),
            Id::Or(ps) => ps.iter().any(|p| p.matches(input)),
            Id::Not(p) => !p.matches(input),
        }
    }
}
