//! HTTP/2 connections, multiplexed, as many as the load needs.
//!
//! A request takes a stream slot on the first open connection below its limit: the smaller of
//! the upstream's `SETTINGS_MAX_CONCURRENT_STREAMS` (until its SETTINGS arrive, the 100 that
//! RFC 9113 recommends assuming) and the cluster's `max_concurrent_streams`. When every
//! connection is full a new one is dialled; dials are one at a time per host, so a burst
//! waits for one handshake instead of opening a connection per request, and a dial that fails
//! fails the requests queued behind it at once instead of each trying again.
//!
//! This speaks to the `h2` crate directly: hyper's HTTP/2 client queues requests beyond the
//! peer's stream limit on the same connection and does not say when it is full.

use sluice_upstream::breakers::ConnectionPermit;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use h2::client::SendRequest;
use h2::{Reason, RecvStream, SendStream};
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame};
use http_body_util::BodyExt;
use tokio::sync::{oneshot, Mutex};
use tracing::debug;

use super::{poll_with_deadline, BodyDeadline, HostPool, PoolError, PoolOptions};
use crate::http_proxy::body::{Body, BoxError};

/// Streams assumed allowed before the upstream's SETTINGS say otherwise (RFC 9113 §6.5.2).
const ASSUMED_MAX_STREAMS: usize = 100;
/// Flow-control windows we grant the upstream: large enough for a fast bulk response without
/// waiting on WINDOW_UPDATEs, as hyper's client does.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
/// How long a failed dial answers for the requests that arrive right after it.
const DIAL_FAILURE_SHARED_FOR: Duration = Duration::from_millis(100);
/// How many times a request moves to another connection when the chosen one is going away.
const MAX_CONNECTION_SWITCHES: usize = 3;

/// The HTTP/2 connections of one host.
#[derive(Default)]
pub struct Conns {
    list: ArcSwap<Vec<Arc<Conn>>>,
    /// Held while dialling; remembers the last failure.
    dialing: Mutex<Option<(Instant, Arc<str>)>>,
}

struct Conn {
    sender: SendRequest<Bytes>,
    /// Streams in use (slots handed out and not yet given back).
    active: AtomicUsize,
    /// Streams opened over the connection's life (for `max_requests_per_connection`).
    opened: AtomicU64,
    /// The connection task ended, or the connection refused a new stream.
    closed: Arc<AtomicBool>,
    /// When the last stream ended, in milliseconds since [`epoch`].
    last_used: AtomicU64,
    /// Counts the connection under the cluster's `max_connections` while it is open.
    _permit: ConnectionPermit,
}

/// A stream slot on a connection, held until the response is over.
struct Slot(Arc<Conn>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.last_used.store(now_ms(), Ordering::Relaxed);
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    u64::try_from(epoch().elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Conn {
    fn limit(&self, options: &PoolOptions) -> usize {
        let peer = self.sender.current_max_send_streams();
        options
            .max_concurrent_streams
            .map_or(peer, |c| peer.min(c as usize))
    }

    /// Whether the connection has opened its `max_requests_per_connection` streams: it takes
    /// no more, and goes once those finish.
    fn worn_out(&self, max_requests: Option<u32>) -> bool {
        max_requests.is_some_and(|max| self.opened.load(Ordering::Acquire) >= u64::from(max))
    }

    /// Takes a stream slot if the connection is open and below its limits.
    fn reserve(self: &Arc<Self>, options: &PoolOptions) -> Option<Slot> {
        let max_requests = options.max_requests_per_connection;
        if self.closed.load(Ordering::Acquire) || self.worn_out(max_requests) {
            return None;
        }
        let limit = self.limit(options);
        let mut active = self.active.load(Ordering::Acquire);
        while active < limit {
            match self.active.compare_exchange_weak(
                active,
                active + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    let slot = Slot(self.clone());
                    // Counted after the slot is taken, so two racing requests cannot both
                    // slip past the limit (the loser's slot is given back on drop).
                    let opened = self.opened.fetch_add(1, Ordering::AcqRel) + 1;
                    if max_requests.is_some_and(|max| opened > u64::from(max)) {
                        return None;
                    }
                    return Some(slot);
                }
                Err(now) => active = now,
            }
        }
        None
    }
}

impl Conns {
    fn reserve(&self, options: &PoolOptions) -> Option<Slot> {
        self.list.load().iter().find_map(|c| c.reserve(options))
    }

    /// Drops connections that closed, sat without streams for `timeout`, or are worn out
    /// and without streams; returns how many stay open.
    pub fn reap(&self, timeout: Duration, max_requests: Option<u32>) -> usize {
        let cutoff =
            now_ms().saturating_sub(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self.list.rcu(|list| {
            list.iter()
                .filter(|c| {
                    let idle = c.active.load(Ordering::Acquire) == 0;
                    let expired = idle
                        && (c.worn_out(max_requests)
                            || c.last_used.load(Ordering::Relaxed) <= cutoff);
                    !c.closed.load(Ordering::Acquire) && !expired
                })
                .cloned()
                .collect::<Vec<_>>()
        });
        self.list.load().len()
    }

    pub fn len(&self) -> usize {
        self.list.load().len()
    }

    /// A slot on a new connection (or on one another request just opened).
    async fn grow(&self, pool: &Arc<HostPool>) -> Result<Slot, PoolError> {
        let mut last_failure = self.dialing.lock().await;
        if let Some(slot) = self.reserve(&pool.options) {
            return Ok(slot);
        }
        if let Some((at, why)) = last_failure.as_ref() {
            if at.elapsed() < DIAL_FAILURE_SHARED_FOR {
                return Err(PoolError::connect(why.to_string()));
            }
        }
        let conn = match connect(pool).await {
            Ok(conn) => conn,
            Err(e) => {
                let why = crate::http_proxy::service::error_chain(&e);
                *last_failure = Some((Instant::now(), why.into()));
                return Err(e);
            }
        };
        *last_failure = None;
        conn.active.store(1, Ordering::Release);
        conn.opened.store(1, Ordering::Release);
        let slot = Slot(conn.clone());
        self.list.rcu(|list| {
            let mut next: Vec<Arc<Conn>> = list
                .iter()
                .filter(|c| !c.closed.load(Ordering::Acquire))
                .cloned()
                .collect();
            next.push(conn.clone());
            next
        });
        pool.ensure_reaper();
        Ok(slot)
    }
}

async fn connect(pool: &Arc<HostPool>) -> Result<Arc<Conn>, PoolError> {
    let Ok(mut permit) = pool.permit_or(|| None::<()>).await? else {
        return Err(PoolError::connect("no connection permit"));
    };
    let stream = pool
        .dial(sluice_net::AppProtocol::Http2, &mut permit)
        .await?;
    let (sender, mut connection) = h2::client::Builder::new()
        .initial_max_send_streams(ASSUMED_MAX_STREAMS)
        .initial_window_size(pool.options.h2_window.unwrap_or(STREAM_WINDOW))
        .initial_connection_window_size(pool.options.h2_window.unwrap_or(CONNECTION_WINDOW))
        .enable_push(false)
        .handshake::<_, Bytes>(stream)
        .await
        .map_err(PoolError::connect)?;
    // The upstream's SETTINGS (its stream limit among them) are the first frame it sends; a
    // PING answered means they have been applied. Until then every request would land on
    // this connection under the assumed limit, and h2 would queue the excess on it.
    let ping_pong = connection.ping_pong();
    let closed = Arc::new(AtomicBool::new(false));
    let (settled_tx, settled) = oneshot::channel();
    let driver = tokio::spawn(drive(
        connection,
        ping_pong,
        pool.options.connect_timeout,
        pool.options.keepalive,
        settled_tx,
        closed.clone(),
        pool.address.clone(),
    ));
    match settled.await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => {
            driver.abort();
            return Err(PoolError::connect(format!("{}: {why}", pool.address)));
        }
        Err(_) => {
            return Err(PoolError::connect(format!(
                "{}: the HTTP/2 connection ended during its handshake",
                pool.address
            )))
        }
    }
    let conn = Arc::new(Conn {
        sender,
        active: AtomicUsize::new(0),
        opened: AtomicU64::new(0),
        closed,
        last_used: AtomicU64::new(now_ms()),
        _permit: permit,
    });
    Ok(conn)
}

/// Runs an upstream HTTP/2 connection: drives it, reports on `settled` once the upstream's
/// SETTINGS are in, and with `keepalive` PINGs it every interval, closing it when a PING goes
/// unanswered (a peer that vanished without a FIN would otherwise hold requests until their
/// timeouts). Marks the connection `closed` when it ends, whatever the reason.
async fn drive(
    mut connection: h2::client::Connection<sluice_net::Stream, Bytes>,
    ping_pong: Option<h2::PingPong>,
    connect_timeout: Duration,
    keepalive: Option<sluice_config::Keepalive>,
    settled: oneshot::Sender<Result<(), String>>,
    closed: Arc<AtomicBool>,
    address: Arc<sluice_config::Address>,
) {
    let pings = async {
        let Some(mut ping_pong) = ping_pong else {
            let _ = settled.send(Ok(()));
            return std::future::pending::<()>().await;
        };
        match tokio::time::timeout(connect_timeout, ping_pong.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => {
                let _ = settled.send(Ok(()));
            }
            Ok(Err(e)) => {
                let _ = settled.send(Err(e.to_string()));
                return;
            }
            Err(_) => {
                let _ = settled.send(Err(format!(
                    "no HTTP/2 SETTINGS within {connect_timeout:?}"
                )));
                return;
            }
        }
        let Some(keepalive) = keepalive else {
            return std::future::pending::<()>().await;
        };
        loop {
            tokio::time::sleep(keepalive.interval).await;
            let answered =
                tokio::time::timeout(keepalive.timeout, ping_pong.ping(h2::Ping::opaque())).await;
            if !matches!(answered, Ok(Ok(_))) {
                debug!(host = %address, "keepalive PING unanswered; closing the connection");
                return;
            }
        }
    };
    tokio::select! {
        ended = &mut connection => {
            if let Err(e) = ended {
                debug!(host = %address, error = %e, "upstream HTTP/2 connection ended with an error");
            }
        }
        () = pings => {}
    }
    closed.store(true, Ordering::Release);
}

/// Sends `req` (absolute URI) on a stream of a pooled connection.
pub async fn send(
    pool: &Arc<HostPool>,
    req: Request<Body>,
    deadline: Option<BodyDeadline>,
) -> Result<Response<Body>, PoolError> {
    let mut switches = 0;
    let (slot, sender) = loop {
        let slot = match pool.h2.reserve(&pool.options) {
            Some(slot) => slot,
            // Boxed: growing is rare, and its state (lock, dial, handshake) would otherwise sit
            // in every request's future.
            None => Box::pin(pool.h2.grow(pool)).await?,
        };
        match slot.0.sender.clone().ready().await {
            Ok(sender) => break (slot, sender),
            Err(e) => {
                // Going away or gone: nothing was sent, so another connection may take it.
                slot.0.closed.store(true, Ordering::Release);
                switches += 1;
                if switches >= MAX_CONNECTION_SWITCHES {
                    return Err(PoolError::request(e));
                }
            }
        }
    };
    let mut sender = sender;
    let (parts, body) = req.into_parts();
    let end_of_stream = body.is_end_stream();
    let (response, stream) = sender
        .send_request(Request::from_parts(parts, ()), end_of_stream)
        .map_err(|e| {
            // A request h2 refuses as malformed says nothing about the connection.
            if e.is_go_away() || e.is_io() {
                slot.0.closed.store(true, Ordering::Release);
            }
            PoolError::request(e)
        })?;
    let body_failed = (!end_of_stream).then(|| {
        let (tx, rx) = oneshot::channel();
        tokio::spawn(pump(body, stream, tx));
        rx
    });
    match response.await {
        Ok(resp) => Ok(resp.map(|recv| {
            ResponseBody {
                recv,
                data_done: false,
                deadline,
                _slot: slot,
            }
            .boxed()
        })),
        Err(e) => {
            // A request body that failed (e.g. over max_request_body) explains the reset
            // better than the reset does.
            if let Some(mut failed) = body_failed {
                if let Ok(why) = failed.try_recv() {
                    return Err(PoolError::request(why));
                }
            }
            Err(PoolError::request(e))
        }
    }
}

/// Why the request body stopped flowing.
enum Stop {
    /// The body itself failed; the stream is reset and the error reported.
    Body(BoxError),
    /// The stream ended under us (reset by the upstream, or the connection died).
    Stream,
}

/// Streams the request body into the HTTP/2 stream, within the flow-control window.
async fn pump(mut body: Body, mut stream: SendStream<Bytes>, failed: oneshot::Sender<BoxError>) {
    if let Err(Stop::Body(e)) = pump_frames(&mut body, &mut stream).await {
        let _ = failed.send(e);
        stream.send_reset(Reason::CANCEL);
    }
}

async fn pump_frames(body: &mut Body, stream: &mut SendStream<Bytes>) -> Result<(), Stop> {
    loop {
        // Waiting on the client, watch for the upstream resetting the stream (for instance
        // after answering early): then the rest of the body is not wanted.
        let frame = poll_fn(|cx| {
            if stream.poll_reset(cx).is_ready() {
                return Poll::Ready(Err(Stop::Stream));
            }
            Pin::new(&mut *body).poll_frame(cx).map(Ok)
        })
        .await?;
        match frame {
            None => {
                return stream
                    .send_data(Bytes::new(), true)
                    .map_err(|_| Stop::Stream)
            }
            Some(Err(e)) => return Err(Stop::Body(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    send_data(stream, data, end).await?;
                    if end {
                        return Ok(());
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        return stream.send_trailers(trailers).map_err(|_| Stop::Stream);
                    }
                }
            },
        }
    }
}

/// Sends `data` as the window allows.
async fn send_data(stream: &mut SendStream<Bytes>, mut data: Bytes, end: bool) -> Result<(), Stop> {
    if data.is_empty() {
        if end {
            stream.send_data(data, true).map_err(|_| Stop::Stream)?;
        }
        return Ok(());
    }
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = poll_fn(|cx| {
            if stream.poll_reset(cx).is_ready() {
                return Poll::Ready(Err(Stop::Stream));
            }
            match ready!(stream.poll_capacity(cx)) {
                Some(Ok(n)) => Poll::Ready(Ok(n)),
                Some(Err(_)) | None => Poll::Ready(Err(Stop::Stream)),
            }
        })
        .await?;
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        stream
            .send_data(chunk, end && data.is_empty())
            .map_err(|_| Stop::Stream)?;
    }
    Ok(())
}

/// The upstream's response body; gives flow-control credit back as data is taken, and the
/// stream slot when dropped.
struct ResponseBody {
    recv: RecvStream,
    data_done: bool,
    deadline: Option<BodyDeadline>,
    _slot: Slot,
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = this.poll_upstream(cx);
        // Dropping the body on error resets the stream (CANCEL), so the upstream stops too.
        poll_with_deadline(&mut this.deadline, cx, polled)
    }

    fn is_end_stream(&self) -> bool {
        self.recv.is_end_stream()
    }
}

impl ResponseBody {
    fn poll_upstream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self;
        if !this.data_done {
            match ready!(this.recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = this.recv.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                None => this.data_done = true,
            }
        }
        match ready!(this.recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e.into()))),
        }
    }
}
