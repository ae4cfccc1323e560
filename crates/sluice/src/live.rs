//! The configuration in force, and putting a new one in force while traffic flows.
//!
//! A new config is applied in two steps. Prepare builds everything it changes (clusters,
//! route tables, listener chains, new sockets) without touching what serves; any failure
//! rejects the whole config and the old one keeps serving. Commit then publishes: clusters
//! and route tables first (requests from now on see them, connections already open
//! included), then listeners: a removed one closes and drains, a changed one gives its new
//! connections the new chains while the old connections drain (`drain_timeout`), an added
//! one starts accepting. Requests in flight finish on the snapshot they started with.

use std::sync::Arc;

use sluice_admin::AdminState;
use sluice_config::diff::{self, Changes};
use sluice_config::Config;
use sluice_filters::routes::RouteTables;
use sluice_filters::BuildContext;
use sluice_stats::Counter;
use tracing::{info, warn};

use crate::listeners::Listeners;

pub struct Live {
    /// What was built from the config in force (`ctx.config`).
    pub ctx: BuildContext,
    pub listeners: Listeners,
    admin: Arc<AdminState>,
    stats: ReloadStats,
}

/// `config_reload.*`: what became of each new config offered (file change, SIGHUP).
struct ReloadStats {
    attempt: Arc<Counter>,
    success: Arc<Counter>,
    rejected: Arc<Counter>,
}

impl Live {
    pub fn new(ctx: BuildContext, listeners: Listeners, admin: Arc<AdminState>) -> Live {
        let store = sluice_stats::store();
        Live {
            ctx,
            listeners,
            admin,
            stats: ReloadStats {
                attempt: store.counter("config_reload.update_attempt"),
                success: store.counter("config_reload.update_success"),
                rejected: store.counter("config_reload.update_rejected"),
            },
        }
    }

    /// A config that failed to load (its errors are logged by the caller): counted.
    pub fn rejected(&self) {
        self.stats.attempt.inc();
        self.stats.rejected.inc();
    }

    /// Puts `new` in force, or leaves everything as it is and says why not.
    pub async fn apply(&mut self, new: Config) -> Result<Changes, String> {
        self.stats.attempt.inc();
        let result = self.try_apply(new).await;
        match &result {
            Ok(_) => self.stats.success.inc(),
            Err(_) => self.stats.rejected.inc(),
        }
        result
    }

    async fn try_apply(&mut self, new: Config) -> Result<Changes, String> {
        let changes = diff::diff(&self.ctx.config, &new);
        if !changes.need_restart.is_empty() {
            warn!(keys = ?changes.need_restart, "these top-level settings changed; they take effect at the next restart, the running values are kept");
        }
        let config = Arc::new(keep_restart_settings(&self.ctx.config, new));

        // Prepare: nothing below changes what serves.
        let routes = RouteTables::compile(&config)?;
        let clusters = self
            .ctx
            .clusters
            .prepare(&config, &self.ctx.secrets, &changes.clusters)?;
        let ctx = BuildContext {
            config: config.clone(),
            ..self.ctx.clone()
        };
        let mut listeners = Vec::new();
        for l in &config.listeners {
            let (added, changed) = (
                changes.listeners.added.contains(&l.name),
                changes.listeners.changed.contains(&l.name),
            );
            if !added && !changed {
                continue;
            }
            let chains = sluice_filters::build_listener(l, &ctx).map_err(|e| e.to_string())?;
            let sockets = if changed && self.listeners.same_sockets(&l.name, l) {
                Sockets::Kept
            } else if self.listeners.serves_address(&l.address) {
                // The port is a running listener's (one that moves or goes): bound once
                // that one has closed.
                Sockets::AfterClose
            } else {
                Sockets::Bound(
                    self.listeners
                        .bind(l)
                        .map_err(|e| format!("listener \"{}\": {e:#}", l.name))?,
                )
            };
            listeners.push((l, chains, sockets));
        }

        // Commit.
        self.ctx.clusters.commit(clusters);
        self.ctx.http_upstreams.update(&self.ctx.clusters);
        self.ctx.routes.commit(routes);
        let drain = config.drain_timeout;
        for name in &changes.listeners.removed {
            self.listeners.remove(name, drain).await;
        }
        for (l, chains, sockets) in listeners {
            // A changed listener with new sockets: its old ones close first (a no-op for an
            // added listener).
            let sockets = match sockets {
                Sockets::Kept => {
                    self.listeners.replace(l, chains, drain);
                    info!(listener = %l.name, "listener config replaced: new connections use it, the old ones drain");
                    continue;
                }
                Sockets::Bound(s) => {
                    self.listeners.remove(&l.name, drain).await;
                    s
                }
                Sockets::AfterClose => {
                    self.listeners.remove(&l.name, drain).await;
                    match self.listeners.bind(l) {
                        Ok(s) => s,
                        Err(e) => {
                            // Too late to reject: the rest of the config is in force.
                            warn!(listener = %l.name, error = %format!("{e:#}"), "cannot bind the new listener; it stays closed");
                            continue;
                        }
                    }
                }
            };
            if let Err(e) = self.listeners.add(l, sockets, chains, None) {
                warn!(listener = %l.name, error = %format!("{e:#}"), "cannot start the new listener");
            }
        }
        self.ctx = ctx;
        self.admin.set_config(config.document.clone());
        self.admin.set_listeners(self.listeners.addresses());
        Ok(changes)
    }
}

/// Where a listener to start gets its sockets.
enum Sockets {
    /// It is a changed listener keeping its sockets.
    Kept,
    /// Bound while preparing.
    Bound(Vec<sluice_net::BoundListener>),
    /// Its address is a running listener's that closes at commit.
    AfterClose,
}

/// `new` with the values of the settings a running process does not change (see
/// [`diff::RESTART_KEYS`]) taken from `old`.
fn keep_restart_settings(old: &Config, new: Config) -> Config {
    Config {
        admin: old.admin.clone(),
        workers: old.workers,
        worker_mode: old.worker_mode,
        node: old.node.clone(),
        sds: old.sds.clone(),
        xds: old.xds.clone(),
        tracing: old.tracing.clone(),
        stats_flush_interval: old.stats_flush_interval,
        stats_sinks: old.stats_sinks.clone(),
        ..new
    }
}
