//! Protocols by name: the built-in ones, plus any a build of Sluice registers before loading
//! its config.

use std::sync::Arc;

use crate::protocol::Protocol;

#[derive(Clone, Default)]
pub struct ProtocolRegistry {
    protocols: Vec<Arc<dyn Protocol>>,
}

impl ProtocolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        ProtocolRegistry::default()
    }

    /// Adds `protocol`, replacing one of the same name.
    pub fn register(&mut self, protocol: Arc<dyn Protocol>) {
        self.protocols.retain(|p| p.name() != protocol.name());
        self.protocols.push(protocol);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Protocol>> {
        self.protocols.iter().find(|p| p.name() == name)
    }

    /// Every registered protocol, in registration order (the order `auto` tries them).
    pub fn all(&self) -> &[Arc<dyn Protocol>] {
        &self.protocols
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.protocols.iter().map(|p| p.name()).collect()
    }
}

impl std::fmt::Debug for ProtocolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
