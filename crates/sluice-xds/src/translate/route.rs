//! `RouteConfiguration` (RDS, or inline in an `http_connection_manager`) to a native
//! `route_configs[]` entry.
//!
//! The native route model borrows Envoy's names, so most fields copy across. Where the two
//! differ in meaning, the output says in native terms what Envoy would do:
//! - `ignore_case` string matchers become ASCII case-insensitive regexes;
//! - a virtual host's or the route config's `retry_policy` and `request_mirror_policies` are
//!   copied into each forwarding route without its own (Envoy's most-specific-wins);
//! - `prefix_rewrite` under a match that is not a plain prefix becomes the rewrite that does
//!   the same there (Envoy replaces the whole matched path, or the separated prefix);
//! - domains lose their port: Sluice compares hosts without it.

use std::collections::HashMap;

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, HeaderValueOption, Metadata, RoutingPriority,
};
use envoy_types::pb::envoy::config::route::v3::header_matcher::HeaderMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::query_parameter_matcher::QueryParameterMatchSpecifier;
use envoy_types::pb::envoy::config::route::v3::redirect_action::{
    PathRewriteSpecifier, RedirectResponseCode, SchemeRewriteSpecifier,
};
use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy::PolicySpecifier;
use envoy_types::pb::envoy::config::route::v3::route_action::{
    ClusterNotFoundResponseCode, ClusterSpecifier, HashPolicy, HostRewriteSpecifier,
    InternalRedirectAction, RequestMirrorPolicy,
};
use envoy_types::pb::envoy::config::route::v3::route_match::PathSpecifier;
use envoy_types::pb::envoy::config::route::v3::virtual_host::TlsRequirementType;
use envoy_types::pb::envoy::config::route::v3::weighted_cluster::{
    cluster_weight, RandomValueSpecifier,
};
use envoy_types::pb::envoy::config::route::v3::{
    retry_policy, route, DirectResponseAction, HeaderMatcher, HedgePolicy, QueryParameterMatcher,
    RedirectAction, RetryPolicy, Route, RouteAction, RouteConfiguration, RouteMatch, VirtualHost,
    WeightedCluster,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    string_matcher::MatchPattern, RegexMatchAndSubstitute, StringMatcher,
};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent::DenominatorType, FractionalPercent};
use envoy_types::pb::google::protobuf::Duration;
use sluice_config::route::RetryOn;
use sluice_config::yaml::Node;

use super::tree::{self, boolean, duration, index, join, list, number, text, texts, Map};
use super::{Error, Result};

/// Envoy refuses a direct response body larger than this unless
/// `max_direct_response_body_size_bytes` says otherwise.
const DEFAULT_MAX_DIRECT_RESPONSE_BODY: u32 = 4096;

/// Envoy's default retry back-off, which is also the only one Sluice has.
const BACKOFF_BASE_NANOS: i128 = 25_000_000;
const BACKOFF_MAX_NANOS: i128 = 10 * BACKOFF_BASE_NANOS;

const PREVIOUS_HOSTS: &str = "envoy.retry_host_predicates.previous_hosts";
const PREVIOUS_HOSTS_TYPE: &str =
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

/// A `route_configs[]` entry (with `name`) when `named`, else the inline form
/// `{ virtual_hosts: [...], ... }` that an http_proxy `route_config:` takes.
pub fn route_configuration(rc: &RouteConfiguration, named: bool) -> Result<Node> {
    tree::unsupported(rc.vhds.is_some(), "vhds")?;
    refuse(
        !rc.internal_only_headers.is_empty(),
        "internal_only_headers",
        "removing internal-only headers from external requests is not supported by Sluice",
    )?;
    refuse(
        rc.most_specific_header_mutations_wins,
        "most_specific_header_mutations_wins",
        "is not supported by Sluice (header mutations apply route first, route config last)",
    )?;
    tree::unsupported(
        !rc.cluster_specifier_plugins.is_empty(),
        "cluster_specifier_plugins",
    )?;
    tree::unsupported(!rc.vhost_header.is_empty(), "vhost_header")?;
    tree::unsupported(
        rc.ignore_path_parameters_in_path_matching,
        "ignore_path_parameters_in_path_matching",
    )?;
    tree::unsupported(
        !rc.typed_per_filter_config.is_empty(),
        "typed_per_filter_config",
    )?;
    tree::unsupported(!rc.route_specifiers.is_empty(), "route_specifiers")?;
    // Cluster references are checked when the clusters arrive, not when routes do.
    tree::ignored(rc.validate_clusters.is_some(), "", "validate_clusters");
    tree::ignored(rc.metadata.is_some(), "", "metadata");
    // Sluice always matches virtual hosts without the port: `true` is its behaviour, and
    // ports written in domains are taken off below.
    tree::ignored(
        rc.ignore_port_in_host_matching,
        "",
        "ignore_port_in_host_matching",
    );

    let mut m = Map::new();
    if named && rc.name.is_empty() {
        return Err(Error::new("name", "is required"));
    }
    if !rc.name.is_empty() {
        m.set("name", text(&rc.name));
    }
    let inherited = Inherited {
        retry: None,
        mirror: mirror_policies(&rc.request_mirror_policies, "request_mirror_policies")?,
        max_body: rc
            .max_direct_response_body_size_bytes
            .map_or(DEFAULT_MAX_DIRECT_RESPONSE_BODY, |v| v.value),
    };
    let mut owners = HashMap::new();
    let mut vhosts = Vec::with_capacity(rc.virtual_hosts.len());
    for (i, vh) in rc.virtual_hosts.iter().enumerate() {
        vhosts.push(virtual_host(vh, i, &inherited, &mut owners)?);
    }
    m.set("virtual_hosts", list(vhosts));
    mutations(
        &mut m,
        "",
        &rc.request_headers_to_add,
        &rc.request_headers_to_remove,
        &rc.response_headers_to_add,
        &rc.response_headers_to_remove,
    )?;
    Ok(m.build())
}

/// What an outer level hands down to the routes inside it.
struct Inherited {
    /// The virtual host's `retry_policy`, translated.
    retry: Option<Node>,
    /// The most specific non-empty `request_mirror_policies` above the route, translated.
    mirror: Option<Node>,
    max_body: u32,
}

/// An error at `field` saying `why`, when `set`.
fn refuse(set: bool, field: &str, why: &str) -> Result<()> {
    if set {
        Err(Error::new(field, why))
    } else {
        Ok(())
    }
}

/// The error for a field set to something Sluice does not do.
fn not_supported(field: impl Into<String>) -> Error {
    Error::new(field, "is not supported by Sluice")
}

#[allow(deprecated)] // `cors` and `per_request_buffer_limit_bytes` are read to refuse or log them.
fn virtual_host(
    vh: &VirtualHost,
    i: usize,
    outer: &Inherited,
    owners: &mut HashMap<String, usize>,
) -> Result<Node> {
    let path = index("virtual_hosts", i);
    let at = |f: &str| join(&path, f);
    tree::unsupported(vh.matcher.is_some(), &at("matcher"))?;
    match TlsRequirementType::try_from(vh.require_tls) {
        Ok(TlsRequirementType::None) => {}
        _ => {
            return Err(Error::new(
                at("require_tls"),
                "redirecting plaintext requests to HTTPS is not supported by Sluice",
            ))
        }
    }
    refuse(
        !vh.rate_limits.is_empty(),
        &at("rate_limits"),
        "rate limiting is not supported by Sluice",
    )?;
    tree::unsupported(vh.cors.is_some(), &at("cors"))?;
    tree::unsupported(
        !vh.typed_per_filter_config.is_empty(),
        &at("typed_per_filter_config"),
    )?;
    tree::unsupported(
        vh.retry_policy_typed_config.is_some(),
        &at("retry_policy_typed_config"),
    )?;
    refuse(
        vh.hedge_policy.as_ref().is_some_and(hedges),
        &at("hedge_policy"),
        "request hedging is not supported by Sluice",
    )?;
    tree::unsupported(
        vh.include_is_timeout_retry_header,
        &at("include_is_timeout_retry_header"),
    )?;
    tree::unsupported(!vh.route_specifiers.is_empty(), &at("route_specifiers"))?;
    // Stats only.
    tree::ignored(!vh.virtual_clusters.is_empty(), &path, "virtual_clusters");
    tree::ignored(vh.metadata.is_some(), &path, "metadata");
    // Buffer sizes: Sluice keeps request bodies up to its own limit for retries.
    tree::ignored(
        vh.per_request_buffer_limit_bytes.is_some(),
        &path,
        "per_request_buffer_limit_bytes",
    );
    tree::ignored(
        vh.request_body_buffer_limit.is_some(),
        &path,
        "request_body_buffer_limit",
    );

    let inherited = Inherited {
        retry: vh
            .retry_policy
            .as_ref()
            .map(|p| retry_policy(p, &at("retry_policy")))
            .transpose()?,
        mirror: mirror_policies(&vh.request_mirror_policies, &at("request_mirror_policies"))?
            .or_else(|| outer.mirror.clone()),
        max_body: outer.max_body,
    };

    let mut m = Map::new();
    m.set("name", text(&vh.name));
    m.set("domains", domains(vh, i, &at("domains"), owners)?);
    let routes_path = at("routes");
    let mut routes = Vec::with_capacity(vh.routes.len());
    for (j, r) in vh.routes.iter().enumerate() {
        routes.push(route(r, &index(&routes_path, j), &inherited)?);
    }
    m.set("routes", list(routes));
    if vh.include_request_attempt_count {
        m.set("include_request_attempt_count", boolean(true));
    }
    if vh.include_attempt_count_in_response {
        m.set("include_attempt_count_in_response", boolean(true));
    }
    mutations(
        &mut m,
        &path,
        &vh.request_headers_to_add,
        &vh.request_headers_to_remove,
        &vh.response_headers_to_add,
        &vh.response_headers_to_remove,
    )?;
    Ok(m.build())
}

/// The domains without their port, lower-cased, each once. Two virtual hosts that differ
/// only by port cannot be told apart by Sluice, so that is an error.
fn domains(
    vh: &VirtualHost,
    vhost: usize,
    path: &str,
    owners: &mut HashMap<String, usize>,
) -> Result<Node> {
    if vh.domains.is_empty() {
        return Err(Error::new(
            path,
            "needs at least one domain (\"*\" matches any)",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(vh.domains.len());
    for (j, d) in vh.domains.iter().enumerate() {
        let host = without_port(d).to_ascii_lowercase();
        match owners.get(&host) {
            Some(&owner) if owner == vhost => {}
            Some(&owner) => {
                return Err(Error::new(
                    index(path, j),
                    format!(
                        "\"{d}\" is \"{host}\" to Sluice, which matches hosts without their \
                         port, and virtual_hosts[{owner}] already serves \"{host}\""
                    ),
                ))
            }
            None => {
                owners.insert(host.clone(), vhost);
                out.push(host);
            }
        }
    }
    Ok(texts(&out))
}

/// `host:port` -> `host` (`[v6]:port` -> `[v6]`, `host:*` -> `host`); anything else as is.
fn without_port(domain: &str) -> &str {
    let Some(colon) = domain.rfind(':') else {
        return domain;
    };
    let (host, port) = (&domain[..colon], &domain[colon + 1..]);
    let is_port = port == "*" || (!port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()));
    // A bare IPv6 address has colons of its own; only a bracketed one can carry a port.
    let host_ok = !host.is_empty()
        && (host.starts_with('[') == host.ends_with(']'))
        && (host.starts_with('[') || !host.contains(':'));
    if is_port && host_ok {
        host
    } else {
        domain
    }
}

#[allow(deprecated)] // `per_request_buffer_limit_bytes` is read to log it.
fn route(r: &Route, path: &str, inherited: &Inherited) -> Result<Node> {
    let at = |f: &str| join(path, f);
    tree::unsupported(
        !r.typed_per_filter_config.is_empty(),
        &at("typed_per_filter_config"),
    )?;
    tree::unsupported(!r.route_specifiers.is_empty(), &at("route_specifiers"))?;
    tree::ignored(r.metadata.is_some(), path, "metadata");
    // Span names and sampling: what traces look like, not what requests do.
    tree::ignored(r.decorator.is_some(), path, "decorator");
    tree::ignored(r.tracing.is_some(), path, "tracing");
    tree::ignored(
        r.per_request_buffer_limit_bytes.is_some(),
        path,
        "per_request_buffer_limit_bytes",
    );
    tree::ignored(
        r.request_body_buffer_limit.is_some(),
        path,
        "request_body_buffer_limit",
    );

    let Some(rm) = &r.r#match else {
        return Err(Error::new(at("match"), "is required"));
    };
    let (matcher, kind) = route_match(rm, &at("match"))?;
    let mut m = Map::new();
    if !r.name.is_empty() {
        m.set("name", text(&r.name));
    }
    if !r.stat_prefix.is_empty() {
        m.set("stat_prefix", text(&r.stat_prefix));
    }
    m.set("match", matcher);
    match &r.action {
        Some(route::Action::Route(a)) => {
            m.set("route", route_action(a, &at("route"), &kind, inherited)?);
        }
        Some(route::Action::Redirect(a)) => {
            m.set("redirect", redirect(a, &at("redirect"), &kind)?);
        }
        Some(route::Action::DirectResponse(d)) => {
            m.set(
                "direct_response",
                direct_response(d, &at("direct_response"), inherited.max_body)?,
            );
        }
        Some(route::Action::FilterAction(_)) => return Err(not_supported(at("filter_action"))),
        Some(route::Action::NonForwardingAction(_)) => {
            return Err(not_supported(at("non_forwarding_action")))
        }
        None => {
            return Err(Error::new(
                path,
                "needs an action: route, redirect or direct_response",
            ))
        }
    }
    mutations(
        &mut m,
        path,
        &r.request_headers_to_add,
        &r.request_headers_to_remove,
        &r.response_headers_to_add,
        &r.response_headers_to_remove,
    )?;
    Ok(m.build())
}

/// How the route's path match bounds the part a `prefix_rewrite` replaces.
enum PathKind {
    /// `prefix` (not empty): native `prefix_rewrite` does the same.
    Prefix,
    /// `prefix: ""`, written natively as `prefix: /`: the rewrite must put the `/` back.
    EmptyPrefix,
    /// `path` or `safe_regex`: Envoy replaces the whole path.
    WholePath,
    /// `path_separated_prefix`, written as a regex: this regex matches the prefix.
    SeparatedPrefix(String),
}

fn route_match(rm: &RouteMatch, path: &str) -> Result<(Node, PathKind)> {
    let at = |f: &str| join(path, f);
    let fold = rm.case_sensitive.is_some_and(|b| !b.value);
    let mut m = Map::new();
    let kind = match &rm.path_specifier {
        Some(PathSpecifier::Prefix(p)) if p.is_empty() => {
            m.set("prefix", text("/"));
            PathKind::EmptyPrefix
        }
        Some(PathSpecifier::Prefix(p)) => {
            m.set("prefix", text(p));
            PathKind::Prefix
        }
        Some(PathSpecifier::Path(p)) => {
            m.set("path", text(p));
            PathKind::WholePath
        }
        // Envoy ignores `case_sensitive` for regexes.
        Some(PathSpecifier::SafeRegex(r)) => {
            m.set("regex", text(&r.regex));
            PathKind::WholePath
        }
        Some(PathSpecifier::PathSeparatedPrefix(p)) => {
            let head = literal(p, fold);
            m.set("regex", text(&format!("{head}(?:/.*)?")));
            PathKind::SeparatedPrefix(head)
        }
        Some(PathSpecifier::ConnectMatcher(_)) => return Err(not_supported(at("connect_matcher"))),
        Some(PathSpecifier::PathMatchPolicy(_)) => {
            return Err(not_supported(at("path_match_policy")))
        }
        None => {
            return Err(Error::new(
                path,
                "needs a path matcher: prefix, path, safe_regex or path_separated_prefix",
            ))
        }
    };
    if fold && matches!(kind, PathKind::Prefix | PathKind::WholePath) {
        m.set("case_sensitive", boolean(false));
    }
    if let Some(rf) = &rm.runtime_fraction {
        // Without a runtime, Envoy uses the default; a share under 100% has no native form.
        let p = at("runtime_fraction");
        if fraction(rf.default_value.as_ref(), &join(&p, "default_value"))? < 100.0 {
            return Err(Error::new(
                p,
                "matching a share of requests is not supported by Sluice",
            ));
        }
        tree::ignored(true, path, "runtime_fraction");
    }
    if !rm.headers.is_empty() {
        let hpath = at("headers");
        let mut out = Vec::with_capacity(rm.headers.len());
        for (i, h) in rm.headers.iter().enumerate() {
            out.push(header_matcher(h, &index(&hpath, i))?);
        }
        m.set("headers", list(out));
    }
    if !rm.query_parameters.is_empty() {
        let qpath = at("query_parameters");
        let mut out = Vec::with_capacity(rm.query_parameters.len());
        for (i, q) in rm.query_parameters.iter().enumerate() {
            out.push(query_matcher(q, &index(&qpath, i))?);
        }
        m.set("query_parameters", list(out));
    }
    tree::unsupported(!rm.cookies.is_empty(), &at("cookies"))?;
    if rm.grpc.is_some() {
        m.set("grpc", Map::new().build());
    }
    tree::unsupported(
        rm.tls_context
            .is_some_and(|t| t.presented.is_some() || t.validated.is_some()),
        &at("tls_context"),
    )?;
    tree::unsupported(!rm.dynamic_metadata.is_empty(), &at("dynamic_metadata"))?;
    tree::unsupported(!rm.filter_state.is_empty(), &at("filter_state"))?;
    Ok((m.build(), kind))
}

/// `s` as a regex that matches it; ASCII case-insensitively when `fold`, as Envoy compares
/// (`-u`: `k` must not match the Kelvin sign).
pub(crate) fn literal(s: &str, fold: bool) -> String {
    let mut escaped = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    if fold && !escaped.is_empty() {
        format!("(?i-u:{escaped})")
    } else {
        escaped
    }
}

/// A native value rule (`exact: x`, `regex: ...`) for a `StringMatcher` at `path`.
fn string_matcher(sm: &StringMatcher, path: &str) -> Result<(&'static str, Node)> {
    let fold = sm.ignore_case;
    let any = "(?s:.)*";
    Ok(match &sm.match_pattern {
        Some(MatchPattern::Exact(s)) if fold => ("regex", text(&literal(s, true))),
        Some(MatchPattern::Exact(s)) => ("exact", text(s)),
        Some(MatchPattern::Prefix(s)) if fold => {
            ("regex", text(&format!("{}{any}", literal(s, true))))
        }
        Some(MatchPattern::Prefix(s)) => ("prefix", text(s)),
        Some(MatchPattern::Suffix(s)) if fold => {
            ("regex", text(&format!("{any}{}", literal(s, true))))
        }
        Some(MatchPattern::Suffix(s)) => ("suffix", text(s)),
        Some(MatchPattern::Contains(s)) if fold => {
            ("regex", text(&format!("{any}{}{any}", literal(s, true))))
        }
        Some(MatchPattern::Contains(s)) => ("contains", text(s)),
        // Envoy: `ignore_case` has no effect on `safe_regex`.
        Some(MatchPattern::SafeRegex(r)) => ("regex", text(&r.regex)),
        Some(MatchPattern::Custom(_)) => return Err(not_supported(join(path, "custom"))),
        None => {
            return Err(Error::new(
                path,
                "needs one of: exact, prefix, suffix, contains, safe_regex",
            ))
        }
    })
}

/// One Envoy header matcher as the native one (whose `invert` follows Envoy's rule: a value
/// rule never matches a missing header, inverted or not).
#[allow(deprecated)] // the `*_match` forms are still sent by control planes.
pub(crate) fn header_matcher(h: &HeaderMatcher, path: &str) -> Result<Node> {
    tree::unsupported(
        h.treat_missing_header_as_empty,
        &join(path, "treat_missing_header_as_empty"),
    )?;
    let (key, value) = match &h.header_match_specifier {
        // An empty `exact_match` matches any value (Envoy's legacy reading).
        Some(HeaderMatchSpecifier::ExactMatch(s)) if s.is_empty() => ("present", boolean(true)),
        Some(HeaderMatchSpecifier::ExactMatch(s)) => ("exact", text(s)),
        Some(HeaderMatchSpecifier::SafeRegexMatch(r)) => ("regex", text(&r.regex)),
        Some(HeaderMatchSpecifier::RangeMatch(_)) => {
            return Err(not_supported(join(path, "range_match")))
        }
        Some(HeaderMatchSpecifier::PresentMatch(b)) => ("present", boolean(*b)),
        Some(HeaderMatchSpecifier::PrefixMatch(s)) => ("prefix", text(s)),
        Some(HeaderMatchSpecifier::SuffixMatch(s)) => ("suffix", text(s)),
        Some(HeaderMatchSpecifier::ContainsMatch(s)) => ("contains", text(s)),
        Some(HeaderMatchSpecifier::StringMatch(sm)) => {
            string_matcher(sm, &join(path, "string_match"))?
        }
        None => ("present", boolean(true)),
    };
    let mut rule = Map::new();
    rule.set("name", text(&h.name));
    rule.set(key, value);
    if h.invert_match {
        rule.set("invert", boolean(true));
    }
    Ok(rule.build())
}

fn query_matcher(q: &QueryParameterMatcher, path: &str) -> Result<Node> {
    let (key, value) = match &q.query_parameter_match_specifier {
        Some(QueryParameterMatchSpecifier::StringMatch(sm)) => {
            string_matcher(sm, &join(path, "string_match"))?
        }
        // Envoy's current reading: `false` asks for the parameter's absence.
        Some(QueryParameterMatchSpecifier::PresentMatch(b)) => ("present", boolean(*b)),
        None => ("present", boolean(true)),
    };
    let mut m = Map::new();
    m.set("name", text(&q.name));
    m.set(key, value);
    Ok(m.build())
}

/// A `FractionalPercent` as a percentage, capped at 100 like Envoy's.
fn fraction(fp: Option<&FractionalPercent>, path: &str) -> Result<f64> {
    let Some(fp) = fp else {
        return Err(Error::new(path, "is required"));
    };
    let denominator = match DenominatorType::try_from(fp.denominator) {
        Ok(DenominatorType::Hundred) => 100.0,
        Ok(DenominatorType::TenThousand) => 10_000.0,
        Ok(DenominatorType::Million) => 1_000_000.0,
        Err(_) => {
            return Err(Error::new(
                join(path, "denominator"),
                format!("unknown denominator {}", fp.denominator),
            ))
        }
    };
    Ok((f64::from(fp.numerator) * 100.0 / denominator).min(100.0))
}

#[allow(deprecated)] // deprecated fields are read to refuse or log them.
fn route_action(
    a: &RouteAction,
    path: &str,
    kind: &PathKind,
    inherited: &Inherited,
) -> Result<Node> {
    let at = |f: &str| join(path, f);
    let mut m = Map::new();
    match &a.cluster_specifier {
        Some(ClusterSpecifier::Cluster(c)) if c.is_empty() => {
            return Err(Error::new(at("cluster"), "must not be empty"))
        }
        Some(ClusterSpecifier::Cluster(c)) => {
            m.set("cluster", text(c));
        }
        Some(ClusterSpecifier::WeightedClusters(w)) => {
            m.set(
                "weighted_clusters",
                weighted_clusters(w, &at("weighted_clusters"))?,
            );
        }
        Some(ClusterSpecifier::ClusterHeader(_)) => {
            return Err(not_supported(at("cluster_header")))
        }
        Some(ClusterSpecifier::ClusterSpecifierPlugin(_)) => {
            return Err(not_supported(at("cluster_specifier_plugin")))
        }
        Some(ClusterSpecifier::InlineClusterSpecifierPlugin(_)) => {
            return Err(not_supported(at("inline_cluster_specifier_plugin")))
        }
        None => return Err(Error::new(path, "needs one of: cluster, weighted_clusters")),
    }
    // Unset, both default to 15s.
    m.opt(
        "timeout",
        tree::opt_duration(a.timeout.as_ref(), &at("timeout"))?,
    );
    // The grpc-timeout header bounds the request too (Istio sets it on every route).
    if let Some(max) = a
        .max_stream_duration
        .as_ref()
        .and_then(|m| m.grpc_timeout_header_max.as_ref())
    {
        m.set(
            "grpc_timeout_header_max",
            tree::duration(
                max,
                &join(&at("max_stream_duration"), "grpc_timeout_header_max"),
            )?,
        );
    }

    tree::unsupported(
        a.retry_policy_typed_config.is_some(),
        &at("retry_policy_typed_config"),
    )?;
    let retry = match &a.retry_policy {
        Some(p) => Some(retry_policy(p, &at("retry_policy"))?),
        None => inherited.retry.clone(),
    };
    m.opt("retry_policy", retry);
    let mirror = mirror_policies(&a.request_mirror_policies, &at("request_mirror_policies"))?
        .or_else(|| inherited.mirror.clone());
    m.opt("request_mirror", mirror);

    path_rewrites(a, path, kind, &mut m)?;
    host_rewrite(a, path, &mut m)?;
    m.opt(
        "metadata_match",
        lb_metadata(a.metadata_match.as_ref(), &at("metadata_match"))?,
    );
    if !a.hash_policy.is_empty() {
        let hashes = hash_policies(&a.hash_policy, &at("hash_policy"))?;
        if !hashes.is_empty() {
            m.set("hash_policy", list(hashes));
        }
    }
    match RoutingPriority::try_from(a.priority) {
        Ok(RoutingPriority::Default) => {}
        Ok(RoutingPriority::High) => {
            m.set("priority", text("high"));
        }
        Err(_) => {
            return Err(Error::new(
                at("priority"),
                format!("unknown priority {}", a.priority),
            ))
        }
    }

    // Sluice answers 503 for a cluster it does not know, as Envoy does by default.
    refuse(
        ClusterNotFoundResponseCode::try_from(a.cluster_not_found_response_code)
            != Ok(ClusterNotFoundResponseCode::ServiceUnavailable),
        &at("cluster_not_found_response_code"),
        "only SERVICE_UNAVAILABLE (503) is supported by Sluice",
    )?;
    tree::unsupported(a.append_x_forwarded_host, &at("append_x_forwarded_host"))?;
    tree::unsupported(
        a.idle_timeout.as_ref().is_some_and(nonzero),
        &at("idle_timeout"),
    )?;
    tree::ignored(a.idle_timeout.is_some(), path, "idle_timeout");
    tree::unsupported(
        a.flush_timeout.as_ref().is_some_and(nonzero),
        &at("flush_timeout"),
    )?;
    tree::ignored(a.flush_timeout.is_some(), path, "flush_timeout");
    // Sluice does not accept TLS early data, so there is nothing for a policy to decide.
    tree::ignored(a.early_data_policy.is_some(), path, "early_data_policy");
    refuse(
        !a.rate_limits.is_empty(),
        &at("rate_limits"),
        "rate limiting is not supported by Sluice",
    )?;
    tree::ignored(
        a.include_vh_rate_limits.is_some(),
        path,
        "include_vh_rate_limits",
    );
    tree::unsupported(a.cors.is_some(), &at("cors"))?;
    refuse(
        a.max_grpc_timeout.is_some(),
        &at("max_grpc_timeout"),
        "honouring the grpc-timeout header is not supported by Sluice",
    )?;
    tree::ignored(a.grpc_timeout_offset.is_some(), path, "grpc_timeout_offset");
    if let Some(msd) = &a.max_stream_duration {
        let p = at("max_stream_duration");
        tree::unsupported(
            msd.max_stream_duration.as_ref().is_some_and(nonzero),
            &join(&p, "max_stream_duration"),
        )?;

        tree::ignored(
            msd.grpc_timeout_header_offset.is_some(),
            &p,
            "grpc_timeout_header_offset",
        );
    }
    upgrades(a, path)?;
    tree::unsupported(
        a.internal_redirect_policy.is_some(),
        &at("internal_redirect_policy"),
    )?;
    tree::unsupported(
        InternalRedirectAction::try_from(a.internal_redirect_action)
            != Ok(InternalRedirectAction::PassThroughInternalRedirect),
        &at("internal_redirect_action"),
    )?;
    tree::ignored(
        a.max_internal_redirects.is_some(),
        path,
        "max_internal_redirects",
    );
    refuse(
        a.hedge_policy.as_ref().is_some_and(hedges),
        &at("hedge_policy"),
        "request hedging is not supported by Sluice",
    )?;
    Ok(m.build())
}

/// Sluice forwards every HTTP/1.1 upgrade; a route can neither turn them off nor terminate
/// CONNECT.
fn upgrades(a: &RouteAction, path: &str) -> Result<()> {
    let upath = join(path, "upgrade_configs");
    for (i, u) in a.upgrade_configs.iter().enumerate() {
        let p = index(&upath, i);
        refuse(
            u.enabled.is_some_and(|b| !b.value),
            &join(&p, "enabled"),
            "turning upgrades off per route is not supported by Sluice",
        )?;
        tree::unsupported(u.connect_config.is_some(), &join(&p, "connect_config"))?;
        tree::unsupported(
            u.upgrade_type.eq_ignore_ascii_case("connect")
                || u.upgrade_type.eq_ignore_ascii_case("connect-udp"),
            &join(&p, "upgrade_type"),
        )?;
        tree::ignored(true, &p, "upgrade_type");
    }
    Ok(())
}

fn nonzero(d: &Duration) -> bool {
    d.seconds != 0 || d.nanos != 0
}

fn nanos(d: &Duration) -> i128 {
    i128::from(d.seconds) * 1_000_000_000 + i128::from(d.nanos)
}

/// Whether a hedge policy would send more than one request.
fn hedges(h: &HedgePolicy) -> bool {
    h.initial_requests.is_some_and(|n| n.value > 1)
        || h.additional_request_chance.is_some_and(|c| c.numerator > 0)
        || h.hedge_on_per_try_timeout
}

/// `prefix_rewrite`, `regex_rewrite` and the rewrites Sluice lacks.
fn path_rewrites(a: &RouteAction, path: &str, kind: &PathKind, m: &mut Map) -> Result<()> {
    let at = |f: &str| join(path, f);
    let set = [
        !a.prefix_rewrite.is_empty(),
        a.regex_rewrite.is_some(),
        !a.path_rewrite.is_empty(),
        a.path_rewrite_policy.is_some(),
    ];
    if set.iter().filter(|s| **s).count() > 1 {
        return Err(Error::new(
            path,
            "use only one of: prefix_rewrite, regex_rewrite, path_rewrite, path_rewrite_policy",
        ));
    }
    tree::unsupported(!a.path_rewrite.is_empty(), &at("path_rewrite"))?;
    tree::unsupported(a.path_rewrite_policy.is_some(), &at("path_rewrite_policy"))?;
    if let Some(rr) = &a.regex_rewrite {
        m.set("regex_rewrite", regex_rewrite(rr, &at("regex_rewrite"))?);
    }
    let r = &a.prefix_rewrite;
    if r.is_empty() {
        return Ok(());
    }
    match kind {
        PathKind::Prefix => {
            m.set("prefix_rewrite", text(r));
        }
        PathKind::EmptyPrefix => {
            m.set("prefix_rewrite", text(&format!("{r}/")));
        }
        PathKind::WholePath => {
            literal_substitution(r, &at("prefix_rewrite"))?;
            m.set("regex_rewrite", rewrite("^.*$", r));
        }
        PathKind::SeparatedPrefix(head) => {
            literal_substitution(r, &at("prefix_rewrite"))?;
            m.set("regex_rewrite", rewrite(&format!("^{head}"), r));
        }
    }
    Ok(())
}

fn rewrite(pattern: &str, substitution: &str) -> Node {
    let mut m = Map::new();
    m.set("pattern", text(pattern));
    m.set("substitution", text(substitution));
    m.build()
}

/// A `prefix_rewrite` turned into a regex substitution must not read as one: `\1` would be a
/// capture group.
fn literal_substitution(s: &str, field: &str) -> Result<()> {
    refuse(
        s.contains('\\'),
        field,
        "with a path, safe_regex or path_separated_prefix match, a prefix_rewrite containing \"\\\" is not supported by Sluice",
    )
}

fn regex_rewrite(rr: &RegexMatchAndSubstitute, path: &str) -> Result<Node> {
    let Some(pattern) = &rr.pattern else {
        return Err(Error::new(join(path, "pattern"), "is required"));
    };
    // RE2 reads `\\` as one backslash; Sluice's substitution keeps both.
    refuse(
        rr.substitution.contains("\\\\"),
        &join(path, "substitution"),
        "an escaped backslash (\\\\) is not supported by Sluice",
    )?;
    Ok(rewrite(&pattern.regex, &rr.substitution))
}

fn host_rewrite(a: &RouteAction, path: &str, m: &mut Map) -> Result<()> {
    let at = |f: &str| join(path, f);
    let literal = match &a.host_rewrite_specifier {
        None => None,
        Some(HostRewriteSpecifier::HostRewriteLiteral(h)) => Some(h),
        Some(HostRewriteSpecifier::AutoHostRewrite(b)) => {
            tree::unsupported(b.value, &at("auto_host_rewrite"))?;
            None
        }
        Some(HostRewriteSpecifier::HostRewriteHeader(_)) => {
            return Err(not_supported(at("host_rewrite_header")))
        }
        Some(HostRewriteSpecifier::HostRewritePathRegex(_)) => {
            return Err(not_supported(at("host_rewrite_path_regex")))
        }
        // Without a `%` the format is a literal.
        Some(HostRewriteSpecifier::HostRewrite(h)) if !h.contains('%') => Some(h),
        Some(HostRewriteSpecifier::HostRewrite(_)) => return Err(Error::new(
            at("host_rewrite"),
            "a host rewrite with % commands is not supported by Sluice (use host_rewrite_literal)",
        )),
    };
    if let Some(h) = literal.filter(|h| !h.is_empty()) {
        m.set("host_rewrite_literal", text(h));
    }
    Ok(())
}

#[allow(deprecated)] // `total_weight` is read to log it.
fn weighted_clusters(w: &WeightedCluster, path: &str) -> Result<Node> {
    tree::ignored(w.total_weight.is_some(), path, "total_weight");
    // No runtime: the configured weights are what Envoy uses too.
    tree::ignored(!w.runtime_key_prefix.is_empty(), path, "runtime_key_prefix");
    match &w.random_value_specifier {
        Some(RandomValueSpecifier::HeaderName(_)) => {
            return Err(not_supported(join(path, "header_name")))
        }
        Some(RandomValueSpecifier::UseHashPolicy(b)) => {
            tree::unsupported(b.value, &join(path, "use_hash_policy"))?;
        }
        None => {}
    }
    let cpath = join(path, "clusters");
    if w.clusters.is_empty() {
        return Err(Error::new(cpath, "needs at least one cluster"));
    }
    let mut out = Vec::with_capacity(w.clusters.len());
    for (i, c) in w.clusters.iter().enumerate() {
        let p = index(&cpath, i);
        let at = |f: &str| join(&p, f);
        tree::unsupported(!c.cluster_header.is_empty(), &at("cluster_header"))?;
        if c.name.is_empty() {
            return Err(Error::new(at("name"), "is required"));
        }
        let per_cluster = "header mutations per weighted cluster are not supported by Sluice";
        refuse(
            !c.request_headers_to_add.is_empty(),
            &at("request_headers_to_add"),
            per_cluster,
        )?;
        refuse(
            !c.request_headers_to_remove.is_empty(),
            &at("request_headers_to_remove"),
            per_cluster,
        )?;
        refuse(
            !c.response_headers_to_add.is_empty(),
            &at("response_headers_to_add"),
            per_cluster,
        )?;
        refuse(
            !c.response_headers_to_remove.is_empty(),
            &at("response_headers_to_remove"),
            per_cluster,
        )?;
        tree::unsupported(
            !c.typed_per_filter_config.is_empty(),
            &at("typed_per_filter_config"),
        )?;
        tree::unsupported(
            matches!(
                c.host_rewrite_specifier,
                Some(cluster_weight::HostRewriteSpecifier::HostRewriteLiteral(_))
            ),
            &at("host_rewrite_literal"),
        )?;
        let mut m = Map::new();
        m.set("cluster", text(&c.name));
        // An unset weight is 0 in Envoy.
        m.set("weight", number(c.weight.map_or(0, |v| v.value)));
        m.opt(
            "metadata_match",
            lb_metadata(c.metadata_match.as_ref(), &at("metadata_match"))?,
        );
        out.push(m.build());
    }
    Ok(list(out))
}

/// The subset-selection pairs of a `metadata_match` (its `envoy.lb` namespace, the only one
/// the load balancer reads).
fn lb_metadata(md: Option<&Metadata>, path: &str) -> Result<Option<Node>> {
    let Some(md) = md else {
        return Ok(None);
    };
    tree::unsupported(
        md.typed_filter_metadata.contains_key("envoy.lb"),
        &format!("{path}.typed_filter_metadata[\"envoy.lb\"]"),
    )?;
    tree::ignored(
        md.filter_metadata.keys().any(|k| k != "envoy.lb") || !md.typed_filter_metadata.is_empty(),
        path,
        "filter_metadata (namespaces other than envoy.lb)",
    );
    let pairs = tree::string_metadata(
        md.filter_metadata.get("envoy.lb"),
        &format!("{path}.filter_metadata[\"envoy.lb\"]"),
    )?;
    Ok((!pairs.is_empty()).then(|| tree::string_map(&pairs)))
}

fn hash_policies(policies: &[HashPolicy], path: &str) -> Result<Vec<Node>> {
    let mut out = Vec::with_capacity(policies.len());
    for (i, h) in policies.iter().enumerate() {
        let p = index(path, i);
        let at = |f: &str| join(&p, f);
        let mut m = Map::new();
        match &h.policy_specifier {
            Some(PolicySpecifier::Header(x)) => {
                tree::unsupported(x.regex_rewrite.is_some(), &at("header.regex_rewrite"))?;
                m.set("header", text(&x.header_name));
            }
            Some(PolicySpecifier::Cookie(c)) => {
                tree::unsupported(!c.attributes.is_empty(), &at("cookie.attributes"))?;
                let mut cm = Map::new();
                cm.set("name", text(&c.name));
                if let Some(ttl) = &c.ttl {
                    refuse(
                        !nonzero(ttl),
                        &at("cookie.ttl"),
                        "a zero ttl (a generated session cookie) is not supported by Sluice",
                    )?;
                    cm.set("ttl", duration(ttl, &at("cookie.ttl"))?);
                }
                if !c.path.is_empty() {
                    cm.set("path", text(&c.path));
                }
                m.set("cookie", cm.build());
            }
            Some(PolicySpecifier::ConnectionProperties(cp)) => {
                if !cp.source_ip {
                    // Hashes nothing in Envoy either.
                    tree::ignored(true, &p, "connection_properties");
                    continue;
                }
                m.set("source_ip", boolean(true));
            }
            Some(PolicySpecifier::QueryParameter(q)) => {
                m.set("query_parameter", text(&q.name));
            }
            Some(PolicySpecifier::FilterState(_)) => return Err(not_supported(at("filter_state"))),
            None => {
                return Err(Error::new(
                    p,
                    "needs one of: header, cookie, connection_properties, query_parameter",
                ))
            }
        }
        if h.terminal {
            m.set("terminal", boolean(true));
        }
        out.push(m.build());
    }
    Ok(out)
}

fn retry_policy(p: &RetryPolicy, path: &str) -> Result<Node> {
    let at = |f: &str| join(path, f);
    let mut conditions: Vec<&str> = Vec::new();
    for part in p
        .retry_on
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        if RetryOn::from_name(part).is_none() {
            return Err(Error::new(
                at("retry_on"),
                format!("retry condition \"{part}\" is not supported by Sluice"),
            ));
        }
        conditions.push(part);
    }
    tree::unsupported(
        p.per_try_idle_timeout.is_some(),
        &at("per_try_idle_timeout"),
    )?;
    tree::unsupported(p.retry_priority.is_some(), &at("retry_priority"))?;
    for (i, h) in p.retry_host_predicate.iter().enumerate() {
        // Sluice's retries always prefer hosts not tried yet, which is this predicate.
        let typed = h.config_type.as_ref().map(
            |retry_policy::retry_host_predicate::ConfigType::TypedConfig(any)| {
                any.type_url.as_str()
            },
        );
        let previous_hosts = match typed {
            Some(url) => url == PREVIOUS_HOSTS_TYPE,
            None => h.name == PREVIOUS_HOSTS,
        };
        if !previous_hosts {
            return Err(Error::new(
                index(&at("retry_host_predicate"), i),
                format!(
                    "retry host predicate \"{}\" is not supported by Sluice (only {PREVIOUS_HOSTS})",
                    typed.unwrap_or(&h.name)
                ),
            ));
        }
    }
    tree::unsupported(
        !p.retry_options_predicates.is_empty(),
        &at("retry_options_predicates"),
    )?;
    // How hard the previous-hosts predicate looks; Sluice looks through every host.
    tree::ignored(
        p.host_selection_retry_max_attempts != 0,
        path,
        "host_selection_retry_max_attempts",
    );
    if let Some(b) = &p.retry_back_off {
        let base = b.base_interval.as_ref().map_or(BACKOFF_BASE_NANOS, nanos);
        let max = b.max_interval.as_ref().map_or(10 * base, nanos);
        refuse(
            base != BACKOFF_BASE_NANOS || max != BACKOFF_MAX_NANOS,
            &at("retry_back_off"),
            "only Envoy's default back-off (25ms base, 250ms max) is supported by Sluice",
        )?;
    }
    tree::unsupported(
        p.rate_limited_retry_back_off.is_some(),
        &at("rate_limited_retry_back_off"),
    )?;
    tree::unsupported(!p.retriable_headers.is_empty(), &at("retriable_headers"))?;
    tree::unsupported(
        !p.retriable_request_headers.is_empty(),
        &at("retriable_request_headers"),
    )?;
    // Only acts with cluster specifier plugins, which are refused.
    tree::ignored(p.refresh_cluster_on_retry, path, "refresh_cluster_on_retry");

    let mut m = Map::new();
    m.set("retry_on", text(&conditions.join(",")));
    // Envoy's default is 1; written out so the native default never matters.
    m.set("num_retries", number(p.num_retries.map_or(1, |n| n.value)));
    // Zero means no per-try timeout in Envoy.
    if let Some(t) = p.per_try_timeout.as_ref().filter(|t| nonzero(t)) {
        m.set("per_try_timeout", duration(t, &at("per_try_timeout"))?);
    }
    if !p.retriable_status_codes.is_empty() {
        m.set(
            "retriable_status_codes",
            list(p.retriable_status_codes.iter().map(number).collect()),
        );
    }
    Ok(m.build())
}

/// `request_mirror_policies` (at `path`) as the native `request_mirror`, which mirrors to
/// one cluster.
fn mirror_policies(policies: &[RequestMirrorPolicy], path: &str) -> Result<Option<Node>> {
    let Some(p) = policies.first() else {
        return Ok(None);
    };
    if policies.len() > 1 {
        return Err(Error::new(
            index(path, 1),
            "Sluice mirrors to one cluster only; a second mirror policy is not supported",
        ));
    }
    let ppath = index(path, 0);
    let at = |f: &str| join(&ppath, f);
    tree::unsupported(!p.cluster_header.is_empty(), &at("cluster_header"))?;
    if p.cluster.is_empty() {
        return Err(Error::new(at("cluster"), "is required"));
    }
    tree::unsupported(
        p.disable_shadow_host_suffix_append,
        &at("disable_shadow_host_suffix_append"),
    )?;
    tree::unsupported(
        !p.request_headers_mutations.is_empty(),
        &at("request_headers_mutations"),
    )?;
    tree::unsupported(
        !p.host_rewrite_literal.is_empty(),
        &at("host_rewrite_literal"),
    )?;
    tree::ignored(p.trace_sampled.is_some(), &ppath, "trace_sampled");
    let mut m = Map::new();
    m.set("cluster", text(&p.cluster));
    if let Some(rf) = &p.runtime_fraction {
        // No runtime: Envoy would use the default too.
        tree::ignored(
            !rf.runtime_key.is_empty(),
            &ppath,
            "runtime_fraction.runtime_key",
        );
        let percent = fraction(
            rf.default_value.as_ref(),
            &at("runtime_fraction.default_value"),
        )?;
        m.set("percent", number(percent));
    }
    Ok(Some(m.build()))
}

fn redirect(r: &RedirectAction, path: &str, kind: &PathKind) -> Result<Node> {
    let at = |f: &str| join(path, f);
    let mut m = Map::new();
    match &r.scheme_rewrite_specifier {
        Some(SchemeRewriteSpecifier::HttpsRedirect(true)) => {
            m.set("https_redirect", boolean(true));
        }
        Some(SchemeRewriteSpecifier::SchemeRedirect(s)) if !s.is_empty() => {
            m.set("scheme_redirect", text(s));
        }
        _ => {}
    }
    if !r.host_redirect.is_empty() {
        m.set("host_redirect", text(&r.host_redirect));
    }
    if r.port_redirect != 0 {
        let port = u16::try_from(r.port_redirect)
            .map_err(|_| Error::new(at("port_redirect"), "must be a port (1 to 65535)"))?;
        m.set("port_redirect", number(port));
    }
    let mut strip_query = r.strip_query;
    match &r.path_rewrite_specifier {
        None => {}
        Some(PathRewriteSpecifier::PathRedirect(p)) => {
            // Envoy: a query in `path_redirect` replaces the request's.
            strip_query |= p.contains('?');
            m.set("path_redirect", text(p));
        }
        Some(PathRewriteSpecifier::PrefixRewrite(p)) if p.is_empty() => {}
        Some(PathRewriteSpecifier::PrefixRewrite(p)) => {
            match kind {
                PathKind::Prefix => {
                    m.set("prefix_rewrite", text(p));
                }
                PathKind::EmptyPrefix => {
                    m.set("prefix_rewrite", text(&format!("{p}/")));
                }
                // The whole path was matched, so it is all replaced.
                PathKind::WholePath => {
                    refuse(
                        p.contains('?'),
                        &at("prefix_rewrite"),
                        "a \"?\" in prefix_rewrite is not supported by Sluice",
                    )?;
                    m.set("path_redirect", text(p));
                }
                PathKind::SeparatedPrefix(_) => return Err(Error::new(
                    at("prefix_rewrite"),
                    "with a path_separated_prefix match, prefix_rewrite is not supported by Sluice",
                )),
            }
        }
        Some(PathRewriteSpecifier::RegexRewrite(_)) => {
            return Err(not_supported(at("regex_rewrite")))
        }
        Some(PathRewriteSpecifier::PathRewrite(_)) => {
            return Err(not_supported(at("path_rewrite")))
        }
    }
    let code = match RedirectResponseCode::try_from(r.response_code) {
        Ok(RedirectResponseCode::MovedPermanently) => 301,
        Ok(RedirectResponseCode::Found) => 302,
        Ok(RedirectResponseCode::SeeOther) => 303,
        Ok(RedirectResponseCode::TemporaryRedirect) => 307,
        Ok(RedirectResponseCode::PermanentRedirect) => 308,
        Err(_) => {
            return Err(Error::new(
                at("response_code"),
                format!("unknown response code {}", r.response_code),
            ))
        }
    };
    m.set("response_code", number(code));
    if strip_query {
        m.set("strip_query", boolean(true));
    }
    Ok(m.build())
}

fn direct_response(d: &DirectResponseAction, path: &str, max_body: u32) -> Result<Node> {
    tree::unsupported(d.body_format.is_some(), &join(path, "body_format"))?;
    let mut m = Map::new();
    m.set("status", number(d.status));
    if let Some(body) = &d.body {
        let bpath = join(path, "body");
        tree::ignored(
            body.watched_directory.is_some(),
            &bpath,
            "watched_directory",
        );
        let bytes = crate::data_source::read(Some(body), "the data source")
            .map_err(|e| Error::new(&bpath, e))?;
        // Envoy refuses the config too.
        if bytes.len() > max_body as usize {
            return Err(Error::new(
                bpath,
                format!(
                    "is {} bytes, over max_direct_response_body_size_bytes ({max_body})",
                    bytes.len()
                ),
            ));
        }
        let body = String::from_utf8(bytes).map_err(|_| {
            Error::new(
                &bpath,
                "is not UTF-8, which a Sluice direct_response body must be",
            )
        })?;
        if !body.is_empty() {
            m.set("body", text(&body));
        }
    }
    Ok(m.build())
}

/// The four header-mutation keys of a level at `path`, set when not empty.
fn mutations(
    m: &mut Map,
    path: &str,
    request_add: &[HeaderValueOption],
    request_remove: &[String],
    response_add: &[HeaderValueOption],
    response_remove: &[String],
) -> Result<()> {
    if !request_add.is_empty() {
        m.set(
            "request_headers_to_add",
            headers_to_add(request_add, &join(path, "request_headers_to_add"))?,
        );
    }
    if !request_remove.is_empty() {
        m.set("request_headers_to_remove", texts(request_remove));
    }
    if !response_add.is_empty() {
        m.set(
            "response_headers_to_add",
            headers_to_add(response_add, &join(path, "response_headers_to_add"))?,
        );
    }
    if !response_remove.is_empty() {
        m.set("response_headers_to_remove", texts(response_remove));
    }
    Ok(())
}

#[allow(deprecated)] // `append` is still what many control planes send.
fn headers_to_add(headers: &[HeaderValueOption], path: &str) -> Result<Node> {
    let mut out = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let p = index(path, i);
        let at = |f: &str| join(&p, f);
        let Some(hv) = &h.header else {
            return Err(Error::new(at("header"), "is required"));
        };
        tree::unsupported(!hv.raw_value.is_empty(), &at("header.raw_value"))?;
        // Checked here so an unknown %COMMAND% is reported at its Envoy field.
        sluice_config::route_format(&hv.value).map_err(|e| Error::new(at("header.value"), e))?;
        // Envoy's default drops a header whose value renders empty, as Sluice always does.
        tree::unsupported(h.keep_empty_value, &at("keep_empty_value"))?;
        let mut header = Map::new();
        header.set("key", text(&hv.key));
        header.set("value", text(&hv.value));
        let mut m = Map::new();
        m.set("header", header.build());
        let action = HeaderAppendAction::try_from(h.append_action).map_err(|_| {
            Error::new(
                at("append_action"),
                format!("unknown append action {}", h.append_action),
            )
        })?;
        match (&h.append, action) {
            (Some(_), a) if a != HeaderAppendAction::AppendIfExistsOrAdd => {
                return Err(Error::new(&p, "use only one of: append, append_action"))
            }
            (Some(append), _) => {
                m.set("append", boolean(append.value));
            }
            (None, HeaderAppendAction::AppendIfExistsOrAdd) => {}
            (None, a) => {
                m.set("append_action", text(a.as_str_name()));
            }
        }
        out.push(m.build());
    }
    Ok(list(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, deprecated)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::core::v3::{
        data_source::Specifier, DataSource, HeaderValue, RuntimeFractionalPercent,
    };
    use envoy_types::pb::envoy::config::route::v3::route_action::hash_policy;
    use envoy_types::pb::envoy::config::route::v3::route_action::MaxStreamDuration;
    use envoy_types::pb::envoy::config::route::v3::route_match::GrpcRouteMatchOptions;
    use envoy_types::pb::envoy::config::route::v3::weighted_cluster::ClusterWeight;
    use envoy_types::pb::envoy::r#type::matcher::v3::RegexMatcher;
    use envoy_types::pb::envoy::r#type::v3::Int64Range;
    use envoy_types::pb::google::protobuf::{
        value::Kind, Any, BoolValue, Struct, UInt32Value, Value,
    };

    fn yaml(src: &str) -> Node {
        sluice_config::yaml::parse(src).unwrap()
    }

    fn assert_tree(got: &Node, want: &str) {
        let want = yaml(want);
        assert!(
            sluice_config::diff::same(got, &want),
            "translated tree differs\n got: {got:#?}\nwant: {want:#?}"
        );
    }

    fn secs(s: i64) -> Duration {
        Duration {
            seconds: s,
            nanos: 0,
        }
    }

    fn millis(ms: i32) -> Duration {
        Duration {
            seconds: 0,
            nanos: ms * 1_000_000,
        }
    }

    fn prefix(p: &str) -> Option<RouteMatch> {
        Some(RouteMatch {
            path_specifier: Some(PathSpecifier::Prefix(p.into())),
            ..Default::default()
        })
    }

    fn forward(cluster: &str) -> RouteAction {
        RouteAction {
            cluster_specifier: Some(ClusterSpecifier::Cluster(cluster.into())),
            ..Default::default()
        }
    }

    fn to(m: Option<RouteMatch>, a: RouteAction) -> Route {
        Route {
            r#match: m,
            action: Some(route::Action::Route(a)),
            ..Default::default()
        }
    }

    fn vhost(name: &str, domains: &[&str], routes: Vec<Route>) -> VirtualHost {
        VirtualHost {
            name: name.into(),
            domains: domains.iter().map(|d| d.to_string()).collect(),
            routes,
            ..Default::default()
        }
    }

    fn config(vhosts: Vec<VirtualHost>) -> RouteConfiguration {
        RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vhosts,
            ..Default::default()
        }
    }

    /// One route forwarding to `backend`, for tests that change one thing about it.
    fn one(r: Route) -> RouteConfiguration {
        config(vec![vhost("v", &["*"], vec![r])])
    }

    fn header(key: &str, value: &str) -> Option<HeaderValue> {
        Some(HeaderValue {
            key: key.into(),
            value: value.into(),
            raw_value: Vec::new(),
        })
    }

    fn lb(pairs: &[(&str, &str)]) -> Option<Metadata> {
        let fields = pairs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Value {
                        kind: Some(Kind::StringValue(v.to_string())),
                    },
                )
            })
            .collect();
        Some(Metadata {
            filter_metadata: [("envoy.lb".to_string(), Struct { fields })].into(),
            ..Default::default()
        })
    }

    fn string_match(p: MatchPattern, ignore_case: bool) -> StringMatcher {
        StringMatcher {
            ignore_case,
            match_pattern: Some(p),
        }
    }

    fn regex(r: &str) -> RegexMatcher {
        RegexMatcher {
            regex: r.into(),
            engine_type: None,
        }
    }

    fn mirror(cluster: &str) -> RequestMirrorPolicy {
        RequestMirrorPolicy {
            cluster: cluster.into(),
            ..Default::default()
        }
    }

    /// Loads `entry` as the only `route_configs` entry of a document, as the xDS client will.
    fn load(entry: Node) -> sluice_config::Config {
        let mut endpoint = Map::new();
        endpoint.set("address", text("127.0.0.1:9"));
        let mut cluster = Map::new();
        cluster.set("name", text("backend"));
        cluster.set("endpoints", list(vec![endpoint.build()]));
        let mut doc = Map::new();
        doc.set("route_configs", list(vec![entry]));
        doc.set("clusters", list(vec![cluster.build()]));
        sluice_config::load_tree(
            doc.build(),
            "xds",
            &sluice_config::Registry::default(),
            sluice_config::LoadOptions {
                allow_unknown_clusters: true,
            },
        )
        .unwrap_or_else(|e| panic!("the loader refused the translated tree:\n{e}"))
    }

    fn full() -> RouteConfiguration {
        let api = Route {
            name: "r0".into(),
            stat_prefix: "api".into(),
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Prefix("/api/".into())),
                case_sensitive: Some(BoolValue { value: false }),
                headers: vec![
                    HeaderMatcher {
                        name: "x-env".into(),
                        header_match_specifier: Some(HeaderMatchSpecifier::ExactMatch(
                            "prod".into(),
                        )),
                        ..Default::default()
                    },
                    HeaderMatcher {
                        name: "x-canary".into(),
                        header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(
                            string_match(MatchPattern::Prefix("v2.".into()), true),
                        )),
                        ..Default::default()
                    },
                    HeaderMatcher {
                        name: "x-debug".into(),
                        header_match_specifier: Some(HeaderMatchSpecifier::PresentMatch(true)),
                        invert_match: true,
                        ..Default::default()
                    },
                    HeaderMatcher {
                        name: "x-team".into(),
                        header_match_specifier: Some(HeaderMatchSpecifier::ContainsMatch(
                            "ops".into(),
                        )),
                        invert_match: true,
                        ..Default::default()
                    },
                    HeaderMatcher {
                        name: "x-any".into(),
                        ..Default::default()
                    },
                    HeaderMatcher {
                        name: "x-id".into(),
                        header_match_specifier: Some(HeaderMatchSpecifier::SafeRegexMatch(regex(
                            "[0-9]+",
                        ))),
                        ..Default::default()
                    },
                ],
                query_parameters: vec![
                    QueryParameterMatcher {
                        name: "q".into(),
                        query_parameter_match_specifier: Some(
                            QueryParameterMatchSpecifier::StringMatch(string_match(
                                MatchPattern::Exact("1".into()),
                                false,
                            )),
                        ),
                    },
                    QueryParameterMatcher {
                        name: "flag".into(),
                        query_parameter_match_specifier: None,
                    },
                    QueryParameterMatcher {
                        name: "debug".into(),
                        query_parameter_match_specifier: Some(
                            QueryParameterMatchSpecifier::PresentMatch(false),
                        ),
                    },
                ],
                grpc: Some(GrpcRouteMatchOptions {}),
                ..Default::default()
            }),
            action: Some(route::Action::Route(RouteAction {
                timeout: Some(secs(2)),
                prefix_rewrite: "/".into(),
                host_rewrite_specifier: Some(HostRewriteSpecifier::HostRewriteLiteral(
                    "internal".into(),
                )),
                hash_policy: vec![
                    HashPolicy {
                        terminal: true,
                        policy_specifier: Some(PolicySpecifier::Header(hash_policy::Header {
                            header_name: "x-user".into(),
                            regex_rewrite: None,
                        })),
                    },
                    HashPolicy {
                        terminal: false,
                        policy_specifier: Some(PolicySpecifier::Cookie(hash_policy::Cookie {
                            name: "sid".into(),
                            ttl: Some(secs(3600)),
                            path: "/".into(),
                            attributes: Vec::new(),
                        })),
                    },
                    HashPolicy {
                        terminal: false,
                        policy_specifier: Some(PolicySpecifier::ConnectionProperties(
                            hash_policy::ConnectionProperties { source_ip: true },
                        )),
                    },
                    HashPolicy {
                        terminal: false,
                        policy_specifier: Some(PolicySpecifier::QueryParameter(
                            hash_policy::QueryParameter { name: "u".into() },
                        )),
                    },
                ],
                priority: RoutingPriority::High as i32,
                metadata_match: lb(&[("version", "v2")]),
                request_mirror_policies: vec![RequestMirrorPolicy {
                    runtime_fraction: Some(RuntimeFractionalPercent {
                        default_value: Some(FractionalPercent {
                            numerator: 25,
                            denominator: DenominatorType::TenThousand as i32,
                        }),
                        runtime_key: String::new(),
                    }),
                    ..mirror("shadow")
                }],
                ..forward("backend")
            })),
            response_headers_to_add: vec![HeaderValueOption {
                header: header("x-served-by", "%UPSTREAM_REMOTE_ADDRESS%"),
                append: Some(BoolValue { value: false }),
                ..Default::default()
            }],
            request_headers_to_remove: vec!["x-internal".into()],
            decorator: Some(Default::default()),
            ..Default::default()
        };
        let exact = to(
            Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Path("/exact".into())),
                ..Default::default()
            }),
            RouteAction {
                cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
                    clusters: vec![
                        ClusterWeight {
                            name: "a".into(),
                            weight: Some(UInt32Value { value: 3 }),
                            metadata_match: lb(&[("stage", "gray")]),
                            ..Default::default()
                        },
                        ClusterWeight {
                            name: "backend".into(),
                            weight: Some(UInt32Value { value: 1 }),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                })),
                retry_policy: Some(RetryPolicy {
                    retry_on: "retriable-status-codes".into(),
                    num_retries: Some(UInt32Value { value: 3 }),
                    per_try_timeout: Some(millis(500)),
                    retriable_status_codes: vec![503],
                    retry_host_predicate: vec![retry_policy::RetryHostPredicate {
                        name: PREVIOUS_HOSTS.into(),
                        config_type: None,
                    }],
                    host_selection_retry_max_attempts: 5,
                    ..Default::default()
                }),
                prefix_rewrite: "/new".into(),
                ..Default::default()
            },
        );
        let moved = Route {
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::SafeRegex(regex("/v[0-9]+/.*"))),
                ..Default::default()
            }),
            action: Some(route::Action::Redirect(RedirectAction {
                host_redirect: "example.org".into(),
                port_redirect: 8443,
                response_code: RedirectResponseCode::PermanentRedirect as i32,
                scheme_rewrite_specifier: Some(SchemeRewriteSpecifier::HttpsRedirect(true)),
                path_rewrite_specifier: Some(PathRewriteSpecifier::PathRedirect(
                    "/moved?x=1".into(),
                )),
                ..Default::default()
            })),
            ..Default::default()
        };
        let docs = to(
            Some(RouteMatch {
                path_specifier: Some(PathSpecifier::PathSeparatedPrefix("/docs.v1".into())),
                case_sensitive: Some(BoolValue { value: false }),
                ..Default::default()
            }),
            RouteAction {
                prefix_rewrite: "/d".into(),
                ..forward("docs")
            },
        );
        let rest = Route {
            r#match: prefix(""),
            action: Some(route::Action::DirectResponse(DirectResponseAction {
                status: 404,
                body: Some(DataSource {
                    watched_directory: None,
                    specifier: Some(Specifier::InlineString("nope".into())),
                }),
                body_format: None,
            })),
            ..Default::default()
        };
        RouteConfiguration {
            name: "rc".into(),
            virtual_hosts: vec![
                VirtualHost {
                    request_headers_to_add: vec![HeaderValueOption {
                        header: header("x-client", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
                        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
                        ..Default::default()
                    }],
                    response_headers_to_remove: vec!["server".into()],
                    retry_policy: Some(RetryPolicy {
                        retry_on: "5xx, reset".into(),
                        ..Default::default()
                    }),
                    virtual_clusters: vec![Default::default()],
                    ..vhost(
                        "api",
                        &["API.example.com", "api.example.com:8080", "*.svc"],
                        vec![api, exact, moved, docs, rest],
                    )
                },
                VirtualHost {
                    request_mirror_policies: vec![mirror("vh-mirror")],
                    ..vhost(
                        "other",
                        &["*", "[::1]:80"],
                        vec![to(prefix("/"), forward("backend"))],
                    )
                },
            ],
            response_headers_to_add: vec![HeaderValueOption {
                header: header("x-rc", "1"),
                ..Default::default()
            }],
            request_mirror_policies: vec![mirror("mirror-all")],
            validate_clusters: Some(BoolValue { value: true }),
            ..Default::default()
        }
    }

    const FULL: &str = r#"
name: "rc"
virtual_hosts:
  - name: "api"
    domains: ["api.example.com", "*.svc"]
    request_headers_to_add:
      - header: { key: "x-client", value: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" }
        append_action: "OVERWRITE_IF_EXISTS_OR_ADD"
    response_headers_to_remove: ["server"]
    routes:
      - name: "r0"
        stat_prefix: "api"
        match:
          prefix: "/api/"
          case_sensitive: false
          headers:
            - { name: "x-env", exact: "prod" }
            - { name: "x-canary", regex: '(?i-u:v2\.)(?s:.)*' }
            - { name: "x-debug", present: true, invert: true }
            - { name: "x-team", contains: "ops", invert: true }
            - { name: "x-any", present: true }
            - { name: "x-id", regex: "[0-9]+" }
          query_parameters:
            - { name: "q", exact: "1" }
            - { name: "flag", present: true }
            - { name: "debug", present: false }
          grpc: {}
        route:
          cluster: "backend"
          timeout: 2s
          retry_policy: { retry_on: "5xx,reset", num_retries: 1 }
          request_mirror: { cluster: "shadow", percent: 0.25 }
          prefix_rewrite: "/"
          host_rewrite_literal: "internal"
          metadata_match: { version: "v2" }
          hash_policy:
            - { header: "x-user", terminal: true }
            - { cookie: { name: "sid", ttl: 3600s, path: "/" } }
            - { source_ip: true }
            - { query_parameter: "u" }
          priority: "high"
        request_headers_to_remove: ["x-internal"]
        response_headers_to_add:
          - header: { key: "x-served-by", value: "%UPSTREAM_REMOTE_ADDRESS%" }
            append: false
      - match: { path: "/exact" }
        route:
          weighted_clusters:
            - { cluster: "a", weight: 3, metadata_match: { stage: "gray" } }
            - { cluster: "backend", weight: 1 }
          retry_policy:
            retry_on: "retriable-status-codes"
            num_retries: 3
            per_try_timeout: 500ms
            retriable_status_codes: [503]
          request_mirror: { cluster: "mirror-all" }
          regex_rewrite: { pattern: "^.*$", substitution: "/new" }
      - match: { regex: "/v[0-9]+/.*" }
        redirect:
          https_redirect: true
          host_redirect: "example.org"
          port_redirect: 8443
          path_redirect: "/moved?x=1"
          response_code: 308
          strip_query: true
      - match: { regex: '(?i-u:/docs\.v1)(?:/.*)?' }
        route:
          cluster: "docs"
          retry_policy: { retry_on: "5xx,reset", num_retries: 1 }
          request_mirror: { cluster: "mirror-all" }
          regex_rewrite: { pattern: '^(?i-u:/docs\.v1)', substitution: "/d" }
      - match: { prefix: "/" }
        direct_response: { status: 404, body: "nope" }
  - name: "other"
    domains: ["*", "[::1]"]
    routes:
      - match: { prefix: "/" }
        route:
          cluster: "backend"
          request_mirror: { cluster: "vh-mirror" }
response_headers_to_add:
  - header: { key: "x-rc", value: "1" }
"#;

    #[test]
    fn translates_every_mapped_field() {
        let got = route_configuration(&full(), true).unwrap();
        assert_tree(&got, FULL);
    }

    #[test]
    fn the_loader_accepts_the_translation() {
        let config = load(route_configuration(&full(), true).unwrap());
        assert_eq!(config.route_configs.len(), 1);
        let rc = &config.route_configs[0];
        assert_eq!(rc.name, "rc");
        assert_eq!(rc.virtual_hosts.len(), 2);
        assert_eq!(rc.virtual_hosts[0].routes.len(), 5);
    }

    use sluice_config::route::RouteAction as RouteAction2;

    #[test]
    fn istio_stream_durations_read_the_grpc_timeout_header() {
        let action = |max: i64| {
            one(to(
                prefix("/"),
                RouteAction {
                    max_stream_duration: Some(MaxStreamDuration {
                        max_stream_duration: Some(secs(0)),
                        grpc_timeout_header_max: Some(secs(max)),
                        grpc_timeout_header_offset: None,
                    }),
                    ..forward("backend")
                },
            ))
        };
        let config = load(route_configuration(&action(0), true).unwrap());
        let RouteAction2::Forward(f) = &config.route_configs[0].virtual_hosts[0].routes[0].action
        else {
            panic!("not a forward")
        };
        assert_eq!(f.grpc_timeout_header_max, Some(std::time::Duration::ZERO));
        let config = load(route_configuration(&action(5), true).unwrap());
        let RouteAction2::Forward(f) = &config.route_configs[0].virtual_hosts[0].routes[0].action
        else {
            panic!("not a forward")
        };
        assert_eq!(
            f.grpc_timeout_header_max,
            Some(std::time::Duration::from_secs(5))
        );
    }

    #[test]
    fn attempt_count_headers_are_virtual_host_keys() {
        let mut rc = one(to(prefix("/"), forward("backend")));
        rc.virtual_hosts[0].include_request_attempt_count = true;
        rc.virtual_hosts[0].include_attempt_count_in_response = true;
        let config = load(route_configuration(&rc, true).unwrap());
        let vh = &config.route_configs[0].virtual_hosts[0];
        assert!(vh.include_request_attempt_count && vh.include_attempt_count_in_response);
        rc.virtual_hosts[0].include_attempt_count_in_response = false;
        let config = load(route_configuration(&rc, true).unwrap());
        assert!(!config.route_configs[0].virtual_hosts[0].include_attempt_count_in_response);
    }

    #[test]
    fn inline_form_has_no_required_name_and_decodes() {
        let mut rc = one(to(prefix("/"), forward("backend")));
        rc.name.clear();
        let node = route_configuration(&rc, false).unwrap();
        assert_tree(
            &node,
            r#"
virtual_hosts:
  - name: "v"
    domains: ["*"]
    routes:
      - match: { prefix: "/" }
        route: { cluster: "backend" }
"#,
        );
        let mut cx = sluice_config::Cx::default();
        let decoded = sluice_config::decode_inline_route_config(&node, "route_config", &mut cx);
        assert!(!cx.has_errors(), "{:?}", cx.diagnostics);
        assert_eq!(decoded.unwrap().virtual_hosts[0].domains, ["*"]);
        // A named entry needs its name.
        let e = route_configuration(&rc, true).unwrap_err();
        assert_eq!(e.field, "name");
    }

    #[test]
    fn rewrites_follow_envoys_matched_part() {
        // Envoy: an empty prefix matches all and prefix_rewrite is put in front of the path.
        let rc = config(vec![vhost(
            "v",
            &["*"],
            vec![
                to(
                    prefix(""),
                    RouteAction {
                        prefix_rewrite: "/base".into(),
                        ..forward("backend")
                    },
                ),
                Route {
                    r#match: Some(RouteMatch {
                        path_specifier: Some(PathSpecifier::Path("/old".into())),
                        ..Default::default()
                    }),
                    action: Some(route::Action::Redirect(RedirectAction {
                        path_rewrite_specifier: Some(PathRewriteSpecifier::PrefixRewrite(
                            "/new".into(),
                        )),
                        ..Default::default()
                    })),
                    ..Default::default()
                },
            ],
        )]);
        let node = route_configuration(&rc, true).unwrap();
        assert_tree(
            &node,
            r#"
name: "rc"
virtual_hosts:
  - name: "v"
    domains: ["*"]
    routes:
      - match: { prefix: "/" }
        route: { cluster: "backend", prefix_rewrite: "/base/" }
      - match: { path: "/old" }
        redirect: { path_redirect: "/new", response_code: 301 }
"#,
        );
        load(node);
    }

    #[test]
    fn ignore_case_is_ascii_only_and_loads() {
        let matcher = |p: MatchPattern| HeaderMatcher {
            name: "x-a".into(),
            header_match_specifier: Some(HeaderMatchSpecifier::StringMatch(string_match(p, true))),
            ..Default::default()
        };
        let r = Route {
            r#match: Some(RouteMatch {
                path_specifier: Some(PathSpecifier::Prefix("/".into())),
                headers: vec![
                    matcher(MatchPattern::Exact("A+b".into())),
                    matcher(MatchPattern::Suffix("Ö".into())),
                    matcher(MatchPattern::Contains("[x]".into())),
                    matcher(MatchPattern::SafeRegex(regex("a|B"))),
                ],
                ..Default::default()
            }),
            ..to(None, forward("backend"))
        };
        let node = route_configuration(&one(r), true).unwrap();
        assert_tree(
            &node,
            r#"
name: "rc"
virtual_hosts:
  - name: "v"
    domains: ["*"]
    routes:
      - match:
          prefix: "/"
          headers:
            - { name: "x-a", regex: '(?i-u:A\+b)' }
            - { name: "x-a", regex: '(?s:.)*(?i-u:Ö)' }
            - { name: "x-a", regex: '(?s:.)*(?i-u:\[x\])(?s:.)*' }
            - { name: "x-a", regex: "a|B" }
        route: { cluster: "backend" }
"#,
        );
        load(node);
    }

    #[test]
    fn domain_ports_are_dropped_and_clashes_refused() {
        assert_eq!(without_port("a.com:8080"), "a.com");
        assert_eq!(without_port("a.com:*"), "a.com");
        assert_eq!(without_port("[::1]:80"), "[::1]");
        assert_eq!(without_port("[::1]"), "[::1]");
        assert_eq!(without_port("::1"), "::1");
        assert_eq!(without_port("*"), "*");
        let rc = config(vec![
            vhost("a", &["a.com"], vec![]),
            vhost("b", &["b.com", "a.com:8080"], vec![]),
        ]);
        let e = route_configuration(&rc, true).unwrap_err();
        assert_eq!(e.field, "virtual_hosts[1].domains[1]");
        assert!(e.message.contains("virtual_hosts[0]"), "{e}");
    }

    #[test]
    fn direct_response_body_limit_is_envoys() {
        let body = |n: usize| Route {
            r#match: prefix("/"),
            action: Some(route::Action::DirectResponse(DirectResponseAction {
                status: 200,
                body: Some(DataSource {
                    watched_directory: None,
                    specifier: Some(Specifier::InlineBytes(vec![b'a'; n])),
                }),
                body_format: None,
            })),
            ..Default::default()
        };
        assert!(route_configuration(&one(body(4096)), true).is_ok());
        let e = route_configuration(&one(body(4097)), true).unwrap_err();
        assert_eq!(e.field, "virtual_hosts[0].routes[0].direct_response.body");
        let mut rc = one(body(5000));
        rc.max_direct_response_body_size_bytes = Some(UInt32Value { value: 8192 });
        assert!(route_configuration(&rc, true).is_ok());
    }

    /// Each case changes one field of a plain route; the error must name exactly that field.
    #[test]
    fn unsupported_fields_are_refused_at_their_path() {
        let r0 = "virtual_hosts[0].routes[0]";
        let base = || to(prefix("/"), forward("backend"));
        let with_action = |a: RouteAction| to(prefix("/"), a);
        let with_match = |m: RouteMatch| to(Some(m), forward("backend"));
        let cases: Vec<(RouteConfiguration, String)> = vec![
            (
                one(Route {
                    typed_per_filter_config: [(
                        "envoy.filters.http.rbac".to_string(),
                        Any::default(),
                    )]
                    .into(),
                    ..base()
                }),
                format!("{r0}.typed_per_filter_config"),
            ),
            (
                one(with_action(RouteAction {
                    cluster_specifier: Some(ClusterSpecifier::ClusterHeader("x-cluster".into())),
                    ..Default::default()
                })),
                format!("{r0}.route.cluster_header"),
            ),
            (
                one(with_action(RouteAction {
                    regex_rewrite: Some(RegexMatchAndSubstitute {
                        pattern: Some(regex("^/a/(.*)")),
                        substitution: "\\\\\\1".into(),
                    }),
                    ..forward("backend")
                })),
                format!("{r0}.route.regex_rewrite.substitution"),
            ),
            (
                one(with_action(RouteAction {
                    regex_rewrite: Some(RegexMatchAndSubstitute {
                        pattern: None,
                        substitution: "/".into(),
                    }),
                    ..forward("backend")
                })),
                format!("{r0}.route.regex_rewrite.pattern"),
            ),
            (
                one(with_action(RouteAction {
                    host_rewrite_specifier: Some(HostRewriteSpecifier::AutoHostRewrite(
                        BoolValue { value: true },
                    )),
                    ..forward("backend")
                })),
                format!("{r0}.route.auto_host_rewrite"),
            ),
            (
                one(with_action(RouteAction {
                    host_rewrite_specifier: Some(HostRewriteSpecifier::HostRewriteHeader(
                        "x-host".into(),
                    )),
                    ..forward("backend")
                })),
                format!("{r0}.route.host_rewrite_header"),
            ),
            (
                one(with_action(RouteAction {
                    request_mirror_policies: vec![mirror("a"), mirror("b")],
                    ..forward("backend")
                })),
                format!("{r0}.route.request_mirror_policies[1]"),
            ),
            (
                one(with_action(RouteAction {
                    retry_policy: Some(RetryPolicy {
                        retry_on: "5xx,envoy-ratelimited".into(),
                        ..Default::default()
                    }),
                    ..forward("backend")
                })),
                format!("{r0}.route.retry_policy.retry_on"),
            ),
            (
                one(with_action(RouteAction {
                    hash_policy: vec![HashPolicy {
                        terminal: false,
                        policy_specifier: Some(PolicySpecifier::Cookie(hash_policy::Cookie {
                            name: "sid".into(),
                            ttl: Some(secs(0)),
                            ..Default::default()
                        })),
                    }],
                    ..forward("backend")
                })),
                format!("{r0}.route.hash_policy[0].cookie.ttl"),
            ),
            (
                one(with_action(RouteAction {
                    cluster_specifier: Some(ClusterSpecifier::WeightedClusters(WeightedCluster {
                        clusters: vec![ClusterWeight {
                            name: "a".into(),
                            weight: Some(UInt32Value { value: 1 }),
                            request_headers_to_add: vec![HeaderValueOption {
                                header: header("x", "y"),
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    })),
                    ..Default::default()
                })),
                format!("{r0}.route.weighted_clusters.clusters[0].request_headers_to_add"),
            ),
            (
                one(with_match(RouteMatch {
                    path_specifier: Some(PathSpecifier::Prefix("/".into())),
                    headers: vec![HeaderMatcher {
                        name: "x-n".into(),
                        header_match_specifier: Some(HeaderMatchSpecifier::RangeMatch(
                            Int64Range { start: 0, end: 10 },
                        )),
                        ..Default::default()
                    }],
                    ..Default::default()
                })),
                format!("{r0}.match.headers[0].range_match"),
            ),
            (
                one(with_match(RouteMatch {
                    path_specifier: Some(PathSpecifier::Prefix("/".into())),
                    runtime_fraction: Some(RuntimeFractionalPercent {
                        default_value: Some(FractionalPercent {
                            numerator: 50,
                            denominator: 0,
                        }),
                        runtime_key: "k".into(),
                    }),
                    ..Default::default()
                })),
                format!("{r0}.match.runtime_fraction"),
            ),
            (
                one(Route {
                    response_headers_to_add: vec![HeaderValueOption {
                        header: header("x-start", "%START_TIME%"),
                        ..Default::default()
                    }],
                    ..base()
                }),
                format!("{r0}.response_headers_to_add[0].header.value"),
            ),
            (
                one(Route {
                    request_headers_to_add: vec![HeaderValueOption {
                        header: header("x-a", "b"),
                        append: Some(BoolValue { value: true }),
                        append_action: HeaderAppendAction::AddIfAbsent as i32,
                        ..Default::default()
                    }],
                    ..base()
                }),
                format!("{r0}.request_headers_to_add[0]"),
            ),
            (
                one(Route {
                    action: Some(route::Action::Redirect(RedirectAction {
                        path_rewrite_specifier: Some(PathRewriteSpecifier::RegexRewrite(
                            Default::default(),
                        )),
                        ..Default::default()
                    })),
                    ..base()
                }),
                format!("{r0}.redirect.regex_rewrite"),
            ),
            (
                config(vec![VirtualHost {
                    require_tls: TlsRequirementType::All as i32,
                    ..vhost("v", &["*"], vec![base()])
                }]),
                "virtual_hosts[0].require_tls".to_string(),
            ),
            (
                RouteConfiguration {
                    internal_only_headers: vec!["x-internal".into()],
                    ..one(base())
                },
                "internal_only_headers".to_string(),
            ),
            (
                RouteConfiguration {
                    most_specific_header_mutations_wins: true,
                    ..one(base())
                },
                "most_specific_header_mutations_wins".to_string(),
            ),
        ];
        for (rc, field) in cases {
            match route_configuration(&rc, true) {
                Ok(node) => panic!("expected an error at {field}, got {node:#?}"),
                Err(e) => assert_eq!(e.field, field, "{e}"),
            }
        }
    }

    #[test]
    fn ignored_fields_change_nothing() {
        let plain = one(to(prefix("/"), forward("backend")));
        let mut noisy = plain.clone();
        noisy.validate_clusters = Some(BoolValue { value: false });
        noisy.metadata = Some(Default::default());
        let vh = &mut noisy.virtual_hosts[0];
        vh.virtual_clusters = vec![Default::default()];
        vh.metadata = Some(Default::default());
        let r = &mut vh.routes[0];
        r.metadata = Some(Default::default());
        r.decorator = Some(Default::default());
        r.tracing = Some(Default::default());
        if let Some(route::Action::Route(a)) = &mut r.action {
            a.retry_policy = Some(RetryPolicy {
                retry_on: "connect-failure".into(),
                host_selection_retry_max_attempts: 3,
                retry_back_off: Some(retry_policy::RetryBackOff {
                    base_interval: Some(millis(25)),
                    max_interval: None,
                }),
                ..Default::default()
            });
            a.metadata_match = Some(Metadata {
                filter_metadata: [("other".to_string(), Struct::default())].into(),
                ..Default::default()
            });
        }
        let node = route_configuration(&noisy, true).unwrap();
        assert_tree(
            &node,
            r#"
name: "rc"
virtual_hosts:
  - name: "v"
    domains: ["*"]
    routes:
      - match: { prefix: "/" }
        route:
          cluster: "backend"
          retry_policy: { retry_on: "connect-failure", num_retries: 1 }
"#,
        );
    }
}
