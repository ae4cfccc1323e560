//! Where new configs come from while the process runs: SIGHUP, and with `--watch` a change
//! of the config file's content. Either way the file is loaded and validated as
//! `sluice check` does; an invalid one is logged and counted and the running config stays.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, error, info};

use crate::live::Live;

/// Sends one message each time `path`'s content differs from the last seen (first: its
/// content now). A file briefly missing or unreadable (an editor replacing it) is skipped.
pub fn watch_file(path: PathBuf, interval: Duration) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut seen = std::fs::read(&path).ok();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(now) = std::fs::read(&path) else {
                debug!(path = %path.display(), "config file unreadable; looking again later");
                continue;
            };
            if seen.as_ref() != Some(&now) {
                seen = Some(now);
                // A full channel already holds a reload that will read the newest file.
                if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                    return;
                }
            }
        }
    });
    rx
}

/// Loads `path` and puts it in force; `why` says what asked (for the log).
pub async fn reload(live: &mut Live, path: &Path, why: &str) {
    info!(path = %path.display(), "{why}: reloading the config");
    let config = match sluice_config::load_file(path, &sluice_filters::config_registry()) {
        Ok(c) => c,
        Err(errors) => {
            live.rejected();
            error!("{why}: the new config is invalid and was not applied; the running config stays:\n{errors}");
            return;
        }
    };
    match live.apply(config).await {
        Ok(changes) if changes.is_empty() => info!("{why}: the config is unchanged"),
        Ok(c) => info!(
            listeners_added = ?c.listeners.added,
            listeners_changed = ?c.listeners.changed,
            listeners_removed = ?c.listeners.removed,
            clusters_added = ?c.clusters.added,
            clusters_changed = ?c.clusters.changed,
            clusters_removed = ?c.clusters.removed,
            route_configs_changed = c.route_configs.added.len() + c.route_configs.changed.len() + c.route_configs.removed.len(),
            "{why}: new config in force"
        ),
        Err(e) => {
            error!("{why}: cannot apply the new config; the running config stays: {e}");
        }
    }
}
