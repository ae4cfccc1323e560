//! Envoy's `DataSource`: bytes given inline or by a file name or an environment variable.
//! Messages name where the bytes came from, never the bytes.

use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
use envoy_types::pb::envoy::config::core::v3::DataSource;

/// The bytes of `source`; `what` (`certificate_chain`) starts any error message.
pub(crate) fn read(source: Option<&DataSource>, what: &str) -> Result<Vec<u8>, String> {
    match source.and_then(|s| s.specifier.as_ref()) {
        None => Err(format!("{what} is missing")),
        Some(Specifier::InlineBytes(b)) => Ok(b.clone()),
        Some(Specifier::InlineString(s)) => Ok(s.as_bytes().to_vec()),
        Some(Specifier::Filename(f)) => {
            std::fs::read(f).map_err(|e| format!("{what}: cannot read \"{f}\": {e}"))
        }
        Some(Specifier::EnvironmentVariable(v)) => std::env::var(v)
            .map(String::into_bytes)
            .map_err(|_| format!("{what}: environment variable \"{v}\" is not set")),
    }
}
