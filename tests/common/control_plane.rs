//! The Go xDS control plane of tests/control-plane (go-control-plane), as a test peer: it
//! serves the resources of a directory, publishes a new version on `push`, and logs every
//! request (ACK / NACK with its error) to stdout, which the tests read.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::DEADLINE;

/// The control plane's binary, built by .ci/run; built here too when missing or older than
/// its sources, so `cargo test` works on its own.
pub fn binary() -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/control-plane");
    let bin = src.join("control-plane");
    let stale = || -> bool {
        let Ok(built) = std::fs::metadata(&bin).and_then(|m| m.modified()) else {
            return true;
        };
        std::fs::read_dir(&src).unwrap().flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name.ends_with(".go") || name.starts_with("go."))
                && e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|m| m > built)
        })
    };
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        if stale() {
            let out = Command::new("go")
                .args(["build", "-o", "control-plane", "."])
                .current_dir(&src)
                .output()
                .expect("go build (is Go installed?)");
            assert!(
                out.status.success(),
                "building tests/control-plane failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    bin
}

/// A running control plane. Killed on drop.
pub struct ControlPlane {
    child: Child,
    stdin: ChildStdin,
    log: PathBuf,
    /// What it listens on, as Sluice's config writes it (`127.0.0.1:PORT`, `unix:/path`).
    pub address: String,
    pushes: u32,
    _logdir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts it on `listen` (`127.0.0.1:PORT` or `unix:/path`) serving `dir`, once it says
    /// it is ready.
    pub fn start(dir: &Path, listen: &str) -> ControlPlane {
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("control-plane.log");
        let mut child = Command::new(binary())
            .arg("-dir")
            .arg(dir)
            .arg("-listen")
            .arg(listen)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut cp = ControlPlane {
            child,
            stdin,
            log,
            address: listen.to_string(),
            pushes: 1,
            _logdir: logdir,
        };
        let ready = cp.wait_line("its ready line", |l| l.starts_with("ready "));
        if !listen.starts_with("unix:") {
            cp.address = ready.trim_start_matches("ready ").trim().to_string();
        }
        cp
    }

    /// Everything it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Re-reads the directory and publishes it as the next version; returns that version
    /// once published.
    pub fn push(&mut self) -> u32 {
        writeln!(self.stdin, "push").unwrap();
        self.pushes += 1;
        let want = format!("pushed version {}", self.pushes);
        self.wait_line(&want.clone(), |l| l == want);
        self.pushes
    }

    /// Polls the log for a line matching `f`, within the deadline.
    pub fn wait_line(&mut self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self.log().lines().find(|l| f(l)) {
                return l.to_string();
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("control plane exited ({status}); log:\n{}", self.log());
            }
            assert!(
                start.elapsed() < DEADLINE,
                "control plane: timed out waiting for {what}; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
