//! Our own bodies for the HTTP/1 errors hyper answers by itself.
//!
//! When a request head cannot be parsed (malformed: 400, URI too long: 414, over
//! `max_request_headers_kb` or the header count: 431), hyper writes a bare status line with an
//! empty body and closes, before any service sees the request. Every other local reply of ours
//! names its cause and the listener, so these should too.
//!
//! hyper offers no hook for it, so [`ErrorReplies`] sits between hyper and the socket and
//! recognises hyper's own answer by *when* it is written: hyper only parses a new head when the
//! previous exchange is over, and it only marks an exchange over after flushing it. So a write
//! that comes while no exchange is in progress and after such a flush (or before the first
//! exchange) is not a response the service produced; if it starts with `HTTP/1.x 400|414|431`
//! it is hyper's parse-error answer, and it is replaced with ours. [`Exchanges`] keeps the count:
//! the service opens an [`Exchange`] per request and the response body carries it until hyper
//! is done with it. A protocol upgrade (the connection becomes a tunnel) turns the rewriting off.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::local_reply::headers_too_large;

/// Per-connection bookkeeping shared by the service and the IO wrapper. One connection is one
/// task, so relaxed atomics suffice: they only make the shared state `Sync`.
#[derive(Default)]
pub struct Exchanges {
    begun: AtomicU32,
    finished: AtomicU32,
    /// Set when a flush completed with no exchange in progress; cleared when one begins.
    idle_flushed: AtomicBool,
    /// The connection was upgraded: whatever follows is not ours to interpret.
    tunnel: AtomicBool,
}

impl Exchanges {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            // Before the first request nothing is in flight and nothing was written.
            idle_flushed: AtomicBool::new(true),
            ..Self::default()
        })
    }

    /// Called when hyper hands the service a request.
    pub fn begin(self: &Arc<Self>) -> Exchange {
        self.begun.fetch_add(1, Ordering::Relaxed);
        self.idle_flushed.store(false, Ordering::Relaxed);
        Exchange(self.clone())
    }

    fn idle(&self) -> bool {
        self.begun.load(Ordering::Relaxed) == self.finished.load(Ordering::Relaxed)
    }

    fn writes_are_hypers_own(&self) -> bool {
        !self.tunnel.load(Ordering::Relaxed)
            && self.idle()
            && self.idle_flushed.load(Ordering::Relaxed)
    }
}

/// One request/response exchange; over when dropped (hyper drops the response body after
/// buffering its last bytes).
pub struct Exchange(Arc<Exchanges>);

impl Exchange {
    /// The connection turns into a tunnel (101 Switching Protocols).
    pub fn tunnel(&self) {
        self.0.tunnel.store(true, Ordering::Relaxed);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its [`Exchange`] open until hyper drops it.
pub struct Tracked<B> {
    inner: B,
    _exchange: Exchange,
}

impl<B> Tracked<B> {
    pub fn new(inner: B, exchange: Exchange) -> Self {
        Self {
            inner,
            _exchange: exchange,
        }
    }
}

impl<B: HttpBody + Unpin> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// What the reply bodies say about the limits in force.
#[derive(Clone)]
pub struct Limits {
    pub listener: Arc<str>,
    pub max_request_headers_kb: u32,
    pub max_headers_count: usize,
}

enum Mode {
    /// Writes go through.
    Pass,
    /// Our reply is being written; whatever hyper writes is dropped.
    Replacing { reply: Bytes, written: usize },
}

/// The IO hyper's HTTP/1 server connection is given: passes everything through except hyper's
/// own parse-error answers, which it replaces.
pub struct ErrorReplies<T> {
    inner: T,
    exchanges: Arc<Exchanges>,
    limits: Limits,
    mode: Mode,
}

impl<T> ErrorReplies<T> {
    pub fn new(inner: T, exchanges: Arc<Exchanges>, limits: Limits) -> Self {
        Self {
            inner,
            exchanges,
            limits,
            mode: Mode::Pass,
        }
    }
}

/// The status of a parse-error answer hyper would write, if `head` is one.
fn hyper_error_status(head: &[u8]) -> Option<u16> {
    let rest = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))?;
    match rest.get(..4)? {
        b"400 " => Some(400),
        b"414 " => Some(414),
        b"431 " => Some(431),
        _ => None,
    }
}

/// The full reply we write instead.
fn reply(status: u16, limits: &Limits) -> Bytes {
    let (reason, body) = match status {
        431 => (
            "Request Header Fields Too Large",
            headers_too_large(
                &limits.listener,
                limits.max_request_headers_kb,
                limits.max_headers_count,
            ),
        ),
        414 => (
            "URI Too Long",
            format!(
                "URI too long: listener \"{}\" refused the request line\n",
                limits.listener
            ),
        ),
        _ => (
            "Bad Request",
            format!(
                "bad request: listener \"{}\" could not parse the request line or headers\n",
                limits.listener
            ),
        ),
    };
    Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

impl<T: AsyncWrite + Unpin> ErrorReplies<T> {
    /// Writes what is left of our reply; Ready once it is all out.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Mode::Replacing { reply, written } = &mut self.mode {
            while *written < reply.len() {
                let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &reply[*written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                *written += n;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Switches to replacing if `first` (the start of a write) is hyper's own error answer.
    fn intercept(&mut self, first: &[u8]) {
        if !matches!(self.mode, Mode::Pass) || !self.exchanges.writes_are_hypers_own() {
            return;
        }
        if let Some(status) = hyper_error_status(first) {
            self.mode = Mode::Replacing {
                reply: reply(status, &self.limits),
                written: 0,
            };
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ErrorReplies<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ErrorReplies<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.intercept(buf);
        match this.mode {
            Mode::Pass => Pin::new(&mut this.inner).poll_write(cx, buf),
            Mode::Replacing { .. } => {
                ready!(this.drive(cx))?;
                Poll::Ready(Ok(buf.len()))
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
            this.intercept(first);
        }
        match this.mode {
            Mode::Pass => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            Mode::Replacing { .. } => {
                ready!(this.drive(cx))?;
                Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()))
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drive(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        if this.exchanges.idle() {
            this.exchanges.idle_flushed.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drive(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn limits() -> Limits {
        Limits {
            listener: Arc::from("web"),
            max_request_headers_kb: 60,
            max_headers_count: 100,
        }
    }

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Sat, 21 Nov 2026 10:00:00 GMT\r\n\r\n";

    async fn written(
        ex: &Arc<Exchanges>,
        steps: impl FnOnce(&Arc<Exchanges>) -> Vec<&'static [u8]>,
    ) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut io = ErrorReplies::new(&mut out, ex.clone(), limits());
            for chunk in steps(ex) {
                io.write_all(chunk).await.unwrap();
                io.flush().await.unwrap();
            }
        }
        out
    }

    #[tokio::test]
    async fn replaces_an_error_before_any_exchange() {
        let ex = Exchanges::new();
        let out = written(&ex, |_| vec![HYPER_431]).await;
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.contains("max_request_headers_kb"), "{text}");
        assert!(text.contains("listener \"web\""), "{text}");
    }

    #[tokio::test]
    async fn a_service_response_passes_untouched() {
        let ex = Exchanges::new();
        let exchange = ex.begin();
        let out = written(&ex, |_| vec![HYPER_431]).await;
        assert_eq!(out, HYPER_431);
        drop(exchange);
    }

    #[tokio::test]
    async fn the_tail_of_a_finished_exchange_passes_then_an_error_is_replaced() {
        let ex = Exchanges::new();
        let mut out = Vec::new();
        {
            let mut io = ErrorReplies::new(&mut out, ex.clone(), limits());
            let exchange = ex.begin();
            io.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            drop(exchange);
            // Written after the body ended but before the flush: still the old response.
            io.write_all(b"HTTP/1.1 400 in a chunk, unflushed\r\n")
                .await
                .unwrap();
            io.flush().await.unwrap();
            io.write_all(HYPER_431).await.unwrap();
            io.flush().await.unwrap();
        }
        let text = String::from_utf8(out).unwrap();
        let (first, second) = text.split_once("unflushed\r\n").unwrap();
        assert!(first.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(second.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(second.contains("content-length: "), "{text}");
        assert!(!second.contains("date:"), "hyper's bytes leaked: {text}");
    }

    #[tokio::test]
    async fn a_tunnel_is_never_rewritten() {
        let ex = Exchanges::new();
        let exchange = ex.begin();
        exchange.tunnel();
        drop(exchange);
        let out = written(&ex, |_| vec![b"", HYPER_431]).await;
        assert_eq!(out, HYPER_431);
    }

    #[test]
    fn only_parse_error_statuses_are_recognised() {
        assert_eq!(
            hyper_error_status(b"HTTP/1.1 400 Bad Request\r\n"),
            Some(400)
        );
        assert_eq!(
            hyper_error_status(b"HTTP/1.1 414 URI Too Long\r\n"),
            Some(414)
        );
        assert_eq!(hyper_error_status(b"HTTP/1.1 404 Not Found\r\n"), None);
        assert_eq!(hyper_error_status(b"HTTP/1.1 4311"), None);
        assert_eq!(hyper_error_status(b"0\r\n\r\n"), None);
    }
}
