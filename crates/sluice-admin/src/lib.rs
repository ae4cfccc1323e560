//! The admin HTTP server. It runs on its own thread with its own small runtime, so a busy or
//! stuck data plane never makes `/ready` or `/stats` unreachable, and admin work never
//! takes a worker's time.

mod clusters;
pub mod config_dump;
mod index;
mod routes;
mod stats;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tracing::{debug, info};

/// Where the process is in its life, as `/ready` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Listeners not all bound yet.
    Starting = 0,
    /// Serving.
    Live = 1,
    /// Stopped accepting; finishing live connections.
    Draining = 2,
}

/// The log filter at run time: `EnvFilter` directives (`info`, `info,sluice_net=debug`).
pub trait LogControl: Send + Sync {
    fn current(&self) -> Result<String, String>;
    /// Replaces the filter; returns the one now in force. A bad directive changes nothing.
    fn set(&self, directives: &str) -> Result<String, String>;
}

/// What the admin endpoints read; written by the binary as the process moves along.
pub struct AdminState {
    phase: AtomicU8,
    /// When the process started, for `/server_info`'s uptime.
    started: std::time::Instant,
    /// Fired by `POST /quitquitquit`: the process drains and exits as on SIGTERM.
    quit: tokio_util::sync::CancellationToken,
    /// Fired by `POST /drain_listeners`: listeners stop accepting, the process stays.
    drain_listeners: tokio_util::sync::CancellationToken,
    /// The log filter, for `/logging` (set by the binary, which owns the subscriber).
    logging: std::sync::OnceLock<Arc<dyn LogControl>>,
    listeners: ArcSwap<Vec<(String, String)>>,
    clusters: arc_swap::ArcSwapOption<sluice_upstream::ClusterManager>,
    /// Set by `POST /healthcheck/fail`, cleared by `/healthcheck/ok`: the server reports
    /// itself draining (Envoy's "health check failed" state) while it keeps serving.
    health_check_failed: std::sync::atomic::AtomicBool,
    /// Told of every `/healthcheck/*` change: the binary points it at the `health_check`
    /// filter, which answers load balancers' probes.
    on_health_check: std::sync::OnceLock<Arc<dyn Fn(bool) + Send + Sync>>,
    /// The live config document for `/config_dump`, and when it was stored. Rendered as
    /// JSON (secrets redacted) only when asked for: an update of 10,000 endpoints should
    /// not pay for a dump nobody reads.
    config: ArcSwap<(Arc<sluice_config::yaml::Node>, std::time::SystemTime)>,
    /// SDS secrets not received yet, for `/config_dump` (set by the binary).
    missing_secrets: std::sync::OnceLock<Arc<dyn Fn() -> Vec<String> + Send + Sync>>,
    /// Versions of the resources from xDS, for `/config_dump` (set by the binary).
    versions: std::sync::OnceLock<Arc<config_dump::Versions>>,
    /// What `/server_info` says beyond state and uptime.
    info: ArcSwap<ServerInfo>,
}

/// The process facts `/server_info` reports (Envoy's `ServerInfo` and its
/// `command_line_options`).
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    /// 0 for a process started cold; a hot restart's child counts up.
    pub restart_epoch: u32,
    pub node_id: String,
    pub node_cluster: String,
    pub config_path: String,
    pub concurrency: usize,
    pub drain_time: std::time::Duration,
}

impl Default for AdminState {
    fn default() -> Self {
        AdminState {
            phase: AtomicU8::new(Phase::Starting as u8),
            started: std::time::Instant::now(),
            quit: tokio_util::sync::CancellationToken::new(),
            logging: std::sync::OnceLock::new(),
            drain_listeners: tokio_util::sync::CancellationToken::new(),
            listeners: ArcSwap::from_pointee(Vec::new()),
            clusters: arc_swap::ArcSwapOption::empty(),
            health_check_failed: std::sync::atomic::AtomicBool::new(false),
            on_health_check: std::sync::OnceLock::new(),
            config: ArcSwap::from_pointee((
                Arc::new(sluice_config::yaml::Node {
                    kind: sluice_config::yaml::NodeKind::Map(Vec::new()),
                    line: 0,
                }),
                std::time::SystemTime::now(),
            )),
            missing_secrets: std::sync::OnceLock::new(),
            versions: std::sync::OnceLock::new(),
            info: ArcSwap::from_pointee(ServerInfo::default()),
        }
    }
}

impl AdminState {
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Live,
            _ => Phase::Draining,
        }
    }

    /// Lets `/logging` read and replace the log filter.
    pub fn set_log_control(&self, control: Arc<dyn LogControl>) {
        let _ = self.logging.set(control);
    }

    pub(crate) fn log_control(&self) -> Option<&Arc<dyn LogControl>> {
        self.logging.get()
    }

    /// Resolves when `POST /drain_listeners` asked the listeners to stop accepting.
    pub async fn drain_listeners_requested(&self) {
        self.drain_listeners.cancelled().await
    }

    pub(crate) fn request_drain_listeners(&self) {
        self.drain_listeners.cancel();
    }

    /// Resolves when `POST /quitquitquit` asked the process to stop.
    pub async fn quit_requested(&self) {
        self.quit.cancelled().await
    }

    pub(crate) fn request_quit(&self) {
        self.quit.cancel();
    }

    pub(crate) fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// The clusters `/clusters` and `/stats` show.
    pub fn set_clusters(&self, clusters: Arc<sluice_upstream::ClusterManager>) {
        self.clusters.store(Some(clusters));
    }

    /// Replaces what `/config_dump` shows: the config document in force (the file, with
    /// what xDS delivered).
    pub fn set_config(&self, document: Arc<sluice_config::yaml::Node>) {
        self.config
            .store(Arc::new((document, std::time::SystemTime::now())));
    }

    /// The document as JSON, secrets redacted here, so no request path can leak one.
    pub(crate) fn config(&self) -> config_dump::Snapshot {
        let stored = self.config.load_full();
        config_dump::Snapshot {
            document: config_dump::redact(config_dump::from_yaml(&stored.0)),
            updated: stored.1,
        }
    }

    /// Lets `/config_dump` tell SDS secrets still awaited (warming) from received ones.
    pub fn set_missing_secrets(&self, f: Arc<dyn Fn() -> Vec<String> + Send + Sync>) {
        let _ = self.missing_secrets.set(f);
    }

    /// Lets `/config_dump` show resources from xDS as dynamic, with their versions.
    pub fn set_versions(&self, f: Arc<config_dump::Versions>) {
        let _ = self.versions.set(f);
    }

    pub(crate) fn version_of(
        &self,
        kind: &str,
        name: &str,
    ) -> Option<(String, std::time::SystemTime)> {
        self.versions.get().and_then(|f| f(kind, name))
    }

    pub(crate) fn missing_secrets(&self) -> Vec<String> {
        self.missing_secrets.get().map(|f| f()).unwrap_or_default()
    }

    /// Sets what `/server_info` reports about the process (restart epoch, node, options).
    pub fn set_server_info(&self, info: ServerInfo) {
        self.info.store(Arc::new(info));
    }

    pub(crate) fn server_info(&self) -> Arc<ServerInfo> {
        self.info.load_full()
    }

    /// Whether `POST /healthcheck/fail` is in force.
    pub fn health_check_failed(&self) -> bool {
        self.health_check_failed.load(Ordering::Acquire)
    }

    /// Calls `hook` with the new value on each `/healthcheck/fail` and `/healthcheck/ok`.
    pub fn on_health_check(&self, hook: Arc<dyn Fn(bool) + Send + Sync>) {
        let _ = self.on_health_check.set(hook);
    }

    pub(crate) fn set_health_check_failed(&self, failed: bool) {
        self.health_check_failed.store(failed, Ordering::Release);
        if let Some(hook) = self.on_health_check.get() {
            hook(failed);
        }
    }

    /// Records the bound listeners as (name, address) for `/listeners`.
    pub fn set_listeners(&self, listeners: Vec<(String, String)>) {
        self.listeners.store(Arc::new(listeners));
    }
}

/// Binds the admin address now (so a bind failure is reported before anything starts) and
/// serves it from a dedicated thread.
pub fn start(addr: SocketAddr, state: Arc<AdminState>) -> io::Result<SocketAddr> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("sluice-admin".into())
        .spawn(move || runtime.block_on(serve(std_listener, state)))?;
    info!(address = %local, "admin listening");
    Ok(local)
}

async fn serve(std_listener: std::net::TcpListener, state: Arc<AdminState>) {
    let listener = match tokio::net::TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "admin listener could not start");
            return;
        }
    };
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                debug!(error = %e, "admin accept failed");
                continue;
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(routes::handle(&req, &state)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "admin connection error");
            }
        });
    }
}
