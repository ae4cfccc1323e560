//! Log setup: `tracing` to stderr, text for people or JSON for collectors. The filter can be
//! replaced at run time (admin `/logging`), through a reload handle kept here.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::reload::Handle;
use tracing_subscriber::{EnvFilter, Registry};

use crate::LogFormat;

/// Swaps the filter in place; set once by [`init`].
static RELOAD: OnceLock<Handle<EnvFilter, Registry>> = OnceLock::new();

pub fn init(level: Option<&str>, format: LogFormat) -> anyhow::Result<()> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l)
            .map_err(|e| anyhow::anyhow!("invalid --log-level \"{l}\": {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    // The filter sits right on the registry, behind a reload layer, so its handle's type
    // does not depend on the output format.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let _ = RELOAD.set(handle);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour only for people at a terminal; files and collectors get plain text.
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(fmt).try_init()?,
        LogFormat::Json => registry.with(fmt.json().flatten_event(true)).try_init()?,
    }
    Ok(())
}

/// The filter in force (`info`, `info,sluice_net=debug`).
pub fn current() -> Result<String, String> {
    let handle = RELOAD.get().ok_or("logging is not set up")?;
    handle
        .with_current(|f| f.to_string())
        .map_err(|e| e.to_string())
}

/// Replaces the filter with `directives` (EnvFilter syntax: `debug`, or
/// `info,sluice_net=debug,rustls=warn`); the old one stays on a bad directive.
pub fn set(directives: &str) -> Result<String, String> {
    let filter = EnvFilter::try_new(directives)
        .map_err(|e| format!("invalid filter \"{directives}\": {e}"))?;
    let handle = RELOAD.get().ok_or("logging is not set up")?;
    handle.reload(filter).map_err(|e| e.to_string())?;
    current()
}

/// The admin's handle on the filter.
pub struct Control;

impl sluice_admin::LogControl for Control {
    fn current(&self) -> Result<String, String> {
        current()
    }

    fn set(&self, directives: &str) -> Result<String, String> {
        let now = set(directives)?;
        tracing::info!(filter = %now, "log filter changed");
        Ok(now)
    }
}
