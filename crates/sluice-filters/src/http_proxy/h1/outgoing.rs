//! The sending half of an HTTP/1.1 message body: frames from an `http_body::Body` framed as
//! the head announced (`Content-Length`, chunked, or until close), gathered into vectored
//! writes so that a small message (head and body) usually leaves in one system call.
//! Used for requests going upstream and for responses going back to the client.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame};
use tokio::io::AsyncWrite;

use super::Framing;
use crate::http_proxy::body::{Body, BoxError};

pub enum SendError {
    Io(io::Error),
    Body(BoxError),
}

#[derive(Debug, thiserror::Error)]
enum FramingError {
    #[error("body longer than its content-length")]
    TooLong,
    #[error("body shorter than its content-length")]
    TooShort,
}

/// A message's bytes on their way out: pieces queued for one vectored write, and the body
/// frames still to come, framed as the head announced.
pub struct Outgoing {
    pending: Pending,
    body: Option<Body>,
    framing: Framing,
    /// `Content-Length` bytes still expected.
    left: u64,
    /// Chunk size lines and the last chunk are written here, then split off.
    scratch: BytesMut,
    /// Trailers go out in the last chunk (else they are dropped).
    trailers: bool,
    /// Flush once everything is written and while waiting for the body: a TLS stream may
    /// hold the last records when the socket was full (a TCP socket holds nothing).
    flush: bool,
}

impl Outgoing {
    /// `body` is `None` when `framing` says there is none.
    pub fn new(head: Bytes, framing: Framing, body: Option<Body>) -> Self {
        let mut pending = Pending::default();
        pending.push(head);
        Outgoing {
            pending,
            body: if framing == Framing::Empty {
                None
            } else {
                body
            },
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            scratch: BytesMut::new(),
            trailers: true,
            flush: false,
        }
    }

    /// Drops the body's trailers instead of sending them: for a client that did not say it
    /// accepts them (`TE: trailers`), which may take them for part of the body.
    pub fn without_trailers(mut self) -> Self {
        self.trailers = false;
        self
    }

    /// Writes until everything is out, or the socket or the body has to be waited for.
    /// Frames that are ready are gathered into the write of the head or of the frame before.
    /// Makes sending flush the stream (see the `flush` field); for TLS streams.
    pub fn flushing(mut self, flush: bool) -> Self {
        self.flush = flush;
        self
    }

    pub fn poll_send<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), SendError>> {
        loop {
            if self.pending.room() >= 3 {
                if let Some(body) = &mut self.body {
                    if let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) {
                        self.queue(frame).map_err(SendError::Body)?;
                        continue;
                    }
                }
            }
            if self.pending.is_empty() {
                return if self.body.is_none() {
                    if self.flush {
                        ready!(Pin::new(&mut *io).poll_flush(cx)).map_err(SendError::Io)?;
                    }
                    Poll::Ready(Ok(()))
                } else {
                    if self.flush {
                        // Errors show on the next write; here only the wake-up matters.
                        let _ = Pin::new(&mut *io).poll_flush(cx);
                    }
                    Poll::Pending
                };
            }
            ready!(self.pending.poll_write(io, cx)).map_err(SendError::Io)?;
        }
    }

    fn queue(&mut self, frame: Option<Result<Frame<Bytes>, BoxError>>) -> Result<(), BoxError> {
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Err(e),
            None => return self.finish(None),
        };
        match frame.into_data() {
            Ok(data) => self.queue_data(data),
            Err(frame) => self.finish(frame.into_trailers().ok()),
        }
    }

    fn queue_data(&mut self, data: Bytes) -> Result<(), BoxError> {
        if data.is_empty() {
            return Ok(());
        }
        match self.framing {
            Framing::Length(_) => {
                let len = data.len() as u64;
                if len > self.left {
                    return Err(Box::new(FramingError::TooLong));
                }
                self.left -= len;
                self.pending.push(data);
            }
            Framing::Chunked => {
                let mut digits = [0u8; 16];
                self.scratch.extend_from_slice(hex(data.len(), &mut digits));
                self.scratch.extend_from_slice(b"\r\n");
                self.pending.push(self.scratch.split().freeze());
                self.pending.push(data);
                self.pending.push(Bytes::from_static(b"\r\n"));
            }
            // Delimited by the close that follows (a response to an HTTP/1.0 client).
            Framing::UntilClose => self.pending.push(data),
            Framing::Empty => return Err(Box::new(FramingError::TooLong)),
        }
        Ok(())
    }

    /// The end of the body: the last chunk (with any trailers) when chunked.
    fn finish(&mut self, trailers: Option<HeaderMap>) -> Result<(), BoxError> {
        self.body = None;
        match self.framing {
            Framing::Length(_) if self.left > 0 => Err(Box::new(FramingError::TooShort)),
            Framing::Chunked => {
                self.scratch.extend_from_slice(b"0\r\n");
                let trailers = trailers.filter(|_| self.trailers);
                for (name, value) in trailers.iter().flatten() {
                    self.scratch.extend_from_slice(name.as_str().as_bytes());
                    self.scratch.extend_from_slice(b": ");
                    self.scratch.extend_from_slice(value.as_bytes());
                    self.scratch.extend_from_slice(b"\r\n");
                }
                self.scratch.extend_from_slice(b"\r\n");
                self.pending.push(self.scratch.split().freeze());
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Lower-case hex digits of `n`.
fn hex(mut n: usize, buf: &mut [u8; 16]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Up to four pieces of bytes waiting for the socket.
#[derive(Default)]
struct Pending {
    bufs: [Bytes; 4],
    start: usize,
    end: usize,
}

impl Pending {
    fn room(&self) -> usize {
        self.bufs.len() - self.end
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn push(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        if let Some(slot) = self.bufs.get_mut(self.end) {
            *slot = bytes;
            self.end += 1;
        }
    }

    fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.start < self.end {
            let live = &self.bufs[self.start..self.end];
            let slices: [IoSlice<'_>; 4] =
                std::array::from_fn(|i| IoSlice::new(live.get(i).map_or(&[][..], |b| &b[..])));
            let mut n = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..live.len()]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            while n > 0 && self.start < self.end {
                let first = &mut self.bufs[self.start];
                if n >= first.len() {
                    n -= first.len();
                    *first = Bytes::new();
                    self.start += 1;
                } else {
                    first.advance(n);
                    n = 0;
                }
            }
        }
        self.start = 0;
        self.end = 0;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::hex;

    #[test]
    fn hex_digits() {
        assert_eq!(hex(0, &mut [0; 16]), b"0");
        assert_eq!(hex(0x1a2f, &mut [0; 16]), b"1a2f");
        assert_eq!(hex(usize::MAX, &mut [0; 16]), b"ffffffffffffffff");
    }
}
