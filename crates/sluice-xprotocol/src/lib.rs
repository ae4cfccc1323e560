//! The multiplexed-RPC framework's protocol side: what a protocol is ([`Protocol`]), the
//! frames it produces ([`Frame`]), and the built-in codecs.
//!
//! Everything here is sans-io: bytes in, frames out, no sockets, clocks or tasks. The proxy
//! (`sluice-filters`' `rpc_proxy`) owns connections, multiplexing, request-id remapping,
//! routing, pools, timeouts and retries, so a protocol is a codec plus a few hooks and gets
//! all of that for free.

pub mod bolt;
pub mod dubbo;
pub mod frame;
pub mod headers;
mod installed;
pub mod protocol;
pub mod registry;

pub use frame::{Frame, FrameKind};
pub use headers::Headers;
pub use installed::{protocols, register_protocol};
pub use protocol::{DecodeError, Detect, LocalError, Protocol, ResponseClass, Skip};
pub use registry::ProtocolRegistry;
