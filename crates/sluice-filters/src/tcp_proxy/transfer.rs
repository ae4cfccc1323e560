//! Moving bytes both ways between two streams.
//!
//! Why not `tokio::io::copy_bidirectional`: we need an idle timeout that sees traffic in either
//! direction, and buffers that exist only while a connection actually carries data. Each
//! direction owns one fixed buffer; it reads only when the buffer is empty, so a slow reader
//! on one side stops us reading from the other (back-pressure) and memory never grows with the
//! transfer. A buffer is held only while bytes are in flight (see `pool.rs`): an idle connection
//! holds none. A read EOF on one side becomes a write shutdown (FIN) on the other, so
//! half-closed protocols work; an error on either side ends both, with a reset so the peer
//! sees it too.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use sluice_net::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::pool;

#[derive(Debug, Clone, Copy)]
pub struct TransferSettings {
    pub buffer_size: usize,
    pub idle_timeout: Option<Duration>,
}

/// How a transfer ended.
#[derive(Debug)]
pub enum TransferEnd {
    /// Both sides closed their write side cleanly.
    Closed { sent: u64, received: u64 },
    /// No bytes moved for the idle timeout.
    Idle { sent: u64, received: u64 },
    /// A read or write failed; both sides were reset.
    Error {
        error: io::Error,
        sent: u64,
        received: u64,
    },
}

impl TransferEnd {
    /// Bytes moved: (from `a` to `b`, from `b` to `a`).
    pub fn bytes(&self) -> (u64, u64) {
        match self {
            TransferEnd::Closed { sent, received }
            | TransferEnd::Idle { sent, received }
            | TransferEnd::Error { sent, received, .. } => (*sent, *received),
        }
    }
}

/// One direction: reads from one stream into its buffer and writes the buffer to the other.
struct Direction {
    buf: Option<Box<[u8]>>,
    pos: usize,
    cap: usize,
    eof: bool,
    done: bool,
    bytes: u64,
    /// Written since the last flush: a TLS stream may hold records back when the socket was
    /// full, and must be flushed before the direction waits on its source again.
    unflushed: bool,
}

impl Direction {
    fn new() -> Self {
        Direction {
            buf: None,
            pos: 0,
            cap: 0,
            eof: false,
            done: false,
            bytes: 0,
            unflushed: false,
        }
    }

    /// Moves bytes until the source would block or ends; `moved` reports any progress.
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        from: &mut Stream,
        to: &mut Stream,
        size: usize,
        moved: &mut bool,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            if self.unflushed && self.pos == self.cap {
                ready!(Pin::new(&mut *to).poll_flush(cx))?;
                self.unflushed = false;
            }
            if self.pos == self.cap && !self.eof {
                // Empty: the buffer is only borrowed for the read and kept if bytes arrive.
                let mut buf = self.buf.take().unwrap_or_else(|| pool::take(size));
                let mut rb = ReadBuf::new(&mut buf);
                let read = Pin::new(&mut *from).poll_read(cx, &mut rb);
                let n = rb.filled().len();
                match read {
                    Poll::Ready(Ok(())) if n > 0 => {
                        self.buf = Some(buf);
                        self.pos = 0;
                        self.cap = n;
                        *moved = true;
                    }
                    other => {
                        pool::give(buf);
                        match other {
                            Poll::Ready(Ok(())) => self.eof = true,
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => return Poll::Pending,
                        }
                    }
                }
            }
            while self.pos < self.cap {
                let Some(buf) = self.buf.as_deref() else {
                    break;
                };
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &buf[self.pos..self.cap]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.bytes += n as u64;
                self.unflushed = to.is_tls();
                *moved = true;
            }
            if self.eof {
                ready!(Pin::new(&mut *to).poll_shutdown(cx))?;
                self.done = true;
            }
        }
    }
}

impl Drop for Direction {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            pool::give(buf);
        }
    }
}

/// Proxies `a` <-> `b` until both directions end, one fails, or the idle timeout passes.
pub async fn transfer(mut a: Stream, mut b: Stream, settings: TransferSettings) -> TransferEnd {
    let mut a_to_b = Direction::new();
    let mut b_to_a = Direction::new();
    let size = settings.buffer_size;
    let idle = settings.idle_timeout;
    let far_future = Duration::from_secs(86400 * 365);
    let sleep = tokio::time::sleep(idle.unwrap_or(far_future));
    tokio::pin!(sleep);
    let mut last_activity = Instant::now();

    let end = poll_fn(|cx| {
        let mut moved = false;
        let mut failed = None;
        if let Poll::Ready(Err(e)) = a_to_b.poll(cx, &mut a, &mut b, size, &mut moved) {
            failed = Some(e);
        } else if let Poll::Ready(Err(e)) = b_to_a.poll(cx, &mut b, &mut a, size, &mut moved) {
            failed = Some(e);
        }
        let (sent, received) = (a_to_b.bytes, b_to_a.bytes);
        if let Some(error) = failed {
            return Poll::Ready(TransferEnd::Error {
                error,
                sent,
                received,
            });
        }
        if a_to_b.done && b_to_a.done {
            return Poll::Ready(TransferEnd::Closed { sent, received });
        }
        let Some(idle) = idle else {
            return Poll::Pending;
        };
        if moved {
            // Cheap: we only note the time; the timer is re-armed lazily when it fires.
            last_activity = Instant::now();
        }
        while sleep.as_mut().poll(cx).is_ready() {
            let deadline = last_activity + idle;
            if Instant::now() >= deadline {
                return Poll::Ready(TransferEnd::Idle { sent, received });
            }
            sleep.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await;

    if matches!(end, TransferEnd::Error { .. }) {
        reset(&a);
        reset(&b);
    }
    end
}

/// Makes the coming close send a TCP RST, so the peer learns the connection failed rather
/// than seeing a clean end of stream.
fn reset(s: &Stream) {
    if let Some(t) = s.tcp() {
        let _ = socket2::SockRef::from(t).set_linger(Some(Duration::ZERO));
    }
}
