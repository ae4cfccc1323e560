//! Binding listening sockets.
//!
//! Binding is split from serving: [`bind`] makes plain std sockets (no runtime needed), so the
//! binary can bind everything, fail early with a clear message, and only then start serving.
//! The same split is what a hot upgrade needs: sockets handed over from the old process enter
//! at [`BoundListener`].

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sluice_config::{Address, ListenerConfig};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, UnixListener};

use crate::stream::{PeerAddr, Stream};

/// Names the listener and address with the OS error. The cause is part of the message (not a
/// `source`), so error reporters that print chains do not repeat it.
#[derive(Debug, thiserror::Error)]
#[error("listener \"{listener}\": cannot bind {address}: {error}")]
pub struct BindError {
    pub listener: String,
    pub address: Address,
    pub error: io::Error,
}

/// A bound, listening socket not yet registered with a runtime.
#[derive(Debug)]
pub enum BoundListener {
    Tcp(std::net::TcpListener),
    Unix(std::os::unix::net::UnixListener, PathBuf),
}

/// Binds the socket a listener config describes.
pub fn bind(config: &ListenerConfig) -> Result<BoundListener, BindError> {
    let result = match &config.address {
        Address::Tcp(addr) => bind_tcp(*addr, config.reuse_port, config.backlog),
        Address::Unix(path) => bind_unix(path, config.socket_mode),
    };
    result.map_err(|error| BindError {
        listener: config.name.clone(),
        address: config.address.clone(),
        error,
    })
}

/// Binds `n` sockets for one listener, one per worker of a per-core data plane. TCP sockets all
/// get `SO_REUSEPORT` so the kernel spreads connections among them; a Unix socket cannot be
/// shared that way, so its one socket is duplicated and the workers take turns accepting.
pub fn bind_per_worker(config: &ListenerConfig, n: usize) -> Result<Vec<BoundListener>, BindError> {
    let err = |error| BindError {
        listener: config.name.clone(),
        address: config.address.clone(),
        error,
    };
    let mut out = Vec::with_capacity(n);
    match &config.address {
        Address::Tcp(addr) => {
            let first = bind_tcp(*addr, true, config.backlog).map_err(err)?;
            // Port 0 picks a port once; the other sockets join that same port.
            let actual = match &first {
                BoundListener::Tcp(l) => l.local_addr().map_err(err)?,
                BoundListener::Unix(..) => *addr,
            };
            out.push(first);
            for _ in 1..n {
                out.push(bind_tcp(actual, true, config.backlog).map_err(err)?);
            }
        }
        Address::Unix(path) => {
            let first = bind_unix(path, config.socket_mode).map_err(err)?;
            if let BoundListener::Unix(l, _) = &first {
                for _ in 1..n {
                    // A duplicate carries no path: only the original unlinks the file.
                    out.push(BoundListener::Unix(
                        l.try_clone().map_err(err)?,
                        PathBuf::new(),
                    ));
                }
            }
            out.insert(0, first);
        }
    }
    Ok(out)
}

fn bind_tcp(
    addr: std::net::SocketAddr,
    reuse_port: bool,
    backlog: u32,
) -> io::Result<BoundListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // SO_REUSEADDR lets a restarted proxy bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(BoundListener::Tcp(socket.into()))
}

fn bind_unix(path: &Path, mode: Option<u32>) -> io::Result<BoundListener> {
    remove_stale_socket(path)?;
    let listener = std::os::unix::net::UnixListener::bind(path)?;
    listener.set_nonblocking(true)?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(BoundListener::Unix(listener, path.to_path_buf()))
}

/// A socket file left behind by a process that died is removed; a live one (something accepts
/// on it) or a file that is not a socket is an error, so we never steal or delete what is not ours.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "path exists and is not a socket",
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "socket is in use by another process",
        ));
    }
    std::fs::remove_file(path)
}

impl BoundListener {
    /// The address actually bound (useful when the config asked for port 0).
    pub fn local_addr(&self) -> io::Result<Address> {
        match self {
            BoundListener::Tcp(l) => l.local_addr().map(Address::Tcp),
            BoundListener::Unix(l, _) => l
                .local_addr()?
                .as_pathname()
                .map(|p| Address::Unix(p.to_path_buf()))
                .ok_or_else(|| io::Error::other("unnamed unix socket")),
        }
    }

    /// Registers the socket with the current tokio runtime. Must run inside one.
    pub fn into_listener(self) -> io::Result<Listener> {
        Ok(match self {
            BoundListener::Tcp(l) => Listener::Tcp(TcpListener::from_std(l)?),
            BoundListener::Unix(l, path) => {
                Listener::Unix(UnixListener::from_std(l)?, UnlinkOnDrop(path))
            }
        })
    }
}

/// A listening socket registered with tokio.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, UnlinkOnDrop),
}

/// Removes a Unix socket file when its listener closes, so a stopped proxy leaves nothing behind.
#[derive(Debug)]
pub struct UnlinkOnDrop(PathBuf);

impl Drop for UnlinkOnDrop {
    fn drop(&mut self) {
        // Duplicated sockets carry an empty path: they own no file.
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

impl Listener {
    pub async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                s.set_nodelay(true)?;
                Ok((Stream::Tcp(s), PeerAddr::Tcp(peer)))
            }
            Listener::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                Ok((Stream::Unix(s), PeerAddr::Unix))
            }
        }
    }
}
