//! The protocols this process speaks, by name: the built-in codecs plus any a build of Sluice
//! adds with [`register_protocol`].
//!
//! A process-wide table rather than a value passed down: config decoders are plain functions
//! (the config crate knows no filter), yet `rpc_proxy: { protocol }` and a cluster's
//! `health_check: { heartbeat: { protocol } }` must reject an unknown name with the names that
//! exist. It is written only at startup, before the config is loaded, and read when configs
//! are decoded and filters and probes are built, never per request.

use std::sync::{Arc, LazyLock};

use arc_swap::ArcSwap;

use crate::{Protocol, ProtocolRegistry};

static PROTOCOLS: LazyLock<ArcSwap<ProtocolRegistry>> =
    LazyLock::new(|| ArcSwap::from_pointee(builtin()));

fn builtin() -> ProtocolRegistry {
    let mut registry = ProtocolRegistry::new();
    registry.register(Arc::new(crate::bolt::Bolt));
    registry.register(Arc::new(crate::dubbo::Dubbo));
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
