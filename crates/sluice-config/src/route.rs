//! HTTP route configuration: virtual hosts, route matches and route actions.
//!
//! Key names follow Envoy's route configuration (`virtual_hosts`, `domains`, `prefix`,
//! `weighted_clusters`, `prefix_rewrite`, `host_rewrite_literal`, `direct_response`, ...) so
//! that xDS `RouteConfiguration` resources translate onto this model one to one. This is the
//! validated config only; the precompiled matcher lives with the router.

use std::time::Duration;

use crate::model::ClusterRef;

/// A named table of virtual hosts, referred to by `http_proxy.route_config`.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    pub virtual_hosts: Vec<VirtualHost>,
    /// Applied to every request/response of this table, after the route's and virtual host's.
    pub headers: HeaderMutations,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct VirtualHost {
    pub name: String,
    /// `example.com`, `*.example.com` (suffix), `example.*` (prefix) or `*`; compared without
    /// the port and case-insensitively.
    pub domains: Vec<String>,
    pub routes: Vec<Route>,
    /// Applied after the route's own.
    pub headers: HeaderMutations,
    /// `x-envoy-attempt-count` on each upstream request: 1, then 2 on the first retry...
    pub include_request_attempt_count: bool,
    /// `x-envoy-attempt-count` on the response: how many upstream attempts it took.
    pub include_attempt_count_in_response: bool,
}

/// One route: the first whose match succeeds, in order, handles the request.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: Option<String>,
    /// `stat_prefix`: the route gets its own counters, `vhost.<vhost>.route.<prefix>.*`.
    pub stat_prefix: Option<String>,
    pub matcher: RouteMatch,
    pub action: RouteAction,
    pub headers: HeaderMutations,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Whether `prefix`/`path` compare case-sensitively (Envoy's `case_sensitive`, default true).
    pub case_sensitive: bool,
    /// All must match.
    pub headers: Vec<HeaderMatch>,
    /// All must match.
    pub query_parameters: Vec<QueryParameterMatch>,
    /// Only gRPC requests (`content-type: application/grpc`, `+suffix` or `;params`; not
    /// gRPC-Web), optionally one service/method.
    pub grpc: Option<GrpcMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Prefix(String),
    /// The whole path (without the query string).
    Exact(String),
    /// A regular expression that must match the whole path (without the query string).
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueMatch {
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
    /// Must match the whole value.
    Regex(String),
    Present,
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// Lower-cased.
    pub name: String,
    pub value: ValueMatch,
    /// Match when the rule does not.
    pub invert: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryParameterMatch {
    pub name: String,
    pub value: ValueMatch,
}

/// gRPC requests go to `/package.Service/Method`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GrpcMatch {
    pub service: Option<String>,
    pub method: Option<String>,
}

#[derive(Debug, Clone)]
pub enum RouteAction {
    Forward(Box<ForwardAction>),
    Redirect(Redirect),
    DirectResponse(DirectResponse),
}

#[derive(Debug, Clone)]
pub struct ForwardAction {
    pub target: ClusterTarget,
    /// Whole-request timeout, first byte sent to last byte received; `None` disables.
    pub timeout: Option<Duration>,
    /// A request's `grpc-timeout` header bounds it too, capped at this (zero: uncapped);
    /// `None`: the header is not read.
    pub grpc_timeout_header_max: Option<Duration>,
    pub retry_policy: Option<RetryPolicy>,
    pub request_mirror: Option<RequestMirror>,
    pub prefix_rewrite: Option<String>,
    pub regex_rewrite: Option<RegexRewrite>,
    pub host_rewrite_literal: Option<String>,
    /// Subset load balancing: only hosts whose metadata has all these pairs. With weighted
    /// clusters, each cluster's own `metadata_match` is already merged into its entry.
    pub metadata_match: crate::cluster::MetadataMatch,
    /// How the request's hash is made for `ring_hash` and `maglev` clusters.
    pub hash_policy: Vec<HashPolicy>,
    /// Which of the cluster's circuit-breaker thresholds the request counts against.
    pub priority: RoutePriority,
}

/// Envoy's route priority: `high` routes have circuit-breaker limits of their own, so bulk
/// traffic filling the default ones cannot starve them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RoutePriority {
    #[default]
    Default,
    High,
}

/// One source of a request's hash. Policies are tried in order and their hashes combined; a
/// `terminal` policy that produced a value ends the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashPolicy {
    pub source: HashSource,
    pub terminal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashSource {
    /// The value of this request header (all values, joined by commas, when repeated).
    Header(String),
    /// This cookie's value; with a `ttl`, a request without the cookie gets one generated, and
    /// the response sets it (`Max-Age` = ttl, `Path` = path), so the client sticks.
    Cookie {
        name: String,
        ttl: Option<Duration>,
        path: Option<String>,
    },
    /// The client's IP address.
    SourceIp,
    /// The value of this query parameter.
    QueryParameter(String),
}

/// Envoy's default route timeout.
pub const DEFAULT_ROUTE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Clone)]
pub enum ClusterTarget {
    Cluster(ClusterRef),
    /// Picked per request in proportion to the weights.
    Weighted(Vec<WeightedCluster>),
}

#[derive(Debug, Clone)]
pub struct WeightedCluster {
    pub cluster: ClusterRef,
    pub weight: u32,
    /// The route's `metadata_match` with this cluster's own merged in (its values winning).
    pub metadata_match: crate::cluster::MetadataMatch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Conditions, e.g. `5xx`, `gateway-error`, `reset`, `connect-failure`.
    pub retry_on: Vec<RetryOn>,
    pub num_retries: u32,
    pub per_try_timeout: Option<Duration>,
    pub retriable_status_codes: Vec<u16>,
}

/// The retry conditions Envoy's `retry_on` names (HTTP and gRPC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    FiveXx,
    GatewayError,
    Reset,
    ConnectFailure,
    RetriableStatusCodes,
    RefusedStream,
    Retriable4xx,
    Cancelled,
    DeadlineExceeded,
    Internal,
    ResourceExhausted,
    Unavailable,
}

impl RetryOn {
    pub const NAMES: [(&'static str, RetryOn); 12] = [
        ("5xx", RetryOn::FiveXx),
        ("gateway-error", RetryOn::GatewayError),
        ("reset", RetryOn::Reset),
        ("connect-failure", RetryOn::ConnectFailure),
        ("retriable-status-codes", RetryOn::RetriableStatusCodes),
        ("refused-stream", RetryOn::RefusedStream),
        ("retriable-4xx", RetryOn::Retriable4xx),
        ("cancelled", RetryOn::Cancelled),
        ("deadline-exceeded", RetryOn::DeadlineExceeded),
        ("internal", RetryOn::Internal),
        ("resource-exhausted", RetryOn::ResourceExhausted),
        ("unavailable", RetryOn::Unavailable),
    ];

    pub fn from_name(name: &str) -> Option<RetryOn> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| *r)
    }
}

#[derive(Debug, Clone)]
pub struct RequestMirror {
    pub cluster: ClusterRef,
    /// Share of requests mirrored, 0..=100.
    pub percent: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexRewrite {
    pub pattern: String,
    /// May refer to capture groups as `\1`.
    pub substitution: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    pub scheme_redirect: Option<String>,
    pub host_redirect: Option<String>,
    pub port_redirect: Option<u16>,
    pub path_redirect: Option<String>,
    pub prefix_rewrite: Option<String>,
    /// 301, 302, 303, 307 or 308.
    pub response_code: u16,
    pub strip_query: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectResponse {
    pub status: u16,
    pub body: String,
}

/// Envoy's `request_headers_to_add` / `_to_remove` and `response_headers_to_add` / `_to_remove`,
/// as written on a route, a virtual host or a route config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMutations {
    pub request_headers_to_add: Vec<HeaderToAdd>,
    /// Lower-cased names.
    pub request_headers_to_remove: Vec<String>,
    pub response_headers_to_add: Vec<HeaderToAdd>,
    pub response_headers_to_remove: Vec<String>,
}

impl HeaderMutations {
    pub fn is_empty(&self) -> bool {
        self.request_headers_to_add.is_empty()
            && self.request_headers_to_remove.is_empty()
            && self.response_headers_to_add.is_empty()
            && self.response_headers_to_remove.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderToAdd {
    /// Lower-cased.
    pub key: String,
    /// As the config wrote it: RPC header keys (Dubbo attachments such as `traceId`) are
    /// case-sensitive.
    pub key_as_written: String,
    pub value: HeaderFormat,
    pub append_action: AppendAction,
}

/// What to do when the header is already there (Envoy's `append_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendAction {
    /// Add another value (the default).
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

impl AppendAction {
    pub const NAMES: [&'static str; 4] = [
        "APPEND_IF_EXISTS_OR_ADD",
        "ADD_IF_ABSENT",
        "OVERWRITE_IF_EXISTS_OR_ADD",
        "OVERWRITE_IF_EXISTS",
    ];

    /// Envoy's upper-case names; lower case is accepted too.
    pub fn from_name(name: &str) -> Option<AppendAction> {
        match name.to_ascii_uppercase().as_str() {
            "APPEND_IF_EXISTS_OR_ADD" => Some(AppendAction::AppendIfExistsOrAdd),
            "ADD_IF_ABSENT" => Some(AppendAction::AddIfAbsent),
            "OVERWRITE_IF_EXISTS_OR_ADD" => Some(AppendAction::OverwriteIfExistsOrAdd),
            "OVERWRITE_IF_EXISTS" => Some(AppendAction::OverwriteIfExists),
            _ => None,
        }
    }
}

/// A header value with `%VARIABLE%`s, parsed once at load time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderFormat(pub Vec<FormatPart>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatPart {
    Literal(String),
    /// `%DOWNSTREAM_REMOTE_ADDRESS%`: the client's `ip:port`.
    DownstreamRemoteAddress,
    /// `%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%`.
    DownstreamRemoteAddressWithoutPort,
    /// `%PROTOCOL%`: `HTTP/1.1` or `HTTP/2`.
    Protocol,
    /// `%HOSTNAME%`: this machine's host name.
    Hostname,
    /// `%UPSTREAM_REMOTE_ADDRESS%`: the upstream host that served the request (empty for
    /// responses Sluice made itself).
    UpstreamRemoteAddress,
    /// `%REQ(name)%`: a request header's value (empty when absent).
    RequestHeader(String),
}

impl FormatPart {
    pub const VARIABLES: [&'static str; 6] = [
        "DOWNSTREAM_REMOTE_ADDRESS",
        "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        "PROTOCOL",
        "HOSTNAME",
        "UPSTREAM_REMOTE_ADDRESS",
        "REQ(header-name)",
    ];
}
