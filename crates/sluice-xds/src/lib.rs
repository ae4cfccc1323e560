//! Sluice as a client of Envoy's discovery services (xDS), over gRPC with tonic and the
//! `envoy-types` protos (which cover every v3 service: SDS now; LDS, RDS, CDS and EDS next).
//!
//! Today: SDS ([`sds`]), which feeds the secrets `sluice-net` reads at each handshake.

mod backoff;
mod channel;
pub mod client;
mod data_source;
pub mod kind;
mod node;
pub mod resource;
pub mod sds;
pub mod status;
mod stream;
pub mod translate;
