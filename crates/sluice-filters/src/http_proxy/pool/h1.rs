//! HTTP/1.1 keep-alive connections: one exchange at a time each.
//!
//! Idle connections wait in a lock-free queue. A connection is taken for one request and given
//! back when its response body has been read to the end (a body dropped half-read takes the
//! connection with it: what is left of it cannot be skipped cheaply). A connection the upstream
//! closed while idle is noticed (hyper marks it closed) and skipped; one that closes just as a
//! request is written to it hands the request back unsent, and it goes out on a fresh one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;
use http::uri::PathAndQuery;
use http::{Request, Response, StatusCode, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tracing::debug;

use super::{poll_with_deadline, BodyDeadline, HostPool, PoolError};
use crate::http_proxy::body::{Body, BoxError};

/// The idle connections of one host.
#[derive(Default)]
pub struct Idle {
    queue: SegQueue<IdleConn>,
}

struct IdleConn {
    conn: Conn,
    since: Instant,
}

/// A connection and how many requests it has carried.
struct Conn {
    sender: SendRequest<Body>,
    served: u32,
}

impl Idle {
    /// An idle connection that is still open, if any.
    fn take(&self) -> Option<Conn> {
        while let Some(c) = self.queue.pop() {
            if !c.conn.sender.is_closed() {
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
            let Some(c) = self.queue.pop() else { break };
            if !c.conn.sender.is_closed() && c.since.elapsed() < timeout {
                self.queue.push(c);
            }
        }
        self.queue.len()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Sends `req` over an idle connection, or a new one.
pub async fn send(
    pool: &Arc<HostPool>,
    mut req: Request<Body>,
    deadline: Option<BodyDeadline>,
) -> Result<Response<Body>, PoolError> {
    // HTTP/1 puts the origin form on the request line; `Host` is already set.
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(path);
    }
    loop {
        let (mut conn, pooled) = match pool.h1.take() {
            Some(conn) => (conn, true),
            // Boxed: dialling is rare, and its state would otherwise sit in (and be copied
            // with) every request's future.
            None => (
                Conn {
                    sender: Box::pin(connect(pool)).await?,
                    served: 0,
                },
                false,
            ),
        };
        if pooled && conn.sender.ready().await.is_err() {
            continue;
        }
        match conn.sender.try_send_request(req).await {
            Ok(resp) => {
                conn.served = conn.served.saturating_add(1);
                return Ok(returning(resp, conn, pool, deadline));
            }
            Err(mut e) => match e.take_message() {
                // Not written: the pooled connection was closed under us; try another.
                Some(unsent) if pooled => {
                    debug!(host = %pool.address, "pooled connection closed before the request; retrying on another");
                    req = unsent;
                }
                _ => return Err(PoolError::request(e.into_error())),
            },
        }
    }
}

async fn connect(pool: &Arc<HostPool>) -> Result<SendRequest<Body>, PoolError> {
    let stream = pool.dial().await?;
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(PoolError::connect)?;
    let address = pool.address.clone();
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            debug!(host = %address, error = %e, "upstream HTTP/1 connection ended with an error");
        }
    });
    Ok(sender)
}

/// The response, with a body that gives the connection back once read to the end.
fn returning(
    resp: Response<Incoming>,
    conn: Conn,
    pool: &Arc<HostPool>,
    deadline: Option<BodyDeadline>,
) -> Response<Body> {
    // A 101 hands the connection to the upgrade; it is not pooled again. Nor is one that has
    // served its `max_requests_per_connection`.
    let worn_out = pool
        .options
        .max_requests_per_connection
        .is_some_and(|max| conn.served >= max);
    let reusable = resp.status() != StatusCode::SWITCHING_PROTOCOLS && !worn_out;
    let (parts, inner) = resp.into_parts();
    let mut body = Returning {
        inner,
        conn: reusable.then_some(conn),
        pool: pool.clone(),
        deadline,
    };
    if body.inner.is_end_stream() {
        body.give_back();
    }
    Response::from_parts(parts, body.boxed())
}

struct Returning {
    inner: Incoming,
    conn: Option<Conn>,
    pool: Arc<HostPool>,
    deadline: Option<BodyDeadline>,
}

impl Returning {
    fn give_back(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        // Dropping the sender closes the connection.
        if conn.sender.is_closed() {
            return;
        }
        self.pool
            .h1
            .put(conn, self.pool.options.max_idle_connections);
        self.pool.ensure_reaper();
    }
}

impl HttpBody for Returning {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map(|f| f.map(|f| f.map_err(BoxError::from)));
        let frame = ready!(poll_with_deadline(&mut this.deadline, cx, polled));
        match &frame {
            None => this.give_back(),
            // A failed or abandoned body leaves the connection mid-message.
            Some(Err(_)) => this.conn = None,
            Some(Ok(_)) if this.inner.is_end_stream() => this.give_back(),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
