//! One byte stream type for every transport we accept or dial, so filters are not generic.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A connected socket: TCP or Unix-domain, possibly under TLS.
///
/// TLS is a variant rather than a wrapper type so filters stay non-generic; it is boxed so a
/// plaintext `Stream` stays as small as before, and the plaintext arms of each `match` are
/// what they were (one more arm, never taken, on the hot path).
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    /// A downstream connection whose TLS handshake is done; reads and writes are plaintext.
    Tls(Box<tokio_rustls::server::TlsStream<Stream>>),
    /// An upstream connection whose TLS handshake (as the client) is done.
    TlsClient(Box<tokio_rustls::client::TlsStream<Stream>>),
}

/// The other end of a connection, as far as we know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddr {
    Tcp(SocketAddr),
    /// Unix peers are usually unnamed.
    Unix,
}

impl std::fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerAddr::Tcp(a) => write!(f, "{a}"),
            PeerAddr::Unix => write!(f, "unix"),
        }
    }
}

impl Stream {
    /// Reads whatever is already readable, without waiting: `WouldBlock` when nothing is
    /// (tokio answers that from its readiness flags, without a syscall, when the last read
    /// drained the socket). Pools use it to tell an idle connection the peer has closed.
    ///
    /// Under TLS this reads through the TLS layer, once, with a waker that does nothing: records
    /// that carry no data (TLS 1.3 session tickets, key updates) are consumed and leave it
    /// `WouldBlock`, while the peer's close (`close_notify` or FIN) reads as 0.
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.try_read(buf),
            Stream::Unix(s) => s.try_read(buf),
            Stream::Tls(_) | Stream::TlsClient(_) => {
                let mut cx = Context::from_waker(std::task::Waker::noop());
                let mut read = ReadBuf::new(buf);
                match Pin::new(self).poll_read(&mut cx, &mut read) {
                    Poll::Ready(Ok(())) => Ok(read.filled().len()),
                    Poll::Ready(Err(e)) => Err(e),
                    Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                }
            }
        }
    }

    /// Whether TLS runs over the stream (either side).
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_) | Stream::TlsClient(_))
    }

    /// The TCP socket underneath, TLS or not.
    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(_) => None,
            Stream::Tls(s) => s.get_ref().0.tcp(),
            Stream::TlsClient(s) => s.get_ref().0.tcp(),
        }
    }

    /// Waits until the stream is readable (or closed), without reading: registering for a
    /// wake-up costs less than a read attempt that would find nothing.
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
            // The socket's readiness: new records (data, or the peer's close_notify) arrived.
            Stream::Tls(s) => s.get_ref().0.poll_read_ready(cx),
            Stream::TlsClient(s) => s.get_ref().0.poll_read_ready(cx),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// Half-closes the write side (TCP FIN), leaving reads open.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Stream::TlsClient(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }
}
