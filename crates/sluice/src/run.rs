//! `sluice run`: bind everything, serve, drain on a signal.
//!
//! Order matters for operators: the config is validated and every socket bound *before* the
//! process reports ready, so a bad config or a taken port fails fast with exit 1; a signal
//! flips `/ready` to 503 first (load balancers stop sending), then closes the listeners, then
//! waits up to `drain_timeout` for live connections. SIGUSR1 reopens the access-log files
//! (after logrotate moved them). Signals and the drain run on the main
//! thread, apart from the workers, in every worker mode.

use std::sync::Arc;

use anyhow::Context as _;
use sluice_admin::{AdminState, Phase};
use sluice_config::Config;
use sluice_filters::BuildContext;
use sluice_net::BoundListener;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{info, warn};

use crate::config_file::ConfigFile;
use crate::listeners::Listeners;
use crate::live::Live;
use crate::source::Source;
use crate::workers::Workers;

/// How `run` follows its config file after starting.
pub struct Follow {
    /// Reload when the file's content changes, looking this often.
    pub watch: Option<std::time::Duration>,
}

pub fn run(config: Config, file: &ConfigFile, follow: Follow) -> anyhow::Result<()> {
    crate::limits::raise_nofile();
    let config = Arc::new(config);

    let admin = Arc::new(AdminState::default());
    admin.set_config(config.document.clone());
    admin.set_server_info(sluice_admin::ServerInfo {
        restart_epoch: 0,
        node_id: config.node.id.clone(),
        node_cluster: config.node.cluster.clone(),
        config_path: file.label(),
        concurrency: config.workers,
        drain_time: config.drain_timeout,
    });
    admin.on_health_check(Arc::new(sluice_filters::health_check::set_failed));
    let admin_addr = config
        .admin
        .address
        .as_tcp()
        .context("admin address must be host:port")?;
    if !admin_addr.ip().is_loopback() {
        // Only an explicit `admin.address` gets here (the default is 127.0.0.1:15000).
        warn!(address = %admin_addr, "the admin API listens beyond loopback: anyone who reaches it can stop or reconfigure this proxy");
    }
    sluice_admin::start(admin_addr, admin.clone())
        .with_context(|| format!("admin: cannot bind {admin_addr}"))?;

    let workers = Workers::start(config.workers, config.worker_mode)?;
    let runtimes = (0..workers.runtimes())
        .map(|i| workers.handle(i).clone())
        .collect();
    let listeners = Listeners::new(runtimes);
    // One socket per listener, or one per listener per worker in per-core mode.
    let mut bound: Vec<Vec<BoundListener>> = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        bound.push(listeners.bind(l)?);
    }

    crate::limits::lower_control_priority();
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the control runtime")?;
    // The span exporter runs on a thread of its own, outlives the drain, and is flushed last.
    let spans = match &config.tracing {
        Some(tracing) => {
            Some(sluice_trace::start(tracing, &config.node.id).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let result = control.block_on(serve(
        config.clone(),
        (file, follow),
        (listeners, bound),
        &admin,
        spans.clone(),
    ));
    // Connections still open after the drain deadline are cut here.
    workers.stop();
    // What the last requests left queued: their access-log lines, then their spans.
    sluice_observe::access_log::flush_all(EXIT_FLUSH);
    if let Some(spans) = spans {
        spans.finish(EXIT_FLUSH);
    }
    result
}

/// How long the exit waits for queued access-log lines, and then for queued spans.
const EXIT_FLUSH: std::time::Duration = std::time::Duration::from_secs(5);

async fn serve(
    config: Arc<Config>,
    (file, follow): (&ConfigFile, Follow),
    (mut listeners, bound): (Listeners, Vec<Vec<BoundListener>>),
    admin: &Arc<AdminState>,
    spans: Option<Arc<sluice_trace::Queue>>,
) -> anyhow::Result<()> {
    // Installed before anything serves: SIGUSR1's default action would kill the process.
    let mut usr1 = signal(SignalKind::user_defined1()).context("cannot install SIGUSR1 handler")?;
    tokio::spawn(async move {
        while usr1.recv().await.is_some() {
            info!("SIGUSR1: reopening access-log files");
            sluice_observe::access_log::reopen_all();
        }
    });
    let mut ctx = BuildContext::new(config.clone()).map_err(anyhow::Error::msg)?;
    ctx.spans = spans.map(|q| q as Arc<dyn sluice_observe::trace::SpanSink>);
    admin.set_clusters(ctx.clusters.clone());
    admin.set_log_control(Arc::new(crate::logging::Control));
    let secrets = ctx.secrets.clone();
    admin.set_missing_secrets(Arc::new(move || secrets.sds_missing()));
    // The clusters' gauges are read at each scrape; histograms close an interval and the
    // StatsD sinks are sent every stats_flush_interval, here on the control runtime.
    sluice_stats::store().set_source("clusters", ctx.clusters.stats_source());
    let sinks = config
        .stats_sinks
        .iter()
        .map(|s| {
            let format = match s.kind {
                sluice_config::StatsSinkKind::Statsd => sluice_stats::sink::Format::Statsd,
                sluice_config::StatsSinkKind::DogStatsd => sluice_stats::sink::Format::DogStatsd,
            };
            sluice_stats::sink::StatsdSink::new(format, s.address, &s.prefix)
        })
        .collect();
    tokio::spawn(sluice_stats::sink::run(
        sluice_stats::store(),
        config.stats_flush_interval,
        sinks,
    ));
    let mut built = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        built.push(sluice_filters::build_listener(l, &ctx)?);
    }
    // Every secret is registered now: watch the files, subscribe to the SDS ones.
    ctx.secrets
        .watch_files(sluice_net::tls::DEFAULT_POLL_INTERVAL)
        .context("cannot start the certificate file watcher")?;
    if let Some(sds) = &config.sds {
        sluice_xds::sds::start(&config.node, sds, ctx.secrets.clone());
    }
    let warm_until = config
        .sds
        .as_ref()
        .map(|s| tokio::time::Instant::now() + s.initial_fetch_timeout);
    // Clusters' SDS secrets first (Envoy warms clusters before listeners): a listener that
    // accepted before them would send its first requests to handshakes that cannot succeed.
    if let Some(deadline) = warm_until {
        if tokio::time::timeout_at(deadline, ctx.secrets.sds_ready())
            .await
            .is_err()
        {
            warn!(missing = ?ctx.secrets.sds_missing(), "initial_fetch_timeout passed before these SDS secrets arrived; starting: TLS that needs them fails until they do");
        }
    }
    let mut warming = Vec::with_capacity(config.listeners.len());
    for ((l, sockets), chains) in config.listeners.iter().zip(bound).zip(built) {
        warming.push(listeners.add(l, sockets, chains, warm_until)?);
    }
    for w in warming {
        w.await.context("a listener failed to start")?;
    }
    admin.set_listeners(listeners.addresses());
    let mut live = Live::new(ctx, listeners, admin.clone());
    let mut source = Source::new(file, &config);
    // With a control plane, ready waits for its first resources (or initial_fetch_timeout).
    let xds = config
        .xds
        .as_ref()
        .map(|x| sluice_xds::client::start(x, &config.node));
    let (mut xds_updates, mut xds_init) = match xds {
        Some(x) => (Some(x.updates), Some((x.initialized, x.status))),
        None => (None, None),
    };
    if let Some((_, status)) = &xds_init {
        let status = status.clone();
        admin.set_versions(Arc::new(move |kind, name| {
            status.resource(kind, name).map(|r| (r.version, r.updated))
        }));
    } else {
        admin.set_phase(Phase::Live);
        info!(workers = config.workers, mode = ?config.worker_mode, "sluice ready");
    }

    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    let mut watch = follow
        .watch
        .map(|every| crate::reload::watch_file(file.path.clone(), every));
    let mut listeners_drained = false;
    loop {
        tokio::select! {
            _ = term.recv() => { info!("SIGTERM: draining"); break }
            _ = int.recv() => { info!("SIGINT: draining"); break }
            () = admin.quit_requested() => { info!("admin /quitquitquit: draining"); break }
            // `/drain_listeners` closes the listeners but keeps the process (and its
            // connections) until a stop signal or `/quitquitquit`.
            () = admin.drain_listeners_requested(), if !listeners_drained => {
                info!("admin /drain_listeners: listeners stop accepting");
                admin.set_phase(Phase::Draining);
                live.listeners.stop_accepting();
                listeners_drained = true;
            }
            Some(()) = hup.recv() => crate::reload::reload(&mut live, &mut source, "SIGHUP").await,
            Some(()) = async { watch.as_mut()?.recv().await } => {
                crate::reload::reload(&mut live, &mut source, "config file changed").await;
            }
            Some(update) = async { xds_updates.as_mut()?.recv().await } => {
                let result = crate::reload::xds(&mut live, &mut source, update.dynamic).await;
                let _ = update.reply.send(result);
            }
            () = xds_initialized(&mut xds_init), if admin.phase() == Phase::Starting => {
                admin.set_phase(Phase::Live);
                info!(workers = config.workers, mode = ?config.worker_mode, "sluice ready (xDS resources in force)");
            }
        }
    }

    admin.set_phase(Phase::Draining);
    let listeners = &live.listeners;
    listeners.stop_accepting();
    listeners.accept_loops.close();
    listeners.accept_loops.wait().await;
    let connections = &listeners.connections;
    connections.close();
    let drain_timeout = live.ctx.config.drain_timeout;
    info!(open_connections = connections.len(), timeout = ?drain_timeout, "listeners closed; waiting for connections");
    tokio::select! {
        () = connections.wait() => info!("drained; exiting"),
        () = tokio::time::sleep(drain_timeout) => warn!(open_connections = connections.len(), "drain timeout reached; closing remaining connections"),
        _ = term.recv() => warn!("second signal: exiting now"),
        _ = int.recv() => warn!("second signal: exiting now"),
    }
    Ok(())
}

/// Resolves once the xDS client has its first resources in force; never without a client.
async fn xds_initialized(
    xds: &mut Option<(
        tokio::sync::watch::Receiver<bool>,
        Arc<sluice_xds::status::Status>,
    )>,
) {
    match xds {
        // An error means the client stopped: nothing more to wait for.
        Some((ready, _)) => drop(ready.wait_for(|ready| *ready).await),
        None => std::future::pending().await,
    }
}
