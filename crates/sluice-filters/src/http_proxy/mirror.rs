//! Request mirroring (shadow traffic): a copy of the request goes to another cluster, and
//! whatever happens to it never delays or fails the primary request.
//!
//! The primary body is wrapped in a tee that copies each data frame into a bounded channel
//! feeding the shadow request's body. If the shadow cannot keep up (the channel is full), it is
//! cut off: its body ends with an error so the shadow upstream sees an aborted request rather
//! than a silently truncated one, and the primary goes on at its own pace. The shadow request
//! runs in its own task; its response is read and discarded.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::{Request, Uri, Version};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::sync::mpsc;
use tracing::debug;

use super::body::{empty, Body, BoxError};
use super::upstream::UpstreamCluster;
use sluice_upstream::LbContext;

/// Data frames the shadow may lag behind the primary before it is cut off.
const SHADOW_BACKLOG: usize = 64;

/// `host:port` -> `host-shadow:port` (Envoy's convention, so shadow traffic is recognisable).
pub fn shadow_authority(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port))
            if !host.ends_with(']')
                && !host.contains(':')
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{host}-shadow:{port}")
        }
        Some((host, port)) if host.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{host}-shadow:{port}")
        }
        _ => format!("{authority}-shadow"),
    }
}

/// Sends a copy of `req` to `shadow`, replacing `req`'s body with a tee when it has one.
pub fn spawn(
    req: &mut Request<Body>,
    shadow: &UpstreamCluster,
    authority: &str,
    http2: bool,
    timeout: Duration,
) {
    let Ok(host) = shadow.pick("", &LbContext::default(), &[]) else {
        return;
    };
    let Some(pool) = shadow.pool(&host).cloned() else {
        return;
    };
    let authority = shadow_authority(authority);
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let Ok(uri) = Uri::builder()
        .scheme("http")
        .authority(authority.as_str())
        .path_and_query(path)
        .build()
    else {
        return;
    };
    let body = if req.body().is_end_stream() {
        empty()
    } else {
        let primary = std::mem::replace(req.body_mut(), empty());
        let (tee, copy) = tee(primary);
        *req.body_mut() = tee.boxed();
        copy.boxed()
    };
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = uri;
    *copy.version_mut() = if http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    *copy.headers_mut() = req.headers().clone();
    if http2 {
        copy.headers_mut().remove(HOST);
    } else if let Ok(v) = HeaderValue::from_str(&authority) {
        copy.headers_mut().insert(HOST, v);
    }
    let cluster = shadow.cluster.name.clone();
    tokio::spawn(async move {
        let sent = async {
            let resp = pool.send(copy, http2, None, false).await?;
            let status = resp.status();
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                frame?;
            }
            Ok::<_, BoxError>(status)
        };
        match tokio::time::timeout(timeout, sent).await {
            Ok(Ok(status)) => debug!(%cluster, %status, "mirrored request done"),
            Ok(Err(e)) => debug!(%cluster, error = %e, "mirrored request failed"),
            Err(_) => debug!(%cluster, "mirrored request timed out"),
        }
    });
}

fn tee(inner: Body) -> (Tee, Copy) {
    let (tx, rx) = mpsc::channel(SHADOW_BACKLOG);
    let cut = Arc::new(AtomicBool::new(false));
    (
        Tee {
            inner,
            tx: Some(tx),
            cut: cut.clone(),
        },
        Copy { rx, cut },
    )
}

/// The primary body, copying data frames to the shadow as they pass.
struct Tee {
    inner: Body,
    tx: Option<mpsc::Sender<Bytes>>,
    cut: Arc<AtomicBool>,
}

impl HttpBody for Tee {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(tx)) = (f.data_ref(), &this.tx) {
                    if tx.try_send(data.clone()).is_err() {
                        this.cut.store(true, Ordering::Release);
                        this.tx = None;
                    }
                }
            }
            Some(Err(_)) => {
                this.cut.store(true, Ordering::Release);
                this.tx = None;
            }
            None => this.tx = None,
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

/// The shadow's body: the frames the tee copied, or an error if it was cut off.
struct Copy {
    rx: mpsc::Receiver<Bytes>,
    cut: Arc<AtomicBool>,
}

impl HttpBody for Copy {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match ready!(self.rx.poll_recv(cx)) {
            Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
            None if self.cut.load(Ordering::Acquire) => Poll::Ready(Some(Err(
                "mirrored request fell behind the primary and was cut off".into(),
            ))),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_hosts() {
        assert_eq!(shadow_authority("example.com"), "example.com-shadow");
        assert_eq!(
            shadow_authority("example.com:8080"),
            "example.com-shadow:8080"
        );
        assert_eq!(shadow_authority("[::1]:80"), "[::1]-shadow:80");
    }
}
