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
    /// Exports the service once per entry (`"2.0"`, `"1.0:a"`: version and optional group)
    /// instead of `version`/`group`.
    pub exports: Vec<String>,
}

impl ProviderOpts {
    pub fn new(tag: &str) -> Self {
        ProviderOpts {
            tag: tag.into(),
            version: "1.0".into(),
            group: None,
            threads: None,
            exports: Vec::new(),
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

    /// Also exports version `version` in `group` (if any); see [`ProviderOpts::exports`].
    pub fn export(mut self, version: &str, group: Option<&str>) -> Self {
        self.exports.push(match group {
            Some(g) => format!("{version}:{g}"),
            None => version.to_string(),
        });
        self
    }
}

/// A running provider. Killed on drop.
pub struct Provider {
    child: Child,
    pub addr: SocketAddr,
    log: tempfile::NamedTempFile,
    /// The lines it printed after "ready".
    lines: mpsc::Receiver<String>,
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
        for e in &opts.exports {
            cmd.args(["--export", e]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("java must be installed (.ci/run builds the Dubbo fixture with Maven)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let (line_tx, lines) = mpsc::channel();
        let provider = Provider {
            child,
            addr,
            log,
            lines,
        };
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the JVM never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
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

    /// The connections calls have come in on so far, by their remote address (sorted), as
    /// the provider counts them.
    pub fn connections(&mut self) -> Vec<String> {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"connections\n").unwrap();
        stdin.flush().unwrap();
        loop {
            match self.lines.recv_timeout(JVM_DEADLINE) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("connections") {
                        return rest.split_whitespace().map(String::from).collect();
                    }
                }
                Err(e) => panic!(
                    "dubbo provider: no connections line ({e}); log:\n{}",
                    self.log()
                ),
            }
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One consumer JVM: calls of the `Echo` service at an address, in one or more steps that
/// run one after the other on the same connection(s) (one JVM start for many checks).
#[derive(Debug, Clone)]
pub struct Consumer {
    /// Options of the whole run (address, timeout, heartbeat, connections, linger).
    global: Vec<String>,
    /// Each step's options; the last is the one the step options go to.
    steps: Vec<Vec<String>>,
}

impl Consumer {
    /// Calls `echo("x#i")` once on version 1.0 at `addr`.
    /// A consumer of `addr` with a 15 s call timeout (Dubbo's own 3 s is too short on a loaded
    /// CI machine; `timeout_ms` sets another).
    pub fn new(addr: SocketAddr) -> Consumer {
        Consumer {
            global: vec![
                "--address".into(),
                addr.to_string(),
                "--timeout".into(),
                "15000".into(),
            ],
            steps: vec![Vec::new()],
        }
    }

    fn opt(mut self, name: &str, value: impl ToString) -> Self {
        let step = self.steps.last_mut().unwrap();
        step.push(format!("--{name}"));
        step.push(value.to_string());
        self
    }

    fn global(mut self, name: &str, value: impl ToString) -> Self {
        self.global.push(format!("--{name}"));
        self.global.push(value.to_string());
        self
    }

    /// Starts another step: the step options that follow are its own (each step starts from
    /// the defaults: one `echo` call on version 1.0, no group, no attachment).
    pub fn then(mut self) -> Self {
        self.steps.push(Vec::new());
        self
    }

    /// `echo` (answers "tag:arg#i"), `fail` (throws), `attachment` (answers the value of the
    /// attachment named by `arg`), `slow` (sleeps `arg` ms) or `gather` (the provider holds
    /// every call of the step until all `count` are in, then answers "tag:arg#i").
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

    /// Sent with every call of the step (each call also carries `call-index` = its index).
    pub fn attachment(self, k: &str, v: &str) -> Self {
        self.opt("attachment", format!("{k}={v}"))
    }

    /// Waits this long, connected, before the step.
    pub fn idle_ms(self, ms: u64) -> Self {
        self.opt("idle", ms)
    }

    /// Waits for [`RunningConsumer::go`] before the step.
    pub fn await_go(self) -> Self {
        self.opt("await", true)
    }

    /// The consumer's per-call timeout (default 3000 ms).
    pub fn timeout_ms(self, ms: u64) -> Self {
        self.global("timeout", ms)
    }

    /// Dubbo's heartbeat interval on the connection (default 60 s).
    pub fn heartbeat_ms(self, ms: u64) -> Self {
        self.global("heartbeat", ms)
    }

    /// Connections to the address (Dubbo's `connections`; default one shared connection).
    pub fn connections(self, n: u32) -> Self {
        self.global("connections", n)
    }

    /// Stays connected this long after the last step (to see heartbeats).
    pub fn linger_ms(self, ms: u64) -> Self {
        self.global("linger", ms)
    }

    fn args(&self) -> Vec<String> {
        let mut args = self.global.clone();
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                args.push("--then".into());
            }
            args.extend(step.iter().cloned());
        }
        args
    }

    /// Starts the JVM; read its step reports as they come with [`RunningConsumer::report`].
    pub fn spawn(&self) -> RunningConsumer {
        let dir = tempfile::tempdir().unwrap();
        let err = dir.path().join("stderr");
        let args = self.args();
        let mut child = java("Consumer")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("java must be installed (.ci/run builds the Dubbo fixture with Maven)");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        RunningConsumer {
            child,
            args,
            lines,
            stdout: Vec::new(),
            _dir: dir,
            err,
            started: Instant::now(),
        }
    }

    /// Runs a one-step consumer to completion and returns its report; fails the test if it
    /// does not finish within the deadline or prints no report.
    pub fn run(&self) -> Report {
        assert_eq!(
            self.steps.len(),
            1,
            "a consumer of several steps: use run_steps"
        );
        self.run_steps().pop().unwrap()
    }

    /// Runs every step to completion: one report per step.
    pub fn run_steps(&self) -> Vec<Report> {
        let mut running = self.spawn();
        let reports = (0..self.steps.len()).map(|_| running.report()).collect();
        running.finish();
        reports
    }
}

/// A consumer JVM running its steps. Killed on drop.
pub struct RunningConsumer {
    child: Child,
    args: Vec<String>,
    lines: mpsc::Receiver<String>,
    /// Every line it printed so far.
    stdout: Vec<String>,
    _dir: tempfile::TempDir,
    err: PathBuf,
    started: Instant,
}

impl RunningConsumer {
    /// The next step's report; fails the test with the JVM's output if none comes within the
    /// deadline (counted from the JVM's start) or the JVM exits first.
    pub fn report(&mut self) -> Report {
        loop {
            let left = JVM_DEADLINE.saturating_sub(self.started.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.starts_with('{') {
                        return Report::parse(&line);
                    }
                }
                Err(e) => self.fail(&format!("no step report ({e})")),
            }
        }
    }

    /// Lets a step made with [`Consumer::await_go`] begin.
    pub fn go(&mut self) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        if stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .is_err()
        {
            self.fail("the consumer is gone (stdin closed)");
        }
    }

    /// Waits for the JVM to exit (after its last step and linger); fails the test if it does
    /// not exit cleanly within the deadline.
    pub fn finish(mut self) {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    self.fail(&format!("exited with {status}"));
                }
                return;
            }
            if self.started.elapsed() > JVM_DEADLINE {
                self.fail("did not exit within the deadline");
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = std::fs::read_to_string(&self.err).unwrap_or_default();
        panic!(
            "dubbo consumer {:?}: {why}; stdout:\n{}\nstderr:\n{stderr}",
            self.args,
            self.stdout.join("\n")
        );
    }
}

impl Drop for RunningConsumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    /// Which step of its consumer this is (from 0).
    pub step: u64,
    /// Answers per provider tag (`echo`, `slow` and `gather`).
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
            step: num("step"),
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
