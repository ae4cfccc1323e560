//! HTTP/1.1 keep-alive connections to one upstream host: one exchange at a time each.
//!
//! The client is our own ([`exchange`]): the request is written and the response read by
//! the task serving the downstream request, so a proxied request costs no task switch and no
//! channel hop (hyper's client runs each connection as a task of its own and talks to it over
//! channels; on small keep-alive requests that was over a third of Sluice's instructions).
//! Parsing uses `httparse`, and body framing follows RFC 9112 strictly ([`head`], `h1::chunked`).
//!
//! Idle connections wait in a lock-free queue. A connection is taken for one request and given
//! back when its response body has been read to the end (a body dropped half-read takes the
//! connection with it: what is left of it cannot be skipped cheaply). An idle connection the
//! upstream closed is noticed when taken and skipped; one that turns out dead once the request
//! is written (nothing comes back) costs a bodiless idempotent request nothing: it goes out
//! again on a fresh connection.

mod exchange;
pub(crate) mod head;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_queue::SegQueue;
use http::{Request, Response, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use sluice_net::{AppProtocol, Stream};
use tracing::debug;

use self::exchange::{exchange, Conn, ExchangeError, ResponseBody};
use super::{BodyDeadline, HostPool, PoolError};
use crate::http_proxy::body::{empty, Body};
use crate::http_proxy::h1::outgoing::Outgoing;
use crate::http_proxy::h1::Framing;
use crate::http_proxy::recycle;

/// The idle connections of one host.
#[derive(Default)]
pub struct Idle {
    queue: SegQueue<IdleConn>,
}

struct IdleConn {
    conn: Conn,
    since: Instant,
}

impl Idle {
    /// An idle connection that is still open, if any.
    fn take(&self) -> Option<Conn> {
        while let Some(mut c) = self.queue.pop() {
            if c.conn.is_usable() {
                return Some(c.conn);
            }
        }
        None
    }

    /// Pools `conn`, then closes the oldest idle connections beyond `max`. Trimming after the
    /// push (not checking before it) keeps the bound when responses finish on several workers
    /// at once: whoever pushes last sees every push before it.
    fn put(&self, conn: Conn, max: Option<u32>) {
        self.queue.push(IdleConn {
            conn,
            since: Instant::now(),
        });
        if let Some(max) = max {
            while self.queue.len() > max as usize {
                if self.queue.pop().is_none() {
                    break;
                }
            }
        }
    }

    /// Closes connections idle for `timeout` or closed by the upstream; returns how many stay.
    pub fn reap(&self, timeout: Duration) -> usize {
        for _ in 0..self.queue.len() {
            let Some(mut c) = self.queue.pop() else { break };
            if c.conn.is_usable() && c.since.elapsed() < timeout {
                self.queue.push(c);
            }
        }
        self.queue.len()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Gives a connection whose exchange is complete back to its pool, unless it has served its
/// `max_requests_per_connection`.
fn pool_conn(pool: &Arc<HostPool>, conn: Conn) {
    if pool
        .options
        .max_requests_per_connection
        .is_some_and(|max| conn.served >= max)
    {
        return;
    }
    pool.h1.put(conn, pool.options.max_idle_connections);
    pool.options.breakers.connection_idle();
    pool.ensure_reaper();
}

/// The upstream connection after a `101 Switching Protocols`, for the tunnel. It travels in
/// the response's extensions (which must be `Clone`), hence the shared slot; it is taken once.
#[derive(Clone)]
pub struct Upgraded(Arc<tokio::sync::Mutex<Option<(Stream, BytesMut)>>>);

impl Upgraded {
    /// The stream and the bytes the upstream already sent on the new protocol.
    pub fn take(&self) -> Option<(Stream, BytesMut)> {
        self.0.try_lock().ok()?.take()
    }
}

/// Sends `req` over an idle connection, or a new one.
pub async fn send(
    pool: &Arc<HostPool>,
    req: Request<Body>,
    deadline: Option<BodyDeadline>,
    upgrade: bool,
) -> Result<Response<Body>, PoolError> {
    let (mut parts, body) = req.into_parts();
    let framing = head::request_framing(
        &parts.headers,
        body.is_end_stream(),
        body.size_hint().exact(),
    );
    // HTTP/1 puts the origin form on the request line; `Host` is already set.
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let encoded = recycle::encode_head(|out| {
        head::encode_request(&parts.method, target, &parts.headers, framing, out);
    });
    let resendable = framing == Framing::Empty && parts.method.is_idempotent();
    let mut body = Some(body);
    loop {
        let (mut conn, pooled) = match pool.h1.take() {
            Some(conn) => (conn, true),
            // Boxed: dialling is rare, and its state would otherwise sit in (and be copied
            // with) every request's future.
            None => match Box::pin(pool.permit_or(|| pool.h1.take())).await? {
                Ok(mut permit) => {
                    let io = Box::pin(pool.dial(AppProtocol::Http1, &mut permit)).await?;
                    (Conn::new(io, permit), false)
                }
                Err(idle) => (idle, true),
            },
        };
        conn.served = conn.served.saturating_add(1);
        let mut out = Outgoing::new(encoded.clone(), framing, body.take());
        match exchange(&mut conn, &mut out, &parts.method, upgrade).await {
            Ok((head, sending)) => {
                // The request's head is written: its map serves a later parse.
                recycle::give_back(std::mem::take(&mut parts.headers));
                let (mut response, ()) = head.response.into_parts();
                if response.status == StatusCode::SWITCHING_PROTOCOLS {
                    let slot = Upgraded(Arc::new(tokio::sync::Mutex::new(Some(
                        conn.into_upgraded(),
                    ))));
                    response.extensions.insert(slot);
                    return Ok(Response::from_parts(response, empty()));
                }
                let body = ResponseBody::new(
                    conn,
                    sending.then_some(out),
                    head.framing,
                    head.keep_alive,
                    pool.clone(),
                    deadline,
                );
                return Ok(Response::from_parts(response, body.boxed()));
            }
            Err(failed) if failed.stale && pooled && resendable => {
                debug!(host = %pool.address, error = %failed.error, "pooled connection was closed; sending the request again on a new one");
            }
            Err(failed) if matches!(failed.error, ExchangeError::Head(_)) => {
                return Err(PoolError::protocol(failed.error))
            }
            Err(failed) => return Err(PoolError::request(failed.error)),
        }
    }
}
