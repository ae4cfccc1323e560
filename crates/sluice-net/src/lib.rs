//! The network layer: listening sockets, byte streams, and the network filter chain a
//! connection walks through once accepted.

pub mod chains;
pub mod connect;
pub mod filter;
pub mod hello_peek;
pub mod listener;
pub mod listener_stats;
pub mod serve;
pub mod stream;
pub mod tls;

pub use chains::{Chain, ListenerChains};
pub use connect::{connect, set_keepalive};
pub use filter::{ConnectionHandler, ConnectionInfo, FilterChain, NetworkFilter, Verdict};
pub use listener::{bind, bind_per_worker, BindError, BoundListener, Listener};
pub use serve::{serve, Generation};
pub use stream::{PeerAddr, Stream};
pub use tls::{AppProtocol, PeerIdentity, Secrets, TlsClient, TlsInfo, TlsServer};
