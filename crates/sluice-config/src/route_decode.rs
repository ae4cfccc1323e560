//! Decoding `route_configs` (see `route.rs` for the model).
//!
//! Choices that make a route ambiguous are errors here, at load time, with the line: a route
//! with two path matchers or two actions, a regex that does not compile, a domain claimed by
//! two virtual hosts. The router can then trust what it compiles.

use std::collections::HashMap;
use std::time::Duration;

use crate::cluster::MetadataMatch;
use crate::decode::{did_you_mean, index, join, Cx, Decode, Fields};
use crate::model::ClusterRef;
use crate::route::*;
use crate::yaml::{Node, NodeKind};

/// Regexes beyond this compiled size are refused (they would be slow on every request).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Decode for RouteConfig {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        decode_route_config(node, path, cx, None)
    }
}

/// A `route_configs` entry; `default_name` makes `name` optional (inline route configs).
fn decode_route_config(
    node: &Node,
    path: &str,
    cx: &mut Cx,
    default_name: Option<&str>,
) -> Option<RouteConfig> {
    let mut f = Fields::new(node, path, cx)?;
    let name = match default_name {
        None => f.required::<String>("name", cx),
        Some(d) => f.or("name", d.to_string(), cx),
    };
    let virtual_hosts = f.required::<Vec<VirtualHost>>("virtual_hosts", cx);
    let headers = decode_mutations(&mut f, cx);
    f.finish(cx);
    // Read from the raw tree, so it runs even when some virtual host failed to decode.
    check_domains_unique(node, path, cx);
    Some(RouteConfig {
        name: name?,
        virtual_hosts: virtual_hosts?,
        headers: headers?,
        line: node.line,
    })
}

/// A route config written inline in a filter: either a mapping like a `route_configs` entry
/// (its `name` optional), or a bare list of routes, served for any domain.
pub fn decode_inline(node: &Node, path: &str, cx: &mut Cx) -> Option<RouteConfig> {
    if let NodeKind::Seq(_) = node.kind {
        let routes = Vec::<Route>::decode(node, path, cx)?;
        return Some(RouteConfig {
            name: "inline".into(),
            virtual_hosts: vec![VirtualHost {
                name: "inline".into(),
                domains: vec!["*".into()],
                routes,
                headers: HeaderMutations::default(),
                include_request_attempt_count: false,
                include_attempt_count_in_response: false,
            }],
            headers: HeaderMutations::default(),
            line: node.line,
        });
    }
    decode_route_config(node, path, cx, Some("inline"))
}

/// A domain may belong to one virtual host only; otherwise which one serves it is arbitrary.
fn check_domains_unique(node: &Node, path: &str, cx: &mut Cx) {
    let Some(vhosts) = child(node, "virtual_hosts") else {
        return;
    };
    let NodeKind::Seq(vhosts) = &vhosts.kind else {
        return;
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, vh) in vhosts.iter().enumerate() {
        let Some(NodeKind::Seq(domains)) = child(vh, "domains").map(|d| &d.kind) else {
            continue;
        };
        for (j, d) in domains.iter().enumerate() {
            let Some(text) = d.as_scalar() else { continue };
            let key = text.to_ascii_lowercase();
            if let Some(first) = seen.insert(key, d.line) {
                cx.error(
                    d.line,
                    &index(&join(&index(&join(path, "virtual_hosts"), i), "domains"), j),
                    format!("domain \"{text}\" is already served by another virtual host (line {first})"),
                );
            }
        }
    }
}

fn child<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.kind {
        NodeKind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        _ => None,
    }
}

impl Decode for VirtualHost {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let name = f.required::<String>("name", cx);
        let domains = f.required::<Vec<Domain>>("domains", cx);
        let domains_line = f.line_of("domains");
        let routes = f.or("routes", Vec::<Route>::new(), cx);
        let headers = decode_mutations(&mut f, cx);
        let request_count = f.or("include_request_attempt_count", false, cx);
        let response_count = f.or("include_attempt_count_in_response", false, cx);
        f.finish(cx);
        let domains: Vec<String> = domains?.into_iter().map(|d| d.0).collect();
        if domains.is_empty() {
            cx.error(
                domains_line,
                &join(path, "domains"),
                "needs at least one domain (\"*\" matches any)",
            );
            return None;
        }
        Some(VirtualHost {
            name: name?,
            domains,
            routes: routes?,
            headers: headers?,
            include_request_attempt_count: request_count?,
            include_attempt_count_in_response: response_count?,
        })
    }
}

/// `example.com`, `*.example.com`, `*-suffix.example.com`, `example.*`, `prefix-*` or `*`.
struct Domain(String);

impl Decode for Domain {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let text = String::decode(node, path, cx)?;
        let stars = text.matches('*').count();
        let ok = !text.is_empty()
            && !text.contains(char::is_whitespace)
            && (stars == 0
                || text == "*"
                || (stars == 1
                    && text.len() > 1
                    && (text.starts_with('*') || text.ends_with('*'))));
        if ok {
            Some(Domain(text.to_ascii_lowercase()))
        } else {
            cx.error(
                node.line,
                path,
                format!("invalid domain \"{text}\": a wildcard may only stand alone (\"*\"), first (\"*.example.com\") or last (\"example.*\")"),
            );
            None
        }
    }
}

impl Decode for Route {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let name = f.optional::<String>("name", cx);
        let stat_prefix = f.optional::<String>("stat_prefix", cx);
        let matcher = f.required::<RouteMatch>("match", cx);
        let forward = f.optional::<ForwardAction>("route", cx);
        let redirect = f.optional::<Redirect>("redirect", cx);
        let direct = f.optional::<DirectResponse>("direct_response", cx);
        let headers = decode_mutations(&mut f, cx);
        f.finish(cx);
        let (forward, redirect, direct) = (forward.ok()?, redirect.ok()?, direct.ok()?);
        let action = match (forward, redirect, direct) {
            (Some(a), None, None) => RouteAction::Forward(Box::new(a)),
            (None, Some(r), None) => RouteAction::Redirect(r),
            (None, None, Some(d)) => RouteAction::DirectResponse(d),
            (None, None, None) => {
                cx.error(
                    node.line,
                    path,
                    "needs an action: one of route, redirect, direct_response",
                );
                return None;
            }
            _ => {
                cx.error(
                    node.line,
                    path,
                    "has more than one action: use only one of route, redirect, direct_response",
                );
                return None;
            }
        };
        Some(Route {
            name: name.ok()?,
            stat_prefix: stat_prefix.ok()?,
            matcher: matcher?,
            action,
            headers: headers?,
            line: node.line,
        })
    }
}

/// Exactly one of the listed keys: returns which one and its node.
fn one_of<'n>(
    f: &mut Fields<'n>,
    keys: &[&'static str],
    cx: &mut Cx,
) -> Option<(&'static str, &'n Node)> {
    let present: Vec<(&'static str, &'n Node)> = keys
        .iter()
        .filter_map(|k| f.node(k).map(|n| (*k, n)))
        .collect();
    match present.as_slice() {
        [one] => Some(*one),
        [] => {
            cx.error(
                f.line(),
                f.path(),
                format!("needs one of: {}", keys.join(", ")),
            );
            None
        }
        [_, second, ..] => {
            cx.error(
                second.1.line,
                f.path(),
                format!("use only one of: {}", keys.join(", ")),
            );
            None
        }
    }
}

/// Compiles a regex once to validate it; the router compiles its own copy.
fn check_regex(text: &str, line: usize, path: &str, cx: &mut Cx) -> Option<()> {
    match regex::RegexBuilder::new(text)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
    {
        Ok(_) => Some(()),
        Err(e) => {
            let message = e.to_string();
            let last = message.lines().last().unwrap_or("invalid").trim();
            let reason = last.strip_prefix("error: ").unwrap_or(last).to_string();
            cx.error(line, path, format!("invalid regex \"{text}\": {reason}"));
            None
        }
    }
}

impl Decode for RouteMatch {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        // No path matcher means every path: RPC routes match on headers alone, and an HTTP
        // route of only header matches reads the same way.
        let which = if ["prefix", "path", "regex"]
            .iter()
            .any(|k| f.node(k).is_some())
        {
            one_of(&mut f, &["prefix", "path", "regex"], cx).map(Some)
        } else {
            Some(None)
        };
        let case_sensitive = f.or("case_sensitive", true, cx);
        let headers = f.or("headers", Vec::<HeaderMatch>::new(), cx);
        let query_parameters = f.or("query_parameters", Vec::<QueryParameterMatch>::new(), cx);
        let grpc = f.optional::<GrpcMatch>("grpc", cx);
        f.finish(cx);
        let Some((key, pnode)) = which? else {
            return Some(RouteMatch {
                path: PathMatch::Prefix("/".into()),
                case_sensitive: case_sensitive?,
                headers: headers?,
                query_parameters: query_parameters?,
                grpc: grpc.ok()?,
            });
        };
        let ppath = join(path, key);
        let text = String::decode(pnode, &ppath, cx)?;
        let path_match = match key {
            "regex" => {
                check_regex(&text, pnode.line, &ppath, cx)?;
                PathMatch::Regex(text)
            }
            _ if !text.starts_with('/') => {
                cx.error(
                    pnode.line,
                    &ppath,
                    format!("must start with \"/\", found \"{text}\""),
                );
                return None;
            }
            "path" => PathMatch::Exact(text),
            _ => PathMatch::Prefix(text),
        };
        Some(RouteMatch {
            path: path_match,
            case_sensitive: case_sensitive?,
            headers: headers?,
            query_parameters: query_parameters?,
            grpc: grpc.ok()?,
        })
    }
}

/// The value rule shared by header and query parameter matchers.
pub fn decode_value_match(f: &mut Fields<'_>, cx: &mut Cx) -> Option<ValueMatch> {
    let (key, node) = one_of(
        f,
        &["exact", "prefix", "suffix", "contains", "regex", "present"],
        cx,
    )?;
    let vpath = join(f.path(), key);
    if key == "present" {
        return Some(if bool::decode(node, &vpath, cx)? {
            ValueMatch::Present
        } else {
            ValueMatch::Absent
        });
    }
    let text = String::decode(node, &vpath, cx)?;
    Some(match key {
        "exact" => ValueMatch::Exact(text),
        "prefix" => ValueMatch::Prefix(text),
        "suffix" => ValueMatch::Suffix(text),
        "contains" => ValueMatch::Contains(text),
        _ => {
            check_regex(&text, node.line, &vpath, cx)?;
            ValueMatch::Regex(text)
        }
    })
}

impl Decode for HeaderMatch {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let name = f.required::<String>("name", cx);
        let value = decode_value_match(&mut f, cx);
        // `invert_match` is Envoy's name (RBAC configs copied from Envoy use it).
        let invert = match (f.node("invert"), f.node("invert_match")) {
            (Some(_), Some(n)) => {
                cx.error(n.line, path, "use only one of: invert, invert_match");
                None
            }
            (_, Some(_)) => f.or("invert_match", false, cx),
            _ => f.or("invert", false, cx),
        };
        f.finish(cx);
        let name = name?;
        if !is_header_name(&name) {
            cx.error(
                node.line,
                &join(path, "name"),
                format!("invalid header name \"{name}\""),
            );
            return None;
        }
        Some(HeaderMatch {
            name: name.to_ascii_lowercase(),
            value: value?,
            invert: invert?,
        })
    }
}

/// An RFC 9110 token, or one of the HTTP/2 pseudo-headers routes may match on.
fn is_header_name(name: &str) -> bool {
    const PSEUDO: [&str; 4] = [":authority", ":method", ":path", ":scheme"];
    PSEUDO.contains(&name)
        || (!name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)))
}

impl Decode for QueryParameterMatch {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let name = f.required::<String>("name", cx);
        let value = decode_value_match(&mut f, cx);
        f.finish(cx);
        Some(QueryParameterMatch {
            name: name?,
            value: value?,
        })
    }
}

impl Decode for GrpcMatch {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let service = f.optional::<String>("service", cx);
        let method = f.optional::<String>("method", cx);
        f.finish(cx);
        Some(GrpcMatch {
            service: service.ok()?,
            method: method.ok()?,
        })
    }
}

impl Decode for ForwardAction {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let target = match one_of(&mut f, &["cluster", "weighted_clusters"], cx) {
            Some(("cluster", n)) => {
                ClusterRef::decode(n, &join(path, "cluster"), cx).map(ClusterTarget::Cluster)
            }
            Some((_, n)) => decode_weighted(n, &join(path, "weighted_clusters"), cx),
            None => None,
        };
        let timeout = f.or("timeout", DEFAULT_ROUTE_TIMEOUT, cx);
        let grpc_timeout_header_max = f.optional::<Duration>("grpc_timeout_header_max", cx);
        let retry_policy = f.optional::<RetryPolicy>("retry_policy", cx);
        let request_mirror = f.optional::<RequestMirror>("request_mirror", cx);
        let prefix_rewrite = f.optional::<String>("prefix_rewrite", cx);
        let regex_rewrite = f.optional::<RegexRewrite>("regex_rewrite", cx);
        let host_rewrite_literal = f.optional::<String>("host_rewrite_literal", cx);
        let metadata_match = decode_metadata_match(&mut f, cx);
        let hash_policy = f.or("hash_policy", Vec::<HashPolicy>::new(), cx);
        let priority = f.or("priority", RoutePriority::Default, cx);
        let rewrite_line = f.node("regex_rewrite").map(|n| n.line);
        let has_prefix_rewrite = f.node("prefix_rewrite").is_some();
        f.finish(cx);
        if let (Some(line), true) = (rewrite_line, has_prefix_rewrite) {
            cx.error(line, path, "use only one of: prefix_rewrite, regex_rewrite");
            return None;
        }
        let timeout = timeout?;
        let metadata_match = metadata_match?;
        let target = match target? {
            ClusterTarget::Weighted(list) => ClusterTarget::Weighted(
                list.into_iter()
                    .map(|mut w| {
                        w.metadata_match = metadata_match.merged(&w.metadata_match);
                        w
                    })
                    .collect(),
            ),
            single => single,
        };
        Some(ForwardAction {
            target,
            timeout: (!timeout.is_zero()).then_some(timeout),
            grpc_timeout_header_max: grpc_timeout_header_max.ok()?,
            retry_policy: retry_policy.ok()?,
            request_mirror: request_mirror.ok()?,
            prefix_rewrite: prefix_rewrite.ok()?,
            regex_rewrite: regex_rewrite.ok()?,
            host_rewrite_literal: host_rewrite_literal.ok()?,
            metadata_match,
            hash_policy: hash_policy?,
            priority: priority?,
        })
    }
}

fn decode_weighted(node: &Node, path: &str, cx: &mut Cx) -> Option<ClusterTarget> {
    let list = Vec::<WeightedCluster>::decode(node, path, cx)?;
    let total: u64 = list.iter().map(|w| u64::from(w.weight)).sum();
    if total == 0 {
        cx.error(
            node.line,
            path,
            "needs at least one cluster with a weight above 0",
        );
        return None;
    }
    Some(ClusterTarget::Weighted(list))
}

impl Decode for WeightedCluster {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let cluster = f.required::<ClusterRef>("cluster", cx);
        let weight = f.required::<u32>("weight", cx);
        let metadata_match = decode_metadata_match(&mut f, cx);
        f.finish(cx);
        Some(WeightedCluster {
            cluster: cluster?,
            weight: weight?,
            metadata_match: metadata_match?,
        })
    }
}

/// `metadata_match: { version: v2 }`.
fn decode_metadata_match(f: &mut Fields<'_>, cx: &mut Cx) -> Option<MetadataMatch> {
    let path = join(f.path(), "metadata_match");
    let pairs = match f.node("metadata_match") {
        None => Vec::new(),
        Some(n) => crate::cluster_decode::string_map(n, &path, cx)?,
    };
    Some(MetadataMatch::new(pairs))
}

impl Decode for RoutePriority {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        crate::decode::keyword(
            node,
            path,
            cx,
            "priority",
            &["default", "high"],
            |name| match name {
                "default" => Some(RoutePriority::Default),
                "high" => Some(RoutePriority::High),
                _ => None,
            },
        )
    }
}

impl Decode for HashPolicy {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let source = match one_of(
            &mut f,
            &["header", "cookie", "source_ip", "query_parameter"],
            cx,
        ) {
            Some(("header", n)) => HeaderName::decode(n, &join(path, "header"), cx)
                .map(|h| HashSource::Header(h.lower)),
            Some(("cookie", n)) => decode_cookie(n, &join(path, "cookie"), cx),
            Some(("source_ip", n)) => {
                let p = join(path, "source_ip");
                match bool::decode(n, &p, cx)? {
                    true => Some(HashSource::SourceIp),
                    false => {
                        cx.error(
                            n.line,
                            &p,
                            "write `source_ip: true`, or leave the policy out",
                        );
                        None
                    }
                }
            }
            Some((_, n)) => String::decode(n, &join(path, "query_parameter"), cx)
                .map(HashSource::QueryParameter),
            None => None,
        };
        let terminal = f.or("terminal", false, cx);
        f.finish(cx);
        Some(HashPolicy {
            source: source?,
            terminal: terminal?,
        })
    }
}

/// `cookie: { name: sid, ttl: 1h, path: / }`, or just `cookie: sid`.
fn decode_cookie(node: &Node, path: &str, cx: &mut Cx) -> Option<HashSource> {
    if let NodeKind::Scalar { .. } = node.kind {
        let name = String::decode(node, path, cx)?;
        return valid_cookie_name(&name, node.line, path, cx).then_some(HashSource::Cookie {
            name,
            ttl: None,
            path: None,
        });
    }
    let mut f = Fields::new(node, path, cx)?;
    let name = f.required::<String>("name", cx);
    let name_line = f.line_of("name");
    let ttl = f.optional::<Duration>("ttl", cx);
    let cookie_path = f.optional::<String>("path", cx);
    f.finish(cx);
    let name = name?;
    if !valid_cookie_name(&name, name_line, &join(path, "name"), cx) {
        return None;
    }
    Some(HashSource::Cookie {
        name,
        ttl: ttl.ok()?.filter(|t| !t.is_zero()),
        path: cookie_path.ok()?,
    })
}

fn valid_cookie_name(name: &str, line: usize, path: &str, cx: &mut Cx) -> bool {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    if !ok {
        cx.error(line, path, format!("invalid cookie name \"{name}\""));
    }
    ok
}

impl Decode for RetryPolicy {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let retry_on = f.required::<String>("retry_on", cx);
        let retry_on_line = f.line_of("retry_on");
        let num_retries = f.or("num_retries", 1u32, cx);
        let per_try_timeout = f.optional::<Duration>("per_try_timeout", cx);
        let codes = f.or("retriable_status_codes", Vec::<u16>::new(), cx);
        f.finish(cx);
        let mut conditions = Vec::new();
        for part in retry_on?
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match RetryOn::from_name(part) {
                Some(r) => conditions.push(r),
                None => {
                    let hint = did_you_mean(part, RetryOn::NAMES.iter().map(|(n, _)| *n));
                    cx.error(
                        retry_on_line,
                        &join(path, "retry_on"),
                        format!("unknown retry condition \"{part}\"{hint}"),
                    );
                    return None;
                }
            }
        }
        let codes = codes?;
        if let Some(bad) = codes.iter().find(|c| !(100..=599).contains(*c)) {
            cx.error(
                node.line,
                &join(path, "retriable_status_codes"),
                format!("{bad} is not an HTTP status code"),
            );
            return None;
        }
        Some(RetryPolicy {
            retry_on: conditions,
            num_retries: num_retries?,
            per_try_timeout: per_try_timeout.ok()?,
            retriable_status_codes: codes,
        })
    }
}

impl Decode for RequestMirror {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let cluster = f.required::<ClusterRef>("cluster", cx);
        let percent = f.optional::<String>("percent", cx);
        let percent_line = f.line_of("percent");
        f.finish(cx);
        let percent = match percent.ok()? {
            None => 100.0,
            Some(text) => match text.parse::<f64>() {
                Ok(p) if (0.0..=100.0).contains(&p) => p,
                _ => {
                    cx.error(
                        percent_line,
                        &join(path, "percent"),
                        format!("must be a number from 0 to 100, found \"{text}\""),
                    );
                    return None;
                }
            },
        };
        Some(RequestMirror {
            cluster: cluster?,
            percent,
        })
    }
}

impl Decode for RegexRewrite {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let pattern = f.required::<String>("pattern", cx);
        let pattern_line = f.line_of("pattern");
        let substitution = f.required::<String>("substitution", cx);
        f.finish(cx);
        let pattern = pattern?;
        check_regex(&pattern, pattern_line, &join(path, "pattern"), cx)?;
        Some(RegexRewrite {
            pattern,
            substitution: substitution?,
        })
    }
}

impl Decode for Redirect {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let scheme = f.optional::<String>("scheme_redirect", cx);
        let https = f.or("https_redirect", false, cx);
        let host = f.optional::<String>("host_redirect", cx);
        let port = f.optional::<u16>("port_redirect", cx);
        let path_redirect = f.optional::<String>("path_redirect", cx);
        let prefix_rewrite = f.optional::<String>("prefix_rewrite", cx);
        let code = f.or("response_code", 301u16, cx);
        let code_line = f.line_of("response_code");
        let strip_query = f.or("strip_query", false, cx);
        f.finish(cx);
        let (path_redirect, prefix_rewrite) = (path_redirect.ok()?, prefix_rewrite.ok()?);
        if path_redirect.is_some() && prefix_rewrite.is_some() {
            cx.error(
                node.line,
                path,
                "use only one of: path_redirect, prefix_rewrite",
            );
            return None;
        }
        let code = code?;
        if ![301, 302, 303, 307, 308].contains(&code) {
            cx.error(
                code_line,
                &join(path, "response_code"),
                format!("must be 301, 302, 303, 307 or 308, found {code}"),
            );
            return None;
        }
        let scheme = scheme
            .ok()?
            .or_else(|| https.unwrap_or(false).then(|| "https".to_string()));
        Some(Redirect {
            scheme_redirect: scheme,
            host_redirect: host.ok()?,
            port_redirect: port.ok()?,
            path_redirect,
            prefix_rewrite,
            response_code: code,
            strip_query: strip_query?,
        })
    }
}

impl Decode for DirectResponse {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let status = f.required::<u16>("status", cx);
        let status_line = f.line_of("status");
        let body = f.or("body", String::new(), cx);
        f.finish(cx);
        let status = status?;
        if !(200..=599).contains(&status) {
            cx.error(
                status_line,
                &join(path, "status"),
                format!("must be an HTTP status from 200 to 599, found {status}"),
            );
            return None;
        }
        Some(DirectResponse {
            status,
            body: body?,
        })
    }
}

/// The four header-mutation keys, read from the mapping they sit in (route, virtual host or
/// route config), as in Envoy.
fn decode_mutations(f: &mut Fields<'_>, cx: &mut Cx) -> Option<HeaderMutations> {
    let req_add = f.or("request_headers_to_add", Vec::<HeaderToAdd>::new(), cx);
    let req_remove = f.or("request_headers_to_remove", Vec::<HeaderName>::new(), cx);
    let resp_add = f.or("response_headers_to_add", Vec::<HeaderToAdd>::new(), cx);
    let resp_remove = f.or("response_headers_to_remove", Vec::<HeaderName>::new(), cx);
    Some(HeaderMutations {
        request_headers_to_add: req_add?,
        request_headers_to_remove: req_remove?.into_iter().map(|h| h.lower).collect(),
        response_headers_to_add: resp_add?,
        response_headers_to_remove: resp_remove?.into_iter().map(|h| h.lower).collect(),
    })
}

/// A header name, lower-cased and as written.
struct HeaderName {
    lower: String,
    written: String,
}

impl Decode for HeaderName {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let name = String::decode(node, path, cx)?;
        if name.starts_with(':') || !is_header_name(&name) {
            cx.error(node.line, path, format!("invalid header name \"{name}\""));
            return None;
        }
        Some(HeaderName {
            lower: name.to_ascii_lowercase(),
            written: name,
        })
    }
}

/// `{ header: { key, value }, append_action }` (or the older `append: true|false`).
impl Decode for HeaderToAdd {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        let mut f = Fields::new(node, path, cx)?;
        let header = match f.node("header") {
            Some(h) => decode_key_value(h, &join(path, "header"), cx),
            None => {
                cx.error(
                    node.line,
                    path,
                    "missing required field \"header\" ({ key, value })",
                );
                None
            }
        };
        let action = f.optional::<AppendActionName>("append_action", cx);
        let append = f.optional::<bool>("append", cx);
        let append_line = f.node("append").map(|n| n.line);
        f.finish(cx);
        let (name, value) = header?;
        let action = match (action.ok()?, append.ok()?) {
            (Some(_), Some(_)) => {
                cx.error(
                    append_line.unwrap_or(node.line),
                    path,
                    "use only one of: append_action, append",
                );
                return None;
            }
            (Some(a), None) => a.0,
            (None, Some(false)) => AppendAction::OverwriteIfExistsOrAdd,
            (None, _) => AppendAction::AppendIfExistsOrAdd,
        };
        Some(HeaderToAdd {
            key: name.lower,
            key_as_written: name.written,
            value,
            append_action: action,
        })
    }
}

fn decode_key_value(node: &Node, path: &str, cx: &mut Cx) -> Option<(HeaderName, HeaderFormat)> {
    let mut f = Fields::new(node, path, cx)?;
    let key = f.required::<HeaderName>("key", cx);
    let value = f.required::<String>("value", cx);
    let value_line = f.line_of("value");
    f.finish(cx);
    let format = match parse_format(&value?) {
        Ok(fmt) => fmt,
        Err(e) => {
            cx.error(value_line, &join(path, "value"), e);
            return None;
        }
    };
    Some((key?, format))
}

struct AppendActionName(AppendAction);

impl Decode for AppendActionName {
    fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Self> {
        crate::decode::keyword(
            node,
            path,
            cx,
            "append_action",
            &AppendAction::NAMES,
            AppendAction::from_name,
        )
        .map(AppendActionName)
    }
}

/// Splits `text` into literals and `%VARIABLE%`s; `%%` is a literal `%`.
pub fn parse_format(text: &str) -> Result<HeaderFormat, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('%') {
        literal.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            literal.push('%');
            rest = tail;
            continue;
        }
        let Some(end) = after.find('%') else {
            return Err(format!(
                "unterminated variable in \"{text}\" (write %% for a literal %)"
            ));
        };
        let var = &after[..end];
        let part = match var {
            "DOWNSTREAM_REMOTE_ADDRESS" => FormatPart::DownstreamRemoteAddress,
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => {
                FormatPart::DownstreamRemoteAddressWithoutPort
            }
            "PROTOCOL" => FormatPart::Protocol,
            "HOSTNAME" => FormatPart::Hostname,
            "UPSTREAM_REMOTE_ADDRESS" => FormatPart::UpstreamRemoteAddress,
            _ => match var.strip_prefix("REQ(").and_then(|v| v.strip_suffix(')')) {
                Some(name) if is_header_name(name) => {
                    FormatPart::RequestHeader(name.to_ascii_lowercase())
                }
                _ => {
                    return Err(format!(
                        "unknown variable %{var}% in \"{text}\"; supported: {}",
                        FormatPart::VARIABLES.map(|v| format!("%{v}%")).join(", ")
                    ))
                }
            },
        };
        if !literal.is_empty() {
            parts.push(FormatPart::Literal(std::mem::take(&mut literal)));
        }
        parts.push(part);
        rest = &after[end + 1..];
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(FormatPart::Literal(literal));
    }
    Ok(HeaderFormat(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_match_reads_envoys_invert_match() {
        let decode = |text: &str| {
            let node = crate::yaml::parse(text).map_err(|e| format!("{e:?}"))?;
            let mut cx = Cx::default();
            let m = HeaderMatch::decode(&node, "h", &mut cx);
            match m {
                Some(m) if !cx.has_errors() => Ok(m.invert),
                _ => Err(cx
                    .diagnostics
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<String>()),
            }
        };
        assert_eq!(
            decode("{ name: x, present: true, invert_match: true }"),
            Ok(true)
        );
        assert_eq!(decode("{ name: x, present: true, invert: true }"), Ok(true));
        assert_eq!(decode("{ name: x, present: true }"), Ok(false));
        let both = decode("{ name: x, present: true, invert: true, invert_match: true }");
        assert!(both
            .unwrap_err()
            .contains("use only one of: invert, invert_match"));
    }

    #[test]
    fn formats() {
        assert_eq!(
            parse_format("ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% 100%% %REQ(X-Id)%"),
            Ok(HeaderFormat(vec![
                FormatPart::Literal("ip=".into()),
                FormatPart::DownstreamRemoteAddressWithoutPort,
                FormatPart::Literal(" 100% ".into()),
                FormatPart::RequestHeader("x-id".into()),
            ]))
        );
        assert!(parse_format("%NOPE%")
            .unwrap_err()
            .contains("unknown variable %NOPE%"));
        assert!(parse_format("50% off")
            .unwrap_err()
            .contains("unterminated"));
    }
}
