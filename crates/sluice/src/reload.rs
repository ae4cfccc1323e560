//! Where new configs come from while the process runs: SIGHUP, and with `--watch` a change
//! of the config file's content. Either way the file is loaded and validated as
//! `sluice check` does; an invalid one is logged and counted and the running config stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{debug, error, info};

use sluice_xds::resource::Dynamic;

use crate::live::Live;
use crate::source::{Candidate, Source};

/// Sends one message each time `path`'s content differs from the last seen (first: its
/// content now). A file briefly missing, unreadable or empty (an editor or a tool replacing
/// it) is skipped, and a changed file is read again after [`SETTLE`] and taken only once two
/// reads agree: a file being written (truncated, then filled) is not loaded half-written.
pub fn watch_file(path: PathBuf, interval: Duration) -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut seen = std::fs::read(&path).ok();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(mut now) = read_nonempty(&path) else {
                debug!(path = %path.display(), "config file unreadable or empty; looking again later");
                continue;
            };
            if seen.as_ref() == Some(&now) {
                continue;
            }
            tokio::time::sleep(SETTLE).await;
            match read_nonempty(&path) {
                Some(again) if again == now => now = again,
                _ => continue,
            }
            seen = Some(now);
            // A full channel already holds a reload that will read the newest file.
            if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                return;
            }
        }
    });
    rx
}

/// How long a changed file must stay the same before it is loaded.
const SETTLE: Duration = Duration::from_millis(50);

fn read_nonempty(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path)
        .ok()
        .filter(|b| !b.iter().all(u8::is_ascii_whitespace))
}

/// Loads the config file again (with the xDS resources in force) and puts it in force;
/// `why` says what asked (for the log).
pub async fn reload(live: &mut Live, source: &mut Source, why: &str) {
    info!("{why}: reloading the config");
    let candidate = match source.reread_file() {
        Ok(c) => c,
        Err(errors) => {
            live.rejected();
            error!("{why}: the new config is invalid and was not applied; the running config stays:\n{errors}");
            return;
        }
    };
    let _ = apply(live, source, candidate, why).await;
}

/// Resources from the control plane: applied with the file in force; the error goes back
/// to the control plane as a NACK.
pub async fn xds(
    live: &mut Live,
    source: &mut Source,
    dynamic: Arc<Dynamic>,
) -> Result<(), String> {
    let candidate = match source.with_dynamic(dynamic) {
        Ok(c) => c,
        Err(errors) => {
            live.rejected();
            return Err(errors);
        }
    };
    apply(live, source, candidate, "xDS update").await
}

async fn apply(
    live: &mut Live,
    source: &mut Source,
    candidate: Candidate,
    why: &str,
) -> Result<(), String> {
    let (file, dynamic) = candidate.parts();
    match live.apply(candidate.config).await {
        Ok(changes) if changes.is_empty() => {
            info!("{why}: the config is unchanged");
            source.applied(file, dynamic);
            Ok(())
        }
        Ok(c) => {
            info!(
                listeners_added = ?c.listeners.added,
                listeners_changed = ?c.listeners.changed,
                listeners_removed = ?c.listeners.removed,
                clusters_added = c.clusters.added.len(),
                clusters_changed = c.clusters.changed.len(),
                clusters_removed = c.clusters.removed.len(),
                route_configs_changed = c.route_configs.added.len() + c.route_configs.changed.len() + c.route_configs.removed.len(),
                "{why}: new config in force"
            );
            source.applied(file, dynamic);
            Ok(())
        }
        Err(e) => {
            error!("{why}: cannot apply the new config; the running config stays: {e}");
            Err(e)
        }
    }
}
