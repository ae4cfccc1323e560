//! Built-in network filters, each registered by name (see [`registry`]), and the stream
//! filters `http_proxy` and `rpc_proxy` run per request (see [`stream`]).

pub mod health_check;
pub mod http_proxy;
pub mod rbac;
pub mod registry;
pub mod routes;
pub mod rpc_proxy;
mod stat_prefix;
pub mod stream;
pub mod tcp_proxy;

pub use registry::{build_chain, build_listener, config_registry, BuildContext, BuildError};
