//! One multiplexed connection to an upstream host: many calls in flight at once, told apart by
//! request ids this connection assigns.
//!
//! One task owns the socket, the id counter and the table of calls waiting for responses, so
//! nothing is locked: callers hand it frames over a channel and get the response through a
//! oneshot. The task reads, writes and takes new calls in one `select!`, so a peer that is slow
//! to read our requests never stops us reading its responses (no write/write deadlock).
//!
//! A connection that hears nothing from its peer for a while sends the protocol's heartbeat
//! and closes if that goes unanswered too: a peer that vanished without a FIN (a crashed host,
//! a NAT entry gone) is found before a call waits its whole timeout on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use rustc_hash::FxHashMap;
use sluice_net::Stream;
use sluice_upstream::breakers::ConnectionPermit;
use sluice_xprotocol::{Frame, FrameKind, Protocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, Duration, Instant};
use tracing::debug;

/// Write at most this much before looking at the socket again.
const WRITE_BATCH: usize = 64 * 1024;

/// What callers send the connection task.
enum Outgoing {
    /// A request that waits for its response.
    Call(Frame, oneshot::Sender<Answer>),
    /// A request with no response (one-way).
    Oneway(Frame),
}

/// When a quiet connection sends a heartbeat, and how long the answer may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Silence (nothing read) of between one and two of these sends a heartbeat.
    pub interval: Duration,
    /// A heartbeat with nothing read back within this closes the connection.
    pub timeout: Duration,
}

/// Liveness of the peer, checked on a timer rather than per read so the read path only sets
/// a flag.
struct Liveness {
    heartbeat: Heartbeat,
    /// Something was read since the timer last fired.
    heard: bool,
    /// A heartbeat is out and nothing has been read since.
    waiting: bool,
}

/// What the liveness timer decided.
enum Beat {
    /// All is well; wait this long.
    Wait(Duration),
    /// Send a heartbeat, then wait this long for any answer.
    Ping(Duration),
    /// The peer said nothing in answer to a heartbeat.
    Dead,
}

impl Liveness {
    fn tick(&mut self) -> Beat {
        if std::mem::take(&mut self.heard) {
            self.waiting = false;
            Beat::Wait(self.heartbeat.interval)
        } else if self.waiting {
            Beat::Dead
        } else {
            self.waiting = true;
            Beat::Ping(self.heartbeat.timeout)
        }
    }
}

/// The callers' side of a connection.
pub struct Conn {
    tx: mpsc::UnboundedSender<Outgoing>,
    open: Arc<AtomicBool>,
}

/// Why a call got no response on this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// The connection had already closed: the request was not sent.
    Closed,
    /// The connection closed (or failed) with the request sent or queued.
    Reset,
    /// The response declared this many bytes, over `max_frame_size`: it was passed over
    /// (the connection and its other calls carry on).
    TooLarge(usize),
    /// The protocol could not encode the request (a header change it cannot carry): it was
    /// not sent.
    Unencodable(String),
}

/// What a waiting call is handed: its response, or why there is none.
type Answer = Result<Frame, Lost>;

impl Conn {
    /// Starts the task that serves `stream`; it holds `permit` (a `max_connections` slot) for
    /// as long as the socket is open. With `heartbeat` (and a protocol that has heartbeats), a
    /// quiet peer is pinged and dropped if it stays quiet.
    pub fn spawn(
        stream: Stream,
        protocol: Arc<dyn Protocol>,
        max_frame_size: usize,
        heartbeat: Option<Heartbeat>,
        permit: ConnectionPermit,
    ) -> Arc<Conn> {
        let (tx, rx) = mpsc::unbounded_channel();
        let open = Arc::new(AtomicBool::new(true));
        let liveness = heartbeat
            .filter(|_| protocol.heartbeat(1).is_some())
            .map(|heartbeat| Liveness {
                heartbeat,
                heard: false,
                waiting: false,
            });
        let task = Task {
            liveness,
            protocol,
            max_frame_size,
            pending: FxHashMap::default(),
            discard: 0,
            next_id: 1,
            sweep_at: 1024,
            wbuf: BytesMut::with_capacity(8 * 1024),
        };
        tokio::spawn(task.run(stream, rx, open.clone(), permit));
        Arc::new(Conn { tx, open })
    }

    /// Whether new calls can still go out on this connection.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Sends `frame` (its id is replaced by one of this connection's) and waits for the
    /// response, whose id is still the connection's: the caller restores its own.
    pub async fn call(&self, frame: Frame) -> Result<Frame, Lost> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Outgoing::Call(frame, tx))
            .map_err(|_| Lost::Closed)?;
        rx.await.map_err(|_| Lost::Reset)?
    }

    /// Sends a one-way request.
    pub fn send_oneway(&self, frame: Frame) -> Result<(), Lost> {
        self.tx
            .send(Outgoing::Oneway(frame))
            .map_err(|_| Lost::Closed)
    }
}

struct Task {
    liveness: Option<Liveness>,
    protocol: Arc<dyn Protocol>,
    max_frame_size: usize,
    /// Calls sent and not answered, by the id this connection gave them.
    pending: FxHashMap<u64, oneshot::Sender<Answer>>,
    /// Bytes of an oversized frame still to pass over.
    discard: usize,
    next_id: u64,
    /// When `pending` reaches this size, calls whose callers gave up (timed out) are dropped.
    sweep_at: usize,
    wbuf: BytesMut,
}

impl Task {
    async fn run(
        mut self,
        stream: Stream,
        mut rx: mpsc::UnboundedReceiver<Outgoing>,
        open: Arc<AtomicBool>,
        _permit: ConnectionPermit,
    ) {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let mut rbuf = BytesMut::new();
        let mut taking = true;
        let first_wait = self
            .liveness
            .as_ref()
            .map_or(Duration::ZERO, |l| l.heartbeat.interval);
        let timer = sleep(first_wait);
        tokio::pin!(timer);
        loop {
            crate::rpc_proxy::downstream::make_room(&mut rbuf);
            tokio::select! {
                read = rd.read_buf(&mut rbuf) => match read {
                    Ok(0) => break,
                    Ok(_) => {
                        if let Some(l) = &mut self.liveness {
                            l.heard = true;
                        }
                        if !self.on_readable(&mut rbuf) {
                            break;
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "upstream rpc connection read failed");
                        break;
                    }
                },
                out = rx.recv(), if taking => match out {
                    Some(out) => {
                        self.enqueue(out);
                        while self.wbuf.len() < WRITE_BATCH {
                            match rx.try_recv() {
                                Ok(out) => self.enqueue(out),
                                Err(_) => break,
                            }
                        }
                    }
                    // Every caller's handle is gone (the host left its cluster): finish
                    // what is in flight, then close.
                    None => taking = false,
                },
                written = wr.write(&self.wbuf), if !self.wbuf.is_empty() => match written {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.wbuf.advance(n),
                },
                () = &mut timer, if self.liveness.is_some() => {
                    let Some(beat) = self.liveness.as_mut().map(Liveness::tick) else {
                        continue;
                    };
                    let wait = match beat {
                        Beat::Wait(wait) => wait,
                        Beat::Ping(wait) => {
                            let id = self.next_free_id();
                            if let Some(ping) = self.protocol.heartbeat(id) {
                                let _ = self.write(&ping);
                            }
                            wait
                        }
                        Beat::Dead => {
                            debug!("upstream rpc connection: no answer to a heartbeat; closing");
                            break;
                        }
                    };
                    timer.as_mut().reset(Instant::now() + wait);
                }
            }
            if !taking && self.pending.is_empty() && self.wbuf.is_empty() {
                let _ = wr.shutdown().await;
                break;
            }
        }
        open.store(false, Ordering::Release);
        // Waiting callers see their oneshot dropped (a reset); queued ones the same once the
        // receiver is gone.
        drop(rx);
    }

    /// Decodes what arrived; false when the connection must close.
    fn on_readable(&mut self, rbuf: &mut BytesMut) -> bool {
        loop {
            if self.discard > 0 {
                let n = self.discard.min(rbuf.len());
                rbuf.advance(n);
                self.discard -= n;
                if self.discard > 0 {
                    return true;
                }
            }
            match self.protocol.decode(rbuf, self.max_frame_size) {
                Ok(Some(frame)) => match frame.kind {
                    FrameKind::Response => {
                        if let Some(caller) = self.pending.remove(&frame.id) {
                            let _ = caller.send(Ok(frame));
                        }
                    }
                    FrameKind::HeartbeatRequest => {
                        if let Some(reply) = self.protocol.heartbeat_reply(&frame) {
                            let _ = self.write(&reply);
                        }
                    }
                    // Our own heartbeats' answers, and requests an upstream should not send.
                    _ => {}
                },
                Ok(None) => return true,
                // One response over the limit is that call's failure, not its neighbours':
                // answer it and pass over the frame's bytes.
                Err(e) => match e.skip {
                    Some(skip) => {
                        debug!(error = %e, "upstream frame over max_frame_size; skipped");
                        if let Some(caller) = self.pending.remove(&skip.id) {
                            let _ = caller.send(Err(Lost::TooLarge(skip.len)));
                        }
                        self.discard = skip.len;
                    }
                    None => {
                        debug!(error = %e, "upstream sent an undecodable frame; closing");
                        return false;
                    }
                },
            }
        }
    }

    fn enqueue(&mut self, out: Outgoing) {
        match out {
            Outgoing::Call(mut frame, caller) => {
                if caller.is_closed() {
                    return;
                }
                let id = self.next_free_id();
                frame.id = id;
                if let Err(e) = self.write(&frame) {
                    let _ = caller.send(Err(Lost::Unencodable(e)));
                    return;
                }
                if self.pending.len() >= self.sweep_at {
                    self.pending.retain(|_, c| !c.is_closed());
                    self.sweep_at = (self.pending.len() * 2).max(1024);
                }
                self.pending.insert(id, caller);
            }
            Outgoing::Oneway(mut frame) => {
                frame.id = self.next_free_id();
                let _ = self.write(&frame);
            }
        }
    }

    /// The next id not in use, wrapping below the protocol's largest.
    fn next_free_id(&mut self) -> u64 {
        let max = self.protocol.max_request_id().max(1);
        loop {
            let id = self.next_id;
            self.next_id = if id >= max { 1 } else { id + 1 };
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    /// Appends `frame`; on an encode error nothing of it stays in the buffer, and the frame
    /// is dropped (a waiting caller is told why).
    fn write(&mut self, frame: &Frame) -> Result<(), String> {
        let before = self.wbuf.len();
        self.protocol.encode(frame, &mut self.wbuf).map_err(|e| {
            self.wbuf.truncate(before);
            debug!(error = %e, "frame could not be encoded; dropped");
            e.to_string()
        })
    }
}
