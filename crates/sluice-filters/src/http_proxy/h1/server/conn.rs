//! The client connection, shared by the task that serves it and the request body the proxy
//! reads: both read from it (heads, then body bytes) and both may write to it (the response,
//! and a `100 Continue` when the body is first asked for).
//!
//! A lock makes that sharing safe without `unsafe`. It is held only for one non-blocking poll
//! at a time and is almost never contended: the body is usually polled by the connection's own
//! task; only an HTTP/2 upstream pumps it from another task, and then the two sides take turns
//! for the length of a system call.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body as HttpBody, Frame, SizeHint};
use sluice_net::Stream;
use tokio::io::AsyncWrite;
use tokio_util::io::poll_read_buf;

use crate::http_proxy::body::BoxError;
use crate::http_proxy::h1::chunked::{ChunkError, ChunkedDecoder, Decoded};
use crate::http_proxy::h1::Framing;

/// Reads for heads ask for at least this much room: most heads fit, and it is what an idle
/// keep-alive connection holds.
pub const HEAD_CHUNK: usize = 4 * 1024;
/// Reads for bodies ask for more: fewer system calls for a large upload.
const BODY_CHUNK: usize = 16 * 1024;
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How much of the current request body is still to be read.
pub enum Remaining {
    Length(u64),
    Chunked(ChunkedDecoder),
    Done,
    /// The body could not be read to its end: the connection cannot carry another request.
    Broken,
}

/// The `100 Continue` a client asked for with `Expect: 100-continue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Continue {
    NotAsked,
    /// Owed once the body is first read.
    Owed,
    /// This many of its bytes are written.
    Writing(usize),
    Sent,
    /// The response went out first: the client learns it need not send the body.
    Forfeited,
}

pub struct Conn {
    pub io: Stream,
    /// Bytes read and not yet used: the rest of a head, body bytes, pipelined requests.
    pub rbuf: BytesMut,
    pub body: Remaining,
    pub continue_: Continue,
}

impl Conn {
    /// Reads more into `rbuf`, with room for at least `chunk` bytes when it is low;
    /// `Ok(0)` at the end of the stream.
    pub fn poll_read_more(
        &mut self,
        chunk: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        if self.rbuf.capacity() - self.rbuf.len() < chunk / 8 {
            self.rbuf.reserve(chunk);
        }
        poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf)
    }

    /// Between requests: a read buffer grown for a body is given back, so that an idle
    /// connection holds no more than a head's worth.
    pub fn shrink_idle(&mut self) {
        if self.rbuf.is_empty() && self.rbuf.capacity() > 2 * HEAD_CHUNK {
            self.rbuf = BytesMut::new();
        }
    }

    fn poll_continue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let written = match self.continue_ {
                Continue::Owed => 0,
                Continue::Writing(n) => n,
                _ => return Poll::Ready(Ok(())),
            };
            let rest = CONTINUE.get(written..).unwrap_or_default();
            if rest.is_empty() {
                self.continue_ = Continue::Sent;
                continue;
            }
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.continue_ = Continue::Writing(written + n);
        }
    }

    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        // The client may be waiting for our go-ahead before it sends anything.
        if self.rbuf.is_empty() {
            ready!(self.poll_continue(cx))?;
        } else if self.continue_ == Continue::Owed {
            // It did not wait.
            self.continue_ = Continue::Forfeited;
        }
        loop {
            let buffered = !self.rbuf.is_empty();
            match &mut self.body {
                Remaining::Done => return Poll::Ready(None),
                Remaining::Broken => return Poll::Ready(Some(Err(BodyError::Truncated))),
                Remaining::Length(left) if buffered => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(self.rbuf.len());
                    *left -= n as u64;
                    if *left == 0 {
                        self.body = Remaining::Done;
                    }
                    return Poll::Ready(Some(Ok(self.rbuf.split_to(n).freeze())));
                }
                Remaining::Chunked(decoder) if buffered || decoder.is_done() => {
                    match decoder.decode(&mut self.rbuf) {
                        Ok(Some(Decoded::Data(data))) => return Poll::Ready(Some(Ok(data))),
                        // Trailers of a request have no meaning we forward.
                        Ok(Some(Decoded::Trailers(_) | Decoded::End)) => {
                            self.body = Remaining::Done;
                            return Poll::Ready(None);
                        }
                        Ok(None) => {}
                        Err(e) => {
                            self.body = Remaining::Broken;
                            return Poll::Ready(Some(Err(BodyError::Chunked(e))));
                        }
                    }
                }
                _ => {}
            }
            match ready!(self.poll_read_more(BODY_CHUNK, cx)) {
                Ok(0) => {
                    self.body = Remaining::Broken;
                    return Poll::Ready(Some(Err(BodyError::Truncated)));
                }
                Ok(_) => {}
                Err(e) => {
                    self.body = Remaining::Broken;
                    return Poll::Ready(Some(Err(BodyError::Io(e))));
                }
            }
        }
    }
}

impl From<io::Error> for BodyError {
    fn from(e: io::Error) -> Self {
        BodyError::Io(e)
    }
}

/// Why a request body could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("client closed the connection in the middle of the request body")]
    Truncated,
    #[error("invalid chunked request body")]
    Chunked(#[source] ChunkError),
    #[error("client connection failed while sending the request body")]
    Io(#[source] io::Error),
}

/// The connection, shareable between its task and the request body.
#[allow(clippy::disallowed_types)] // held for one non-blocking poll, never across an await
pub struct Shared(std::sync::Mutex<Conn>);

#[allow(clippy::disallowed_types)]
impl Shared {
    pub fn new(io: Stream, rbuf: BytesMut) -> Arc<Self> {
        Arc::new(Shared(std::sync::Mutex::new(Conn {
            io,
            rbuf,
            body: Remaining::Done,
            continue_: Continue::NotAsked,
        })))
    }

    pub fn lock(&self) -> io::Result<MutexGuard<'_, Conn>> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("connection state poisoned"))
    }

    /// The connection itself, once nothing else holds it (for a protocol upgrade).
    pub fn into_conn(self: Arc<Self>) -> Option<Conn> {
        Arc::into_inner(self)?.0.into_inner().ok()
    }
}

/// Starts the body of a new request.
pub fn begin_body(conn: &mut Conn, framing: Framing, expect_continue: bool) {
    conn.body = match framing {
        Framing::Length(n) if n > 0 => Remaining::Length(n),
        Framing::Chunked => Remaining::Chunked(ChunkedDecoder::default()),
        _ => Remaining::Done,
    };
    conn.continue_ = if expect_continue {
        Continue::Owed
    } else {
        Continue::NotAsked
    };
}

/// A request body read straight off the client connection as the proxy asks for it.
pub struct RequestBody {
    conn: Arc<Shared>,
    /// Known once the end was read: no lock needed to say so.
    done: bool,
    /// `Content-Length`, for the size hint.
    length: Option<u64>,
}

impl RequestBody {
    pub fn new(conn: Arc<Shared>, framing: Framing) -> Self {
        RequestBody {
            conn,
            done: false,
            length: match framing {
                Framing::Length(n) => Some(n),
                _ => None,
            },
        }
    }
}

impl HttpBody for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut conn = match this.conn.lock() {
            Ok(c) => c,
            Err(e) => return Poll::Ready(Some(Err(Box::new(e)))),
        };
        let polled = ready!(conn.poll_body(cx));
        if matches!(conn.body, Remaining::Done) {
            this.done = true;
        }
        Poll::Ready(match polled {
            Some(Ok(data)) => {
                if let Some(left) = &mut this.length {
                    *left -= data.len() as u64;
                }
                Some(Ok(Frame::data(data)))
            }
            Some(Err(e)) => Some(Err(Box::new(e))),
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

/// Writes to the shared connection, taking the lock for each write.
pub struct Writer<'a>(pub &'a Shared);

impl AsyncWrite for Writer<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut conn = self.0.lock()?;
        Pin::new(&mut conn.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut conn = self.0.lock()?;
        Pin::new(&mut conn.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut conn = self.0.lock()?;
        Pin::new(&mut conn.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut conn = self.0.lock()?;
        Pin::new(&mut conn.io).poll_shutdown(cx)
    }
}

/// Skips body bytes already buffered, for a body nobody read; true when the body is over.
pub fn skip_buffered(conn: &mut Conn) -> bool {
    loop {
        match &mut conn.body {
            Remaining::Done => return true,
            Remaining::Broken => return false,
            Remaining::Length(left) => {
                let n = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(conn.rbuf.len());
                conn.rbuf.advance(n);
                *left -= n as u64;
                if *left > 0 {
                    return false;
                }
                conn.body = Remaining::Done;
            }
            Remaining::Chunked(decoder) => match decoder.decode(&mut conn.rbuf) {
                Ok(Some(Decoded::Data(_))) => {}
                Ok(Some(Decoded::Trailers(_) | Decoded::End)) => conn.body = Remaining::Done,
                Ok(None) => return false,
                Err(_) => conn.body = Remaining::Broken,
            },
        }
    }
}
