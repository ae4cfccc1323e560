//! The `sluice` command: run a proxy, check a config, print the version.

mod config_file;
mod limits;
mod listeners;
mod live;
mod logging;
mod reload;
mod run;
mod source;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "sluice",
    about = "Sluice: a cloud-native network proxy",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log verbosity: a level (error, warn, info, debug, trace) or tracing directives
    /// (`info,sluice_net=debug`). Overrides RUST_LOG; default: RUST_LOG, else info.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Run {
        /// Config file (YAML). SIGHUP reloads it.
        #[arg(
            short,
            long,
            value_name = "FILE",
            required_unless_present = "envoy_config",
            conflicts_with = "envoy_config"
        )]
        config: Option<PathBuf>,
        /// An Envoy v3 bootstrap file (YAML) instead of a native config: its static
        /// resources, dynamic_resources (xDS), node and admin are translated. SIGHUP
        /// reloads it.
        #[arg(long, value_name = "FILE")]
        envoy_config: Option<PathBuf>,
        /// Reload the config file whenever its content changes.
        #[arg(long)]
        watch: bool,
        /// How often `--watch` looks at the file (e.g. 500ms, 2s).
        #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = sluice_config::units::parse_duration)]
        watch_interval: std::time::Duration,
    },
    /// Validate a config without binding anything; print every error found.
    Check {
        /// Config file (YAML).
        #[arg(
            short,
            long,
            value_name = "FILE",
            required_unless_present = "envoy_config",
            conflicts_with = "envoy_config"
        )]
        config: Option<PathBuf>,
        /// An Envoy v3 bootstrap file (YAML) instead of a native config.
        #[arg(long, value_name = "FILE")]
        envoy_config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Protocols beyond the built-in ones register here, before any config names them: the
    // example `kv` protocol shows how a build adds its own (docs/protocols.md).
    sluice_filters::rpc_proxy::register_protocol(std::sync::Arc::new(sluice_protocol_kv::Kv));
    match cli.command {
        Command::Version => {
            println!("sluice {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Check {
            config,
            envoy_config,
        } => match load(&config_file(config, envoy_config)) {
            Some(c) => {
                println!("ok: {}", c.summary());
                ExitCode::SUCCESS
            }
            None => ExitCode::FAILURE,
        },
        Command::Run {
            config,
            envoy_config,
            watch,
            watch_interval,
        } => {
            if let Err(e) = logging::init(cli.log_level.as_deref(), cli.log_format) {
                eprintln!("sluice: {e}");
                return ExitCode::from(2);
            }
            let file = config_file(config, envoy_config);
            let Some(loaded) = load(&file) else {
                return ExitCode::FAILURE;
            };
            let follow = run::Follow {
                watch: watch.then_some(watch_interval),
            };
            match run::run(loaded, &file, follow) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The file named by `-c` or `--envoy-config` (clap makes sure exactly one is given).
fn config_file(native: Option<PathBuf>, envoy: Option<PathBuf>) -> config_file::ConfigFile {
    match (native, envoy) {
        (_, Some(path)) => config_file::ConfigFile {
            path,
            format: config_file::Format::Envoy,
        },
        (path, None) => config_file::ConfigFile {
            path: path.unwrap_or_default(),
            format: config_file::Format::Native,
        },
    }
}

/// Loads and validates a config; on failure prints every error, one per line, as
/// `FILE:LINE: PATH: message` (the same for `check` and `run`).
fn load(file: &config_file::ConfigFile) -> Option<sluice_config::Config> {
    match file.load() {
        Ok(c) => Some(c),
        Err(errors) => {
            eprintln!("{errors}");
            None
        }
    }
}
