//! Envoy v3 resources to Sluice's native config, as the YAML tree the config loader reads.
//!
//! Translating into the tree rather than into the model means an xDS resource is validated
//! by exactly the code that validates a config file (`sluice check`), and goes through the
//! same diff and live apply. This module only maps shapes: an Envoy field that changes
//! behaviour and has no Sluice equivalent is an [`Error`] naming the field (the resource is
//! NACKed); a field that changes nothing a client could see (stats names, metadata, hints)
//! is ignored with a debug log.

pub mod access_log;
pub mod address;
pub mod cluster;
pub mod endpoint;
pub mod listener;
pub mod rbac;
pub mod route;
pub mod tls;
pub(crate) mod tree;

use std::fmt;

/// Why a resource cannot be translated: the Envoy field (path within the resource, in
/// Envoy's snake_case names, `filter_chains[0].filters[1].typed_config`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub field: String,
    pub message: String,
}

impl Error {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The error of a field of a nested message, seen from its parent at `path`.
    pub fn under(mut self, path: &str) -> Error {
        self.field = tree::join(path, &self.field);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
