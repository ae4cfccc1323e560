//! One RPC call, from route selection to the response frame.
//!
//! The framework's share of the work, the same for every protocol: route on the service,
//! method and headers; choose a cluster (weighted) and a host (subset, priority, zone,
//! balancer, hash policy); take the circuit breakers; move the request onto the host's shared
//! connection; wait under the route's timeout; report the outcome to outlier detection; retry
//! on another host when the route's `retry_policy` says so; apply the route's header
//! mutations; and answer in the protocol's own format when anything fails.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use sluice_config::route::{ForwardAction, RetryOn, RetryPolicy, RouteAction, RoutePriority};
use sluice_proxy::route::RequestView;

use crate::routes::SharedTable;
use sluice_upstream::outlier::Outcome as HostOutcome;
use sluice_upstream::stats::ClusterStats;
use sluice_upstream::{Cluster, ClusterManager, Host, LbContext, NoHost};
use sluice_xprotocol::{Frame, FrameKind, LocalError, Protocol, ResponseClass};
use tokio::time::Instant;
use tracing::debug;

use super::observe::{self, Record};
use super::request_view::RouteInputs;
use super::upstream::{Conn, ConnectError, Heartbeat, HostConn, Lost};
use super::{mutate, trace};
use crate::http_proxy::hash;
use crate::http_proxy::mutate::Vars;
use crate::stream::StreamFilters;
use sluice_net::ConnectionInfo;
use sluice_observe::ResponseFlags as Flags;

/// What every call on a listener shares.
pub struct Shared {
    pub listener: Arc<str>,
    pub protocol: Arc<dyn Protocol>,
    pub table: SharedTable,
    /// `stream_filters`, run before routing.
    pub filters: StreamFilters,
    /// The listener's metrics, by service.
    pub stats: Arc<super::stats::RpcStats>,
    /// The connection, for the filters (`None` without filters).
    pub info: Option<ConnectionInfo>,
    pub clusters: Arc<ClusterManager>,
    pub max_frame_size: usize,
    /// Heartbeats on quiet upstream connections.
    pub upstream_heartbeat: Option<Heartbeat>,
    /// The listener's access logs (and its tracer).
    pub observers: Arc<sluice_observe::Observers>,
    /// Reads and writes the calls' trace context, when the listener traces.
    pub tracer: Option<Arc<sluice_observe::trace::Tracer>>,
    /// The connection's local address and SNI, for the records.
    pub local: Option<SocketAddr>,
    pub server_name: Option<Arc<str>>,
}

/// How one try ended.
enum Try {
    Response(Frame),
    ConnectFailure(String),
    Overflow,
    Reset,
    Timeout,
    /// The response was over `max_frame_size` (its declared length): passed over.
    TooLarge(usize),
    /// The protocol could not encode the request: nothing was sent.
    Unencodable(String),
}

/// Handles `request`; the response to write back (its id the client's), or `None` for a
/// one-way request. Counted by service: a response of the protocol's success class is a
/// success, anything else (one-way calls aside, which count as successes once handled) an
/// error.
pub async fn handle(
    shared: Arc<Shared>,
    client: Option<SocketAddr>,
    request: Frame,
) -> Option<Frame> {
    let start = Instant::now();
    let service = shared.stats.service(request.service_str());
    let _active = sluice_stats::GaugeGuard::new(&shared.stats.downstream_rq_active);
    shared.stats.downstream_rq_total.inc();
    service.rq_total.inc();
    let mut record = observe::Unfinished::start(&shared, client, &request);
    let response = call(&shared, client, request, record.record()).await;
    service.rq_time.record_duration(start.elapsed());
    let success = response
        .as_ref()
        .is_none_or(|r| shared.protocol.classify(r) == ResponseClass::Success);
    if success {
        service.rq_success.inc();
    } else {
        service.rq_error.inc();
    }
    record.complete(response.as_ref(), !success);
    response
}

async fn call(
    shared: &Arc<Shared>,
    client: Option<SocketAddr>,
    request: Frame,
    record: &mut Record,
) -> Option<Frame> {
    let oneway = request.kind == FrameKind::Oneway;
    let downstream_id = request.id;
    let reply = |request: &Frame, error: LocalError, message: String| {
        shared.protocol.local_reply(request, error, &message)
    };
    // Kept to answer from once the frame itself has gone upstream.
    let template = request.without_payload();
    let inputs = RouteInputs::of(&request);
    let service = request.service_str();
    let method = request.method_str();
    observe::request(
        record,
        shared,
        service,
        method,
        &inputs.path,
        &inputs.headers,
    );
    trace::start(shared.tracer.as_deref(), record, &inputs.headers);
    if let (false, Some(info)) = (shared.filters.is_empty(), &shared.info) {
        let view = RequestView::new(method, service, &inputs.path, &inputs.headers);
        if let Some(denial) = shared.filters.on_request(&view, info) {
            observe::flag(
                record,
                Flags::UNAUTHORIZED_EXTERNAL_SERVICE,
                "rbac_access_denied",
            );
            return reply(&request, LocalError::Forbidden, denial.message.to_string());
        }
    }
    let table = shared.table.load_full();
    let selected = table.virtual_host(service).and_then(|vhost| {
        let view = RequestView::new(method, service, &inputs.path, &inputs.headers);
        vhost.select(&view).map(|route| (vhost, route))
    });
    let Some((vhost, route)) = selected else {
        let message = format!(
            "no route: listener \"{}\" has no route for service \"{service}\" method \"{method}\"",
            shared.listener
        );
        observe::flag(record, Flags::NO_ROUTE_FOUND, "route_not_found");
        return reply(&request, LocalError::NoRoute, message);
    };
    observe::routed(record, route.shared_name());
    let action = match route.action() {
        RouteAction::Forward(action) => action,
        _ => {
            observe::flag(record, Flags::NO_ROUTE_FOUND, "route_not_found");
            let message = "route action not supported for RPC: use route (to a cluster)".into();
            return reply(&request, LocalError::NoRoute, message);
        }
    };
    let Some(target) = route.clusters().map(|c| c.choose()) else {
        observe::flag(record, Flags::NO_ROUTE_FOUND, "route_not_found");
        return reply(&request, LocalError::NoRoute, "route has no cluster".into());
    };
    let cluster_name = target.cluster.name.as_str();
    let Some(cluster) = shared.clusters.get(cluster_name) else {
        let message = format!("upstream cluster \"{cluster_name}\" not found");
        observe::flag(record, Flags::NO_CLUSTER_FOUND, "cluster_not_found");
        return reply(&request, LocalError::NoHealthyUpstream, message);
    };
    let cluster = &cluster;
    let high = action.priority == RoutePriority::High;
    let Some(_in_flight) = cluster.breakers.request(high) else {
        ClusterStats::add(&cluster.stats.upstream_rq_pending_overflow);
        let message = format!(
            "upstream overflow: cluster \"{cluster_name}\" has max_requests ({}) in flight",
            cluster.breakers.max_requests(high)
        );
        observe::flag(record, Flags::UPSTREAM_OVERFLOW, "overflow");
        return reply(&request, LocalError::Overflow, message);
    };
    let ctx = LbContext {
        hash: if cluster.lb_policy().is_hash() && !action.hash_policy.is_empty() {
            hash::compute(
                &action.hash_policy,
                &inputs.headers,
                &inputs.path,
                client.map(|a| a.ip()),
            )
            .hash
        } else {
            None
        },
    };
    let levels = [&route.config().headers, vhost.headers(), table.headers()];
    let vars = |upstream| Vars {
        client,
        protocol: shared.protocol.name(),
        request: &inputs.headers,
        upstream,
    };
    let mut request = request;
    if mutate::any(&levels, true) {
        // A frame the protocol cannot rebuild is answered when the upstream connection fails
        // to encode it (`Lost::Unencodable`).
        mutate::apply_request(request.headers_mut(), &levels, &vars(None));
    }
    let subset = target.metadata_match.key.as_str();
    let policy = action.retry_policy.as_ref().filter(|p| p.num_retries > 0);

    if oneway {
        // Nothing comes back to retry on or time: send and forget.
        if let Ok(host) = cluster.pick(subset, &ctx, &[]) {
            observe::attempt(record, cluster_name, host.label(), 1);
            ClusterStats::add(&cluster.stats.upstream_rq_total);
            let tracer = shared.tracer.as_deref();
            trace::inject(tracer, record, host.label(), &inputs.headers, &mut request);
            if let Ok(conn) = connection(shared, cluster, &host).await {
                let _ = conn.send_oneway(request);
            }
        }
        return None;
    }

    let start = Instant::now();
    let deadline = action.timeout.map(|t| start + t);
    let max_tries = 1 + policy.map_or(0, |p| p.num_retries);
    let mut tried: Vec<Arc<Host>> = Vec::new();
    let mut retrying = None;
    let mut tries = 0;
    let mut pending = Some(request);
    loop {
        tries += 1;
        let host = match cluster.pick(subset, &ctx, &tried) {
            Ok(host) => host,
            Err(why) => {
                let message = no_host(cluster_name, why);
                observe::flag(record, Flags::NO_HEALTHY_UPSTREAM, "no_healthy_upstream");
                return reply(&template, LocalError::NoHealthyUpstream, message);
            }
        };
        let last = tries >= max_tries;
        // The last possible try takes the frame itself; earlier ones a copy for another go.
        let mut attempt = if last {
            pending.take()
        } else {
            pending.clone()
        }?;
        observe::attempt(record, cluster_name, host.label(), tries);
        let tracer = shared.tracer.as_deref();
        trace::inject(tracer, record, host.label(), &inputs.headers, &mut attempt);
        let now = if tries == 1 { start } else { Instant::now() };
        let per_try = policy.and_then(|p| p.per_try_timeout).map(|t| now + t);
        let try_deadline = match (per_try, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let outcome = {
            let _active = host.start_request();
            ClusterStats::add(&cluster.stats.upstream_rq_total);
            let sent = send(shared, cluster, &host, attempt);
            match try_deadline {
                Some(at) => tokio::time::timeout_at(at, sent)
                    .await
                    .unwrap_or(Try::Timeout),
                None => sent.await,
            }
        };
        report(cluster, &host, &shared.protocol, &outcome);
        match &outcome {
            Try::Response(_) => cluster
                .stats
                .upstream_rq_time
                .record_duration(now.elapsed()),
            Try::Timeout if deadline.is_some_and(|d| Instant::now() >= d) => {
                ClusterStats::add(&cluster.stats.upstream_rq_timeout);
            }
            Try::Timeout => ClusterStats::add(&cluster.stats.upstream_rq_per_try_timeout),
            _ => {}
        }
        let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
        let again = !last
            && !past_deadline
            && policy.is_some_and(|p| retriable(p, &outcome, &shared.protocol))
            && {
                retrying = retrying.take().or_else(|| cluster.breakers.retry(high));
                if retrying.is_none() {
                    ClusterStats::add(&cluster.stats.upstream_rq_retry_overflow);
                }
                retrying.is_some()
            };
        if again {
            ClusterStats::add(&cluster.stats.upstream_rq_retry);
            tried.push(host);
            tokio::time::sleep(crate::http_proxy::retry_backoff(tries - 1)).await;
            continue;
        }
        return match outcome {
            Try::Response(mut response) => {
                response.id = downstream_id;
                if mutate::any(&levels, false) {
                    let unchanged = response.clone();
                    let vars = vars(Some(&host.address));
                    mutate::apply_response(response.headers_mut(), &levels, &vars);
                    if let Err(e) = shared.protocol.encode(&response, &mut BytesMut::new()) {
                        // The call succeeded: deliver it as it came rather than fail it.
                        debug!(error = %e, "response header changes not applied");
                        response = unchanged;
                    }
                }
                Some(response)
            }
            failed => {
                fail(record, &failed);
                if last && policy.is_some_and(|p| retriable(p, &failed, &shared.protocol)) {
                    observe::flag(record, Flags::UPSTREAM_RETRY_LIMIT_EXCEEDED, "");
                }
                let (error, message) =
                    local_error(cluster_name, &host, failed, action, shared.max_frame_size);
                reply(&template, error, message)
            }
        };
    }
}

/// The flag for a failed last try.
fn fail(record: &mut Record, failed: &Try) {
    let (flag, details) = match failed {
        Try::ConnectFailure(why) => {
            observe::failure_reason(record, why);
            (
                Flags::UPSTREAM_CONNECTION_FAILURE,
                "upstream_reset_before_response_started{connection_failure}",
            )
        }
        Try::Overflow => (Flags::UPSTREAM_OVERFLOW, "overflow"),
        Try::Reset => (
            Flags::UPSTREAM_CONNECTION_TERMINATION,
            "upstream_reset_before_response_started{connection_termination}",
        ),
        Try::Timeout => (Flags::UPSTREAM_REQUEST_TIMEOUT, "response_timeout"),
        Try::TooLarge(_) => (
            Flags::UPSTREAM_PROTOCOL_ERROR,
            "upstream_response_too_large",
        ),
        Try::Unencodable(_) => (Flags::DOWNSTREAM_PROTOCOL_ERROR, "request_not_encodable"),
        Try::Response(_) => return,
    };
    observe::flag(record, flag, details);
}

/// One try on `host`'s shared connection.
async fn send(shared: &Shared, cluster: &Cluster, host: &Arc<Host>, request: Frame) -> Try {
    let conn = match connection(shared, cluster, host).await {
        Ok(c) => c,
        Err(failed) => return failed,
    };
    match conn.call(request).await {
        Ok(response) => Try::Response(response),
        Err(Lost::Closed | Lost::Reset) => Try::Reset,
        Err(Lost::TooLarge(len)) => Try::TooLarge(len),
        Err(Lost::Unencodable(why)) => Try::Unencodable(why),
    }
}

/// `host`'s open connection for the listener's protocol, or how getting one failed.
async fn connection(
    shared: &Shared,
    cluster: &Cluster,
    host: &Arc<Host>,
) -> Result<Arc<Conn>, Try> {
    let conns = HostConn::of(host, &shared.protocol).map_err(connect_failure)?;
    conns
        .get(cluster, shared.max_frame_size, shared.upstream_heartbeat)
        .await
        .map_err(|e| match e {
            ConnectError::Overflow => {
                ClusterStats::add(&cluster.stats.upstream_cx_overflow);
                Try::Overflow
            }
            e => connect_failure(e),
        })
}

fn connect_failure(e: ConnectError) -> Try {
    Try::ConnectFailure(match e {
        ConnectError::Failed(e) => e.to_string(),
        ConnectError::Overflow => "max_connections reached".into(),
        ConnectError::WrongProtocol(p) => {
            format!("the host's connection already speaks {p}")
        }
    })
}

/// What a try tells outlier detection: a response's class maps onto HTTP-like statuses, so
/// `consecutive_5xx` and success-rate ejection work unchanged.
fn report(cluster: &Cluster, host: &Arc<Host>, protocol: &Arc<dyn Protocol>, outcome: &Try) {
    let outcome = match outcome {
        Try::Response(r) => HostOutcome::Status(match protocol.classify(r) {
            ResponseClass::Success | ResponseClass::ApplicationError => 200,
            ResponseClass::ServerError => 500,
            ResponseClass::Retriable => 503,
        }),
        Try::ConnectFailure(_) => HostOutcome::ConnectFailure,
        Try::Reset => HostOutcome::Reset,
        Try::Timeout => HostOutcome::Timeout,
        // The breaker said no, or our own limit or codec did: nothing about the host.
        Try::Overflow | Try::TooLarge(_) | Try::Unencodable(_) => return,
    };
    cluster.report(host, outcome);
}

/// Whether `policy` retries after `outcome`. RPC reads Envoy's conditions by their meaning:
/// `connect-failure` and `reset` as for HTTP; `5xx` covers both plus responses classed as
/// server errors or retriable; `gateway-error` and `unavailable`/`resource-exhausted` a host
/// that could not take the call; `retriable-status-codes` the protocol's own status codes.
fn retriable(policy: &RetryPolicy, outcome: &Try, protocol: &Arc<dyn Protocol>) -> bool {
    let on = |c: RetryOn| policy.retry_on.contains(&c);
    match outcome {
        Try::ConnectFailure(_) => {
            on(RetryOn::ConnectFailure) || on(RetryOn::FiveXx) || on(RetryOn::GatewayError)
        }
        Try::Reset => on(RetryOn::Reset) || on(RetryOn::FiveXx) || on(RetryOn::GatewayError),
        Try::Timeout => on(RetryOn::FiveXx) || on(RetryOn::GatewayError),
        // The same request would get the same response from any host.
        Try::Overflow | Try::TooLarge(_) | Try::Unencodable(_) => false,
        Try::Response(r) => {
            let by_code = on(RetryOn::RetriableStatusCodes)
                && u16::try_from(r.status)
                    .is_ok_and(|s| policy.retriable_status_codes.contains(&s));
            by_code
                || match protocol.classify(r) {
                    ResponseClass::Success | ResponseClass::ApplicationError => false,
                    ResponseClass::ServerError => on(RetryOn::FiveXx),
                    ResponseClass::Retriable => {
                        on(RetryOn::FiveXx)
                            || on(RetryOn::GatewayError)
                            || on(RetryOn::Unavailable)
                            || on(RetryOn::ResourceExhausted)
                    }
                }
        }
    }
}

fn local_error(
    cluster: &str,
    host: &Host,
    failed: Try,
    action: &ForwardAction,
    max_frame_size: usize,
) -> (LocalError, String) {
    match failed {
        Try::Timeout => (
            LocalError::Timeout,
            match action.timeout {
                Some(t) => format!("upstream timeout: no response within {t:?} (cluster \"{cluster}\")"),
                None => format!("upstream timeout: no response within the per-try timeout (cluster \"{cluster}\")"),
            },
        ),
        Try::Overflow => (
            LocalError::Overflow,
            format!("upstream overflow: cluster \"{cluster}\" has max_connections open"),
        ),
        Try::ConnectFailure(why) => (
            LocalError::UpstreamFailure,
            format!("upstream connect error: {} (cluster \"{cluster}\"): {why}", host.address),
        ),
        Try::Reset => (
            LocalError::UpstreamFailure,
            format!("upstream connection reset: {} (cluster \"{cluster}\")", host.address),
        ),
        Try::TooLarge(len) => (
            LocalError::UpstreamFailure,
            format!(
                "upstream response too large: {len} bytes, over max_frame_size {max_frame_size} ({}, cluster \"{cluster}\")",
                host.address
            ),
        ),
        Try::Unencodable(why) => (
            LocalError::BadRequest,
            format!("the request cannot be sent upstream (cluster \"{cluster}\"): {why}"),
        ),
        Try::Response(_) => (LocalError::UpstreamFailure, String::new()),
    }
}

fn no_host(cluster: &str, why: NoHost) -> String {
    match why {
        NoHost::Empty => format!("upstream cluster \"{cluster}\" has no endpoints"),
        NoHost::NoSubset => format!(
            "upstream cluster \"{cluster}\" has no endpoints matching the route's metadata_match (fallback_policy: no_fallback)"
        ),
    }
}
