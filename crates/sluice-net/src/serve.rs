//! The accept loop of one listener, and the generations of its config.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use parking_lot::Mutex;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn, Instrument};

use crate::chains::ListenerChains;
use crate::filter::ConnectionInfo;
use crate::listener::Listener;
use crate::stream::Stream;

/// One version of a listener's config as its connections see it: the chains they walk, the
/// token that drains them and the handles that end them. A reload that changes the listener publishes a new generation
/// for new connections, then drains the old one's (`drain`: finish what is in flight and
/// close) and, after `drain_timeout`, ends what is left.
pub struct Generation {
    pub chains: Arc<ListenerChains>,
    /// Told to every connection of this generation (`ConnectionInfo::drain`): a child of the
    /// listener's own, so the process's drain reaches it too.
    pub drain: CancellationToken,
    /// This generation's connections, for waiting on its drain.
    pub connections: TaskTracker,
    /// How to end them: aborting a connection's task closes its sockets. (Not a token each
    /// connection selects on: that would cost every poll of every connection.)
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Generation {
    /// The first (or next) generation of a listener whose drain token is `listener_drain`.
    pub fn new(chains: ListenerChains, listener_drain: &CancellationToken) -> Generation {
        Generation {
            chains: Arc::new(chains),
            drain: listener_drain.child_token(),
            connections: TaskTracker::new(),
            tasks: Mutex::new(Vec::new()),
        }
    }

    /// Notes a connection's task, so [`Generation::retire`] can end it.
    fn track(&self, task: AbortHandle) {
        let mut tasks = self.tasks.lock();
        // Finished tasks are dropped when the list is full, before it grows: amortised
        // O(1) per connection, and the list holds at most twice the open connections.
        if tasks.len() == tasks.capacity() {
            tasks.retain(|t| !t.is_finished());
        }
        tasks.push(task);
    }

    /// Drains this generation's connections, then cuts those still open after `timeout`.
    /// Returns when none is left.
    pub async fn retire(&self, timeout: Duration) {
        self.drain.cancel();
        self.connections.close();
        if tokio::time::timeout(timeout, self.connections.wait())
            .await
            .is_err()
        {
            warn!(
                open_connections = self.connections.len(),
                "drain_timeout reached: closing the connections of the replaced config"
            );
            for task in self.tasks.lock().drain(..) {
                task.abort();
            }
            self.connections.wait().await;
        }
    }
}

/// Accepts connections until `shutdown` fires, then closes the socket (so new connections are
/// refused) and returns. Each connection runs as its own task in `tracker`, which the caller
/// waits on to drain. The generation is read per connection, so a swapped one applies to new
/// connections while old ones keep the one they started with.
pub async fn serve(
    name: Arc<str>,
    listener: Listener,
    current: Arc<ArcSwap<Generation>>,
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
        let generation = current.load_full();
        let info = ConnectionInfo {
            listener: name.clone(),
            peer,
            local: match (specific, &stream) {
                (Some(a), _) => Some(a),
                (None, Stream::Tcp(s)) => s.local_addr().ok(),
                _ => None,
            },
            drain: generation.drain.clone(),
            tls: None,
        };
        let span = tracing::debug_span!("conn", listener = %name, peer = %info.peer);
        let chains = generation.chains.clone();
        let open = chains.cx_stats().open();
        if let Some(chain) = chains.plain() {
            if let Some(fut) = chain.accept(stream, info) {
                let task = tracker.spawn(
                    generation.connections.track_future(
                        async move {
                            let _open = open;
                            fut.await
                        }
                        .instrument(span),
                    ),
                );
                generation.track(task.abort_handle());
            }
        } else {
            // Inspection and handshakes run in the connection's task, never in this loop.
            let task = tracker.spawn(
                generation.connections.track_future(
                    async move {
                        let _open = open;
                        chains.serve(stream, info).await
                    }
                    .instrument(span),
                ),
            );
            generation.track(task.abort_handle());
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
