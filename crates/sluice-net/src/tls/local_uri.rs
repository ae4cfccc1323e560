//! The URI SAN of the certificate Sluice presents, by SNI: `By=` in `x-forwarded-client-cert`.
//!
//! Kept beside the resolver rather than in it: the choice mirrors the resolver's (exact name,
//! then one-label wildcard, then the first certificate) but is only read when a request
//! needs it, from facts settled once when the chain is built.

use std::collections::HashMap;

use super::PeerIdentity;

#[derive(Debug, Default)]
pub(crate) struct LocalUris {
    exact: HashMap<String, Option<String>>,
    wildcard: HashMap<String, Option<String>>,
    default: Option<Option<String>>,
}

impl LocalUris {
    /// Adds a certificate's names and first URI SAN, in the resolver's order.
    pub(crate) fn add(&mut self, id: &PeerIdentity) {
        let uri = id.uri_sans.first().cloned();
        for name in id.clone().server_names() {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(suffix) => self.wildcard.entry(suffix.to_string()),
                None => self.exact.entry(name),
            }
            .or_insert_with(|| uri.clone());
        }
        self.default.get_or_insert(uri);
    }

    pub(crate) fn lookup(&self, sni: Option<&str>) -> Option<String> {
        let found = sni.and_then(|sni| {
            self.exact.get(sni).or_else(|| {
                let (_, parent) = sni.split_once('.')?;
                self.wildcard.get(parent)
            })
        });
        found.or(self.default.as_ref()).cloned().flatten()
    }
}
