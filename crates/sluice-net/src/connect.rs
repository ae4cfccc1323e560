//! Dialing an upstream address.

use std::io;

use sluice_config::Address;
use tokio::net::{TcpStream, UnixStream};

use crate::stream::Stream;

/// Connects to `addr`. TCP connections get `TCP_NODELAY`: a proxy forwards what it has at once,
/// and Nagle's delay would only add latency on top of the client's own choice.
pub async fn connect(addr: &Address) -> io::Result<Stream> {
    match addr {
        Address::Tcp(a) => {
            let s = TcpStream::connect(a).await?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
        Address::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
    }
}
