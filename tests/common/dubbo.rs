//! Apache Dubbo's own Java library as real peers (tests/dubbo, built by `.ci/run`): a provider
//! exporting `com.example.Echo` and a consumer that makes many calls in one JVM and reports
//! them as one JSON line. Both speak the dubbo protocol with hessian2, no registry.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::free_port;

/// JVMs start slowly, more so on a loaded CI machine: their own, longer bound.
pub const JVM_DEADLINE: Duration = Duration::from_secs(90);

/// `java` options for a short-lived test JVM: fast startup over peak speed.
const JVM_OPTS: &[&str] = &["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xmx256m"];

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/dubbo")
}

/// The fixture's classpath; fails the test with how to build it if it is not built.
fn classpath() -> String {
    let dir = fixture_dir().join("target");
    let classes = dir.join("classes/com/example/Provider.class");
    assert!(
        classes.exists() && dir.join("lib").is_dir(),
        "the Dubbo fixture is not built ({} missing): run `bash .ci/run`, or \
         `mvn -q -B -f tests/dubbo/pom.xml package`",
        classes.display()
    );
    format!(
        "{}:{}/*",
        dir.join("classes").display(),
        dir.join("lib").display()
    )
}

fn java(main: &str) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(JVM_OPTS)
        .arg("-cp")
        .arg(classpath())
        .arg(format!("com.example.{main}"))
        .stdin(Stdio::null());
    cmd
}

/// How to start a provider.
#[derive(Debug, Clone)]
pub struct ProviderOpts {
    /// Prefixes every `echo` answer ("tag:arg"), to tell providers apart.
    pub tag: String,
    pub version: String,
    pub group: Option<String>,
    /// Its thread pool (small, to make it answer SERVER_THREADPOOL_EXHAUSTED_ERROR).
    pub threads: Option<u32>,
}

impl ProviderOpts {
    pub fn new(tag: &str) -> Self {
        ProviderOpts {
            tag: tag.into(),
            version: "1.0".into(),
            group: None,
            threads: None,
        }
    }

    pub fn version(mut self, v: &str) -> Self {
        self.version = v.into();
        self
    }

    pub fn group(mut self, g: &str) -> Self {
        self.group = Some(g.into());
        self
    }

    pub fn threads(mut self, n: u32) -> Self {
        self.threads = Some(n);
        self
    }
}

/// A running provider. Killed on drop.
pub struct Provider {
    child: Child,
    pub addr: SocketAddr,
    log: tempfile::NamedTempFile,
}

impl Provider {
    /// Tag `tag`, version 1.0, no group, on a free loopback port.
    pub fn start(tag: &str) -> Provider {
        Provider::start_with(ProviderOpts::new(tag))
    }

    pub fn start_with(opts: ProviderOpts) -> Provider {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Provider::start_at(addr, opts)
    }

    /// Starts on `addr` (127.0.0.1 only: the provider binds loopback) and returns once it
    /// printed "ready", i.e. its port accepts calls.
    pub fn start_at(addr: SocketAddr, opts: ProviderOpts) -> Provider {
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = java("Provider");
        cmd.args(["--port", &addr.port().to_string()]).args([
            "--tag",
            &opts.tag,
            "--version",
            &opts.version,
        ]);
        if let Some(g) = &opts.group {
            cmd.args(["--group", g]);
        }
        if let Some(n) = opts.threads {
            cmd.args(["--threads", &n.to_string()]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("java must be installed (.ci/run builds the Dubbo fixture with Maven)");
        let stdout = child.stdout.take().unwrap();
        let provider = Provider { child, addr, log };
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the JVM never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(JVM_DEADLINE) {
            Ok(Some(Ok(line))) if line == "ready" => provider,
            Ok(other) => panic!(
                "dubbo provider {}: expected \"ready\", got {other:?}; log:\n{}",
                opts.tag,
                provider.log()
            ),
            Err(e) => panic!(
                "dubbo provider {}: not ready within {JVM_DEADLINE:?} ({e}); log:\n{}",
                opts.tag,
                provider.log()
            ),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the JVM logged (Dubbo logs to stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One consumer run: `count` calls of `method` on the `Echo` service at an address.
#[derive(Debug, Clone)]
pub struct Consumer {
    args: Vec<String>,
}

impl Consumer {
    /// Calls `echo("x#i")` once on version 1.0 at `addr`.
    pub fn new(addr: SocketAddr) -> Consumer {
        Consumer {
            args: vec!["--address".into(), addr.to_string()],
        }
    }

    fn opt(mut self, name: &str, value: impl ToString) -> Self {
        self.args.push(format!("--{name}"));
        self.args.push(value.to_string());
        self
    }

    /// `echo` (answers "tag:arg#i"), `fail` (throws), `attachment` (answers the value of the
    /// attachment named by `arg`) or `slow` (sleeps `arg` ms).
    pub fn method(self, m: &str) -> Self {
        self.opt("method", m)
    }

    pub fn arg(self, a: impl ToString) -> Self {
        self.opt("arg", a)
    }

    pub fn count(self, n: u32) -> Self {
        self.opt("count", n)
    }

    pub fn concurrency(self, n: u32) -> Self {
        self.opt("concurrency", n)
    }

    pub fn version(self, v: &str) -> Self {
        self.opt("version", v)
    }

    pub fn group(self, g: &str) -> Self {
        self.opt("group", g)
    }

    /// Sent with every call (each call also carries `call-index` = its index).
    pub fn attachment(self, k: &str, v: &str) -> Self {
        self.opt("attachment", format!("{k}={v}"))
    }

    /// The consumer's per-call timeout (default 3000 ms).
    pub fn timeout_ms(self, ms: u64) -> Self {
        self.opt("timeout", ms)
    }

    /// Dubbo's heartbeat interval on the connection (default 60 s).
    pub fn heartbeat_ms(self, ms: u64) -> Self {
        self.opt("heartbeat", ms)
    }

    /// Stays connected this long after the calls (to see heartbeats).
    pub fn linger_ms(self, ms: u64) -> Self {
        self.opt("linger", ms)
    }

    /// Runs the consumer to completion and parses its report; fails the test if it does not
    /// finish within the deadline or prints no report.
    pub fn run(&self) -> Report {
        let dir = tempfile::tempdir().unwrap();
        let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut child = java("Consumer")
            .args(&self.args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("java must be installed (.ci/run builds the Dubbo fixture with Maven)");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > JVM_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let stdout = std::fs::read_to_string(&out).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err).unwrap_or_default();
        let line = stdout.lines().rfind(|l| l.starts_with('{'));
        match (status, line) {
            (Some(s), Some(line)) if s.success() => Report::parse(line),
            _ => panic!(
                "dubbo consumer {:?}: status {status:?}, no report; stdout:\n{stdout}\nstderr:\n{stderr}",
                self.args
            ),
        }
    }
}

/// What a consumer run saw.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Calls answered with the expected value.
    pub ok: u64,
    /// Calls that raised an exception.
    pub errors: u64,
    /// Calls answered with another call's value (crossed request ids) or a wrong one.
    pub mismatches: u64,
    /// Answers per provider tag (`echo` and `slow`).
    pub tags: BTreeMap<String, u64>,
    /// Exceptions per Java class name.
    pub error_types: BTreeMap<String, u64>,
    /// The first distinct exception messages.
    pub error_messages: Vec<String>,
    pub mismatch_examples: Vec<String>,
    pub elapsed_ms: u64,
    /// The JSON line as printed.
    pub raw: String,
}

impl Report {
    fn parse(line: &str) -> Report {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("consumer report is not JSON ({e}): {line}"));
        let num = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("no {k} in {line}"));
        let counts = |k: &str| -> BTreeMap<String, u64> {
            v[k].as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, n)| (k.clone(), n.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        Report {
            ok: num("ok"),
            errors: num("errors"),
            mismatches: num("mismatches"),
            tags: counts("tags"),
            error_types: counts("error_types"),
            error_messages: strings("error_messages"),
            mismatch_examples: strings("mismatch_examples"),
            elapsed_ms: num("elapsed_ms"),
            raw: line.to_string(),
        }
    }

    /// Whether some error message contains `text`.
    pub fn has_error(&self, text: &str) -> bool {
        self.error_messages.iter().any(|m| m.contains(text))
    }
}
