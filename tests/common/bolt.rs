//! Real SOFARPC Bolt peers from tests/bolt (sofa-rpc-node): the echo server, started on a port
//! of the test's choosing and killed on drop, and the load client, run to completion with its
//! one-line JSON result parsed. `.ci/run` installs their node modules (`npm ci` in tests/bolt).

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, DEADLINE};

/// tests/bolt, where the scripts and their node_modules live.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/bolt")
}

fn node(script: &str) -> Command {
    let dir = fixture_dir();
    assert!(
        dir.join("node_modules/sofa-rpc-node").is_dir(),
        "tests/bolt/node_modules is missing: run `npm ci` in tests/bolt (.ci/run does)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script)).current_dir(&dir);
    cmd
}

fn spawn(mut cmd: Command, what: &str) -> Child {
    match cmd.spawn() {
        Ok(child) => child,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("{what}: node is not installed (the Bolt peers are sofa-rpc-node)")
        }
        Err(e) => panic!("{what}: cannot start node: {e}"),
    }
}

/// A running tests/bolt/server.js publishing `com.example.Echo`. Killed on drop.
pub struct BoltServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub tag: String,
    version: String,
}

impl BoltServer {
    /// The echo server answering as `tag` (`echo(s)` returns `"<tag>:" + s`), version 1.0.
    pub fn start(tag: &str) -> BoltServer {
        BoltServer::start_version(tag, "1.0")
    }

    /// The same, publishing the service at `version`.
    pub fn start_version(tag: &str, version: &str) -> BoltServer {
        let addr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        BoltServer::start_on(addr, tag, version)
    }

    /// On a given loopback address (only its port is used: the server binds 127.0.0.1).
    pub fn start_on(addr: SocketAddr, tag: &str, version: &str) -> BoltServer {
        let mut s = BoltServer {
            child: None,
            addr,
            tag: tag.to_string(),
            version: version.to_string(),
        };
        s.resume();
        s
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server: its port refuses connections until [`BoltServer::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port; returns once it printed "ready".
    pub fn resume(&mut self) {
        let mut cmd = node("server.js");
        cmd.args(["--port", &self.addr.port().to_string()])
            .args(["--tag", &self.tag, "--version", &self.version])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let child = self.child.insert(spawn(cmd, "bolt server"));
        super::wait_for_ready_line(child, &format!("bolt server {}", self.tag));
    }
}

impl Drop for BoltServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// What one run of tests/bolt/client.js saw.
#[derive(Debug, Clone, Default)]
pub struct ClientRun {
    pub ok: u64,
    pub errors: u64,
    /// Echo results that did not carry their own call's argument (crossed request ids).
    pub mismatched: u64,
    /// Echo results per server tag.
    pub tags: BTreeMap<String, u64>,
    /// The first few results.
    pub results: Vec<String>,
    /// Distinct error messages (at most 10) and error names.
    pub error_messages: Vec<String>,
    pub error_names: Vec<String>,
    /// The JSON line, for assertion messages.
    pub raw: String,
}

impl ClientRun {
    /// Whether some error message contains `needle`.
    pub fn has_error(&self, needle: &str) -> bool {
        self.error_messages.iter().any(|m| m.contains(needle))
    }
}

/// A tests/bolt/client.js invocation: defaults are one `echo("hello-0")` call to
/// `com.example.Echo:1.0` in Bolt v1 with a 3 s timeout.
#[derive(Debug, Clone)]
pub struct BoltClient {
    args: Vec<String>,
}

impl BoltClient {
    pub fn new(addr: SocketAddr) -> BoltClient {
        BoltClient {
            args: vec!["--address".into(), addr.to_string()],
        }
    }

    fn arg(mut self, name: &str, value: impl ToString) -> BoltClient {
        self.args.push(format!("--{name}"));
        self.args.push(value.to_string());
        self
    }

    pub fn service(self, service: &str) -> BoltClient {
        self.arg("service", service)
    }

    pub fn version(self, version: &str) -> BoltClient {
        self.arg("version", version)
    }

    /// `echo` (the default), `fail`, `slow` (`call_arg` is then milliseconds), `gather`
    /// (see [`BoltClient::gather`]) or `connections` (the server's count of accepted
    /// connections, as `"<tag>:connections:<n>"`).
    pub fn method(self, method: &str) -> BoltClient {
        self.arg("method", method)
    }

    /// Calls `gather`, which the server holds until `n` of them are waiting, then answers
    /// like `echo`: with `n` equal to all the calls of all clients, they were all in flight.
    pub fn gather(self, n: u32) -> BoltClient {
        self.method("gather").arg("gather", n)
    }

    /// Adds `name: value` to every request's Bolt header map (sofa-rpc-node's Hessian2
    /// requests otherwise carry only `service`).
    pub fn header(mut self, name: &str, value: &str) -> BoltClient {
        let pair = format!("{name}={value}");
        match self.args.iter().position(|a| a == "--header") {
            Some(at) => {
                let pairs = &mut self.args[at + 1];
                pairs.push(',');
                pairs.push_str(&pair);
                self
            }
            None => self.arg("header", pair),
        }
    }

    pub fn call_arg(self, arg: &str) -> BoltClient {
        self.arg("arg", arg)
    }

    pub fn count(self, n: u32) -> BoltClient {
        self.arg("count", n)
    }

    pub fn concurrency(self, n: u32) -> BoltClient {
        self.arg("concurrency", n)
    }

    /// The per-call timeout, in milliseconds.
    pub fn timeout_ms(self, ms: u64) -> BoltClient {
        self.arg("timeout", ms)
    }

    /// Speak Bolt v2 (with the CRC32 trailer when `crc`).
    pub fn v2(mut self, crc: bool) -> BoltClient {
        self = self.arg("bolt", 2);
        if crc {
            self.args.push("--crc".into());
        }
        self
    }

    /// Runs the calls; the client exits 0 whatever they returned.
    pub fn run(&self) -> ClientRun {
        let (json, raw) = self.run_json(&[]);
        let strings = |key: &str| -> Vec<String> {
            json[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        ClientRun {
            ok: json["ok"].as_u64().unwrap(),
            errors: json["errors"].as_u64().unwrap(),
            mismatched: json["mismatched"].as_u64().unwrap(),
            tags: json["tags"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                        .collect()
                })
                .unwrap_or_default(),
            results: strings("results"),
            error_messages: strings("errorMessages"),
            error_names: strings("errorNames"),
            raw,
        }
    }

    /// Sends one Bolt heartbeat on a fresh connection instead of calls; what became of it:
    /// "answered", "timeout", "closed", "error" or "wrong id".
    pub fn heartbeat(&self) -> String {
        let (json, raw) = self.run_json(&["--heartbeat"]);
        json["heartbeat"]
            .as_str()
            .unwrap_or_else(|| panic!("bolt client: no heartbeat result in {raw}"))
            .to_string()
    }

    /// Runs client.js to completion within the deadline; its JSON line, parsed and raw.
    fn run_json(&self, extra: &[&str]) -> (serde_json::Value, String) {
        let mut cmd = node("client.js");
        cmd.args(&self.args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn(cmd, "bolt client");
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = thread::spawn(move || {
            let mut s = String::new();
            let _ = stdout.read_to_string(&mut s);
            s
        });
        let err = thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "bolt client {:?} still running after {DEADLINE:?}",
                    self.args
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        assert!(
            status.success(),
            "bolt client {:?} failed ({status}): {err}{out}",
            self.args
        );
        let line = out.lines().last().unwrap_or("").to_string();
        let json = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("bolt client printed {out:?} ({e}); stderr: {err}"));
        (json, line)
    }
}

/// The first request a real client sends: `client` is pointed at a listener of this
/// function's, which decodes that one frame with Sluice's codec and closes the connection (so
/// the client's calls fail). For tests that hand-craft bad frames from a genuine one.
pub fn capture_request(client: impl FnOnce(SocketAddr) -> BoltClient) -> sluice_xprotocol::Frame {
    use sluice_xprotocol::{bolt::Bolt, FrameKind, Protocol};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = client(listener.local_addr().unwrap());
    let run = thread::spawn(move || client.run());
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut buf = bytes::BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    let frame = 'read: loop {
        while let Some(frame) = Bolt.decode(&mut buf, 1 << 20).unwrap() {
            if frame.kind == FrameKind::Request {
                break 'read frame;
            }
        }
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "the client closed before sending a request");
        buf.extend_from_slice(&chunk[..n]);
    };
    drop((conn, listener));
    let run = run.join().unwrap();
    assert_eq!(run.ok, 0, "{}", run.raw);
    frame
}
