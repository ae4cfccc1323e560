//! Sluice's configuration: the native model, its YAML form, and what changes between two.
//!
//! Loading collects every error with the YAML path and line (`config.yaml:7:
//! listeners[0].address: invalid socket address "0.0.0.0:80a"`); a loaded [`Config`] is
//! immutable: a change is a new one, put in force by the binary resource by resource (see
//! [`diff`]).

pub mod access_log;
pub mod address;
pub mod cidr;
pub mod cluster;
mod cluster_decode;
pub mod cluster_tls;
pub mod decode;
pub mod diff;
pub mod health_check;
pub mod load;
pub mod model;
pub mod registry;
pub mod route;
mod route_decode;
pub mod stats_sinks;
pub mod tls;
pub mod tracing;

pub use route_decode::decode_inline as decode_inline_route_config;
pub use route_decode::decode_value_match;
pub use route_decode::parse_format as route_format;
pub mod units;
pub mod yaml;

pub use access_log::AccessLogConfig;
pub use address::{Address, ServerAddress};
pub use cidr::Cidr;
pub use cluster::*;
pub use cluster_tls::{SanMatcher, UpstreamTlsConfig, UpstreamTrust};
pub use decode::{Cx, Decode, Diagnostic, Fields};
pub use health_check::{
    GrpcCheck, HealthCheckConfig, HeartbeatCheck, HttpCheck, HttpCheckMethod, ProbeConfig,
    StatusRange, TcpCheck,
};
pub use load::{load_file, load_str, load_tree, ByteSize, ConfigErrors, LoadOptions};
pub use model::*;
pub use registry::Registry;
pub use stats_sinks::{StatsSinkConfig, StatsSinkKind};
pub use tls::*;
pub use tracing::{ListenerTracing, OtlpTarget, Propagation, TracingConfig};
pub use yaml::Node;
