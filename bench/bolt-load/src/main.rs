//! bolt-load: a SOFARPC Bolt echo load generator and echo server, for bench/bolt.sh.
//!
//! ```text
//! bolt-load load --address 127.0.0.1:P [--connections 8] [--inflight 32] [--warmup 2]
//!                [--duration 10] [--requests N] [--payload 32] [--service com.example.Echo:1.0]
//!                [--tag bench] [--bolt 1|2] [--crc] [--timeout-ms 3000] [--stall 10]
//! bolt-load server --listen 127.0.0.1:P [--tag bench]
//! ```
//!
//! `load` calls `echo(arg)` on `service` as sofa-rpc-node does (hessian2), keeping `inflight`
//! calls in flight on each of `connections` connections, and checks every response (id,
//! status, `"<tag>:" + arg`). It runs `warmup` + `duration` seconds and measures the
//! `duration` part, or makes exactly `requests` calls when that is given. It prints one JSON
//! line (req/s, latency percentiles in microseconds, errors by kind) on stdout and a summary on
//! stderr, and exits 1 if any call failed or none succeeded.
//!
//! `server` answers `echo(s)` with `"<tag>:" + s`, as tests/bolt/server.js does, and prints
//! `ready <address>` once listening.

mod load;
mod server;
mod wire;

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: bolt-load load --address HOST:PORT [--connections N] [--inflight M] \
[--warmup S] [--duration S] [--requests N] [--payload BYTES] [--service S] [--tag T] \
[--bolt 1|2] [--crc] [--timeout-ms MS] [--stall S]\n       bolt-load server --listen HOST:PORT [--tag T]";

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("bolt-load: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<bool, String> {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().ok_or("no mode")?;
    let mut flags: HashMap<String, String> = HashMap::new();
    let rest: Vec<String> = argv.collect();
    let mut i = 0;
    while i < rest.len() {
        let name = rest[i]
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {}", rest[i]))?;
        if name == "crc" {
            flags.insert(name.into(), "1".into());
            i += 1;
        } else {
            let value = rest
                .get(i + 1)
                .ok_or_else(|| format!("--{name} needs a value"))?;
            flags.insert(name.into(), value.clone());
            i += 2;
        }
    }
    let mut take = |name: &str| flags.remove(name);
    fn num<T: std::str::FromStr>(name: &str, v: Option<String>, default: T) -> Result<T, String> {
        match v {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| format!("--{name}: not a number: {s}")),
        }
    }
    let result = match mode.as_str() {
        "server" => {
            let listen = take("listen").ok_or("--listen is required")?;
            let opts = server::Options {
                listen: listen
                    .parse()
                    .map_err(|_| format!("--listen: bad address {listen}"))?,
                tag: take("tag").unwrap_or_else(|| "bench".into()),
            };
            check_unused(&flags)?;
            server::run(opts).map(|()| true)
        }
        "load" => {
            let address = take("address").ok_or("--address is required")?;
            let version = match (take("bolt").as_deref(), take("crc").is_some()) {
                (None | Some("1"), false) => wire::Version::V1,
                (Some("2"), crc) => wire::Version::V2 { crc },
                _ => return Err("--bolt is 1 or 2; --crc needs --bolt 2".into()),
            };
            let secs = |v: f64| Duration::from_secs_f64(v.max(0.0));
            let opts = load::Options {
                address: address
                    .parse()
                    .map_err(|_| format!("--address: bad address {address}"))?,
                connections: num("connections", take("connections"), 8usize)?.max(1),
                inflight: num("inflight", take("inflight"), 32usize)?.max(1),
                warmup: secs(num("warmup", take("warmup"), 2.0)?),
                duration: secs(num("duration", take("duration"), 10.0)?),
                requests: take("requests")
                    .map(|v| v.parse())
                    .transpose()
                    .map_err(|_| "--requests: not a number")?,
                payload: num("payload", take("payload"), 32usize)?,
                service: take("service").unwrap_or_else(|| "com.example.Echo:1.0".into()),
                tag: take("tag").unwrap_or_else(|| "bench".into()),
                version,
                timeout_ms: num("timeout-ms", take("timeout-ms"), 3000i32)?,
                stall: secs(num("stall", take("stall"), 10.0)?),
            };
            check_unused(&flags)?;
            load::run(opts)
        }
        other => Err(format!("unknown mode {other}")),
    };
    result
}

fn check_unused(flags: &HashMap<String, String>) -> Result<(), String> {
    match flags.keys().next() {
        Some(k) => Err(format!("unknown option --{k}")),
        None => Ok(()),
    }
}
