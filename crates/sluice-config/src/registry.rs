//! Names of pluggable parts, mapped to their config decoders.
//!
//! The config crate knows no filter by name: each filter crate registers how to decode its own
//! YAML body, so adding a filter never edits a central `match`.

use std::sync::Arc;

use crate::decode::Cx;
use crate::model::NetworkFilterConfig;
use crate::yaml::Node;

/// Decodes a filter's YAML body (the value under its name) at `path`.
pub type NetworkFilterDecoder = fn(&Node, &str, &mut Cx) -> Option<Arc<dyn NetworkFilterConfig>>;

#[derive(Default, Clone)]
pub struct Registry {
    network_filters: Vec<(&'static str, NetworkFilterDecoder)>,
}

impl Registry {
    pub fn register_network_filter(&mut self, name: &'static str, decode: NetworkFilterDecoder) {
        self.network_filters.retain(|(n, _)| *n != name);
        self.network_filters.push((name, decode));
    }

    pub fn network_filter(&self, name: &str) -> Option<NetworkFilterDecoder> {
        self.network_filters
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, d)| *d)
    }

    pub fn network_filter_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.network_filters.iter().map(|(n, _)| *n)
    }
}
