//! The `tcp_proxy` YAML body.

use std::sync::Arc;
use std::time::Duration;

use sluice_config::decode::{join, Cx, Fields};
use sluice_config::{ByteSize, ClusterRef, NetworkFilterConfig, Node};

#[derive(Debug, Clone)]
pub struct TcpProxyConfig {
    pub cluster: ClusterRef,
    /// Close both sides after this long with no bytes either way; `None` (written `0`) never.
    pub idle_timeout: Option<Duration>,
    /// Bytes buffered per direction; a full buffer stops reading until the other side drains it.
    pub buffer_size: usize,
    /// Connect attempts across different hosts; `None` tries every host once.
    pub max_connect_attempts: Option<usize>,
    /// `ring_hash`/`maglev` clusters: hash the client's IP, so a client keeps its host.
    pub hash_source_ip: bool,
    /// Metrics go under `tcp.<stat_prefix>.`; `None`: the listener's name.
    pub stat_prefix: Option<String>,
}

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
pub const DEFAULT_BUFFER_SIZE: u64 = 32 * 1024;

impl NetworkFilterConfig for TcpProxyConfig {
    fn is_terminal(&self) -> bool {
        true
    }
}

pub fn decode(node: &Node, path: &str, cx: &mut Cx) -> Option<Arc<dyn NetworkFilterConfig>> {
    let mut f = Fields::new(node, path, cx)?;
    let cluster = f.required::<ClusterRef>("cluster", cx);
    let idle_timeout = f.or("idle_timeout", DEFAULT_IDLE_TIMEOUT, cx);
    let buffer_size = f.or("buffer_size", ByteSize(DEFAULT_BUFFER_SIZE), cx);
    let buffer_line = f.line_of("buffer_size");
    let attempts = f.optional::<u32>("max_connect_attempts", cx);
    let attempts_line = f.line_of("max_connect_attempts");
    let hash_policy = f.or(
        "hash_policy",
        Vec::<sluice_config::route::HashPolicy>::new(),
        cx,
    );
    let hash_line = f.line_of("hash_policy");
    let stat_prefix = crate::stat_prefix::decode(&mut f, path, cx);
    f.finish(cx);
    let hash_policy = hash_policy?;
    if hash_policy
        .iter()
        .any(|p| p.source != sluice_config::route::HashSource::SourceIp)
    {
        cx.error(
            hash_line,
            &join(path, "hash_policy"),
            "tcp_proxy can hash only the client's address: use [{ source_ip: true }]",
        );
        return None;
    }
    let buffer_size = buffer_size?.0;
    if !(1024..=16 << 20).contains(&buffer_size) {
        cx.error(
            buffer_line,
            &join(path, "buffer_size"),
            format!("must be from 1KiB to 16MiB, found {buffer_size} bytes"),
        );
        return None;
    }
    let attempts = attempts.ok()?;
    if attempts == Some(0) {
        cx.error(
            attempts_line,
            &join(path, "max_connect_attempts"),
            "must be at least 1",
        );
        return None;
    }
    let idle_timeout = idle_timeout?;
    Some(Arc::new(TcpProxyConfig {
        cluster: cluster?,
        idle_timeout: (!idle_timeout.is_zero()).then_some(idle_timeout),
        buffer_size: usize::try_from(buffer_size).unwrap_or(DEFAULT_BUFFER_SIZE as usize),
        max_connect_attempts: attempts.map(|a| a as usize),
        hash_source_ip: !hash_policy.is_empty(),
        stat_prefix: stat_prefix?,
    }))
}
