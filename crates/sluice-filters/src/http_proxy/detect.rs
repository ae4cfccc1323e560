//! Telling HTTP/2 from HTTP/1 by the first bytes, under a deadline.
//!
//! A client that connects and sends nothing (or half a preface) must not hold a connection
//! forever, and a listener configured for one protocol must not speak the other. So we read
//! the opening bytes ourselves, with `request_headers_timeout` as the deadline, until they
//! either differ from the HTTP/2 connection preface (HTTP/1) or complete it (HTTP/2), then hand
//! hyper the stream with those bytes put back in front ([`Rewind`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use sluice_net::Stream;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// RFC 9113 section 3.4.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
}

/// Why a connection was closed before any request.
#[derive(Debug)]
pub enum Refused {
    /// Nothing decisive arrived before the deadline.
    Timeout,
    /// The peer closed (or the read failed) first.
    Closed,
}

/// Reads until the protocol is known. The bytes read come back inside the returned stream.
/// `early` holds bytes already read from the stream (another protocol's detection).
pub async fn detect(
    mut stream: Stream,
    early: Vec<u8>,
    deadline: Option<Duration>,
) -> Result<(Protocol, Rewind), Refused> {
    let decided = |seen: &[u8]| {
        let n = seen.len().min(PREFACE.len());
        if seen[..n] != PREFACE[..n] {
            Some(Protocol::Http1)
        } else if n == PREFACE.len() {
            Some(Protocol::Http2)
        } else {
            None
        }
    };
    if let Some(protocol) = decided(&early) {
        return Ok((
            protocol,
            Rewind {
                prefix: early,
                pos: 0,
                inner: stream,
            },
        ));
    }
    let mut seen = early;
    let read = async {
        loop {
            let mut buf = [0u8; PREFACE.len()];
            let want = PREFACE.len() - seen.len();
            let n = stream
                .read(&mut buf[..want])
                .await
                .map_err(|_| Refused::Closed)?;
            if n == 0 {
                return Err(Refused::Closed);
            }
            seen.extend_from_slice(&buf[..n]);
            if let Some(protocol) = decided(&seen) {
                return Ok(protocol);
            }
        }
    };
    let protocol = match deadline {
        Some(d) => tokio::time::timeout(d, read)
            .await
            .map_err(|_| Refused::Timeout)??,
        None => read.await?,
    };
    Ok((
        protocol,
        Rewind {
            prefix: seen,
            pos: 0,
            inner: stream,
        },
    ))
}

/// Closes a connection we will not serve without resetting it: our side shuts down, then what
/// the peer still sends is read and dropped (briefly, boundedly) so the kernel sends a FIN
/// rather than an RST, and the peer sees a clean close.
pub async fn close_gracefully(mut stream: Rewind) {
    use tokio::io::AsyncWriteExt;
    let _ = stream.inner.shutdown().await;
    let drain = async {
        let mut scratch = [0u8; 4096];
        let mut total = 0;
        while total < 64 * 1024 {
            match stream.inner.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// A stream whose first bytes were already read: they are replayed before the rest.
pub struct Rewind {
    prefix: Vec<u8>,
    pos: usize,
    inner: Stream,
}

impl Rewind {
    /// A stream whose protocol is already known, with `early` bytes to replay first.
    pub fn new(inner: Stream, early: Vec<u8>) -> Rewind {
        Rewind {
            prefix: early,
            pos: 0,
            inner,
        }
    }

    /// The stream, and the bytes read from it that were not replayed yet.
    pub fn into_parts(mut self) -> (Stream, Vec<u8>) {
        self.prefix.drain(..self.pos);
        (self.inner, self.prefix)
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
