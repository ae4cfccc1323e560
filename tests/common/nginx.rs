//! nginx as a real upstream: started on a port of the test's choosing with the `location`
//! blocks it gives, stoppable and restartable on the same port (a host that dies and comes
//! back), killed on drop.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{free_port, DEADLINE};

pub struct Nginx {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Serves `return 200 "from nginx"` everywhere.
    pub fn start() -> Nginx {
        Nginx::serving(r#"location / { return 200 "from nginx"; }"#)
    }

    /// Serves the given `location` blocks on a free loopback port.
    pub fn serving(locations: &str) -> Nginx {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Nginx::serving_on(addr, locations)
    }

    /// Serves the given `location` blocks on `addr`: for hosts that share a port on distinct
    /// loopback addresses (127.0.0.2, 127.0.0.3, ...), as the addresses of one DNS name do.
    pub fn serving_on(addr: SocketAddr, locations: &str) -> Nginx {
        Nginx::with_listen(addr, "", locations)
    }

    /// Serves HTTPS on a free loopback port: `server` holds the `ssl_*` directives and the
    /// `location` blocks.
    pub fn serving_tls(server: &str) -> Nginx {
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        Nginx::with_listen(addr, " ssl", server)
    }

    /// `listen {addr}{params};` then `server`'s directives.
    fn with_listen(addr: SocketAddr, params: &str, locations: &str) -> Nginx {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("nginx.conf"),
            format!(
                "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{ listen {addr}{params}; {locations} }}
}}
"
            ),
        )
        .unwrap();
        let mut n = Nginx {
            child: None,
            addr,
            dir,
        };
        n.resume();
        n
    }

    /// Kills the process: its port refuses connections until [`Nginx::resume`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same port with the same config; returns once it accepts.
    pub fn resume(&mut self) {
        let bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("nginx");
        let child = Command::new(bin)
            .arg("-p")
            .arg(self.dir.path())
            .arg("-e")
            .arg(self.dir.path().join("error.log"))
            .arg("-c")
            .arg(self.dir.path().join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                panic!("nginx is not installed ({bin}): .ci/run installs nginx-light")
            }
            Err(e) => panic!("cannot start nginx ({bin}): {e}"),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// Polls a TCP connect until nginx accepts; fails if it exits or the deadline passes.
    fn wait_ready(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("nginx exited ({status}); error log:\n{}", self.error_log());
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).is_ok() {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "nginx not listening on {} in time; error log:\n{}",
                self.addr,
                self.error_log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.stop();
    }
}
