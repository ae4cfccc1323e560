//! One request and its response on an upstream HTTP/1.1 connection, driven by the task that
//! serves the downstream request: no connection task, no channels, no wake-ups between tasks.
//!
//! Writing the request body and reading the response go on together (an upstream may answer
//! before it has read the whole body, or stream its answer while the body still arrives): the
//! exchange future does both until the response head is in, and from then on the response
//! body does, as it is polled.

use sluice_upstream::breakers::ConnectionPermit;
use std::future::poll_fn;
use std::io;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderName, Method};
use http_body::{Body as HttpBody, Frame, SizeHint};
use sluice_net::Stream;
use tokio_util::io::poll_read_buf;

use super::head::{self, HeadError, Parsed, ResponseHead};
use crate::http_proxy::body::BoxError;
use crate::http_proxy::h1::chunked::{ChunkError, ChunkedDecoder, Decoded};
use crate::http_proxy::h1::outgoing::{Outgoing, SendError};
use crate::http_proxy::h1::Framing;
use crate::http_proxy::pool::{poll_with_deadline, BodyDeadline, HostPool};

/// Reads ask for at least this much room.
const READ_CHUNK: usize = 16 * 1024;
/// A pooled connection keeps its read buffer unless it grew past this.
const MAX_IDLE_BUFFER: usize = 64 * 1024;

/// An upstream connection and what it has read but not yet used.
pub struct Conn {
    io: Stream,
    rbuf: BytesMut,
    /// Working space for parsing response heads.
    fields: Vec<(HeaderName, Range<usize>)>,
    /// Requests it has carried.
    pub served: u32,
    /// Counts the connection under the cluster's `max_connections` while it is open.
    _permit: ConnectionPermit,
}

impl Conn {
    pub fn new(io: Stream, permit: ConnectionPermit) -> Self {
        Conn {
            io,
            rbuf: BytesMut::new(),
            fields: Vec::new(),
            served: 0,
            _permit: permit,
        }
    }

    /// Whether an idle connection can carry a request: the upstream has neither closed it
    /// nor sent anything unasked (answered from tokio's readiness flags, usually without a
    /// syscall; under TLS, records without data such as session tickets are consumed).
    pub fn is_usable(&mut self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    fn reserve_read(&mut self) {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 8 {
            self.rbuf.reserve(READ_CHUNK);
        }
    }

    /// Reads until a final response head is in; interim (1xx) heads are skipped.
    fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
        method: &Method,
        upgrade: bool,
        received: &mut bool,
    ) -> Poll<Result<ResponseHead, ExchangeError>> {
        loop {
            if !self.rbuf.is_empty() {
                *received = true;
                match head::parse_response(&mut self.rbuf, method, upgrade, &mut self.fields)? {
                    Parsed::Final(head) => return Poll::Ready(Ok(head)),
                    Parsed::Interim(len) => {
                        self.rbuf.advance(len);
                        continue;
                    }
                    Parsed::Partial => {}
                }
            }
            self.reserve_read();
            let n = ready!(poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf))
                .map_err(ExchangeError::Io)?;
            if n == 0 {
                return Poll::Ready(Err(ExchangeError::Closed));
            }
        }
    }

    /// The connection as a byte stream after a 101, with what the upstream already sent on
    /// the new protocol.
    pub fn into_upgraded(self) -> (Stream, BytesMut) {
        (self.io, self.rbuf)
    }
}

/// Why a request got no usable response head.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("upstream closed the connection before a complete response head")]
    Closed,
    #[error("upstream connection failed")]
    Io(#[source] io::Error),
    #[error(transparent)]
    Head(#[from] HeadError),
    #[error("request body")]
    Body(#[source] BoxError),
}

impl ExchangeError {
    /// The connection was dead before anything came back: what a pooled connection the
    /// upstream closed while it idled looks like.
    fn looks_stale(&self) -> bool {
        match self {
            ExchangeError::Closed => true,
            ExchangeError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            ),
            _ => false,
        }
    }
}

/// Writes the request (the encoded head, then the body with `framing`) and reads the
/// response head. On success, the request body may still be going out (the `bool`): `out`
/// carries on with it. The connection and the sender are borrowed, not moved in and handed
/// back: both are hundreds of bytes, and every move is a copy.
pub async fn exchange(
    conn: &mut Conn,
    out: &mut Outgoing,
    method: &Method,
    upgrade: bool,
) -> Result<(ResponseHead, bool), Failed> {
    let mut sending = true;
    let mut write_error = None;
    let mut received = false;
    let result = poll_fn(|cx| {
        if sending {
            match out.poll_send(&mut conn.io, cx) {
                Poll::Ready(Ok(())) => sending = false,
                Poll::Ready(Err(SendError::Body(e))) => {
                    return Poll::Ready(Err(ExchangeError::Body(e)))
                }
                // The upstream stopped reading; a response may still say why.
                Poll::Ready(Err(SendError::Io(e))) => {
                    sending = false;
                    write_error = Some(e);
                }
                Poll::Pending => {}
            }
        }
        conn.poll_head(cx, method, upgrade, &mut received)
    })
    .await;
    match result {
        Ok(head) => Ok((head, sending)),
        Err(e) => {
            // A failed write explains a failed read better than the read does.
            let error = match (e, write_error) {
                (ExchangeError::Closed | ExchangeError::Io(_), Some(w)) => ExchangeError::Io(w),
                (e, _) => e,
            };
            Err(Failed {
                stale: !received && error.looks_stale(),
                error,
            })
        }
    }
}

/// A failed exchange, and whether it failed the way a connection closed while pooled does.
#[derive(Debug)]
pub struct Failed {
    pub error: ExchangeError,
    pub stale: bool,
}

/// How much of the response body is left to read.
enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    Done,
}

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("upstream closed the connection in the middle of the response body")]
    Truncated,
    #[error("invalid chunked response body")]
    Chunked(#[from] ChunkError),
    #[error("upstream connection failed while sending the response body")]
    Io(#[from] io::Error),
}

/// A response body read straight off the connection. Read to the end, it gives the
/// connection back to the pool (if the upstream keeps it alive); dropped early, it closes it.
pub struct ResponseBody {
    conn: Option<Conn>,
    /// The request body, if it was still going out when the response head came.
    out: Option<Outgoing>,
    remaining: Remaining,
    keep_alive: bool,
    pool: Arc<HostPool>,
    deadline: Option<BodyDeadline>,
}

impl ResponseBody {
    pub fn new(
        conn: Conn,
        out: Option<Outgoing>,
        framing: Framing,
        keep_alive: bool,
        pool: Arc<HostPool>,
        deadline: Option<BodyDeadline>,
    ) -> Self {
        let remaining = match framing {
            Framing::Empty | Framing::Length(0) => Remaining::Done,
            Framing::Length(n) => Remaining::Length(n),
            Framing::Chunked => Remaining::Chunked(ChunkedDecoder::default()),
            Framing::UntilClose => Remaining::UntilClose,
        };
        let mut body = ResponseBody {
            conn: Some(conn),
            out,
            remaining,
            keep_alive,
            pool,
            deadline,
        };
        if body.is_done() {
            body.give_back();
        }
        body
    }

    fn is_done(&self) -> bool {
        matches!(self.remaining, Remaining::Done)
    }

    /// Pools the connection if it can carry another exchange: kept alive, the request fully
    /// sent and nothing beyond the response read.
    fn give_back(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.keep_alive || self.out.is_some() || !conn.rbuf.is_empty() {
            return;
        }
        if conn.rbuf.capacity() > MAX_IDLE_BUFFER {
            conn.rbuf = BytesMut::new();
        }
        super::pool_conn(&self.pool, conn);
    }

    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(out) = &mut self.out {
            match out.poll_send(&mut conn.io, cx) {
                Poll::Ready(Ok(())) => self.out = None,
                Poll::Ready(Err(SendError::Body(e))) => return Poll::Ready(Some(Err(e))),
                // The upstream stopped reading the request; its response may still complete,
                // but the connection is not reused.
                Poll::Ready(Err(SendError::Io(_))) => {
                    self.out = None;
                    self.keep_alive = false;
                }
                Poll::Pending => {}
            }
        }
        loop {
            let buffered = !conn.rbuf.is_empty();
            match &mut self.remaining {
                Remaining::Done => return Poll::Ready(None),
                Remaining::Length(left) if buffered => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(conn.rbuf.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.remaining = Remaining::Done;
                    }
                    return Poll::Ready(Some(Ok(Frame::data(conn.rbuf.split_to(n).freeze()))));
                }
                Remaining::Chunked(decoder) if buffered || decoder.is_done() => {
                    match decoder.decode(&mut conn.rbuf).map_err(BodyError::from) {
                        Ok(Some(Decoded::Data(data))) => {
                            return Poll::Ready(Some(Ok(Frame::data(data))))
                        }
                        Ok(Some(Decoded::Trailers(trailers))) => {
                            self.remaining = Remaining::Done;
                            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                        }
                        Ok(Some(Decoded::End)) => {
                            self.remaining = Remaining::Done;
                            return Poll::Ready(None);
                        }
                        Ok(None) => {}
                        Err(e) => return Poll::Ready(Some(Err(Box::new(e)))),
                    }
                }
                Remaining::UntilClose if buffered => {
                    return Poll::Ready(Some(Ok(Frame::data(conn.rbuf.split().freeze()))));
                }
                _ => {}
            }
            conn.reserve_read();
            let n = match ready!(poll_read_buf(Pin::new(&mut conn.io), cx, &mut conn.rbuf)) {
                Ok(n) => n,
                Err(e) => return Poll::Ready(Some(Err(Box::new(BodyError::Io(e))))),
            };
            if n == 0 {
                if matches!(self.remaining, Remaining::UntilClose) {
                    self.remaining = Remaining::Done;
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(Box::new(BodyError::Truncated))));
            }
        }
    }
}

impl HttpBody for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = this.poll_body(cx);
        let frame = ready!(poll_with_deadline(&mut this.deadline, cx, polled));
        match &frame {
            None => this.give_back(),
            // A failed body leaves the connection mid-message.
            Some(Err(_)) => {
                this.conn = None;
                this.remaining = Remaining::Done;
            }
            Some(Ok(_)) if this.is_done() => this.give_back(),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining {
            Remaining::Done => SizeHint::with_exact(0),
            Remaining::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
