//! Envoy's RBAC filters, HTTP (`envoy.extensions.filters.http.rbac.v3.RBAC`) and network
//! (`envoy.extensions.filters.network.rbac.v3.RBAC`), as the native `rbac` filter
//! (docs/rbac.md), which has Envoy's shape: `rules` and `shadow_rules` of policies made of
//! permissions and principals.
//!
//! Where the two forms differ, the output says in native terms what Envoy would do:
//! - policies are written in name order: Envoy evaluates them in that order (the first that
//!   matches is the one logged), and prost hands them over as a `HashMap`;
//! - rules without policies become one policy that matches nothing: Envoy then denies
//!   everything under ALLOW and allows everything under DENY, and so does that policy (the
//!   native side needs at least one);
//! - a header matcher becomes one or two native ones (see `route::header_matcher`); two are
//!   written as `and_rules` / `and_ids`;
//! - a `url_path` principal (the native side has `url_path` as a permission only) becomes a
//!   regex on the `:path` header: the path as Envoy would match it, then an optional query;
//! - `ignore_case` is dropped on `safe_regex`, where Envoy ignores it;
//! - the native side has one `stat_prefix` for both rule sets: the HTTP filter's
//!   `rules_stat_prefix` (or, with only shadow rules, `shadow_rules_stat_prefix`) becomes it,
//!   the network filter's `stat_prefix` is it.
//!
//! The network filter sees only the connection: `header` and `url_path` rules are refused
//! there (Envoy would test them against no headers at all).

use envoy_types::pb::envoy::config::rbac::v3::rbac::audit_logging_options::AuditCondition;
use envoy_types::pb::envoy::config::rbac::v3::rbac::{Action, AuditLoggingOptions};
use envoy_types::pb::envoy::config::rbac::v3::{
    permission, principal, Permission, Policy, Principal, Rbac as EnvoyRules,
};
use envoy_types::pb::envoy::extensions::filters::http::rbac::v3::Rbac as HttpRbac;
use envoy_types::pb::envoy::extensions::filters::network::rbac::v3::rbac::EnforcementType;
use envoy_types::pb::envoy::extensions::filters::network::rbac::v3::Rbac as NetworkRbac;
use envoy_types::pb::envoy::r#type::matcher::v3::{
    path_matcher, string_matcher::MatchPattern, PathMatcher, StringMatcher,
};
use sluice_config::yaml::Node;

use super::tree::{boolean, ignored, index, join, list, number, single, text, unsupported, Map};
use super::{listener, route, Error, Result};

/// The name of the policy that stands for "no policies" (see the module docs).
const NO_POLICIES: &str = "no-policies";

/// Where the filter runs, hence what its rules can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Http,
    Network,
}

impl Level {
    /// An error at `field` (a `header` or `url_path` rule) on the network filter.
    fn needs_request(self, field: &str) -> Result<()> {
        match self {
            Level::Http => Ok(()),
            Level::Network => Err(Error::new(
                field,
                "needs an HTTP request: the network RBAC filter cannot use it (an HTTP RBAC filter can)",
            )),
        }
    }
}

/// The native `rbac` body for Envoy's HTTP RBAC filter at `path`.
pub(crate) fn http_rbac(r: &HttpRbac, path: &str) -> Result<Node> {
    unsupported(r.matcher.is_some(), &join(path, "matcher"))?;
    unsupported(r.shadow_matcher.is_some(), &join(path, "shadow_matcher"))?;
    // Per-policy counters: stats only.
    ignored(r.track_per_rule_stats, path, "track_per_rule_stats");
    let mut m = Map::new();
    if let Some(rules) = &r.rules {
        m.set("rules", rule_set(rules, &join(path, "rules"), Level::Http)?);
    }
    if let Some(rules) = &r.shadow_rules {
        m.set(
            "shadow_rules",
            rule_set(rules, &join(path, "shadow_rules"), Level::Http)?,
        );
    }
    // Envoy writes `http.<prefix>.rbac.<rules_stat_prefix>denied` and
    // `...<shadow_rules_stat_prefix>shadow_denied`; the native side has one prefix, one level
    // up: `http.<prefix>.<stat_prefix>.rbac.denied`. It keeps two filters' counters apart
    // as Envoy's prefixes do; the separator Envoy's concatenation needed goes.
    let rules = ("rules_stat_prefix", &r.rules_stat_prefix);
    let shadow = ("shadow_rules_stat_prefix", &r.shadow_rules_stat_prefix);
    let (used, other) = if r.rules.is_some() {
        (rules, shadow)
    } else {
        (shadow, rules)
    };
    let prefix = used.1.trim_end_matches(['.', '_']);
    if m.is_empty() {
        // No rules: no counters.
        ignored(!used.1.is_empty(), path, used.0);
    } else if !prefix.is_empty() {
        m.set("stat_prefix", text(prefix));
    }
    ignored(!other.1.is_empty() && other.1 != used.1, path, other.0);
    Ok(m.build())
}

/// The native `rbac` body for Envoy's network RBAC filter at `path`.
pub(crate) fn network_rbac(r: &NetworkRbac, path: &str) -> Result<Node> {
    unsupported(r.matcher.is_some(), &join(path, "matcher"))?;
    unsupported(r.shadow_matcher.is_some(), &join(path, "shadow_matcher"))?;
    match EnforcementType::try_from(r.enforcement_type) {
        Ok(EnforcementType::OneTimeOnFirstByte) => {}
        Ok(EnforcementType::Continuous) => {
            return Err(Error::new(
                join(path, "enforcement_type"),
                "CONTINUOUS is not supported by Sluice (the network rbac filter decides once per connection)",
            ))
        }
        Err(_) => {
            return Err(Error::new(
                join(path, "enforcement_type"),
                format!("unknown value {}", r.enforcement_type),
            ))
        }
    }
    unsupported(
        r.delay_deny.is_some_and(|d| d.seconds != 0 || d.nanos != 0),
        &join(path, "delay_deny"),
    )?;
    let mut m = Map::new();
    if let Some(rules) = &r.rules {
        m.set(
            "rules",
            rule_set(rules, &join(path, "rules"), Level::Network)?,
        );
    }
    if let Some(rules) = &r.shadow_rules {
        m.set(
            "shadow_rules",
            rule_set(rules, &join(path, "shadow_rules"), Level::Network)?,
        );
    }
    // Envoy's counters are `<stat_prefix>.rbac.*` (a dot added when missing), as the native
    // ones are. Envoy requires the prefix; without one the native default (the listener's
    // name) applies.
    if !r.stat_prefix.is_empty() {
        m.set("stat_prefix", text(&r.stat_prefix));
    }
    // Envoy: `<stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_*`; natively the shadow
    // counters sit beside the others.
    ignored(
        !r.shadow_rules_stat_prefix.is_empty(),
        path,
        "shadow_rules_stat_prefix",
    );
    Ok(m.build())
}

/// `envoy.config.rbac.v3.RBAC` as native `rules` (or `shadow_rules`).
fn rule_set(r: &EnvoyRules, path: &str, level: Level) -> Result<Node> {
    let action = match Action::try_from(r.action) {
        Ok(Action::Allow) => "ALLOW",
        Ok(Action::Deny) => "DENY",
        Ok(Action::Log) => {
            return Err(Error::new(
                join(path, "action"),
                "LOG is not supported by Sluice (it marks requests for access logs through dynamic metadata, which Sluice does not have)",
            ))
        }
        Err(_) => {
            return Err(Error::new(
                join(path, "action"),
                format!("unknown action {}", r.action),
            ))
        }
    };
    if let Some(a) = &r.audit_logging_options {
        audit_logging(a, &join(path, "audit_logging_options"))?;
    }
    let ppath = join(path, "policies");
    let mut entries: Vec<(&String, &Policy)> = r.policies.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let mut policies = Map::new();
    for (name, p) in entries {
        policies.set(name, policy(p, &join(&ppath, name), level)?);
    }
    if policies.is_empty() {
        let mut p = Map::new();
        p.set("permissions", list(vec![nothing("not_rule")]));
        p.set("principals", list(vec![single("any", boolean(true))]));
        policies.set(NO_POLICIES, p.build());
    }
    let mut m = Map::new();
    m.set("action", text(action));
    m.set("policies", policies.build());
    Ok(m.build())
}

/// A rule that matches nothing: `{ not_rule: { any: true } }` (or `not_id`).
fn nothing(not: &str) -> Node {
    single(not, single("any", boolean(true)))
}

/// Audit loggers write their own log of decisions; Sluice has none, so a logger that would
/// write is refused unless optional (Envoy skips an optional logger it lacks).
fn audit_logging(a: &AuditLoggingOptions, path: &str) -> Result<()> {
    match AuditCondition::try_from(a.audit_condition) {
        // Never audits, whatever the loggers.
        Ok(AuditCondition::None) => {
            ignored(!a.logger_configs.is_empty(), path, "logger_configs");
            return Ok(());
        }
        Ok(_) => {}
        Err(_) => {
            return Err(Error::new(
                join(path, "audit_condition"),
                format!("unknown value {}", a.audit_condition),
            ))
        }
    }
    for (i, l) in a.logger_configs.iter().enumerate() {
        if !l.is_optional {
            return Err(Error::new(
                index(&join(path, "logger_configs"), i),
                "RBAC audit loggers are not supported by Sluice (mark it is_optional to have it skipped)",
            ));
        }
        ignored(true, path, &index("logger_configs", i));
    }
    Ok(())
}

fn policy(p: &Policy, path: &str, level: Level) -> Result<Node> {
    if p.condition.is_some() || p.checked_condition.is_some() {
        let field = if p.condition.is_some() {
            "condition"
        } else {
            "checked_condition"
        };
        return Err(Error::new(
            join(path, field),
            "CEL conditions are not supported by Sluice",
        ));
    }
    // It only shapes how `condition` is evaluated.
    ignored(p.cel_config.is_some(), path, "cel_config");
    let mut m = Map::new();
    m.set(
        "permissions",
        permissions(&p.permissions, &join(path, "permissions"), level)?,
    );
    m.set(
        "principals",
        principals(&p.principals, &join(path, "principals"), level)?,
    );
    Ok(m.build())
}

/// A non-empty list of permissions (Envoy requires one at least, as the native side does).
fn permissions(ps: &[Permission], path: &str, level: Level) -> Result<Node> {
    if ps.is_empty() {
        return Err(Error::new(path, "needs at least one permission"));
    }
    let mut out = Vec::with_capacity(ps.len());
    for (i, p) in ps.iter().enumerate() {
        out.push(permission(p, &index(path, i), level)?);
    }
    Ok(list(out))
}

fn principals(ps: &[Principal], path: &str, level: Level) -> Result<Node> {
    if ps.is_empty() {
        return Err(Error::new(path, "needs at least one principal"));
    }
    let mut out = Vec::with_capacity(ps.len());
    for (i, p) in ps.iter().enumerate() {
        out.push(principal(p, &index(path, i), level)?);
    }
    Ok(list(out))
}

fn not_supported(field: impl Into<String>, why: &str) -> Error {
    Error::new(field, format!("is not supported by Sluice{why}"))
}

const NO_METADATA: &str = " (Sluice has no dynamic or route metadata to match)";

#[allow(deprecated)] // `metadata` is read to refuse it.
fn permission(p: &Permission, path: &str, level: Level) -> Result<Node> {
    use permission::Rule;
    let at = |f: &str| join(path, f);
    Ok(match &p.rule {
        Some(Rule::Any(true)) => single("any", boolean(true)),
        Some(Rule::Any(false)) => return Err(Error::new(at("any"), "must be true")),
        Some(Rule::AndRules(set)) => single(
            "and_rules",
            single(
                "rules",
                permissions(&set.rules, &join(&at("and_rules"), "rules"), level)?,
            ),
        ),
        Some(Rule::OrRules(set)) => single(
            "or_rules",
            single(
                "rules",
                permissions(&set.rules, &join(&at("or_rules"), "rules"), level)?,
            ),
        ),
        Some(Rule::NotRule(inner)) => {
            single("not_rule", permission(inner, &at("not_rule"), level)?)
        }
        Some(Rule::Header(h)) => {
            let hpath = at("header");
            level.needs_request(&hpath)?;
            single("header", route::header_matcher(h, &hpath)?)
        }
        Some(Rule::UrlPath(pm)) => {
            let upath = at("url_path");
            level.needs_request(&upath)?;
            let sm = path_string(pm, &upath)?;
            single(
                "url_path",
                single("path", string_match(sm, &join(&upath, "path"))?),
            )
        }
        Some(Rule::DestinationIp(c)) => single(
            "destination_ip",
            text(&listener::cidr(c, &at("destination_ip"))?),
        ),
        Some(Rule::DestinationPort(port)) => {
            if *port > 65535 {
                return Err(Error::new(
                    at("destination_port"),
                    format!("must be at most 65535, found {port}"),
                ));
            }
            single("destination_port", number(port))
        }
        Some(Rule::RequestedServerName(sm)) => single(
            "requested_server_name",
            string_match(sm, &at("requested_server_name"))?,
        ),
        Some(Rule::DestinationPortRange(_)) => {
            return Err(not_supported(
                at("destination_port_range"),
                " (use destination_port, in or_rules for several)",
            ))
        }
        Some(Rule::Metadata(_)) => return Err(not_supported(at("metadata"), NO_METADATA)),
        Some(Rule::SourcedMetadata(_)) => {
            return Err(not_supported(at("sourced_metadata"), NO_METADATA))
        }
        Some(Rule::Matcher(ext)) => {
            return Err(not_supported(
                at("matcher"),
                &format!(" (custom matcher \"{}\")", ext.name),
            ))
        }
        Some(Rule::UriTemplate(_)) => return Err(not_supported(at("uri_template"), "")),
        None => {
            return Err(Error::new(
                path,
                "needs a rule: any, header, url_path, destination_ip, destination_port, requested_server_name, and_rules, or_rules or not_rule",
            ))
        }
    })
}

#[allow(deprecated)] // `source_ip` and `metadata` are still sent.
fn principal(p: &Principal, path: &str, level: Level) -> Result<Node> {
    use principal::Identifier;
    let at = |f: &str| join(path, f);
    let ip =
        |key: &str, c| -> Result<Node> { Ok(single(key, text(&listener::cidr(c, &at(key))?))) };
    Ok(match &p.identifier {
        Some(Identifier::Any(true)) => single("any", boolean(true)),
        Some(Identifier::Any(false)) => return Err(Error::new(at("any"), "must be true")),
        Some(Identifier::AndIds(set)) => single(
            "and_ids",
            single(
                "ids",
                principals(&set.ids, &join(&at("and_ids"), "ids"), level)?,
            ),
        ),
        Some(Identifier::OrIds(set)) => single(
            "or_ids",
            single(
                "ids",
                principals(&set.ids, &join(&at("or_ids"), "ids"), level)?,
            ),
        ),
        Some(Identifier::NotId(inner)) => {
            single("not_id", principal(inner, &at("not_id"), level)?)
        }
        Some(Identifier::Authenticated(a)) => {
            let mut m = Map::new();
            if let Some(sm) = &a.principal_name {
                m.set(
                    "principal_name",
                    string_match(sm, &join(&at("authenticated"), "principal_name"))?,
                );
            }
            single("authenticated", m.build())
        }
        Some(Identifier::SourceIp(c)) => ip("source_ip", c)?,
        Some(Identifier::DirectRemoteIp(c)) => ip("direct_remote_ip", c)?,
        // The native `remote_ip` is the TCP peer: it does not trust x-forwarded-for.
        Some(Identifier::RemoteIp(c)) => ip("remote_ip", c)?,
        Some(Identifier::Header(h)) => {
            let hpath = at("header");
            level.needs_request(&hpath)?;
            single("header", route::header_matcher(h, &hpath)?)
        }
        Some(Identifier::UrlPath(pm)) => {
            let upath = at("url_path");
            level.needs_request(&upath)?;
            url_path_principal(pm, &upath)?
        }
        Some(Identifier::Metadata(_)) => return Err(not_supported(at("metadata"), NO_METADATA)),
        Some(Identifier::SourcedMetadata(_)) => {
            return Err(not_supported(at("sourced_metadata"), NO_METADATA))
        }
        Some(Identifier::FilterState(_)) => {
            return Err(not_supported(
                at("filter_state"),
                " (Sluice has no filter state to match)",
            ))
        }
        Some(Identifier::Custom(ext)) => {
            return Err(not_supported(
                at("custom"),
                &format!(" (custom principal \"{}\")", ext.name),
            ))
        }
        None => {
            return Err(Error::new(
                path,
                "needs an identifier: any, authenticated, source_ip, direct_remote_ip, remote_ip, header, url_path, and_ids, or_ids or not_id",
            ))
        }
    })
}

/// The string matcher of a `PathMatcher` at `path`.
fn path_string<'a>(pm: &'a PathMatcher, path: &str) -> Result<&'a StringMatcher> {
    match &pm.rule {
        Some(path_matcher::Rule::Path(sm)) => Ok(sm),
        None => Err(Error::new(join(path, "path"), "is required")),
    }
}

/// Envoy's `StringMatcher` as the native RBAC string match (which, unlike route matchers,
/// takes `ignore_case` itself).
fn string_match(sm: &StringMatcher, path: &str) -> Result<Node> {
    let mut m = Map::new();
    let mut fold = sm.ignore_case;
    match &sm.match_pattern {
        Some(MatchPattern::Exact(s)) => m.set("exact", text(s)),
        Some(MatchPattern::Prefix(s)) => m.set("prefix", text(s)),
        Some(MatchPattern::Suffix(s)) => m.set("suffix", text(s)),
        Some(MatchPattern::Contains(s)) => m.set("contains", text(s)),
        // Envoy: `ignore_case` has no effect on `safe_regex` (the native side would apply it).
        Some(MatchPattern::SafeRegex(r)) => {
            fold = false;
            m.set("regex", text(&r.regex))
        }
        Some(MatchPattern::Custom(ext)) => {
            return Err(not_supported(
                join(path, "custom"),
                &format!(" (custom matcher \"{}\")", ext.name),
            ))
        }
        None => {
            return Err(Error::new(
                path,
                "needs one of: exact, prefix, suffix, contains, safe_regex",
            ))
        }
    };
    if fold {
        m.set("ignore_case", boolean(true));
    }
    Ok(m.build())
}

/// A `url_path` principal as a regex on `:path` (which holds the query too): the path as
/// Envoy matches it (up to the first `?`), then an optional query. A literal with a `?` can
/// never match a path without its query: such a principal matches nothing, as in Envoy.
fn url_path_principal(pm: &PathMatcher, path: &str) -> Result<Node> {
    let spath = join(path, "path");
    let sm = path_string(pm, path)?;
    let fold = sm.ignore_case;
    let part = "[^?]*";
    let head = match &sm.match_pattern {
        Some(
            MatchPattern::Exact(s)
            | MatchPattern::Prefix(s)
            | MatchPattern::Suffix(s)
            | MatchPattern::Contains(s),
        ) if s.contains('?') => return Ok(nothing("not_id")),
        Some(MatchPattern::Exact(s)) => route::literal(s, fold),
        Some(MatchPattern::Prefix(s)) => format!("{}{part}", route::literal(s, fold)),
        Some(MatchPattern::Suffix(s)) => format!("{part}{}", route::literal(s, fold)),
        Some(MatchPattern::Contains(s)) => {
            format!("{part}{}{part}", route::literal(s, fold))
        }
        Some(MatchPattern::SafeRegex(_)) => return Err(Error::new(
            join(&spath, "safe_regex"),
            "is not supported by Sluice in a url_path principal (it is in a url_path permission)",
        )),
        Some(MatchPattern::Custom(ext)) => {
            return Err(not_supported(
                join(&spath, "custom"),
                &format!(" (custom matcher \"{}\")", ext.name),
            ))
        }
        None => {
            return Err(Error::new(
                spath,
                "needs one of: exact, prefix, suffix, contains, safe_regex",
            ))
        }
    };
    let mut m = Map::new();
    m.set("name", text(":path"));
    m.set("regex", text(&format!("{head}(?:\\?(?s:.*))?")));
    Ok(single("header", m.build()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, deprecated)]
mod tests {
    use super::*;
    use crate::translate::endpoint::tests::{assert_yaml, show};
    use crate::translate::listener::tests::{
        any, chain, envoy_listener, hcm, hcm_filter, refused, router,
    };
    use envoy_types::pb::envoy::config::core::v3::{CidrRange, TypedExtensionConfig};
    use envoy_types::pb::envoy::config::listener::v3::{filter, Filter};
    use envoy_types::pb::envoy::config::rbac::v3::rbac::audit_logging_options::AuditLoggerConfig;
    use envoy_types::pb::envoy::config::route::v3::{header_matcher, HeaderMatcher};
    use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{
        http_filter, HttpFilter,
    };
    use envoy_types::pb::envoy::r#type::matcher::v3::{
        FilterStateMatcher, MetadataMatcher, RegexMatcher,
    };
    use envoy_types::pb::envoy::r#type::v3::Int32Range;
    use envoy_types::pb::google::api::expr::v1alpha1::{CheckedExpr, Expr};
    use envoy_types::pb::google::protobuf::{Duration, UInt32Value};
    use envoy_types::pb::xds::r#type::matcher::v3::Matcher;
    use permission::Rule;
    use principal::{Authenticated, Identifier};

    fn matcher(p: MatchPattern) -> StringMatcher {
        StringMatcher {
            match_pattern: Some(p),
            ignore_case: false,
        }
    }

    fn exact(s: &str) -> StringMatcher {
        matcher(MatchPattern::Exact(s.into()))
    }

    fn folded(p: MatchPattern) -> StringMatcher {
        StringMatcher {
            match_pattern: Some(p),
            ignore_case: true,
        }
    }

    fn regex(r: &str) -> MatchPattern {
        MatchPattern::SafeRegex(RegexMatcher {
            regex: r.into(),
            engine_type: None,
        })
    }

    fn perm(rule: Rule) -> Permission {
        Permission { rule: Some(rule) }
    }

    fn id(identifier: Identifier) -> Principal {
        Principal {
            identifier: Some(identifier),
        }
    }

    fn header(name: &str, sm: StringMatcher) -> HeaderMatcher {
        HeaderMatcher {
            name: name.into(),
            header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::StringMatch(sm)),
            ..Default::default()
        }
    }

    fn url_path(sm: StringMatcher) -> PathMatcher {
        PathMatcher {
            rule: Some(path_matcher::Rule::Path(sm)),
        }
    }

    fn cidr(address: &str, len: Option<u32>) -> CidrRange {
        CidrRange {
            address_prefix: address.into(),
            prefix_len: len.map(|value| UInt32Value { value }),
        }
    }

    fn and_rules(rules: Vec<Permission>) -> Permission {
        perm(Rule::AndRules(permission::Set { rules }))
    }

    fn or_rules(rules: Vec<Permission>) -> Permission {
        perm(Rule::OrRules(permission::Set { rules }))
    }

    fn and_ids(ids: Vec<Principal>) -> Principal {
        id(Identifier::AndIds(principal::Set { ids }))
    }

    fn or_ids(ids: Vec<Principal>) -> Principal {
        id(Identifier::OrIds(principal::Set { ids }))
    }

    fn policy_of(permissions: Vec<Permission>, principals: Vec<Principal>) -> Policy {
        Policy {
            permissions,
            principals,
            ..Default::default()
        }
    }

    fn rules(action: Action, policies: Vec<(&str, Policy)>) -> EnvoyRules {
        EnvoyRules {
            action: action as i32,
            policies: policies
                .into_iter()
                .map(|(n, p)| (n.to_string(), p))
                .collect(),
            audit_logging_options: None,
        }
    }

    /// One policy `p` of `permissions` and `principals` under `action`, enforced.
    fn http(action: Action, permissions: Vec<Permission>, principals: Vec<Principal>) -> HttpRbac {
        HttpRbac {
            rules: Some(rules(
                action,
                vec![("p", policy_of(permissions, principals))],
            )),
            ..Default::default()
        }
    }

    fn network(
        action: Action,
        permissions: Vec<Permission>,
        principals: Vec<Principal>,
    ) -> NetworkRbac {
        NetworkRbac {
            rules: Some(rules(
                action,
                vec![("p", policy_of(permissions, principals))],
            )),
            stat_prefix: "tcp.".into(),
            ..Default::default()
        }
    }

    fn anyone() -> Principal {
        id(Identifier::Any(true))
    }

    fn anything() -> Permission {
        perm(Rule::Any(true))
    }

    /// Istio's ALLOW filter for "web may GET /api/": its nesting of and/or sets, its policy
    /// name, its dry-run prefix.
    fn istio_allow() -> HttpRbac {
        HttpRbac {
            rules: Some(rules(
                Action::Allow,
                vec![(
                    "ns[default]-policy[web-reads-api]-rule[0]",
                    policy_of(
                        vec![and_rules(vec![
                            or_rules(vec![perm(Rule::Header(header(":method", exact("GET"))))]),
                            or_rules(vec![perm(Rule::UrlPath(url_path(matcher(
                                MatchPattern::Prefix("/api/".into()),
                            ))))]),
                        ])],
                        vec![and_ids(vec![or_ids(vec![id(Identifier::Authenticated(
                            Authenticated {
                                principal_name: Some(exact(
                                    "spiffe://cluster.local/ns/default/sa/web",
                                )),
                            },
                        ))])])],
                    ),
                )],
            )),
            shadow_rules_stat_prefix: "istio_dry_run_allow_".into(),
            ..Default::default()
        }
    }

    /// Istio's DENY filter: everyone outside 10/8 is denied, and so is a debug header from
    /// anyone but 10.1.2.3.
    fn istio_deny() -> HttpRbac {
        HttpRbac {
            rules: Some(rules(
                Action::Deny,
                vec![
                    (
                        "ns[default]-policy[outsiders]-rule[0]",
                        policy_of(
                            vec![anything()],
                            vec![and_ids(vec![id(Identifier::NotId(Box::new(or_ids(
                                vec![id(Identifier::SourceIp(cidr("10.0.0.0", Some(8))))],
                            ))))])],
                        ),
                    ),
                    (
                        "ns[default]-policy[debug]-rule[0]",
                        policy_of(
                            vec![perm(Rule::Header(HeaderMatcher {
                                name: "x-debug".into(),
                                header_match_specifier: Some(
                                    header_matcher::HeaderMatchSpecifier::PresentMatch(true),
                                ),
                                ..Default::default()
                            }))],
                            vec![id(Identifier::NotId(Box::new(id(
                                Identifier::DirectRemoteIp(cidr("10.1.2.3", Some(32))),
                            ))))],
                        ),
                    ),
                ],
            )),
            ..Default::default()
        }
    }

    const ISTIO_ALLOW: &str = r#"
rules:
  action: "ALLOW"
  policies:
    "ns[default]-policy[web-reads-api]-rule[0]":
      permissions:
        - and_rules:
            rules:
              - or_rules: { rules: [ { header: { name: ":method", exact: "GET" } } ] }
              - or_rules: { rules: [ { url_path: { path: { prefix: "/api/" } } } ] }
      principals:
        - and_ids:
            ids:
              - or_ids:
                  ids:
                    - authenticated: { principal_name: { exact: "spiffe://cluster.local/ns/default/sa/web" } }
"#;

    // Policies in name order: "debug" before "outsiders".
    const ISTIO_DENY: &str = r#"
rules:
  action: "DENY"
  policies:
    "ns[default]-policy[debug]-rule[0]":
      permissions: [ { header: { name: "x-debug", present: true } } ]
      principals: [ { not_id: { direct_remote_ip: "10.1.2.3/32" } } ]
    "ns[default]-policy[outsiders]-rule[0]":
      permissions: [ { any: true } ]
      principals:
        - and_ids: { ids: [ { not_id: { or_ids: { ids: [ { source_ip: "10.0.0.0/8" } ] } } } ] }
"#;

    #[test]
    fn istio_authorization_policies() {
        assert_yaml(&http_rbac(&istio_allow(), "").unwrap(), ISTIO_ALLOW);
        let deny = http_rbac(&istio_deny(), "").unwrap();
        assert_yaml(&deny, ISTIO_DENY);
        // In name order, as Envoy evaluates them (the comparison above ignores order).
        let policies = path_to(&deny, &["rules", "policies"]);
        let sluice_config::yaml::NodeKind::Map(entries) = &policies.kind else {
            panic!("policies: {}", show(policies))
        };
        let names: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "ns[default]-policy[debug]-rule[0]",
                "ns[default]-policy[outsiders]-rule[0]"
            ]
        );
    }

    /// The node at `keys` under `node`.
    fn path_to<'n>(node: &'n Node, keys: &[&str]) -> &'n Node {
        keys.iter().fold(node, |n, key| match &n.kind {
            sluice_config::yaml::NodeKind::Map(entries) => {
                &entries
                    .iter()
                    .find(|(k, _)| k == key)
                    .unwrap_or_else(|| panic!("no {key} in {}", show(n)))
                    .1
            }
            _ => panic!("{key}: not a mapping: {}", show(n)),
        })
    }

    fn rbac_filter(name: &str, r: &HttpRbac) -> HttpFilter {
        HttpFilter {
            name: name.into(),
            config_type: Some(http_filter::ConfigType::TypedConfig(any(r))),
            ..Default::default()
        }
    }

    fn network_filter(r: &NetworkRbac) -> Filter {
        Filter {
            name: "envoy.filters.network.rbac".into(),
            config_type: Some(filter::ConfigType::TypedConfig(any(r))),
        }
    }

    /// Istio's inbound HTTP chain: the DENY filter, then the ALLOW filter, then the router;
    /// and a network RBAC filter before the connection manager.
    #[test]
    fn the_listener_takes_http_and_network_rbac_filters() {
        let mut h = hcm("rc");
        h.http_filters = vec![
            rbac_filter("envoy.filters.http.rbac", &istio_deny()),
            rbac_filter("envoy.filters.http.rbac", &istio_allow()),
            router(),
        ];
        let tcp = network(
            Action::Allow,
            vec![anything()],
            vec![id(Identifier::RemoteIp(cidr("127.0.0.0", Some(8))))],
        );
        let l = envoy_listener(
            "web",
            8080,
            vec![chain(vec![network_filter(&tcp), hcm_filter(&h)])],
        );
        let t = listener::listener(&l).unwrap();
        let indent = |s: &str| {
            s.trim_start_matches('\n')
                .lines()
                .map(|l| format!("                {l}\n"))
                .collect::<String>()
        };
        assert_yaml(
            &t.node,
            &format!(
                r#"
name: "web"
address: "0.0.0.0:8080"
filter_chains:
  - filters:
      - rbac:
          rules:
            action: "ALLOW"
            policies: {{ p: {{ permissions: [ {{ any: true }} ], principals: [ {{ remote_ip: "127.0.0.0/8" }} ] }} }}
          stat_prefix: "tcp."
      - http_proxy:
          stat_prefix: "ingress_http"
          route_config: "rc"
          request_headers_timeout: 0
          http_filters:
            - rbac:
{}            - rbac:
{}"#,
                indent(ISTIO_DENY),
                indent(ISTIO_ALLOW)
            ),
        );
    }

    #[test]
    fn a_filter_after_the_terminal_one_is_refused() {
        let tcp = network(Action::Allow, vec![anything()], vec![anyone()]);
        let l = envoy_listener(
            "web",
            8080,
            vec![chain(vec![hcm_filter(&hcm("rc")), network_filter(&tcp)])],
        );
        let e = refused(&l, "filter_chains[0].filters[1]");
        assert!(e.message.contains("terminal filter"), "{e}");
    }

    #[test]
    fn rules_without_policies_match_nothing() {
        for action in [Action::Allow, Action::Deny] {
            let r = HttpRbac {
                rules: Some(rules(action, vec![])),
                ..Default::default()
            };
            assert_yaml(
                &http_rbac(&r, "").unwrap(),
                &format!(
                    r#"
rules:
  action: "{}"
  policies:
    no-policies: {{ permissions: [ {{ not_rule: {{ any: true }} }} ], principals: [ {{ any: true }} ] }}
"#,
                    action.as_str_name()
                ),
            );
        }
        // No rules at all: everything is allowed, by Envoy and by an empty native filter.
        assert_yaml(&http_rbac(&HttpRbac::default(), "").unwrap(), "{}");
    }

    #[test]
    fn string_matchers_keep_ignore_case_except_on_regexes() {
        let r = http(
            Action::Allow,
            vec![
                perm(Rule::UrlPath(url_path(folded(MatchPattern::Suffix(
                    ".JSON".into(),
                ))))),
                perm(Rule::RequestedServerName(folded(regex(
                    r".*\.example\.com",
                )))),
                perm(Rule::RequestedServerName(matcher(MatchPattern::Contains(
                    "api".into(),
                )))),
            ],
            vec![id(Identifier::Authenticated(Authenticated {
                principal_name: None,
            }))],
        );
        assert_yaml(
            &http_rbac(&r, "").unwrap(),
            r#"
rules:
  action: "ALLOW"
  policies:
    p:
      permissions:
        - url_path: { path: { suffix: ".JSON", ignore_case: true } }
        - requested_server_name: { regex: ".*\\.example\\.com" }
        - requested_server_name: { contains: "api" }
      principals: [ { authenticated: {} } ]
"#,
        );
    }

    /// One inverted native rule: the native matcher (shared with routes, see
    /// `sluice_proxy::route::header`'s `missing_header` test) never matches a missing header
    /// with a value rule, inverted or not, as Envoy does.
    #[test]
    fn inverted_header_values_also_need_the_header() {
        let inverted = HeaderMatcher {
            invert_match: true,
            ..header("x-env", exact("prod"))
        };
        let r = http(
            Action::Deny,
            vec![perm(Rule::Header(inverted.clone()))],
            vec![id(Identifier::Header(inverted))],
        );
        assert_yaml(
            &http_rbac(&r, "").unwrap(),
            r#"
rules:
  action: "DENY"
  policies:
    p:
      permissions:
        - header: { name: "x-env", exact: "prod", invert: true }
      principals:
        - header: { name: "x-env", exact: "prod", invert: true }
"#,
        );
    }

    #[test]
    fn addresses_and_ports() {
        let r = network(
            Action::Deny,
            vec![
                perm(Rule::DestinationIp(cidr("192.168.1.0", Some(24)))),
                // No prefix_len is /0 in Envoy: the whole family.
                perm(Rule::DestinationIp(cidr("::", None))),
                perm(Rule::DestinationPort(8443)),
                perm(Rule::NotRule(Box::new(perm(Rule::DestinationPort(80))))),
            ],
            vec![
                id(Identifier::SourceIp(cidr("10.0.0.0", Some(8)))),
                id(Identifier::DirectRemoteIp(cidr("fd00::", Some(8)))),
                id(Identifier::RemoteIp(cidr("127.0.0.1", Some(32)))),
            ],
        );
        assert_yaml(
            &network_rbac(&r, "").unwrap(),
            r#"
rules:
  action: "DENY"
  policies:
    p:
      permissions:
        - destination_ip: "192.168.1.0/24"
        - destination_ip: "::/0"
        - destination_port: 8443
        - not_rule: { destination_port: 80 }
      principals:
        - source_ip: "10.0.0.0/8"
        - direct_remote_ip: "fd00::/8"
        - remote_ip: "127.0.0.1/32"
stat_prefix: "tcp."
"#,
        );
    }

    #[test]
    fn url_path_principals_are_path_header_regexes() {
        let r = http(
            Action::Allow,
            vec![anything()],
            vec![
                id(Identifier::UrlPath(url_path(exact("/a.b")))),
                id(Identifier::UrlPath(url_path(matcher(
                    MatchPattern::Prefix("/api/".into()),
                )))),
                id(Identifier::UrlPath(url_path(folded(MatchPattern::Suffix(
                    ".js".into(),
                ))))),
                id(Identifier::UrlPath(url_path(matcher(
                    MatchPattern::Contains("x".into()),
                )))),
                // A path never holds a `?`.
                id(Identifier::UrlPath(url_path(exact("/a?b")))),
            ],
        );
        assert_yaml(
            &http_rbac(&r, "").unwrap(),
            r#"
rules:
  action: "ALLOW"
  policies:
    p:
      permissions: [ { any: true } ]
      principals:
        - header: { name: ":path", regex: "/a\\.b(?:\\?(?s:.*))?" }
        - header: { name: ":path", regex: "/api/[^?]*(?:\\?(?s:.*))?" }
        - header: { name: ":path", regex: "[^?]*(?i-u:\\.js)(?:\\?(?s:.*))?" }
        - header: { name: ":path", regex: "[^?]*x[^?]*(?:\\?(?s:.*))?" }
        - not_id: { any: true }
"#,
        );
    }

    #[test]
    fn stat_prefixes() {
        let enforced = rules(
            Action::Deny,
            vec![("p", policy_of(vec![anything()], vec![anyone()]))],
        );
        let prefix = |r: HttpRbac| http_rbac(&r, "").unwrap().get_key("stat_prefix");
        // Envoy's separator goes: the native prefix is a level of its own.
        assert_eq!(
            prefix(HttpRbac {
                rules: Some(enforced.clone()),
                rules_stat_prefix: "edge_".into(),
                shadow_rules_stat_prefix: "dry_".into(),
                ..Default::default()
            }),
            Some("edge".into())
        );
        // Only shadow rules (Istio's dry run): their prefix.
        assert_eq!(
            prefix(HttpRbac {
                shadow_rules: Some(enforced.clone()),
                rules_stat_prefix: "edge_".into(),
                shadow_rules_stat_prefix: "istio_dry_run_allow_".into(),
                ..Default::default()
            }),
            Some("istio_dry_run_allow".into())
        );
        assert_eq!(
            prefix(HttpRbac {
                rules: Some(enforced.clone()),
                shadow_rules_stat_prefix: "istio_dry_run_deny_".into(),
                ..Default::default()
            }),
            None
        );
        // The network filter's prefix is Envoy's, as written: both add `rbac.` after a dot.
        let n = NetworkRbac {
            rules: Some(enforced.clone()),
            stat_prefix: "tcp.inbound".into(),
            shadow_rules_stat_prefix: "dry_".into(),
            ..Default::default()
        };
        assert_eq!(
            network_rbac(&n, "").unwrap().get_key("stat_prefix"),
            Some("tcp.inbound".into())
        );
        let n = NetworkRbac {
            stat_prefix: String::new(),
            ..n
        };
        assert_eq!(network_rbac(&n, "").unwrap().get_key("stat_prefix"), None);
    }

    trait GetKey {
        fn get_key(&self, key: &str) -> Option<String>;
    }

    impl GetKey for Node {
        fn get_key(&self, key: &str) -> Option<String> {
            match &self.kind {
                sluice_config::yaml::NodeKind::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| k == key)
                    .and_then(|(_, v)| v.as_scalar().map(str::to_string)),
                _ => None,
            }
        }
    }

    #[track_caller]
    fn http_refused(r: &HttpRbac, field: &str) -> Error {
        match http_rbac(r, "") {
            Ok(n) => panic!("expected an error at {field}, got {}", show(&n)),
            Err(e) => {
                assert_eq!(e.field, field, "{e}");
                e
            }
        }
    }

    #[track_caller]
    fn network_refused(r: &NetworkRbac, field: &str) -> Error {
        match network_rbac(r, "") {
            Ok(n) => panic!("expected an error at {field}, got {}", show(&n)),
            Err(e) => {
                assert_eq!(e.field, field, "{e}");
                e
            }
        }
    }

    fn extension(name: &str) -> TypedExtensionConfig {
        TypedExtensionConfig {
            name: name.into(),
            typed_config: None,
        }
    }

    fn xds_extension() -> envoy_types::pb::xds::core::v3::TypedExtensionConfig {
        envoy_types::pb::xds::core::v3::TypedExtensionConfig {
            name: "x".into(),
            typed_config: None,
        }
    }

    #[test]
    fn permissions_sluice_lacks_are_refused_at_their_path() {
        let at = "rules.policies.p.permissions[0]";
        let cases: Vec<(Permission, String)> = vec![
            (
                perm(Rule::Metadata(MetadataMatcher::default())),
                format!("{at}.metadata"),
            ),
            (
                perm(Rule::SourcedMetadata(Default::default())),
                format!("{at}.sourced_metadata"),
            ),
            (
                perm(Rule::Matcher(extension(
                    "envoy.rbac.matchers.upstream_ip_port",
                ))),
                format!("{at}.matcher"),
            ),
            (
                perm(Rule::UriTemplate(extension(
                    "envoy.path.match.uri_template",
                ))),
                format!("{at}.uri_template"),
            ),
            (
                perm(Rule::DestinationPortRange(Int32Range {
                    start: 80,
                    end: 90,
                })),
                format!("{at}.destination_port_range"),
            ),
            (
                perm(Rule::DestinationPort(70000)),
                format!("{at}.destination_port"),
            ),
            (perm(Rule::Any(false)), format!("{at}.any")),
            (Permission { rule: None }, at.to_string()),
            (and_rules(vec![]), format!("{at}.and_rules.rules")),
            (
                or_rules(vec![
                    anything(),
                    perm(Rule::NotRule(Box::new(perm(Rule::Metadata(
                        MetadataMatcher::default(),
                    ))))),
                ]),
                format!("{at}.or_rules.rules[1].not_rule.metadata"),
            ),
            (
                perm(Rule::Header(HeaderMatcher {
                    name: "x".into(),
                    header_match_specifier: Some(header_matcher::HeaderMatchSpecifier::RangeMatch(
                        Default::default(),
                    )),
                    ..Default::default()
                })),
                format!("{at}.header.range_match"),
            ),
            (
                perm(Rule::RequestedServerName(matcher(MatchPattern::Custom(
                    xds_extension(),
                )))),
                format!("{at}.requested_server_name.custom"),
            ),
            (
                perm(Rule::UrlPath(PathMatcher { rule: None })),
                format!("{at}.url_path.path"),
            ),
            (
                perm(Rule::DestinationIp(cidr("10.0.0.0", Some(33)))),
                format!("{at}.destination_ip.prefix_len"),
            ),
        ];
        for (p, field) in cases {
            let e = http_refused(&http(Action::Allow, vec![p], vec![anyone()]), &field);
            assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn principals_sluice_lacks_are_refused_at_their_path() {
        let at = "rules.policies.p.principals[0]";
        let cases: Vec<(Principal, String)> = vec![
            (
                id(Identifier::Metadata(MetadataMatcher::default())),
                format!("{at}.metadata"),
            ),
            (
                id(Identifier::SourcedMetadata(Default::default())),
                format!("{at}.sourced_metadata"),
            ),
            (
                id(Identifier::FilterState(FilterStateMatcher::default())),
                format!("{at}.filter_state"),
            ),
            (
                id(Identifier::Custom(extension(
                    "envoy.rbac.principals.mtls_authenticated",
                ))),
                format!("{at}.custom"),
            ),
            (
                id(Identifier::UrlPath(url_path(matcher(regex("/a.*"))))),
                format!("{at}.url_path.path.safe_regex"),
            ),
            (
                id(Identifier::SourceIp(cidr("10.0.0", Some(8)))),
                format!("{at}.source_ip.address_prefix"),
            ),
            (id(Identifier::Any(false)), format!("{at}.any")),
            (Principal { identifier: None }, at.to_string()),
            (or_ids(vec![]), format!("{at}.or_ids.ids")),
            (
                and_ids(vec![
                    anyone(),
                    id(Identifier::Authenticated(Authenticated {
                        principal_name: Some(matcher(MatchPattern::Custom(xds_extension()))),
                    })),
                ]),
                format!("{at}.and_ids.ids[1].authenticated.principal_name.custom"),
            ),
        ];
        for (p, field) in cases {
            http_refused(&http(Action::Allow, vec![anything()], vec![p]), &field);
        }
    }

    #[test]
    fn rule_sets_and_filters_sluice_lacks_are_refused_at_their_path() {
        let mut r = http(Action::Log, vec![anything()], vec![anyone()]);
        let e = http_refused(&r, "rules.action");
        assert!(e.message.starts_with("LOG is not supported"), "{e}");
        r.rules = None;
        r.shadow_rules = Some(rules(Action::Log, vec![]));
        http_refused(&r, "shadow_rules.action");

        let mut r = http(Action::Allow, vec![anything()], vec![anyone()]);
        r.matcher = Some(Matcher::default());
        http_refused(&r, "matcher");
        r.matcher = None;
        r.shadow_matcher = Some(Matcher::default());
        http_refused(&r, "shadow_matcher");
        r.shadow_matcher = None;

        let policy = |f: fn(&mut Policy)| {
            let mut p = policy_of(vec![anything()], vec![anyone()]);
            f(&mut p);
            HttpRbac {
                rules: Some(rules(Action::Allow, vec![("p", p)])),
                ..Default::default()
            }
        };
        let e = http_refused(
            &policy(|p| p.condition = Some(Expr::default())),
            "rules.policies.p.condition",
        );
        assert_eq!(e.message, "CEL conditions are not supported by Sluice");
        http_refused(
            &policy(|p| p.checked_condition = Some(CheckedExpr::default())),
            "rules.policies.p.checked_condition",
        );
        http_refused(
            &policy(|p| p.permissions.clear()),
            "rules.policies.p.permissions",
        );
        http_refused(
            &policy(|p| p.principals.clear()),
            "rules.policies.p.principals",
        );

        // Audit loggers: refused when they would log, skipped when optional or never used.
        let logger = |is_optional| AuditLoggerConfig {
            audit_logger: Some(extension("envoy.rbac.audit_loggers.stream")),
            is_optional,
        };
        let audited = |condition: AuditCondition, loggers| {
            let mut set = rules(
                Action::Allow,
                vec![("p", policy_of(vec![anything()], vec![anyone()]))],
            );
            set.audit_logging_options = Some(AuditLoggingOptions {
                audit_condition: condition as i32,
                logger_configs: loggers,
            });
            HttpRbac {
                rules: Some(set),
                ..Default::default()
            }
        };
        http_refused(
            &audited(AuditCondition::OnDeny, vec![logger(true), logger(false)]),
            "rules.audit_logging_options.logger_configs[1]",
        );
        http_rbac(&audited(AuditCondition::OnDeny, vec![logger(true)]), "").unwrap();
        http_rbac(&audited(AuditCondition::None, vec![logger(false)]), "").unwrap();
    }

    #[test]
    fn the_network_filter_refuses_what_needs_a_request_and_what_it_lacks() {
        let h = perm(Rule::Header(header(":method", exact("GET"))));
        let e = network_refused(
            &network(Action::Allow, vec![h], vec![anyone()]),
            "rules.policies.p.permissions[0].header",
        );
        assert!(e.message.starts_with("needs an HTTP request"), "{e}");
        let u = id(Identifier::UrlPath(url_path(exact("/"))));
        network_refused(
            &network(
                Action::Allow,
                vec![anything()],
                vec![or_ids(vec![anyone(), u])],
            ),
            "rules.policies.p.principals[0].or_ids.ids[1].url_path",
        );
        let mut shadow = network(Action::Allow, vec![anything()], vec![anyone()]);
        shadow.shadow_rules = Some(rules(
            Action::Deny,
            vec![(
                "q",
                policy_of(
                    vec![perm(Rule::NotRule(Box::new(perm(Rule::UrlPath(
                        url_path(exact("/")),
                    )))))],
                    vec![anyone()],
                ),
            )],
        ));
        network_refused(
            &shadow,
            "shadow_rules.policies.q.permissions[0].not_rule.url_path",
        );

        let base = || network(Action::Allow, vec![anything()], vec![anyone()]);
        let e = network_refused(
            &NetworkRbac {
                enforcement_type: EnforcementType::Continuous as i32,
                ..base()
            },
            "enforcement_type",
        );
        assert!(e.message.starts_with("CONTINUOUS is not supported"), "{e}");
        network_refused(
            &NetworkRbac {
                delay_deny: Some(Duration {
                    seconds: 1,
                    nanos: 0,
                }),
                ..base()
            },
            "delay_deny",
        );
        // No delay is Envoy's default.
        network_rbac(
            &NetworkRbac {
                delay_deny: Some(Duration::default()),
                ..base()
            },
            "",
        )
        .unwrap();
        network_refused(
            &NetworkRbac {
                matcher: Some(Matcher::default()),
                ..base()
            },
            "matcher",
        );
        network_refused(
            &NetworkRbac {
                shadow_matcher: Some(Matcher::default()),
                ..base()
            },
            "shadow_matcher",
        );
    }

    /// Refusals inside a listener carry the whole Envoy path, through the typed_config.
    #[test]
    fn refusals_inside_a_listener_name_the_whole_path() {
        let tcp = network(
            Action::Allow,
            vec![perm(Rule::Header(header("x", exact("y"))))],
            vec![anyone()],
        );
        let l = envoy_listener(
            "web",
            8080,
            vec![chain(vec![network_filter(&tcp), hcm_filter(&hcm("rc"))])],
        );
        refused(
            &l,
            "filter_chains[0].filters[0].typed_config.rules.policies.p.permissions[0].header",
        );
        let mut h = hcm("rc");
        h.http_filters = vec![
            rbac_filter(
                "envoy.filters.http.rbac",
                &http(Action::Log, vec![anything()], vec![anyone()]),
            ),
            router(),
        ];
        let l = envoy_listener("web", 8080, vec![chain(vec![hcm_filter(&h)])]);
        refused(
            &l,
            "filter_chains[0].filters[0].typed_config.http_filters[0].typed_config.rules.action",
        );
    }
}
