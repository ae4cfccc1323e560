//! Why a route configuration could not be compiled.
//!
//! Config validation is expected to reject most of these first, with the YAML line; compiling
//! checks again because a table may also be built from xDS or from code, and a bad pattern
//! must become an error here rather than a panic on the data path.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CompileError {
    /// A path, header, query parameter or rewrite regex does not compile (syntax, or over the
    /// regex crate's size limit).
    #[error("{route}: invalid {what} regex {pattern:?}: {source}")]
    InvalidRegex {
        /// Which route, as `route_config/virtual_host/route (line N)`.
        route: String,
        /// Which field: `path`, `header "x-a"`, `query parameter "q"`, `regex_rewrite`.
        what: String,
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },

    /// A header matcher names something that cannot be an HTTP header, or a pseudo-header
    /// other than `:method`, `:scheme`, `:authority` and `:path`.
    #[error("{route}: invalid header name {name:?} in a header matcher")]
    InvalidHeaderName { route: String, name: String },

    /// A domain with a `*` anywhere but alone, first or last, or an empty domain.
    #[error("virtual host {virtual_host:?}: invalid domain {domain:?}: {reason}")]
    InvalidDomain {
        virtual_host: String,
        domain: String,
        reason: &'static str,
    },

    /// Two virtual hosts (or one, twice) claim the same domain; which one should win would be
    /// an accident of ordering, so it is refused as Envoy does.
    #[error("domain {domain:?} is claimed by virtual host {first:?} and again by {second:?}")]
    DuplicateDomain {
        domain: String,
        first: String,
        second: String,
    },

    /// `weighted_clusters` with no entry of non-zero weight: nothing could ever be picked.
    #[error("{route}: weighted_clusters has no cluster with a non-zero weight")]
    NoWeight { route: String },
}
