//! The `rbac` YAML body (Envoy's shape), for the network filter and the stream filters.
//!
//! ```yaml
//! rbac:
//!   stat_prefix: edge.          # optional
//!   rules: { action: ALLOW, policies: { name: { permissions: [...], principals: [...] } } }
//!   shadow_rules: { ... }       # evaluated, logged and counted, never enforced
//! ```
//!
//! The network filter sees only the connection, so a permission or principal that needs a
//! request (`header`, `url_path`) is an error there, named by its YAML path.

use std::sync::Arc;

use sluice_config::decode::{join, keyword, seq, single_key, Cx, Fields};
use sluice_config::route::{HeaderMatch, ValueMatch};
use sluice_config::yaml::NodeKind;
use sluice_config::{Cidr, Decode, NetworkFilterConfig, Node};

use crate::stream::StreamFilterConfig;

#[derive(Debug, Clone, Default)]
pub struct RbacConfig {
    /// Enforced; `None` allows everything.
    pub rules: Option<Rules>,
    /// Evaluated, logged and counted only.
    pub shadow_rules: Option<Rules>,
    /// Replaces the default counter scope (see docs/rbac.md).
    pub stat_prefix: Option<String>,
}

impl NetworkFilterConfig for RbacConfig {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StreamFilterConfig for RbacConfig {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Allowed iff some policy matches.
    Allow,
    /// Denied iff some policy matches.
    Deny,
}

#[derive(Debug, Clone)]
pub struct Rules {
    pub action: Action,
    /// In config order (the first matching policy is the one named in logs).
    pub policies: Vec<(String, Policy)>,
}

/// Matches when some permission and some principal match.
#[derive(Debug, Clone)]
pub struct Policy {
    pub permissions: Vec<Permission>,
    pub principals: Vec<Principal>,
}

/// A string test with Envoy's `ignore_case`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringMatch {
    pub value: ValueMatch,
    pub ignore_case: bool,
}

#[derive(Debug, Clone)]
pub enum Permission {
    Any,
    Header(HeaderMatch),
    /// The path without the query.
    UrlPath(StringMatch),
    DestinationPort(u16),
    DestinationIp(Cidr),
    /// The TLS SNI (empty when none was sent).
    RequestedServerName(StringMatch),
    And(Vec<Permission>),
    Or(Vec<Permission>),
    Not(Box<Permission>),
}

#[derive(Debug, Clone)]
pub enum Principal {
    Any,
    /// A verified client certificate; with a name, one whose URI SANs, DNS SANs or subject
    /// match it.
    Authenticated(Option<StringMatch>),
    /// The TCP peer's address (`source_ip`, `direct_remote_ip`, and for now `remote_ip`).
    SourceIp(Cidr),
    Header(HeaderMatch),
    And(Vec<Principal>),
    Or(Vec<Principal>),
    Not(Box<Principal>),
}

/// Where the engine runs: what it can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Network,
    Stream,
}

pub fn decode_network(
    node: &Node,
    path: &str,
    cx: &mut Cx,
) -> Option<Arc<dyn NetworkFilterConfig>> {
    decode(node, path, cx, Level::Network).map(|c| Arc::new(c) as Arc<dyn NetworkFilterConfig>)
}

pub fn decode_stream(node: &Node, path: &str, cx: &mut Cx) -> Option<Arc<dyn StreamFilterConfig>> {
    decode(node, path, cx, Level::Stream).map(|c| Arc::new(c) as Arc<dyn StreamFilterConfig>)
}

pub fn decode(node: &Node, path: &str, cx: &mut Cx, level: Level) -> Option<RbacConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let rules = f
        .node("rules")
        .map(|n| decode_rules(n, &join(path, "rules"), cx, level));
    let shadow = f
        .node("shadow_rules")
        .map(|n| decode_rules(n, &join(path, "shadow_rules"), cx, level));
    let stat_prefix = f.optional::<String>("stat_prefix", cx);
    f.finish(cx);
    Some(RbacConfig {
        rules: match rules {
            Some(r) => Some(r?),
            None => None,
        },
        shadow_rules: match shadow {
            Some(r) => Some(r?),
            None => None,
        },
        stat_prefix: stat_prefix.ok()?,
    })
}

fn decode_rules(node: &Node, path: &str, cx: &mut Cx, level: Level) -> Option<Rules> {
    let mut f = Fields::new(node, path, cx)?;
    let action = match f.node("action") {
        Some(n) => keyword(
            n,
            &join(path, "action"),
            cx,
            "action",
            &["ALLOW", "DENY"],
            |name| match name.to_ascii_uppercase().as_str() {
                "ALLOW" => Some(Action::Allow),
                "DENY" => Some(Action::Deny),
                _ => None,
            },
        ),
        None => Some(Action::Allow),
    };
    let ppath = join(path, "policies");
    let policies = match f.node("policies") {
        None => {
            cx.error(f.line(), path, "missing required field \"policies\"");
            None
        }
        Some(n) => match &n.kind {
            NodeKind::Map(entries) if entries.is_empty() => {
                cx.error(n.line, &ppath, "needs at least one policy");
                None
            }
            NodeKind::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                let mut ok = true;
                for (name, body) in entries {
                    match decode_policy(body, &join(&ppath, name), cx, level) {
                        Some(p) => out.push((name.clone(), p)),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            _ => {
                cx.error(
                    n.line,
                    &ppath,
                    format!(
                        "expected a mapping of policy names to policies, found {}",
                        n.type_name()
                    ),
                );
                None
            }
        },
    };
    f.finish(cx);
    Some(Rules {
        action: action?,
        policies: policies?,
    })
}

fn decode_policy(node: &Node, path: &str, cx: &mut Cx, level: Level) -> Option<Policy> {
    let mut f = Fields::new(node, path, cx)?;
    let permissions = non_empty(&mut f, "permissions", cx, |n, p, cx| {
        decode_permission(n, p, cx, level)
    });
    let principals = non_empty(&mut f, "principals", cx, |n, p, cx| {
        decode_principal(n, p, cx, level)
    });
    f.finish(cx);
    Some(Policy {
        permissions: permissions?,
        principals: principals?,
    })
}

/// A required list with at least one item.
fn non_empty<T>(
    f: &mut Fields<'_>,
    key: &'static str,
    cx: &mut Cx,
    item: impl FnMut(&Node, &str, &mut Cx) -> Option<T>,
) -> Option<Vec<T>> {
    let path = join(f.path(), key);
    let Some(node) = f.node(key) else {
        cx.error(
            f.line(),
            f.path(),
            format!("missing required field \"{key}\""),
        );
        return None;
    };
    let list = seq(node, &path, cx, item)?;
    if list.is_empty() {
        cx.error(
            node.line,
            &path,
            "needs at least one entry (use `- any: true` for all)",
        );
        return None;
    }
    Some(list)
}

const PERMISSIONS: [&str; 9] = [
    "any",
    "header",
    "url_path",
    "destination_port",
    "destination_ip",
    "requested_server_name",
    "and_rules",
    "or_rules",
    "not_rule",
];

const PRINCIPALS: [&str; 9] = [
    "any",
    "authenticated",
    "source_ip",
    "direct_remote_ip",
    "remote_ip",
    "header",
    "and_ids",
    "or_ids",
    "not_id",
];

/// `{ kind: body }` with `kind` one of `kinds`: reports anything else.
fn kind_of<'n>(
    node: &'n Node,
    path: &str,
    cx: &mut Cx,
    what: &str,
    kinds: &[&'static str],
) -> Option<(&'n str, &'n Node, String)> {
    if !matches!(node.kind, NodeKind::Map(_)) {
        cx.error(
            node.line,
            path,
            format!(
                "expected a {what} such as {{ {}: ... }}, found {}",
                kinds[1],
                node.type_name()
            ),
        );
        return None;
    }
    let (kind, body) = single_key(node, path, cx)?;
    if !kinds.contains(&kind) {
        let hint = sluice_config::decode::did_you_mean(kind, kinds.iter().copied());
        cx.error(
            node.line,
            &join(path, kind),
            format!(
                "unknown {what} \"{kind}\"{hint}; expected one of: {}",
                kinds.join(", ")
            ),
        );
        return None;
    }
    Some((kind, body, join(path, kind)))
}

fn request_only(kind: &str, level: Level, line: usize, path: &str, cx: &mut Cx) -> Option<()> {
    if level == Level::Network {
        cx.error(
            line,
            path,
            format!(
                "\"{kind}\" needs a request: use it in http_filters or stream_filters, not in the network rbac filter"
            ),
        );
        return None;
    }
    Some(())
}

fn decode_permission(node: &Node, path: &str, cx: &mut Cx, level: Level) -> Option<Permission> {
    let (kind, body, kpath) = kind_of(node, path, cx, "permission", &PERMISSIONS)?;
    Some(match kind {
        "any" => {
            must_be_true(body, &kpath, cx)?;
            Permission::Any
        }
        "header" => {
            request_only(kind, level, body.line, &kpath, cx)?;
            Permission::Header(HeaderMatch::decode(body, &kpath, cx)?)
        }
        "url_path" => {
            request_only(kind, level, body.line, &kpath, cx)?;
            let mut f = Fields::new(body, &kpath, cx)?;
            let path_node = f.node("path");
            let ignore_case = f.or("ignore_case", false, cx);
            f.finish(cx);
            let Some(pn) = path_node else {
                cx.error(body.line, &kpath, "missing required field \"path\"");
                return None;
            };
            let mut m = decode_string_match(pn, &join(&kpath, "path"), cx)?;
            m.ignore_case |= ignore_case?;
            Permission::UrlPath(m)
        }
        "destination_port" => Permission::DestinationPort(u16::decode(body, &kpath, cx)?),
        "destination_ip" => Permission::DestinationIp(Cidr::decode(body, &kpath, cx)?),
        "requested_server_name" => {
            Permission::RequestedServerName(decode_string_match(body, &kpath, cx)?)
        }
        "and_rules" | "or_rules" => {
            let mut f = Fields::new(body, &kpath, cx)?;
            let rules = non_empty(&mut f, "rules", cx, |n, p, cx| {
                decode_permission(n, p, cx, level)
            });
            f.finish(cx);
            if kind == "and_rules" {
                Permission::And(rules?)
            } else {
                Permission::Or(rules?)
            }
        }
        _ => Permission::Not(Box::new(decode_permission(body, &kpath, cx, level)?)),
    })
}

fn decode_principal(node: &Node, path: &str, cx: &mut Cx, level: Level) -> Option<Principal> {
    let (kind, body, kpath) = kind_of(node, path, cx, "principal", &PRINCIPALS)?;
    Some(match kind {
        "any" => {
            must_be_true(body, &kpath, cx)?;
            Principal::Any
        }
        "authenticated" => {
            let mut f = Fields::new(body, &kpath, cx)?;
            let name = f.node("principal_name");
            f.finish(cx);
            match name {
                None => Principal::Authenticated(None),
                Some(n) => Principal::Authenticated(Some(decode_string_match(
                    n,
                    &join(&kpath, "principal_name"),
                    cx,
                )?)),
            }
        }
        "source_ip" | "direct_remote_ip" | "remote_ip" => {
            Principal::SourceIp(Cidr::decode(body, &kpath, cx)?)
        }
        "header" => {
            request_only(kind, level, body.line, &kpath, cx)?;
            Principal::Header(HeaderMatch::decode(body, &kpath, cx)?)
        }
        "and_ids" | "or_ids" => {
            let mut f = Fields::new(body, &kpath, cx)?;
            let ids = non_empty(&mut f, "ids", cx, |n, p, cx| {
                decode_principal(n, p, cx, level)
            });
            f.finish(cx);
            if kind == "and_ids" {
                Principal::And(ids?)
            } else {
                Principal::Or(ids?)
            }
        }
        _ => Principal::Not(Box::new(decode_principal(body, &kpath, cx, level)?)),
    })
}

fn must_be_true(node: &Node, path: &str, cx: &mut Cx) -> Option<()> {
    if bool::decode(node, path, cx)? {
        Some(())
    } else {
        cx.error(node.line, path, "must be true (remove the entry instead)");
        None
    }
}

/// Envoy's string matcher: one of exact, prefix, suffix, contains, regex; and `ignore_case`.
fn decode_string_match(node: &Node, path: &str, cx: &mut Cx) -> Option<StringMatch> {
    let mut f = Fields::new(node, path, cx)?;
    let value = sluice_config::decode_value_match(&mut f, cx);
    let ignore_case = f.or("ignore_case", false, cx);
    f.finish(cx);
    Some(StringMatch {
        value: value?,
        ignore_case: ignore_case?,
    })
}
