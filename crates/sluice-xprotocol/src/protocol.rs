//! The trait a protocol implements to get routing, pooling, retries, timeouts, load balancing,
//! circuit breakers, heartbeats and metrics from the framework.

use bytes::BytesMut;

use crate::frame::Frame;

/// What the opening bytes of a connection say about a protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detect {
    /// These bytes start a frame of this protocol.
    Yes,
    /// They cannot.
    No,
    /// Too few bytes to tell.
    NeedMore,
}

/// A frame that cannot be decoded. The connection it came on is closed after the reply the
/// protocol builds for it (`Protocol::decode_error_reply`), if any.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    pub message: String,
    /// The id of the request the bad frame carried, when the fixed header was readable: the
    /// reply can then answer that request.
    pub request_id: Option<u64>,
    /// Set with `TooLarge` when the rest of the fixed header is sound, whatever the frame's
    /// kind: a connection that must outlive one oversized frame (a shared upstream connection,
    /// whose other calls are not to blame) can fail that one call and pass over the frame's
    /// bytes as they arrive, instead of closing.
    pub skip: Option<Skip>,
}

/// An oversized frame that can be passed over: its id and its whole length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skip {
    pub id: u64,
    pub len: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The first bytes are not this protocol's.
    BadMagic,
    /// The frame declares a length over `max_frame_size`.
    TooLarge,
    /// The bytes break the protocol's rules (bad lengths, a header map or body that does not
    /// parse, an unknown command or version).
    Malformed,
}

impl std::fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeErrorKind::BadMagic => "bad magic",
            DecodeErrorKind::TooLarge => "frame too large",
            DecodeErrorKind::Malformed => "malformed frame",
        })
    }
}

impl DecodeError {
    pub fn new(kind: DecodeErrorKind, message: impl Into<String>) -> Self {
        DecodeError {
            kind,
            message: message.into(),
            request_id: None,
            skip: None,
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        DecodeError::new(DecodeErrorKind::Malformed, message)
    }

    pub fn with_request_id(mut self, id: u64) -> Self {
        self.request_id = Some(id);
        self
    }

    /// Marks a `TooLarge` error as one a connection can get past (see [`DecodeError::skip`]).
    pub fn with_skip(mut self, id: u64, len: usize) -> Self {
        self.skip = Some(Skip { id, len });
        self
    }
}

/// A frame that cannot be encoded (a header change a protocol cannot express).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode: {0}")]
pub struct EncodeError(pub String);

/// What a response says about the call, for outlier detection, retries and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    Success,
    /// The service answered with an error of its own (an exception, a bad argument): the host
    /// is fine and another host would answer the same.
    ApplicationError,
    /// The host failed (server error, codec error): counts against it like an HTTP 5xx.
    ServerError,
    /// The host could not take the call and another may (thread pool busy): retriable.
    Retriable,
}

/// Why the proxy answers a request itself; the protocol turns it into its own status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalError {
    /// No route matches the request.
    NoRoute,
    /// The route's cluster has no host to take it.
    NoHealthyUpstream,
    /// A circuit breaker is open.
    Overflow,
    /// The route's timeout passed before the response.
    Timeout,
    /// The upstream connection failed or was reset before the response.
    UpstreamFailure,
    /// The request could not be forwarded (bad frame, encode failure).
    BadRequest,
    /// A filter refused the request (RBAC).
    Forbidden,
}

impl LocalError {
    pub fn as_str(self) -> &'static str {
        match self {
            LocalError::NoRoute => "no route",
            LocalError::NoHealthyUpstream => "no healthy upstream",
            LocalError::Overflow => "circuit breaker open",
            LocalError::Timeout => "upstream timeout",
            LocalError::UpstreamFailure => "upstream connection failure",
            LocalError::BadRequest => "bad request",
            LocalError::Forbidden => "forbidden",
        }
    }
}

/// A multiplexed RPC protocol: a codec plus the hooks the framework cannot guess.
///
/// Implementations are sans-io and stateless across frames (one instance serves every
/// connection), so they are plain `Send + Sync` values registered by name.
pub trait Protocol: Send + Sync + 'static {
    /// The name config uses (`rpc_proxy: { protocol: bolt }`).
    fn name(&self) -> &'static str;

    /// Whether a connection that starts with `head` speaks this protocol (`protocol: auto`).
    fn detect(&self, head: &[u8]) -> Detect;

    /// Decodes the frame at the front of `buf`, taking its bytes; `Ok(None)` when `buf` holds
    /// only part of one. A frame declaring more than `max_frame_size` bytes is an error before
    /// any of it is buffered.
    fn decode(
        &self,
        buf: &mut BytesMut,
        max_frame_size: usize,
    ) -> Result<Option<Frame>, DecodeError>;

    /// Appends `frame` to `dst` with `frame.id` as its request id: `frame.raw` with the id
    /// patched, or (after `headers_mut`) rebuilt with the new headers.
    fn encode(&self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError>;

    /// The largest request id the wire format carries (Bolt's are 32-bit); the framework's
    /// upstream ids wrap below it.
    fn max_request_id(&self) -> u64 {
        u64::from(u32::MAX)
    }

    /// A heartbeat request with `id`, for keepalive and health checks; `None` if the protocol
    /// has none.
    fn heartbeat(&self, id: u64) -> Option<Frame>;

    /// The answer to a heartbeat request.
    fn heartbeat_reply(&self, ping: &Frame) -> Option<Frame>;

    /// What a response means for the call.
    fn classify(&self, response: &Frame) -> ResponseClass;

    /// The response the proxy sends for `request` when it cannot forward it, in the protocol's
    /// own status codes, carrying `message`; `None` for one-way requests. `request` may be a
    /// [`Frame::without_payload`] copy: build the reply from its `kind`, `id` and `raw`.
    fn local_reply(&self, request: &Frame, error: LocalError, message: &str) -> Option<Frame>;

    /// What to send on a connection before closing it over `error`, if the protocol can say
    /// it (a response to the request the bad frame carried, with a codec-error status).
    fn decode_error_reply(&self, error: &DecodeError) -> Option<Frame> {
        let _ = error;
        None
    }

    /// A frame that tells the peer this connection is going away, if the protocol has one.
    fn goaway(&self) -> Option<Frame> {
        None
    }
}
