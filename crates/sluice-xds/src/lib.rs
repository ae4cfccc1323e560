//! Sluice as a client of Envoy's discovery services (xDS), over gRPC with tonic and the
//! `envoy-types` protos.
//!
//! - [`client`]: listeners, route configs, clusters and endpoints (LDS, RDS, CDS, EDS) over
//!   ADS or one stream per type, state of the world or delta, handed to the binary as
//!   native config ([`resource::Dynamic`]) to validate and apply; ACK or NACK follows.
//! - [`translate`]: each Envoy resource as the native config tree the loader reads.
//! - [`bootstrap`]: an Envoy bootstrap file as a native config document.
//! - [`sds`]: the secrets `sluice-net` reads at each handshake.

mod backoff;
pub mod bootstrap;
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
