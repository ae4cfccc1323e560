//! The protocols `rpc_proxy` can speak, by name.
//!
//! A process-wide table rather than a value passed down: filter config decoders are plain
//! functions (the config crate knows no filter), and they must reject an unknown `protocol`
//! with the names that exist. It is written only at startup, before the config is loaded
//! (`register_protocol`), and read when configs are decoded and filters built, never per
//! request.

use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;
use sluice_xprotocol::{Protocol, ProtocolRegistry};

static PROTOCOLS: LazyLock<ArcSwap<ProtocolRegistry>> =
    LazyLock::new(|| ArcSwap::from_pointee(builtin()));

fn builtin() -> ProtocolRegistry {
    let mut registry = ProtocolRegistry::new();
    registry.register(Arc::new(sluice_xprotocol::bolt::Bolt));
    registry.register(Arc::new(sluice_xprotocol::dubbo::Dubbo));
    registry
}

/// Adds a protocol (replacing one of the same name). Call it before loading a config that
/// names it.
pub fn register_protocol(protocol: Arc<dyn Protocol>) {
    PROTOCOLS.rcu(|current| {
        let mut next = ProtocolRegistry::clone(current);
        next.register(protocol.clone());
        next
    });
}

/// The registered protocols.
pub fn protocols() -> Arc<ProtocolRegistry> {
    PROTOCOLS.load_full()
}
