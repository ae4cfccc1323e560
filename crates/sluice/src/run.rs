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
use arc_swap::ArcSwap;
use sluice_admin::{AdminState, Phase};
use sluice_config::Config;
use sluice_filters::BuildContext;
use sluice_net::BoundListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::workers::Workers;

pub fn run(config: Config, config_path: &std::path::Path) -> anyhow::Result<()> {
    crate::limits::raise_nofile();
    let config = Arc::new(config);

    let admin = Arc::new(AdminState::default());
    admin.set_config(sluice_admin::config_dump::from_yaml(&config.document));
    admin.set_server_info(sluice_admin::ServerInfo {
        restart_epoch: 0,
        node_id: config.node.id.clone(),
        node_cluster: config.node.cluster.clone(),
        config_path: config_path.display().to_string(),
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
    // One socket per listener, or one per listener per worker in per-core mode.
    let mut bound: Vec<Vec<BoundListener>> = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        let sockets = match workers.runtimes() {
            1 => vec![sluice_net::bind(l)?],
            n => sluice_net::bind_per_worker(l, n)?,
        };
        bound.push(sockets);
    }

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
        bound,
        &workers,
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
    bound: Vec<Vec<BoundListener>>,
    workers: &Workers,
    admin: &AdminState,
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
    let stop_accepting = CancellationToken::new();
    let connections = TaskTracker::new();
    let accept_loops = TaskTracker::new();
    let mut addresses = Vec::new();
    let mut built = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        let chains = sluice_filters::build_listener(l, &ctx)?;
        built.push(Arc::new(ArcSwap::from_pointee(chains)));
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
    let mut warming = tokio::task::JoinSet::new();
    for ((l, sockets), chain) in config.listeners.iter().zip(bound).zip(built) {
        let shown = sockets
            .first()
            .and_then(|s| s.local_addr().ok())
            .map_or_else(|| l.address.to_string(), |a| a.to_string());
        info!(listener = %l.name, address = %shown, sockets = sockets.len(), "listener bound");
        addresses.push((l.name.clone(), shown));
        let mut listeners = Vec::with_capacity(sockets.len());
        for (i, socket) in sockets.into_iter().enumerate() {
            let rt = workers.handle(i).clone();
            let listener = {
                let _enter = rt.enter();
                socket
                    .into_listener()
                    .with_context(|| format!("listener \"{}\": cannot register socket", l.name))?
            };
            listeners.push((rt, listener));
        }
        // Accepting starts once the listener's secrets are all there (or the SDS
        // initial_fetch_timeout passed); meanwhile clients wait in the accept backlog.
        let name: Arc<str> = l.name.as_str().into();
        let (stop, conns, loops) = (
            stop_accepting.clone(),
            connections.clone(),
            accept_loops.clone(),
        );
        warming.spawn(async move {
            if let Some(deadline) = warm_until {
                let ready = chain.load_full();
                if tokio::time::timeout_at(deadline, ready.ready()).await.is_err() {
                    warn!(listener = %name, missing = ?ready.missing_secrets(), "initial_fetch_timeout passed before these secrets arrived; serving: handshakes that need them fail until they do");
                }
            }
            for (rt, listener) in listeners {
                loops.spawn_on(
                    sluice_net::serve(
                        name.clone(),
                        listener,
                        chain.clone(),
                        stop.clone(),
                        conns.clone(),
                    ),
                    &rt,
                );
            }
        });
    }
    while warming.join_next().await.is_some() {}
    admin.set_listeners(addresses);
    admin.set_phase(Phase::Live);
    info!(workers = config.workers, mode = ?config.worker_mode, "sluice ready");

    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    // `/drain_listeners` closes the listeners but keeps the process (and its connections)
    // until a stop signal or `/quitquitquit`.
    let drain_listeners = async {
        admin.drain_listeners_requested().await;
        info!("admin /drain_listeners: listeners stop accepting");
        admin.set_phase(Phase::Draining);
        stop_accepting.cancel();
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: draining"),
        _ = int.recv() => info!("SIGINT: draining"),
        () = admin.quit_requested() => info!("admin /quitquitquit: draining"),
        () = drain_listeners => {}
    }

    admin.set_phase(Phase::Draining);
    stop_accepting.cancel();
    accept_loops.close();
    accept_loops.wait().await;
    connections.close();
    info!(open_connections = connections.len(), timeout = ?config.drain_timeout, "listeners closed; waiting for connections");
    tokio::select! {
        () = connections.wait() => info!("drained; exiting"),
        () = tokio::time::sleep(config.drain_timeout) => warn!(open_connections = connections.len(), "drain timeout reached; closing remaining connections"),
        _ = term.recv() => warn!("second signal: exiting now"),
        _ = int.recv() => warn!("second signal: exiting now"),
    }
    Ok(())
}
