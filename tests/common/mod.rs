//! Black-box test harness: starts the real `sluice` binary on free ports, waits for readiness
//! through the admin `/ready` endpoint, and always kills the process when the test ends.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod bolt;
pub mod certs;
pub mod control_plane;
pub mod curl;
pub mod dnsmasq;
pub mod dubbo;
pub mod http1;
pub mod kv;
pub mod mesh;
pub mod nginx;
pub mod rpc;
pub mod webdriver;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// How long anything in a test may take before we call it hung. Generous: CI machines are
/// slow and shared; this bounds failures, it does not measure speed.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A loopback port nobody listens on right now, for a process the test starts to bind.
///
/// Taken below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel hands
/// out for `bind(0)` or as a connection's source port could go to another test's upstream
/// between our check and sluice's bind, making sluice exit with "address in use". Ports are
/// tried in turn from an offset set by the process id, so parallel tests (and test binaries)
/// do not race for the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = std::process::id().wrapping_mul(7919) % SPAN;
    loop {
        let port = (FIRST + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running sluice process. Killed on drop, so a failing test never leaks one.
pub struct Sluice {
    pub child: Option<Child>,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    log: PathBuf,
}

impl Sluice {
    /// Writes `yaml` (with `{admin}` replaced by a free admin address) and runs sluice on it,
    /// returning once `/ready` answers 200.
    pub fn start(yaml: &str) -> Sluice {
        Self::start_with(yaml, &[])
    }

    pub fn start_with(yaml: &str, extra_args: &[&str]) -> Sluice {
        let mut s = Self::spawn(yaml, extra_args);
        s.wait_ready();
        s
    }

    /// Starts the process without waiting for readiness.
    pub fn spawn(yaml: &str, extra_args: &[&str]) -> Sluice {
        Self::spawn_file(
            "sluice.yaml",
            "-c",
            |admin| yaml.replace("{admin}", &admin.to_string()),
            extra_args,
        )
    }

    /// Writes the Envoy v3 bootstrap `yaml` as `envoy.yaml` (with `{admin_port}` replaced by
    /// a free port: its `admin` must listen on 127.0.0.1) and runs
    /// `sluice run --envoy-config` on it, returning once `/ready` answers 200.
    pub fn start_envoy(yaml: &str, extra_args: &[&str]) -> Sluice {
        let mut s = Self::spawn_envoy(yaml, extra_args);
        s.wait_ready();
        s
    }

    /// [`Sluice::start_envoy`] without waiting for readiness.
    pub fn spawn_envoy(yaml: &str, extra_args: &[&str]) -> Sluice {
        Self::spawn_file(
            "envoy.yaml",
            "--envoy-config",
            |admin| yaml.replace("{admin_port}", &admin.port().to_string()),
            extra_args,
        )
    }

    /// Writes the config `file` (its text made by `render` from the chosen admin address)
    /// in a new temporary folder and runs `sluice run FLAG FILE EXTRA_ARGS...` on it.
    fn spawn_file(
        file: &str,
        flag: &str,
        render: impl FnOnce(SocketAddr) -> String,
        extra_args: &[&str],
    ) -> Sluice {
        let dir = tempfile::tempdir().unwrap();
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.path().join(file);
        std::fs::write(&config, render(admin)).unwrap();
        let log = dir.path().join("sluice.log");
        let child = Command::new(BIN)
            .arg("run")
            .arg(flag)
            .arg(&config)
            .args(extra_args)
            .env("RUST_LOG", "debug")
            .stdout(std::fs::File::create(dir.path().join("sluice.stdout")).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Sluice {
            child: Some(child),
            admin,
            dir,
            config,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Everything the process wrote to its stdout so far (access logs to `stdout`).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sluice.stdout")).unwrap_or_default()
    }

    /// Polls `/ready` until it answers 200; fails the test (with the process's log) if the
    /// process exits or the deadline passes first.
    pub fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "sluice exited before ready ({status}); log:\n{}",
                    self.log()
                );
            }
            if let Ok((200, _)) = http_get(self.admin, "/ready") {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "sluice not ready in time; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: &str) {
        signal(self.pid(), sig);
    }

    /// Waits for the process to exit by itself, within the deadline.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "sluice did not exit in time; log:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resident memory of the process, from /proc.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The most resident memory the process has had (VmHWM), from /proc.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Sluice {
    /// Polls `f` until it returns `Some`, failing with `what`, the admin's `/clusters` and the
    /// process's log at the deadline: waiting on a state change without a fixed sleep.
    pub fn poll<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; /clusters:\n{}\nlog:\n{}",
                http_get(self.admin, "/clusters").map_or_else(|e| e.to_string(), |(_, b)| b),
                self.log()
            );
            thread::sleep(Duration::from_millis(25));
        }
    }
}

/// Waits for a test peer started with a piped stdout to print its first line, `ready`, and
/// keeps draining the rest so the peer never blocks on a full pipe. Panics, naming `what`, on
/// any other first line or at the deadline (the caller holds the child where its drop kills
/// it).
pub fn wait_for_ready_line(child: &mut Child, what: &str) {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("the peer's stdout is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next());
        for _ in lines {}
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(Some(Ok(line))) if line == "ready" => {}
        Ok(other) => panic!("{what}: expected \"ready\", got {other:?}"),
        Err(e) => panic!("{what}: not ready within {DEADLINE:?} ({e})"),
    }
}

/// A counter or gauge of the admin's text `/stats` (`cluster.up.upstream_rq_total`), 0 when it
/// is not there (yet).
pub fn stat(sluice: &Sluice, name: &str) -> u64 {
    let (code, body) = http_get(sluice.admin, "/stats").unwrap();
    assert_eq!(code, 200);
    body.lines()
        .find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(": ")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// A minimal HTTP/1.1 GET: (status, body). The admin server is the thing under test here,
/// not an HTTP client, so a few lines of std suffice.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad response: {resp:?}")))?;
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// Runs `sluice` with arguments to completion: (exit code, stdout, stderr).
pub fn sluice_cmd(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An upstream that echoes every byte back, one thread per connection. Returns its address.
pub fn echo_server() -> SocketAddr {
    spawn_server(|mut conn| {
        let mut r = conn.try_clone().unwrap();
        let _ = std::io::copy(&mut r, &mut conn);
        let _ = conn.shutdown(std::net::Shutdown::Write);
    })
}

/// An upstream on a Unix socket at `path` that echoes every byte back.
pub fn unix_echo_server(path: &Path) {
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                let mut r = conn.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut conn);
            });
        }
    });
}

/// Asserts that the peer closed `s` (EOF or reset) rather than sending data or leaving it open
/// until the read deadline.
pub fn assert_closed(s: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("{what}: expected the connection to be closed, got {other:?}"),
    }
}

/// An upstream that accepts connections and never answers (reads and discards until EOF).
pub fn silent_server() -> SocketAddr {
    spawn_server(|mut conn| {
        let _ = std::io::copy(&mut conn, &mut std::io::sink());
    })
}

/// A loopback test server: every accepted connection is handed to `handle` on its own thread.
pub fn spawn_server<F>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let handle = std::sync::Arc::new(handle);
    thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { continue };
            let handle = handle.clone();
            thread::spawn(move || handle(conn));
        }
    });
    addr
}

/// A TCP connection with read/write timeouts so a bug shows as a failure, not a hang.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_write_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Sends `msg` and expects it echoed back exactly.
pub fn roundtrip(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).unwrap();
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(buf, msg);
}

/// A port that refuses connections: bound once, then released.
pub fn refused_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// Sends `sig` (`STOP`, `CONT`, `HUP`...) to a process, with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}
