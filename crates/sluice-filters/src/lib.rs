//! Built-in network filters, each registered by name (see [`registry`]).

pub mod http_proxy;
pub mod registry;
pub mod rpc_proxy;
pub mod tcp_proxy;

pub use registry::{build_chain, build_listener, config_registry, BuildContext, BuildError};
