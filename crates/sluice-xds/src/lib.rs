//! Sluice as a client of Envoy's discovery services (xDS), over gRPC with tonic and the
//! `envoy-types` protos (which cover every v3 service: SDS now; LDS, RDS, CDS and EDS next).
//!
//! Today: SDS ([`sds`]), which feeds the secrets `sluice-net` reads at each handshake.

mod backoff;
mod channel;
mod data_source;
mod node;
pub mod sds;
