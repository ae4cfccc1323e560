//! Distributed tracing on the data path: reading the client's trace context, deciding
//! whether the trace is recorded, writing the proxy's span upstream, and handing recorded
//! requests to an exporter ([`SpanSink`]; the OTLP one lives in `sluice-trace`, so the
//! protobuf and gRPC crates stay out of the filters' build).
//!
//! A request that is not recorded costs a random span id, a header lookup per configured
//! format, and the headers written upstream: the decision still travels, so the services
//! behind agree with it.

pub mod b3;
pub mod ids;
pub mod propagation;
pub mod sampling;
pub mod sw8;
pub mod tracer;
pub mod w3c;

pub use propagation::{Format, Incoming, Outgoing};
pub use sampling::Sampling;
pub use tracer::{SpanSink, Tracer};
