//! One HTTP request, from route selection to the response.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;

use http::header::{HeaderValue, HOST};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use sluice_config::route::{
    ForwardAction, HeaderMutations, PathMatch, RouteAction, RoutePriority, WeightedCluster,
};
use sluice_proxy::route::{AttemptCount, CompiledRoute, RequestView};

use crate::routes::SharedTable;
use tokio::time::Instant;
use tracing::debug;

use super::body::{self, empty, Body, BodyTooLarge};
use super::h1::server::{ClientBodyError, OnUpgrade};
use super::hash::{self, RequestHash};
use super::headers::{
    add_forwarded, ensure_request_id, remove_hop_by_hop, X_ENVOY_ATTEMPT_COUNT, X_REQUEST_ID,
};
use super::local_reply::{headers_too_large, redirect, text};
use super::mirror;
use super::mutate::{self, UpstreamHost, Vars};
use super::observe::{self, ConnectionFacts, Record, Trail};
use super::pool::Upgraded;
use super::retry::{self, Outcome};
use super::stats::HttpStats;
use super::timer::LazyTimer;
use super::upgrade;
use super::upstream::{NoHost, Upstreams};
use super::xfcc::ConnectionXfcc;
use crate::stream::StreamFilters;
use sluice_config::LbPolicy;
use sluice_net::ConnectionInfo;
use sluice_observe::{Observers, ResponseFlags as Flags, Text};
use sluice_upstream::outlier::Outcome as HostOutcome;
use sluice_upstream::stats::ClusterStats;
use sluice_upstream::{Host, LbContext};

/// How long a retry waits, beyond its backoff, for the previous try to let go of the body.
const SOURCE_RETURN_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// What `forward` needs to know about the client side of the request.
struct Downstream<'a> {
    authority: &'a str,
    /// `authority` is the request's `Host` field (not an absolute target's authority).
    authority_is_host: bool,
    path_and_query: &'a str,
    client: Option<SocketAddr>,
    /// Header mutations of the route, virtual host and route config, in that order.
    mutations: &'a [&'a HeaderMutations; 3],
    /// The `Upgrade` protocol and the handle on the client connection, for upgrade requests.
    upgrade: Option<(Option<HeaderValue>, OnUpgrade)>,
    /// The request's record, when observed.
    record: &'a mut Record,
    /// The virtual host's `include_request_attempt_count` / `include_attempt_count_in_response`.
    attempt_count: AttemptCount,
}

/// What every request on a listener shares.
pub struct Proxy {
    pub listener: Arc<str>,
    /// `max_request_body`, if set.
    pub max_request_body: Option<u64>,
    /// `max_request_headers_kb` and `max_headers_count`. Our HTTP/1 server enforces them while
    /// parsing; on HTTP/2 the service does (h2 itself only refuses lists beyond twice the size).
    pub max_request_headers_kb: u32,
    pub max_headers_count: u32,
    /// `via`, if set: appended to requests sent upstream and responses sent back.
    pub via: Option<HeaderValue>,
    pub table: SharedTable,
    pub upstreams: Arc<Upstreams>,
    /// The client's IP for `x-forwarded-for`, made once per connection.
    pub client_ip: Option<HeaderValue>,
    /// The client came over TLS: `x-forwarded-proto: https`.
    pub https: bool,
    /// `http_filters`, run before routing.
    pub filters: StreamFilters,
    /// What this connection does to `x-forwarded-client-cert`.
    pub xfcc: ConnectionXfcc,
    /// The connection, for the filters (`None` without filters).
    pub info: Option<ConnectionInfo>,
    /// Access logs and tracing; empty when the listener has none.
    pub observers: Arc<Observers>,
    /// The listener's tracer, when it traces (it is among `observers` too).
    pub tracer: Option<Arc<sluice_observe::trace::Tracer>>,
    /// What the records of this connection share (`None` without observers).
    pub conn: Option<ConnectionFacts>,
    /// `http.<stat_prefix>.*`.
    pub stats: Arc<HttpStats>,
}

impl Proxy {
    /// Whether an HTTP/2 request's header list is over the limits, counted as HPACK does
    /// (RFC 9113 section 6.5.2: name + value + 32 per field, pseudo-headers included).
    fn h2_head_too_large(&self, req: &http::request::Parts) -> bool {
        const PER_FIELD: usize = 32;
        let uri = &req.uri;
        let pseudo = [
            ":method".len() + req.method.as_str().len(),
            ":scheme".len() + uri.scheme_str().map_or(0, str::len),
            ":authority".len() + uri.authority().map_or(0, |a| a.as_str().len()),
            ":path".len() + uri.path_and_query().map_or(1, |p| p.as_str().len()),
        ];
        let mut size: usize = pseudo.iter().map(|n| n + PER_FIELD).sum();
        for (name, value) in &req.headers {
            size += name.as_str().len() + value.len() + PER_FIELD;
        }
        size > self.max_request_headers_kb as usize * 1024
            || req.headers.len() > self.max_headers_count as usize
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Body>,
        client: Option<SocketAddr>,
        on_upgrade: Option<OnUpgrade>,
        timer: &mut LazyTimer,
    ) -> Response<Body> {
        let started = std::time::Instant::now();
        let stats = &self.stats;
        stats.rq_total.inc();
        if req.version() == Version::HTTP_2 {
            stats.rq_http2_total.inc();
        } else {
            stats.rq_http1_total.inc();
        }
        let active = sluice_stats::GaugeGuard::new(&stats.rq_active);
        let mut trail = Trail::default();
        let resp = self
            .respond(req, started, client, on_upgrade, timer, &mut trail)
            .await;
        observe::respond(stats, active, started, &self.observers, trail, resp)
    }

    /// A request head our HTTP/1 codec refused (`protocol_error`: Envoy's `DPE`) or that did
    /// not arrive in time, answered with `status` before it reached the proxy: counted as a
    /// request and logged.
    pub fn refused(
        &self,
        client: Option<SocketAddr>,
        status: StatusCode,
        details: &'static str,
        protocol_error: bool,
    ) {
        self.stats.rq_total.inc();
        self.stats.rq_http1_total.inc();
        self.stats.rq_codes.record(status.as_u16());
        let flags = if protocol_error {
            self.stats.cx_protocol_error.inc();
            Flags::DOWNSTREAM_PROTOCOL_ERROR
        } else {
            Flags::empty()
        };
        observe::refused(
            &self.observers,
            self.conn.as_ref(),
            client,
            status.as_u16(),
            details,
            flags,
        );
    }

    /// The response to one request; `record` (when observed) learns how it went.
    async fn respond(
        &self,
        req: Request<Body>,
        started: std::time::Instant,
        client: Option<SocketAddr>,
        on_upgrade: Option<OnUpgrade>,
        timer: &mut LazyTimer,
        trail: &mut Trail,
    ) -> Response<Body> {
        let Trail {
            record,
            request_bytes,
        } = trail;
        // Our HTTP/1 server gives one with each upgrade request: the client connection is
        // handed over through it once the 101 is out.
        let upgrade = on_upgrade.map(|on| (upgrade::protocol(req.headers()), on));
        let (mut parts, body) = req.into_parts();
        // Shared handles on the client's bytes (reference counts, not copies): the head is
        // moved and changed below while these stay readable.
        let authority_handle = authority(&parts);
        let authority = authority_handle.as_str();
        let path_handle = parts.uri.path_and_query().cloned();
        let path_and_query = path_handle.as_ref().map_or("/", |pq| pq.as_str());
        *record = observe::start(
            started,
            &self.observers,
            self.conn.as_ref(),
            &parts,
            &authority_handle,
            path_handle.as_ref(),
            client,
        );
        super::trace::start(self.tracer.as_deref(), record, &parts.headers);
        let (body, counter) = observe::count_request_body(record, body);
        *request_bytes = counter;
        if parts.version == Version::HTTP_2 && self.h2_head_too_large(&parts) {
            observe::flag(record, Flags::empty(), "request_headers_too_large");
            self.stats.rq_too_large.inc();
            return text(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                headers_too_large(
                    &self.listener,
                    self.max_request_headers_kb,
                    self.max_headers_count as usize,
                ),
            );
        }
        // Before filters and routes look at the headers: a forged header is gone by then.
        self.xfcc.apply(&mut parts.headers);
        if let (false, Some(info)) = (self.filters.is_empty(), &self.info) {
            let view = RequestView::new(
                parts.method.as_str(),
                authority,
                path_and_query,
                &parts.headers,
            );
            if let Some(reply) = self.filters.on_request(&view, info) {
                observe::flag(record, reply.flags, reply.details);
                let mut resp = text(reply.status, reply.message.to_string());
                resp.headers_mut().extend(reply.headers);
                return resp;
            }
        }
        let table = self.table.load_full();
        let vhost = table.virtual_host(authority);
        let selected = vhost.and_then(|vhost| {
            let view = RequestView::new(
                parts.method.as_str(),
                authority,
                path_and_query,
                &parts.headers,
            );
            Some((vhost, vhost.select(&view)?))
        });
        let Some((vhost, route)) = selected else {
            observe::flag(record, Flags::NO_ROUTE_FOUND, "route_not_found");
            self.stats.no_route.inc();
            let (path, _) = split_query(path_and_query);
            return text(
                StatusCode::NOT_FOUND,
                format!("no route: listener \"{}\" has no route for host \"{authority}\" path \"{path}\"\n", self.listener),
            );
        };
        let request_id = ensure_request_id(&mut parts.headers);
        observe::routed(record, route.shared_name(), &parts.headers);
        let levels = [&route.config().headers, vhost.headers(), table.headers()];
        let mutates = levels.iter().any(|m| !m.is_empty());
        // The request as the client sent it, for %REQ()% in response headers.
        let original = mutates.then(|| parts.headers.clone());
        let version = parts.version;
        let mut resp = match route.action() {
            RouteAction::DirectResponse(d) => {
                observe::flag(record, Flags::empty(), "direct_response");
                self.stats.rq_direct_response.inc();
                text(
                    StatusCode::from_u16(d.status).unwrap_or(StatusCode::OK),
                    d.body.clone(),
                )
            }
            RouteAction::Redirect(r) => {
                observe::flag(record, Flags::empty(), "direct_response");
                self.stats.rq_redirect.inc();
                let (path, query) = split_query(path_and_query);
                redirect(r, authority, path, query, matched_prefix(route, path))
            }
            RouteAction::Forward(action) => {
                let declared = || {
                    parts
                        .headers
                        .get(http::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                };
                let body = match self.max_request_body {
                    Some(limit) if declared().is_some_and(|n| n > limit) => {
                        // Read (and drop) a bounded amount first, so a client that is still
                        // sending sees the 413 rather than a reset.
                        Box::pin(body::discard(body)).await;
                        observe::flag(record, Flags::empty(), "request_payload_too_large");
                        self.stats.rq_too_large.inc();
                        return text(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "request body too large: listener \"{}\" accepts at most {limit} bytes\n",
                                self.listener
                            ),
                        );
                    }
                    Some(limit) => body::limited(body, limit),
                    None => body,
                };
                let downstream = Downstream {
                    authority,
                    authority_is_host: matches!(authority_handle, Text::Header(_)),
                    path_and_query,
                    client,
                    upgrade,
                    mutations: &levels,
                    record,
                    attempt_count: vhost.attempt_count(),
                };
                self.forward(parts, body, route, action, downstream, timer)
                    .await
            }
        };
        if let Some(request) = &original {
            let upstream = resp.extensions().get::<UpstreamHost>().map(|h| h.0.clone());
            let vars = Vars {
                client,
                protocol: mutate::protocol_name(version),
                request,
                upstream: upstream.as_ref(),
            };
            mutate::apply_response(resp.headers_mut(), &levels, &vars);
        }
        if let Some(via) = &self.via {
            resp.headers_mut().append(http::header::VIA, via.clone());
        }
        resp.headers_mut().insert(&X_REQUEST_ID, request_id);
        resp
    }

    async fn forward(
        &self,
        // The head and body apart: rebuilding a `Request` to take it apart again copies it.
        mut parts: http::request::Parts,
        body: Body,
        route: &CompiledRoute,
        action: &ForwardAction,
        downstream: Downstream<'_>,
        timer: &mut LazyTimer,
    ) -> Response<Body> {
        let Downstream {
            authority,
            authority_is_host,
            path_and_query,
            client: client_addr,
            mut upgrade,
            mutations,
            record,
            attempt_count,
        } = downstream;
        let Some(target) = route.clusters().map(|c| c.choose()) else {
            observe::flag(record, Flags::NO_CLUSTER_FOUND, "cluster_not_found");
            self.stats.no_cluster.inc();
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "route has no cluster\n".into(),
            );
        };
        let cluster_name = target.cluster.name.clone();
        let Some(upstream) = self.upstreams.get(&cluster_name) else {
            observe::flag(record, Flags::NO_CLUSTER_FOUND, "cluster_not_found");
            self.stats.no_cluster.inc();
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("upstream cluster \"{cluster_name}\" not found\n"),
            );
        };
        if let Some(r) = observe::get(record) {
            r.upstream_cluster = Some(upstream.cluster.name.clone());
        }
        let downstream_version = parts.version;
        // An upgraded connection is an HTTP/1.1 affair on both sides.
        let http2 = upgrade.is_none() && upstream.speaks_http2(downstream_version);
        // Hashed from the request as the client sent it, before any header changes.
        let hashed = if upstream.cluster.lb_policy().is_hash() && !action.hash_policy.is_empty() {
            hash::compute(
                &action.hash_policy,
                &parts.headers,
                path_and_query,
                client_addr.map(|a| a.ip()),
            )
        } else {
            RequestHash::default()
        };
        let ctx = LbContext { hash: hashed.hash };
        let breakers = &upstream.cluster.breakers;
        let stats = &upstream.cluster.stats;
        let high = action.priority == RoutePriority::High;
        let Some(_in_flight) = breakers.request(high) else {
            ClusterStats::add(&stats.upstream_rq_pending_overflow);
            observe::flag(record, Flags::UPSTREAM_OVERFLOW, "overflow");
            return overloaded(format!(
                "upstream overflow: cluster \"{cluster_name}\" has max_requests ({}{}) in flight\n",
                breakers.max_requests(high),
                if high { ", high priority" } else { "" }
            ));
        };
        // Held while a retry is in flight (`max_retries`).
        let mut _retrying = None;
        let subset = target.metadata_match.key.as_str();
        let first_host = match upstream.pick(subset, &ctx, &[]) {
            Ok(host) => host,
            Err(e) => {
                observe::flag(record, Flags::NO_HEALTHY_UPSTREAM, "no_healthy_upstream");
                return no_host(&cluster_name, e, target);
            }
        };

        let upstream_authority = action.host_rewrite_literal.as_deref().unwrap_or(authority);
        let Some(uri) = upstream_uri(
            &parts.uri,
            http2,
            if upstream_authority.is_empty() {
                cluster_name.as_str()
            } else {
                upstream_authority
            },
            rewrite_path(route, action, path_and_query),
        ) else {
            observe::flag(record, Flags::empty(), "invalid_authority");
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot forward: invalid authority \"{upstream_authority}\" or path\n"),
            );
        };
        if let Some(uri) = uri {
            parts.uri = uri;
        }
        parts.version = if http2 {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        let headers = &mut parts.headers;
        remove_hop_by_hop(headers);
        // `Expect: 100-continue` is answered when we first read the body; the upstream gets
        // the body outright (Envoy does the same).
        headers.remove(http::header::EXPECT);
        if let Some((protocol, _)) = &upgrade {
            upgrade::restore_request_headers(headers, protocol.clone());
        }
        add_forwarded(headers, self.client_ip.as_ref(), self.https);
        if let Some(via) = &self.via {
            headers.append(http::header::VIA, via.clone());
        }
        let mutated = mutations.iter().any(|m| !m.is_empty());
        if mutated {
            let original = headers.clone();
            let vars = Vars {
                client: client_addr,
                protocol: mutate::protocol_name(downstream_version),
                request: &original,
                upstream: None,
            };
            mutate::apply_request(headers, mutations, &vars);
        }
        // The client's `Host`, going on unchanged, needs no look.
        let host_kept = authority_is_host && !mutated && action.host_rewrite_literal.is_none();
        if http2 {
            // The authority travels as :authority, taken from the URI.
            headers.remove(HOST);
        } else if !host_kept
            && headers.get(HOST).map(HeaderValue::as_bytes) != Some(upstream_authority.as_bytes())
        {
            if let Ok(v) = HeaderValue::from_str(upstream_authority) {
                headers.insert(HOST, v);
            }
        }

        let policy = action.retry_policy.as_ref().filter(|p| p.num_retries > 0);
        // With a retry policy a non-empty body streams through a `Source` that keeps a copy for
        // another try; an empty body can always be sent again; without a policy it just streams.
        let empty_body = body.is_end_stream();
        let (mut source, mut once) = match policy {
            Some(_) if !empty_body => (Some(retry::Source::new(body)), None),
            _ => (None, Some(body)),
        };
        let max_tries = 1 + policy.map_or(0, |p| p.num_retries);
        // Clock reads cost: one for the first try, one more per retry.
        let start = Instant::now();
        let timeout = match action.grpc_timeout_header_max {
            None => action.timeout,
            Some(max) => match parts.headers.get(&GRPC_TIMEOUT).and_then(grpc_timeout) {
                None => action.timeout,
                Some(asked) => {
                    let asked = if max.is_zero() { asked } else { asked.min(max) };
                    Some(action.timeout.map_or(asked, |t| t.min(asked)))
                }
            },
        };
        let deadline = timeout.map(|t| start + t);
        // Hosts tried so far; filled only once a retry happens.
        let mut tried: Vec<Arc<Host>> = Vec::new();
        let mut current_host = first_host;
        let mut parts = Some(parts);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut source_back = None;
            let body = match (source.take(), once.take()) {
                (Some(src), _) => {
                    let (body, back) = src.attempt();
                    source_back = Some(back);
                    body
                }
                (None, Some(body)) => body,
                (None, None) => empty(),
            };
            // The last possible try takes the head itself; earlier ones a copy.
            let head = if tries >= max_tries {
                parts.take()
            } else {
                None
            };
            let Some(head) = head.or_else(|| parts.as_ref().map(clone_parts)) else {
                break text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "request head already used\n".into(),
                );
            };
            let mut attempt = Request::from_parts(head, body);
            if attempt_count.request {
                attempt
                    .headers_mut()
                    .insert(&X_ENVOY_ATTEMPT_COUNT, HeaderValue::from(tries));
            }
            super::trace::inject(
                self.tracer.as_deref(),
                record,
                current_host.label(),
                attempt.headers_mut(),
            );
            if tries == 1 {
                self.mirror(&mut attempt, action, upstream_authority, downstream_version);
            }
            let now = if tries == 1 { start } else { Instant::now() };
            let per_try = policy.and_then(|p| p.per_try_timeout).map(|t| now + t);
            let try_deadline = match (per_try, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // The route timeout also bounds the response body (Envoy's semantics): a body
            // still arriving at the deadline is cut off.
            let result = {
                let Some(client) = upstream.pool(&current_host) else {
                    break text(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "upstream host has no HTTP pool\n".into(),
                    );
                };
                // In flight until the response head (least_request, peak_ewma, /clusters).
                let _active = current_host.start_request();
                ClusterStats::add(&stats.upstream_rq_total);
                if let Some(rs) = route.stats() {
                    rs.rq_total.inc();
                }
                // Pinned where it is made: the exchange's state is large, and every move
                // copies it.
                let mut sent = pin!(client.send(attempt, http2, deadline, upgrade.is_some()));
                match try_deadline {
                    Some(at) => timer.within(at, sent.as_mut()).await,
                    None => Some(sent.await),
                }
            };
            let outcome = match &result {
                Some(Ok(resp)) => Outcome::Response(resp.status(), resp.headers()),
                Some(Err(e)) if e.is_overflow() => Outcome::Overflow,
                Some(Err(e)) if e.is_connect() => Outcome::ConnectFailure,
                Some(Err(e)) if is_refused_stream(e) => Outcome::RefusedStream,
                Some(Err(_)) => Outcome::Reset,
                None => Outcome::PerTryTimeout,
            };
            if let Some(r) = observe::get(record) {
                r.upstream_attempts = tries;
                r.upstream_host = Some(current_host.label().clone());
            }
            // Envoy's upstream_rq_time (to the response head), codes and timeouts.
            match &outcome {
                Outcome::Response(status, _) => {
                    stats.upstream_rq_time.record_duration(now.elapsed());
                    stats.upstream_rq.record(status.as_u16());
                }
                Outcome::PerTryTimeout if deadline.is_some_and(|d| Instant::now() >= d) => {
                    ClusterStats::add(&stats.upstream_rq_timeout);
                }
                Outcome::PerTryTimeout => ClusterStats::add(&stats.upstream_rq_per_try_timeout),
                _ => {}
            }
            // Latency for peak_ewma: time to the response head.
            if matches!(outcome, Outcome::Response(..))
                && upstream.cluster.lb_policy() == LbPolicy::PeakEwma
            {
                current_host.record_latency(now.elapsed());
            }
            // Passive health: how the host did (a breaker's refusal says nothing about it).
            match &outcome {
                Outcome::Response(status, _) => upstream
                    .cluster
                    .report(&current_host, HostOutcome::Status(status.as_u16())),
                Outcome::ConnectFailure => upstream
                    .cluster
                    .report(&current_host, HostOutcome::ConnectFailure),
                Outcome::PerTryTimeout => {
                    upstream.cluster.report(&current_host, HostOutcome::Timeout)
                }
                Outcome::Reset | Outcome::RefusedStream => {
                    upstream.cluster.report(&current_host, HostOutcome::Reset)
                }
                Outcome::Overflow => {}
            }
            let retry_permit = if tries < max_tries
                && policy.is_some_and(|p| retry::retriable(p, &outcome))
                && deadline.is_none_or(|d| Instant::now() < d)
            {
                let permit = breakers.retry(high);
                if permit.is_none() {
                    ClusterStats::add(&stats.upstream_rq_retry_overflow);
                    debug!(cluster = %cluster_name, "retry refused: max_retries in flight");
                }
                permit
            } else {
                None
            };
            // Retries ran out on a failure they were meant to cure (Envoy's `URX`).
            if record.is_some()
                && retry_permit.is_none()
                && tries > 1
                && policy.is_some_and(|p| retry::retriable(p, &outcome))
            {
                observe::flag(record, Flags::UPSTREAM_RETRY_LIMIT_EXCEEDED, "");
            }
            if let Some(permit) = retry_permit {
                // The body can be sent again once the upstream client has let go of it (at once after a
                // connect failure; when fully written otherwise) and if it fit the replay
                // buffer. Waiting for that doubles as the backoff.
                let wait = retry::backoff(tries - 1);
                let replay = match source_back {
                    None => empty_body,
                    Some(back) => {
                        // Boxed, being rare: the request future stays small.
                        let (returned, ()) = Box::pin(async {
                            tokio::join!(
                                tokio::time::timeout(wait + SOURCE_RETURN_WAIT, back),
                                tokio::time::sleep(wait)
                            )
                        })
                        .await;
                        match returned {
                            Ok(Ok(src)) if src.replayable() => {
                                source = Some(src);
                                true
                            }
                            _ => false,
                        }
                    }
                };
                if replay {
                    debug!(cluster = %cluster_name, try_ = tries, ?wait, "retrying");
                    ClusterStats::add(&stats.upstream_rq_retry);
                    if let Some(rs) = route.stats() {
                        rs.rq_retry.inc();
                    }
                    _retrying = Some(permit);
                    drop(result);
                    if empty_body {
                        Box::pin(tokio::time::sleep(wait)).await;
                    }
                    if tried.is_empty() {
                        tried.push(current_host.clone());
                    }
                    let host = match upstream.pick(subset, &ctx, &tried) {
                        Ok(host) => host,
                        Err(e) => {
                            observe::flag(
                                record,
                                Flags::NO_HEALTHY_UPSTREAM,
                                "no_healthy_upstream",
                            );
                            break no_host(&cluster_name, e, target);
                        }
                    };
                    tried.push(host.clone());
                    current_host = host;
                    continue;
                }
            }
            if let Some(rs) = route.stats() {
                match &result {
                    Some(Ok(resp)) => {
                        rs.rq_codes.record(resp.status().as_u16());
                        rs.rq_completed.inc();
                        rs.rq_time.record_duration(start.elapsed());
                    }
                    None => rs.rq_timeout.inc(),
                    Some(Err(_)) => {}
                }
            }
            break match result {
                Some(Ok(mut resp)) => {
                    let tunnel = match upgrade.take() {
                        Some((_, down)) if resp.status() == StatusCode::SWITCHING_PROTOCOLS => resp
                            .extensions_mut()
                            .remove::<Upgraded>()
                            .map(|up| (down, up)),
                        _ => None,
                    };
                    let (mut parts, body) = resp.into_parts();
                    // Read before the hop-by-hop pass drops it; only a tunnel needs it.
                    let protocol = tunnel
                        .as_ref()
                        .and_then(|_| upgrade::protocol(&parts.headers));
                    remove_hop_by_hop(&mut parts.headers);
                    if attempt_count.response {
                        parts
                            .headers
                            .insert(&X_ENVOY_ATTEMPT_COUNT, HeaderValue::from(tries));
                    }
                    parts.version = downstream_version;
                    if let Some((down, up)) = tunnel {
                        upgrade::restore_request_headers(&mut parts.headers, protocol);
                        upgrade::splice(down, up, cluster_name.clone());
                    }
                    // %UPSTREAM_HOST% for response header mutations (an extension map costs an
                    // allocation, so only when some are configured).
                    if mutations.iter().any(|m| !m.is_empty()) {
                        parts
                            .extensions
                            .insert(UpstreamHost(current_host.address.clone()));
                    }
                    hashed.apply(&mut parts.headers);
                    Response::from_parts(parts, body)
                }
                // The client's own body was malformed or cut off: its fault, not the upstream's.
                Some(Err(e)) if find_cause::<ClientBodyError>(&e).is_some() => {
                    observe::flag(
                        record,
                        Flags::DOWNSTREAM_PROTOCOL_ERROR,
                        "downstream_body_error",
                    );
                    text(
                        StatusCode::BAD_REQUEST,
                        format!("bad request body: listener \"{}\" could not read the request body: {}\n", self.listener, error_chain(&e)),
                    )
                }
                Some(Err(e)) if find_cause::<BodyTooLarge>(&e).is_some() => {
                    observe::flag(record, Flags::empty(), "request_payload_too_large");
                    text(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("request body too large: {}\n", error_chain(&e)),
                    )
                }
                Some(Err(e)) if e.is_overflow() => {
                    observe::flag(record, Flags::UPSTREAM_OVERFLOW, "overflow");
                    overloaded(format!(
                        "upstream overflow: cluster \"{cluster_name}\": {}\n",
                        error_chain(&e)
                    ))
                }
                Some(Err(e)) if e.is_protocol() => {
                    observe::failed(
                        record,
                        Flags::UPSTREAM_PROTOCOL_ERROR,
                        "upstream_protocol_error",
                        &e,
                    );
                    text(
                        StatusCode::BAD_GATEWAY,
                        format!("upstream protocol error: cluster \"{cluster_name}\" sent an invalid response: {}\n", error_chain(&e)),
                    )
                }
                Some(Err(e)) => {
                    debug!(cluster = %cluster_name, error = ?e, "upstream request failed");
                    let what = if e.is_connect() {
                        "connect failure"
                    } else {
                        "reset before response headers"
                    };
                    if e.is_connect() {
                        observe::failed(
                            record,
                            Flags::UPSTREAM_CONNECTION_FAILURE,
                            "upstream_reset_before_response_started{connection_failure}",
                            &e,
                        );
                    } else {
                        observe::failed(
                            record,
                            Flags::UPSTREAM_REMOTE_RESET,
                            "upstream_reset_before_response_started{remote_reset}",
                            &e,
                        );
                    }
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!(
                            "upstream {what}: cluster \"{cluster_name}\" after {tries} tr{}: {}\n",
                            if tries == 1 { "y" } else { "ies" },
                            error_chain(&e)
                        ),
                    )
                }
                None => {
                    observe::flag(
                        record,
                        Flags::UPSTREAM_REQUEST_TIMEOUT,
                        "upstream_response_timeout",
                    );
                    text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("upstream timeout: cluster \"{cluster_name}\" sent no response in time ({tries} tr{})\n", if tries == 1 { "y" } else { "ies" }),
                )
                }
            };
        }
    }

    /// Starts the shadow copy of the first try, if the route mirrors and the dice say so.
    fn mirror(
        &self,
        req: &mut Request<Body>,
        action: &ForwardAction,
        authority: &str,
        downstream: Version,
    ) {
        let Some(m) = &action.request_mirror else {
            return;
        };
        if m.percent < 100.0 && fastrand::f64() * 100.0 >= m.percent {
            return;
        }
        if let Some(shadow) = self.upstreams.get(&m.cluster.name) {
            let timeout = action
                .timeout
                .unwrap_or(sluice_config::route::DEFAULT_ROUTE_TIMEOUT);
            mirror::spawn(
                req,
                &shadow,
                authority,
                shadow.speaks_http2(downstream),
                timeout,
            );
        }
    }
}

/// The 503 of a circuit breaker, marked as Envoy marks it.
fn overloaded(message: String) -> Response<Body> {
    let mut resp = text(StatusCode::SERVICE_UNAVAILABLE, message);
    resp.headers_mut()
        .insert(&X_ENVOY_OVERLOADED, HeaderValue::from_static("true"));
    resp
}

static X_ENVOY_OVERLOADED: http::HeaderName = http::HeaderName::from_static("x-envoy-overloaded");

/// The 503 for a pick that found no host.
fn no_host(cluster: &str, why: NoHost, target: &WeightedCluster) -> Response<Body> {
    let message = match why {
        NoHost::Empty => format!("upstream cluster \"{cluster}\" has no endpoints\n"),
        NoHost::NoSubset => {
            let pairs: Vec<String> = target
                .metadata_match
                .pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!(
                "upstream cluster \"{cluster}\" has no endpoints matching metadata_match {{{}}} (fallback_policy: no_fallback)\n",
                pairs.join(", ")
            )
        }
    };
    text(StatusCode::SERVICE_UNAVAILABLE, message)
}

/// The request head again, for another try (extensions are not carried over).
fn clone_parts(parts: &http::request::Parts) -> http::request::Parts {
    let mut req = Request::new(());
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts.uri.clone();
    *req.version_mut() = parts.version;
    *req.headers_mut() = parts.headers.clone();
    req.into_parts().0
}

/// HTTP/2 REFUSED_STREAM: the upstream did not process the request, so a retry is safe.
fn is_refused_stream(e: &(dyn std::error::Error + 'static)) -> bool {
    find_cause::<h2::Error>(e).is_some_and(|h2| h2.reason() == Some(h2::Reason::REFUSED_STREAM))
}

/// The first error of type `T` in `e`'s chain of causes.
fn find_cause<'e, T: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        cur = err.source();
    }
    None
}

/// The authority the client addressed (`:authority` for HTTP/2, `Host` for HTTP/1), as a
/// shared handle on the request's bytes; a `Host` header only when it is visible ASCII.
fn authority(parts: &http::request::Parts) -> Text {
    if let Some(a) = parts.uri.authority() {
        return Text::Authority(a.clone());
    }
    match parts.headers.get(HOST) {
        Some(h) if h.to_str().is_ok() => Text::Header(h.clone()),
        _ => Text::Empty,
    }
}

fn split_query(pq: &str) -> (&str, Option<&str>) {
    match pq.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq, None),
    }
}

fn matched_prefix<'a>(route: &'a CompiledRoute, path: &'a str) -> Option<&'a str> {
    match &route.config().matcher.path {
        PathMatch::Prefix(p) => Some(p),
        // Envoy's `prefix_rewrite` after a `path` or regex match swaps the whole path.
        PathMatch::Exact(_) | PathMatch::Regex(_) => Some(path),
    }
}

/// The path and query to send upstream when the route rewrites it (`prefix_rewrite` or
/// `regex_rewrite`; the query is kept as is) or it lacks the leading `/`; `None` otherwise.
fn rewrite_path(route: &CompiledRoute, action: &ForwardAction, pq: &str) -> Option<String> {
    let rewrites = action.prefix_rewrite.is_some()
        || (route.regex_rewrite().is_some() && action.regex_rewrite.is_some());
    if !rewrites && pq.starts_with('/') {
        return None;
    }
    let (path, query) = split_query(pq);
    let new_path = if let (Some(rewrite), Some(prefix)) =
        (&action.prefix_rewrite, matched_prefix(route, path))
    {
        format!("{rewrite}{}", path.get(prefix.len()..).unwrap_or(""))
    } else if let (Some(re), Some(rr)) = (route.regex_rewrite(), &action.regex_rewrite) {
        re.replace_all(path, envoy_substitution(&rr.substitution).as_str())
            .into_owned()
    } else {
        path.to_string()
    };
    let new_path = if new_path.starts_with('/') {
        new_path
    } else {
        format!("/{new_path}")
    };
    Some(match query {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    })
}

/// The URI for the upstream request, `None` when `current` can go as it is: HTTP/2 wants the
/// absolute form (it carries `:scheme` and `:authority`), HTTP/1 the origin form. The
/// original path is reused unless `rewritten`. `Some(None)`: keep the current URI;
/// `None`: the authority or path does not make a URI.
fn upstream_uri(
    current: &Uri,
    http2: bool,
    authority: &str,
    rewritten: Option<String>,
) -> Option<Option<Uri>> {
    let path = match rewritten {
        Some(p) => http::uri::PathAndQuery::try_from(p).ok()?,
        None => current
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/")),
    };
    if !http2 {
        let origin_form = current.scheme().is_none() && current.authority().is_none();
        if origin_form && current.path_and_query() == Some(&path) {
            return Some(None);
        }
        return Some(Some(Uri::from(path)));
    }
    let authority = match current.authority() {
        Some(a) if a.as_str() == authority => a.clone(),
        _ => http::uri::Authority::try_from(authority).ok()?,
    };
    let mut uri = http::uri::Parts::default();
    uri.scheme = Some(http::uri::Scheme::HTTP);
    uri.authority = Some(authority);
    uri.path_and_query = Some(path);
    Uri::from_parts(uri).ok().map(Some)
}

/// Envoy writes capture groups as `\1`; the regex crate as `${1}`.
fn envoy_substitution(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(d)) if d.is_ascii_digit() => {
                out.push_str(&format!("${{{d}}}"));
                chars.next();
            }
            ('$', _) => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_style_capture_groups() {
        assert_eq!(envoy_substitution(r"/v2/\1"), "/v2/${1}");
        assert_eq!(envoy_substitution("/cost$"), "/cost$$");
    }
}

static GRPC_TIMEOUT: http::HeaderName = http::HeaderName::from_static("grpc-timeout");

/// A `grpc-timeout` header's value: up to 8 digits and a unit (`H`, `M`, `S`, `m`, `u`,
/// `n`); `None` if malformed (then the route's own timeout applies, as in Envoy).
fn grpc_timeout(v: &HeaderValue) -> Option<std::time::Duration> {
    use std::time::Duration;
    let v = v.as_bytes();
    let (&unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod grpc_timeout_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn grpc_timeout_values_are_parsed_by_unit() {
        let t = |s: &'static str| grpc_timeout(&HeaderValue::from_static(s));
        assert_eq!(t("2S"), Some(Duration::from_secs(2)));
        assert_eq!(t("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(t("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(t("3M"), Some(Duration::from_secs(180)));
        assert_eq!(t("10u"), Some(Duration::from_micros(10)));
        assert_eq!(t("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for bad in ["", "S", "123456789S", "1x", "-1S", "1.5S"] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
