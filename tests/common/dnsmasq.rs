//! dnsmasq as a real name server: answers for the names of a hosts file the test rewrites,
//! on a loopback port, killed on drop.
//!
//! It is authoritative for `.test` (`--local=/test/`): a name missing from the file gets
//! NXDOMAIN, and a name with only IPv4 addresses gets an empty AAAA answer, as a real zone
//! would; nothing is forwarded anywhere.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, DEADLINE};

pub struct Dnsmasq {
    child: Option<Child>,
    /// Where it answers, UDP and TCP.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Dnsmasq {
    /// Serves `hosts`, as (IP, name) pairs.
    pub fn start(hosts: &[(&str, &str)]) -> Dnsmasq {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = Dnsmasq {
            child: None,
            addr,
            dir,
        };
        d.write_hosts(hosts);
        let p = d.dir.path();
        let bin = [
            "/usr/sbin/dnsmasq",
            "/usr/local/sbin/dnsmasq",
            "/usr/bin/dnsmasq",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("dnsmasq");
        let mut cmd = Command::new(bin);
        cmd.arg("--keep-in-foreground")
            .arg("--conf-file=/dev/null")
            .arg("--no-resolv")
            .arg("--no-hosts")
            .arg("--local=/test/")
            .arg(format!("--addn-hosts={}", p.join("hosts").display()))
            .arg("--listen-address=127.0.0.1")
            .arg(format!("--port={}", addr.port()))
            .arg("--bind-interfaces")
            .arg("--log-queries")
            .arg(format!(
                "--log-facility={}",
                p.join("dnsmasq.log").display()
            ))
            .arg(format!("--pid-file={}", p.join("dnsmasq.pid").display()));
        // Started as root, dnsmasq drops to `nobody`, who cannot read the hosts file in this
        // private temporary directory (not even on the first load); so it stays root here.
        // Started as anyone else, it cannot change user and needs no flag.
        if running_as_root() {
            cmd.arg("--user=root");
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(p.join("stderr.log")).unwrap())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                panic!("dnsmasq is not installed ({bin}): .ci/run installs dnsmasq-base")
            }
            Err(e) => panic!("cannot start dnsmasq: {e}"),
        };
        let mut d = d;
        d.child = Some(child);
        d.wait_ready();
        d
    }

    /// Replaces the served names with `hosts` and has dnsmasq reload them (SIGHUP). The file
    /// is replaced by a rename, so dnsmasq never reads half of it.
    pub fn set_hosts(&self, hosts: &[(&str, &str)]) {
        self.write_hosts(hosts);
        let pid = self.child.as_ref().unwrap().id();
        let ok = Command::new("kill")
            .arg("-HUP")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP dnsmasq failed");
    }

    /// What dnsmasq logged: its queries (`query[A] name from ...`) and reloads.
    pub fn log(&self) -> String {
        let p = self.dir.path();
        let log = std::fs::read_to_string(p.join("dnsmasq.log")).unwrap_or_default();
        let stderr = std::fs::read_to_string(p.join("stderr.log")).unwrap_or_default();
        format!("{log}{stderr}")
    }

    fn write_hosts(&self, hosts: &[(&str, &str)]) {
        let text: String = hosts
            .iter()
            .map(|(ip, name)| format!("{ip} {name}\n"))
            .collect();
        let tmp = self.dir.path().join("hosts.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.dir.path().join("hosts")).unwrap();
    }

    /// Polls a TCP connect (dnsmasq answers over TCP too) until it accepts; fails if dnsmasq
    /// exits or the deadline passes.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("dnsmasq exited ({status}); log:\n{}", self.log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "dnsmasq not listening on {} in time; log:\n{}",
                self.addr,
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether this process runs as root (uid 0), from /proc.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        == Some("0")
}
