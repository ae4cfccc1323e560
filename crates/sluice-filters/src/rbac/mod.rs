//! `rbac`: role-based access control on connections (network filter) and requests (stream
//! filter), with Envoy's config shape: policies of permissions (what is asked for) and
//! principals (who asks), an ALLOW or DENY action, and shadow rules that only log and count.

mod check;
pub mod config;
mod engine;
mod filter;
mod network;

#[cfg(test)]
mod tests;

pub use config::RbacConfig;
pub use filter::DENIED;

use crate::registry::NetworkFilterKind;
use crate::stream::StreamFilterKind;

pub const KIND: NetworkFilterKind = NetworkFilterKind {
    name: "rbac",
    decode: config::decode_network,
    build: network::build,
};

pub const STREAM_KIND: StreamFilterKind = StreamFilterKind {
    name: "rbac",
    decode: config::decode_stream,
    build: filter::build,
};
