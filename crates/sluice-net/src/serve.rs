//! The accept loop of one listener.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn, Instrument};

use crate::chains::ListenerChains;
use crate::filter::ConnectionInfo;
use crate::listener::Listener;
use crate::stream::Stream;

/// Accepts connections until `shutdown` fires, then closes the socket (so new connections are
/// refused) and returns. Each connection runs as its own task in `tracker`, which the caller
/// waits on to drain. The chain is read per connection, so a swapped chain applies to new
/// connections while old ones keep the one they started with.
pub async fn serve(
    name: Arc<str>,
    listener: Listener,
    chains: Arc<ArcSwap<ListenerChains>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    // The address connections arrive at: the bound one, unless bound to a wildcard IP, when
    // each connection's own (one getsockname) is the only way to know it.
    let bound = match &listener {
        Listener::Tcp(l) => l.local_addr().ok(),
        Listener::Unix(..) => None,
    };
    let specific = bound.filter(|a| !a.ip().is_unspecified());
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if let Some(pause) = accept_backoff(&e) {
                    warn!(listener = %name, error = %e, "accept failed; pausing");
                    tokio::time::sleep(pause).await;
                } else {
                    debug!(listener = %name, error = %e, "accept failed");
                }
                continue;
            }
        };
        let info = ConnectionInfo {
            listener: name.clone(),
            peer,
            local: match (specific, &stream) {
                (Some(a), _) => Some(a),
                (None, Stream::Tcp(s)) => s.local_addr().ok(),
                _ => None,
            },
            drain: shutdown.clone(),
            tls: None,
        };
        let span = tracing::debug_span!("conn", listener = %name, peer = %info.peer);
        let chains = chains.load_full();
        let open = chains.cx_stats().open();
        if let Some(chain) = chains.plain() {
            if let Some(fut) = chain.accept(stream, info) {
                tracker.spawn(
                    async move {
                        let _open = open;
                        fut.await
                    }
                    .instrument(span),
                );
            }
        } else {
            // Inspection and handshakes run in the connection's task, never in this loop.
            tracker.spawn(
                async move {
                    let _open = open;
                    chains.serve(stream, info).await
                }
                .instrument(span),
            );
        }
    }
    debug!(listener = %name, "listener closed");
}

/// Out of file descriptors or memory: retrying at once would spin, so wait a little.
/// Per-connection errors (the peer reset before we accepted) are retried immediately.
fn accept_backoff(e: &io::Error) -> Option<Duration> {
    match e.raw_os_error() {
        Some(code) if code == 24 || code == 23 || code == 12 || code == 105 => {
            Some(Duration::from_millis(50))
        }
        _ => None,
    }
}
