//! `sluice run`: bind everything, serve, drain on a signal.
//!
//! Order matters for operators: the config is validated and every socket bound *before* the
//! process reports ready, so a bad config or a taken port fails fast with exit 1; a signal
//! flips `/ready` to 503 first (load balancers stop sending), then closes the listeners, then
//! waits up to `drain_timeout` for live connections.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use sluice_admin::{AdminState, Phase};
use sluice_config::{Config, ConfigStore};
use sluice_filters::BuildContext;
use sluice_net::BoundListener;
use sluice_upstream::ClusterManager;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub fn run(path: &Path) -> anyhow::Result<()> {
    let registry = sluice_filters::config_registry();
    let config = sluice_config::load_file(path, &registry)
        .map_err(|e| anyhow::anyhow!("invalid config:\n{e}"))?;
    let store = Arc::new(ConfigStore::new(config));
    let config = store.load();

    let admin = Arc::new(AdminState::default());
    let admin_addr = config
        .admin
        .address
        .as_tcp()
        .context("admin address must be host:port")?;
    sluice_admin::start(admin_addr, admin.clone())
        .with_context(|| format!("admin: cannot bind {admin_addr}"))?;

    let mut bound = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        let b = sluice_net::bind(l)?;
        info!(listener = %l.name, address = %b.local_addr().map_or_else(|_| l.address.to_string(), |a| a.to_string()), "listener bound");
        bound.push(b);
    }

    let runtime = build_runtime(config.workers)?;
    let result = runtime.block_on(serve(config.clone(), bound, admin));
    // Connections still open after the drain deadline are cut here.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

fn build_runtime(workers: usize) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder
        .enable_all()
        .thread_name("sluice-worker")
        .build()
        .context("cannot start the worker runtime")
}

async fn serve(
    config: Arc<Config>,
    bound: Vec<BoundListener>,
    admin: Arc<AdminState>,
) -> anyhow::Result<()> {
    let ctx = BuildContext {
        clusters: Arc::new(ClusterManager::new(&config)),
    };
    let shutdown = CancellationToken::new();
    let connections = TaskTracker::new();
    let listeners = TaskTracker::new();
    let mut addresses = Vec::new();
    for (l, b) in config.listeners.iter().zip(bound) {
        let chain = sluice_filters::build_chain(l, &ctx)?;
        addresses.push((
            l.name.clone(),
            b.local_addr()
                .map_or_else(|_| l.address.to_string(), |a| a.to_string()),
        ));
        let listener = b
            .into_listener()
            .with_context(|| format!("listener \"{}\": cannot register socket", l.name))?;
        listeners.spawn(sluice_net::serve(
            l.name.as_str().into(),
            listener,
            Arc::new(ArcSwap::from_pointee(chain)),
            shutdown.clone(),
            connections.clone(),
        ));
    }
    admin.set_listeners(addresses);
    admin.set_phase(Phase::Live);
    info!(workers = config.workers, "sluice ready");

    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: draining"),
        _ = int.recv() => info!("SIGINT: draining"),
    }

    admin.set_phase(Phase::Draining);
    shutdown.cancel();
    listeners.close();
    listeners.wait().await;
    connections.close();
    let open = connections.len();
    info!(open_connections = open, timeout = ?config.drain_timeout, "listeners closed; waiting for connections");
    tokio::select! {
        () = connections.wait() => info!("drained; exiting"),
        () = tokio::time::sleep(config.drain_timeout) => warn!(open_connections = connections.len(), "drain timeout reached; closing remaining connections"),
        _ = term.recv() => warn!("second signal: exiting now"),
        _ = int.recv() => warn!("second signal: exiting now"),
    }
    Ok(())
}
