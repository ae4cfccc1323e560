//! Serving one downstream RPC connection: frames in, calls running side by side, responses
//! out in whatever order they finish.
//!
//! One task per connection reads, decodes, writes and drives its calls (a `FuturesUnordered`),
//! so a call costs no task spawn and no lock. Reading pauses while `max_concurrent_requests`
//! calls are in flight: back-pressure on the client rather than unbounded queues. Heartbeats are
//! answered here and never routed. A frame that does not decode ends the connection: nothing
//! more is read, the protocol's error reply (if it has one) goes out, the calls decoded before
//! it are still answered, then the connection closes; other connections never notice.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures_util::stream::{FuturesUnordered, StreamExt};
use sluice_xprotocol::{Frame, FrameKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::call::{self, Shared};

/// Responses gathered into the write buffer before it is written.
const WRITE_BATCH: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_concurrent_requests: usize,
    pub idle_timeout: Option<Duration>,
    /// The stream is TLS: flush after writing (records may wait in the TLS layer when the
    /// socket was full; a TCP socket holds nothing back).
    pub flush: bool,
}

/// Serves the connection until the client closes it, it fails, it idles out or the drain ends
/// it. `early` holds bytes already read (protocol detection).
pub async fn serve<S>(
    stream: S,
    early: BytesMut,
    shared: Arc<Shared>,
    client: Option<SocketAddr>,
    limits: Limits,
    drain: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send,
{
    let protocol = shared.protocol.clone();
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut rbuf = early;
    let mut wbuf = BytesMut::with_capacity(8 * 1024);
    let mut calls = FuturesUnordered::new();
    // Whether we still take requests: false once the client closed its side, a frame failed
    // to decode, or the drain began. The connection closes when it is false and every call
    // taken has been answered.
    let mut reading = true;
    let mut draining = false;
    let mut unflushed = false;
    let mut idle_since = Instant::now();
    let encode = |frame: &Frame, wbuf: &mut BytesMut| {
        let before = wbuf.len();
        if let Err(e) = protocol.encode(frame, wbuf) {
            wbuf.truncate(before);
            debug!(error = %e, "response could not be encoded; dropped");
        }
    };
    loop {
        // Decode what is buffered, up to the concurrency limit.
        while reading && calls.len() < limits.max_concurrent_requests {
            match protocol.decode(&mut rbuf, shared.max_frame_size) {
                Ok(Some(frame)) => match frame.kind {
                    FrameKind::Request | FrameKind::Oneway => {
                        calls.push(call::handle(shared.clone(), client, frame));
                    }
                    FrameKind::HeartbeatRequest => {
                        if let Some(pong) = protocol.heartbeat_reply(&frame) {
                            encode(&pong, &mut wbuf);
                        }
                    }
                    FrameKind::Response | FrameKind::HeartbeatResponse => {
                        debug!(listener = %shared.listener, "client sent a response; ignored");
                    }
                },
                Ok(None) => break,
                Err(e) => {
                    debug!(listener = %shared.listener, error = %e, "undecodable frame; closing the connection");
                    if let Some(reply) = protocol.decode_error_reply(&e) {
                        encode(&reply, &mut wbuf);
                    }
                    reading = false;
                    break;
                }
            }
        }
        if !reading && calls.is_empty() && wbuf.is_empty() {
            let _ = wr.shutdown().await;
            return;
        }
        let can_read = reading && calls.len() < limits.max_concurrent_requests;
        if can_read {
            make_room(&mut rbuf);
        }
        let idle_at = match limits.idle_timeout {
            Some(t) if calls.is_empty() && wbuf.is_empty() => Some(idle_since + t),
            _ => None,
        };
        tokio::select! {
            read = rd.read_buf(&mut rbuf), if can_read => match read {
                Ok(0) => {
                    if !rbuf.is_empty() {
                        debug!(listener = %shared.listener, bytes = rbuf.len(), "client closed mid-frame");
                    }
                    reading = false;
                }
                Ok(_) => idle_since = Instant::now(),
                Err(e) => {
                    debug!(listener = %shared.listener, error = %e, "client read failed");
                    return;
                }
            },
            Some(response) = calls.next(), if !calls.is_empty() => {
                if let Some(frame) = response {
                    encode(&frame, &mut wbuf);
                }
                // Take every other response that is ready too, so they leave in one write
                // rather than one write (and one wakeup of the client) each. Polled with this
                // task's own context, so a call that is not ready yet wakes this task later.
                while wbuf.len() < WRITE_BATCH {
                    let next = poll_fn(|cx| Poll::Ready(calls.poll_next_unpin(cx))).await;
                    match next {
                        Poll::Ready(Some(Some(frame))) => encode(&frame, &mut wbuf),
                        Poll::Ready(Some(None)) => {}
                        Poll::Ready(None) | Poll::Pending => break,
                    }
                }
                idle_since = Instant::now();
            },
            written = async {
                if wbuf.is_empty() {
                    wr.flush().await.map(|()| None)
                } else {
                    wr.write(&wbuf).await.map(Some)
                }
            }, if !wbuf.is_empty() || unflushed => match written {
                Ok(Some(0)) | Err(_) => return,
                Ok(Some(n)) => {
                    wbuf.advance(n);
                    unflushed = limits.flush;
                }
                Ok(None) => unflushed = false,
            },
            () = drain.cancelled(), if !draining => {
                draining = true;
                reading = false;
                if let Some(goaway) = protocol.goaway() {
                    encode(&goaway, &mut wbuf);
                }
            },
            () = sleep_until(idle_at), if idle_at.is_some() => {
                debug!(listener = %shared.listener, "idle timeout; closing");
                reading = false;
            },
        }
    }
}

/// How much a read asks for at least.
const READ_CHUNK: usize = 8 * 1024;

/// Makes `rbuf` hold at least `READ_CHUNK` free bytes before a read. Decoded frames keep
/// slices of the buffer's memory while their calls are in flight, so it is rarely reclaimed in
/// place; without this, `BytesMut`'s own growth (64 bytes at a time for a buffer that started
/// empty) turns reads into one small `recv` per fragment of a frame.
pub(super) fn make_room(rbuf: &mut BytesMut) {
    if rbuf.capacity() - rbuf.len() < READ_CHUNK / 2 {
        rbuf.reserve(READ_CHUNK);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
