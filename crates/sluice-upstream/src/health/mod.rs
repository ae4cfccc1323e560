//! Active health checking: probes that ask one host whether it is well, and a task per cluster
//! that runs them on a timer and turns their answers into the hosts' health flags.
//!
//! The [`Probe`] trait is the seam: HTTP, TCP and gRPC probes are built in, and an RPC protocol
//! supplies its own heartbeat as another `Probe` (see [`ProbeRegistry`]).

mod checker;
mod grpc;
mod http;
mod probe;
mod registry;
mod state;
mod tcp;

pub use checker::{spawn, HealthTarget};
pub use grpc::GrpcProbe;
pub use http::HttpProbe;
pub use probe::{Probe, ProbeError, ProbeFuture};
pub use registry::{probe_for, ProbeBuilder, ProbeRegistry};
pub use tcp::TcpProbe;
